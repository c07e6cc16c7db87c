"""`ObjectionRegister`: objections (异议) to single credit records, and the flag they raise.

An objection names the subject, the record family and the record's key (its decision or case
number: `RecordFamily.record_key`). While it is open, every caller who receives that record
gets it with `underObjection: true`. Closing it (`upheld`: the department corrects or withdraws
the record at its source; `dismissed`: the record stands) removes the flag. Objections are never
deleted. The full objection workflow (filing by the subject, the department's verification
within its deadline) builds on this register.

Reading the flags costs no query per request: the register keeps the open objections in memory
(`OpenObjections`). In a hub (`follow(feed)`) they are reloaded in the background whenever the
store's change feed (hub/cluster/changes.py) says `objections` changed — within the feed's
interval (1 s) in every hub process, milliseconds on PostgreSQL (NOTIFY) or with Redis. Without
a (current) feed, a request asks the store at most once a second whether they changed — one
cheap query (`count` and `max(id)` of the open ones, which move on every filing and closing) —
and reloads them only then. A filing or closing through this register shows at once in this
process.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Callable, Iterable

from sqlalchemy import func, select, update

from xinlian.hub.cluster.views import FollowedView
from xinlian.hub.store import Store
from xinlian.hub.store.core import changed
from xinlian.hub.store.models import ObjectionRecord
from xinlian.schema.catalogue import FAMILIES
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

OPEN = "open"
OUTCOMES = ("upheld", "dismissed")


class ObjectionError(ValueError):
    """An objection cannot be filed or closed as asked."""


def check_subject(subject: str) -> str:
    """A USCC or a resident ID, normalised; `ObjectionError` otherwise."""
    try:
        return validate_uscc(subject)
    except InvalidIdentifier:
        pass
    try:
        return validate_resident_id(subject)
    except InvalidIdentifier:
        raise ObjectionError(f"subject {subject!r} is neither a valid USCC nor a valid resident ID") from None


class OpenObjections(FollowedView):
    """The open objections in memory, revalidated against the store at most every `interval` s
    (hub/cluster/views.py)."""

    topics = ("objections",)

    def __init__(self, store: Store, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, interval, clock)
        self._refs: dict[str, dict[str, set[str]]] = {}  # subject → family → record refs
        self._version: tuple[int, int] | None = None  # (count, max id) of the open objections

    async def refs(self, subjects: list[str]) -> dict[tuple[str, str], set[str]]:
        await self.fresh()
        out: dict[tuple[str, str], set[str]] = {}
        for subject in subjects:
            for family, refs in self._refs.get(subject, {}).items():
                out[(subject, family)] = set(refs)
        return out

    async def _revalidate(self) -> None:
        o = ObjectionRecord
        checked = self.clock()
        async with self.store.session() as session:
            row = (await session.execute(select(func.count(o.id), func.max(o.id)).where(o.status == OPEN))).one()
            version = (int(row[0]), int(row[1] or 0))
            if version != self._version:
                refs: dict[str, dict[str, set[str]]] = {}
                rows = await session.execute(select(o.subject, o.family, o.record_ref).where(o.status == OPEN))
                for subject, family, ref in rows:
                    refs.setdefault(subject, {}).setdefault(family, set()).add(ref)
                self._refs, self._version = refs, version
                self.reloads += 1
        self._checked_at(checked)


class ObjectionRegister:
    def __init__(self, store: Store, refresh_interval: float = 1.0) -> None:
        self.store = store
        self.open_objections = OpenObjections(store, refresh_interval)

    async def file(self, subject: str, family: str, record_ref: str, reason: str, filed_by: str) -> ObjectionRecord:
        spec = FAMILIES.get(family)
        if spec is None or spec.record_key is None:
            keyed = ", ".join(n for n, f in FAMILIES.items() if f.record_key)
            raise ObjectionError(f"objections can be filed against records of: {keyed}")
        record_ref, reason = record_ref.strip(), reason.strip()
        if not record_ref or len(record_ref) > 200:
            raise ObjectionError(f"record_ref: the record's {spec.record_key}, 1 to 200 characters")
        if not reason:
            raise ObjectionError("reason: say why the record is disputed")
        record = ObjectionRecord(
            subject=check_subject(subject),
            family=family,
            record_ref=record_ref,
            status=OPEN,
            reason=reason,
            filed_at=dt.datetime.now(dt.timezone.utc),
            filed_by=filed_by,
        )
        async with self.store.session() as session:
            session.add(record)
            await session.commit()
            await session.refresh(record)
        self.open_objections.invalidate()
        return record

    async def close(self, objection_id: int, outcome: str, note: str, closed_by: str) -> bool:
        """Close an open objection as `upheld` or `dismissed`; False if none is open with that id."""
        if outcome not in OUTCOMES:
            raise ObjectionError(f"outcome must be one of {', '.join(OUTCOMES)}")
        async with self.store.session() as session:
            result = await session.execute(
                update(ObjectionRecord)
                .where(ObjectionRecord.id == objection_id, ObjectionRecord.status == OPEN)
                .values(status=outcome, outcome=note.strip(), closed_by=closed_by, closed_at=dt.datetime.now(dt.timezone.utc))
            )
            await session.commit()
        self.open_objections.invalidate()
        return changed(result)

    async def list(self, subject: str | None = None, status: str | None = None, limit: int = 200) -> list[ObjectionRecord]:
        query = select(ObjectionRecord).order_by(ObjectionRecord.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(ObjectionRecord.subject == subject)
        if status is not None:
            query = query.where(ObjectionRecord.status == status)
        async with self.store.session() as session:
            return list(await session.scalars(query))

    async def open_refs_by_family(self, subjects: Iterable[str]) -> dict[tuple[str, str], set[str]]:
        """{(subject, family): record refs} of the open objections against records of `subjects`."""
        wanted = list(dict.fromkeys(subjects))
        if not wanted:
            return {}
        return await self.open_objections.refs(wanted)
