"""Times in the hub store: every stored time is UTC; SQLite hands them back naive."""

from __future__ import annotations

import datetime as dt


def as_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC; a naive time (as SQLite returns stored ones) is taken as UTC."""
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)
