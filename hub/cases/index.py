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

**Audiences.** The credit office (`OFFICE`: the admin API, the CLI) sees every figure. Everyone
else (`PUBLIC`: `/graphql` and `/public/graphql`) sees figures that cannot single a subject out
(`MIN_SUBJECTS`, `public_pattern`): a month of fewer than 5 subjects known (the district's, or
an industry's) shows nothing; in an industry's answer a figure counting 1 to 4 subjects is
suppressed, and so are the figures that would give it back by subtraction (other cells of the
same breakdown, the same figure of other industries against the district's total) and the shares
computed from it; complaint figures are never shown per industry. A suppressed figure is null,
with its reason in `MonthIndicators.suppressed` (`REASONS`).

**Cache.** `IndexCache` keeps the store's facts and each closed month's table in memory while
the store's version (`store_version`: the change counters of `credit_findings`,
`credit_listings` and `cases`, and the newest rating snapshot's id — `credit_ratings` has no
change trigger, snapshots are only ever added) is unchanged, and for at most `CACHE_TTL`
seconds (a snapshot removed by hand is seen within that); the current month is computed on every
call. The rating each subject had at each month end is read in one grouped pass
(`_ratings_at_days`), not one query per month.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
import statistics
import time
import weakref
from calendar import monthrange
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import (
    CaseEvent,
    CaseRecord,
    ChangeGeneration,
    FindingRecord,
    ListingRecord,
    RatingRecord,
)
from xinlian.hub.store.times import as_utc
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

# ---- who sees what
MIN_SUBJECTS = 5  # K: outside the credit office, no figure is shown that counts fewer subjects
OFFICE, PUBLIC = "office", "public"  # the credit office (admin API, CLI); everyone else (/graphql, /public/graphql)
AUDIENCES = (OFFICE, PUBLIC)
POPULATION, SMALL, COMPLEMENT, DERIVED, COMPLAINTS = "population", "small", "complement", "derived", "complaints"
REASONS: Mapping[str, str] = {
    POPULATION: f"fewer than {MIN_SUBJECTS} subjects known in the month: nothing of it is shown",
    SMALL: f"counts 1 to {MIN_SUBJECTS - 1} subjects",
    COMPLEMENT: "suppressed so that a suppressed figure cannot be worked out by subtraction",
    DERIVED: "computed from a suppressed figure",
    COMPLAINTS: "complaint figures are not published per industry",
}

# ---- the cache
CACHE_TTL = 600.0  # seconds a loaded store is trusted without re-reading it (credit_ratings has no change trigger)
WATCHED_TOPICS = ("credit_findings", "credit_listings", "cases")  # the change feed's topics that feed the index

FINDINGS = table_of(FindingRecord)
LISTINGS = table_of(ListingRecord)
RATINGS = table_of(RatingRecord)
CASES = table_of(CaseRecord)
CASE_EVENTS = table_of(CaseEvent)
GENERATIONS = table_of(ChangeGeneration)


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

    def last_day(self, rules: CreditRules) -> dt.date | None:
        """The last day it is in force (None: open); before `decided_on` when it never was."""
        basis = rules.bases.get(self.basis)
        last = basis.ends_on(self.decided_on) if basis is not None else None
        if self.revoked:
            if self.revoked_on is None:
                return self.decided_on - dt.timedelta(days=1)
            before = self.revoked_on - dt.timedelta(days=1)
            last = before if last is None else min(last, before)
        return last


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


@dataclass(frozen=True, slots=True)
class RatingFact:
    subject: str
    level: str
    supervision_class: str


@dataclass(frozen=True)
class NewestRating:
    """A subject's newest rating snapshot: its day, level and class."""

    rated_on: dt.date
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
    newest: dict[str, NewestRating] = field(default_factory=dict)


def as_of(month: "Month", today: dt.date) -> dt.date:
    """The day a month's "at month end" figures are taken: its last day, or today for the current month."""
    return min(month.last, today)


def store_day(moment: dt.datetime) -> dt.date:
    """The Hohhot day of a time read back from the store (SQLite hands them back naive: UTC)."""
    return hohhot_day(as_utc(moment))


async def load_facts(store: Store, days: Iterable[dt.date]) -> IndexFacts:
    """Read what the indicators need; ratings as of each of `days`."""
    async with store.engine.connect() as conn:
        facts = await _base_facts(conn)
        facts.ratings = await _ratings_at_days(conn, facts, days)
    return facts


async def _base_facts(conn: AsyncConnection) -> IndexFacts:
    """Everything but the ratings at given days."""
    facts = IndexFacts()
    facts.findings = await _findings(conn)
    facts.listings = await _listings(conn)
    facts.cases = await _cases(conn)
    facts.industries, facts.penalties, facts.newest = await _newest_snapshots(conn)
    return facts


async def _findings(conn: AsyncConnection) -> list[FindingFact]:
    f = FINDINGS.c
    rows = await conn.execute(select(f.subject, f.severity, f.basis, f.department, f.decided_on, f.status, f.revoked_at))
    return [
        FindingFact(r.subject, r.severity, r.basis, r.department, r.decided_on,
                    store_day(r.revoked_at) if r.revoked_at is not None else None, r.status == "revoked")
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
            store_day(r.closed_at) if r.closed_at is not None else None,
            r.deadline if r.deadline is not None else last_set.get(int(r.id)),
        ))
    return out


