"""`SubjectAccessLog`: a credit subject's view of the audit trail — who looked at its data.

For one subject (USCC or resident ID) it lists, newest first, the requests that concerned the
subject's data: which client (and its registered name), when, for what declared purpose, which
fields were released (and which of them masked), which were denied, and how the request ended.
It reads the `audit_subjects` index (written with the entries, in the same transaction) joined
to `audit_entries`, so its cost follows the subject's own entries, not the size of the trail.

What counts as an access of the subject's data (`is_data_access`):

* every entry of `/graphql` and `/public/graphql` that names the subject, whatever its outcome
  (a refused or failed request is still someone asking about the subject), except `alert`
  entries, which are the hub's own notes, not requests;
* `/admin/graphql` entries that name the subject and are dry runs (`detail["dryRun"]` true):
  an administrator evaluated a policy over the subject's records;
* not other administrative entries (an objection or consent recorded for the subject is not
  a look at its data) and not `cli` entries;
* not the filing or handling of a complaint or report about the subject (`detail.case.kind` or
  `detail.cases.kind` `complaint`): when they happened would tell the subject it was reported.

Released, masked and denied fields are recorded per *request*, not per subject: an entry about
several subjects lists every field released in that request, some of which may have come only
from another subject's records. The other subjects of a request, the caller's address and the
operation name are never shown to the subject.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from xinlian.hub.store import Store
from xinlian.hub.store.models import AuditRecord, AuditSubject, ClientRecord

from .entry import AuditEntry, format_time

log = logging.getLogger("xinlian.audit")

DATA_ENDPOINTS = frozenset({"/graphql", "/public/graphql"})
ADMIN_ENDPOINT = "/admin/graphql"
DRY_RUN_KEY = "dryRun"  # detail key an admin dry-run entry sets to true
MAX_FIRST = 200
DEFAULT_FIRST = 50
SUBJECT_INDEX_LENGTH = 32  # audit_subjects.subject holds at most this many characters
_SCAN_BATCH = 100  # index rows read per round while filling a page


def _complaint_work(entry: AuditEntry) -> bool:
    """The entry records a complaint being filed or handled (投诉举报): its timing would tell the
    subject that someone reported it, so it is not shown to the subject (the reporter is protected)."""
    detail = entry.detail or {}
    return any(isinstance(detail.get(k), dict) and detail[k].get("kind") == "complaint" for k in ("case", "cases"))


def is_data_access(entry: AuditEntry) -> bool:
    """True when the entry records someone receiving (or asking for) the data of its subjects."""
    if entry.outcome == "alert" or _complaint_work(entry):
        return False
    if entry.endpoint in DATA_ENDPOINTS:
        return True
    if entry.endpoint == ADMIN_ENDPOINT:
        return bool(entry.detail and entry.detail.get(DRY_RUN_KEY) is True)
    return False


@dataclass(frozen=True)
class AccessLogItem:
    """One access of the subject's data, as the subject may see it.

    `client_id` is None for the anonymous public endpoint (`client_name` then too, and
    `client_kind` is "public"); `client_name` is None also when the client has since been removed
    from the registry.
    `released`, `masked` and `denied` are "family.field" names of the whole request.
    """

    seq: int
    at: dt.datetime
    request_id: str
    client_id: str | None
    client_name: str | None
    client_kind: str | None
    endpoint: str
    purpose: str | None
    released: list[str]
    masked: list[str]
    denied: list[str]
    outcome: str
    policy_version: str

    def to_document(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 'Z' strings)."""
        return {
            "seq": self.seq,
            "at": format_time(self.at),
            "requestId": self.request_id,
            "clientId": self.client_id,
            "clientName": self.client_name,
            "clientKind": self.client_kind,
            "endpoint": self.endpoint,
            "purpose": self.purpose,
            "released": list(self.released),
            "masked": list(self.masked),
            "denied": list(self.denied),
            "outcome": self.outcome,
            "policyVersion": self.policy_version,
        }


