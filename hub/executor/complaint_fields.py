"""The complaint fields of the GraphQL schemas (docs/cases.md, "Complaints and reports").

On `/public/graphql` (anyone, anonymously): `fileComplaint(input)` answers a `ComplaintReceipt`
with the `trackingCode` — shown once, only its SHA-256 is stored — and `complaint(trackingCode)`
answers a `PublicComplaint`: status, category, dates, the steps without who took them or their
notes, and once closed the answer and the outcome; null for a code no complaint has, never a hint
about other codes; BAD_USER_INPUT for text that is no tracking code (a typo caught by the check
character). The endpoint runs the mutation by POST only, one root field, its intent audited first.

On `/graphql` (departments): `complaints(status, overdue, first)` — the department's work queue,
those assigned to it, overdue first; `resolveComplaint(id, outcome, note, findingId)` —
`substantiated` or `unsubstantiated`, citing the department's own finding of dishonesty on the
complaint's subject when it led to one. Subject clients see no complaint (not even about
themselves: the filer is protected); nobody but the credit office (the admin API,
hub/admin/complaints.py) sees the filer's contact, and no audit entry names it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any, Optional

import strawberry

from xinlian.hub.cases.complaints import (
    OUTCOMES,
    STATUSES,
    ComplaintDesk,
    Contact,
    finding_of,
    outcome_of,
    public_view,
)
from xinlian.hub.cases.model import COMPLAINT, Case, CaseInputError, CaseRef
from xinlian.policies.cases import CaseRules
from xinlian.schema import cases as gql

from . import case_fields as cf

if TYPE_CHECKING:
    from xinlian.hub.cases.calendar import WorkingCalendar

    from .request import RequestContext

MAX_PAGE = 200


# ---- types --------------------------------------------------------------------------------------


@strawberry.input(description="How the credit office may reach you (optional: leave it out to file anonymously). Seen by the credit office only.")
class ComplaintContactInput:
    name: Optional[str] = None
    phone: Optional[str] = None
    email: Optional[str] = None


@strawberry.input(description="A record the complaint concerns: its family and its key (decision or case number).")
class ComplaintRecordInput:
    family: str
    key: str


@strawberry.input(description="A complaint or report (投诉举报) about a subject.")
class ComplaintInput:
    category: str = strawberry.field(description="One of the policy's complaint categories (cases.complaint_categories), e.g. dishonest-conduct.")
    description: str = strawberry.field(description="What happened (up to 4000 characters).")
    subject: Optional[str] = strawberry.field(default=None, description="The target's USCC or resident ID (checked with its check character).")
    subject_name: Optional[str] = strawberry.field(default=None, description="The target's name: required when no subject code is given.")
    records: Optional[list[ComplaintRecordInput]] = None
    contact: Optional[ComplaintContactInput] = None
    attachments: Optional[list[gql.AttachmentInput]] = None


@strawberry.type(description="A complaint as filed: keep the tracking code, it is shown only this once.")
class ComplaintReceipt:
    tracking_code: str = strawberry.field(description="TS-XXXXX-XXXXX-XXXXX-XXXXX: follow the complaint with complaint(trackingCode:).")
    status: str
    category: str
    filed_on: dt.date
    deadline: dt.date = strawberry.field(description="The day the credit office assigns or rejects it by (working days).")


@strawberry.type(description="A step of a complaint as its filer sees it: what happened and when.")
class ComplaintStep:
    action: str = strawberry.field(description="filed, assign, reject or resolve.")
    status: str = strawberry.field(description="The status the step led to.")
    at: dt.datetime


@strawberry.type(description="A complaint followed by its tracking code.")
class PublicComplaint:
    status: str = strawberry.field(description="filed, assigned, resolved or rejected.")
    category: str
    category_label: str
    filed_on: dt.date
    deadline: Optional[dt.date] = strawberry.field(description="The day the current step is due by (working days).")
    closed_on: Optional[dt.date]
    history: list[ComplaintStep]
    resolution: Optional[str] = strawberry.field(description="The answer, once resolved or rejected.")
    outcome: Optional[str] = strawberry.field(description="substantiated or unsubstantiated, once resolved.")


@strawberry.type(name="Complaint", description="A complaint or report (投诉举报) as a department handles it: the case with its outcome.")
class ComplaintView(gql.CaseView):
    category_label: str
    outcome: Optional[str] = strawberry.field(description="substantiated or unsubstantiated, once resolved.")
    finding_id: Optional[int] = strawberry.field(description="The finding of dishonesty the complaint led to, if any.")


@strawberry.type(description="A department's complaints, overdue first, then by deadline.")
class ComplaintPage:
    items: list[ComplaintView]
    total_open: int
    total_overdue: int


def complaint_view(case: Case, today: dt.date, calendar: "WorkingCalendar", rules: CaseRules) -> ComplaintView:
    """The case as a `Complaint`: every case field, the outcome and the finding — not the contact."""
    base = cf.case_view(case, today, calendar, rules.deadlines.reminder)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    return ComplaintView(
        **fields, category_label=rules.complaint_categories.get(case.category, case.category), outcome=outcome_of(case),
        finding_id=finding_of(case),
    )


# ---- resolvers ------------------------------------------------------------------------------------


def _ctx(info: strawberry.Info) -> "RequestContext":
    return info.context


def _desk(ctx: "RequestContext") -> ComplaintDesk:
    return ComplaintDesk(cf.register_of(ctx))


def _contact(given: Optional[ComplaintContactInput]) -> Contact | None:
    return None if given is None else Contact.checked(given.name, given.phone, given.email)


async def file_complaint(info: strawberry.Info, input: ComplaintInput) -> ComplaintReceipt:
    """投诉举报: anyone files, anonymously or with a contact for the credit office."""
    ctx = _ctx(info)
    files = cf.uploads(ctx, input.attachments)
    try:
        filed = await _desk(ctx).file(
            category=input.category, categories=ctx.policy.cases.complaint_categories, description=input.description,
            subject=input.subject, subject_name=input.subject_name,
            records=[CaseRef(r.family, r.key) for r in input.records or []], contact=_contact(input.contact),
            uploads=files,
        )
    except CaseInputError as exc:
        raise cf.case_error(exc) from None
    case = filed.case
    cf.audited(ctx, "fileComplaint", case)
    assert case.deadline is not None
    return ComplaintReceipt(
        tracking_code=filed.tracking_code, status=case.status, category=case.category, filed_on=case.filed_on,
        deadline=case.deadline,
    )


async def complaint(info: strawberry.Info, tracking_code: str) -> Optional[PublicComplaint]:
    """The complaint of a tracking code, as its filer sees it; null when no complaint has it."""
    ctx = _ctx(info)
    try:
        case = await _desk(ctx).follow(tracking_code)
    except CaseInputError as exc:
        raise cf.case_error(exc) from None
    if case is None:
        ctx.findings.detail["case"] = {"action": "complaint", "found": False}
        return None
    cf.audited(ctx, "complaint", case)
    shown = public_view(case)
    categories = ctx.policy.cases.complaint_categories
    return PublicComplaint(
        status=shown.status, category=shown.category, category_label=categories.get(shown.category, shown.category),
        filed_on=shown.filed_on, deadline=shown.deadline, closed_on=shown.closed_on,
        history=[ComplaintStep(action=s.action, status=s.status, at=s.at) for s in shown.history],
        resolution=shown.resolution, outcome=shown.outcome,
    )


def _department(ctx: "RequestContext") -> str:
    actor = cf.actor_of(ctx)
    if actor.kind != "department" or not actor.department:
        raise cf.code("FORBIDDEN", "complaints are handled by the departments they are assigned to (the filer follows one by its tracking code)")
    return actor.department


async def complaints(
    info: strawberry.Info, status: Optional[str] = None, overdue: bool = False, first: int = 50,
) -> ComplaintPage:
    """The department's work queue: the complaints assigned to it, overdue first."""
    ctx = _ctx(info)
    department = _department(ctx)
    if not 1 <= first <= MAX_PAGE:
        raise cf.code("BAD_USER_INPUT", f"first: 1 to {MAX_PAGE}", argument="first")
    if status is not None and status not in STATUSES:
        raise cf.code("BAD_USER_INPUT", f"status: one of {', '.join(STATUSES)}", argument="status")
    cases = cf.register_of(ctx)
    found = await cases.find(kind=COMPLAINT, status=status, department=department, today=ctx.today, overdue_only=overdue, limit=first)
    total_open, total_overdue = await cases.tally(COMPLAINT, ctx.today, [{"department": department}])
    for case in found:
        if case.subject:
            ctx.findings.subjects.add(case.subject)
    ctx.findings.detail["cases"] = {"kind": COMPLAINT, "listed": len(found)}
    return ComplaintPage(
        items=[complaint_view(c, ctx.today, cases.calendar, ctx.policy.cases) for c in found],
        total_open=total_open, total_overdue=total_overdue,
    )


