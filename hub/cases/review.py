"""`ReviewQueue`: the review before publication (预留审核环节) of new PUBLIC records.

A department's new record of a reviewed family (the policy's `cases.review.families`: penalties
and licences by default) is shown on `/public/graphql` only once it is **publishable**
(`publishable`):

- a reviewer **approved** it (`xinlian review approve`, the admin API's `approveReviewItems`) —
  and a **rejected** one is never shown, whatever its source;
- or its department is **trusted** by the credit office (`[cases.review.sources.<dept>]
  trusted = true`): approved on sight;
- or it has waited `after_hours` in the queue since it was first seen (per department, or the
  policy's default `after_hours`): approved automatically; without one, it waits for a reviewer.

Records decided before the policy's `since` date were published before the queue existed and
pass without review. Government callers always see every record: the review concerns what the
public sees.

The hub learns of a new record when it first meets it — any endpoint reading the family — and
queues it then (`sight`: one `INSERT … ON CONFLICT DO NOTHING` per unseen record, remembered so
a record is written once per process). What a request asks (`publishable`) is answered from
memory: every hub process holds the queue's decisions (`ReviewState`, a view that follows the
change feed topic `review_items`) and reads no store per request in steady state.

Decisions are transitions from `pending` only, each with who, when and why; they are audited by
the caller (the admin request's entry, the CLI's entry).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from xinlian.hub.cluster.views import FollowedView
from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import ReviewItemRecord
from xinlian.hub.store.times import as_utc
from xinlian.policies.cases import ReviewRules, ReviewSource
from xinlian.policies.review import REVIEW_MARK
from xinlian.schema.catalogue import RecordFamily

from .model import CaseInputError, CaseNotFound

log = logging.getLogger("xinlian.cases")
ITEMS = table_of(ReviewItemRecord)
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
DECISIONS = {"approve": APPROVED, "reject": REJECTED}


@dataclass(frozen=True)
class ReviewKey:
    """One record from one department: what the queue holds."""

    department: str
    family: str
    subject: str
    record_key: str


@dataclass(frozen=True)
class ReviewItem:
    id: int
    key: ReviewKey
    status: str
    first_seen_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    note: str

    @classmethod
    def of(cls, r: Any) -> "ReviewItem":
        return cls(
            id=r.id, key=ReviewKey(r.department, r.family, r.subject, r.record_key), status=r.status,
            first_seen_at=as_utc(r.first_seen_at), decided_at=as_utc(r.decided_at) if r.decided_at else None,
            decided_by=r.decided_by, note=r.note,
        )


def publishable(source: ReviewSource, status: str | None, first_seen: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a reviewed record may be shown to the public now (see the module docstring): a
    decision wins; then a trusted source; then `after_hours` in the queue (at exactly that many
    hours it is shown); an unseen record is not shown."""
    if status == APPROVED:
        return True
    if status == REJECTED:
        return False
    if source.trusted:
        return True
    if source.after_hours is not None and first_seen is not None:
        return now >= first_seen + dt.timedelta(hours=source.after_hours)
    return False


class ReviewState(FollowedView):
    """Every queued record's status and first sighting, in memory (hub/cluster/views.py)."""

    topics = ("review_items",)

    def __init__(self, store: Store, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, interval, clock)
        self.items: dict[ReviewKey, tuple[str, dt.datetime]] = {}
        self._version: tuple[int, int, int] | None = None

    async def _revalidate(self) -> None:
        checked = self.clock()
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(
                func.count(ITEMS.c.id), func.max(ITEMS.c.id), func.count(ITEMS.c.decided_at)
            ))).one()
            version = (int(row[0]), int(row[1] or 0), int(row[2]))
            if version != self._version:
                rows = await conn.execute(select(
                    ITEMS.c.department, ITEMS.c.family, ITEMS.c.subject, ITEMS.c.record_key, ITEMS.c.status,
                    ITEMS.c.first_seen_at,
                ))
                self.items = {
                    ReviewKey(d, f, s, k): (status, as_utc(seen)) for d, f, s, k, status, seen in rows
                }
                self._version = version
                self.reloads += 1
        self._checked_at(checked)