async def _newest_snapshots(conn: AsyncConnection) -> tuple[dict[str, str], list[PenaltyFact], dict[str, NewestRating]]:
    """Each subject's industry, the penalties its newest rating snapshot read, and that snapshot's rating."""
    r = RATINGS.c
    newest = select(func.max(r.id)).group_by(r.subject).scalar_subquery()
    industries: dict[str, str] = {}
    penalties: list[PenaltyFact] = []
    ratings: dict[str, NewestRating] = {}
    query = select(r.subject, r.industry, r.explanation, r.rated_on, r.level, r.supervision_class).where(r.id.in_(newest))
    for subject, industry, explanation, rated_on, level, cls in await conn.execute(query):
        industries[subject] = industry or ""
        penalties.extend(snapshot_penalties(subject, explanation))
        ratings[subject] = NewestRating(rated_on, level, cls)
    return industries, penalties, ratings


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


def grouped_days(facts: IndexFacts, days: Iterable[dt.date]) -> list[dt.date]:
    """The days (sorted) before some subject's newest snapshot: their ratings need the snapshots grouped."""
    latest = max((n.rated_on for n in facts.newest.values()), default=None)
    return sorted({d for d in days if latest is not None and d < latest})


async def _ratings_at_days(conn: AsyncConnection, facts: IndexFacts, days: Iterable[dt.date]) -> dict[dt.date, list[RatingFact]]:
    """Each subject's newest snapshot made by each of `days`, in one grouped pass over the snapshots.

    A day on or after every subject's newest snapshot (today, usually) takes the newest snapshots
    already read (`facts.newest`). The others: the snapshots are put in buckets (bucket k: made
    after day k-1, by day k), the newest per subject and bucket is read (one GROUP BY), and the
    newest by day k is the newest of the buckets up to k."""
    wanted = sorted(set(days))
    out: dict[dt.date, list[RatingFact]] = {}
    rest = grouped_days(facts, wanted)
    for day in wanted:
        if day not in rest:
            out[day] = [RatingFact(s, n.level, n.supervision_class) for s, n in facts.newest.items() if n.rated_on <= day]
    if not rest:
        return out
    r = RATINGS.c

    def bucket(low: int, high: int) -> Any:  # the first day a snapshot was made by, as a binary search (log₂ tests a row)
        if low == high:
            return literal_column(str(low))
        mid = (low + high) // 2
        return case((r.rated_on <= rest[mid], bucket(low, mid)), else_=bucket(mid + 1, high))

    placed = select(r.id, r.subject, bucket(0, len(rest) - 1).label("bucket")).where(r.rated_on <= rest[-1]).subquery("placed")
    newest = (select(func.max(placed.c.id).label("id"), placed.c.bucket)
              .group_by(placed.c.subject, placed.c.bucket).subquery("newest"))
    rows = await conn.execute(
        select(r.subject, newest.c.bucket, r.id, r.level, r.supervision_class).join(newest, r.id == newest.c.id)
    )
    per_subject: dict[str, list[tuple[int, int, str, str]]] = {}
    for subject, k, snapshot, level, cls in rows:
        per_subject.setdefault(subject, []).append((int(k), int(snapshot), level, cls))
    lists: list[list[RatingFact]] = [[] for _ in rest]
    for subject, found in per_subject.items():
        found.sort()  # by bucket: one entry per bucket
        best, fact = -1, None
        for i, (k, snapshot, level, cls) in enumerate(found):
            if snapshot > best:
                best, fact = snapshot, RatingFact(subject, level, cls)
            for j in range(k, found[i + 1][0] if i + 1 < len(found) else len(rest)):
                lists[j].append(fact)  # type: ignore[arg-type]  # set on the first entry
    out.update(zip(rest, lists))
    return out


async def store_version(store: Store) -> tuple[Any, ...] | None:
    """What changes when the index's facts change: the change counters of `WATCHED_TOPICS` and
    the newest rating snapshot's id (snapshots are only added); None when it cannot be read."""
    try:
        async with store.engine.connect() as conn:
            g = GENERATIONS.c
            rows = await conn.execute(select(g.topic, g.generation).where(g.topic.in_(WATCHED_TOPICS)))
            counters = dict((str(t), int(n)) for t, n in rows)
            newest = (await conn.execute(select(func.max(RATINGS.c.id)))).scalar()
    except SQLAlchemyError:
        return None
    if set(counters) != set(WATCHED_TOPICS):  # a store without the triggers: nothing tells of changes
        return None
    return (*(counters[t] for t in WATCHED_TOPICS), int(newest or 0))


