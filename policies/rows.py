"""The row rule kinds: which records a caller may see at all, independent of field classes.

Each kind is registered with `policies.rules` and declared in the policy document (`[[rows]]`):

* `publicity-window` (`PublicityWindowRule`, over `PublicityWindow`): the NDRC 2025 credit repair
  measures (in force 2026-04-01). Counted from the decision date, a minor (轻微) penalty is
  normally not shown (at most 3 months if shown), an ordinary (一般) one at most 1 year, a severe
  (严重) one at most 3 years; display stops at the earlier of that maximum and the record's own
  publicity end date, but never before the national minimum (一般 3 months, 严重 1 year): a
  department's end date earlier than the minimum does not shorten the window — only an approved
  credit repair (信用修复, hub/cases/repairs.py) ends display early: from the day of its approval
  (`PublicityWindow.repair_end`, fed per request by the repair register through the subject's
  facts, `PublicityWindowRule.keeper`; the rule also reads the record's key to find its repair).
  A record whose window cannot be established (no decision date, unknown severity, an end date
  that is not a date) is not shown: the rule fails closed. A policy may set each maximum only
  within the measures' range (轻微 0–3, 一般 3–12, 严重 12–36 months) and each minimum (`min_months`,
  default 轻微 0, 一般 3, 严重 12) from the national minimum up to that severity's maximum.
* `review-gate` (`ReviewGate`): a record whose review status at its source is present and not one
  of the statuses shown (null included) awaits review and is not shown; records from departments
  that do not map the field pass.
* `validity-window` (`ValidityWindow`): licences and honours are shown while valid — not before
  their `valid_from`, not after their `valid_to` (an absent bound is open; a bound that is not a
  date hides the record). An expired honour is no longer a reason for trust.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Self

from xinlian.schema.catalogue import RecordFamily

from .model import DisclosureClass
from .rules import Parameters, RowRule, SubjectFacts, register_row_rule

# NDRC 2025 credit repair measures: the range a policy may give each severity's maximum display,
# in months (轻微: normally not shown, at most 3; 一般: at least 3, at most 12; 严重: 12 to 36)
SEVERITY_MONTHS: Mapping[str, tuple[int, int]] = {"轻微": (0, 3), "一般": (3, 12), "严重": (12, 36)}
# ... and the national minimum display, in months (轻微 none; 一般 3 months; 严重 1 year): a policy may
# raise a minimum up to the severity's maximum, never lower it
STANDARD_MIN_MONTHS: Mapping[str, int] = {"轻微": 0, "一般": 3, "严重": 12}
REVIEWED = frozenset({"approved", "reviewed", "已审核", "审核通过", "通过"})
VALIDITY_FIELDS = ("valid_from", "valid_to")


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
    """Minimum and maximum public display per severity, in months from the decision date."""

    max_months: Mapping[str, int]
    show_minor: bool = False
    min_months: Mapping[str, int] = field(default_factory=lambda: dict(STANDARD_MIN_MONTHS))

    @classmethod
    def standard(cls) -> "PublicityWindow":
        return cls(max_months={"轻微": 3, "一般": 12, "严重": 36}, min_months=dict(STANDARD_MIN_MONTHS))

    def repair_end(self, record: Mapping[str, Any]) -> dt.date | None:
        """CREDIT REPAIR HOOK (信用修复): the last day a repaired record is shown, or None.

        The window alone knows no repairs (None); `with_repairs` gives the window of one subject's
        records that does: a record repaired on day D (its approved credit repair, requested after
        the minimum, obligations met, commitment made) is shown through D - 1 and no longer from D,
        before the minimum and before its own end date (`end_of_display`).
        """
        return None

    def with_repairs(self, key: str, repaired: Mapping[str, dt.date]) -> "PublicityWindow":
        """This window for records whose `key` field names them, `repaired` (record key → the day
        of the approved repair) ending their display."""
        return RepairedWindow(self.max_months, self.show_minor, self.min_months, key, repaired)

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
        end = maximum
        if own_end is not None:
            own = _as_date(own_end)
            if own is None:
                return None  # an end date that is not a date: fail closed
            end = min(maximum, own)
        least = self.min_months.get(severity, 0)
        if least > 0:  # a department's end date earlier than the minimum does not shorten it
            end = max(end, min(maximum, add_months(decided, least)))
        repaired = self.repair_end(record)  # an approved credit repair alone ends display early
        if repaired is not None:
            end = min(end, repaired)
        return end

    def shows(self, record: Mapping[str, Any], today: dt.date) -> bool:
        end = self.end_of_display(record)
        return end is not None and today <= end

    #: fields the rule reads; the executor fetches them when the caller may receive them
    fields = ("severity", "decision_date", "publicity_end_date")


@dataclass(frozen=True)
class RepairedWindow(PublicityWindow):
    """The publicity window of one subject's records of one family that has approved credit repairs."""

    key: str = ""
    repaired: Mapping[str, dt.date] = field(default_factory=dict)

    def repair_end(self, record: Mapping[str, Any]) -> dt.date | None:
        ref = record.get(self.key)
        day = None if ref is None else self.repaired.get(str(ref))
        return None if day is None else day - dt.timedelta(days=1)

    def shows(self, record: Mapping[str, Any], today: dt.date) -> bool:
        if record.get(self.key) is None:
            return False  # the subject has repaired records and this one's key is unknown: fail closed
        return super().shows(record, today)