@dataclass(frozen=True)
class AccessLogPage:
    """A page of a subject's access log, newest first.

    `next_before` is the `before_seq` that fetches the next (older) page, or None when this page
    reaches the oldest access.
    """

    items: list[AccessLogItem]
    next_before: int | None


def normalise_subject(subject: str) -> str:
    """Identifiers are stored upper-case and trimmed (as the executor validates them)."""
    return subject.strip().upper()


class SubjectAccessLog:
    """Reads the access log of one subject from the hub store's audit trail."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def entries(
        self,
        subject: str,
        *,
        first: int = DEFAULT_FIRST,
        before_seq: int | None = None,
        since: dt.datetime | None = None,
    ) -> AccessLogPage:
        """Up to `first` (1..200) accesses of `subject`'s data, newest first.

        `before_seq`: only entries older than this seq (the previous page's `next_before`);
        `since`: only entries at or after this (timezone-aware) time.
        Raises ValueError for `first` out of range, a naive `since` or an empty subject.
        """
        if not isinstance(first, int) or isinstance(first, bool) or not 1 <= first <= MAX_FIRST:
            raise ValueError(f"first must be between 1 and {MAX_FIRST}, got {first!r}")
        subject = normalise_subject(subject)
        if not subject:
            raise ValueError("subject must not be empty")
        since_text = format_time(since) if since is not None else None  # refuses naive times
        found: list[tuple[int, AuditEntry]] = []
        cursor = before_seq
        exhausted = False
        async with self.store.engine.connect() as conn:
            while len(found) <= first and not exhausted:
                rows = (await conn.execute(_page_query(subject, cursor, since_text, _SCAN_BATCH))).all()
                exhausted = len(rows) < _SCAN_BATCH
                for row in rows:
                    cursor = row.seq
                    entry = _read(row.seq, row.content)
                    if entry is None or subject not in entry.subjects or not is_data_access(entry):
                        continue
                    found.append((row.seq, entry))
                    if len(found) > first:  # one more than asked: there is a next page
                        break
            page, more = found[:first], len(found) > first
            names = await _client_names(conn, {e.client_id for _, e in page if e.client_id is not None})
        items = [_item(seq, entry, names) for seq, entry in page]
        return AccessLogPage(items=items, next_before=items[-1].seq if more and items else None)


def _page_query(subject: str, before_seq: int | None, since: str | None, limit: int) -> Any:
    s, e = AuditSubject.__table__.c, AuditRecord.__table__.c
    query = (
        select(e.seq, e.content)
        .select_from(AuditSubject.__table__.join(AuditRecord.__table__, e.seq == s.seq))
        .where(s.subject == subject[:SUBJECT_INDEX_LENGTH])
    )
    if before_seq is not None:
        query = query.where(s.seq < before_seq)
    if since is not None:
        query = query.where(e.at >= since)
    return query.order_by(s.seq.desc()).limit(limit)


def _read(seq: int, content: str) -> AuditEntry | None:
    try:
        return AuditEntry.from_content(content)
    except (ValueError, TypeError, KeyError):
        log.warning("audit entry %d cannot be read back (see `xinlian audit verify`); left out of an access log", seq)
        return None


async def _client_names(conn: Any, client_ids: set[str]) -> dict[str, str]:
    if not client_ids:
        return {}
    c = ClientRecord.__table__.c
    rows = (await conn.execute(select(c.client_id, c.name).where(c.client_id.in_(sorted(client_ids))))).all()
    return {row.client_id: row.name for row in rows}


def _item(seq: int, entry: AuditEntry, names: dict[str, str]) -> AccessLogItem:
    return AccessLogItem(
        seq=seq,
        at=entry.at,
        request_id=entry.request_id,
        client_id=entry.client_id,
        client_name=names.get(entry.client_id) if entry.client_id is not None else None,
        client_kind=entry.client_kind,
        endpoint=entry.endpoint,
        purpose=entry.purpose,
        released=list(entry.released),
        masked=list(entry.masked),
        denied=list(entry.denied),
        outcome=entry.outcome,
        policy_version=entry.policy_version,
    )