class ReviewQueue:
    """The review before publication (see the module docstring)."""

    def __init__(self, store: Store, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 refresh_interval: float = 1.0) -> None:
        self.store = store
        self.clock = clock
        self.state = ReviewState(store, refresh_interval)

    async def fresh(self) -> None:
        await self.state.fresh()

    def status(self, key: ReviewKey) -> tuple[str, dt.datetime] | None:
        """(status, first seen) of a queued record, from memory (call `fresh()` once per request first)."""
        return self.state.items.get(key)

    async def sight(self, keys: Iterable[ReviewKey]) -> int:
        """Queue the records not queued yet (first seen now); returns how many were new here."""
        unseen = [k for k in dict.fromkeys(keys) if k not in self.state.items]
        if not unseen:
            return 0
        now = self.clock()
        rows = [
            {"department": k.department, "family": k.family, "subject": k.subject, "record_key": k.record_key[:200],
             "status": PENDING, "first_seen_at": now, "note": ""}
            for k in unseen
        ]
        insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(ITEMS).values(rows).on_conflict_do_nothing(
                index_elements=["department", "family", "subject", "record_key"]
            ))
        for k in unseen:  # seen here now (another process may have seen it first: the view corrects the time)
            self.state.items.setdefault(k, (PENDING, now))
        self.state.invalidate()
        return len(unseen)

    async def decide(self, ids: Sequence[int], action: str, note: str, by: str) -> list[ReviewItem]:
        """Approve or reject pending items; all or none (an id that is not pending refuses the lot)."""
        status = DECISIONS.get(action)
        if status is None:
            raise CaseInputError("decision: approve or reject")
        if not ids:
            raise CaseInputError("name at least one review item")
        if len(ids) > 1000:
            raise CaseInputError("at most 1,000 items at once")
        wanted = sorted(set(ids))
        now = self.clock()
        async with self.store.exclusive("review-items") as conn:
            rows = (await conn.execute(select(ITEMS.c.id, ITEMS.c.status).where(ITEMS.c.id.in_(wanted)))).all()
            found = {int(i): s for i, s in rows}
            missing = [i for i in wanted if i not in found]
            if missing:
                raise CaseNotFound(f"no review item {', '.join(map(str, missing[:10]))}")
            decided = [i for i in wanted if found[i] != PENDING]
            if decided:
                raise CaseInputError(f"review item {decided[0]} is {found[decided[0]]}: only pending items are decided")
            await conn.execute(
                update(ITEMS).where(and_(ITEMS.c.id.in_(wanted), ITEMS.c.status == PENDING))
                .values(status=status, decided_at=now, decided_by=by, note=note.strip())
            )
            out = [ReviewItem.of(r) for r in (await conn.execute(select(ITEMS).where(ITEMS.c.id.in_(wanted)).order_by(ITEMS.c.id))).all()]
        self.state.invalidate()
        return out

    async def find(
        self, status: str | None = PENDING, department: str | None = None, family: str | None = None, limit: int = 200
    ) -> list[ReviewItem]:
        """Queued records, oldest sighting first."""
        if status not in (None, PENDING, APPROVED, REJECTED):
            raise CaseInputError("status: pending, approved or rejected")
        if limit < 1:
            raise CaseInputError("limit: at least 1")
        query = select(ITEMS).order_by(ITEMS.c.first_seen_at, ITEMS.c.id).limit(limit)
        if status is not None:
            query = query.where(ITEMS.c.status == status)
        if department is not None:
            query = query.where(ITEMS.c.department == department)
        if family is not None:
            query = query.where(ITEMS.c.family == family)
        async with self.store.engine.connect() as conn:
            return [ReviewItem.of(r) for r in (await conn.execute(query)).all()]


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


class ReviewMarks:
    """One request's use of the queue for one reviewed family (made by `RequestContext.loader`).

    `apply(department, by_key)` runs in the family's loader once its department answered: every
    record of the family is looked up in the queue (from memory), unseen ones are queued, and —
    when `mark` (the caller's audience has a `publication-review` row rule for the family) — each
    record is replaced by a copy carrying the queue's verdict under `REVIEW_MARK`, which the row
    rule reads (policies/review.py). Cached records are never changed."""

    def __init__(self, queue: ReviewQueue, rules: ReviewRules, family: RecordFamily, mark: bool) -> None:
        self.queue = queue
        self.rules = rules
        self.family = family
        self.mark = mark

    async def apply(self, department: str, by_key: dict[str, Any]) -> None:
        family, rules = self.family, self.rules
        key_field, date_field = family.record_key, family.recency
        if key_field is None:
            return
        try:
            await self.queue.fresh()
        except Exception:  # the store blinked: decide with what this process last knew (the change feed catches up)
            log.exception("the review queue could not be read; using what this process last read")
        source = rules.source(department)
        now = self.queue.clock()
        unseen: list[ReviewKey] = []
        for subject, outcome in by_key.items():
            if not isinstance(outcome, list):
                continue  # the department's failure: answered as such
            marked: list[Any] = []
            for record in outcome:
                verdict = False
                key = record.get(key_field)
                decided = _day(record.get(date_field)) if date_field else None
                if rules.since is not None and decided is not None and decided < rules.since:
                    verdict = True  # published before the queue existed
                elif key is not None and str(key).strip():
                    found = ReviewKey(department, family.name, subject, str(key).strip()[:200])
                    state = self.queue.status(found)
                    if state is None and not source.trusted:
                        unseen.append(found)
                    status, seen = state if state is not None else (None, now)
                    verdict = publishable(source, status, seen, now)
                if self.mark:
                    marked.append({**record, REVIEW_MARK: verdict})
            if self.mark:
                by_key[subject] = marked
        if unseen:
            try:
                await self.queue.sight(unseen)
            except Exception:  # the store blinked: they stay unpublished and are queued next time
                log.exception("queueing %d %s record(s) of %s for review failed", len(unseen), family.name, department)
