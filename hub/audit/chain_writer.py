"""Writing one batch of audit entries at the end of the chain, in one transaction.

`AuditTrail` (trail.py) decides *when* (group commit, failing closed); a `ChainWriter` does the
transaction: take the chain lock, read the head (and the head seal), hash the batch onto it,
insert the entries and their subject index rows, replace the head seal, commit. The rows are
the same whichever writer stores them (`chain_rows`):

* `EngineChainWriter` — through the store's SQLAlchemy engine; any dialect (PostgreSQL takes
  `pg_advisory_xact_lock`, see `Store.exclusive`).
* `SqliteChainWriter` — an SQLite file store: the whole transaction runs in ONE hop to a
  dedicated thread holding a plain `sqlite3` connection, instead of a hop through aiosqlite's
  thread and SQLAlchemy's async layer for each of its six statements. On this 2-core machine a
  lone entry cost 3–4 ms of CPU the other way (`bench/audit_write.py`). Same pragmas as the
  engine's connections (WAL, `synchronous = FULL`, busy timeout), `BEGIN IMMEDIATE` as the lock.
* `PostgresChainWriter` — a PostgreSQL store: a dedicated asyncpg connection, the statements
  sent straight to the driver (the same advisory lock as `Store.exclusive`). A connection that
  failed or was interrupted mid-transaction is dropped; the next batch opens a new one.

Before hashing the batch on, each writer lets its sealer learn the key of a seal it does not
know (`HeadSealer.know_signer`: another host's key published a moment ago), so a seal by another
host is not taken for a forgery and does not start a new sealed run. The SQLite writer's thread
cannot await: it rolls back, the key is looked for, and the transaction runs again (once).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.engine import advisory_key, tune_sqlite_connection
from xinlian.hub.store.models import AuditRecord, AuditSubject

from .chain import GENESIS_HASH, chain_hash
from .entry import AuditEntry, format_time
from .seal import SEAL_JWS, SEAL_ROW, HeadSealer, write_seal

CHAIN_LOCK = "xinlian.hub.audit.chain"
AUDIT_TABLE = table_of(AuditRecord)
SUBJECT_TABLE = table_of(AuditSubject)


@dataclass(frozen=True)
class Batch:
    """Entries to append, each with its canonical content (computed once, by `AuditTrail.record`)."""

    entries: Sequence[tuple[AuditEntry, str]]


class Head(NamedTuple):
    """The last stored entry and the stored seal's JWS (None: no seal row)."""

    seq: int
    hash: str
    jws: str | None


@dataclass
class ChainRows:
    entries: list[dict[str, Any]]
    subjects: list[dict[str, Any]]
    seal: Any | None  # a `Checkpoint` when sealed

    @property
    def seqs(self) -> list[int]:
        return [row["seq"] for row in self.entries]


