"""The head seal: the audit chain's head, signed by the hub in the same transaction as each batch.

Checkpoints (checkpoint.py) anchor the chain at an interval, outside the store; between two of
them, entries appended by someone with write access to the store would look like the hub's own,
and the next checkpoint would sign over them. The head seal closes that window: every batch the
trail's writer commits also replaces one row, `audit_head_seal`, with a checkpoint (same format,
same keys) of the batch's last entry. Since each entry's hash covers every entry before it, the
seal vouches for the whole chain up to its `seq`. An entry after the sealed head (and after the
newest checkpoint) was not written by the hub: `verify_trail` reports it as APPENDED, and the
checkpoint writer never signs past the seal.

Cost: one ES256 signature (about 60 microseconds) and one row update per batch, not per entry.

Several hosts sharing the store each seal with their own key; a seal is checked with the
keyring's union of local and published keys (keys/published.py) — published keys count only
when endorsed with the hosts' cluster secret, so a key someone wrote into the store does not
make their seal the hub's — and a seal by another host counts as the hub's own. Every chain
writer calls `know_signer` before `run_from`, so it learns a new host's key first.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import AuditHeadSeal, AuditRecord
from xinlian.keys.keyring import Keyring

from .checkpoint import Checkpoint, CheckpointError, SigningKeys, parse_checkpoint, sign_checkpoint, verify_signature
from .entry import format_time

SEAL_TABLE = table_of(AuditHeadSeal)
_AUDIT = table_of(AuditRecord)
SEAL_ROW = 1
log = logging.getLogger("xinlian.audit")
# the seal's JWS as a column of the trail writer's head query (one round trip for both)
SEAL_JWS = select(SEAL_TABLE.c.jws).where(SEAL_TABLE.c.id == SEAL_ROW).scalar_subquery().label("jws")


class HeadSealer:
    """Signs the chain head with the hub's current signing key (`Keyring.signing_pair`)."""

    def __init__(self, keyring: Keyring, issuer: str) -> None:
        self.keyring = keyring
        self.issuer = issuer

        self._written: Checkpoint | None = None  # the seal this process wrote last: trusted as is

    def seal(self, seq: int, head_hash: str, run_from: int) -> Checkpoint:
        sealed = sign_checkpoint(
            self.keyring, seq, head_hash, issuer=self.issuer, at=dt.datetime.now(dt.timezone.utc), run_from=run_from
        )
        self._written = sealed
        return sealed

    def run_from(self, jws: str | None, last: Any | None, batch_start: int) -> int:
        """Where the run of the batch starting at `batch_start` begins, given the stored seal's
        `jws` (None: no seal row) and the last stored entry `last` (None: an empty trail)."""
        if last is None:
            return 1
        prior = self._trusted(jws)
        if prior is not None and prior.seq == last.seq and prior.hash == last.hash and prior.run_from is not None:
            return prior.run_from
        if jws is None:
            why = "there is no head seal (a store written before seals existed, or the seal was removed)"
        elif prior is None:
            why = "the head seal is not validly signed by the hub"
        elif prior.seq < last.seq:
            extra = f"entry {last.seq}" if last.seq == prior.seq + 1 else f"entries {prior.seq + 1}-{last.seq}"
            why = f"{extra} follow the sealed head (entry {prior.seq})"
        else:
            why = f"the head seal (entry {prior.seq}) does not match the last entry {last.seq}"
        log.error("audit head seal: %s; a new sealed run starts at entry %d (run `xinlian audit verify`)", why, batch_start)
        return batch_start

    def unknown_signer(self, jws: str | None) -> str | None:
        """The kid of the stored seal `jws` when it is a key this hub does not know (None: no seal,
        this process's own, unreadable, or a known key). Sync: a writer that cannot await where it
        reads the head (the SQLite writer's thread) asks this, then calls `know_signer`."""
        if jws is None or (self._written is not None and jws == self._written.token):
            return None
        try:
            kid = parse_checkpoint(jws).kid
        except CheckpointError:
            return None
        return kid if self.keyring.key_status(kid) is None else None

    async def know_signer(self, jws: str | None) -> None:
        """Before `run_from`, in an async writer: when the stored seal `jws` is signed by a key this
        hub does not know, re-read the keys other hosts published (`Keyring.look_for`: endorsed
        keys only, at most once a second), so a seal written by a host that started a moment ago
        is not taken for a forgery. Never raises."""
        kid = self.unknown_signer(jws)
        if kid is not None:
            await self.keyring.look_for(kid)

    def _trusted(self, jws: str | None) -> Checkpoint | None:
        if jws is None:
            return None
        if self._written is not None and jws == self._written.token:
            return self._written
        try:
            seal = parse_checkpoint(jws)
        except CheckpointError:
            return None
        if verify_signature(seal, self.keyring) is not None:
            return None  # forged (a seal by another hub process verifies)
        return seal


