"""Row rules: which records a caller may see at all, independent of field classes.

`PublicityWindow` implements the NDRC 2025 credit repair measures (in force 2026-04-01):
counted from the decision date, a minor (轻微) penalty is normally not shown (at most 3 months
if shown), an ordinary (一般) one at most 1 year, a severe (严重) one at most 3 years; display
stops at the earlier of that maximum and the record's own publicity end date. A record whose
window cannot be established is not shown (fail closed).
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


@dataclass(frozen=True)
class PublicityWindow:
    """Maximum public display per severity, in months from the decision date."""

    max_months: Mapping[str, int]
    show_minor: bool = False
    minimum_months: Mapping[str, int] | None = None

    @classmethod
    def standard(cls) -> "PublicityWindow":
        return cls(
            max_months={"轻微": 3, "一般": 12, "严重": 36},
            minimum_months={"轻微": 0, "一般": 3, "严重": 12},
        )

    def end_of_display(self, record: Mapping[str, Any]) -> dt.date | None:
        """The last day a penalty may be shown to the public, or None if it may not be shown."""
        severity = record.get("severity")
        decided = record.get("decision_date")
        own_end = record.get("publicity_end_date")
        if severity == "轻微" and not self.show_minor:
            return None
        months = self.max_months.get(severity) if isinstance(severity, str) else None
        if months is None or not isinstance(decided, dt.date):
            return own_end if isinstance(own_end, dt.date) and severity in self.max_months else None
        maximum = add_months(decided, months)
        if isinstance(own_end, dt.date):
            return min(maximum, own_end)
        return maximum

    def shows(self, record: Mapping[str, Any], today: dt.date) -> bool:
        end = self.end_of_display(record)
        return end is not None and today <= end

    #: fields the rule reads; the executor fetches them when the caller may receive them
    fields = ("severity", "decision_date", "publicity_end_date")
