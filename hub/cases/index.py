"""The credit environment index (信用环境指数): district indicators per month, and one composite index.

Everything is computed from the hub store — findings, listings, rating snapshots and cases — as
it stands when asked; department records are not read (docs/cases.md says exactly what is
and is not included). A month is a calendar month in Hohhot (UTC+8); "at month end" means on its
last day, or today for the current month (`MonthIndicators.as_of`).

- **Subjects known to the hub** at a day: subjects with a rating snapshot made by then, a
  finding decided by then, or a listing starting by then. The **share with dishonesty
  records**: those among them with a finding in force (decided, within its basis' period, not yet
  revoked) or on the blacklist that day.
- A listing is **current** on a day when `listed_on <= day <= ends_on` (no `ends_on`: open) and
  it had not ended before it: still `listed`, or ended (expired, delisted, repaired, cancelled)
  on a later day (`ended_on`, the first day it no longer counts).
- **Cases** (objections, complaints, repairs) are counted by their filing day and the Hohhot day
  they were closed; a case **due** in a month (its deadline falls in it) was answered **on time**
  when its answer (objection corrected/upheld, complaint resolved/rejected, repair
  approved/refused) came on or before its deadline, **late** when after it or when it is still
  open after it; withdrawn cases and open cases not yet due are left out (`timeliness`).
- The **rating distribution** is each subject's newest snapshot made by month end.
- **Penalties by severity** come from each subject's newest rating snapshot: the penalty records
  the model read (`inputs.penalties`: decision number, decision date, severity) decided in the
  month. The snapshots do not say which department imposed a penalty, so there is no penalty
  count per department.

The composite index is `100 × Σ wᵢ·cᵢ / Σ wᵢ` over the components `cᵢ` (each 0–1) that can be
computed for the month (`WEIGHTS`, `FORMULA_VERSION`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import statistics
from calendar import monthrange
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import CaseEvent, CaseRecord, FindingRecord, ListingRecord, RatingRecord
from xinlian.policies.credit import CreditRules

from .calendar import WorkingCalendar
from .model import OPEN_STATUSES, CaseInputError, hohhot_day

FORMULA_VERSION = "xc-cei-2026.1"
# the components of the composite index and their weights (they sum to 1; not policy data)
WEIGHTS: Mapping[str, float] = {
    "honest_share": 0.30,  # share of known subjects without dishonesty records
    "a_class_share": 0.20,  # share of rated subjects in supervision class A
    "blacklist_density": 0.20,  # 1 - blacklisted subjects per 1,000 / BLACKLIST_CEILING, at least 0
    "objections_on_time": 0.15,  # objections due in the month answered by their deadline
    "complaints_on_time": 0.15,  # complaints due in the month resolved (or rejected) by their deadline
}
BLACKLIST_CEILING = 50.0  # blacklisted subjects per 1,000 at which the density component reaches 0
MAX_MONTHS = 60
DEFAULT_MONTHS = 12
LEVELS = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C")
CLASSES = ("A", "B", "C")
FINDING_SEVERITIES = ("general", "serious")
PENALTY_SEVERITIES = ("轻微", "一般", "严重")  # any other value counts as "other"
# the statuses that answer a case (withdrawn cases were not answered, and are not timed)
ANSWERS: Mapping[str, frozenset[str]] = {
    "objection": frozenset({"corrected", "upheld"}),
    "complaint": frozenset({"resolved", "rejected"}),
    "repair": frozenset({"approved", "refused"}),
}
ON_TIME, LATE = "on_time", "late"
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

FINDINGS = table_of(FindingRecord)
LISTINGS = table_of(ListingRecord)
RATINGS = table_of(RatingRecord)
CASES = table_of(CaseRecord)
CASE_EVENTS = table_of(CaseEvent)


class IndexInputError(CaseInputError):
    """A period asked as it cannot be answered (not YYYY-MM, reversed, too long, in the future)."""

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


# ---- months and periods ---------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month (in Hohhot)."""

    year: int
    month: int

    @classmethod
    def of(cls, day: dt.date) -> "Month":
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str, argument: str) -> "Month":
        match = _MONTH.fullmatch(text.strip())
        if match is None or int(match.group(1)) < 1:
            shown = text if len(text) <= 20 else text[:20] + "…"
            raise IndexInputError(f"{argument}: {shown!r} is not a month (YYYY-MM, e.g. 2026-03)", argument)
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def text(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last(self) -> dt.date:
        return dt.date(self.year, self.month, monthrange(self.year, self.month)[1])

    def plus(self, months: int) -> "Month":
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def minus(self, other: "Month") -> int:
        """Months from `other` to this one."""
        return (self.year - other.year) * 12 + self.month - other.month


@dataclass(frozen=True)
class Window:
    """The months asked: `first` through `last`, at most `MAX_MONTHS`, none after today's month."""

    first: Month
    last: Month

    @property
    def months(self) -> tuple[Month, ...]:
        return tuple(self.first.plus(i) for i in range(self.last.minus(self.first) + 1))

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: dt.date) -> "Window":
        """`from` / `to` as given (YYYY-MM, either may be left out): by default the 12 months up
        to and including the current one; `from` alone runs to the current month, `to` alone
        covers the 12 months ending with it."""
        current = Month.of(today)
        end = Month.parse(last, "to") if last is not None else current
        start = Month.parse(first, "from") if first is not None else end.plus(1 - DEFAULT_MONTHS)
        if end > current:
            raise IndexInputError(f"to: {end.text} is after the current month ({current.text})", "to")
        if start > end:
            raise IndexInputError(f"from: {start.text} is after to ({end.text})", "from")
        if end.minus(start) + 1 > MAX_MONTHS:
            raise IndexInputError(f"from, to: at most {MAX_MONTHS} months ({start.text} to {end.text} is {end.minus(start) + 1})", "from")
        return cls(start, end)


