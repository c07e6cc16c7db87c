"""Credit repair (信用修复): eligibility, applications, decisions, and the register of approved repairs.

A subject applies (its own subject client) for the repair of one of its penalties — a record of a
family of the policy's `cases.repair.families` — or of its current blacklisting. The application
is a case (hub/cases/: kind `repair`, category `record` or `listing`) with the subject's reason,
its credit commitment (信用承诺: kept in the case's `detail`) and, for a penalty, at least one proof
document that the penalty's obligations are met. The deciding department — the department that
provides the record, or the listing's department — approves or refuses it within
`cases.deadlines.repair` working days; the credit office may decide any; the applicant may
withdraw it. One application per record or listing may be open at a time.

**When a subject may apply** (NDRC 2025 credit repair measures, the policy's `cases.repair`):

- a penalty once its minimum publicity has passed, counted from its decision date: 一般 3 months,
  严重 12 months (`min_months`; a policy may raise them). The minimum runs through
  `add_months(decision_date, months)` inclusive — the last day the publicity window
  (policies/rows.py) must show it — so **the first day a subject may apply is the day after**:
  decided 2026-01-15, 一般 → refused on 2026-04-15, accepted from 2026-04-16; decided 2025-11-30,
  一般 → accepted from 2026-03-01 (the minimum ends on 28 February). A 轻微 penalty is normally
  not shown to the public, so there is nothing to repair — unless the policy shows it
  (`minor_shown`: every `publicity-window` rule of the family that applies to the public has
  `show_minor = true`); then it is repaired like the others, its minimum the national 0 months
  (`min_months.轻微`, a policy may raise it): from the day after its decision date;
- a blacklisting once it has lasted `listing_min_months` (12) from its listing day, counted the
  same way: listed 2025-06-10 → accepted from 2026-06-11.

The record's severity and decision date are read at its sources (`RecordFinder.find_record`,
the credit office's reads through the federation); a department that cannot answer refuses the
application (`RepairUnavailable`) — even when another source has the record, for the record may be
held by two departments (and then it goes to the credit office) — and nothing is stored.

**Approval** is one transaction with the case's step (`CaseRegister.move(within=...)`):

- a listing ends as `repaired` that day (`CreditRegister._end` on the case's connection, with its
  `credit_listing_events` row). Lock order: the case's lock first (`case:<id>`, taken by `move`),
  then, on PostgreSQL, the subject's credit lock (`credit-subject:<subject>`, the advisory lock
  every `CreditRegister` transition takes) on the same transaction. `CreditRegister` never takes
  a case lock, so the order is the same everywhere and two approvals cannot deadlock; on SQLite
  the case's `BEGIN IMMEDIATE` already holds the one write lock;
- a record is repaired: the approved case itself is the repair register (subject, family, key,
  `detail.repaired_on` — the approval day in Hohhot). From that day the record's public display
  ends: the policy's `publicity-window` row rule ends display through its repair hook
  (`PublicityWindow.repair_end`), fed per request by `ApprovedRepairs`; government callers (to
  whom the window does not apply) still see it.

**After the decision has committed** (`RepairRegister.settle`): a repaired listing invalidates the
credit standing at once (cheap), and the subject is re-rated in the background
(`CreditGovernance.rerate_later`) — a slow department must not hold the decision's answer (the
approval is committed; a client that timed out and asked again would be told the repair is
approved). Those re-ratings are bounded in number, their errors logged, and they end with the
credit machinery (`CreditGovernance.settled()` waits for them); the next district run rates a
subject whose re-rating did not happen.

`ApprovedRepairs` keeps the register of approved record repairs in memory in every hub process:
it follows the change feed's `cases` topic (hub/cluster/views.py) and is invalidated at once by a
change made through this process, so reading it costs no query per request in steady state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol, Sequence

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.cluster.views import FollowedView
from xinlian.hub.credit.model import BLACK, CreditInputError
from xinlian.hub.store.engine import advisory_key
from xinlian.hub.store.times import as_utc
from xinlian.policies.cases import RepairRules
from xinlian.policies.model import DisclosureClass
from xinlian.policies.rows import STANDARD_MIN_MONTHS, PublicityWindowRule, add_months

from .model import REPAIR, Actor, Case, CaseInputError, CaseNotFound, CaseRef, hohhot_day
from .register import CASES, CaseRegister, Upload
from .register import text as case_text

if TYPE_CHECKING:
    from xinlian.hub.credit.governance import CreditGovernance
    from xinlian.hub.credit.records import RecordFound
    from xinlian.hub.credit.register import CreditRegister
    from xinlian.policies.model import Policy

RECORD, LISTING = "record", "listing"  # what a repair application is about: its case's category
APPROVED = "approved"
RECORD_FIELDS = ("severity", "decision_date", "party_name")  # read at the source to decide eligibility
MINOR = "轻微"
TEXT_LIMIT = 1800  # the reason and the commitment each: the case's description holds both (at most 4000)
DAY = dt.timedelta(days=1)
Repaired = Mapping[str, Mapping[str, dt.date]]  # family → record key → the day it was repaired

log = logging.getLogger("xinlian.cases")


class RepairRefused(CaseInputError):
    """An application refused as asked (not eligible yet, no commitment, no proof, ...): nothing stored.
    `argument` names the input at fault, when one is."""

    def __init__(self, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class RepairUnavailable(Exception):
    """A department holding the subject's records of the family could not answer: nothing stored."""

    def __init__(self, departments: Sequence[str]) -> None:
        self.departments = sorted(set(departments))
        super().__init__(
            f"the record could not be checked: {', '.join(self.departments)} did not answer; nothing was filed, try again later"
        )


