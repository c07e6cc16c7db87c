"""`CreditRegister`: findings and listings, and every transition between them, in the hub store.

Each transition is one transaction that first takes the subject's lock (`Store.exclusive`: a
PostgreSQL advisory lock per subject, SQLite's single write lock), so two departments acting on
one subject at once are serialised and the second sees what the first did:

- `record_finding` — a department's finding on a basis of the policy's catalogue; a serious
  finding lists the subject on the blacklist from its decision date to the end its basis sets
  (a second serious finding on the same basis extends the listing rather than listing twice),
  and a blacklisting ends the subject's red listings (`delisted`): nobody is on both lists;
- `revoke_finding` — the deciding department revokes its finding; its listing is cancelled, or
  amended to what the subject's other in-force findings on the basis give;
- `list_on_red_list` — an explicit red-list entry on a red-list basis;
- `end_listing` — early delisting: `cancelled` (a court's cancellation) or `repaired` (credit
  repair); nothing else ends a listing early;
- `apply_rule` — a list rule's verdict for a subject (hub/credit/district.py): list it while
  the rule holds, delist it when it stops;
- `expire_due` — record the expiry of listings whose end date has passed (a listing is already
  not current the day after its end date, whether or not the sweep has run: `Listing.current`).

Every transition writes a `credit_listing_events` row (who, when, why). Reads: findings and
listings of a subject, pages of a list, a listing's history. Callers write the audit entry.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import FindingRecord, ListingEvent, ListingRecord
from xinlian.policies.credit import CreditRules, FindingBasis, ListRule, period_end
from xinlian.schema.catalogue import FAMILIES
from xinlian.schema.identifiers import InvalidIdentifier, validate_subject
from xinlian.schema.text import InvalidText, validate_text

from .model import (
    BLACK,
    IN_FORCE,
    LISTED,
    RED,
    REVOKED,
    CreditForbidden,
    CreditInputError,
    Finding,
    Listing,
    ListingTransition,
    RecordRef,
)

FINDINGS = table_of(FindingRecord)
LISTINGS = table_of(ListingRecord)
EVENTS = table_of(ListingEvent)
MAX_TEXT = 4000
MAX_RECORDS = 50
MAX_PAGE = 100
EARLY_ENDINGS = ("cancelled", "repaired")


def subject_key(subject: str) -> str:
    """A USCC or resident ID, normalised; `CreditInputError` otherwise (quoting at most 40 characters)."""
    try:
        return validate_subject(subject)
    except InvalidIdentifier:
        shown = subject if len(subject) <= 40 else subject[:40] + "…"
        raise CreditInputError(f"subject {shown!r} is neither a valid USCC nor a valid resident ID") from None


BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def decision_text(value: str | None, name: str, required: bool = True, limit: int = MAX_TEXT, multiline: bool = True) -> str:
    """Text of a decision (facts, basis, reason, a name), stripped: refused when empty (`required`),
    longer than `limit`, or holding what `schema.text` refuses (control characters; newlines and
    tabs are allowed in `multiline` text) or bidirectional-text controls that would reorder what a
    reader of the public lists sees."""
    text = (value or "").strip()
    if required and not text:
        raise CreditInputError(f"{name}: required")
    if len(text) > limit:
        raise CreditInputError(f"{name}: at most {limit} characters")
    try:
        validate_text(text.replace("\n", " ").replace("\r", " ") if multiline else text)
    except InvalidText as exc:
        raise CreditInputError(f"{name}: {exc}") from None
    if BIDI_CONTROLS.search(text):
        raise CreditInputError(f"{name}: contains a bidirectional-text control, which is not allowed")
    return text


def _records(refs: Sequence[RecordRef]) -> list[dict[str, str]]:
    if len(refs) > MAX_RECORDS:
        raise CreditInputError(f"records: at most {MAX_RECORDS}")
    out = []
    for ref in refs:
        family = FAMILIES.get(ref.family)
        if family is None or family.record_key is None:
            keyed = ", ".join(n for n, f in FAMILIES.items() if f.record_key)
            raise CreditInputError(f"records: {ref.family!r} is not a family of keyed records ({keyed})")
        out.append({"family": ref.family, "key": decision_text(ref.key, "records.key", limit=200, multiline=False)})
    return out


def _basis(rules: CreditRules, code: str, department: str) -> FindingBasis:
    basis = rules.bases.get(code)
    if basis is None:
        raise CreditInputError(f"basis: unknown {code!r} (the policy's bases: {', '.join(rules.bases)})")
    if department not in basis.departments:
        raise CreditForbidden(f"basis {code!r} is for {', '.join(basis.departments)}, not for department {department!r}")
    return basis


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class FindingOutcome:
    """A recorded finding and the listing it made or extended (None for a general finding)."""

    finding: Finding
    listing: Listing | None


class CreditRegister:
    """Findings and listings in the hub store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- transitions ---------------------------------------------------------------------
    async def record_finding(
        self,
        rules: CreditRules,
        *,
        subject: str,
        basis: str,
        facts: str,
        legal_basis: str,
        records: Sequence[RecordRef],
        department: str,
        decided_on: dt.date,
        measures: Sequence[str],
        by: str,
        today: dt.date,
        subject_name: str = "",
        severity: str | None = None,
        rule: str | None = None,
    ) -> FindingOutcome:
        """Record a finding (and, when serious, its blacklist listing) in one transaction."""
        key = subject_key(subject)
        found = _basis(rules, basis, department)
        if found.severity == "none":
            raise CreditInputError(f"basis {basis!r} is a red-list basis: use the red list, not a finding")
        if severity is not None and severity != found.severity:
            raise CreditInputError(f"severity: basis {basis!r} is {found.severity}, not {severity}")
        if decided_on > today:
            raise CreditInputError(f"decidedOn: {decided_on} is in the future")
        known = {m.code for m in rules.measures}
        unknown = sorted(set(measures) - known)
        if unknown:
            raise CreditInputError(f"measures: unknown {', '.join(unknown)} (see `xinlian measures list`)")
        values: dict[str, Any] = {
            "subject": key, "subject_name": decision_text(subject_name, "subjectName", required=False, limit=200, multiline=False),
            "severity": found.severity, "basis": basis, "facts": decision_text(facts, "facts"),
            "legal_basis": decision_text(legal_basis, "legalBasis"), "records": json.dumps(_records(records), ensure_ascii=False),
            "department": department, "decided_on": decided_on, "measures": json.dumps(list(dict.fromkeys(measures))),
            "status": IN_FORCE, "rule": rule, "recorded_at": _now(), "recorded_by": by,
        }
        async with self._subject(key) as conn:
            finding_id = (await conn.execute(insert(FINDINGS).values(**values).returning(FINDINGS.c.id))).scalar_one()
            listing_id = None
            if found.list == BLACK:
                listing_id = await self._list(
                    conn, key, values["subject_name"], BLACK, found.code, found.name, department,
                    decided_on, found.ends_on(decided_on), by, f"finding {finding_id}: {values['facts'][:200]}", today,
                    finding_id=finding_id,
                )
            finding = Finding.of((await conn.execute(select(FINDINGS).where(FINDINGS.c.id == finding_id))).one())
            listing = await self._listing(conn, listing_id) if listing_id is not None else None
        return FindingOutcome(finding, listing)

    async def revoke_finding(
        self, rules: CreditRules, finding_id: int, department: str | None, reason: str, by: str, today: dt.date
    ) -> Finding:
        """Revoke an in-force finding (its deciding department; `department` None: the credit office).

        Its blacklist listing is cancelled when no other in-force finding on the same basis holds
        the subject there; otherwise the listing is amended to what the remaining findings give
        (from the earliest decision to the latest end): a revoked extension is taken back."""
        reason = decision_text(reason, "reason")
        subject = await self._subject_of(FINDINGS, finding_id, "finding")
        f = FINDINGS.c
        async with self._subject(subject) as conn:
            row = (await conn.execute(select(FINDINGS).where(f.id == finding_id))).one()
            if row.status != IN_FORCE:
                raise CreditInputError(f"finding {finding_id} is already {row.status}")
            if department is not None and row.department != department:
                raise CreditForbidden(f"finding {finding_id} was decided by {row.department}, not {department}")
            await conn.execute(
                update(FINDINGS).where(f.id == finding_id)
                .values(status=REVOKED, revoked_at=_now(), revoked_by=by, revoke_reason=reason)
            )
            c = LISTINGS.c
            listed = (await conn.execute(
                select(c.id, c.ends_on).where(
                    c.subject == subject, c.list == BLACK, c.basis == row.basis, c.status == LISTED, c.rule.is_(None)
                )
            )).all()
            remaining = (await conn.execute(
                select(f.id, f.decided_on).where(
                    f.subject == subject, f.basis == row.basis, f.status == IN_FORCE, f.severity == "serious"
                ).order_by(f.decided_on, f.id)
            )).all()
            basis = rules.bases.get(row.basis)
            why = f"finding {finding_id} revoked: {reason}"
            for listing in listed:
                if not remaining:
                    await self._end(conn, listing.id, "cancelled", today, by, why)
                    continue
                ends_on = max(basis.ends_on(r.decided_on) for r in remaining) if basis else listing.ends_on
                start = remaining[0]
                await conn.execute(
                    update(LISTINGS).where(c.id == listing.id)
                    .values(listed_on=start.decided_on, ends_on=ends_on, finding_id=start.id)
                )
                await self._event(
                    conn, listing.id, "amended", by,
                    f"{why}; listed on the remaining finding(s) {', '.join(str(r.id) for r in remaining)} "
                    f"from {start.decided_on} until {ends_on}",
                )
            return Finding.of((await conn.execute(select(FINDINGS).where(f.id == finding_id))).one())

    async def list_on_red_list(
        self, rules: CreditRules, *, subject: str, basis: str, reason: str, department: str, listed_on: dt.date,
        by: str, today: dt.date, subject_name: str = "",
    ) -> Listing:
        """An explicit red-list entry on a red-list basis, for the basis' months from `listed_on`."""
        key = subject_key(subject)
        found = _basis(rules, basis, department)
        if found.list != RED:
            raise CreditInputError(f"basis {basis!r} is not a red-list basis")
        if listed_on > today:
            raise CreditInputError(f"listedOn: {listed_on} is in the future")
        reason = decision_text(reason, "reason")
        async with self._subject(key) as conn:
            blacklisted = await self._current(conn, key, BLACK, today)
            if blacklisted:
                raise CreditInputError(f"{key} is on the blacklist (listing {blacklisted[0]}): it cannot be red-listed")
            listing_id = await self._list(
                conn, key, decision_text(subject_name, "subjectName", False, 200, multiline=False), RED, found.code, found.name, department,
                listed_on, found.ends_on(listed_on), by, reason, today,
            )
            return await self._listing(conn, listing_id)

    async def end_listing(
        self, listing_id: int, action: str, reason: str, by: str, today: dt.date, department: str | None = None,
        allowed_departments: Sequence[str] = (),
    ) -> Listing:
        """End a listing early: `cancelled` (a court's cancellation: `department` must be one of
        `allowed_departments`; None is the credit office recording it) or `repaired`."""
        if action not in EARLY_ENDINGS:
            raise CreditInputError(f"a listing ends early only by {' or '.join(EARLY_ENDINGS)}")
        if department is not None and department not in allowed_departments:
            raise CreditForbidden(f"only {', '.join(allowed_departments) or 'the credit office'} may end a listing early")
        reason = decision_text(reason, "reason")
        subject = await self._subject_of(LISTINGS, listing_id, "listing")
        async with self._subject(subject) as conn:
            await self._end(conn, listing_id, action, today, by, reason)
            return await self._listing(conn, listing_id)

    async def apply_rule(
        self, rule: ListRule, subject: str, holds: bool, refs: Sequence[str], today: dt.date, by: str, subject_name: str = ""
    ) -> str | None:
        """Bring a rule-derived listing in line with the rule's verdict: "listed", "delisted", or None (no change)."""
        key = subject_key(subject)
        async with self._subject(key) as conn:
            current = await conn.execute(
                select(LISTINGS.c.id, LISTINGS.c.ends_on).where(
                    LISTINGS.c.subject == key, LISTINGS.c.rule == rule.name, LISTINGS.c.status == LISTED
                )
            )
            live = [row.id for row in current if row.ends_on is None or row.ends_on >= today]
            source_ref = ", ".join(refs)[:200] or None
            if holds and not live and await self._ended_early(conn, key, rule.name, source_ref):
                return None  # a court cancelled it (or repair ended it) while the same records stand
            if holds and not live:
                if rule.list == RED and await self._current(conn, key, BLACK, today):
                    return None  # the blacklisted are never red-listed
                ends_on = None
                if rule.months is not None:
                    ends_on = period_end(today, rule.months)
                await self._list(
                    conn, key, subject_name, rule.list, rule.name, rule.basis, rule.department, today, ends_on, by,
                    f"rule {rule.name} holds: {', '.join(refs) or 'records'}", today, rule=rule.name,
                    source_ref=source_ref,
                )
                return "listed"
            if not holds and live:
                for listing_id in live:
                    await self._end(conn, listing_id, "delisted", today, by, f"rule {rule.name} no longer holds (source records changed)")
                return "delisted"
            return None

    async def expire_due(self, today: dt.date, by: str = "system") -> int:
        """Record `expired` on every listing whose end date is before `today`; returns how many."""
        async with self.store.session() as session:
            due = list(
                (await session.execute(
                    select(LISTINGS.c.id, LISTINGS.c.subject).where(LISTINGS.c.status == LISTED, LISTINGS.c.ends_on < today)
                )).all()
            )
        count = 0
        for listing_id, subject in due:
            async with self._subject(subject) as conn:
                row = (await conn.execute(select(LISTINGS).where(LISTINGS.c.id == listing_id))).one()
                if row.status == LISTED and row.ends_on is not None and row.ends_on < today:
                    await self._end(conn, listing_id, "expired", row.ends_on + dt.timedelta(days=1), by, f"end date {row.ends_on} passed")
                    count += 1
        return count

    # ---- reads ---------------------------------------------------------------------------
    async def findings(self, subject: str | None = None, department: str | None = None, limit: int = 200) -> list[Finding]:
        query = select(FINDINGS).order_by(FINDINGS.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(FINDINGS.c.subject == subject_key(subject))
        if department is not None:
            query = query.where(FINDINGS.c.department == department)
        async with self.store.session() as session:
            return [Finding.of(row) for row in await session.execute(query)]

    async def listings(self, subject: str, include_ended: bool = False) -> list[Listing]:
        query = select(LISTINGS).where(LISTINGS.c.subject == subject_key(subject)).order_by(LISTINGS.c.id.desc())
        if not include_ended:
            query = query.where(LISTINGS.c.status == LISTED)
        async with self.store.session() as session:
            return [Listing.of(row) for row in await session.execute(query)]

    async def page(self, list_name: str, today: dt.date, first: int, after: int | None) -> tuple[list[Listing], bool]:
        """Current listings of one list, oldest id first after `after`; (page, has_next)."""
        if list_name not in (BLACK, RED):
            raise CreditInputError("list: black or red")
        if not 1 <= first <= MAX_PAGE:
            raise CreditInputError(f"first: between 1 and {MAX_PAGE}")
        c = LISTINGS.c
        query = (
            select(LISTINGS)
            .where(c.list == list_name, c.status == LISTED, c.listed_on <= today, or_(c.ends_on.is_(None), c.ends_on >= today))
            .order_by(c.id)
            .limit(first + 1)
        )
        if after is not None:
            query = query.where(c.id > after)
        async with self.store.session() as session:
            rows = [Listing.of(row) for row in await session.execute(query)]
        return rows[:first], len(rows) > first

    async def count(self, list_name: str, today: dt.date) -> int:
        c = LISTINGS.c
        async with self.store.session() as session:
            return int(await session.scalar(
                select(func.count()).select_from(LISTINGS).where(
                    c.list == list_name, c.status == LISTED, c.listed_on <= today, or_(c.ends_on.is_(None), c.ends_on >= today)
                )
            ) or 0)

    async def history(self, listing_id: int) -> list[ListingTransition]:
        async with self.store.session() as session:
            rows = await session.execute(select(EVENTS).where(EVENTS.c.listing_id == listing_id).order_by(EVENTS.c.id))
            return [ListingTransition.of(row) for row in rows]

    async def listing(self, listing_id: int) -> Listing | None:
        async with self.store.session() as session:
            row = (await session.execute(select(LISTINGS).where(LISTINGS.c.id == listing_id))).first()
            return Listing.of(row) if row is not None else None

    # ---- inside a subject's transaction --------------------------------------------------
    def _subject(self, subject: str) -> Any:
        return self.store.exclusive(f"credit-subject:{subject}")

    async def _subject_of(self, table: Any, row_id: int, what: str) -> str:
        async with self.store.session() as session:
            subject = await session.scalar(select(table.c.subject).where(table.c.id == row_id))
        if subject is None:
            raise CreditInputError(f"no {what} {row_id}")
        return str(subject)

    @staticmethod
    async def _ended_early(conn: AsyncConnection, subject: str, rule: str, source_ref: str | None) -> bool:
        """Whether the subject's last listing by `rule` on the same records was ended early
        (cancelled by a court, or repaired): the rule does not list it again on them."""
        c = LISTINGS.c
        last = (await conn.execute(
            select(c.status, c.source_ref).where(c.subject == subject, c.rule == rule).order_by(c.id.desc()).limit(1)
        )).first()
        return last is not None and last.status in EARLY_ENDINGS and last.source_ref == source_ref

    @staticmethod
    async def _current(conn: AsyncConnection, subject: str, list_name: str, today: dt.date) -> list[int]:
        c = LISTINGS.c
        rows = await conn.execute(
            select(c.id).where(
                c.subject == subject, c.list == list_name, c.status == LISTED, c.listed_on <= today,
                or_(c.ends_on.is_(None), c.ends_on >= today),
            )
        )
        return [row.id for row in rows]

    @staticmethod
    async def _event(conn: AsyncConnection, listing_id: int, action: str, by: str, reason: str) -> None:
        await conn.execute(insert(EVENTS).values(listing_id=listing_id, action=action, at=_now(), by=by, reason=reason[:MAX_TEXT]))

    async def _list(
        self, conn: AsyncConnection, subject: str, subject_name: str, list_name: str, basis: str, basis_text: str,
        department: str, listed_on: dt.date, ends_on: dt.date | None, by: str, reason: str, today: dt.date,
        finding_id: int | None = None, rule: str | None = None, source_ref: str | None = None,
    ) -> int:
        """A new listing — or, when the subject is already listed on the same basis, that listing
        extended to the later end date (one listing per subject, list and basis). A blacklisting
        that is current `today` ends the subject's red listings."""
        c = LISTINGS.c
        existing = (await conn.execute(
            select(c.id, c.ends_on).where(
                c.subject == subject, c.list == list_name, c.basis == basis, c.status == LISTED,
                or_(c.ends_on.is_(None), c.ends_on >= listed_on),
            ).order_by(c.id)
        )).first()
        if existing is not None:
            if existing.ends_on is not None and (ends_on is None or ends_on > existing.ends_on):
                await conn.execute(update(LISTINGS).where(c.id == existing.id).values(ends_on=ends_on))
                await self._event(conn, existing.id, "extended", by, f"until {ends_on or 'the rule stops holding'}: {reason}")
            else:
                await self._event(conn, existing.id, "confirmed", by, reason)
            return int(existing.id)
        current = listed_on <= today and (ends_on is None or today <= ends_on)
        if list_name == BLACK and current:  # the blacklisted are never on the red list: a blacklisting ends it
            reds = await conn.execute(select(c.id).where(c.subject == subject, c.list == RED, c.status == LISTED))
            for (red_id,) in reds.all():
                await self._end(conn, red_id, "delisted", today, by, f"blacklisted ({basis}): {reason}"[:MAX_TEXT])
        listing_id = (await conn.execute(
            insert(LISTINGS).values(
                subject=subject, subject_name=subject_name, list=list_name, basis=basis, basis_text=basis_text,
                department=department, finding_id=finding_id, rule=rule, source_ref=source_ref, listed_on=listed_on,
                ends_on=ends_on, status=LISTED, recorded_at=_now(), recorded_by=by,
            ).returning(c.id)
        )).scalar_one()
        await self._event(conn, listing_id, "listed", by, reason)
        return int(listing_id)

    async def _end(self, conn: AsyncConnection, listing_id: int, action: str, on: dt.date, by: str, reason: str) -> None:
        result = await conn.execute(
            update(LISTINGS).where(and_(LISTINGS.c.id == listing_id, LISTINGS.c.status == LISTED))
            .values(status=action, ended_on=on)
        )
        if not result.rowcount:
            status = (await conn.execute(select(LISTINGS.c.status).where(LISTINGS.c.id == listing_id))).scalar()
            raise CreditInputError(f"listing {listing_id} is {status or 'unknown'}: nothing to end")
        await self._event(conn, listing_id, action, by, reason)

    @staticmethod
    async def _listing(conn: AsyncConnection, listing_id: int) -> Listing:
        return Listing.of((await conn.execute(select(LISTINGS).where(LISTINGS.c.id == listing_id))).one())