# ---- what the store holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class FindingFact:
    subject: str
    severity: str
    basis: str
    department: str
    decided_on: dt.date
    revoked_on: dt.date | None  # the Hohhot day it was revoked (None: in force)
    revoked: bool

    def in_force(self, rules: CreditRules, day: dt.date) -> bool:
        """Decided by `day`, within its basis' period (an unknown basis: no end, as credit checks
        count it), and not revoked by then."""
        if self.decided_on > day:
            return False
        basis = rules.bases.get(self.basis)
        if basis is not None and day > basis.ends_on(self.decided_on):
            return False
        if self.revoked:
            return self.revoked_on is not None and day < self.revoked_on
        return True


@dataclass(frozen=True)
class ListingFact:
    subject: str
    list: str
    department: str
    listed_on: dt.date
    ends_on: dt.date | None
    status: str
    ended_on: dt.date | None

    def current(self, day: dt.date) -> bool:
        """On the list that day (the module docstring): an ended listing counts up to the day
        before `ended_on`; one ended with no recorded day does not count."""
        if day < self.listed_on or (self.ends_on is not None and day > self.ends_on):
            return False
        if self.status == "listed":
            return True
        return self.ended_on is not None and day < self.ended_on


@dataclass(frozen=True)
class CaseFact:
    id: int
    kind: str
    subject: str | None
    department: str | None
    status: str
    families: tuple[str, ...]
    filed_on: dt.date
    closed_on: dt.date | None  # the Hohhot day it was closed
    deadline: dt.date | None  # its deadline (the last one set: a complaint's runs from its assignment)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES.get(self.kind, frozenset())

    def timeliness(self, today: dt.date) -> str | None:
        """ON_TIME, LATE, or None: not timed (withdrawn, no deadline, open and not yet overdue)."""
        if self.deadline is None:
            return None
        if self.is_open:
            return LATE if today > self.deadline else None
        if self.status not in ANSWERS.get(self.kind, frozenset()) or self.closed_on is None:
            return None
        return ON_TIME if self.closed_on <= self.deadline else LATE


@dataclass(frozen=True)
class RatingFact:
    subject: str
    level: str
    supervision_class: str


@dataclass(frozen=True)
class PenaltyFact:
    subject: str
    decided_on: dt.date
    severity: str


@dataclass
class IndexFacts:
    """The store's findings, listings, cases, the newest snapshot's industry and penalties per
    subject, and the rating each subject had at each month end asked."""

    findings: list[FindingFact] = field(default_factory=list)
    listings: list[ListingFact] = field(default_factory=list)
    cases: list[CaseFact] = field(default_factory=list)
    industries: dict[str, str] = field(default_factory=dict)
    penalties: list[PenaltyFact] = field(default_factory=list)
    ratings: dict[dt.date, list[RatingFact]] = field(default_factory=dict)


def as_of(month: Month, today: dt.date) -> dt.date:
    """The day a month's "at month end" figures are taken: its last day, or today for the current month."""
    return min(month.last, today)


async def load_facts(store: Store, days: Iterable[dt.date]) -> IndexFacts:
    """Read what the indicators need; ratings as of each of `days`."""
    facts = IndexFacts()
    async with store.engine.connect() as conn:
        facts.findings = await _findings(conn)
        facts.listings = await _listings(conn)
        facts.cases = await _cases(conn)
        facts.industries, facts.penalties = await _newest_snapshots(conn)
        for day in sorted(set(days)):
            facts.ratings[day] = await _ratings_at(conn, day)
    return facts


