"""`verify_chain`: re-walk the audit hash chain and name the first entry that was tampered with.

Rows are read in seq order, a page at a time (keyset pagination, so millions of entries never
sit in memory). For each row, in this order:

1. sequence: the first row is 1 and each next row is the previous + 1. A jump means entries
   were removed; a first seq below 1 means one was inserted before the start.
2. own hash: SHA-256(prev_hash + "\\n" + content) must equal the stored hash, otherwise the
   content, the prev_hash or the hash was altered (or the row was forged).
3. link: prev_hash must equal the previous row's hash (the genesis hash for seq 1). If it
   equals the previous row's prev_hash instead, the previous row was inserted; otherwise an
   entry was removed (and the rest renumbered) or the previous row was altered and re-hashed.
4. content: it must read back as an audit entry in canonical form, and the indexed columns
   (at, request_id, client_id) must agree with it.

What a hash chain cannot show by itself: entries cut off the END of the trail, or forged
entries appended at the end with correctly computed hashes. `verify_trail` catches those with
the signed checkpoints (checkpoint.py: a cut or rewritten tail) and the head seal (seal.py:
entries appended by anyone but the hub). It also recomputes the subject index
(`audit_subjects`) from the entries and names every difference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring

from .chain import GENESIS_HASH, chain_hash
from .checkpoint import Checkpoint, LoadedCheckpoint, verify_signature
from .entry import AuditEntry, format_time
from .seal import SealSnapshot, read_seal
from .trail import AUDIT_TABLE, SUBJECT_TABLE

PAGE_SIZE = 1000


@dataclass(frozen=True)
class VerifyReport:
    """The verdict: `ok`, rows `checked`, and when broken the first bad seq and what is wrong."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_seq: int = 0  # the last intact entry's seq (0: none)
    head_hash: str = GENESIS_HASH  # and its hash, to note down as an anchor


@dataclass(frozen=True)
class _Finding:
    seq: int
    problem: str


def _check_sequence(row: Any, prev: Any | None) -> _Finding | None:
    expected = prev.seq + 1 if prev is not None else 1
    if row.seq < expected:
        return _Finding(row.seq, f"entry {row.seq} was inserted: sequence numbers start at 1")
    if row.seq > expected:
        missing = f"entry {expected} was" if row.seq == expected + 1 else f"entries {expected}-{row.seq - 1} were"
        after = f"entry {prev.seq}" if prev is not None else "the start"
        return _Finding(expected, f"{missing} removed: entry {row.seq} follows {after}")
    return None


def _check_link(row: Any, prev: Any | None) -> _Finding | None:
    expected = prev.hash if prev is not None else GENESIS_HASH
    if row.prev_hash == expected:
        return None
    if prev is None:
        return _Finding(
            row.seq, f"entry {row.seq} does not start from the genesis hash: an earlier entry was removed"
        )
    if row.prev_hash == prev.prev_hash:
        return _Finding(prev.seq, f"entry {prev.seq} was inserted: entry {row.seq} links to the entry before it")
    return _Finding(
        row.seq,
        f"entry {row.seq} does not link to entry {prev.seq}: an entry between them was removed, "
        f"or entry {prev.seq} was altered and re-hashed",
    )


def _check_content(row: Any) -> _Finding | None:
    try:
        entry = AuditEntry.from_content(row.content)
    except (ValueError, TypeError, KeyError):
        return _Finding(row.seq, f"entry {row.seq} was altered: its content is not a readable audit entry")
    if entry.canonical_content() != row.content:
        return _Finding(row.seq, f"entry {row.seq} was altered: its content is not in canonical form")
    columns = {"at": format_time(entry.at), "request_id": entry.indexed_request_id, "client_id": entry.indexed_client_id}
    for name, value in columns.items():
        if getattr(row, name) != value:
            return _Finding(row.seq, f"entry {row.seq} was altered: column {name} does not match its hashed content")
    return None


