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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import AuditRecord, AuditSubject

from .chain import GENESIS_HASH, chain_hash
from .entry import AuditEntry, StoredAuditEntry, format_time
from .seal import SEAL_JWS, HeadSealer, write_seal

log = logging.getLogger("xinlian.audit")
CHAIN_LOCK = "xinlian.hub.audit.chain"
AUDIT_TABLE = table_of(AuditRecord)
SUBJECT_TABLE = table_of(AuditSubject)


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
        self.max_batch = max_batch
        self.write_timeout = write_timeout
        self.batches = 0
        self.entries = 0
        self.failed_batches = 0
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopped = False

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
        for pending, seq in zip(batch, seqs):
            if not pending.done.done():
                pending.done.set_result(seq)

    async def _commit(self, batch: list[_Pending]) -> list[int]:
        t = AUDIT_TABLE.c
        rows: list[dict[str, Any]] = []
        subjects: list[dict[str, Any]] = []
        async with self.store.exclusive(CHAIN_LOCK) as conn:
            # the chain head, with the head seal's JWS in the same round trip
            last = (await conn.execute(select(t.seq, t.hash, SEAL_JWS).order_by(t.seq.desc()).limit(1))).first()
            seq, prev = (last.seq, last.hash) if last is not None else (0, GENESIS_HASH)
            if self.sealer is not None:
                run_from = self.sealer.run_from(last.jws if last is not None else None, last, seq + 1)
            for pending in batch:
                seq += 1
                digest = chain_hash(prev, pending.content)
                rows.append(
                    {
                        "seq": seq,
                        "at": format_time(pending.entry.at),
                        "request_id": pending.entry.indexed_request_id,
                        "client_id": pending.entry.indexed_client_id,
                        "content": pending.content,
                        "prev_hash": prev,
                        "hash": digest,
                    }
                )
                subjects.extend({"subject": s, "seq": seq} for s in dict.fromkeys(x[:32] for x in pending.entry.subjects))
                prev = digest
            await conn.execute(insert(AUDIT_TABLE), rows)
            if subjects:  # the subject index, in the same transaction as the entries
                await conn.execute(insert(SUBJECT_TABLE), subjects)
            if self.sealer is not None:
                await write_seal(conn, self.sealer.seal(seq, prev, run_from))
        return [row["seq"] for row in rows]  # committed: the `exclusive` block has ended


def _fail(batch: list[_Pending], cause: BaseException) -> None:
    for pending in batch:
        if not pending.done.done():
            error = AuditUnavailable(f"audit entry not stored: {type(cause).__name__}")
            error.__cause__ = cause
            pending.done.set_exception(error)
