"""What a case is: its kinds, statuses and steps, who may take each step, and the errors.

Three kinds of case share one shape (`Case`): an **objection** (异议) to one record, a
**complaint** or report (投诉举报) about a subject, and a **credit repair** application (信用修复).
Each has a status, a deadline in working days (hub/cases/calendar.py) and a history of steps
(`CaseStep`). The steps a case may take are one table, `STEPS`: for each (kind, action), the
statuses it may start from, the status it leads to, and who may take it (`Role`):

| kind | action | from | to | who |
|---|---|---|---|---|
| objection | assign | open | open | the credit office (to the department that answers) |
| objection | correct | open | corrected | the answering department, the credit office |
| objection | uphold | open | upheld | the answering department, the credit office |
| objection | withdraw | open | withdrawn | the filer, the credit office |
| complaint | assign | filed, assigned | assigned | the credit office (triage) |
| complaint | reject | filed, assigned | rejected | the credit office |
| complaint | resolve | assigned | resolved | the assigned department, the credit office |
| repair | approve | applied | approved | the deciding department, the credit office |
| repair | refuse | applied | refused | the deciding department, the credit office |
| repair | withdraw | applied | withdrawn | the filer, the credit office |

An objection's outcomes: `corrected` — the department corrected the record at its source (the
hub records the correction), `upheld` — the department verified the record and it stands
(异议不成立), `withdrawn` — the filer withdrew it. While an objection is open its record is
served with `underObjection: true` on every endpoint.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from xinlian.hub.store.times import as_utc

if TYPE_CHECKING:
    from .calendar import WorkingCalendar

OBJECTION, COMPLAINT, REPAIR = "objection", "complaint", "repair"
KINDS = (OBJECTION, COMPLAINT, REPAIR)
KIND_LABELS = {OBJECTION: "异议", COMPLAINT: "投诉举报", REPAIR: "信用修复"}
OPEN_STATUSES: Mapping[str, frozenset[str]] = {
    OBJECTION: frozenset({"open"}),
    COMPLAINT: frozenset({"filed", "assigned"}),
    REPAIR: frozenset({"applied"}),
}
FIRST_STATUS = {OBJECTION: "open", COMPLAINT: "filed", REPAIR: "applied"}
# the grounds of an objection (异议事由), in the order a form shows them
OBJECTION_GROUNDS: Mapping[str, str] = {
    "wrong": "信息错误",
    "incomplete": "信息不完整",
    "duplicate": "信息重复",
    "should-not-be-public": "不应公开",
    "past-publicity-period": "超过公示期限",
    "inconsistent-with-decision": "与行政决定不一致",
}
CHINA = dt.timezone(dt.timedelta(hours=8), "CST")


class Role(enum.Enum):
    """Who takes a step: as what the actor stands to the case."""

    CREDIT_OFFICE = "credit-office"  # the admin API and the CLI
    DEPARTMENT = "department"  # the department the case is with
    FILER = "filer"  # whoever filed it (a subject client, a department)


@dataclass(frozen=True)
class Step:
    starts: frozenset[str]
    leads_to: str
    roles: frozenset[Role]


def _step(starts: str, leads_to: str, *roles: Role) -> Step:
    return Step(frozenset(starts.split()), leads_to, frozenset(roles))


OFFICE, DEPT, FILER = Role.CREDIT_OFFICE, Role.DEPARTMENT, Role.FILER
STEPS: Mapping[tuple[str, str], Step] = {
    (OBJECTION, "assign"): _step("open", "open", OFFICE),
    (OBJECTION, "correct"): _step("open", "corrected", DEPT, OFFICE),
    (OBJECTION, "uphold"): _step("open", "upheld", DEPT, OFFICE),
    (OBJECTION, "withdraw"): _step("open", "withdrawn", FILER, OFFICE),
    (COMPLAINT, "assign"): _step("filed assigned", "assigned", OFFICE),
    (COMPLAINT, "reject"): _step("filed assigned", "rejected", OFFICE),
    (COMPLAINT, "resolve"): _step("assigned", "resolved", DEPT, OFFICE),
    (REPAIR, "approve"): _step("applied", "approved", DEPT, OFFICE),
    (REPAIR, "refuse"): _step("applied", "refused", DEPT, OFFICE),
    (REPAIR, "withdraw"): _step("applied", "withdrawn", FILER, OFFICE),
}


def actions_of(kind: str) -> tuple[str, ...]:
    return tuple(action for (k, action) in STEPS if k == kind)


class CaseInputError(ValueError):
    """A case cannot be filed or moved as asked (bad input, a step its status does not allow)."""


class CaseForbidden(CaseInputError):
    """The actor may not take this step on this case."""


class CaseNotFound(CaseInputError):
    """No such case (or none the actor may see)."""


@dataclass(frozen=True)
class Actor:
    """Who acts on a case: `kind` is `subject`, `department`, `credit-office` or `public`; `id` the
    client id (or `public`); `department` a department client's connector name; `subject` the
    credit subject a subject client speaks for."""

    kind: str
    id: str
    department: str | None = None
    subject: str | None = None

    @classmethod
    def credit_office(cls, by: str) -> "Actor":
        return cls("credit-office", by)

    @classmethod
    def public(cls) -> "Actor":
        return cls("public", "public")


@dataclass(frozen=True)
class CaseRef:
    """A record a case concerns: its family and its key (decision number, case number, ...)."""

    family: str
    key: str


@dataclass(frozen=True)
class CaseStep:
    """One step of a case's history."""

    action: str
    from_status: str | None
    to_status: str
    at: dt.datetime
    by: str
    by_kind: str
    note: str
    deadline: dt.date | None

    @classmethod
    def of(cls, row: Any) -> "CaseStep":
        return cls(row.action, row.from_status, row.to_status, as_utc(row.at), row.by, row.by_kind, row.note, row.deadline)


