"""The admin API's index fields (the credit office): filled in by the index work (docs/cases.md)."""

from __future__ import annotations


class IndexAdminQuery:
    """Read fields (none yet)."""


class IndexAdminMutation:
    """Changes (none yet)."""