# ---- one month ----------------------------------------------------------------------------------

Cell = Union[str, tuple[str, str]]  # a figure (its CSV column), or (department, severity): findings of one department

CASE_COLUMNS = tuple(
    f"{kind}s_{what}" for kind in ("objection", "repair", "complaint") for what in ("filed", "closed", "due", "on_time")
) + ("objections_corrected", "repairs_approved", "complaints_resolved")
OUTCOMES: Mapping[str, tuple[str, str]] = {  # kind: (the status counted, its column)
    "objection": ("corrected", "objections_corrected"), "repair": ("approved", "repairs_approved"),
    "complaint": ("resolved", "complaints_resolved"),
}
SUBJECT_CELLS = ("subjects_known", "subjects_rated", "subjects_with_dishonesty", "blacklist_size", "red_list_size")
MEDIAN = "complaint_median_working_days"
COUNT_CELLS: tuple[str, ...] = (
    *SUBJECT_CELLS, "findings_general", "findings_serious", *CASE_COLUMNS, *(f"level_{lv}" for lv in LEVELS),
    *(f"class_{c}" for c in CLASSES), *(f"penalties_{s}" for s in (*PENALTY_SEVERITIES, "other")),
)
COMPLAINT_CELLS = frozenset({c for c in CASE_COLUMNS if c.startswith("complaint")} | {MEDIAN})


def column(cell: Cell) -> str:
    """A figure's CSV column (`findings_<department>_<severity>` for a department's findings)."""
    return cell if isinstance(cell, str) else f"findings_{cell[0]}_{cell[1]}"


@dataclass
class Cells:
    """The figures of one group of subjects in a month (an industry, the district): each count,
    how many distinct subjects are behind it, and the working days of the complaints resolved."""

    counts: dict[Cell, int] = field(default_factory=dict)
    subjects: dict[Cell, int] = field(default_factory=dict)
    complaint_days: list[int] = field(default_factory=list)

    def count(self, cell: Cell) -> int:
        return self.counts.get(cell, 0)

    @classmethod
    def merged(cls, parts: Iterable["Cells"]) -> "Cells":
        """Groups of disjoint subjects together (the district: every industry and the subjects without one)."""
        out = cls()
        for part in parts:
            for key, n in part.counts.items():
                out.counts[key] = out.counts.get(key, 0) + n
            for key, n in part.subjects.items():
                out.subjects[key] = out.subjects.get(key, 0) + n
            out.complaint_days.extend(part.complaint_days)
        return out


@dataclass
class MonthTable:
    """A month's figures per group of subjects — each industry (by its newest rating snapshot;
    "" rated without one) and None (never rated, or no subject: a complaint naming nobody) — and
    the district's; what the public may see of each industry is worked out once (`public_hidden`)."""

    month: "Month"
    as_of: dt.date
    groups: dict[str | None, Cells]
    district: Cells
    answers: dict[tuple[str | None, str], "MonthIndicators"] = field(default_factory=dict)
    _public: dict[str, dict[Cell, str]] | None = None

    def public_hidden(self) -> dict[str, dict[Cell, str]]:
        if self._public is None:
            self._public = public_pattern(self.groups)
        return self._public


FindingSpan = tuple[str, dt.date, "dt.date | None"]  # subject, first and last day in force (None: open)


def finding_spans(facts: IndexFacts, rules: CreditRules) -> list[FindingSpan]:
    return [(f.subject, f.decided_on, f.last_day(rules)) for f in facts.findings]


LEVEL_CELLS = {lv: f"level_{lv}" for lv in LEVELS}
CLASS_CELLS = {c: f"class_{c}" for c in CLASSES}
PENALTY_CELLS = {s: f"penalties_{s}" for s in PENALTY_SEVERITIES}
HONEST = "subjects_honest"  # known subjects without dishonesty records: never shown (see PAIRS)
SUBJECT_COUNTED = frozenset((*SUBJECT_CELLS, HONEST, *LEVEL_CELLS.values(), *CLASS_CELLS.values()))  # one per subject: count = subjects
# figures shown side by side whose difference is a figure of its own, never shown but worked out by
# subtraction: (the whole, the part shown, the rest). When the rest counts 1 to MIN_SUBJECTS - 1
# subjects in an industry's public answer, the part is suppressed (complaints: never shown per industry)
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("subjects_known", "subjects_with_dishonesty", HONEST),
    *((f"{k}s_due", f"{k}s_on_time", f"{k}s_late") for k in ("objection", "repair")),
    ("objections_closed", "objections_corrected", "objections_closed_otherwise"),
    ("repairs_closed", "repairs_approved", "repairs_closed_otherwise"),
)


