"""Department data quality (the district plan's assessment of departments): the credit office's table.

Per department (connector name) and per record family it serves, over a period of months:

- **completeness** — the share of the catalogue's standard fields of the family that the
  department's connector maps (`connector.provides(family)` against `RecordFamily.fields`), with
  the fields it does not map;
- **timeliness** — records published within 7 working days of their decision. Measurable only
  where the catalogue gives a family both a decision date and a publication date: none does
  today (`timeliness_note` says what each family has), so it is null everywhere;
- **objections** — objections filed in the period against the family's records that went to the
  department (the case's `department`: the department providing the record), and the
  **objection rate**: per 1,000 subjects known to the hub at the period's end (the hub does not
  hold the departments' records, so it cannot count them);
- **on time** — objections answered (corrected or upheld), repairs decided (approved or refused)
  and complaints resolved (or rejected) by their deadline, among those of the department due in
  the period (hub/cases/index.py `CaseFact.timeliness`);
- **availability** over the period, from the audit trail (`audited_availability`): among the
  requests to the data endpoints (`/graphql`, `/public/graphql`) in the period that called the
  department — whose audit entry names it in `detail.asked` (the departments the request called,
  as errors name them: `connector.department`) or in `detail.unavailable` (those that failed it)
  — the share that did not name it unavailable. Entries written before `detail.asked` existed
  count for a department when they name a field of a family its connector serves (`released`,
  `denied`, `masked`: "family.field"): an estimate. Beside it, the **link** as this hub process has seen it since
  it started (`Federation.status()`: attempts that did not fail / attempts, and the circuit's
  condition); null where there is no link history (the CLI).

The department row (`family` None) carries the department's case figures over every family
(complaints and repairs of listings name no family) and its availability.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import or_, select

from xinlian.hub.audit.access_log import (
    DATA_ENDPOINTS,  # the requests for credit data, whose entries name failed departments
)
from xinlian.hub.audit.entry import format_time
from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import AuditRecord
from xinlian.schema.catalogue import FAMILIES, RecordFamily, ValueType

from .index import ON_TIME, CaseFact, IndexFacts, Window, as_of, known_subjects, load_facts, share
from .model import CHINA

TIMELINESS_WORKING_DAYS = 7
AUDIT = table_of(AuditRecord)


@dataclass(frozen=True)
class Source:
    """What a department's connector maps: per family, the fields it provides."""

    name: str  # the connector's name (the department's key)
    department: str  # the department's name
    families: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, connector: Any) -> "Source":
        return cls(connector.name, connector.department, {f: frozenset(connector.provides(f)) for f in sorted(connector.families)})


@dataclass(frozen=True)
class RequestAvailability:
    """A department in the audit trail over a period: data-endpoint requests that touched it, and
    those among them that named it unavailable (`audited_availability`)."""

    requests: int
    failed: int

    @property
    def share(self) -> float | None:
        return share(self.requests - self.failed, self.requests)


@dataclass(frozen=True)
class Availability:
    """A department's link since this hub process started."""

    attempts: int
    failures: int
    condition: str

    @property
    def share(self) -> float | None:
        return share(self.attempts - self.failures, self.attempts)

    @classmethod
    def of(cls, status: Any) -> "Availability":
        return cls(int(status.attempts), int(status.failures), str(status.condition))


@dataclass(frozen=True)
class CaseTimes:
    """How many of a department's cases of one kind were due in the period, and answered on time."""

    due: int
    on_time: int

    @property
    def rate(self) -> float | None:
        return share(self.on_time, self.due)


@dataclass(frozen=True)
class Quality:
    """One row of the table: a department and a family (None: the department as a whole)."""

    department: str
    department_name: str
    family: str | None
    standard_fields: int | None
    mapped_fields: int | None
    missing_fields: tuple[str, ...]
    completeness: float | None
    timeliness: float | None
    timeliness_note: str
    objections: int
    objection_rate: float | None  # per 1,000 subjects known to the hub
    objections_timed: CaseTimes
    repairs_timed: CaseTimes
    complaints_timed: CaseTimes | None  # None on a family's row: complaints name no family
    availability: RequestAvailability | None  # over the period, from the audit trail (department rows)
    link: Availability | None  # this hub process's link since it started (department rows, where known)


@dataclass(frozen=True)
class Assessment:
    first: str
    last: str
    subjects_known: int
    rows: tuple[Quality, ...]


