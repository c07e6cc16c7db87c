"""The admin API's complaint fields: triage and oversight by the credit office (信用办).

Reads: `complaints(status, department, overdue, first)` — every complaint, overdue first, then by
deadline, with the filer's contact (only here); `complaint(id)` with its history. Changes:
`assignComplaint(id, department, note, fromDepartment)` — the department's
`cases.deadlines.complaint` working days run from the assignment; `rejectComplaint(id, note,
fromDepartment)` — not within scope or a duplicate, the note is the answer the filer reads;
`resolveComplaint(id, outcome, note, findingId)` — the credit office closes an assigned complaint
as a department would. Triage is optimistic: `fromDepartment` says where the office saw the
complaint (absent: still with the office, just filed), and a step on anything else is refused, so
of two administrators triaging one complaint at once exactly one succeeds.

Each read and change is noted in the request's audit entry (the subject, the case, the
department, how many contacts a read showed) — never the contact itself.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import strawberry

from xinlian.hub.cases.complaints import OUTCOMES, STATUSES, ComplaintDesk, Contact
from xinlian.hub.cases.model import COMPLAINT, Actor, Case, CaseInputError
from xinlian.hub.executor.complaint_fields import ComplaintView, complaint_view

from .context import AdminContext
from .operations import AdminInputError

MAX_PAGE = 500


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


@strawberry.type(name="ComplaintContact", description="How to reach the filer, as filed (the credit office only).")
class ComplaintContact:
    name: str
    phone: str
    email: str


@strawberry.type(name="OfficeComplaint", description="A complaint as the credit office sees it: the case, its outcome and the filer's contact.")
class OfficeComplaint(ComplaintView):
    contact: Optional[ComplaintContact] = strawberry.field(description="null: filed anonymously.")


def _office_view(ctx: AdminContext, case: Case) -> OfficeComplaint:
    shown = complaint_view(case, ctx.runtime.today(), ctx.runtime.calendar, ctx.runtime.policy.cases)
    contact = Contact.of(case)
    fields = {f.name: getattr(shown, f.name) for f in dataclasses.fields(shown)}
    return OfficeComplaint(
        **fields, contact=None if contact is None else ComplaintContact(name=contact.name, phone=contact.phone, email=contact.email)
    )


def _department(ctx: AdminContext, department: str) -> str:
    names = {d.name for d in ctx.runtime.federation.departments}
    if department not in names:
        raise AdminInputError(f"department: one of {', '.join(sorted(names))}")
    return department


def _desk(ctx: AdminContext) -> ComplaintDesk:
    return ComplaintDesk(ctx.runtime.cases)


async def _complaint(ctx: AdminContext, case_id: int) -> Case:
    try:
        found = await ctx.runtime.cases.get(case_id)
    except CaseInputError:
        found = None
    if found is None or found.kind != COMPLAINT:
        raise AdminInputError(f"no complaint {case_id}")
    return found


@strawberry.type
class ComplaintAdminQuery:
    @strawberry.field(description="Complaints and reports, overdue first, then by deadline, with the filer's contact.")
    async def complaints(
        self, info: strawberry.Info, status: Optional[str] = None, department: Optional[str] = None,
        overdue: bool = False, first: int = 100,
    ) -> list[OfficeComplaint]:
        ctx = _ctx(info)
        if status is not None and status not in STATUSES:
            raise AdminInputError(f"status: one of {', '.join(STATUSES)}")
        if not 1 <= first <= MAX_PAGE:
            raise AdminInputError(f"first: 1 to {MAX_PAGE}")
        found = await ctx.runtime.cases.find(
            kind=COMPLAINT, status=status, department=department, today=ctx.runtime.today(), overdue_only=overdue, limit=first
        )
        shown = [_office_view(ctx, c) for c in found]
        ctx.note(
            "complaints", status=status, department=department, overdue=overdue or None, listed=len(shown),
            contactsShown=sum(1 for c in shown if c.contact is not None),
        )
        ctx.subjects.update(c.subject for c in found if c.subject)
        return shown

    @strawberry.field(description="One complaint with its history, attachments, outcome and the filer's contact.")
    async def complaint(self, info: strawberry.Info, id: int) -> OfficeComplaint:
        ctx = _ctx(info)
        found = await _complaint(ctx, id)
        shown = _office_view(ctx, found)
        ctx.note("complaint", subject=found.subject, case=id, contactShown=shown.contact is not None)
        return shown


@strawberry.type
class ComplaintAdminMutation:
    @strawberry.mutation(description=(
        "Triage: send a complaint to the department that answers it (its deadline then runs from today). "
        "fromDepartment: where you saw it (absent: still with the credit office); a complaint that has moved since is refused."
    ))
    async def assign_complaint(
        self, info: strawberry.Info, id: int, department: str, note: str = "", from_department: Optional[str] = None,
    ) -> OfficeComplaint:
        ctx = _ctx(info)
        chosen = _department(ctx, department)
        await _complaint(ctx, id)
        try:
            moved = await _desk(ctx).assign(id, chosen, note, Actor.credit_office(ctx.by), from_department)
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("assignComplaint", subject=moved.subject, case=id, department=chosen, fromDepartment=from_department,
                 deadline=moved.deadline.isoformat() if moved.deadline else None)
        return _office_view(ctx, moved)

    @strawberry.mutation(description=(
        "Triage: reject a complaint (not within scope, a duplicate); the note is the answer its filer reads. "
        "fromDepartment: where you saw it (absent: still with the credit office)."
    ))
    async def reject_complaint(
        self, info: strawberry.Info, id: int, note: str, from_department: Optional[str] = None,
    ) -> OfficeComplaint:
        ctx = _ctx(info)
        await _complaint(ctx, id)
        try:
            moved = await _desk(ctx).reject(id, note, Actor.credit_office(ctx.by), from_department)
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("rejectComplaint", subject=moved.subject, case=id, fromDepartment=from_department)
        return _office_view(ctx, moved)

    @strawberry.mutation(description=(
        "Close an assigned complaint as the credit office: substantiated (optionally citing the finding of the "
        "department it is with) or unsubstantiated; the note is the answer its filer reads."
    ))
    async def resolve_complaint(
        self, info: strawberry.Info, id: int, outcome: str, note: str, finding_id: Optional[int] = None,
    ) -> OfficeComplaint:
        ctx = _ctx(info)
        if outcome not in OUTCOMES:
            raise AdminInputError(f"outcome: {' or '.join(OUTCOMES)}")
        await _complaint(ctx, id)
        try:
            moved = await _desk(ctx).resolve(id, outcome, note, Actor.credit_office(ctx.by), finding_id)
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("resolveComplaint", subject=moved.subject, case=id, outcome=outcome, finding=finding_id)
        return _office_view(ctx, moved)
