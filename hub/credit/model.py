"""The credit governance's own values: findings, listings and their transitions, as the hub reads them.

These are hub-owned decisions (the store's `credit_findings`, `credit_listings` and
`credit_listing_events`); the department records they rest on stay at their sources and are
named by family and key.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from xinlian.hub.store.models import FindingRecord, ListingEvent, ListingRecord

BLACK, RED = "black", "red"
LISTED = "listed"
# how a listing ends: its end date passed, its rule stopped holding, credit repair, a court's
# cancellation (or the deciding department's revocation of the finding)
ENDINGS = ("expired", "delisted", "repaired", "cancelled")
IN_FORCE, REVOKED = "in_force", "revoked"
LIST_LABELS = {BLACK: "严重失信主体名单", RED: "守信激励名单"}
SEVERITY_LABELS = {"general": "一般失信", "serious": "严重失信", "none": "守信"}


class CreditInputError(ValueError):
    """A credit governance action refused as asked (bad subject, unknown basis, not your
    department, nothing to end, ...): nothing was changed."""


class CreditForbidden(CreditInputError):
    """The caller may not do this (scope, department, purpose)."""


class CreditUnavailable(Exception):
    """A rating could not be made: a department holding the subject's records did not answer."""

    def __init__(self, departments: "list[str] | tuple[str, ...]") -> None:
        super().__init__(f"records unavailable from: {', '.join(sorted(set(departments)))}")
        self.departments = sorted(set(departments))


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A department record a finding rests on: its family and its key (decision or case number)."""

    family: str
    key: str

    def document(self) -> dict[str, str]:
        return {"family": self.family, "key": self.key}


@dataclass(frozen=True, slots=True)
class Listing:
    """One listing of a subject on the blacklist or the red list."""

    id: int
    subject: str
    subject_name: str
    list: str
    basis: str
    basis_text: str
    department: str
    listed_on: dt.date
    ends_on: dt.date | None
    status: str
    ended_on: dt.date | None
    finding_id: int | None
    rule: str | None
    source_ref: str | None

    @classmethod
    def of(cls, row: Any) -> "Listing":
        return cls(
            id=row.id, subject=row.subject, subject_name=row.subject_name, list=row.list, basis=row.basis,
            basis_text=row.basis_text, department=row.department, listed_on=row.listed_on, ends_on=row.ends_on,
            status=row.status, ended_on=row.ended_on, finding_id=row.finding_id, rule=row.rule, source_ref=row.source_ref,
        )

    def current(self, today: dt.date) -> bool:
        """Listed and in its window: from `listed_on` through `ends_on` (inclusive) — a listing whose
        end date passed is over on the next day even before the sweep records its expiry."""
        return self.status == LISTED and self.listed_on <= today and (self.ends_on is None or today <= self.ends_on)


@dataclass(frozen=True, slots=True)
class Finding:
    """One dishonesty finding."""

    id: int
    subject: str
    subject_name: str
    severity: str
    basis: str
    facts: str
    legal_basis: str
    records: tuple[RecordRef, ...]
    department: str
    decided_on: dt.date
    measures: tuple[str, ...]
    status: str
    rule: str | None
    recorded_at: dt.datetime
    recorded_by: str

    @classmethod
    def of(cls, row: Any) -> "Finding":
        return cls(
            id=row.id, subject=row.subject, subject_name=row.subject_name, severity=row.severity, basis=row.basis,
            facts=row.facts, legal_basis=row.legal_basis,
            records=tuple(RecordRef(r["family"], r["key"]) for r in json.loads(row.records or "[]")),
            department=row.department, decided_on=row.decided_on, measures=tuple(json.loads(row.measures or "[]")),
            status=row.status, rule=row.rule, recorded_at=row.recorded_at, recorded_by=row.recorded_by,
        )


@dataclass(frozen=True, slots=True)
class ListingTransition:
    """One transition of a listing: who, when, why."""

    listing_id: int
    action: str
    at: dt.datetime
    by: str
    reason: str

    @classmethod
    def of(cls, row: Any) -> "ListingTransition":
        return cls(listing_id=row.listing_id, action=row.action, at=row.at, by=row.by, reason=row.reason)


TABLES = (FindingRecord, ListingRecord, ListingEvent)