def _hidden(record: Mapping[str, Any]) -> bool:
    return False


def _missing(family: RecordFamily, fields: tuple[str, ...]) -> str | None:
    absent = [f for f in fields if f not in family.field_names]
    return f"it has no field {', '.join(absent)}" if absent else None


def _severity_months(
    params: Parameters, name: str, default: Mapping[str, int], ranges: Mapping[str, tuple[int, int]]
) -> dict[str, int]:
    """A `severity = months` table parameter, every severity given, each within its range."""
    table = params.raw(name, dict(default))
    if not isinstance(table, dict):
        raise params.error(f"{name} must be a table of severity = months ({', '.join(SEVERITY_MONTHS)})")
    unknown = sorted(set(table) - set(SEVERITY_MONTHS))
    if unknown:
        raise params.error(f"{name}: unknown severity {unknown[0]!r} (one of: {', '.join(SEVERITY_MONTHS)})")
    months: dict[str, int] = {}
    for severity, (low, high) in ranges.items():
        value = table.get(severity)
        if value is None:
            raise params.error(f"{name}: give the months for {severity}")
        if not isinstance(value, int) or isinstance(value, bool):
            raise params.error(f"{name}.{severity} must be a whole number of months, got {value!r}")
        if not low <= value <= high:
            raise params.error(
                f"{name}.{severity}: {value} months is outside {low} to {high} (NDRC 2025 credit repair measures)"
            )
        months[severity] = value
    return months


@register_row_rule
@dataclass(frozen=True)
class PublicityWindowRule(RowRule):
    """`publicity-window`: penalties are shown only inside their publicity window."""

    kind = "publicity-window"

    window: PublicityWindow

    @classmethod
    def parse(cls, params: Parameters, families: tuple[str, ...], applies_to: frozenset[DisclosureClass]) -> Self:
        show_minor = params.boolean("show_minor", False)
        months = _severity_months(params, "max_months", PublicityWindow.standard().max_months, SEVERITY_MONTHS)
        ranges = {s: (STANDARD_MIN_MONTHS[s], months[s]) for s in SEVERITY_MONTHS}  # national minimum .. maximum
        least = _severity_months(params, "min_months", STANDARD_MIN_MONTHS, ranges)
        return cls(families, applies_to, PublicityWindow(months, show_minor, least))

    def parameters(self) -> dict[str, Any]:
        return {
            "show_minor": self.window.show_minor,
            "max_months": dict(self.window.max_months),
            "min_months": dict(self.window.min_months),
        }

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        """The window's fields, and the record key that an approved credit repair names."""
        return PublicityWindow.fields + ((family.record_key,) if family.record_key else ())

    def unfit(self, family: RecordFamily) -> str | None:
        return _missing(family, PublicityWindow.fields)

    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        """The window alone, without the subject's repairs (the executor uses `keeper`)."""
        return self.window.shows(record, today)

    def keeper(self, family: RecordFamily, facts: SubjectFacts, today: dt.date) -> Callable[[Mapping[str, Any]], bool]:
        """The window with the subject's approved credit repairs of `family` (looked up once): a
        record repaired on day D is not shown from D on. Repairs not known: nothing is shown."""
        repaired = facts.repairs(family.name)
        if repaired is None:
            return _hidden
        window = self.window
        if repaired and family.record_key is not None:
            window = window.with_repairs(family.record_key, repaired)
        return lambda record: window.shows(record, today)


@register_row_rule
@dataclass(frozen=True)
class ReviewGate(RowRule):
    """`review-gate`: records awaiting review at their source are not shown."""

    kind = "review-gate"

    field: str
    shown: frozenset[str]

    @classmethod
    def parse(cls, params: Parameters, families: tuple[str, ...], applies_to: frozenset[DisclosureClass]) -> Self:
        return cls(families, applies_to, params.string("field", "review_status"), frozenset(params.strings("shown", sorted(REVIEWED))))

    def parameters(self) -> dict[str, Any]:
        return {"field": self.field, "shown": sorted(self.shown)}

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        return (self.field,)

    def unfit(self, family: RecordFamily) -> str | None:
        return _missing(family, (self.field,))

    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        if self.field not in record:
            return True  # the source does not map the field: nothing awaits review there
        value = record[self.field]
        return isinstance(value, str) and value in self.shown


@register_row_rule
@dataclass(frozen=True)
class ValidityWindow(RowRule):
    """`validity-window`: records are shown from their `valid_from` to their `valid_to`, inclusive."""

    kind = "validity-window"

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        return tuple(f for f in VALIDITY_FIELDS if f in family.field_names)

    def unfit(self, family: RecordFamily) -> str | None:
        return None if self.reads(family) else "it has neither valid_from nor valid_to"

    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        start, end = record.get("valid_from"), record.get("valid_to")
        if start is not None:
            begins = _as_date(start)
            if begins is None or today < begins:
                return False
        if end is not None:
            ends = _as_date(end)
            if ends is None or today > ends:
                return False
        return True
