"""`CheckpointWriter`: signs the audit chain's head at an interval and at shutdown.

Every `interval` seconds (settings `audit_checkpoint_interval`, `XINLIAN_AUDIT_CHECKPOINT_INTERVAL`,
default 60; 0 or less: only at shutdown and on demand) it reads the head of the chain and, when
the head moved since the last checkpoint, signs a new one and appends it to
`<data-dir>/audit-checkpoints/` (checkpoint.py). It only signs a head that *extends* the last
checkpoint it knows of: it re-walks the entries from that checkpoint's seq (which must still
carry that hash) to the head with the verifier's row checks. A chain that does not extend it is
never signed: the writer logs the problem and keeps `problem` set, so a tampered trail is not
laundered into a fresh checkpoint. And it signs no further than the head seal (seal.py), the
last entry the hub itself wrote: entries appended by someone else are never signed over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import select

from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring

from .checkpoint import Checkpoint, append_checkpoint, latest_valid, read_checkpoints, sign_checkpoint
from .seal import read_seal
from .trail import AUDIT_TABLE
from .verify import PAGE_SIZE, check_row

log = logging.getLogger("xinlian.audit")


class ChainDoesNotExtend(Exception):
    """The chain no longer extends the last checkpoint: it was cut, rewritten or broken."""


async def extend_from(
    store: Store, last: Checkpoint | None, *, up_to: int | None = None, page_size: int = PAGE_SIZE
) -> tuple[int, str]:
    """The head (seq, hash) of the chain, read no further than `up_to`, after checking that it
    extends `last` (or, when None, that it is intact from the start). Raises `ChainDoesNotExtend`
    naming the problem."""
    t = AUDIT_TABLE.c
    columns = (t.seq, t.at, t.request_id, t.client_id, t.content, t.prev_hash, t.hash)
    prev: Any | None = None
    start = 0
    if last is not None and last.seq > 0:
        async with store.engine.connect() as conn:
            anchor = (await conn.execute(select(*columns).where(t.seq == last.seq))).first()
        if anchor is None:
            raise ChainDoesNotExtend(f"entry {last.seq} of the last checkpoint is gone (the trail was cut)")
        if anchor.hash != last.hash:
            raise ChainDoesNotExtend(f"entry {last.seq} no longer has the last checkpoint's hash (rewritten)")
        prev, start = anchor, last.seq
    async with store.engine.connect() as conn:
        while True:
            query = select(*columns).where(t.seq > start).order_by(t.seq).limit(page_size)
            if up_to is not None:
                query = query.where(t.seq <= up_to)
            rows = (await conn.execute(query)).all()
            await conn.rollback()
            for row in rows:
                finding = check_row(row, prev)
                if finding is not None:
                    raise ChainDoesNotExtend(finding.problem)
                prev = row
                start = row.seq
            if len(rows) < page_size:
                break
    if prev is None:
        return 0, ""
    return int(prev.seq), str(prev.hash)


class CheckpointWriter:
    """Writes signed checkpoints of the head of `store`'s audit chain into `directory`."""

    def __init__(self, store: Store, keyring: Keyring, directory: Path, *, interval: float, issuer: str) -> None:
        self.store = store
        self.keyring = keyring
        self.directory = directory
        self.interval = interval
        self.issuer = issuer
        self.last: Checkpoint | None = None
        self.written = 0
        self.problem: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._loaded = False

    def _load_last(self) -> None:
        if not self._loaded:
            self.last = latest_valid(read_checkpoints(self.directory), self.keyring)
            self._loaded = True

    async def checkpoint_now(self) -> Checkpoint | None:
        """Sign and append a checkpoint if the head moved since the last; return it (or None).

        Raises `ChainDoesNotExtend` when the chain does not extend the last checkpoint.
        """
        self._load_last()
        try:
            async with self.store.engine.connect() as conn:
                seal = await read_seal(conn, self.keyring)
            if seal.problem is not None:  # present but unreadable or not signed by the hub
                raise ChainDoesNotExtend(f"head seal FORGED: {seal.problem}")
            sealed = seal.seal.seq if seal.seal is not None else 0
            if seal.seal is not None and self.last is not None and sealed < self.last.seq:
                raise ChainDoesNotExtend(f"the head seal (entry {sealed}) is behind the last checkpoint (entry {self.last.seq})")
            start = self.last.seq + 1 if self.last is not None else 1
            if seal.seal is not None and seal.seal.run_from is not None and seal.seal.run_from > start:
                raise ChainDoesNotExtend(
                    f"entries {start}-{seal.seal.run_from - 1} were not written under the hub's seal "
                    f"(its sealed run starts at entry {seal.seal.run_from})"
                )
            seq, head_hash = await extend_from(self.store, self.last, up_to=sealed)
            if seal.seal is not None and seq < seal.seal.seq:
                raise ChainDoesNotExtend(f"the trail ends at entry {seq}, but the head seal vouches for entry {seal.seal.seq} (cut)")
            if seal.seal is not None and seq == seal.seal.seq and head_hash != seal.seal.hash:
                raise ChainDoesNotExtend(f"entry {seq} does not have the head seal's hash (rewritten)")
        except ChainDoesNotExtend as exc:
            self.problem = str(exc)
            raise
        self.problem = None
        if seq == 0 or (self.last is not None and self.last.seq == seq and self.last.hash == head_hash):
            return None
        checkpoint = sign_checkpoint(self.keyring, seq, head_hash, issuer=self.issuer, at=dt.datetime.now(dt.timezone.utc))
        await asyncio.to_thread(append_checkpoint, self.directory, checkpoint)
        self.last = checkpoint
        self.written += 1
        return checkpoint

    async def _safe_checkpoint(self) -> None:
        try:
            await self.checkpoint_now()
        except ChainDoesNotExtend as exc:
            log.error("audit checkpoint NOT signed: the chain does not extend the last checkpoint: %s "
                      "(run `xinlian audit verify`)", exc)
        except Exception as exc:  # a background duty: log, try again next interval
            log.error("audit checkpoint not written: %r", exc)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._safe_checkpoint()

    def start(self) -> None:
        """Start the periodic checkpoints (none when `interval` <= 0)."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="xinlian-audit-checkpoints")

    async def stop(self) -> None:
        """Stop the periodic task and write a last checkpoint (call after the trail has flushed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._safe_checkpoint()
