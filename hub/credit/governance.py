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

from .checks import CheckResult, check_context, evaluate
from .district import Audit, DistrictRun, rateable
from .feedback import FeedbackRegister
from .model import CreditInputError, CreditUnavailable, Finding, Listing, RecordRef
from .ratings import Rating, RatingRegister
from .records import DistrictRecords
from .register import CreditRegister, FindingOutcome, subject_key
from .standing import CreditStanding
from .supervision import Period, SupervisionPlan, build_plan

if TYPE_CHECKING:
    from xinlian.hub.cluster.changes import ChangeFeed
    from xinlian.hub.executor.request import RequestContext
    from xinlian.hub.principal import Principal
    from xinlian.hub.store import Store

log = logging.getLogger("xinlian.credit")
MAX_BATCH = 10_000
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
        self._stopping = asyncio.Event()

    def follow(self, feed: "ChangeFeed") -> None:
        self.standing.follow(feed)

    # ---- checks ----------------------------------------------------------------------------
    async def check(self, policy: Policy, subjects: Sequence[str], context: str, today: dt.date) -> list[CheckResult]:
        """Credit checks of `subjects` (validated, at most 10,000) in `context`, in the order asked."""
        rules = policy.credit
        check_context(rules, context)
        if not 1 <= len(subjects) <= MAX_BATCH:
            raise CreditInputError(f"subjects: 1 to {MAX_BATCH}")
        keys = [subject_key(s) for s in subjects]
        await self.standing.fresh()
        standing = self.standing
        return [evaluate(rules, context, k, standing.listings(k, today), standing.findings(k), today) for k in keys]

    async def listings(self, subjects: Sequence[str], today: dt.date) -> dict[str, tuple[Listing, ...]]:
        await self.standing.fresh()
        return {s: self.standing.listings(s, today) for s in subjects}

    # ---- transitions -----------------------------------------------------------------------
    async def record_finding(
        self, policy: Policy, *, subject: str, basis: str, facts: str, legal_basis: str, records: Sequence[RecordRef],
        department: str, decided_on: dt.date, measures: Sequence[str], by: str, today: dt.date,
        subject_name: str = "", severity: str | None = None,
    ) -> FindingOutcome:
        outcome = await self.register.record_finding(
            policy.credit, subject=subject, basis=basis, facts=facts, legal_basis=legal_basis, records=records,
            department=department, decided_on=decided_on, measures=measures, by=by, today=today,
            subject_name=subject_name or await self.registered_name(subject), severity=severity,
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
        listing = await self.register.list_on_red_list(
            policy.credit, subject=subject, basis=basis, reason=reason, department=department, listed_on=listed_on,
            by=by, today=today, subject_name=subject_name or await self.registered_name(subject),
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

    async def registered_name(self, subject: str) -> str:
        """The subject's registered name from the registry, "" when unknown or unreachable (a
        decision does not wait for the registry; the name is for the lists' readers)."""
        try:
            key = subject_key(subject)
            read = await self.records.read([key], {})
        except CreditInputError:
            return ""
        except Exception:
            log.warning("registry unreachable for the name of %s", subject, exc_info=True)
            return ""
        found = read.found.get(key)
        return found.name if found is not None else ""

    async def expire_due(self, today: dt.date, by: str = "system") -> int:
        count = await self.register.expire_due(today, by)
        if count:
            self.standing.invalidate()
        return count

    # ---- ratings ---------------------------------------------------------------------------
    async def rate(self, policy: Policy, subject: str, today: dt.date, by: str, trigger: str = "on-demand") -> Rating:
        """Rate one subject now (list rules first) and keep the snapshot; `CreditUnavailable` if a
        department holding its records did not answer."""
        key = subject_key(subject)
        if not rateable(key):
            raise CreditInputError("ratings are for legal persons and other organisations (a unified social credit code)")
        outcome = await self.district.batch(policy.credit, policy.version, [key], today, by, trigger=trigger)
        if key in outcome.failed:
            raise CreditUnavailable(tuple(outcome.failed[key]))
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

    def _check_stop(self, rated: int, failed: int) -> None:
        """The district run's progress callback in the background: stop between two batches."""
        if self._stopping.is_set():
            raise RunStopped(f"stopped with the hub after {rated + failed} subjects")

    async def _background(self, policy: Callable[[], Policy], today: Callable[[], dt.date], run_hours: float) -> None:
        loop = asyncio.get_running_loop()
        last_run = loop.time()
        while not self._stopping.is_set():
            try:
                await self.expire_due(today())
                if run_hours > 0 and loop.time() - last_run >= run_hours * 3600:
                    last_run = loop.time()
                    current = policy()
                    await self.district.run_district(
                        current.credit, current.version, today(), "schedule", resume=True, progress=self._check_stop
                    )
            except RunStopped as exc:
                log.info("credit schedule: %s (resumes at the next run)", exc)
                return
            except CreditInputError as exc:  # another process runs the district job
                log.info("credit schedule: %s", exc)
            except Exception:
                log.exception("credit background task failed; trying again in an hour")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), SWEEP_SECONDS)

    async def stop(self, grace: float = 30.0) -> None:
        """Let the background task finish what it is doing (a store transaction is never cut in
        the middle: a cancelled one can leave its connection checked out), then end it; cancel it
        only if it does not end within `grace` seconds."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except asyncio.TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
