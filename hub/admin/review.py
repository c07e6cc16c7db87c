"""The admin API's review queue (预留审核环节): new PUBLIC records waiting for approval.

Reads: `reviewItems(status, department, family, first)` — oldest sighting first, `pending` by
default. Changes: `approveReviewItems(ids, note)` and `rejectReviewItems(ids, note)` — all the
named items or none (an item that is not pending refuses the lot), each noted in the request's
audit entry with the records' subjects. An approved record shows on `/public/graphql` in every
hub process within the change feed's interval; a rejected one never does (hub/cases/review.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

import strawberry

from xinlian.hub.cases.model import CaseInputError
from xinlian.hub.cases.review import ReviewItem

from .context import AdminContext
from .operations import AdminInputError

MAX_PAGE = 1000


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


@strawberry.type(name="ReviewItem", description="A department's new PUBLIC record in the review before publication.")
class ReviewItemView:
    id: int
    department: str = strawberry.field(description="The department (connector name) that provides the record.")
    family: str
    subject: str
    record_key: str = strawberry.field(description="The record's key (decision number).")
    status: str = strawberry.field(description="pending, approved or rejected.")
    first_seen_at: dt.datetime = strawberry.field(description="When the hub first met the record (the queue's clock starts).")
    decided_at: Optional[dt.datetime]
    decided_by: Optional[str]
    note: str

    @classmethod
    def of(cls, item: ReviewItem) -> "ReviewItemView":
        k = item.key
        return cls(
            id=item.id, department=k.department, family=k.family, subject=k.subject, record_key=k.record_key,
            status=item.status, first_seen_at=item.first_seen_at, decided_at=item.decided_at,
            decided_by=item.decided_by, note=item.note,
        )


@strawberry.type
class ReviewAdminQuery:
    @strawberry.field(description="The review queue, oldest sighting first (`status`: pending, approved, rejected; null: all).")
    async def review_items(
        self, info: strawberry.Info, status: Optional[str] = "pending", department: Optional[str] = None,
        family: Optional[str] = None, first: int = 200,
    ) -> list[ReviewItemView]:
        ctx = _ctx(info)
        if not 1 <= first <= MAX_PAGE:
            raise AdminInputError(f"first: 1 to {MAX_PAGE}")
        try:
            found = await ctx.runtime.review.find(status, department, family, first)
        except CaseInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("reviewItems", status=status, department=department, family=family, listed=len(found))
        return [ReviewItemView.of(i) for i in found]


async def _decide(info: strawberry.Info, ids: list[int], action: str, note: str) -> list[ReviewItemView]:
    ctx = _ctx(info)
    try:
        decided = await ctx.runtime.review.decide(ids, action, note, ctx.by)
    except CaseInputError as exc:
        raise AdminInputError(str(exc)) from None
    ctx.subjects.update(i.key.subject for i in decided)
    ctx.note(f"{action}ReviewItems", ids=[i.id for i in decided], note=note.strip() or None)
    return [ReviewItemView.of(i) for i in decided]


@strawberry.type
class ReviewAdminMutation:
    @strawberry.mutation(description="Approve pending records for the public endpoint (all or none).")
    async def approve_review_items(self, info: strawberry.Info, ids: list[int], note: str = "") -> list[ReviewItemView]:
        return await _decide(info, ids, "approve", note)

    @strawberry.mutation(description="Reject pending records: never shown on the public endpoint (all or none; say why).")
    async def reject_review_items(self, info: strawberry.Info, ids: list[int], note: str) -> list[ReviewItemView]:
        if not note.strip():
            raise AdminInputError("note: say why the records are rejected")
        return await _decide(info, ids, "reject", note)