def month_table(
    facts: IndexFacts, month: "Month", today: dt.date, rules: CreditRules, calendar: WorkingCalendar,
    spans: Sequence[FindingSpan] | None = None,
) -> MonthTable:
    """One month's figures per group (the module docstring defines each); `facts.ratings` must
    hold the month's `as_of` day."""
    day, first, last = as_of(month, today), month.first, month.last
    group = facts.industries.get
    counts: Counter[tuple[str | None, Cell]] = Counter()
    who: dict[tuple[str | None, Cell], set[str]] = {}  # the subjects behind a count of records
    days: dict[str | None, list[int]] = {}

    def record(subject: str | None, cell: Cell, by: str) -> None:
        key = (group(subject) if subject is not None else None, cell)
        counts[key] += 1
        who.setdefault(key, set()).add(by)

    ratings = facts.ratings.get(day, [])
    known = known_subjects(facts, day)
    black = {x.subject for x in facts.listings if x.list == "black" and x.current(day)}
    red = {x.subject for x in facts.listings if x.list == "red" and x.current(day)}
    in_force = {s for s, start, end in (spans if spans is not None else finding_spans(facts, rules))
                if start <= day and (end is None or day <= end)}
    dishonest = (in_force | black) & known
    for cell, subjects in (("subjects_known", known), ("subjects_with_dishonesty", dishonest), (HONEST, known - dishonest),
                           ("blacklist_size", black), ("red_list_size", red)):
        counts.update((group(s), cell) for s in subjects)
    counts.update((group(r.subject), "subjects_rated") for r in ratings)
    counts.update((group(r.subject), LEVEL_CELLS[r.level]) for r in ratings if r.level in LEVEL_CELLS)
    counts.update((group(r.subject), CLASS_CELLS[r.supervision_class]) for r in ratings if r.supervision_class in CLASS_CELLS)
    for f in facts.findings:
        if not f.revoked and first <= f.decided_on <= day:
            if f.severity in FINDING_SEVERITIES:
                record(f.subject, f"findings_{f.severity}", f.subject)
            record(f.subject, (f.department, f.severity), f.subject)
    for c in facts.cases:
        if c.kind not in OUTCOMES:
            continue
        by = c.subject if c.subject is not None else f"case {c.id}"
        if first <= c.filed_on <= day:
            record(c.subject, f"{c.kind}s_filed", by)
        if c.closed_on is not None and first <= c.closed_on <= day:
            record(c.subject, f"{c.kind}s_closed", by)
            status, outcome = OUTCOMES[c.kind]
            if c.status != status:
                record(c.subject, f"{c.kind}s_closed_otherwise", by)
            else:
                record(c.subject, outcome, by)
                if c.kind == "complaint":
                    g = group(c.subject) if c.subject is not None else None
                    days.setdefault(g, []).append(calendar.working_days_between(c.filed_on, c.closed_on))
        if c.deadline is not None and first <= c.deadline <= last:
            mark = c.timeliness(today)
            if mark is not None:
                record(c.subject, f"{c.kind}s_due", by)
                record(c.subject, f"{c.kind}s_on_time" if mark == ON_TIME else f"{c.kind}s_late", by)
    for p in facts.penalties:
        if first <= p.decided_on <= day:
            record(p.subject, PENALTY_CELLS.get(p.severity, "penalties_other"), p.subject)
    groups: dict[str | None, Cells] = {g: Cells(complaint_days=d) for g, d in days.items()}
    for (g, key), n in counts.items():
        cells = groups.get(g)
        if cells is None:
            cells = groups[g] = Cells()
        cells.counts[key] = n
        cells.subjects[key] = n if key in SUBJECT_COUNTED else len(who[(g, key)])
    return MonthTable(month, day, groups, Cells.merged(groups.values()))


# ---- what the public may see --------------------------------------------------------------------


def population_hidden(departments: Iterable[Cell] = ()) -> dict[Cell, str]:
    """Every figure of a month with fewer than `MIN_SUBJECTS` subjects known."""
    return {**{c: POPULATION for c in (*COUNT_CELLS, MEDIAN)}, **{d: POPULATION for d in departments}}


def _lines(departments: Sequence[tuple[str, str]]) -> list[tuple[Cell, list[Cell]]]:
    """The breakdowns of one answer whose cells add up to a figure shown beside them."""
    lines: list[tuple[Cell, list[Cell]]] = [
        ("subjects_rated", [f"level_{lv}" for lv in LEVELS]),
        ("subjects_rated", [f"class_{c}" for c in CLASSES]),
    ]
    lines.extend((f"findings_{s}", [d for d in departments if d[1] == s]) for s in FINDING_SEVERITIES)
    return lines


