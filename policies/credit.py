"""The policy's credit governance rules: finding bases, list rules, the measures catalogue, the
rating model and the supervision classes — data, versioned with the policy.

A policy document's `[credit]` section (see `policies/credit.toml`, the standard one, and
docs/governance.md) declares:

- `access`: the scopes that may run credit checks, record findings, read ratings and supervision
  plans, and the client kinds that must declare a registered purpose to run a check;
- `contexts`: the application scenarios of joint rewards and sanctions (government-procurement,
  bidding, licensing, land, subsidies, lending, ...);
- `bases`: what a finding may rest on (认定依据): its severity, the list a finding on it puts the
  subject on, for how many months, and which departments may use it;
- `list_rules`: listings that follow from department records while a rule holds (a dishonest
  judgment debtor while the court's record stands; an A-level taxpayer without penalties);
- `measures`: the measures catalogue (失信惩戒措施清单 / 守信激励措施清单), each with its contexts,
  legal basis, issuing department, effect and triggers;
- `rating`: the nine-level evaluation model (indicators over records, findings and listings,
  weights per industry, thresholds) with its own model version;
- `supervision`: the classes A/B/C, the levels in each and the recommended inspection frequency;
- `supervising` (optional): the industries each department supervises, for its supervision plan
  (a department not named supervises every industry).

Everything here is pure: parsing (`parse_credit`, `PolicyError` naming the place of fault), the
explicit document form (`credit_document`, for storage and diffs: `credit_leaves`) and the small
predicates the hub evaluates over records (`Condition.holds`, `Indicator.points_for`). The hub's
registers and engines live in `hub/credit/`.
"""

from __future__ import annotations

import builtins
import datetime as dt
import enum
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from xinlian.schema.catalogue import FAMILIES

from .model import PolicyError
from .rows import add_months

LEVELS = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C")
LISTS = ("black", "red")
SEVERITIES = ("general", "serious", "none")  # none: a red-list basis
TRIGGER_SOURCES = ("blacklist", "redlist", "finding-serious", "finding-general")
INDICATOR_KINDS = ("records", "level", "listing", "finding", "objections")
ACCESS_KEYS = ("check", "check_purpose_kinds", "findings", "ratings", "supervision", "cancel_departments")
Record = Mapping[str, Any]


class Verdict(enum.Enum):
    """What a credit check answers for one subject in one context."""

    ALLOWED = "ALLOWED"
    RESTRICTED = "RESTRICTED"
    PROHIBITED = "PROHIBITED"


class Effect(enum.Enum):
    """What a measure does: a sanction that prohibits or restricts, or a reward."""

    PROHIBITED = "PROHIBITED"
    RESTRICTED = "RESTRICTED"
    REWARD = "REWARD"


def period_end(start: dt.date, months: int) -> dt.date:
    """The last day of a period of `months` months from `start` (民法典 art. 201: the first day
    does not count, the period ends on the corresponding day `months` later, or the month's last
    day when it has none) — the same convention as the publicity window (policies/rows.py), so a
    penalty's display and the listing it led to end on the same day."""
    return add_months(start, months)


def current_records(family: str, records: Sequence[Record]) -> list[Record]:
    """The records of `family` that count now: for a single-record family (a tax credit level,
    the registration) only the newest by its recency field, as every caller is served; for a
    family of many records, all of them."""
    spec = FAMILIES[family]
    if spec.many or len(records) < 2:
        return list(records)
    recency = spec.recency
    if recency is None:
        return list(records[:1])
    dated = [r for r in records if r.get(recency) is not None]
    return [max(dated, key=lambda r: r[recency])] if dated else list(records[:1])


def _where(here: str, message: str) -> PolicyError:
    return PolicyError(f"{here}: {message}")


