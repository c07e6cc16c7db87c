"""The hub store: hub-owned state (clients, audit entries, ...) through SQLAlchemy 2 async."""

from .engine import Store

__all__ = ["Store"]
