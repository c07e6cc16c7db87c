"""`AuditTrail`: the group-committing writer of the audit hash chain, and reading its tail.

Requests never queue behind each other's audit writes: `record()` puts its entry on a queue
and waits; a single writer task takes everything pending, writes it in ONE transaction
(chain computed sequentially from the last stored row, read inside that transaction under
the chain lock), commits, and only then resolves each caller with its sequence number. If
the transaction fails, every caller in the batch gets `AuditUnavailable` and nothing of the
batch remains. Several hub processes may share a PostgreSQL store: the chain lock
(`Store.exclusive`) makes their writers take turns. With a `HeadSealer` (the hub and every
CLI command that writes entries use one) the same transaction replaces the signed head seal
(seal.py), so entries appended by anyone but the hub stand out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select

from xinlian.hub.store import Store

from .chain_writer import AUDIT_TABLE, CHAIN_LOCK, SUBJECT_TABLE, Batch, ChainWriter, chain_writer
from .entry import AuditEntry, StoredAuditEntry
from .seal import HeadSealer

log = logging.getLogger("xinlian.audit")
__all__ = ["AUDIT_TABLE", "CHAIN_LOCK", "SUBJECT_TABLE", "AuditTrail", "AuditUnavailable", "stored_entry"]


class AuditUnavailable(Exception):
    """The entry could not be durably stored; the response it covers must not be sent."""


@dataclass
class _Pending:
    entry: AuditEntry
    content: str
    done: "asyncio.Future[int]"


def stored_entry(row: Any) -> StoredAuditEntry:
    """A stored row (seq, prev_hash, hash, content) read back; `entry` is None if unreadable."""
    try:
        entry: AuditEntry | None = AuditEntry.from_content(row.content)
    except (ValueError, TypeError, KeyError):
        entry = None
    return StoredAuditEntry(seq=row.seq, prev_hash=row.prev_hash, hash=row.hash, content=row.content, entry=entry)


class AuditTrail:
    """The hub's audit trail over a store: `record()` entries, read the `tail()`.

    `batches` counts committed write transactions and `entries` the entries they held, so
    `entries / batches` is the group-commit factor; `failed_batches` counts rolled-back ones.
    `sealer`: signs the head of each batch into the head seal (None only in tests of the chain).
    """

    def __init__(
        self, store: Store, *, sealer: HeadSealer | None = None, max_batch: int = 1000, write_timeout: float = 15.0
    ) -> None:
        self.store = store
        self.sealer = sealer
        self._chain: ChainWriter = chain_writer(store, sealer)
        self.observer: Callable[[int, float], None] | None = None  # (entries, seconds) per committed batch
        self.max_batch = max_batch
        self.write_timeout = write_timeout
        self.batches = 0
        self.entries = 0
        self.failed_batches = 0
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def queue_depth(self) -> int:
        """Entries waiting for the writer (not counting the batch being written)."""
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def running(self) -> bool:
        return self._writer is not None and not self._writer.done()

    async def start(self) -> None:
        """Start the writer task (idempotent)."""
        if self.running:
            return
        self._stopped = False
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._run(self._queue), name="xinlian-audit-writer")

    async def stop(self) -> None:
        """Write everything already recorded, then stop; later `record()` calls fail."""
        self._stopped = True
        writer, queue = self._writer, self._queue
        if writer is None or queue is None:
            return
        queue.put_nowait(None)
        try:
            await writer
        finally:
            self._writer = None
            await self._chain.close()

    async def record(self, entry: AuditEntry) -> int:
        """Store `entry` at the end of the chain; return its seq once the commit is durable.

        Raises `AuditUnavailable` when the entry could not be stored (store unreachable,
        broken, too slow, trail stopped); the caller must then withhold its response.
        """
        if self._stopped:
            raise AuditUnavailable("the audit trail is stopped")
        if not self.running:
            await self.start()
        try:
            content = entry.canonical_content()
            content.encode("utf-8")
        except (TypeError, ValueError, UnicodeError) as exc:
            raise AuditUnavailable(f"audit entry cannot be serialised: {exc}") from exc
        assert self._queue is not None
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(entry, content, done))
        return await done

    async def record_all(self, entries: list[AuditEntry]) -> list[int]:
        """Store every entry (they may share a batch); `AuditUnavailable` if any one is lost."""
        results = await asyncio.gather(*(self.record(e) for e in entries), return_exceptions=True)
        for result in results:
            if isinstance(result, AuditUnavailable):
                raise result
            if isinstance(result, BaseException):
                raise AuditUnavailable(f"audit entry not stored: {type(result).__name__}") from result
        return [r for r in results if isinstance(r, int)]

    async def tail(self, n: int = 20) -> list[StoredAuditEntry]:
        """The latest `n` entries, oldest first."""
        if n <= 0:
            return []
        t = AUDIT_TABLE.c
        query = select(t.seq, t.prev_hash, t.hash, t.content).order_by(t.seq.desc()).limit(n)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [stored_entry(row) for row in reversed(rows)]

    async def _run(self, queue: "asyncio.Queue[_Pending | None]") -> None:
        stopping = False
        try:
            while not stopping:
                item = await queue.get()
                batch: list[_Pending] = []
                while True:
                    if item is None:
                        stopping = True
                    else:
                        batch.append(item)
                    if len(batch) >= self.max_batch or queue.empty():
                        break
                    item = queue.get_nowait()
                if batch:
                    await self._write(batch)
        finally:
            while not queue.empty():
                left = queue.get_nowait()
                if left is not None:
                    _fail([left], RuntimeError("the audit trail stopped"))

    async def _write(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            seqs = await asyncio.wait_for(self._commit(batch), timeout=self.write_timeout)
        except BaseException as exc:
            self.failed_batches += 1
            log.error("audit batch of %d entries not stored: %r", len(batch), exc)
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.entries += len(batch)
        if self.observer is not None:
            self.observer(len(batch), time.perf_counter() - started)
        for pending, seq in zip(batch, seqs):
            if not pending.done.done():
                pending.done.set_result(seq)

    async def _commit(self, batch: list[_Pending]) -> list[int]:
        return await self._chain.commit(Batch([(pending.entry, pending.content) for pending in batch]))


def _fail(batch: list[_Pending], cause: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            error = AuditUnavailable(f"audit entry not stored: {type(cause).__name__}")
            error.__cause__ = cause
            pending.done.set_exception(error)