def _protect(
    values: Sequence[int], hidden: Sequence[bool], total_hidden: bool, minimum: int, may_hide_total: bool = False,
) -> list[int]:
    """Which more cells of a line (cells adding up to a total) to suppress so that none of its
    suppressed cells can be worked out: at least two unknowns (the total counts as one when it
    is suppressed) and, when the total is shown, suppressed cells counting at least `minimum`
    subjects together (`values`: the subjects behind each cell) — the smallest shown non-zero
    cells first (a zero one only to make two unknowns). When the line has no cell left to give
    and `may_hide_total`, the total is suppressed (`len(values)` among the picks): a line of one
    department, say, whose one cell would otherwise be its total."""
    chosen: list[int] = []
    hide = {i for i, h in enumerate(hidden) if h}
    if not hide and not total_hidden:
        return chosen
    while True:
        more = len(hide) + total_hidden < 2
        mass = not total_hidden and sum(values[i] for i in hide) < minimum
        if not more and not mass:
            return chosen
        shown = [i for i in range(len(values)) if i not in hide]
        nonzero = [i for i in shown if values[i] > 0]
        if nonzero:
            pick = min(nonzero, key=lambda i: (values[i], i))
        elif more and shown:
            pick = shown[0]
        else:
            if may_hide_total and not total_hidden:
                chosen.append(len(values))
            return chosen
        hide.add(pick)
        chosen.append(pick)


def public_pattern(groups: Mapping[str | None, Cells], minimum: int = MIN_SUBJECTS) -> dict[str, dict[Cell, str]]:
    """What each industry's answer may not show the public in a month, and why (`REASONS`).

    1. An industry with fewer than `minimum` subjects known (none included) shows nothing.
    2. Any other figure counting 1 to `minimum - 1` distinct subjects is suppressed (SMALL).
    3. Complements (COMPLEMENT), until nothing changes: in each breakdown that adds up to a
       figure shown beside it (levels and classes to `subjectsRated`, one severity's findings by
       department to that severity's findings) and in each figure across the industries (which
       add up to the district's figure, shown), a line with a suppressed cell gets at least two,
       counting together at least `minimum` subjects where the line allows it (`_protect`).
       Subjects without an industry (never rated, or rated without one) are never shown on their
       own: in a line across the industries they are one more unknown when they count any. And
       where two figures shown side by side give a third by subtraction (`PAIRS`: known subjects
       without dishonesty records, cases answered late, cases closed otherwise), a third counting
       1 to `minimum - 1` subjects suppresses the part shown.
    Complaint figures are not in the pattern: they are never shown per industry.
    """
    industries = sorted(g for g in groups if g)
    departments = sorted({c for g in groups.values() for c in g.counts if isinstance(c, tuple)})
    universe: list[Cell] = [c for c in COUNT_CELLS if c not in COMPLAINT_CELLS] + list(departments)
    hidden: dict[str, dict[Cell, str]] = {}
    shown_rows = []
    for g in industries:
        cells = groups[g]
        if cells.count("subjects_known") < minimum:
            hidden[g] = population_hidden(departments)
            continue
        hidden[g] = {c: SMALL for c in universe if 0 < cells.subjects.get(c, 0) < minimum}
        shown_rows.append(g)
    lines = _lines(departments)
    changed = True
    while changed:
        changed = False
        for g in shown_rows:
            cells, mine = groups[g], hidden[g]
            for whole, part, remainder in PAIRS:  # the remainder is the whole minus the part: small, the part goes
                if whole not in mine and part not in mine and 0 < cells.subjects.get(remainder, 0) < minimum:
                    mine[part] = COMPLEMENT
                    changed = True
            for total, members in lines:
                picks = _protect([cells.subjects.get(m, 0) for m in members], [m in mine for m in members],
                                 total in mine, minimum, may_hide_total=True)
                for i in picks:
                    mine[members[i] if i < len(members) else total] = COMPLEMENT
                changed = changed or bool(picks)
        for c in universe:
            values = [groups[g].subjects.get(c, 0) for g in industries]
            flags = [c in hidden[g] for g in industries]
            rest = sum(groups[g].subjects.get(c, 0) for g in groups if not g)
            picks = _protect(values + [rest], flags + [True], False, minimum) if rest else _protect(values, flags, False, minimum)
            for i in picks:
                hidden[industries[i]][c] = COMPLEMENT
            changed = changed or bool(picks)
        for whole, part, remainder in PAIRS:  # a remainder across the industries: unknown where its part (or whole) is
            values = [groups[g].subjects.get(remainder, 0) for g in industries]
            flags = [part in hidden[g] or whole in hidden[g] for g in industries]
            rest = sum(groups[g].subjects.get(remainder, 0) for g in groups if not g)
            picks = _protect(values + [rest], flags + [True], False, minimum) if rest else _protect(values, flags, False, minimum)
            for i in picks:
                hidden[industries[i]][part] = COMPLEMENT
            changed = changed or bool(picks)
    return hidden


