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
entries appended at the end with correctly computed hashes. Compare `head_hash` with a value
noted earlier (e.g. from `xinlian audit verify` output kept elsewhere) to catch those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from xinlian.hub.store import Store

from .chain import GENESIS_HASH, chain_hash
from .entry import AuditEntry, format_time
from .trail import AUDIT_TABLE

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