async def resolve_complaint(
    info: strawberry.Info, id: int, outcome: str, note: str, finding_id: Optional[int] = None,
) -> ComplaintView:
    """The assigned department closes a complaint: substantiated (citing its finding, if one
    followed) or unsubstantiated; `note` is the answer the filer reads."""
    ctx = _ctx(info)
    _department(ctx)
    if outcome not in OUTCOMES:
        raise cf.code("BAD_USER_INPUT", f"outcome: {' or '.join(OUTCOMES)}", argument="outcome")
    await cf.visible_case(ctx, id, COMPLAINT)
    try:
        resolved = await _desk(ctx).resolve(id, outcome, note, cf.actor_of(ctx), finding_id)
    except CaseInputError as exc:
        raise cf.case_error(exc) from None
    cf.audited(ctx, "resolveComplaint", resolved)
    ctx.findings.detail["case"]["outcome"] = outcome
    if finding_id is not None:
        ctx.findings.detail["case"]["finding"] = finding_id
    return complaint_view(resolved, ctx.today, cf.register_of(ctx).calendar, ctx.policy.cases)


def query_fields(public: bool) -> dict[str, Any]:
    if public:
        return {"complaint": strawberry.field(resolver=complaint, description="Follow a complaint by its tracking code: status and steps; null for an unknown code.")}
    return {"complaints": strawberry.field(resolver=complaints, description="Your department's complaints and reports (those assigned to it), overdue first.")}


def mutation_fields(public: bool) -> dict[str, Any]:
    if public:
        return {"file_complaint": strawberry.field(resolver=file_complaint, description="投诉举报: file a complaint or report, anonymously or with a contact; answers its tracking code.")}
    return {"resolve_complaint": strawberry.field(resolver=resolve_complaint, description="Close a complaint assigned to your department: substantiated (optionally citing your finding) or unsubstantiated; the note is the answer the filer reads.")}