async def write_seal(conn: AsyncConnection, seal: Checkpoint) -> None:
    """Replace the head seal inside the caller's transaction (which holds the chain lock)."""
    values: dict[str, Any] = {
        "seq": seal.seq, "hash": seal.hash, "at": format_time(seal.at), "kid": seal.kid, "jws": seal.token,
    }
    replaced = await conn.execute(update(SEAL_TABLE).where(SEAL_TABLE.c.id == SEAL_ROW).values(**values))
    if replaced.rowcount == 0:
        await conn.execute(insert(SEAL_TABLE).values(id=SEAL_ROW, **values))


@dataclass(frozen=True)
class SealSnapshot:
    """The trail's end and its head seal, read in ONE statement (one snapshot, so a batch
    committed meanwhile cannot make an honest trail look cut or appended to).

    `seal` is None when there is no seal row; `problem` says why a present row is not valid;
    `stored_hash` is the hash the chain holds at the seal's seq (None: no such entry).
    """

    last_seq: int
    seal: Checkpoint | None
    problem: str | None
    stored_hash: str | None

    @property
    def valid(self) -> bool:
        return self.seal is not None and self.problem is None

    @property
    def matches(self) -> bool:
        """The seal is valid and the chain still holds its seq with exactly its hash."""
        return self.valid and self.seal is not None and self.stored_hash == self.seal.hash


async def read_seal(conn: AsyncConnection, keys: SigningKeys | None) -> SealSnapshot:
    """The trail's last seq and the head seal, its signature checked with `keys`."""
    s, t = SEAL_TABLE.c, _AUDIT.c
    last = select(func.coalesce(func.max(t.seq), 0)).scalar_subquery()
    at_seal = select(t.hash).where(t.seq == s.seq).scalar_subquery()
    row = (
        await conn.execute(select(last.label("last_seq"), s.seq, s.hash, s.at, s.kid, s.jws, at_seal.label("stored")).where(s.id == SEAL_ROW))
    ).first()
    if row is None:
        last_seq = (await conn.execute(select(func.coalesce(func.max(t.seq), 0)))).scalar() or 0
        return SealSnapshot(int(last_seq), None, None, None)
    try:
        seal = parse_checkpoint(row.jws)
    except CheckpointError as exc:
        return SealSnapshot(int(row.last_seq), None, f"the head seal is unreadable: {exc}", row.stored)
    shown = (row.seq, row.hash, row.kid, row.at)
    if shown != (seal.seq, seal.hash, seal.kid, format_time(seal.at)):
        return SealSnapshot(int(row.last_seq), seal, "the head seal's columns disagree with its signed payload", row.stored)
    if keys is None:
        return SealSnapshot(int(row.last_seq), seal, "no keyring in the data directory to check it", row.stored)
    problem = verify_signature(seal, keys)
    return SealSnapshot(int(row.last_seq), seal, problem, row.stored)