def check_row(row: Any, prev: Any | None) -> _Finding | None:
    """The first problem with `row`, given the previous (intact) row, or None."""
    finding = _check_sequence(row, prev)
    if finding is None and chain_hash(row.prev_hash, row.content) != row.hash:
        finding = _Finding(row.seq, f"entry {row.seq} was altered: its hash does not match its content")
    return finding or _check_link(row, prev) or _check_content(row)


async def verify_chain(store: Store, *, page_size: int = PAGE_SIZE) -> VerifyReport:
    """Walk the whole chain in seq order and report the first altered, removed or inserted entry."""
    t = AUDIT_TABLE.c
    columns = (t.seq, t.at, t.request_id, t.client_id, t.content, t.prev_hash, t.hash)
    checked = 0
    prev: Any | None = None
    async with store.engine.connect() as conn:
        while True:
            query = select(*columns).order_by(t.seq).limit(page_size)
            if prev is not None:
                query = query.where(t.seq > prev.seq)
            rows = (await conn.execute(query)).all()
            await conn.rollback()  # no transaction held open between pages
            for row in rows:
                checked += 1
                finding = check_row(row, prev)
                if finding is not None:
                    return VerifyReport(
                        ok=False,
                        checked=checked,
                        first_bad_seq=finding.seq,
                        problem=finding.problem,
                        head_seq=prev.seq if prev is not None else 0,
                        head_hash=prev.hash if prev is not None else GENESIS_HASH,
                    )
                prev = row
            if len(rows) < page_size:
                break
    if prev is None:
        return VerifyReport(ok=True, checked=0)
    return VerifyReport(ok=True, checked=checked, head_seq=prev.seq, head_hash=prev.hash)


# --- the whole trail: chain, signed checkpoints, subject index -------------------------------

MAX_INDEX_FINDINGS = 20  # differences of the subject index named one by one (the rest counted)
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class TrailReport:
    """What `xinlian audit verify` found: the chain, the checkpoints, the subject index.

    `findings` are tamper findings (any one makes the trail not intact); `anchored_seq` is the seq
    of the newest valid checkpoint the chain still matches (0: none), `unanchored` the range of
    entries after it, which no checkpoint covers yet (None: every entry is anchored).
    `seal` is the head seal as read; `sealed_seq` the seq it vouches for (0: no valid, matching
    seal). Entries after both `anchored_seq` and `sealed_seq` are a finding (APPENDED).
    """

    chain: VerifyReport
    last_seq: int  # the highest seq stored (intact or not)
    checkpoints_read: int
    checkpoints_valid: int
    newest: Checkpoint | None  # the newest valid checkpoint
    anchored_seq: int
    unanchored: tuple[int, int] | None
    findings: list[str]
    index_rows: int
    index_differences: int
    seal: SealSnapshot | None = None
    sealed_seq: int = 0

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.findings


def expected_index(seq: int, content: str) -> set[tuple[str, int]]:
    """The `audit_subjects` rows entry `seq` must have (as the writer and migration 0003 write them)."""
    try:
        subjects = json.loads(content).get("subjects") or []
    except (ValueError, AttributeError):
        return set()  # unreadable: the chain check reports it
    return {(str(s)[:32], seq) for s in dict.fromkeys(subjects)}