async def _findings(conn: AsyncConnection) -> list[FindingFact]:
    f = FINDINGS.c
    rows = await conn.execute(select(f.subject, f.severity, f.basis, f.department, f.decided_on, f.status, f.revoked_at))
    return [
        FindingFact(r.subject, r.severity, r.basis, r.department, r.decided_on,
                    hohhot_day(r.revoked_at) if r.revoked_at is not None else None, r.status == "revoked")
        for r in rows
    ]


async def _listings(conn: AsyncConnection) -> list[ListingFact]:
    c = LISTINGS.c
    rows = await conn.execute(select(c.subject, c.list, c.department, c.listed_on, c.ends_on, c.status, c.ended_on))
    return [ListingFact(r.subject, r.list, r.department, r.listed_on, r.ends_on, r.status, r.ended_on) for r in rows]


async def _cases(conn: AsyncConnection) -> list[CaseFact]:
    c, e = CASES.c, CASE_EVENTS.c
    last_set: dict[int, dt.date] = {}
    for case_id, deadline in await conn.execute(select(e.case_id, e.deadline).where(e.deadline.is_not(None)).order_by(e.id)):
        last_set[int(case_id)] = deadline
    rows = await conn.execute(select(c.id, c.kind, c.subject, c.department, c.status, c.records, c.filed_on, c.closed_at, c.deadline))
    out = []
    for r in rows:
        families = tuple(dict.fromkeys(str(ref.get("family", "")) for ref in json.loads(r.records or "[]")))
        out.append(CaseFact(
            int(r.id), r.kind, r.subject, r.department, r.status, families, r.filed_on,
            hohhot_day(r.closed_at) if r.closed_at is not None else None,
            r.deadline if r.deadline is not None else last_set.get(int(r.id)),
        ))
    return out


async def _newest_snapshots(conn: AsyncConnection) -> tuple[dict[str, str], list[PenaltyFact]]:
    """Each subject's industry and the penalties its newest rating snapshot read."""
    r = RATINGS.c
    newest = select(func.max(r.id)).group_by(r.subject).scalar_subquery()
    industries: dict[str, str] = {}
    penalties: list[PenaltyFact] = []
    for subject, industry, explanation in await conn.execute(select(r.subject, r.industry, r.explanation).where(r.id.in_(newest))):
        industries[subject] = industry or ""
        penalties.extend(snapshot_penalties(subject, explanation))
    return industries, penalties


def snapshot_penalties(subject: str, explanation: str) -> list[PenaltyFact]:
    """The penalty records a snapshot's inputs hold (those with a readable decision date)."""
    try:
        stored = json.loads(explanation)
    except ValueError:
        return []
    inputs = stored.get("inputs", {}) if isinstance(stored, dict) else {}
    out = []
    for record in inputs.get("penalties", []) if isinstance(inputs, dict) else []:
        try:
            decided = dt.date.fromisoformat(str(record.get("decision_date")))
        except ValueError:
            continue
        out.append(PenaltyFact(subject, decided, str(record.get("severity", ""))))
    return out


async def _ratings_at(conn: AsyncConnection, day: dt.date) -> list[RatingFact]:
    r = RATINGS.c
    newest = select(func.max(r.id)).where(r.rated_on <= day).group_by(r.subject).scalar_subquery()
    rows = await conn.execute(select(r.subject, r.level, r.supervision_class).where(r.id.in_(newest)))
    return [RatingFact(s, level, cls) for s, level, cls in rows]


# ---- one month ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthIndicators:
    """The district's indicators of one month (see the module docstring for each definition)."""

    month: str
    as_of: dt.date
    subjects_known: int
    subjects_rated: int
    subjects_with_dishonesty: int
    dishonesty_share: float | None
    findings: Mapping[str, int]  # by severity (general, serious), decided in the month, not revoked
    findings_by_department: Mapping[tuple[str, str], int]  # (department, severity)
    blacklist_size: int  # subjects on the blacklist at month end
    red_list_size: int
    blacklist_per_1000: float | None
    cases: Mapping[str, int]  # "<kind>_<filed|closed|due|on_time|late>", objections_corrected, repairs_approved, complaints_resolved
    complaint_median_working_days: float | None
    levels: Mapping[str, int]  # LEVELS
    classes: Mapping[str, int]  # CLASSES
    penalties: Mapping[str, int]  # PENALTY_SEVERITIES and "other"
    components: Mapping[str, float | None]  # WEIGHTS' keys
    index: float | None