@dataclass(frozen=True)
class MonthIndicators:
    """The indicators of one month (see the module docstring for each definition), of the district
    or of an industry, as one audience sees them: a suppressed figure is None, with its reason in
    `suppressed` (CSV column → `REASONS` key; empty for the credit office)."""

    month: str
    as_of: dt.date
    subjects_known: int | None
    subjects_rated: int | None
    subjects_with_dishonesty: int | None
    dishonesty_share: float | None
    findings: Mapping[str, int | None]  # by severity (general, serious), decided in the month, not revoked
    findings_by_department: Mapping[tuple[str, str], int | None]  # (department, severity)
    blacklist_size: int | None  # subjects on the blacklist at month end
    red_list_size: int | None
    blacklist_per_1000: float | None
    cases: Mapping[str, int | None]  # CASE_COLUMNS
    complaint_median_working_days: float | None
    levels: Mapping[str, int | None]  # LEVELS
    classes: Mapping[str, int | None]  # CLASSES
    penalties: Mapping[str, int | None]  # PENALTY_SEVERITIES and "other"
    components: Mapping[str, float | None]  # WEIGHTS' keys
    index: float | None
    suppressed: Mapping[str, str] = field(default_factory=dict)


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


def _per_1000(black: int, known: int) -> float | None:
    return 1000 * black / known if known else None


def _density(black: int, known: int) -> float | None:
    per_1000 = _per_1000(black, known)
    return None if per_1000 is None else max(0.0, 1 - per_1000 / BLACKLIST_CEILING)


def _honest(dishonest: int, known: int) -> float | None:
    return None if not known else 1 - dishonest / known


COMPONENT_INPUTS: Mapping[str, tuple[tuple[str, str], Callable[[int, int], float | None]]] = {
    "honest_share": (("subjects_with_dishonesty", "subjects_known"), _honest),
    "a_class_share": (("class_A", "subjects_rated"), share),
    "blacklist_density": (("blacklist_size", "subjects_known"), _density),
    "objections_on_time": (("objections_on_time", "objections_due"), share),
    "complaints_on_time": (("complaints_on_time", "complaints_due"), share),
}


def indicators(month: "Month", day: dt.date, cells: Cells, hidden: Mapping[Cell, str] | None = None) -> MonthIndicators:
    """A group's figures as shown: `hidden` cells None (with their reason), and what is computed
    from them — shares, components — too (DERIVED); the index over the components shown."""
    hidden = hidden or {}
    suppressed = {column(c): r for c, r in hidden.items()}

    def value(cell: Cell) -> int | None:
        return None if cell in hidden else cells.count(cell)

    def why(reasons: set[str]) -> str:  # a figure computed from suppressed ones
        return POPULATION if POPULATION in reasons else COMPLAINTS if reasons == {COMPLAINTS} else DERIVED

    def derived(name: str, inputs: tuple[str, str], compute: Callable[[int, int], float | None]) -> float | None:
        reasons = {hidden[c] for c in inputs if c in hidden}
        if not reasons:
            return compute(cells.count(inputs[0]), cells.count(inputs[1]))
        suppressed[name] = why(reasons)
        return None

    components = {k: derived(f"component_{k}", inputs, f) for k, (inputs, f) in COMPONENT_INPUTS.items()}
    index = composite(components)
    if index is None:
        reasons = {suppressed[f"component_{k}"] for k in components if f"component_{k}" in suppressed}
        if reasons:
            suppressed["index"] = why(reasons)
    population = hidden.get("subjects_known") == POPULATION
    days = cells.complaint_days
    return MonthIndicators(
        month=month.text, as_of=day, subjects_known=value("subjects_known"), subjects_rated=value("subjects_rated"),
        subjects_with_dishonesty=value("subjects_with_dishonesty"),
        dishonesty_share=derived("dishonesty_share", ("subjects_with_dishonesty", "subjects_known"), share),
        findings={s: value(f"findings_{s}") for s in FINDING_SEVERITIES},
        findings_by_department={} if population else {
            k: value(k) for k in sorted({c for c in (*cells.counts, *hidden) if isinstance(c, tuple)})
        },
        blacklist_size=value("blacklist_size"), red_list_size=value("red_list_size"),
        blacklist_per_1000=derived("blacklist_per_1000", ("blacklist_size", "subjects_known"), _per_1000),
        cases={c: value(c) for c in CASE_COLUMNS},
        complaint_median_working_days=None if MEDIAN in hidden else float(statistics.median(days)) if days else None,
        levels={lv: value(f"level_{lv}") for lv in LEVELS}, classes={c: value(f"class_{c}") for c in CLASSES},
        penalties={s: value(f"penalties_{s}") for s in (*PENALTY_SEVERITIES, "other")},
        components=components, index=index, suppressed=dict(sorted(suppressed.items())),
    )


EMPTY = Cells()


