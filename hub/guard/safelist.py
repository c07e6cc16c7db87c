"""`Safelist`: the persisted-query safelist of the public endpoint (`XINLIAN_PUBLIC_SAFELIST`).

The file is a JSON object mapping the SHA-256 (lowercase hex) of each allowed document's exact
text to that text:

    {"5e0c...9a": "query Profile($u: String!) { legalPerson(uscc: $u) { name } }"}

When it is configured the public endpoint serves only those documents, sent either in full (the
text must match exactly) or by hash alone, Apollo style:
`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "5e0c...9a"}}, "variables": ...}`.
Anything else is refused with `PERSISTED_QUERY_NOT_ALLOWED` before it is parsed. Without a
safelist, a request carrying only a hash is refused with `PERSISTED_QUERY_NOT_SUPPORTED`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Mapping

from .codes import PERSISTED_QUERY_NOT_ALLOWED, PERSISTED_QUERY_NOT_SUPPORTED

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class SafelistError(ValueError):
    """The safelist file cannot be used (the hub refuses to start rather than serve unprotected)."""


class PersistedQueryRefused(Exception):
    """A request the safelist does not allow; `code` is its `extensions.code` (HTTP 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def document_hash(query: str) -> str:
    """The SHA-256 of a document's exact text, as Apollo's persisted queries compute it."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


class Safelist:
    """The documents one endpoint accepts, by hash."""

    def __init__(self, documents: Mapping[str, str]) -> None:
        for key, query in documents.items():
            if not isinstance(key, str) or not _SHA256_HEX.fullmatch(key):
                raise SafelistError(f"safelist key {key!r} is not a lowercase SHA-256 hex digest")
            if not isinstance(query, str) or document_hash(query) != key:
                raise SafelistError(f"safelist entry {key[:12]}… is not the SHA-256 of its document")
        self._documents = dict(documents)

    @classmethod
    def load(cls, path: Path) -> "Safelist":
        """Read a safelist file; a missing, unreadable or inconsistent file is a `SafelistError`."""
        try:
            documents = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SafelistError(f"cannot read the safelist {path}: {exc}") from None
        if not isinstance(documents, dict):
            raise SafelistError(f"the safelist {path} must be a JSON object {{sha256: query}}")
        return cls(documents)

    def __len__(self) -> int:
        return len(self._documents)

    def resolve(self, query: str | None, sha256_hash: str | None) -> str:
        """The document to run for a request, or `PersistedQueryRefused`."""
        if query is None:
            found = self._documents.get(sha256_hash or "")
            if found is None:
                raise PersistedQueryRefused(PERSISTED_QUERY_NOT_ALLOWED, "this persisted query is not on the safelist")
            return found
        if document_hash(query) not in self._documents:
            raise PersistedQueryRefused(
                PERSISTED_QUERY_NOT_ALLOWED, "this endpoint serves only safelisted documents"
            )
        return query


def resolve_document(query: str | None, sha256_hash: str | None, safelist: Safelist | None) -> str:
    """The document a request asks to run, or `PersistedQueryRefused`.

    `query` is the document text as sent (None when absent), `sha256_hash` the
    `extensions.persistedQuery.sha256Hash` (None when absent); at least one is present.
    """
    if query is not None and sha256_hash is not None and document_hash(query) != sha256_hash:
        raise PersistedQueryRefused("BAD_REQUEST", "persistedQuery.sha256Hash is not the SHA-256 of the query")
    if safelist is not None:
        return safelist.resolve(query, sha256_hash)
    if query is None:
        raise PersistedQueryRefused(
            PERSISTED_QUERY_NOT_SUPPORTED, "persisted queries are not supported here; send the query text"
        )
    return query