def known_subjects(facts: IndexFacts, day: dt.date) -> set[str]:
    """Subjects known to the hub at `day`: rated, found or listed by then."""
    known = {r.subject for r in facts.ratings.get(day, ())}
    known.update(f.subject for f in facts.findings if f.decided_on <= day)
    known.update(x.subject for x in facts.listings if x.listed_on <= day)
    return known


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def composite(components: Mapping[str, float | None]) -> float | None:
    """`100 × Σ wᵢ·cᵢ / Σ wᵢ` over the components that could be computed, to 2 decimals."""
    present = {k: v for k, v in components.items() if v is not None}
    weight = sum(WEIGHTS[k] for k in present)
    if not present or weight == 0:
        return None
    return round(100 * sum(WEIGHTS[k] * v for k, v in present.items()) / weight, 2)


def _case_counts(cases: Sequence[CaseFact], first: dt.date, last: dt.date, today: dt.date) -> dict[str, int]:
    end = min(last, today)
    out: dict[str, int] = {}
    for kind in ("objection", "complaint", "repair"):
        mine = [c for c in cases if c.kind == kind]
        timed = [c.timeliness(today) for c in mine if c.deadline is not None and first <= c.deadline <= last]
        out[f"{kind}s_filed"] = sum(1 for c in mine if first <= c.filed_on <= end)
        out[f"{kind}s_closed"] = sum(1 for c in mine if c.closed_on is not None and first <= c.closed_on <= end)
        out[f"{kind}s_due"] = sum(1 for t in timed if t is not None)
        out[f"{kind}s_on_time"] = sum(1 for t in timed if t == ON_TIME)
    for kind, status, name in (("objection", "corrected", "objections_corrected"), ("repair", "approved", "repairs_approved"),
                               ("complaint", "resolved", "complaints_resolved")):
        out[name] = sum(1 for c in cases if c.kind == kind and c.status == status and c.closed_on is not None
                        and first <= c.closed_on <= end)
    return out


def month_indicators(
    facts: IndexFacts, month: Month, today: dt.date, rules: CreditRules, calendar: WorkingCalendar,
    subjects: set[str] | None = None,
) -> MonthIndicators:
    """One month's indicators, over every subject or only `subjects` (an industry's)."""
    day = as_of(month, today)
    first = month.first

    def keep(subject: str | None) -> bool:
        return subjects is None or (subject is not None and subject in subjects)

    known = {s for s in known_subjects(facts, day) if keep(s)}
    ratings = [r for r in facts.ratings.get(day, ()) if keep(r.subject)]
    dishonest = {f.subject for f in facts.findings if keep(f.subject) and f.in_force(rules, day)}
    black = {x.subject for x in facts.listings if x.list == "black" and keep(x.subject) and x.current(day)}
    red = {x.subject for x in facts.listings if x.list == "red" and keep(x.subject) and x.current(day)}
    dishonest |= black
    decided = [f for f in facts.findings if keep(f.subject) and not f.revoked and first <= f.decided_on <= day]
    by_department: dict[tuple[str, str], int] = {}
    for f in decided:
        by_department[(f.department, f.severity)] = by_department.get((f.department, f.severity), 0) + 1
    cases = [c for c in facts.cases if keep(c.subject)]
    resolved = [c for c in cases if c.kind == "complaint" and c.status == "resolved" and c.closed_on is not None
                and first <= c.closed_on <= day]
    days = [calendar.working_days_between(c.filed_on, c.closed_on) for c in resolved if c.closed_on is not None]
    counts = _case_counts(cases, first, month.last, today)
    penalties = {s: 0 for s in (*PENALTY_SEVERITIES, "other")}
    for p in facts.penalties:
        if keep(p.subject) and first <= p.decided_on <= day:
            key = p.severity if p.severity in PENALTY_SEVERITIES else "other"
            penalties[key] += 1
    classes = {c: sum(1 for r in ratings if r.supervision_class == c) for c in CLASSES}
    per_1000 = 1000 * len(black) / len(known) if known else None
    components: dict[str, float | None] = {
        "honest_share": None if not known else 1 - len(dishonest & known) / len(known),
        "a_class_share": share(classes["A"], len(ratings)),
        "blacklist_density": None if per_1000 is None else max(0.0, 1 - per_1000 / BLACKLIST_CEILING),
        "objections_on_time": share(counts["objections_on_time"], counts["objections_due"]),
        "complaints_on_time": share(counts["complaints_on_time"], counts["complaints_due"]),
    }
    return MonthIndicators(
        month=month.text, as_of=day, subjects_known=len(known), subjects_rated=len(ratings),
        subjects_with_dishonesty=len(dishonest & known), dishonesty_share=share(len(dishonest & known), len(known)),
        findings={s: sum(1 for f in decided if f.severity == s) for s in FINDING_SEVERITIES},
        findings_by_department=dict(sorted(by_department.items())),
        blacklist_size=len(black), red_list_size=len(red), blacklist_per_1000=per_1000,
        cases=counts, complaint_median_working_days=float(statistics.median(days)) if days else None,
        levels={lv: sum(1 for r in ratings if r.level == lv) for lv in LEVELS}, classes=classes, penalties=penalties,
        components=components, index=composite(components),
    )