async def check_subject_index(store: Store, *, page_size: int = PAGE_SIZE) -> tuple[int, int, list[str]]:
    """Recompute the subject index from the entries; (index rows, differences, findings)."""
    t, s = AUDIT_TABLE.c, SUBJECT_TABLE.c
    rows_seen = differences = 0
    findings: list[str] = []
    last = None  # the highest entry seq of the previous page

    def note(text: str) -> None:
        nonlocal differences
        differences += 1
        if len(findings) < MAX_INDEX_FINDINGS:
            findings.append(text)

    async with store.engine.connect() as conn:
        while True:
            query = select(t.seq, t.content).order_by(t.seq).limit(page_size)
            if last is not None:
                query = query.where(t.seq > last)
            rows = (await conn.execute(query)).all()
            final = len(rows) < page_size
            index_query = select(s.subject, s.seq)
            if last is not None:
                index_query = index_query.where(s.seq > last)
            if not final:
                index_query = index_query.where(s.seq <= rows[-1].seq)
            indexed = {(r.subject, r.seq) for r in (await conn.execute(index_query)).all()}
            await conn.rollback()
            rows_seen += len(indexed)
            expected: set[tuple[str, int]] = set()
            for row in rows:
                expected |= expected_index(row.seq, row.content)
            entry_seqs = {row.seq for row in rows}
            for subject, seq in sorted(expected - indexed, key=lambda p: (p[1], p[0])):
                note(f"subject index: entry {seq} names subject {subject} but the index does not "
                     f"(the access is hidden from that subject's access log)")
            for subject, seq in sorted(indexed - expected, key=lambda p: (p[1], p[0])):
                if seq in entry_seqs:
                    note(f"subject index: lists entry {seq} for subject {subject}, which the entry does not name")
                else:
                    note(f"subject index: lists entry {seq} for subject {subject}, but there is no entry {seq}")
            if rows:
                last = rows[-1].seq
            if final:
                break
    return rows_seen, differences, findings


async def _stored_hashes(store: Store, seqs: list[int]) -> dict[int, str]:
    t = AUDIT_TABLE.c
    found: dict[int, str] = {}
    async with store.engine.connect() as conn:
        for i in range(0, len(seqs), _LOOKUP_CHUNK):
            chunk = seqs[i : i + _LOOKUP_CHUNK]
            for row in (await conn.execute(select(t.seq, t.hash).where(t.seq.in_(chunk)))).all():
                found[row.seq] = row.hash
    return found


async def verify_trail(store: Store, loaded: list[LoadedCheckpoint], keyring: Keyring | None) -> TrailReport:
    """Check the chain, every checkpoint in `loaded` (checkpoint.LoadedCheckpoint) against the
    hub's `keyring` and against the chain, and the subject index against the entries."""
    chain = await verify_chain(store)
    async with store.engine.connect() as conn:
        seal = await read_seal(conn, keyring)  # the trail's end and its seal, in one snapshot
    last_seq = seal.last_seq
    findings: list[str] = []
    if not chain.ok:
        findings.append(f"audit chain BROKEN at entry {chain.first_bad_seq}: {chain.problem}")

    valid: list[Checkpoint] = []
    for item in loaded:
        if item.checkpoint is None:
            findings.append(f"checkpoint {item.source} is unreadable: {item.problem}")
        elif keyring is None:
            findings.append(f"checkpoint {item.source} cannot be checked: no keyring in the data directory")
        else:
            problem = verify_signature(item.checkpoint, keyring)
            if problem is None:
                valid.append(item.checkpoint)
            else:
                findings.append(f"checkpoint {item.source} is FORGED: {problem}")

    # the chain must hold every valid checkpoint's seq with exactly its hash
    stored = await _stored_hashes(store, sorted({c.seq for c in valid if c.seq > 0}))
    trusted_up_to = chain.head_seq if not chain.ok else last_seq  # hashes beyond a break mean nothing
    by_seq = sorted(valid, key=lambda c: (c.seq, c.at))
    newest = by_seq[-1] if by_seq else None
    matching = [c for c in by_seq if c.seq == 0 or (c.seq <= trusted_up_to and stored.get(c.seq) == c.hash)]
    cut = [c for c in by_seq if c.seq > last_seq]
    rewritten = [c for c in by_seq if 0 < c.seq <= last_seq and c.seq in stored and stored[c.seq] != c.hash]
    if cut:
        far = cut[-1]
        gone = f"entries {last_seq + 1}-{far.seq} were" if far.seq > last_seq + 1 else f"entry {far.seq} was"
        what = "the trail is EMPTY" if last_seq == 0 else f"the trail ends at entry {last_seq}"
        findings.append(
            f"audit trail CUT: {what}, but a checkpoint signed {format_time(far.at)} anchors entry {far.seq}: "
            f"{gone} removed"
        )
    if rewritten:
        first = rewritten[0]
        below = [c.seq for c in matching if c.seq < first.seq]
        since = (below[-1] + 1) if below else 1
        findings.append(
            f"audit trail REWRITTEN: entry {first.seq} no longer has the hash of the checkpoint signed "
            f"{format_time(first.at)} ({first.hash}); entries from somewhere in {since}-{first.seq} onward were "
            f"replaced ({len(rewritten)} checkpoint(s) no longer match)"
        )
    anchored_seq = max((c.seq for c in matching), default=0)
    if rewritten or cut:
        anchored_seq = min([anchored_seq] + [c.seq - 1 for c in rewritten])
    unanchored = (anchored_seq + 1, last_seq) if last_seq > anchored_seq else None
    tail_findings = len(findings)
    sealed_seq = _check_seal(seal, chain, findings)
    if chain.ok and not rewritten and not cut and len(findings) == tail_findings:
        findings.extend(_appended(seal, anchored_seq, sealed_seq, last_seq))

    index_rows, index_differences, index_findings = await check_subject_index(store)
    findings.extend(index_findings)
    if index_differences > len(index_findings):
        findings.append(f"subject index: {index_differences - len(index_findings)} more difference(s) not listed")
    return TrailReport(
        chain=chain,
        last_seq=last_seq,
        checkpoints_read=len(loaded),
        checkpoints_valid=len(valid),
        newest=newest,
        anchored_seq=anchored_seq,
        unanchored=unanchored,
        findings=findings,
        index_rows=index_rows,
        index_differences=index_differences,
        seal=seal,
        sealed_seq=sealed_seq,
    )