def month_answer(table: MonthTable, industry: str | None, audience: str) -> MonthIndicators:
    """The month as `audience` sees it, of the district (`industry` None) or of one industry.

    The credit office: every figure. The public: the district's figures unless fewer than
    `MIN_SUBJECTS` subjects are known in it (then none); an industry's as `public_pattern` allows,
    without complaint figures (COMPLAINTS)."""
    if audience not in AUDIENCES:
        raise ValueError(f"audience: one of {', '.join(AUDIENCES)}")
    key = (industry, audience)
    found = table.answers.get(key)
    if found is not None:
        return found
    cells = table.district if industry is None else table.groups.get(industry, EMPTY)
    hidden: dict[Cell, str] = {}
    if audience == PUBLIC:
        if industry is None:
            hidden = population_hidden() if cells.count("subjects_known") < MIN_SUBJECTS else {}
        else:
            pattern = table.public_hidden().get(industry)
            if pattern is None or pattern.get("subjects_known") == POPULATION:  # no subject of it, or too few
                hidden = population_hidden()
            else:
                hidden = {**pattern, **{c: COMPLAINTS for c in COMPLAINT_CELLS}}
    answer = indicators(table.month, table.as_of, cells, hidden)
    if industry is None or industry in table.groups:  # not one per industry name anyone may ask
        table.answers[key] = answer
    return answer


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
    audience: str = PUBLIC
    minimum_subjects: int = MIN_SUBJECTS


def compute_index(
    facts: IndexFacts, window: Window, today: dt.date, rules: CreditRules, calendar: WorkingCalendar,
    industry: str | None = None, audience: str = PUBLIC,
) -> EnvironmentIndex:
    """The index over `facts` (pure: what `environment_index` reads, worked out); `facts.ratings`
    must hold each month's `as_of` day."""
    spans = finding_spans(facts, rules)
    months = tuple(month_answer(month_table(facts, m, today, rules, calendar, spans), industry, audience) for m in window.months)
    return EnvironmentIndex(window.first.text, window.last.text, industry, months, audience=audience)


class IndexCache:
    """The store's facts and each closed month's table, in memory (the module docstring).

    Valid while `store_version` reads the same and for at most `ttl` seconds after the facts were
    read, for one policy's rules and one calendar; a closed month (its last day before today)
    is kept, the current month is computed on every call. At most `max_months` months are kept
    (least recently used dropped). Answers per (industry, audience) are kept with their month
    for the district and the industries the month has (not for any name asked).

    The ratings at closed months' ends outlive a change of the version when the only change to
    `credit_ratings` is new snapshots made after those days (snapshots are only added): after a
    new finding, case or rating, the months are worked out again from the facts read again, but
    the snapshots are not grouped again. They are dropped `ttl` seconds after they were first read."""

    def __init__(self, ttl: float = CACHE_TTL, clock: Callable[[], float] = time.monotonic, max_months: int = 4 * MAX_MONTHS) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_months = max_months
        self.loads = 0  # times the facts were read from the store
        self.computed = 0  # months computed (kept or not)
        self.rating_reads = 0  # times the snapshots were grouped by day
        self._version: tuple[Any, ...] | None = None
        self._loaded_at = 0.0
        self._facts: IndexFacts | None = None
        self._spans: list[FindingSpan] = []
        self._rules: CreditRules | None = None
        self._calendar: WorkingCalendar | None = None
        self._months: OrderedDict[Month, MonthTable] = OrderedDict()
        self._ratings: dict[dt.date, list[RatingFact]] = {}  # at closed months' ends, as of snapshot `_ratings_seen`
        self._ratings_seen: int | None = None
        self._ratings_since = 0.0
        self._lock: asyncio.Lock | None = None

    def clear(self) -> None:
        self._facts, self._version, self._ratings_seen = None, None, None
        self._months.clear()
        self._ratings = {}

    async def index(
        self, store: Store, rules: CreditRules, calendar: WorkingCalendar, window: Window, today: dt.date,
        industry: str | None = None, audience: str = PUBLIC,
    ) -> EnvironmentIndex:
        if audience not in AUDIENCES:
            raise ValueError(f"audience: one of {', '.join(AUDIENCES)}")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one reader of the store at a time: concurrent calls wait and find the months made
            tables = await self._tables(store, rules, calendar, window, today)
        months = tuple(month_answer(t, industry, audience) for t in tables)
        return EnvironmentIndex(window.first.text, window.last.text, industry, months, audience=audience)

    def _valid(self, version: tuple[Any, ...] | None, rules: CreditRules, calendar: WorkingCalendar) -> bool:
        return (
            self._facts is not None and version is not None and version == self._version
            and self.clock() - self._loaded_at < self.ttl
            and (self._rules is rules or self._rules == rules) and self._calendar is calendar
        )

    async def _kept_ratings(self, store: Store, version: tuple[Any, ...] | None) -> dict[dt.date, list[RatingFact]]:
        """The ratings at days still right at `version`: those before the earliest day of a snapshot added since."""
        seen = self._ratings_seen
        if version is None or seen is None or not self._ratings or self.clock() - self._ratings_since >= self.ttl:
            return {}
        newest = int(version[-1])
        if newest < seen:  # snapshots removed by hand
            return {}
        if newest == seen:
            return self._ratings
        async with store.engine.connect() as conn:
            earliest = (await conn.execute(select(func.min(RATINGS.c.rated_on)).where(RATINGS.c.id > seen))).scalar()
        return {d: v for d, v in self._ratings.items() if earliest is None or d < earliest}

    async def _tables(
        self, store: Store, rules: CreditRules, calendar: WorkingCalendar, window: Window, today: dt.date,
    ) -> list[MonthTable]:
        version = await store_version(store)  # before the facts: a change made meanwhile moves it again
        if not self._valid(version, rules, calendar):
            ratings, since = await self._kept_ratings(store, version), self._ratings_since
            self.clear()
            loaded_at = self.clock()
            async with store.engine.connect() as conn:
                loaded = await _base_facts(conn)
            self.loads += 1
            self._facts, self._version, self._loaded_at = loaded, version, loaded_at
            self._rules, self._calendar, self._spans = rules, calendar, finding_spans(loaded, rules)
            if version is not None:
                self._ratings, self._ratings_seen = ratings, int(version[-1])
                self._ratings_since = since if ratings else loaded_at
        facts = self._facts
        assert facts is not None
        tables: dict[Month, MonthTable] = {}
        missing = []
        for m in window.months:
            kept = self._months.get(m) if m.last < today else None
            if kept is not None:
                self._months.move_to_end(m)
                tables[m] = kept
            else:
                missing.append(m)
        if not missing:
            return [tables[m] for m in window.months]
        days = [as_of(m, today) for m in missing]
        ratings = {d: self._ratings[d] for d in days if d in self._ratings}
        wanted = [d for d in days if d not in ratings]
        if wanted:
            async with store.engine.connect() as conn:
                read = await _ratings_at_days(conn, facts, wanted)
            self.rating_reads += bool(grouped_days(facts, wanted))
            ratings.update(read)
            if self._ratings_seen is not None:
                self._ratings.update((d, read[d]) for d in wanted if d < today)
        view = replace(facts, ratings=ratings)
        for m in missing:
            table = tables[m] = month_table(view, m, today, rules, calendar, self._spans)
            self.computed += 1
            if m.last < today and self._version is not None:
                self._months[m] = table
                while len(self._months) > self.max_months:
                    dropped, _ = self._months.popitem(last=False)
                    self._ratings.pop(dropped.last, None)
        return [tables[m] for m in window.months]


