"""The admin API's complaints fields (the credit office): filled in by the complaints work (docs/cases.md)."""

from __future__ import annotations


class ComplaintAdminQuery:
    """Read fields (none yet)."""


class ComplaintAdminMutation:
    """Changes (none yet)."""
