"""The admin API's repairs fields (the credit office): filled in by the repairs work (docs/cases.md)."""

from __future__ import annotations


class RepairAdminQuery:
    """Read fields (none yet)."""


class RepairAdminMutation:
    """Changes (none yet)."""