_CACHES: "weakref.WeakKeyDictionary[Store, IndexCache]" = weakref.WeakKeyDictionary()


def cache_for(store: Store) -> IndexCache:
    """The process's cache of a store's index (made on first use, gone with the store)."""
    found = _CACHES.get(store)
    if found is None:
        found = _CACHES[store] = IndexCache()
    return found


async def environment_index(
    store: Store, rules: CreditRules, calendar: WorkingCalendar, window: Window, today: dt.date, industry: str | None = None,
    audience: str = PUBLIC, cache: IndexCache | None = None,
) -> EnvironmentIndex:
    """The credit environment index of `window`, from the hub store as it stands, as `audience`
    sees it (`cache`: the store's cache of this process by default)."""
    return await (cache if cache is not None else cache_for(store)).index(store, rules, calendar, window, today, industry, audience)


# ---- CSV ----------------------------------------------------------------------------------------


def csv_columns(result: EnvironmentIndex) -> list[str]:
    """The CSV's columns: fixed ones, then one per (department, finding severity) seen."""
    departments = sorted({key for m in result.months for key in m.findings_by_department})
    return [
        "month", "as_of", "industry", "formula_version", "index", "subjects_known", "subjects_rated",
        "subjects_with_dishonesty", "dishonesty_share", "findings_general", "findings_serious", "blacklist_size",
        "red_list_size", "blacklist_per_1000", *CASE_COLUMNS, "complaint_median_working_days",
        *(f"level_{lv}" for lv in LEVELS), *(f"class_{c}" for c in CLASSES),
        *(f"penalties_{s}" for s in (*PENALTY_SEVERITIES, "other")), *(f"component_{k}" for k in WEIGHTS), "suppressed",
        *(column(d) for d in departments),
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
        "suppressed": " ".join(f"{k}={v}" for k, v in m.suppressed.items()),
    }
    row.update({c: m.cases[c] for c in CASE_COLUMNS})
    row.update({f"level_{k}": v for k, v in m.levels.items()})
    row.update({f"class_{k}": v for k, v in m.classes.items()})
    row.update({f"penalties_{k}": v for k, v in m.penalties.items()})
    row.update({f"component_{k}": v for k, v in m.components.items()})
    row.update({column(k): n for k, n in m.findings_by_department.items()})
    return row


def index_csv(result: EnvironmentIndex) -> str:
    """The index as CSV: a header row, one row per month; empty cells for what could not be
    computed or is suppressed (the `suppressed` column says which and why), 0 for a department
    with no finding of a severity that month."""
    columns = csv_columns(result)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for m in result.months:
        row = csv_row(result, m)
        absent = None if m.suppressed.get("subjects_known") == POPULATION else 0
        writer.writerow([_cell(row.get(c, absent if c.startswith("findings_") else None)) for c in columns])
    return out.getvalue()