def _appended(seal: SealSnapshot, anchored_seq: int, sealed_seq: int, last_seq: int) -> list[str]:
    """Entries neither anchored by a checkpoint (1..anchored_seq) nor in the hub's sealed run
    (from..sealed_seq): written by someone other than the hub."""
    run_from = sealed_seq + 1
    if sealed_seq and seal.seal is not None and seal.seal.run_from is not None:
        run_from = seal.seal.run_from
    gaps = [(anchored_seq + 1, min(run_from - 1, last_seq)), (max(anchored_seq, sealed_seq) + 1, last_seq)]
    if sealed_seq:
        where = f"the hub's sealed run covers entries {run_from}-{sealed_seq}"
    else:
        where = "there is no valid head seal"
    return [
        f"audit trail APPENDED: {f'entry {a}' if a == b else f'entries {a}-{b}'} carry no seal by the hub and no "
        f"checkpoint covers them: they were not written by the hub ({where})"
        for a, b in gaps
        if a <= b
    ]


def _check_seal(seal: SealSnapshot, chain: VerifyReport, findings: list[str]) -> int:
    """Findings about the head seal itself; the seq it vouches for (0: none)."""
    if seal.problem is not None:
        findings.append(f"head seal FORGED: {seal.problem}")
        return 0
    if seal.seal is None:
        return 0
    signed = f"the head seal signed {format_time(seal.seal.at)}"
    if seal.seal.seq > seal.last_seq:
        findings.append(
            f"audit trail CUT: the trail ends at entry {seal.last_seq}, but {signed} vouches for entry "
            f"{seal.seal.seq}"
        )
        return 0
    if seal.stored_hash != seal.seal.hash:
        findings.append(
            f"audit trail REWRITTEN: entry {seal.seal.seq} no longer has the hash of {signed} ({seal.seal.hash})"
        )
        return 0
    if not chain.ok and seal.seal.seq > chain.head_seq:
        return chain.head_seq  # hashes beyond a break mean nothing
    return seal.seal.seq