class RecordFinder(Protocol):
    """Where a subject's record is, read through the federation (`DistrictRecords.find_record`)."""

    async def find_record(self, subject: str, family: str, key: str, fields: Iterable[str] = ()) -> "RecordFound": ...


# ---- eligibility -------------------------------------------------------------------------------


def minor_shown(policy: "Policy", family: str) -> bool:
    """Whether the policy shows 轻微 (minor) records of `family` to the public: it has a
    `publicity-window` rule on the family for the public, and every such rule has `show_minor`."""
    windows = [r for r in policy.row_rules(family, DisclosureClass.PUBLIC) if isinstance(r, PublicityWindowRule)]
    return bool(windows) and all(r.window.show_minor for r in windows)


def _min_months(severity: Any, rules: RepairRules) -> int | None:
    if not isinstance(severity, str):
        return None
    months = rules.min_months.get(severity)
    return STANDARD_MIN_MONTHS.get(severity) if months is None else months


def first_record_day(severity: Any, decided: Any, rules: RepairRules, minor: bool = False) -> dt.date:
    """The first day a penalty of `severity` decided on `decided` may be repaired: the day after its
    minimum publicity (`add_months(decided, rules.min_months[severity])`); `RepairRefused` for a
    轻微 penalty unless the policy shows minor penalties to the public (`minor`, see `minor_shown`:
    otherwise it is never shown, nothing to repair), or one whose severity or date is not known.
    A 轻微 penalty's minimum is the national 0 months (`STANDARD_MIN_MONTHS`, a policy may raise it):
    it may be repaired from the day after its decision date."""
    if severity == MINOR and not minor:
        raise RepairRefused(
            "a 轻微 (minor) penalty is not shown to the public under this policy (its publicity window does not "
            "show_minor), so there is nothing to repair", "recordKey",
        )
    months = _min_months(severity, rules)
    if months is None:
        raise RepairRefused(
            f"the record's severity at its source ({severity!r}) is not one of 一般, 严重: its minimum publicity "
            "cannot be established (ask the department to correct it, or file an objection)", "recordKey",
        )
    if isinstance(decided, dt.datetime):
        decided = decided.date()
    if not isinstance(decided, dt.date):
        raise RepairRefused(
            "the record has no decision date at its source: its minimum publicity cannot be established", "recordKey",
        )
    return add_months(decided, months) + DAY


