"""The hash-chain rule of the audit trail, in one place.

hash(entry n) = SHA-256 hex of UTF-8 bytes of (hash(entry n-1) + "\\n" + canonical content n),
with hash(entry 0) = 64 zeros (the genesis). Sequence numbers run 1, 2, 3, ... without gaps.
"""

from __future__ import annotations

import hashlib

GENESIS_HASH = "0" * 64


def chain_hash(prev_hash: str, content: str) -> str:
    """The hash of an entry whose canonical content is `content`, following `prev_hash`."""
    return hashlib.sha256(f"{prev_hash}\n{content}".encode("utf-8")).hexdigest()
