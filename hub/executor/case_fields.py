"""The case fields of the GraphQL schemas (docs/cases.md), on the one request pipeline.

Shared by every kind of case: who the caller is to a case (`actor_of`), how a case is shown
(`case_view`, with its working days left), attachments from GraphQL input (`uploads`), errors
(`case_error`), and the audit (`audited`: the subject and the case in the request's entry).

Objections on `/graphql`: `fileObjection(input)` — a subject client on its own records, a
department client (bound to its department, with a scope of `cases.access.departments`) on any
subject's — goes to the department that provides the record (asked of every source of the
family; if one cannot answer, the objection is still filed, with the credit office, which
assigns it); `objections(...)` lists what the caller may see (a subject its own, a department
those it answers or filed), overdue first; `answerObjection(id, outcome, note)` — the answering
department closes it `corrected` or `upheld`; `withdrawObjection(id)` — the filer withdraws it;
`case(id)` reads one case the caller may see. Complaints and credit repair add their fields in
hub/executor/complaint_fields.py and hub/executor/repair_fields.py; `query_fields(public)` and
`mutation_fields(public)` gather them all.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Optional

import strawberry
from graphql import GraphQLError

from xinlian.hub.cases.attachments import AttachmentPolicy, AttachmentRefused, decode_upload
from xinlian.hub.cases.model import (
    OBJECTION,
    OBJECTION_GROUNDS,
    Actor,
    Case,
    CaseForbidden,
    CaseInputError,
    CaseNotFound,
)
from xinlian.hub.cases.register import CaseRegister, Upload
from xinlian.hub.credit.model import CreditInputError
from xinlian.hub.credit.register import subject_key
from xinlian.hub.governance.objections import OUTCOMES
from xinlian.schema import cases as gql

from . import complaint_fields, index_fields, repair_fields

if TYPE_CHECKING:
    from xinlian.hub.cases.calendar import WorkingCalendar
    from xinlian.hub.governance.objections import ObjectionRegister

    from .request import RequestContext

MAX_PAGE = 200


def _ctx(info: strawberry.Info) -> "RequestContext":
    return info.context


def code(code: str, message: str, **extra: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def case_error(exc: Exception) -> GraphQLError:
    """A case refusal as a GraphQL error: FORBIDDEN, NOT_FOUND or BAD_USER_INPUT."""
    if isinstance(exc, CaseForbidden):
        return code("FORBIDDEN", str(exc))
    if isinstance(exc, CaseNotFound):
        return code("NOT_FOUND", str(exc))
    return code("BAD_USER_INPUT", str(exc))


def register_of(ctx: "RequestContext") -> CaseRegister:
    cases = ctx.services.cases
    if cases is None:
        raise code("INTERNAL_SERVER_ERROR", "cases are not available on this hub")
    return cases


def objections_of(ctx: "RequestContext") -> "ObjectionRegister":
    objections = ctx.services.objections
    if objections is None:
        raise code("INTERNAL_SERVER_ERROR", "objections are not available on this hub")
    return objections


def actor_of(ctx: "RequestContext") -> Actor:
    """The caller as an actor on cases: the public, a subject client (for its subject), a
    department client (for its department, when it holds a scope of `cases.access.departments`),
    or another client kind (a bank, an agency: it may file, not answer)."""
    p = ctx.principal
    if ctx.public_endpoint or p.client_id is None:
        return Actor.public()
    if p.kind == "subject":
        return Actor("subject", p.client_id, subject=p.subject_id)
    if p.kind == "department" and p.department and p.scopes & set(ctx.policy.cases.access.departments):
        return Actor("department", p.client_id, department=p.department)
    if p.kind == "department":
        # a department client unbound or without a scope of cases.access.departments acts on no
        # case as a department: it may not file objections nor answer, and sees no queue
        return Actor("unbound-department", p.client_id)
    return Actor(p.kind, p.client_id)


def subject_arg(value: str, argument: str = "subject") -> str:
    try:
        return subject_key(value)
    except CreditInputError as exc:
        raise code("BAD_USER_INPUT", str(exc), argument=argument) from None


def uploads(ctx: "RequestContext", given: Optional[list[gql.AttachmentInput]]) -> list[Upload]:
    """Attachments from GraphQL input, each decoded within the policy's size (`cases.attachments`)."""
    if not given:
        return []
    limits = ctx.policy.cases.attachments
    if len(given) > limits.max_per_case:
        raise code("BAD_USER_INPUT", f"attachments: at most {limits.max_per_case} per case", argument="attachments")
    policy = AttachmentPolicy.of(limits)
    out = []
    for a in given:
        try:
            out.append(Upload(a.filename, a.media_type, decode_upload(a.content_base64, policy)))
        except AttachmentRefused as exc:
            raise code("BAD_USER_INPUT", f"attachments: {exc}", argument="attachments") from None
    return out