def check_record(severity: Any, decided: Any, today: dt.date, rules: RepairRules, minor: bool = False) -> dt.date:
    """The first day of eligibility (on or before `today`), or `RepairRefused` saying when it comes."""
    first = first_record_day(severity, decided, rules, minor)
    if today < first:
        months = _min_months(severity, rules)
        since = (
            f"once its minimum publicity of {months} months from its decision date ({decided}) has passed" if months
            else f"from the day after its decision date ({decided})"
        )
        raise RepairRefused(f"not yet: a {severity} penalty may be repaired {since}, i.e. from {first}", "recordKey")
    return first


def first_listing_day(listed_on: dt.date, rules: RepairRules) -> dt.date:
    """The first day a blacklisting listed on `listed_on` may be repaired: the day after it has
    lasted `listing_min_months`."""
    return add_months(listed_on, rules.listing_min_months) + DAY


def check_listing(listed_on: dt.date, today: dt.date, rules: RepairRules) -> dt.date:
    first = first_listing_day(listed_on, rules)
    if today < first:
        raise RepairRefused(
            f"not yet: a blacklisting may be repaired once it has lasted {rules.listing_min_months} months "
            f"(listed on {listed_on}), i.e. from {first}", "listingId",
        )
    return first


# ---- an application ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    """What a subject asks: the repair of one record (`family`, `key`) or of one listing (`listing`)."""

    subject: str
    reason: str
    commitment: str
    uploads: Sequence[Upload] = ()
    family: str | None = None
    key: str | None = None
    listing: int | None = None

    def checked(self, rules: RepairRules) -> "Application":
        """The application with its text checked, or `RepairRefused` naming what is missing."""
        record = self.family is not None or self.key is not None
        if record == (self.listing is not None):
            raise RepairRefused("name what to repair: either a record (family and recordKey) or a listing (listingId)")
        if record:
            if self.family not in rules.families:
                raise RepairRefused(f"family: repair is for records of {', '.join(rules.families)}", "family")
            if not (self.key or "").strip():
                raise RepairRefused("recordKey: the record's key (its decision number)", "recordKey")
        if not (self.commitment or "").strip():
            raise RepairRefused(
                "commitment: the credit commitment (信用承诺) is required — the subject's written commitment to "
                "keep the law and meet its obligations from now on", "commitment",
            )
        if not (self.reason or "").strip():
            raise RepairRefused("reason: say why the record should no longer be shown (what was done to correct it)", "reason")
        if record and not self.uploads:
            raise RepairRefused(
                "attachments: repairing a penalty needs at least one proof document that its obligations are met "
                "(e.g. the receipt of the fine paid, the rectification report), as PDF, JPEG or PNG", "attachments",
            )
        try:
            return Application(
                subject=self.subject, reason=case_text(self.reason, "reason", limit=TEXT_LIMIT),
                commitment=case_text(self.commitment, "commitment", limit=TEXT_LIMIT), uploads=self.uploads, family=self.family,
                key=case_text(self.key, "recordKey", limit=200, multiline=False) if record else None,
                listing=self.listing,
            )
        except CaseInputError as exc:
            raise RepairRefused(str(exc)) from None

    def description(self, about: str = "") -> str:
        """The case's description as its decider reads it: what it is about, the reason, the commitment."""
        return "\n".join(filter(None, (about, self.reason, "", f"信用承诺（credit commitment）：{self.commitment}")))

    def target(self) -> tuple[str, ...]:
        return (RECORD, self.family or "", self.key or "") if self.listing is None else (LISTING, str(self.listing))


def target_of(case: Case) -> tuple[str, ...]:
    """What a repair case is about, as `Application.target` says it."""
    if case.category == LISTING:
        return (LISTING, str(case.detail.get("listing")))
    ref = case.records[0] if case.records else CaseRef("", "")
    return (RECORD, ref.family, ref.key)


# ---- the register of approved repairs ----------------------------------------------------------


