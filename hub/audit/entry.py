"""`AuditEntry`: what the hub records about one request to an entry point, and its canonical form.

The canonical content is the entry as JSON with sorted keys, no whitespace, non-ASCII kept
as is (UTF-8), lists sorted and de-duplicated, and times as ISO 8601 UTC with a 'Z'
(`2026-04-01T08:30:00.123456Z`, always microseconds). The chain hash is computed over exactly
these bytes (see `chain.py`), so an outside auditor can re-verify with nothing but the rows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

# The vocabulary is open: every entry point the gateway serves names itself by its path, and
# a new entry point brings new outcomes ("abandoned", ...). Only the shape is checked.
ENDPOINT_SHAPE = re.compile(r"cli|/[\x21-\x7e]{0,127}")
OUTCOME_SHAPE = re.compile(r"[a-z][a-z_]{0,31}")
# keys added after the first entries were written: left out of the content while empty, so
# entries written before they existed keep their exact canonical form
OPTIONAL_KEYS = ("masked", "detail")
INDEXED_TEXT_LENGTH = 64  # request_id and client_id columns (the content keeps the full value)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(at: dt.datetime) -> str:
    """ISO 8601 in UTC with a 'Z' and microseconds: fixed width, so text order is time order."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(dt.timezone.utc).strftime(_TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.timezone.utc)


def _clean(value: str) -> str:
    """Text as it can be stored as UTF-8: lone surrogates (valid in JSON input) are escaped."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean_optional(value: str | None) -> str | None:
    return None if value is None else _clean(str(value))


def _clean_list(values: Any) -> list[str]:
    return sorted({_clean(str(v)) for v in values or ()})


def canonical_json(document: dict[str, Any]) -> str:
    """Sorted keys, no whitespace, ensure_ascii=False: the one serialisation that is hashed."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class AuditEntry:
    """One request to an entry point: who asked, why, about whom, what was released or denied.

    `subjects` are subject identifiers (USCC, resident ID); `released`, `denied` and `masked`
    are "family.field" names (`masked`: released through a masking transform); `errors` are
    error codes (GraphQL `extensions.code`, or the OAuth2 `error`); `detail` says more where there
    is more to say: admin actions and intents, dry runs, alerts, the row rules that ran, why a
    token was refused and which client it claimed, refusal counts (docs/audit.md). Lists are
    kept sorted and unique.
    """

    at: dt.datetime
    request_id: str
    endpoint: str
    client_id: str | None
    client_kind: str | None
    outcome: str
    policy_version: str
    purpose: str | None = None
    subjects: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    operation_name: str | None = None
    errors: list[str] = field(default_factory=list)
    remote_addr: str | None = None
    masked: list[str] = field(default_factory=list)
    detail: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or ENDPOINT_SHAPE.fullmatch(self.endpoint) is None:
            raise ValueError(f"endpoint {self.endpoint!r} is neither 'cli' nor a path")
        if not isinstance(self.outcome, str) or OUTCOME_SHAPE.fullmatch(self.outcome) is None:
            raise ValueError(f"outcome {self.outcome!r} is not a lower-case word")
        format_time(self.at)  # rejects naive datetimes
        set_ = object.__setattr__
        set_(self, "at", self.at.astimezone(dt.timezone.utc))
        set_(self, "request_id", _clean(str(self.request_id)))
        set_(self, "policy_version", _clean(str(self.policy_version)))
        for name in ("client_id", "client_kind", "purpose", "operation_name", "remote_addr"):
            set_(self, name, _clean_optional(getattr(self, name)))
        for name in ("subjects", "released", "denied", "errors", "masked"):
            set_(self, name, _clean_list(getattr(self, name)))
        if self.detail is not None:
            set_(self, "detail", json.loads(canonical_json(self.detail)) or None)  # JSON-able, or refused

    def to_document(self) -> dict[str, Any]:
        """The entry as a JSON-ready mapping (times as ISO 8601 'Z' strings)."""
        document: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        document["at"] = format_time(self.at)
        for name in ("subjects", "released", "denied", "errors", "masked"):
            document[name] = list(document[name])
        for name in OPTIONAL_KEYS:
            if not document[name]:
                del document[name]
        return document

    def canonical_content(self) -> str:
        """The exact text that is stored in `content` and hashed."""
        return canonical_json(self.to_document())

    @classmethod
    def from_content(cls, content: str) -> "AuditEntry":
        """Read an entry back from its stored canonical content."""
        document = json.loads(content)
        if not isinstance(document, dict):
            raise ValueError("audit content is not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(document) - known
        if unknown:
            raise ValueError(f"audit content has unknown keys: {sorted(unknown)}")
        document["at"] = parse_time(document["at"])
        return cls(**document)

    @property
    def indexed_request_id(self) -> str:
        """The `request_id` column value (the content keeps the full text)."""
        return self.request_id[:INDEXED_TEXT_LENGTH]

    @property
    def indexed_client_id(self) -> str | None:
        """The `client_id` column value (None for the public endpoint)."""
        return None if self.client_id is None else self.client_id[:INDEXED_TEXT_LENGTH]


@dataclass(frozen=True)
class StoredAuditEntry:
    """An entry as it sits in the trail: its place in the chain, its hashes and its content.

    `entry` is None when the stored content cannot be read back (it was tampered with).
    """

    seq: int
    prev_hash: str
    hash: str
    content: str
    entry: AuditEntry | None

    def to_document(self) -> dict[str, Any]:
        entry = self.entry.to_document() if self.entry is not None else None
        return {"seq": self.seq, "prev_hash": self.prev_hash, "hash": self.hash, "entry": entry}
