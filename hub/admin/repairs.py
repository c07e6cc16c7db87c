"""The admin API's credit repair fields (the credit office, 信用办; docs/cases.md).

Reads: `repairs(status, department, subject, overdue, first)` — every repair application, overdue
first, then by deadline. Changes: `decideRepair(id, approve, note)` — the credit office approves
or refuses any application (as the deciding department would: an approval ends the listing as
`repaired`, or the record's public display, in the step's transaction; the answer follows the
commit and the subject's re-rating runs in the background). Cases are shown due soon as the
policy's `cases.deadlines.reminder` says. Each read and change is noted in the request's audit
entry, naming the subject.
"""

from __future__ import annotations

from typing import Optional

import strawberry

from xinlian.hub.cases.model import REPAIR, Actor, CaseInputError
from xinlian.hub.credit.register import subject_key
from xinlian.hub.executor.case_fields import case_view
from xinlian.schema import cases as gql

from .context import AdminContext
from .operations import AdminInputError

MAX_PAGE = 500


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


@strawberry.type
class RepairAdminQuery:
    @strawberry.field(description="Credit repair applications (信用修复), overdue first, then by deadline.")
    async def repairs(
        self, info: strawberry.Info, status: Optional[str] = None, department: Optional[str] = None,
        subject: Optional[str] = None, overdue: bool = False, first: int = 100,
    ) -> list[gql.CaseView]:
        ctx = _ctx(info)
        if not 1 <= first <= MAX_PAGE:
            raise AdminInputError(f"first: 1 to {MAX_PAGE}")
        try:
            key = subject_key(subject) if subject else None
        except ValueError as exc:  # CreditInputError: neither a USCC nor a resident ID
            raise AdminInputError(str(exc)) from None
        today = ctx.runtime.today()
        found = await ctx.runtime.cases.find(
            kind=REPAIR, status=status, department=department, subject=key, today=today, overdue_only=overdue, limit=first,
        )
        ctx.note("repairs", subject=key, status=status, department=department, overdue=overdue or None, listed=len(found))
        ctx.subjects.update(c.subject for c in found if c.subject)
        reminder = ctx.runtime.policy.cases.deadlines.reminder
        return [case_view(c, today, ctx.runtime.calendar, reminder) for c in found]


@strawberry.type
class RepairAdminMutation:
    @strawberry.mutation(description="Approve or refuse a credit repair application as the credit office, with a note.")
    async def decide_repair(self, info: strawberry.Info, id: int, approve: bool, note: str) -> gql.CaseView:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            case = await runtime.repairs.decide(id, approve, note, Actor.credit_office(ctx.by), runtime.credit.register)
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        runtime.repairs.settle(case, runtime.credit, runtime.policy)  # committed: the re-rating runs in the background
        ctx.note("decideRepair", subject=case.subject, case=id, status=case.status, reason=note)
        return case_view(case, runtime.today(), runtime.calendar, runtime.policy.cases.deadlines.reminder)