class ApprovedRepairs(FollowedView):
    """The approved record repairs in memory (subject → family → key → repair day), revalidated
    against the store at most every `interval` s (hub/cluster/views.py)."""

    topics = ("cases",)

    def __init__(self, cases: CaseRegister, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(cases.store, interval, clock)
        self.cases = cases
        self._repaired: dict[str, Repaired] = {}
        self._version: tuple[int, int] | None = None  # (count, max id) of the approved record repairs

    async def of(self, subjects: Iterable[str]) -> dict[str, Repaired]:
        """The repaired records of each of `subjects` that has any (a snapshot: never changed in place)."""
        await self.fresh()
        found = self._repaired
        return {s: found[s] for s in subjects if s in found}

    async def _revalidate(self) -> None:
        checked = self.clock()
        c = CASES.c
        approved = (c.kind == REPAIR, c.status == APPROVED, c.category == RECORD)
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(func.count(c.id), func.max(c.id)).where(*approved))).one()
            version = (int(row[0]), int(row[1] or 0))  # approvals are final: the pair moves on each one
            if version != self._version:
                rows = (await conn.execute(select(c.subject, c.records, c.detail, c.closed_at).where(*approved))).all()
                self._repaired, self._version = _repaired(rows), version
                self.reloads += 1
        self._checked_at(checked)


def _repaired(rows: Iterable[Any]) -> dict[str, Repaired]:
    out: dict[str, dict[str, dict[str, dt.date]]] = {}
    for subject, records, detail, closed_at in rows:
        day = json.loads(detail or "{}").get("repaired_on")
        on = dt.date.fromisoformat(day) if isinstance(day, str) else hohhot_day(as_utc(closed_at))  # SQLite: naive UTC
        for ref in json.loads(records or "[]"):
            keys = out.setdefault(subject or "", {}).setdefault(ref["family"], {})
            keys[ref["key"]] = min(on, keys.get(ref["key"], on))
    return dict(out)


# ---- applying and deciding ---------------------------------------------------------------------


