"""`ReviewQueue`: the review before publication (预留审核环节) of new PUBLIC records.

WHERE the review applies is the active policy's `publication-review` row rule (policies/review.py):
its families are the reviewed ones, its audiences (the public) see only publishable records. The
policy's `[cases.review]` section holds the queue's parameters only (`enabled`, `since`,
`after_hours`, per department `trusted` / `after_hours`); `enabled = false` makes every record
publishable and queues nothing. A policy version without the rule has no review.

A record of a reviewed family is **publishable** (`publishable`) when:

- a reviewer **approved** it (`xinlian review approve`, the admin API's `approveReviewItems`) —
  and a **rejected** one is never shown, whatever its source or date: a rejection wins;
- or it was decided before the policy's `since` (published before the queue existed);
- or its department is **trusted** by the credit office (`[cases.review.sources.<dept>]
  trusted = true`): queued already approved (`decided_by` "trusted", `AUTOMATIC`), so a
  reviewer can still find it and reject it;
- or it has waited `after_hours` in the queue since it was first seen (per department, or the
  policy's default `after_hours`); without one, it waits for a reviewer.

Government callers always see every record: the review concerns what the public sees. Credit
governance (ratings, list rules: hub/credit/records.py) leaves out the records a reviewer
rejected, not the pending ones.

**Reading.** What a request asks is answered from memory: every hub process holds the queue
(`ReviewState`, a view following the change feed topic `review_items`, reloaded incrementally:
rows with new ids and rows decided lately, with a full reload only when the store's counts show
something was missed). The family's loader (`ReviewSighting`, made by the request) notes each
record's key and department in the request's caches; `ReviewQueue.verdicts` turns them into
{record key: publishable} for the row rule, `ReviewQueue.rejected` into the keys to leave out.

**Queueing.** The hub learns of a new record when it first meets it — any endpoint reading the
family with its date — and queues it (`note`): in memory at once (a record not yet in the store
is pending, first seen now, or approved when its department is trusted), written by a background
task (`INSERT … ON CONFLICT DO NOTHING`, in batches; `flush()` waits for it, the hub's close
flushes). A read never waits for the store. At most `MAX_UNSAVED` records wait to be written; a
failed write is logged and its records are noted again the next time they are met. A record
whose date was not read (the reader did not fetch it), while the policy has a `since`, is not
queued: it may predate the queue.

**Deciding.** `pending` → `approved` or `rejected`, and an automatic approval (a trusted
department's) → `rejected`; nothing else. All or none, each with who, when and why; audited by
the caller (the admin request's entry, the CLI's entry).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from xinlian.hub.cluster.views import FollowedView
from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import ReviewItemRecord
from xinlian.hub.store.times import as_utc
from xinlian.policies.cases import ReviewRules, ReviewSource
from xinlian.policies.review import review_key
from xinlian.schema.catalogue import RecordFamily

from .model import CaseInputError, CaseNotFound

log = logging.getLogger("xinlian.cases")
ITEMS = table_of(ReviewItemRecord)
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
DECISIONS = {"approve": APPROVED, "reject": REJECTED}
AUTOMATIC = "trusted"  # `decided_by` of a trusted department's record, approved when queued
FLUSH_ROWS = 500  # records per INSERT of the background write
MAX_UNSAVED = 50_000  # records noted and not yet written, at most (more: noted again when met again)
ID_MARGIN = 1_000  # an incremental reload re-reads this many ids below the highest read (late commits)
DECIDED_MARGIN = dt.timedelta(minutes=2)  # ... and reviewers' decisions this long before the newest read (clocks)

# what a request's loaders note (`ReviewSighting`), by (subject, family): (record key, department) →
# the decision date read with the record (None: not read, or the record has none)
Seen = dict[tuple[str, str], dict[tuple[str, str], "dt.date | None"]]


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
    """Every queued record's status and first sighting, in memory (hub/cluster/views.py).

    `items` are the store's rows as last read; `local` the records this process noted and has not
    read back yet (`get` looks in both). Reloads are incremental (see the module docstring)."""

    topics = ("review_items",)

    def __init__(self, store: Store, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, interval, clock)
        self.items: dict[ReviewKey, tuple[str, dt.datetime]] = {}
        self.local: dict[ReviewKey, tuple[str, dt.datetime]] = {}
        self.full_reloads = 0  # reads of the whole table (for tests and metrics)
        self._version: tuple[int, int, int, int] | None = None  # the store's rows, max id, decided, rejected
        self._max_id = 0
        self._newest_decision: dt.datetime | None = None
        self._decided = 0  # items not pending
        self._rejected = 0

    def get(self, key: ReviewKey) -> tuple[str, dt.datetime] | None:
        return self.items.get(key) or self.local.get(key)

    def _held(self) -> tuple[int, int, int]:
        return len(self.items), self._decided, self._rejected

    async def _revalidate(self) -> None:
        checked = self.clock()
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(
                func.count(ITEMS.c.id), func.max(ITEMS.c.id),
                func.count(case((ITEMS.c.status != PENDING, 1))), func.count(case((ITEMS.c.status == REJECTED, 1))),
            ))).one()
            version = (int(row[0]), int(row[1] or 0), int(row[2]), int(row[3]))
            counted = (version[0], version[2], version[3])
            if self._version is None:
                await self._load_all(conn)
            elif version != self._version:
                await self._load_changes(conn)
                held = self._held()  # may be ahead of `counted` (changes since it was read), never behind
                if any(h < c for h, c in zip(held, counted)):  # a row or a decision committed late: missed
                    log.info("review queue view behind the store (%s < %s): reading it whole", held, counted)
                    await self._load_all(conn)
            elif self._held() != counted:  # nothing moved since the last read, yet the view differs (rows deleted)
                log.info("review queue view differs from the store (%s, %s): reading it whole", self._held(), counted)
                await self._load_all(conn)
            else:
                self._checked_at(checked)
                return
            self._version = version
            self.reloads += 1
        self._checked_at(checked)

    _COLUMNS = (ITEMS.c.id, ITEMS.c.department, ITEMS.c.family, ITEMS.c.subject, ITEMS.c.record_key,
                ITEMS.c.status, ITEMS.c.first_seen_at, ITEMS.c.decided_at, ITEMS.c.decided_by)

    async def _load_all(self, conn: Any) -> None:
        rows = (await conn.execute(select(*self._COLUMNS))).all()
        # replaced in one synchronous step: requests read the view without its lock, and an empty
        # view would show a trusted department's rejected record and forget every rejection
        self.items, self._max_id, self._newest_decision, self._decided, self._rejected = {}, 0, None, 0, 0
        self._merge(rows)
        self.full_reloads += 1

    async def _load_changes(self, conn: Any) -> None:
        """The rows added (ids above the highest read, less a margin) and those a reviewer decided
        lately (automatic approvals are decided when added: read with the new rows)."""
        self._merge(await conn.execute(select(*self._COLUMNS).where(ITEMS.c.id > self._max_id - ID_MARGIN)))
        decided: Any = and_(ITEMS.c.decided_at.is_not(None), ITEMS.c.decided_by != AUTOMATIC)
        if self._newest_decision is not None:
            decided = and_(decided, ITEMS.c.decided_at >= self._newest_decision - DECIDED_MARGIN)
        self._merge(await conn.execute(select(*self._COLUMNS).where(decided)))

    def _merge(self, rows: Iterable[Any]) -> None:
        items, local = self.items, self.local
        for id_, department, family, subject, record_key, status, seen, decided_at, decided_by in rows:
            key = ReviewKey(department, family, subject, record_key)
            old = items.get(key)
            if old is not None:
                self._decided -= old[0] != PENDING
                self._rejected -= old[0] == REJECTED
            items[key] = (status, as_utc(seen))
            self._decided += status != PENDING
            self._rejected += status == REJECTED
            if local:
                local.pop(key, None)
            if id_ > self._max_id:
                self._max_id = id_
            if decided_at is not None and decided_by != AUTOMATIC:  # a reviewer's decision: the watermark
                decided_at = as_utc(decided_at)
                if self._newest_decision is None or decided_at > self._newest_decision:
                    self._newest_decision = decided_at


class ReviewQueue:
    """The review before publication (see the module docstring)."""

    def __init__(self, store: Store, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
                 refresh_interval: float = 1.0) -> None:
        self.store = store
        self.clock = clock
        self.state = ReviewState(store, refresh_interval)
        self._unsaved: dict[ReviewKey, tuple[str, dt.datetime]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def fresh(self) -> None:
        await self.state.fresh()

    def status(self, key: ReviewKey) -> tuple[str, dt.datetime] | None:
        """(status, first seen) of a queued record, from memory (call `fresh()` once per request first)."""
        return self.state.get(key)

    # ---- what a request asks --------------------------------------------------------------
    def verdicts(self, rules: ReviewRules, family: str, subject: str, seen: Mapping[tuple[str, str], dt.date | None]) -> dict[str, bool]:
        """{record key: publishable now} for the subject's records of `family` noted by the request's
        loaders. A key given by several departments is publishable only if it is for each of them."""
        now, since, state = self.clock(), rules.since, self.state
        sources: dict[str, ReviewSource] = {}
        out: dict[str, bool] = {}
        for (key, department), decided in seen.items():
            found = state.get(ReviewKey(department, family, subject, key))
            status, first_seen = found if found is not None else (None, now)
            if status == REJECTED:
                shown = False  # a rejection wins, whatever the record's date
            elif since is not None and decided is not None and decided < since:
                shown = True  # published before the queue existed
            else:
                source = sources.get(department)
                if source is None:
                    source = sources[department] = rules.source(department)
                shown = publishable(source, status, first_seen, now)
            out[key] = shown and out.get(key, True)
        return out

    def rejected(self, family: str, subject: str, seen: Mapping[tuple[str, str], dt.date | None]) -> set[str]:
        """Keys of the subject's records of `family` (noted by the request's loaders) a reviewer rejected."""
        state = self.state
        out: set[str] = set()
        for key, department in seen:
            found = state.get(ReviewKey(department, family, subject, key))
            if found is not None and found[0] == REJECTED:
                out.add(key)
        return out

    # ---- queueing ---------------------------------------------------------------------------
    def note(self, keys: Iterable[ReviewKey], trusted: bool = False) -> int:
        """Queue the records not queued yet, first seen now — approved at once (`AUTOMATIC`) when
        `trusted` — in memory; a background task writes them (`flush` waits for it). Returns how
        many were new here. Must run in the event loop."""
        now = self.clock()
        entry = (APPROVED if trusted else PENDING, now)
        state, unsaved = self.state, self._unsaved
        added = dropped = 0
        for key in keys:
            if key in state.items or key in state.local:
                continue
            if len(unsaved) >= MAX_UNSAVED:
                dropped += 1
                continue
            state.local[key] = unsaved[key] = entry
            added += 1
        if dropped:
            log.warning("review queue: %d record(s) not queued, %d wait to be written; noted again when met", dropped, len(unsaved))
        if unsaved and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return added

    async def sight(self, keys: Iterable[ReviewKey], trusted: bool = False) -> int:
        """`note` and wait until written (for tests and tools: a request never waits)."""
        added = self.note(keys, trusted)
        await self.flush()
        return added

    async def flush(self) -> None:
        """Wait until every record noted so far is written (or its write failed, logged)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        unsaved = self._unsaved
        while unsaved:
            batch = dict(itertools.islice(unsaved.items(), FLUSH_ROWS))
            for key in batch:
                del unsaved[key]
            try:
                await self._insert(batch)
            except Exception:  # the store blinked: forget them here, they are noted again when met
                lost = {**batch, **unsaved}
                unsaved.clear()
                for key in lost:
                    self.state.local.pop(key, None)
                log.exception("review queue: writing %d record(s) failed; they are queued when met again", len(lost))
                return
        # no read-back here: the change feed watches review_items' inserts (a first sighting another
        # process wrote reaches this view with the feed), and this process's are in `state.local`

    async def _insert(self, batch: Mapping[ReviewKey, tuple[str, dt.datetime]]) -> None:
        rows = [
            {"department": k.department, "family": k.family, "subject": k.subject, "record_key": k.record_key,
             "status": status, "first_seen_at": seen, "decided_at": seen if status != PENDING else None,
             "decided_by": AUTOMATIC if status != PENDING else None, "note": ""}
            for k, (status, seen) in batch.items()
        ]
        insert = pg_insert if self.store.dialect == "postgresql" else sqlite_insert
        async with self.store.engine.begin() as conn:
            await conn.execute(insert(ITEMS).values(rows).on_conflict_do_nothing(
                index_elements=["department", "family", "subject", "record_key"]
            ))

    # ---- deciding -----------------------------------------------------------------------------
    async def decide(self, ids: Sequence[int], action: str, note: str, by: str) -> list[ReviewItem]:
        """Approve or reject items; all or none. Approve: pending items only. Reject: pending items
        and automatic approvals (a trusted department's records). Any other item refuses the lot."""
        status = DECISIONS.get(action)
        if status is None:
            raise CaseInputError("decision: approve or reject")
        if not ids:
            raise CaseInputError("name at least one review item")
        if len(ids) > 1000:
            raise CaseInputError("at most 1,000 items at once")
        if by == AUTOMATIC:
            raise CaseInputError(f"{AUTOMATIC!r} names automatic approvals: decide under your own name")
        wanted = sorted(set(ids))
        now = self.clock()
        open_: Any = ITEMS.c.status == PENDING
        if status == REJECTED:
            open_ = or_(open_, and_(ITEMS.c.status == APPROVED, ITEMS.c.decided_by == AUTOMATIC))
        async with self.store.exclusive("review-items") as conn:
            rows = (await conn.execute(
                select(ITEMS.c.id, ITEMS.c.status, ITEMS.c.decided_by).where(ITEMS.c.id.in_(wanted))
            )).all()
            found = {int(i): (s, d) for i, s, d in rows}
            missing = [i for i in wanted if i not in found]
            if missing:
                raise CaseNotFound(f"no review item {', '.join(map(str, missing[:10]))}")
            closed = [i for i in wanted if not _open(found[i], status)]
            if closed:
                first = closed[0]
                raise CaseInputError(
                    f"review item {first} is {found[first][0]}: only pending items are decided "
                    "(and automatic approvals rejected)"
                )
            await conn.execute(
                update(ITEMS).where(and_(ITEMS.c.id.in_(wanted), open_))
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


def _open(item: tuple[str, str | None], decision: str) -> bool:
    """Whether an item (status, decided by) may take `decision`."""
    status, by = item
    return status == PENDING or (decision == REJECTED and status == APPROVED and by == AUTOMATIC)


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


class ReviewSighting:
    """One request's use of the queue for one reviewed family's loader (made by `RequestContext.loader`).

    `apply(department, by_key, requested)` runs in the loader once its department answered: it
    notes each record's key and department (and decision date) in the request's caches (`seen`,
    by (subject, family)) — what `SubjectFacts.publication` and credit governance read — and
    queues the records the queue does not hold yet (`ReviewQueue.note`: in memory, written in the
    background). Records are read, never changed or copied."""

    __slots__ = ("queue", "rules", "family", "seen")

    def __init__(self, queue: ReviewQueue, rules: ReviewRules, family: RecordFamily, seen: Seen) -> None:
        self.queue = queue
        self.rules = rules
        self.family = family
        self.seen = seen

    async def apply(self, department: str, by_key: Mapping[str, Any], requested: frozenset[str]) -> None:
        family, rules, queue = self.family, self.rules, self.queue
        key_field = family.record_key
        if key_field is None:
            return
        try:
            await queue.fresh()
        except Exception:  # the store blinked: decide with what this process last read (the change feed catches up)
            log.exception("the review queue could not be read; using what this process last read")
        # the date is known only when this read asked for it; while `since` applies, a record whose
        # date is not known is not queued (it may have been published before the queue)
        date_field = family.recency if family.recency is not None and family.recency in requested else None
        since = rules.since
        name, seen_all, status = family.name, self.seen, queue.state.get
        unseen: list[ReviewKey] = []
        for subject, outcome in by_key.items():
            if not isinstance(outcome, list):
                continue  # the department's failure: answered as such
            seen = seen_all.get((subject, name))
            if seen is None:
                seen = seen_all[(subject, name)] = {}
            for record in outcome:
                key = review_key(record.get(key_field))
                if key is None:
                    continue  # no key: the rule hides it
                decided = _day(record.get(date_field)) if date_field is not None else None
                noted = (key, department)
                if decided is not None or noted not in seen:
                    seen[noted] = decided
                if since is not None and (date_field is None or (decided is not None and decided < since)):
                    continue  # date unknown, or published before the queue
                found = ReviewKey(department, name, subject, key)
                if status(found) is None:
                    unseen.append(found)
        if unseen:
            queue.note(unseen, trusted=rules.source(department).trusted)
