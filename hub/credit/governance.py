"""`CreditGovernance`: the district's credit machinery, built once by the runtime.

It composes the registers and engines of `hub/credit/` and is what every entry point calls —
`/graphql` (hub/executor/credit_fields.py), the admin API and the CLI — so they validate,
decide and record alike:

- findings and listings (`CreditRegister`), every transition one serialised transaction, the
  in-memory `CreditStanding` invalidated at once here and followed on the change feed elsewhere;
- credit checks over the standing (`checks.evaluate`), for one subject or a batch of 10,000;
- ratings (`ratings.rate`, snapshots in `RatingRegister`), on demand, after a finding changes,
  and district-wide (`DistrictRun`, resumable, optionally on a schedule);
- measure feedback and supervision plans.

The rules come from the caller's policy version (`Policy.credit`); nothing here holds a rule.
A background task records listing expiries hourly and, when `credit_run_hours` > 0, runs the
district job on that schedule (one process at a time across the cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Callable, Sequence

from xinlian.policies.model import Policy
from xinlian.schema.catalogue import FAMILIES, REGISTRATION

from .checks import CheckResult, check_context, evaluate
from .district import Audit, DistrictRun, JobRunning, JobState, rateable
from .feedback import FeedbackRegister
from .model import CreditForbidden, CreditInputError, CreditUnavailable, Finding, Listing, RecordRef
from .ratings import Rating, RatingRegister
from .records import DistrictRecords
from .register import CreditRegister, FindingOutcome, decision_text, subject_key
from .standing import CreditStanding
from .supervision import Period, SupervisionPlan, build_plan

if TYPE_CHECKING:
    from xinlian.hub.cluster.changes import ChangeFeed
    from xinlian.hub.executor.request import RequestContext
    from xinlian.hub.principal import Principal
    from xinlian.hub.store import Store

log = logging.getLogger("xinlian.credit")
MAX_BATCH = 10_000
MAX_RERATING = 100  # background re-ratings pending at once (more: left to the next district run)
FEEDBACK_DAYS = 366  # measure feedback reports what was applied within the last year
SWEEP_SECONDS = 3600.0


class RunStopped(Exception):
    """The hub is stopping: the scheduled district run ends between two batches (resumable)."""


class CreditGovernance:
    """See the module docstring."""

    def __init__(
        self, store: "Store", context: Callable[["Principal"], "RequestContext"], audit: "Audit | None" = None
    ) -> None:
        self.store = store
        self.register = CreditRegister(store)
        self.standing = CreditStanding(store)
        self.ratings = RatingRegister(store)
        self.feedback = FeedbackRegister(store)
        self.records = DistrictRecords(context)
        self.district = DistrictRun(store, self.register, self.standing, self.ratings, self.records, audit)
        self._task: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()  # district jobs started through the admin API
        self._rerating: set[asyncio.Task[Rating | None]] = set()  # re-ratings after a change (`rerate_later`)
        self.max_rerating = MAX_RERATING
        self._stopping = asyncio.Event()

    def follow(self, feed: "ChangeFeed") -> None:
        self.standing.follow(feed)

    # ---- checks ----------------------------------------------------------------------------
    async def check(
        self, policy: Policy, subjects: Sequence[str], context: str, today: dt.date, natural_findings: bool = True
    ) -> list[CheckResult]:
        """Credit checks of `subjects` (validated, at most 10,000) in `context`, in the order asked.

        `natural_findings` False (a caller outside government): a natural person's findings are
        not public decisions, so only the person's listings count for that caller."""
        rules = policy.credit
        check_context(rules, context)
        if not 1 <= len(subjects) <= MAX_BATCH:
            raise CreditInputError(f"subjects: 1 to {MAX_BATCH}")
        keys = []
        for index, subject in enumerate(subjects):
            try:
                keys.append(subject_key(subject))
            except CreditInputError as exc:
                raise CreditInputError(f"subjects[{index}]: {exc}") from None
        await self.standing.fresh()
        standing = self.standing
        return [
            evaluate(
                rules, context, k, standing.listings(k, today),
                standing.findings(k) if natural_findings or rateable(k) else (), today,
            )
            for k in keys
        ]

    async def listings(self, subjects: Sequence[str], today: dt.date) -> dict[str, tuple[Listing, ...]]:
        await self.standing.fresh()
        return {s: self.standing.listings(s, today) for s in subjects}

    # ---- transitions -----------------------------------------------------------------------
    async def record_finding(
        self, policy: Policy, *, subject: str, basis: str, facts: str, legal_basis: str, records: Sequence[RecordRef],
        department: str, decided_on: dt.date, measures: Sequence[str], by: str, today: dt.date,
        subject_name: str = "", severity: str | None = None,
    ) -> FindingOutcome:
        name = await self.verified_subject(subject, records, department, subject_name)
        outcome = await self.register.record_finding(
            policy.credit, subject=subject, basis=basis, facts=facts, legal_basis=legal_basis, records=records,
            department=department, decided_on=decided_on, measures=measures, by=by, today=today,
            subject_name=name, severity=severity,
        )
        self.standing.invalidate()
        await self.rerate(policy, outcome.finding.subject, today, by)
        return outcome

    async def revoke_finding(
        self, policy: Policy, finding_id: int, department: str | None, reason: str, by: str, today: dt.date
    ) -> Finding:
        finding = await self.register.revoke_finding(policy.credit, finding_id, department, reason, by, today)
        self.standing.invalidate()
        await self.rerate(policy, finding.subject, today, by)
        return finding

    async def red_list(
        self, policy: Policy, *, subject: str, basis: str, reason: str, department: str, listed_on: dt.date, by: str,
        today: dt.date, subject_name: str = "",
    ) -> Listing:
        name = await self.verified_subject(subject, (), department, subject_name)
        listing = await self.register.list_on_red_list(
            policy.credit, subject=subject, basis=basis, reason=reason, department=department, listed_on=listed_on,
            by=by, today=today, subject_name=name,
        )
        self.standing.invalidate()
        await self.rerate(policy, listing.subject, today, by)
        return listing

    async def end_listing(
        self, policy: Policy, listing_id: int, action: str, reason: str, by: str, today: dt.date, department: str | None,
    ) -> Listing:
        listing = await self.register.end_listing(
            listing_id, action, reason, by, today, department, allowed_departments=policy.credit.access.cancel_departments,
        )
        self.standing.invalidate()
        await self.rerate(policy, listing.subject, today, by)
        return listing

    async def verified_subject(
        self, subject: str, records: Sequence[RecordRef], department: str, given_name: str = ""
    ) -> str:
        """Check a decision's subject and records at their sources before it is recorded, and
        return the name the lists show.

        The subject must exist: the registry knows it, or the decision names records of it. Each
        record named must be a record of the subject, in a family the deciding department serves.
        A registered subject is named as the registry names it (a different `given_name` is
        refused); an unregistered one (a natural person) by `given_name`. A department that does
        not answer: `CreditUnavailable` (nothing is decided on what cannot be checked)."""
        key = subject_key(subject)
        needs: dict[str, set[str]] = {}
        for ref in records:
            family = FAMILIES.get(ref.family)
            if family is None or family.record_key is None:
                raise CreditInputError(f"records: {ref.family!r} is not a family of keyed records")
            if not self.records.serves(department, ref.family):
                raise CreditForbidden(f"records: department {department} is not a source of {ref.family}")
            needs.setdefault(ref.family, set()).add(family.record_key)
        read = await self.records.read([key], needs)
        if key in read.failed:
            raise CreditUnavailable(tuple(read.failed[key]))
        found = read.found[key]
        for ref in records:
            record_key = FAMILIES[ref.family].record_key or ""
            held = {str(r.get(record_key)) for r in found.records.get(ref.family, [])}
            if ref.key.strip() not in held:
                raise CreditInputError(f"records: {ref.family} {ref.key[:60]!r} is not a record of {key}")
        given = decision_text(given_name, "subjectName", required=False, limit=200, multiline=False)
        if found.records.get(REGISTRATION.name):
            if given and given != found.name:
                raise CreditInputError(f"subjectName: the registry names {key} {found.name!r}")
            return found.name
        if not records:
            raise CreditInputError(f"{key}: no registry knows this subject; name the records the decision rests on")
        return given

    async def record_feedback(
        self, policy: Policy, *, measure: str, subject: str, context: str, applied_on: dt.date, client_id: str,
        department: str, today: dt.date, check_request_id: str = "", note: str = "", natural_findings: bool = True,
    ) -> int:
        """实施反馈: store that `measure` was applied — only a measure a check of the subject in
        `context` gives now (a unit cannot report a sanction the subject is not under), applied
        within the last `FEEDBACK_DAYS` days."""
        if applied_on < today - dt.timedelta(days=FEEDBACK_DAYS):
            raise CreditInputError(f"appliedOn: within the last {FEEDBACK_DAYS} days")
        (result,) = await self.check(policy, [subject], context, today, natural_findings=natural_findings)
        applying = {a.measure.code for a in (*result.measures, *result.rewards)}
        if measure in {m.code for m in policy.credit.measures} and measure not in applying:
            raise CreditInputError(
                f"measure {measure} does not apply to {result.subject} in {context} "
                f"(a check now gives {', '.join(sorted(applying)) or 'none'})"
            )
        return await self.feedback.record(
            policy.credit, measure=measure, subject=result.subject, context=context, applied_on=applied_on,
            client_id=client_id, department=department, today=today, check_request_id=check_request_id, note=note,
        )

    async def expire_due(self, today: dt.date, by: str = "system", policy_version: str = "") -> int:
        """Record the expiries due; one audit entry names the subjects whose listings expired."""
        before = {x.id: x.subject for s in self.standing.subjects() for x in self.standing.listings(s, today - dt.timedelta(days=1))}
        count = await self.register.expire_due(today, by)
        if count:
            self.standing.invalidate()
            await self.standing.fresh()
            still = {x.id for s in self.standing.subjects() for x in self.standing.listings(s, today - dt.timedelta(days=1))}
            ended = sorted({subject for listing_id, subject in before.items() if listing_id not in still})
            await self.district.audit_system("expireListings", by, policy_version, ended, {"expired": count})
        return count

    def start_district(self, job: JobState, policy: Policy, today: dt.date, by: str) -> None:
        """Carry a started district job on in the background (the admin API's `runCreditRatings`);
        it stops with the hub between two batches and is resumed by the next run."""

        async def run() -> None:
            try:
                await self.district.drive(job, policy.credit, policy.version, today, by, progress=self._check_stop)
            except RunStopped as exc:
                log.info("district credit run %s: %s", job.id, exc)
            except Exception:
                log.exception("district credit run %s failed", job.id)

        task = asyncio.create_task(run(), name=f"xinlian-credit-run-{job.id}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    # ---- ratings ---------------------------------------------------------------------------
    async def rate(self, policy: Policy, subject: str, today: dt.date, by: str, trigger: str = "on-demand") -> Rating:
        """Rate one subject now from the departments' records and keep the snapshot.

        Only legal persons and other organisations the registry knows are rated
        (`CreditInputError` otherwise); `CreditUnavailable` if a department holding its records
        did not answer. The list rules are the district run's, not a rating's: rating a subject
        never lists or delists it."""
        key = subject_key(subject)
        if not rateable(key):
            raise CreditInputError("ratings are for legal persons and other organisations (a unified social credit code)")
        outcome = await self.district.batch(policy.credit, policy.version, [key], today, by, trigger=trigger, apply_rules=False)
        if key in outcome.failed:
            raise CreditUnavailable(tuple(outcome.failed[key]))
        if not outcome.ratings:
            raise CreditInputError(f"{key}: the registry does not know this subject; only registered subjects are rated")
        return outcome.ratings[0]

    async def rerate(self, policy: Policy, subject: str, today: dt.date, by: str) -> Rating | None:
        """Re-rate after a finding or listing changed; a department that is down only delays it
        (the next district run rates the subject), it never undoes the change. Natural persons are
        not rated."""
        if not rateable(subject):
            return None
        try:
            return await self.rate(policy, subject, today, by, trigger="finding")
        except CreditUnavailable as exc:
            log.warning("re-rating %s after a change postponed: %s", subject, exc)
        except Exception:
            log.exception("re-rating %s after a change failed", subject)
        return None

    def rerate_later(self, policy: Policy, subject: str, today: dt.date, by: str, after: str) -> "asyncio.Task[Rating | None] | None":
        """Re-rate in the background after a change that has committed (`after` says which, for the
        log), so that the change's answer never waits for a department. Bounded: past
        `max_rerating` pending, none is started and the next district run rates the subject.
        Errors are logged (`rerate`); `settled()` waits for them; `stop()` lets them end within its
        grace, as the district jobs. Returns the task, if one was started."""
        if not rateable(subject) or self._stopping.is_set():  # stopping: the next district run rates it
            return None
        if len(self._rerating) >= self.max_rerating:
            log.warning("re-rating %s after %s not started: %d re-ratings pending; the next district run rates it",
                        subject, after, len(self._rerating))
            return None
        task = asyncio.create_task(self.rerate(policy, subject, today, by), name=f"xinlian-rerate-{subject}")
        self._rerating.add(task)
        task.add_done_callback(self._rerating.discard)
        return task

    def rerating(self) -> tuple["asyncio.Task[Rating | None]", ...]:
        """The background re-ratings still running."""
        return tuple(self._rerating)

    async def settled(self) -> None:
        """Wait until every background re-rating started so far (and any they start) has ended."""
        while self._rerating:
            await asyncio.gather(*self._rerating, return_exceptions=True)

    async def current_rating(self, subject: str) -> Rating | None:
        return await self.ratings.latest(subject_key(subject))

    async def supervision_plan(self, policy: Policy, department: str | None, period: str | None, today: dt.date) -> SupervisionPlan:
        parsed = Period.parse(period, today)
        return build_plan(policy.credit, await self.ratings.current_all(), department, parsed)

    # ---- background ------------------------------------------------------------------------
    def start(self, policy: Callable[[], Policy], today: Callable[[], dt.date], run_hours: float) -> None:
        """Record listing expiries hourly; run the district job every `run_hours` (0: never)."""
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._background(policy, today, run_hours), name="xinlian-credit")

    def _check_stop(self, done: int, rated: int, failed: int) -> None:
        """The district run's progress callback in the background: stop between two batches."""
        if self._stopping.is_set():
            raise RunStopped(f"stopped with the hub after {done} subjects ({rated} rated)")

    async def _background(self, policy: Callable[[], Policy], today: Callable[[], dt.date], run_hours: float) -> None:
        """Hourly: record the expiries due; and when the newest district job in the store started
        `run_hours` ago or more, run the district job again — so restarts do not postpone it and a
        cluster runs it once (the others see the fresh job, or are refused while it runs). A store
        where no job ever ran waits for the first (`xinlian ratings run`, or the demo's)."""
        while not self._stopping.is_set():
            try:
                await self.expire_due(today(), "system", policy().version)
                if run_hours > 0 and await self._run_due(run_hours):
                    current = policy()
                    await self.district.run_district(
                        current.credit, current.version, today(), "schedule", resume=True, progress=self._check_stop
                    )
            except RunStopped as exc:
                log.info("credit schedule: %s (resumes at the next run)", exc)
                return
            except JobRunning as exc:  # another process runs it
                log.info("credit schedule: %s", exc)
            except Exception:
                log.exception("credit background task failed; trying again in an hour")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), SWEEP_SECONDS)

    async def _run_due(self, run_hours: float) -> bool:
        """Whether the newest district job started `run_hours` ago or more (none ever ran: no)."""
        newest = await self.district.jobs(limit=1)
        if not newest:
            return False
        age = dt.datetime.now(dt.timezone.utc) - newest[0].started_at
        return age >= dt.timedelta(hours=run_hours)

    async def stop(self, grace: float = 30.0) -> None:
        """Let the background task finish what it is doing (a store transaction is never cut in
        the middle: a cancelled one can leave its connection checked out), then end it; cancel it
        only if it does not end within `grace` seconds."""
        task, self._task = self._task, None
        self._stopping.set()  # no re-rating starts from now on
        running = [t for t in (task, *self._runs, *self._rerating) if t is not None]
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)  # one grace for all of them
        for t in late:
            t.cancel()
        for t in late:
            with contextlib.suppress(asyncio.CancelledError):
                await t