@dataclass
class RepairRegister:
    """Credit repair applications (repair cases) and the register of approved repairs."""

    cases: CaseRegister
    interval: float = 1.0
    approved: ApprovedRepairs = field(init=False)

    def __post_init__(self) -> None:
        self.approved = ApprovedRepairs(self.cases, self.interval)
        self.cases.changed.append(self.approved.invalidate)

    def today(self) -> dt.date:
        return hohhot_day(self.cases.clock())

    async def apply_for_record(
        self, application: Application, actor: Actor, rules: RepairRules, finder: RecordFinder, today: dt.date,
        minor: bool = False,
    ) -> Case:
        """File an application to repair one record, after checking it at its sources (every source
        of the family must answer: the record may be held by two). `minor`: the policy shows 轻微
        penalties to the public (`minor_shown`), so they may be repaired too."""
        app = application.checked(rules)
        assert app.family is not None and app.key is not None
        found = await finder.find_record(app.subject, app.family, app.key, RECORD_FIELDS)
        if found.unavailable:  # even if another source has it: this one may hold it too
            raise RepairUnavailable(found.unavailable)
        if not found.departments:
            raise RepairRefused(f"no {app.family} record {app.key!r} of subject {app.subject} at any department", "recordKey")
        firsts = [check_record(r.get("severity"), r.get("decision_date"), today, rules, minor) for r in found.records]
        record = found.records[0]
        department = found.departments[0] if len(found.departments) == 1 else None  # two sources: the credit office
        detail = {
            "target": RECORD, "commitment": app.commitment, "severity": record.get("severity"),
            "decision_date": str(record.get("decision_date")), "eligible_from": max(firsts).isoformat(),
            "providers": found.departments,
        }
        name = str(record.get("party_name") or "")[:200]
        return await self._file(app, actor, department, [CaseRef(app.family, app.key)], detail, name, app.description())

    async def apply_for_listing(
        self, application: Application, actor: Actor, rules: RepairRules, listings: "CreditRegister", today: dt.date,
    ) -> Case:
        """File an application to end the subject's current blacklisting early."""
        app = application.checked(rules)
        assert app.listing is not None
        listing = await listings.listing(app.listing)
        if listing is None or listing.subject != app.subject:
            raise CaseNotFound(f"no listing {app.listing} of subject {app.subject}")
        if listing.list != BLACK:
            raise RepairRefused("only a blacklisting (严重失信主体名单) is repaired; a red listing is no penalty", "listingId")
        if not listing.current(today):
            raise RepairRefused(f"listing {listing.id} is not current ({listing.status}): there is nothing to repair", "listingId")
        first = check_listing(listing.listed_on, today, rules)
        detail = {
            "target": LISTING, "listing": listing.id, "commitment": app.commitment,
            "listed_on": listing.listed_on.isoformat(), "eligible_from": first.isoformat(),
        }
        about = f"严重失信主体名单 listing {listing.id}: {listing.basis_text or listing.basis}, listed on {listing.listed_on}"
        return await self._file(app, actor, listing.department, [], detail, listing.subject_name, app.description(about))

    async def _file(
        self, app: Application, actor: Actor, department: str | None, records: list[CaseRef], detail: Mapping[str, Any],
        name: str, description: str,
    ) -> Case:
        async def no_open_application(conn: AsyncConnection) -> None:
            for case in await CaseRegister.open_cases(conn, REPAIR, app.subject):
                if target_of(case) == app.target():
                    raise RepairRefused(
                        f"repair application {case.id} for this {'listing' if app.listing else 'record'} is open "
                        f"(filed {case.filed_on}, due {case.deadline}): wait for its decision or withdraw it",
                    )

        # one open application per record or listing, across hub processes: the check and the
        # filing hold the subject's application lock in one transaction
        return await self.cases.file(
            REPAIR, actor, category=RECORD if app.listing is None else LISTING, description=description,
            subject=app.subject, subject_name=name, department=department, records=records, detail=detail,
            uploads=app.uploads, lock=f"repair-application:{app.subject}", check=no_open_application,
        )

    async def decide(self, case_id: int, approve: bool, note: str, actor: Actor, listings: "CreditRegister") -> Case:
        """Approve (with its effect, in the step's transaction) or refuse a repair application."""
        if not approve:
            return await self.cases.move(case_id, "refuse", actor, note, kind=REPAIR)
        store = self.cases.store

        async def effect(conn: AsyncConnection, case: Case) -> Mapping[str, Any]:
            day = self.today()
            if case.category == LISTING:
                if store.dialect == "postgresql":  # after the case's lock: the order every approval takes
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                       {"key": advisory_key(f"credit-subject:{case.subject}")})
                try:
                    await listings._end(conn, int(case.detail["listing"]), "repaired", day, actor.id,
                                        f"credit repair {case.id} approved: {note.strip()}"[:4000])
                except CreditInputError as exc:
                    raise RepairRefused(f"{exc}: the application cannot be approved (refuse it)") from None
            return {"repaired_on": day.isoformat(), "decided_by": actor.id}

        return await self.cases.move(case_id, "approve", actor, note, kind=REPAIR, within=effect)

    async def withdraw(self, case_id: int, note: str, actor: Actor) -> Case:
        return await self.cases.move(case_id, "withdraw", actor, note, kind=REPAIR, note_required=False)

    def settle(self, case: Case, credit: "CreditGovernance", policy: "Policy") -> "asyncio.Task[Any] | None":
        """After a decision has committed: a repaired listing changes the subject's standing — seen at
        once here (invalidated now: cheap), on the change feed elsewhere — and its rating, re-rated in
        the background (`CreditGovernance.rerate_later`). Returns the background task, if one was
        started."""
        if not (case.status == APPROVED and case.category == LISTING and case.subject):
            return None
        credit.standing.invalidate()
        by = str(case.detail.get("decided_by") or "credit repair")
        return credit.rerate_later(policy, case.subject, self.today(), by, f"credit repair {case.id}")

    async def repaired(self, subjects: Iterable[str]) -> dict[str, Repaired]:
        """The approved record repairs of `subjects` (from memory: `ApprovedRepairs`)."""
        return await self.approved.of(subjects)
