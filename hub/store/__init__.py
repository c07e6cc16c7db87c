"""The hub store: hub-owned state (clients, audit entries, ...) through SQLAlchemy 2 async."""

from .engine import Store
from .times import as_utc

__all__ = ["Store", "as_utc"]