def chain_rows(batch: Batch, head: Head | None, sealer: HeadSealer | None) -> ChainRows:
    """The rows of `batch` hashed onto `head` (None: an empty trail), and the new head seal."""
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    run_from = sealer.run_from(head.jws if head is not None else None, head, seq + 1) if sealer is not None else 0
    entries: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    for entry, content in batch.entries:
        seq += 1
        digest = chain_hash(prev, content)
        entries.append(
            {
                "seq": seq,
                "at": format_time(entry.at),
                "request_id": entry.indexed_request_id,
                "client_id": entry.indexed_client_id,
                "content": content,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        subjects.extend({"subject": s, "seq": seq} for s in dict.fromkeys(x[:32] for x in entry.subjects))
        prev = digest
    seal = sealer.seal(seq, prev, run_from) if sealer is not None else None
    return ChainRows(entries, subjects, seal)


class ChainWriter(Protocol):
    """Stores a batch at the end of the chain in one transaction; returns the seqs once committed."""

    async def commit(self, batch: Batch) -> list[int]: ...

    async def close(self) -> None: ...


class EngineChainWriter:
    """The transaction through the store's SQLAlchemy engine, under `Store.exclusive`."""

    def __init__(self, store: Store, sealer: HeadSealer | None) -> None:
        self.store = store
        self.sealer = sealer

    async def commit(self, batch: Batch) -> list[int]:
        t = AUDIT_TABLE.c
        async with self.store.exclusive(CHAIN_LOCK) as conn:
            # the chain head, with the head seal's JWS in the same round trip
            last = (await conn.execute(select(t.seq, t.hash, SEAL_JWS).order_by(t.seq.desc()).limit(1))).first()
            if self.sealer is not None and last is not None:
                await self.sealer.know_signer(last.jws)  # another host's new key: not a forgery
            rows = chain_rows(batch, Head(last.seq, last.hash, last.jws) if last is not None else None, self.sealer)
            await conn.execute(insert(AUDIT_TABLE), rows.entries)
            if rows.subjects:  # the subject index, in the same transaction as the entries
                await conn.execute(insert(SUBJECT_TABLE), rows.subjects)
            if rows.seal is not None:
                await write_seal(conn, rows.seal)
        return rows.seqs  # committed: the `exclusive` block has ended

    async def close(self) -> None:
        return None


_HEAD_SQL = (
    "SELECT seq, hash, (SELECT jws FROM audit_head_seal WHERE id = ?) FROM audit_entries ORDER BY seq DESC LIMIT 1"
)
_ENTRY_SQL = (
    "INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) "
    "VALUES (:seq, :at, :request_id, :client_id, :content, :prev_hash, :hash)"
)
_SUBJECT_SQL = "INSERT INTO audit_subjects (subject, seq) VALUES (:subject, :seq)"
_SEAL_UPDATE = "UPDATE audit_head_seal SET seq = ?, hash = ?, at = ?, kid = ?, jws = ? WHERE id = ?"
_SEAL_INSERT = "INSERT INTO audit_head_seal (seq, hash, at, kid, jws, id) VALUES (?, ?, ?, ?, ?, ?)"


class _UnknownSigner(NamedTuple):
    """The SQLite writer's thread found a seal by an unknown key: it rolled back (see `commit`)."""

    jws: str


class SqliteChainWriter:
    """The transaction in one hop: a dedicated thread with its own `sqlite3` connection."""

    def __init__(self, database: Path, sealer: HeadSealer | None) -> None:
        self.database = database
        self.sealer = sealer
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    async def commit(self, batch: Batch) -> list[int]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xinlian-audit-sqlite")
        loop = asyncio.get_running_loop()
        done = await loop.run_in_executor(self._executor, self._commit, batch, True)
        if isinstance(done, _UnknownSigner):  # rolled back: learn the seal's key, then again
            assert self.sealer is not None
            await self.sealer.know_signer(done.jws)
            done = await loop.run_in_executor(self._executor, self._commit, batch, False)
        assert not isinstance(done, _UnknownSigner)
        return done

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
            executor.shutdown(wait=True)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
            tune_sqlite_connection(connection, self.database)
            self._connection = connection
        return self._connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _commit(self, batch: Batch, ask: bool) -> "list[int] | _UnknownSigner":
        """The transaction; with `ask`, rolled back (an `_UnknownSigner`) when the stored seal is
        signed by a key the sealer does not know yet."""
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")  # the chain lock: SQLite's one writer
        try:
            last = connection.execute(_HEAD_SQL, (SEAL_ROW,)).fetchone()
            if ask and self.sealer is not None and last is not None and self.sealer.unknown_signer(last[2]) is not None:
                connection.execute("ROLLBACK")
                return _UnknownSigner(last[2])
            rows = chain_rows(batch, Head(last[0], last[1], last[2]) if last is not None else None, self.sealer)
            connection.executemany(_ENTRY_SQL, rows.entries)
            if rows.subjects:
                connection.executemany(_SUBJECT_SQL, rows.subjects)
            if rows.seal is not None:
                seal = rows.seal
                values = (seal.seq, seal.hash, format_time(seal.at), seal.kid, seal.token, SEAL_ROW)
                if connection.execute(_SEAL_UPDATE, values).rowcount == 0:
                    connection.execute(_SEAL_INSERT, values)
            connection.execute("COMMIT")
        except BaseException:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                self._disconnect()  # a broken connection: the next batch opens a new one
            raise
        return rows.seqs


_PG_LOCK = "SELECT pg_advisory_xact_lock($1)"
_PG_HEAD = (
    "SELECT seq, hash, (SELECT jws FROM audit_head_seal WHERE id = $1) AS jws "
    "FROM audit_entries ORDER BY seq DESC LIMIT 1"
)
_PG_ENTRY = (
    "INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_PG_SUBJECT = "INSERT INTO audit_subjects (subject, seq) VALUES ($1, $2)"
_PG_SEAL_UPDATE = "UPDATE audit_head_seal SET seq = $1, hash = $2, at = $3, kid = $4, jws = $5 WHERE id = $6"
_PG_SEAL_INSERT = "INSERT INTO audit_head_seal (seq, hash, at, kid, jws, id) VALUES ($1, $2, $3, $4, $5, $6)"
_ENTRY_COLUMNS = ("seq", "at", "request_id", "client_id", "content", "prev_hash", "hash")


class PostgresChainWriter:
    """The transaction on a dedicated asyncpg connection, under the chain's advisory lock."""

    def __init__(self, dsn: str, sealer: HeadSealer | None) -> None:
        self.dsn = dsn
        self.sealer = sealer
        self._connection: Any | None = None  # asyncpg.Connection
        self._lock_key = advisory_key(CHAIN_LOCK)

    async def commit(self, batch: Batch) -> list[int]:
        import asyncpg  # type: ignore[import-untyped]

        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.dsn)
        connection = self._connection
        try:
            async with connection.transaction():
                await connection.execute(_PG_LOCK, self._lock_key)
                last = await connection.fetchrow(_PG_HEAD, SEAL_ROW)
                head = Head(last["seq"], last["hash"], last["jws"]) if last is not None else None
                if self.sealer is not None and head is not None:
                    await self.sealer.know_signer(head.jws)  # another host's new key: not a forgery
                rows = chain_rows(batch, head, self.sealer)
                await connection.executemany(_PG_ENTRY, [tuple(r[c] for c in _ENTRY_COLUMNS) for r in rows.entries])
                if rows.subjects:
                    await connection.executemany(_PG_SUBJECT, [(r["subject"], r["seq"]) for r in rows.subjects])
                if rows.seal is not None:
                    seal = rows.seal
                    values = (seal.seq, seal.hash, format_time(seal.at), seal.kid, seal.token, SEAL_ROW)
                    if await connection.execute(_PG_SEAL_UPDATE, *values) == "UPDATE 0":
                        await connection.execute(_PG_SEAL_INSERT, *values)
        except BaseException:
            self._connection = None  # interrupted or failed mid-transaction: never reuse it
            connection.terminate()
            raise
        return rows.seqs

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()


def chain_writer(store: Store, sealer: HeadSealer | None) -> ChainWriter:
    """The writer for `store`: one hop per batch for an SQLite file, the driver's own connection
    for PostgreSQL (asyncpg), the engine otherwise."""
    if store.sqlite_path is not None:
        return SqliteChainWriter(store.sqlite_path, sealer)
    url = make_url(store.url)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return PostgresChainWriter(url.set(drivername="postgresql").render_as_string(hide_password=False), sealer)
    return EngineChainWriter(store, sealer)