def timeliness_note(family: RecordFamily) -> str:
    """Why timeliness is (not) measurable for a family, from the catalogue's date fields."""
    dates = [f for f in family.fields if f.type is ValueType.DATE]
    decision = [f for f in dates if "决定" in f.label]
    published = [f for f in dates if ("发布" in f.label or "公布" in f.label) and "截止" not in f.label]
    listed = ", ".join(f"{f.name} ({f.label})" for f in dates) or "none"
    if decision and published:
        return f"measurable from {decision[0].name} and {published[0].name}, which the hub store does not hold"
    missing = " and ".join(w for w, have in (("decision date", decision), ("publication date", published)) if not have)
    return f"not measurable: the catalogue gives {family.name} no {missing} (its dates: {listed})"


def _timed(cases: Iterable[CaseFact], kind: str, first: dt.date, last: dt.date, today: dt.date) -> CaseTimes:
    marks = [c.timeliness(today) for c in cases if c.kind == kind and c.deadline is not None and first <= c.deadline <= last]
    return CaseTimes(sum(1 for m in marks if m is not None), sum(1 for m in marks if m == ON_TIME))


def _row(
    source: Source | None, name: str, family: str | None, cases: Sequence[CaseFact], window: Window, today: dt.date,
    known: int, availability: RequestAvailability | None = None, link: Availability | None = None,
) -> Quality:
    first, last = window.first.first, window.last.last
    end = min(last, today)
    mine = [c for c in cases if c.department == name and (family is None or family in c.families)]
    objections = sum(1 for c in mine if c.kind == "objection" and first <= c.filed_on <= end)
    spec = FAMILIES.get(family) if family is not None else None
    mapped = standard = None
    missing: tuple[str, ...] = ()
    if spec is not None and source is not None and spec.name in source.families:
        provided = source.families[spec.name]
        standard = len(spec.fields)
        mapped = sum(1 for f in spec.field_names if f in provided)
        missing = tuple(f for f in spec.field_names if f not in provided)
    return Quality(
        department=name, department_name=source.department if source else name, family=family,
        standard_fields=standard, mapped_fields=mapped, missing_fields=missing,
        completeness=share(mapped, standard) if standard is not None and mapped is not None else None,
        timeliness=None, timeliness_note=timeliness_note(spec) if spec is not None else "",
        objections=objections, objection_rate=1000 * objections / known if known else None,
        objections_timed=_timed(mine, "objection", first, last, today),
        repairs_timed=_timed(mine, "repair", first, last, today),
        complaints_timed=_timed(mine, "complaint", first, last, today) if family is None else None,
        availability=availability if family is None else None, link=link if family is None else None,
    )


def assess(
    facts: IndexFacts, sources: Sequence[Source], window: Window, today: dt.date,
    links: Mapping[str, Availability] | None = None, availability: Mapping[str, RequestAvailability] | None = None,
) -> Assessment:
    """The table over `facts` (pure): every federated department with each family it serves,
    and every other department the period's cases name; `availability` from the audit trail and
    `links` from this process, by connector name."""
    known = len(known_subjects(facts, as_of(window.last, today)))
    by_name = {s.name: s for s in sources}
    names = list(by_name) + sorted({c.department for c in facts.cases if c.department and c.department not in by_name})
    rows: list[Quality] = []
    for name in names:
        source = by_name.get(name)
        rows.append(_row(source, name, None, facts.cases, window, today, known, (availability or {}).get(name),
                         (links or {}).get(name)))
        families = list(source.families) if source else []
        families += sorted({f for c in facts.cases if c.department == name for f in c.families if f not in families})
        rows.extend(_row(source, name, f, facts.cases, window, today, known) for f in families)
    return Assessment(window.first.text, window.last.text, known, tuple(rows))


def period_bounds(window: Window, today: dt.date) -> tuple[str, str]:
    """The period as audit times (`at`, ISO 8601 UTC text, fixed width): from midnight in Hohhot of
    its first day to midnight after its last (today, for a period running to the current month)."""
    first = dt.datetime.combine(window.first.first, dt.time(), CHINA)
    end = dt.datetime.combine(min(window.last.last, today) + dt.timedelta(days=1), dt.time(), CHINA)
    return format_time(first), format_time(end)


