"""The admin API's case fields (the credit office, 信用办): every case, what is overdue, assignment.

Reads: `cases(kind, status, department, overdue, first)` — every kind, overdue first, then by
deadline (the credit office sees everything); `case(id)` with its history; `caseCounts` — open,
overdue and closed per kind. Changes: `assignCase(id, department, note)` — send an objection or a
complaint to the department that answers it (a complaint's deadline then runs from the
assignment). Each read and change is noted in the request's audit entry. Kind-specific steps
(closing an objection, triaging a complaint, deciding a repair) are in their own modules.
"""

from __future__ import annotations

from typing import Optional

import strawberry

from xinlian.hub.cases.complaints import assign
from xinlian.hub.cases.model import KINDS, Actor, CaseInputError
from xinlian.hub.executor.case_fields import case_view
from xinlian.schema import cases as gql

from .context import AdminContext
from .operations import AdminInputError

MAX_PAGE = 500


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


def _department(ctx: AdminContext, department: str) -> str:
    names = {d.name for d in ctx.runtime.federation.departments}
    if department not in names:
        raise AdminInputError(f"department: one of {', '.join(sorted(names))}")
    return department


@strawberry.type(description="Cases of one kind: open, overdue (open past their deadline) and closed.")
class CaseCount:
    kind: str
    open: int
    overdue: int
    closed: int


@strawberry.type
class CaseAdminQuery:
    @strawberry.field(description="Cases, overdue first, then by deadline: every kind (objection, complaint, repair) or one.")
    async def cases(
        self, info: strawberry.Info, kind: Optional[str] = None, status: Optional[str] = None,
        department: Optional[str] = None, overdue: bool = False, first: int = 100,
    ) -> list[gql.CaseView]:
        ctx = _ctx(info)
        if kind is not None and kind not in KINDS:
            raise AdminInputError(f"kind: one of {', '.join(KINDS)}")
        if not 1 <= first <= MAX_PAGE:
            raise AdminInputError(f"first: 1 to {MAX_PAGE}")
        today = ctx.runtime.today()
        found = await ctx.runtime.cases.find(
            kind=kind, status=status, department=department, today=today, overdue_only=overdue, limit=first
        )
        ctx.note("cases", kind=kind, status=status, department=department, overdue=overdue or None, listed=len(found))
        ctx.subjects.update(c.subject for c in found if c.subject)
        return [case_view(c, today, ctx.runtime.calendar, ctx.runtime.policy.cases.deadlines.reminder) for c in found]

    @strawberry.field(description="One case with its history and attachments.")
    async def case(self, info: strawberry.Info, id: int) -> gql.CaseView:
        ctx = _ctx(info)
        try:
            found = await ctx.runtime.cases.get(id)
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("case", subject=found.subject, case=id)
        return case_view(found, ctx.runtime.today(), ctx.runtime.calendar, ctx.runtime.policy.cases.deadlines.reminder)

    @strawberry.field(description="Open, overdue and closed cases per kind.")
    async def case_counts(self, info: strawberry.Info) -> list[CaseCount]:
        ctx = _ctx(info)
        counts = await ctx.runtime.cases.counts(ctx.runtime.today())
        ctx.note("caseCounts")
        return [CaseCount(kind=k, **v) for k, v in counts.items()]


@strawberry.type
class CaseAdminMutation:
    @strawberry.mutation(description="Send an objection or a complaint to the department that answers it.")
    async def assign_case(self, info: strawberry.Info, id: int, department: str, note: str = "") -> gql.CaseView:
        ctx = _ctx(info)
        chosen = _department(ctx, department)
        try:
            moved = await assign(ctx.runtime.cases, id, chosen, note, Actor.credit_office(ctx.by))
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("assignCase", subject=moved.subject, case=id, kind=moved.kind, department=chosen)
        return case_view(moved, ctx.runtime.today(), ctx.runtime.calendar, ctx.runtime.policy.cases.deadlines.reminder)