def case_view(case: Case, today: dt.date, calendar: "WorkingCalendar", reminder: int) -> gql.CaseView:
    """A case as GraphQL shows it; `reminder`: working days before the deadline it is due soon
    (the policy's `cases.deadlines.reminder`)."""
    return gql.CaseView(
        id=case.id, kind=case.kind, status=case.status, subject=case.subject, subject_name=case.subject_name,
        department=case.department, category=case.category,
        records=[gql.CaseRecord(family=r.family, key=r.key) for r in case.records],
        description=case.description, filed_by_kind=case.filer_kind, filed_at=case.filed_at, filed_on=case.filed_on,
        deadline=case.deadline, working_days_left=case.working_days_left(today, calendar), overdue=case.overdue(today),
        due_soon=case.due_soon(today, calendar, reminder), closed_at=case.closed_at,
        deadline_provisional=case.deadline_provisional(calendar),
        resolution=case.resolution,
        history=[
            gql.CaseStep(action=s.action, from_status=s.from_status, status=s.to_status, at=s.at, by=s.by, by_kind=s.by_kind,
                         note=s.note, deadline=s.deadline)
            for s in case.history
        ],
        attachments=[
            gql.CaseAttachment(id=a.id, filename=a.filename, media_type=a.media_type, size=a.size, sha256=a.sha256)
            for a in case.attachments
        ],
    )


def view(ctx: "RequestContext", case: Case) -> gql.CaseView:
    return case_view(case, ctx.today, register_of(ctx).calendar, ctx.policy.cases.deadlines.reminder)


def audited(ctx: "RequestContext", action: str, case: Case) -> None:
    """Name the case's subject and the case in the request's audit entry."""
    if case.subject:
        ctx.findings.subjects.add(case.subject)
    ctx.findings.detail["case"] = {"action": action, "case": case.id, "kind": case.kind, "status": case.status}


async def visible_case(ctx: "RequestContext", case_id: int, kind: str | None = None) -> Case:
    """The case, if the caller may see it (else NOT_FOUND: whether it exists is not said)."""
    cases = register_of(ctx)
    try:
        found = await cases.get(case_id)
    except CaseNotFound:
        found = None
    if found is None or (kind is not None and found.kind != kind) or not cases.may_see(found, actor_of(ctx)):
        raise code("NOT_FOUND", f"no {kind or 'case'} {case_id} that you may see")
    return found


async def case_page(
    ctx: "RequestContext", kind: str, status: Optional[str], subject: Optional[str], overdue: bool, first: int,
) -> gql.CasePage:
    """A kind's cases the caller may see, overdue first: a subject its own, a department those it
    answers or filed; others none."""
    if not 1 <= first <= MAX_PAGE:
        raise code("BAD_USER_INPUT", f"first: 1 to {MAX_PAGE}", argument="first")
    actor = actor_of(ctx)
    cases = register_of(ctx)
    key = subject_arg(subject) if subject else None
    if actor.kind == "subject":
        if not actor.subject:
            raise code("FORBIDDEN", "your subject client is bound to no subject (ask the credit office)")
        if key not in (None, actor.subject):
            raise code("FORBIDDEN", "a subject client sees its own cases only")
        scopes: list[dict[str, Any]] = [{"subject": actor.subject}]
    elif actor.kind == "department":
        scopes = [{"department": actor.department}, {"filer": ("department", actor.id)}]
    else:
        raise code("FORBIDDEN", f"{kind}s are seen by the subject concerned and the departments answering them")
    seen: dict[int, Case] = {}
    for scope in scopes:
        for case in await cases.find(kind=kind, status=status, today=ctx.today, overdue_only=overdue, limit=first,
                                     **{"subject": key, **scope}):
            if cases.may_see(case, actor):  # never a complaint to the subject it is about
                seen.setdefault(case.id, case)
    ordered = sorted(seen.values(), key=lambda c: (not c.overdue(ctx.today), not c.is_open, c.deadline or dt.date.max, c.id))
    ordered = ordered[:first]
    for case in ordered:
        if case.subject:
            ctx.findings.subjects.add(case.subject)
    ctx.findings.detail["cases"] = {"kind": kind, "listed": len(ordered)}
    total_open, total_overdue = await cases.tally(kind, ctx.today, [{"subject": key, **scope} for scope in scopes])
    return gql.CasePage(items=[view(ctx, c) for c in ordered], total_open=total_open, total_overdue=total_overdue)


# ---- objections ----------------------------------------------------------------------------