class SectionTable:
    """One table of the section, read with checks; `finish()` refuses keys nobody read."""

    def __init__(self, table: Any, here: str) -> None:
        if not isinstance(table, dict):
            raise _where(here, f"expected a table, got {table!r}")
        self.table: dict[str, Any] = table
        self.here = here
        self.read: set[str] = set()

    def raw(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self.table.get(name, default)

    def string(self, name: str, default: str | None = None) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value.strip():
            raise _where(self.here, f"{name} must be a non-empty string, got {value!r}")
        return value.strip()

    def optional_string(self, name: str) -> str | None:
        return None if self.raw(name) is None else self.string(name)

    def strings(self, name: str, default: Sequence[str] | None = None, allow_empty: bool = False) -> tuple[str, ...]:
        value = self.raw(name, None if default is None else list(default))
        if (
            not isinstance(value, list)
            or (not value and not allow_empty)
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            raise _where(self.here, f"{name} must be a non-empty array of strings, got {value!r}")
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise _where(self.here, f"{name} names {', '.join(repeated)} more than once")
        return tuple(v.strip() for v in value)

    def integer(self, name: str, default: int | None = None, minimum: int | None = None) -> int:
        value = self.raw(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
            floor = f" of at least {minimum}" if minimum is not None else ""
            raise _where(self.here, f"{name} must be an integer{floor}, got {value!r}")
        return value

    def optional_integer(self, name: str, minimum: int | None = None) -> int | None:
        return None if self.raw(name) is None else self.integer(name, minimum=minimum)

    def number(self, name: str, default: float | None = None) -> float:
        value = self.raw(name, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _where(self.here, f"{name} must be a number, got {value!r}")
        return float(value)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.read)
        if unknown:
            raise _where(self.here, f"unknown key {', '.join(map(repr, unknown))} (known: {', '.join(sorted(self.read))})")


def _family(name: str, here: str) -> None:
    if name not in FAMILIES:
        raise _where(here, f"unknown record family {name!r}")


def _field(family: str, name: str, here: str) -> None:
    if name not in FAMILIES[family].field_names:
        raise _where(here, f"record family {family!r} has no field {name!r}")


def _value_filter(table: SectionTable, family: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    raw = table.raw("where", {})
    if not isinstance(raw, dict):
        raise _where(table.here, f"where must be a table of field = [values], got {raw!r}")
    out = []
    for name, values in sorted(raw.items()):
        _field(family, name, f"{table.here}.where")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise _where(f"{table.here}.where.{name}", f"expected a non-empty array of strings, got {values!r}")
        out.append((name, tuple(values)))
    return tuple(out)


@dataclass(frozen=True)
class RecordFilter:
    """Which of a family's records count: field values (`where`), a date within the last
    `within_months` months (`date`), and still valid (`valid_to` null or not before today)."""

    family: str
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    date: str | None = None
    within_months: int | None = None
    valid_to: str | None = None

    @classmethod
    def parse(cls, table: SectionTable, family: str, months_key: str = "within_months") -> "RecordFilter":
        where = _value_filter(table, family)
        date = table.optional_string("date")
        months = table.optional_integer(months_key, minimum=1)
        valid_to = table.optional_string("valid_to")
        for name in (date, valid_to):
            if name is not None:
                _field(family, name, table.here)
        if (date is None) != (months is None):
            raise _where(table.here, f"{months_key} and date go together")
        return cls(family, where, date, months, valid_to)

    def reads(self) -> set[str]:
        return {name for name, _ in self.where} | {n for n in (self.date, self.valid_to) if n is not None}

    def matches(self, record: Record, today: dt.date) -> bool:
        for name, values in self.where:
            if str(record.get(name)) not in values:
                return False
        if self.date is not None and self.within_months is not None:
            day = record.get(self.date)
            if not isinstance(day, dt.date) or day < add_months(today, -self.within_months) or day > today:
                return False
        if self.valid_to is not None:
            until = record.get(self.valid_to)
            if isinstance(until, dt.date) and until < today:
                return False
        return True

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.where:
            out["where"] = {name: list(values) for name, values in self.where}
        if self.date is not None:
            out["date"] = self.date
            out["within_months"] = self.within_months
        if self.valid_to is not None:
            out["valid_to"] = self.valid_to
        return out


@dataclass(frozen=True)
class Condition:
    """One condition of a list rule over a family's records: some record matches (`exists`), some
    record's `field` is one of `values` (`in`), or no record matches (`none_within_months`)."""

    filter: RecordFilter
    field: str | None = None
    values: tuple[str, ...] = ()
    absent: bool = False  # true: no matching record

    @classmethod
    def parse(cls, raw: Any, here: str) -> "Condition":
        table = SectionTable(raw, here)
        family = table.string("family")
        _family(family, here)
        exists = table.raw("exists")
        none_months = table.optional_integer("none_within_months", minimum=1)
        field_name = table.optional_string("field")
        values = table.strings("in") if table.raw("in") is not None else ()
        shapes = sum((exists is not None, none_months is not None, bool(values)))
        if shapes != 1:
            raise _where(here, "give exactly one of exists = true, in = [...] (with field), none_within_months = N (with date)")
        if exists is not None and exists is not True:
            raise _where(here, "exists must be true")
        if values and field_name is None:
            raise _where(here, "in = [...] needs field")
        if field_name is not None:
            _field(family, field_name, here)
        record_filter = RecordFilter.parse(table, family, "none_within_months" if none_months is not None else "within_months")
        table.finish()
        return cls(record_filter, field_name, values, absent=none_months is not None)

    def reads(self) -> set[str]:
        return self.filter.reads() | ({self.field} if self.field else set())

    def matching(self, records: Sequence[Record], today: dt.date) -> list[Record]:
        """The records that make the condition hold (for `absent`: none, when it holds); of a
        single-record family only the newest counts (`current_records`)."""
        found = [r for r in current_records(self.filter.family, records) if self.filter.matches(r, today)]
        if self.field is not None and self.values:
            found = [r for r in found if str(r.get(self.field)) in self.values]
        return found

    def holds(self, records: Sequence[Record], today: dt.date) -> bool:
        found = self.matching(records, today)
        return not found if self.absent else bool(found)

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.filter.family}
        if self.absent:
            out["none_within_months"] = self.filter.within_months
            out["date"] = self.filter.date
            if self.filter.where:
                out["where"] = {n: list(v) for n, v in self.filter.where}
            if self.filter.valid_to:
                out["valid_to"] = self.filter.valid_to
            return out
        if self.values:
            out["field"] = self.field
            out["in"] = list(self.values)
        else:
            out["exists"] = True
        out.update(self.filter.document())
        return out


@dataclass(frozen=True)
class FindingBasis:
    """认定依据: what a finding may rest on."""

    code: str
    name: str
    severity: str  # general | serious | none (red list)
    list: str | None  # black | red | None
    months: int  # how long a finding (and its listing) stays in force, from the decision date
    departments: tuple[str, ...]

    def ends_on(self, decided_on: dt.date) -> dt.date:
        """The last day in force: `period_end(decided_on, months)`."""
        return period_end(decided_on, self.months)

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "name": self.name, "severity": self.severity}
        if self.list:
            out["list"] = self.list
        out.update(months=self.months, departments=list(self.departments))
        return out


@dataclass(frozen=True)
class ListRule:
    """Listings that follow from department records while every condition holds."""

    name: str
    list: str
    basis: str
    department: str
    conditions: tuple[Condition, ...]
    months: int | None = None

    def reads(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c in self.conditions:
            out.setdefault(c.filter.family, set()).update(c.reads())
        return out

    def holds(self, records: Mapping[str, Sequence[Record]], today: dt.date) -> bool:
        return all(c.holds(records.get(c.filter.family, ()), today) for c in self.conditions)

    def listing_families(self) -> set[str]:
        """The families whose records can make the rule hold (not those it only requires absent):
        their subjects are the ones a district run must look at."""
        return {c.filter.family for c in self.conditions if not c.absent}

    def source_refs(self, records: Mapping[str, Sequence[Record]], today: dt.date) -> "builtins.list[str]":
        """The keys of the records that make the rule hold (family:key), for the listing."""
        refs = []
        for c in self.conditions:
            if c.absent:
                continue
            family = FAMILIES[c.filter.family]
            for r in c.matching(records.get(c.filter.family, ()), today):
                key = r.get(family.record_key) if family.record_key else None
                refs.append(f"{family.name}:{key}" if key is not None else family.name)
        return sorted(set(refs))

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "list": self.list, "basis": self.basis, "department": self.department}
        if self.months is not None:
            out["months"] = self.months
        out["conditions"] = [c.document() for c in self.conditions]
        return out


@dataclass(frozen=True)
class Trigger:
    """What sets a measure off: a listing or an in-force finding, optionally of one basis or rule."""

    source: str  # blacklist | redlist | finding-serious | finding-general
    qualifier: str | None = None  # a basis code or list rule name

    @classmethod
    def parse(cls, text: str, here: str) -> "Trigger":
        source, _, qualifier = text.partition(":")
        if source not in TRIGGER_SOURCES:
            raise _where(here, f"trigger {text!r}: expected one of {', '.join(TRIGGER_SOURCES)}, optionally :<basis or rule>")
        return cls(source, qualifier or None)

    def __str__(self) -> str:
        return self.source + (f":{self.qualifier}" if self.qualifier else "")


@dataclass(frozen=True)
class Measure:
    """One measure of the catalogue."""

    code: str
    name: str
    effect: Effect
    contexts: tuple[str, ...]
    basis: str
    department: str
    on: tuple[Trigger, ...]

    def document(self) -> dict[str, Any]:
        return {
            "code": self.code, "name": self.name, "effect": self.effect.value, "contexts": list(self.contexts),
            "basis": self.basis, "department": self.department, "on": [str(t) for t in self.on],
        }


@dataclass(frozen=True)
class Indicator:
    """One indicator of the rating model and how it scores.

    Kinds: `records` (points per matching record of `family`, capped at `cap`), `level` (points by
    the value of `field` of the family's newest record), `listing` (points while the subject is on
    `list`), `finding` (points per in-force finding of `severity`, capped), `objections` (points
    per objection upheld on the subject's records, capped).
    """

    name: str
    label: str
    kind: str
    points: float = 0.0
    cap: float | None = None
    filter: RecordFilter | None = None
    field: str | None = None
    levels: tuple[tuple[str, float], ...] = ()
    list: str | None = None
    severity: str | None = None

    @property
    def family(self) -> str | None:
        return self.filter.family if self.filter else None

    def capped(self, total: float) -> float:
        if self.cap is None:
            return total
        return max(total, self.cap) if self.cap < 0 else min(total, self.cap)

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "kind": self.kind}
        if self.filter is not None:
            out["family"] = self.filter.family
            out.update(self.filter.document())
        if self.field is not None:
            out["field"] = self.field
        if self.levels:
            out["levels"] = dict(self.levels)
        if self.list is not None:
            out["list"] = self.list
        if self.severity is not None:
            out["severity"] = self.severity
        if self.kind != "level":
            out["points"] = self.points
        if self.cap is not None:
            out["cap"] = self.cap
        return out


@dataclass(frozen=True)
class RatingModel:
    """The nine-level evaluation model (三等九级)."""

    version: str
    base: float
    max_score: float
    thresholds: tuple[tuple[str, float], ...]  # AAA first; C has none (below CC)
    indicators: tuple[Indicator, ...]
    industries: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def level_for(self, score: float) -> str:
        """The highest level whose threshold `score` reaches (a score exactly at it reaches it)."""
        for level, minimum in self.thresholds:
            if score >= minimum:
                return level
        return LEVELS[-1]

    def weight(self, industry: str | None, indicator: str) -> float:
        return float(self.industries.get(industry or "", {}).get(indicator, 1.0))

    def reads(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for i in self.indicators:
            if i.filter is not None:
                needed = out.setdefault(i.filter.family, set())
                needed.update(i.filter.reads())
                if i.field:
                    needed.add(i.field)
                key = FAMILIES[i.filter.family].record_key
                if key:
                    needed.add(key)
        return out

    def document(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "base": self.base,
            "max_score": self.max_score,
            "thresholds": dict(self.thresholds),
            "indicators": [i.document() for i in self.indicators],
            "industries": {k: dict(v) for k, v in sorted(self.industries.items())},
        }


@dataclass(frozen=True)
class SupervisionClass:
    """分级分类监管: a class of supervision for a range of levels."""

    code: str  # A | B | C
    levels: tuple[str, ...]
    approach: str
    inspections_per_year: int

    def document(self) -> dict[str, Any]:
        return {"levels": list(self.levels), "approach": self.approach, "inspections_per_year": self.inspections_per_year}


@dataclass(frozen=True)
class CreditAccess:
    """The scopes that may run each credit operation."""

    check: tuple[str, ...]
    check_purpose_kinds: tuple[str, ...]
    findings: tuple[str, ...]
    ratings: tuple[str, ...]
    supervision: tuple[str, ...]
    cancel_departments: tuple[str, ...] = ()  # departments whose cancellation ends a listing early (courts)

    def scopes(self) -> set[str]:
        return set(self.check) | set(self.findings) | set(self.ratings) | set(self.supervision)

    def document(self) -> dict[str, Any]:
        return {k: list(getattr(self, k)) for k in ACCESS_KEYS}


@dataclass(frozen=True)
class CreditRules:
    """The whole `[credit]` section of a policy version."""

    access: CreditAccess
    contexts: Mapping[str, str]
    bases: Mapping[str, FindingBasis]
    list_rules: tuple[ListRule, ...]
    measures: tuple[Measure, ...]
    rating: RatingModel
    supervision: Mapping[str, SupervisionClass]
    supervising: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # department -> industries

    def supervision_class(self, level: str) -> SupervisionClass:
        for found in self.supervision.values():
            if level in found.levels:
                return found
        raise KeyError(level)

    def list_rule(self, name: str) -> ListRule | None:
        return next((r for r in self.list_rules if r.name == name), None)

    def measures_in(self, context: str) -> tuple[Measure, ...]:
        return tuple(m for m in self.measures if context in m.contexts)


# ---- parsing ----------------------------------------------------------------------------


def _access(raw: Any) -> CreditAccess:
    t = SectionTable(raw, "credit.access")
    access = CreditAccess(
        check=t.strings("check"),
        check_purpose_kinds=t.strings("check_purpose_kinds", default=(), allow_empty=True),
        findings=t.strings("findings"),
        ratings=t.strings("ratings"),
        supervision=t.strings("supervision"),
        cancel_departments=t.strings("cancel_departments", default=(), allow_empty=True),
    )
    t.finish()
    return access


def _contexts(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise _where("credit.contexts", "expected a table of context = label")
    out = {}
    for code, label in raw.items():
        if (
            not isinstance(label, str) or not label.strip() or not code.replace("-", "").isalnum()
            or code != code.lower() or len(code) > 32
        ):
            raise _where(f"credit.contexts.{code}", "a context is a lower-case code of at most 32 characters with a non-empty label")
        out[code] = label.strip()
    return out


def _bases(raw: Any) -> dict[str, FindingBasis]:
    if not isinstance(raw, list) or not raw:
        raise _where("credit.bases", "expected an array of tables ([[credit.bases]])")
    out: dict[str, FindingBasis] = {}
    for i, entry in enumerate(raw):
        t = SectionTable(entry, f"credit.bases[{i}]")
        code = t.string("code")
        severity = t.string("severity")
        if severity not in SEVERITIES:
            raise _where(t.here, f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        listing = t.optional_string("list")
        if listing is not None and listing not in LISTS:
            raise _where(t.here, f"list must be black or red, got {listing!r}")
        if severity == "serious" and listing != "black":
            raise _where(t.here, "a serious basis lists the subject on the blacklist: list = \"black\"")
        if severity == "none" and listing != "red":
            raise _where(t.here, "a basis without severity is a red-list basis: list = \"red\"")
        if severity == "general" and listing is not None:
            raise _where(t.here, "a general basis lists nobody (only serious findings blacklist)")
        basis = FindingBasis(code, t.string("name"), severity, listing, t.integer("months", minimum=1), t.strings("departments"))
        t.finish()
        if code in out:
            raise _where(t.here, f"basis {code!r} is declared twice")
        out[code] = basis
    return out


def _list_rules(raw: Any) -> tuple[ListRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _where("credit.list_rules", "expected an array of tables ([[credit.list_rules]])")
    rules: list[ListRule] = []
    for i, entry in enumerate(raw):
        t = SectionTable(entry, f"credit.list_rules[{i}]")
        listing = t.string("list")
        if listing not in LISTS:
            raise _where(t.here, f"list must be black or red, got {listing!r}")
        conditions_raw = t.raw("conditions")
        if not isinstance(conditions_raw, list) or not conditions_raw:
            raise _where(t.here, "conditions must be a non-empty array")
        rule = ListRule(
            name=t.string("name"),
            list=listing,
            basis=t.string("basis"),
            department=t.string("department"),
            conditions=tuple(Condition.parse(c, f"{t.here}.conditions[{j}]") for j, c in enumerate(conditions_raw)),
            months=t.optional_integer("months", minimum=1),
        )
        if all(c.absent for c in rule.conditions):
            raise _where(t.here, "at least one condition must require a record (exists or in): a rule over absences alone would list every subject")
        t.finish()
        if any(r.name == rule.name for r in rules):
            raise _where(t.here, f"list rule {rule.name!r} is declared twice")
        rules.append(rule)
    return tuple(rules)


def _measures(raw: Any, contexts: Mapping[str, str], bases: Mapping[str, FindingBasis], rules: Sequence[ListRule]) -> tuple[Measure, ...]:
    if not isinstance(raw, list) or not raw:
        raise _where("credit.measures", "expected an array of tables ([[credit.measures]])")
    qualifiers = set(bases) | {r.name for r in rules}
    out: list[Measure] = []
    for i, entry in enumerate(raw):
        t = SectionTable(entry, f"credit.measures[{i}]")
        effect_text = t.string("effect")
        try:
            effect = Effect(effect_text.upper())
        except ValueError:
            raise _where(t.here, f"effect must be PROHIBITED, RESTRICTED or REWARD, got {effect_text!r}") from None
        measure_contexts = t.strings("contexts")
        for context in measure_contexts:
            if context not in contexts:
                raise _where(t.here, f"unknown context {context!r} (declared: {', '.join(contexts)})")
        triggers = tuple(Trigger.parse(text, t.here) for text in t.strings("on"))
        for trigger in triggers:
            if trigger.qualifier is not None and trigger.qualifier not in qualifiers:
                raise _where(t.here, f"trigger {trigger}: no basis or list rule is named {trigger.qualifier!r}")
            rewarding = trigger.source == "redlist"
            if rewarding != (effect is Effect.REWARD):
                raise _where(t.here, f"trigger {trigger}: rewards follow the red list, sanctions the blacklist or findings")
        measure = Measure(t.string("code"), t.string("name"), effect, measure_contexts, t.string("basis"), t.string("department"), triggers)
        t.finish()
        if any(m.code == measure.code for m in out):
            raise _where(t.here, f"measure {measure.code!r} is declared twice")
        out.append(measure)
    return tuple(out)


def _indicator(raw: Any, here: str) -> Indicator:
    t = SectionTable(raw, here)
    kind = t.string("kind")
    if kind not in INDICATOR_KINDS:
        raise _where(here, f"kind must be one of {', '.join(INDICATOR_KINDS)}, got {kind!r}")
    name, label = t.string("name"), t.string("label")
    cap = None if t.raw("cap") is None else t.number("cap")
    if kind == "records":
        family = t.string("family")
        _family(family, here)
        indicator = Indicator(name, label, kind, t.number("points"), cap, filter=RecordFilter.parse(t, family))
    elif kind == "level":
        family = t.string("family")
        _family(family, here)
        field_name = t.string("field")
        _field(family, field_name, here)
        levels = t.raw("levels")
        if not isinstance(levels, dict) or not levels or not all(isinstance(v, (int, float)) for v in levels.values()):
            raise _where(here, "levels must be a table of value = points")
        indicator = Indicator(
            name, label, kind, 0.0, cap, filter=RecordFilter(family), field=field_name,
            levels=tuple(sorted((str(k), float(v)) for k, v in levels.items())),
        )
    elif kind == "listing":
        listing = t.string("list")
        if listing not in LISTS:
            raise _where(here, f"list must be black or red, got {listing!r}")
        indicator = Indicator(name, label, kind, t.number("points"), cap, list=listing)
    elif kind == "finding":
        severity = t.string("severity")
        if severity not in ("general", "serious"):
            raise _where(here, f"severity must be general or serious, got {severity!r}")
        indicator = Indicator(name, label, kind, t.number("points"), cap, severity=severity)
    else:
        indicator = Indicator(name, label, kind, t.number("points"), cap)
    t.finish()
    return indicator


def _rating(raw: Any) -> RatingModel:
    t = SectionTable(raw, "credit.rating")
    thresholds_raw = t.raw("thresholds")
    expected = LEVELS[:-1]
    if not isinstance(thresholds_raw, dict) or sorted(thresholds_raw) != sorted(expected):
        raise _where(t.here, f"thresholds must name exactly {', '.join(expected)} (C is below CC)")
    thresholds = tuple((level, float(thresholds_raw[level])) for level in expected)
    for (high, a), (low, b) in zip(thresholds, thresholds[1:]):
        if not a > b:
            raise _where(t.here, f"thresholds must fall from AAA to CC: {high} = {a} is not above {low} = {b}")
    indicators_raw = t.raw("indicators")
    if not isinstance(indicators_raw, list) or not indicators_raw:
        raise _where(t.here, "indicators must be a non-empty array of tables")
    indicators = tuple(_indicator(r, f"credit.rating.indicators[{i}]") for i, r in enumerate(indicators_raw))
    names = [i.name for i in indicators]
    if len(set(names)) != len(names):
        raise _where(t.here, "indicator names must be distinct")
    industries_raw = t.raw("industries", {})
    if not isinstance(industries_raw, dict):
        raise _where(t.here, "industries must be a table of industry = { indicator = weight }")
    industries: dict[str, dict[str, float]] = {}
    for industry, weights in industries_raw.items():
        if not isinstance(weights, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in weights.values()):
            raise _where(f"credit.rating.industries.{industry}", "expected indicator = weight (numbers)")
        for indicator_name in weights:
            if indicator_name not in names:
                raise _where(f"credit.rating.industries.{industry}", f"unknown indicator {indicator_name!r}")
        industries[industry] = {k: float(v) for k, v in weights.items()}
    model = RatingModel(t.string("version"), t.number("base"), t.number("max_score", 100.0), thresholds, indicators, industries)
    t.finish()
    return model


def _supervision(raw: Any) -> dict[str, SupervisionClass]:
    if not isinstance(raw, dict) or sorted(raw) != ["A", "B", "C"]:
        raise _where("credit.supervision", "expected the classes A, B and C")
    out: dict[str, SupervisionClass] = {}
    covered: list[str] = []
    for code in ("A", "B", "C"):
        t = SectionTable(raw[code], f"credit.supervision.{code}")
        levels = t.strings("levels")
        for level in levels:
            if level not in LEVELS:
                raise _where(t.here, f"unknown level {level!r}")
        covered.extend(levels)
        out[code] = SupervisionClass(code, levels, t.string("approach"), t.integer("inspections_per_year", minimum=0))
        t.finish()
    if sorted(covered) != sorted(LEVELS):
        raise _where("credit.supervision", "the classes must cover each of the nine levels exactly once")
    return out


def _supervising(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _where("credit.supervising", "expected a table of department = [industries]")
    out = {}
    for department, industries in raw.items():
        if not isinstance(industries, list) or not industries or not all(isinstance(i, str) and i for i in industries):
            raise _where(f"credit.supervising.{department}", "expected a non-empty array of industry names")
        out[department] = tuple(industries)
    return out


def parse_credit(raw: Any) -> CreditRules:
    """The `[credit]` section of a policy document; `PolicyError` naming the place of fault."""
    t = SectionTable(raw, "credit")
    contexts = _contexts(t.raw("contexts"))
    bases = _bases(t.raw("bases"))
    list_rules = _list_rules(t.raw("list_rules"))
    rules = CreditRules(
        access=_access(t.raw("access")),
        contexts=contexts,
        bases=bases,
        list_rules=list_rules,
        measures=_measures(t.raw("measures"), contexts, bases, list_rules),
        rating=_rating(t.raw("rating")),
        supervision=_supervision(t.raw("supervision")),
        supervising=_supervising(t.raw("supervising")),
    )
    t.finish()
    return rules


def credit_document(rules: CreditRules) -> dict[str, Any]:
    """The section spelled out: `parse_credit(credit_document(r)) == r`."""
    return {
        "access": rules.access.document(),
        "contexts": dict(rules.contexts),
        "bases": [b.document() for b in rules.bases.values()],
        "list_rules": [r.document() for r in rules.list_rules],
        "measures": [m.document() for m in rules.measures],
        "rating": rules.rating.document(),
        "supervision": {code: c.document() for code, c in rules.supervision.items()},
        "supervising": {d: list(i) for d, i in rules.supervising.items()},
    }


def standard_credit_path() -> Path:
    return Path(__file__).with_name("credit.toml")


@functools.cache
def standard_credit_rules() -> CreditRules:
    """The shipped rules (policies/credit.toml), for a policy document without a `[credit]` section."""
    text = standard_credit_path().read_text(encoding="utf-8")
    return parse_credit(tomllib.loads(text)["credit"])


def section_leaves(prefix: str, value: Any) -> dict[str, str]:
    """`prefix.<key>...: value` lines of a nested table, for diffs: tables by key, arrays of
    tables by position (`#1`), other arrays joined with commas."""
    out: dict[str, str] = {}

    def put(where: str, inner: Any) -> None:
        if isinstance(inner, dict):
            for key, item in inner.items():
                put(f"{where}.{key}", item)
        elif isinstance(inner, list) and inner and all(isinstance(v, dict) for v in inner):
            for i, item in enumerate(inner):
                put(f"{where}#{i + 1}", item)
        elif isinstance(inner, list):
            out[where] = ", ".join(str(v) for v in inner)
        else:
            out[where] = str(inner)

    put(prefix, value)
    return out


def credit_leaves(document: Mapping[str, Any]) -> dict[str, str]:
    """`credit.<part>.<name>.<key>: value` lines of a document's credit section, for diffs:
    bases and measures by code, list rules and indicators by name."""
    section = document.get("credit")
    if section is None:
        section = credit_document(standard_credit_rules())
    out: dict[str, str] = {}
    if not isinstance(section, dict):
        return {"credit": str(section)}

    def put(prefix: str, value: Any) -> None:
        out.update(section_leaves(prefix, value))

    for part, value in section.items():
        if part in ("bases", "measures", "list_rules") and isinstance(value, list):
            key = "name" if part == "list_rules" else "code"
            for entry in value:
                name = entry.get(key, "?") if isinstance(entry, dict) else "?"
                put(f"credit.{part}.{name}", {k: v for k, v in entry.items() if k != key} if isinstance(entry, dict) else entry)
        elif part == "rating" and isinstance(value, dict):
            for key, inner in value.items():
                if key == "indicators" and isinstance(inner, list):
                    for entry in inner:
                        name = entry.get("name", "?") if isinstance(entry, dict) else "?"
                        put(f"credit.rating.indicators.{name}", {k: v for k, v in entry.items() if k != "name"})
                else:
                    put(f"credit.rating.{key}", inner)
        else:
            put(f"credit.{part}", value)
    return out