# ---- the index ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentIndex:
    """The indicators of every month asked, and the formula they were combined with."""

    first: str
    last: str
    industry: str | None
    months: tuple[MonthIndicators, ...]
    formula_version: str = FORMULA_VERSION
    weights: Mapping[str, float] = field(default_factory=lambda: dict(WEIGHTS))


def compute_index(
    facts: IndexFacts, window: Window, today: dt.date, rules: CreditRules, calendar: WorkingCalendar,
    industry: str | None = None,
) -> EnvironmentIndex:
    """The index over `facts` (pure: what `environment_index` reads, worked out)."""
    subjects = None if industry is None else {s for s, i in facts.industries.items() if i == industry}
    months = tuple(month_indicators(facts, m, today, rules, calendar, subjects) for m in window.months)
    return EnvironmentIndex(window.first.text, window.last.text, industry, months)


async def environment_index(
    store: Store, rules: CreditRules, calendar: WorkingCalendar, window: Window, today: dt.date, industry: str | None = None,
) -> EnvironmentIndex:
    """The credit environment index of `window`, from the hub store as it stands."""
    facts = await load_facts(store, (as_of(m, today) for m in window.months))
    return compute_index(facts, window, today, rules, calendar, industry)


# ---- CSV ----------------------------------------------------------------------------------------

CASE_COLUMNS = tuple(
    f"{kind}s_{what}" for kind in ("objection", "repair", "complaint") for what in ("filed", "closed", "due", "on_time")
) + ("objections_corrected", "repairs_approved", "complaints_resolved")


def csv_columns(result: EnvironmentIndex) -> list[str]:
    """The CSV's columns: fixed ones, then one per (department, finding severity) seen."""
    departments = sorted({key for m in result.months for key in m.findings_by_department})
    return [
        "month", "as_of", "industry", "formula_version", "index", "subjects_known", "subjects_rated",
        "subjects_with_dishonesty", "dishonesty_share", "findings_general", "findings_serious", "blacklist_size",
        "red_list_size", "blacklist_per_1000", *CASE_COLUMNS, "complaint_median_working_days",
        *(f"level_{lv}" for lv in LEVELS), *(f"class_{c}" for c in CLASSES),
        *(f"penalties_{s}" for s in (*PENALTY_SEVERITIES, "other")), *(f"component_{k}" for k in WEIGHTS),
        *(f"findings_{d}_{s}" for d, s in departments),
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_row(result: EnvironmentIndex, m: MonthIndicators) -> dict[str, Any]:
    row: dict[str, Any] = {
        "month": m.month, "as_of": m.as_of.isoformat(), "industry": result.industry, "formula_version": result.formula_version,
        "index": m.index, "subjects_known": m.subjects_known, "subjects_rated": m.subjects_rated,
        "subjects_with_dishonesty": m.subjects_with_dishonesty, "dishonesty_share": m.dishonesty_share,
        "findings_general": m.findings["general"], "findings_serious": m.findings["serious"],
        "blacklist_size": m.blacklist_size, "red_list_size": m.red_list_size, "blacklist_per_1000": m.blacklist_per_1000,
        "complaint_median_working_days": m.complaint_median_working_days,
    }
    row.update({c: m.cases[c] for c in CASE_COLUMNS})
    row.update({f"level_{k}": v for k, v in m.levels.items()})
    row.update({f"class_{k}": v for k, v in m.classes.items()})
    row.update({f"penalties_{k}": v for k, v in m.penalties.items()})
    row.update({f"component_{k}": v for k, v in m.components.items()})
    row.update({f"findings_{d}_{s}": n for (d, s), n in m.findings_by_department.items()})
    return row


def index_csv(result: EnvironmentIndex) -> str:
    """The index as CSV: a header row, one row per month; empty cells for what could not be
    computed, 0 for a department with no finding of a severity that month."""
    columns = csv_columns(result)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for m in result.months:
        row = csv_row(result, m)
        writer.writerow([_cell(row.get(c, 0 if c.startswith("findings_") else None)) for c in columns])
    return out.getvalue()