async def file_objection(info: strawberry.Info, input: gql.ObjectionInput) -> gql.CaseView:
    """异议: a subject client on its own record, a department client on any subject's."""
    ctx = _ctx(info)
    actor = actor_of(ctx)
    if actor.kind == "subject":
        if not actor.subject:
            raise code("FORBIDDEN", "your subject client is bound to no subject (ask the credit office)")
        key = actor.subject if input.subject is None else subject_arg(input.subject)
        if key != actor.subject:
            raise code("FORBIDDEN", "a subject client objects to its own records only")
    elif actor.kind == "department":
        if input.subject is None:
            raise code("BAD_USER_INPUT", "subject: the subject whose record is disputed", argument="subject")
        key = subject_arg(input.subject)
    else:
        raise code("FORBIDDEN", "objections are filed by the subject's own client or by a department (the public: a complaint)")
    if input.grounds not in OBJECTION_GROUNDS:
        raise code("BAD_USER_INPUT", f"grounds: one of {', '.join(OBJECTION_GROUNDS)}", argument="grounds")
    files = uploads(ctx, input.attachments)
    ctx.findings.subjects.add(key)
    department = await _providing_department(ctx, key, input.family, input.record_key.strip())
    try:
        case = await objections_of(ctx).file(
            key, input.family, input.record_key, input.reason, actor, grounds=input.grounds, department=department,
            uploads=files,
        )
    except CaseInputError as exc:
        raise case_error(exc) from None
    audited(ctx, "fileObjection", case)
    return view(ctx, case)


async def _providing_department(ctx: "RequestContext", subject: str, family: str, key: str) -> str | None:
    """The department that provides the record; None (the credit office assigns it) when a source
    could not answer; BAD_USER_INPUT when every source answered and none has it."""
    credit = ctx.services.credit
    if credit is None:
        return None
    try:
        found = await credit.records.find_record(subject, family, key)
    except (CreditInputError, KeyError):
        raise code("BAD_USER_INPUT", f"family: objections are filed against keyed records, not {family!r}", argument="family") from None
    if len(found.departments) == 1:
        return found.departments[0]
    if found.departments or found.unavailable:
        return None  # two sources have it, or one could not say: the credit office assigns it
    raise code("BAD_USER_INPUT", f"no {family} record {key!r} of subject {subject} at any department", argument="recordKey")


async def objections(
    info: strawberry.Info, status: Optional[str] = None, subject: Optional[str] = None, overdue: bool = False,
    first: int = 50,
) -> gql.CasePage:
    return await case_page(_ctx(info), OBJECTION, status, subject, overdue, first)


async def case(info: strawberry.Info, id: int) -> gql.CaseView:
    ctx = _ctx(info)
    found = await visible_case(ctx, id)
    audited(ctx, "case", found)
    return view(ctx, found)


async def answer_objection(info: strawberry.Info, id: int, outcome: str, note: str) -> gql.CaseView:
    """The answering department closes an objection: `corrected` (it corrected the record at its
    source) or `upheld` (the record stands)."""
    ctx = _ctx(info)
    if outcome not in ("corrected", "upheld"):
        raise code("BAD_USER_INPUT", "outcome: corrected or upheld", argument="outcome")
    return await _close(ctx, id, outcome, note, "answerObjection")


async def withdraw_objection(info: strawberry.Info, id: int, note: str = "") -> gql.CaseView:
    return await _close(_ctx(info), id, "withdrawn", note, "withdrawObjection")


async def _close(ctx: "RequestContext", case_id: int, outcome: str, note: str, action: str) -> gql.CaseView:
    await visible_case(ctx, case_id, OBJECTION)
    assert outcome in OUTCOMES
    try:
        closed = await objections_of(ctx).close(case_id, outcome, note, actor_of(ctx))
    except CaseInputError as exc:
        raise case_error(exc) from None
    audited(ctx, action, closed)
    return view(ctx, closed)


def query_fields(public: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {**complaint_fields.query_fields(public), **index_fields.query_fields(public)}
    if public:
        return fields
    fields.update(
        objections=strawberry.field(resolver=objections, description="Objections you may see (a subject: its own; a department: those it answers or filed), overdue first."),
        case=strawberry.field(resolver=case, description="One case you may see, with its history."),
    )
    fields.update(repair_fields.query_fields(public))
    return fields


def mutation_fields(public: bool) -> dict[str, Any]:
    fields: dict[str, Any] = dict(complaint_fields.mutation_fields(public))
    if public:
        return fields
    fields.update(
        file_objection=strawberry.field(resolver=file_objection, description="异议: dispute one record (a subject client: its own; a department: any subject's). The record is flagged underObjection while it is open."),
        answer_objection=strawberry.field(resolver=answer_objection, description="The answering department closes an objection: corrected or upheld, with a note."),
        withdraw_objection=strawberry.field(resolver=withdraw_objection, description="The filer withdraws its objection."),
    )
    fields.update(repair_fields.mutation_fields(public))
    return fields