@dataclass(frozen=True)
class Attachment:
    id: int
    filename: str
    media_type: str
    size: int
    sha256: str
    added_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> "Attachment":
        return cls(row.id, row.filename, row.media_type, row.size, row.sha256, as_utc(row.added_at))


@dataclass(frozen=True)
class Case:
    """A case as stored, with its history when it was read with it."""

    id: int
    kind: str
    subject: str | None
    subject_name: str
    status: str
    department: str | None
    filer_kind: str
    filer: str
    category: str
    records: tuple[CaseRef, ...]
    description: str
    detail: Mapping[str, Any]
    filed_at: dt.datetime
    filed_on: dt.date
    deadline: dt.date | None
    closed_at: dt.datetime | None
    resolution: str
    history: tuple[CaseStep, ...] = ()
    attachments: tuple[Attachment, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES[self.kind]

    def overdue(self, today: dt.date) -> bool:
        return self.is_open and self.deadline is not None and today > self.deadline

    def working_days_left(self, today: dt.date, calendar: "WorkingCalendar") -> int | None:
        """Working days from `today` to an open case's deadline: 0 due today, negative overdue by
        that many (at least -1 from the day after the deadline, a weekend or holiday included);
        None once closed."""
        if not self.is_open or self.deadline is None:
            return None
        left = calendar.working_days_between(today, self.deadline)
        return min(left, -1) if today > self.deadline else left

    def due_soon(self, today: dt.date, calendar: "WorkingCalendar", reminder: int) -> bool:
        """Open and at most `reminder` working days before its deadline (never while overdue)."""
        left = self.working_days_left(today, calendar)
        return left is not None and 0 <= left <= reminder

    def deadline_provisional(self, calendar: "WorkingCalendar") -> bool:
        """The deadline was counted across a year the calendar knows only the weekends of."""
        return bool(self.deadline and calendar.weekends_only_in(self.filed_on, self.deadline))

    @classmethod
    def of(cls, row: Any, history: tuple[CaseStep, ...] = (), attachments: tuple[Attachment, ...] = ()) -> "Case":
        return cls(
            id=row.id, kind=row.kind, subject=row.subject, subject_name=row.subject_name, status=row.status,
            department=row.department, filer_kind=row.filer_kind, filer=row.filer, category=row.category,
            records=tuple(CaseRef(r["family"], r["key"]) for r in json.loads(row.records or "[]")),
            description=row.description, detail=json.loads(row.detail or "{}"), filed_at=as_utc(row.filed_at),
            filed_on=row.filed_on, deadline=row.deadline, closed_at=as_utc(row.closed_at) if row.closed_at else None,
            resolution=row.resolution, history=history, attachments=attachments,
        )


def hohhot_day(moment: dt.datetime) -> dt.date:
    """The date in Hohhot (UTC+8) of a moment: what a filing's day is."""
    return moment.astimezone(CHINA).date()
