"""Row rules: which records a caller may see at all, independent of field classes.

`PublicityWindow` implements the NDRC 2025 credit repair measures (in force 2026-04-01):
counted from the decision date, a minor (轻微) penalty is normally not shown (at most 3 months
if shown), an ordinary (一般) one at most 1 year, a severe (严重) one at most 3 years; display
stops at the earlier of that maximum and the record's own publicity end date. A record whose
window cannot be established (no decision date, unknown severity, an end date that is not a
date) is not shown: the rule fails closed. The minimum windows (3 months, 1 year) matter for
credit repair, a later issue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` plus whole months, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


@dataclass(frozen=True)
class PublicityWindow:
    """Maximum public display per severity, in months from the decision date."""

    max_months: Mapping[str, int]
    show_minor: bool = False

    @classmethod
    def standard(cls) -> "PublicityWindow":
        return cls(max_months={"轻微": 3, "一般": 12, "严重": 36})

    def end_of_display(self, record: Mapping[str, Any]) -> dt.date | None:
        """The last day a penalty may be shown to the public, or None if it may not be shown."""
        severity = record.get("severity")
        decided = _as_date(record.get("decision_date"))
        own_end = record.get("publicity_end_date")
        if not isinstance(severity, str) or decided is None:
            return None  # the window cannot be established: fail closed
        if severity == "轻微" and not self.show_minor:
            return None
        months = self.max_months.get(severity)
        if months is None:
            return None
        maximum = add_months(decided, months)
        if own_end is None:
            return maximum
        own = _as_date(own_end)
        return None if own is None else min(maximum, own)

    def shows(self, record: Mapping[str, Any], today: dt.date) -> bool:
        end = self.end_of_display(record)
        return end is not None and today <= end

    #: fields the rule reads; the executor fetches them when the caller may receive them
    fields = ("severity", "decision_date", "publicity_end_date")