def _touched(content: str) -> tuple[set[str], set[str] | None, set[str]] | None:
    """The families a data-endpoint entry names a field of, the departments it called (None: the
    entry predates `detail.asked`) and those it names unavailable; None for an entry of another
    endpoint."""
    document = json.loads(content)
    if not isinstance(document, dict) or document.get("endpoint") not in DATA_ENDPOINTS:
        return None
    families = {str(name).split(".", 1)[0] for key in ("released", "denied", "masked") for name in document.get(key) or ()}
    detail = document.get("detail")
    asked, failed = (detail.get("asked"), detail.get("unavailable")) if isinstance(detail, dict) else (None, None)
    return (families, {str(d) for d in asked} if isinstance(asked, list) else None,
            {str(d) for d in failed} if isinstance(failed, list) else set())


async def audited_availability(
    store: Store, sources: Sequence[Source], window: Window, today: dt.date,
) -> dict[str, RequestAvailability]:
    """Each source's availability over the period from the audit trail (the module docstring),
    by connector name: one read of the period's entries (by `at`, indexed), those of the data
    endpoints naming a family field or an unavailable department parsed."""
    if not sources:
        return {}
    start, end = period_bounds(window, today)
    families = sorted({f for s in sources for f in s.families})
    a = AUDIT.c
    query = select(a.content).where(
        a.at >= start, a.at < end,
        or_(*(a.content.like(f'%"endpoint":"{e}"%') for e in sorted(DATA_ENDPOINTS))),
        or_(a.content.like('%"asked"%'), a.content.like('%"unavailable"%'), *(a.content.like(f'%"{f}.%') for f in families)),
    )
    counts = {s.name: [0, 0] for s in sources}
    async with store.engine.connect() as conn:
        result = await conn.stream(query)
        async for (content,) in result:
            seen = _touched(content)
            if seen is None:
                continue
            touched, asked, failed = seen
            for s in sources:
                down = s.department in failed
                tried = s.department in asked if asked is not None else not touched.isdisjoint(s.families)
                if down or tried:
                    counts[s.name][0] += 1
                    counts[s.name][1] += down
    return {name: RequestAvailability(n, failed) for name, (n, failed) in counts.items()}


async def department_assessment(
    store: Store, sources: Sequence[Source], window: Window, today: dt.date,
    links: Mapping[str, Availability] | None = None,
) -> Assessment:
    """The department table of `window`, from the hub store (its audit trail included) and the
    connectors' mappings; `links`: the serving process's department links, when there is one."""
    facts = await load_facts(store, (as_of(window.last, today),))
    availability = await audited_availability(store, sources, window, today)
    return assess(facts, sources, window, today, links, availability)


COLUMNS = (
    "department", "department_name", "family", "from", "to", "completeness", "mapped_fields", "standard_fields",
    "missing_fields", "timeliness", "timeliness_note", "objections", "objection_rate_per_1000", "objections_due",
    "objections_on_time", "objections_on_time_rate", "repairs_due", "repairs_on_time", "repairs_on_time_rate",
    "complaints_due", "complaints_on_time", "complaints_on_time_rate", "availability", "availability_requests",
    "availability_failed", "link_availability", "link_attempts", "link_condition",
)


def quality_row(a: Assessment, q: Quality) -> dict[str, Any]:
    """One row as the CSV (and the CLI's table) shows it; family "*" is the department as a whole."""
    period, link, complaints = q.availability, q.link, q.complaints_timed
    return {
        "department": q.department, "department_name": q.department_name, "family": q.family or "*", "from": a.first,
        "to": a.last, "completeness": q.completeness, "mapped_fields": q.mapped_fields, "standard_fields": q.standard_fields,
        "missing_fields": " ".join(q.missing_fields), "timeliness": q.timeliness, "timeliness_note": q.timeliness_note,
        "objections": q.objections, "objection_rate_per_1000": q.objection_rate,
        "objections_due": q.objections_timed.due, "objections_on_time": q.objections_timed.on_time,
        "objections_on_time_rate": q.objections_timed.rate, "repairs_due": q.repairs_timed.due,
        "repairs_on_time": q.repairs_timed.on_time, "repairs_on_time_rate": q.repairs_timed.rate,
        "complaints_due": complaints.due if complaints else None,
        "complaints_on_time": complaints.on_time if complaints else None,
        "complaints_on_time_rate": complaints.rate if complaints else None,
        "availability": period.share if period else None, "availability_requests": period.requests if period else None,
        "availability_failed": period.failed if period else None, "link_availability": link.share if link else None,
        "link_attempts": link.attempts if link else None, "link_condition": link.condition if link else None,
    }


def assessment_csv(a: Assessment) -> str:
    """The table as CSV: a header row, a row per department and family (empty cells: not known)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for q in a.rows:
        row = quality_row(a, q)
        writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float) else str(row[c]) for c in COLUMNS])
    return out.getvalue()
