"""District runs: list rules and re-rating for a batch of subjects, or the whole district as a
resumable job.

For each batch of subjects the run reads the records every list rule and the rating model
need in one federated read (hub/credit/records.py), brings each rule-derived listing in line
with its rule (listed while it holds, delisted when it stops: `CreditRegister.apply_rule`),
then rates each subject with the listings as they now stand and stores the snapshots.
A subject whose records could not all be read (a department down) is neither listed, delisted
nor rated: it is counted as failed and taken again by the next run. The listings a batch's
rules changed are audited as one entry (endpoint `/credit/list-rules`, `detail.listed` /
`detail.delisted` as "subject:rule"), besides each transition's row in `credit_listing_events`.

A district-wide job (`run_district`) pages through the registry's subjects in key order and
keeps its cursor (the last subject done) in `credit_rating_jobs` after every batch, so an
interrupted job (a crash, Ctrl-C, a department down for long) resumes where it stopped
(`resume=True`). Only one district job runs at a time across the cluster: the job takes the
store's `credit-district-run` lock for each batch's write and refuses to start while another
job is `running` and was seen in the last `STALE` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from sqlalchemy import insert, select, update

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.store import Store, as_utc
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import RatingJob
from xinlian.policies.credit import CreditRules
from xinlian.schema.catalogue import REGISTRATION
from xinlian.schema.identifiers import InvalidIdentifier, validate_uscc

from .model import CreditInputError
from .ratings import Rating, RatingRegister, rate
from .records import DistrictRecords
from .register import CreditRegister
from .standing import CreditStanding

log = logging.getLogger("xinlian.credit")
AUDIT_ENDPOINT = "/credit/list-rules"  # the audit entries of the list rules' own changes
AUDIT_RUN_ENDPOINT = "/credit/district-run"  # one entry per district run, when it ends
Audit = Callable[[AuditEntry], Awaitable[int]]
JOBS = table_of(RatingJob)
BATCH = 200
STALE = 600.0  # seconds after which a `running` job that stopped moving counts as interrupted
Progress = Callable[[int, int, int], Awaitable[None] | None]  # (subjects done, rated, failed) so far


class JobRunning(CreditInputError):
    """Another district job is running (here or in another hub process)."""


def rateable(subject: str) -> bool:
    """Ratings (三等九级) are for legal persons and other organisations (a USCC), not for natural
    persons: the model's indicators and the supervision plans are about supervised units."""
    try:
        validate_uscc(subject)
    except InvalidIdentifier:
        return False
    return True


@dataclass
class BatchOutcome:
    ratings: list[Rating] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    listed: int = 0
    delisted: int = 0


@dataclass(frozen=True)
class JobState:
    id: int
    status: str
    model_version: str
    cursor: str
    rated: int
    failed: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    by: str
    note: str


def _job(row: object) -> JobState:
    values = {c.name: getattr(row, c.name) for c in JOBS.columns}
    for name in ("started_at", "finished_at"):
        if values[name] is not None:
            values[name] = as_utc(values[name])
    return JobState(**values)


async def job_states(store: Store, limit: int = 20) -> list[JobState]:
    """The district jobs, newest first."""
    async with store.session() as session:
        return [_job(r) for r in await session.execute(select(JOBS).order_by(JOBS.c.id.desc()).limit(limit))]


class DistrictRun:
    """List rules and ratings over batches of subjects (see the module docstring)."""

    def __init__(
        self, store: Store, register: CreditRegister, standing: CreditStanding, ratings: RatingRegister,
        records: DistrictRecords, audit: Audit | None = None,
    ) -> None:
        self.store = store
        self.register = register
        self.standing = standing
        self.ratings = ratings
        self.records = records
        self.audit = audit

    async def batch(
        self, rules: CreditRules, policy_version: str, subjects: list[str], today: dt.date, by: str,
        trigger: str = "on-demand", job_id: int | None = None, apply_rules: bool = True,
    ) -> BatchOutcome:
        """Apply the list rules to `subjects`, then rate them; store the ratings."""
        needs: dict[str, set[str]] = {}
        for family, fields in rules.rating.reads().items():
            needs.setdefault(family, set()).update(fields)
        if apply_rules:
            for rule in rules.list_rules:
                for family, fields in rule.reads().items():
                    needs.setdefault(family, set()).update(fields)
        read = await self.records.read(subjects, needs)
        outcome = BatchOutcome(failed=read.failed)
        if read.withheld:
            log.warning("credit run: the policy does not give government %s; rules reading them fail closed", ", ".join(sorted(read.withheld)))
        if apply_rules:
            changes: dict[str, list[str]] = {"listed": [], "delisted": []}
            readable = {
                rule.name: all(self.records.served(fam) for fam in rule.reads())
                and not any(f"{fam}.{f}" in read.withheld for fam, fs in rule.reads().items() for f in fs)
                for rule in rules.list_rules
            }
            await self.standing.fresh()
            for subject, found in read.found.items():
                current = self.standing.listings(subject, today)
                for rule in rules.list_rules:
                    if not readable[rule.name]:
                        continue  # never list or delist on what the policy keeps from us or no department serves
                    holds = rule.holds(found.records, today)
                    if holds == any(x.rule == rule.name for x in current):
                        continue  # nothing to change as far as the standing knows (the register re-checks under the lock)
                    change = await self.register.apply_rule(
                        rule, subject, holds, rule.source_refs(found.records, today) if holds else [], today, by, found.name
                    )
                    if change is not None:
                        changes[change].append(f"{subject}:{rule.name}")
            outcome.listed, outcome.delisted = len(changes["listed"]), len(changes["delisted"])
            if outcome.listed or outcome.delisted:
                self.standing.invalidate()
                await self._audit(changes, by, policy_version, job_id, trigger)
        await self.standing.fresh()
        upheld = await self.ratings.upheld_objections(list(read.found))
        for subject, found in read.found.items():
            if not rateable(subject) or not found.records.get(REGISTRATION.name):
                continue  # only subjects the registry knows are rated (and planned)
            outcome.ratings.append(
                rate(
                    rules, policy_version, subject, found.name, found.industry, found.records,
                    self.standing.listings(subject, today), self.standing.findings(subject), upheld.get(subject, []),
                    today, trigger,
                )
            )
        outcome.ratings = await self.ratings.save(outcome.ratings, job_id)
        return outcome

    async def _audit(self, changes: dict[str, list[str]], by: str, policy_version: str, job_id: int | None, trigger: str) -> None:
        """One audit entry for the listings the list rules changed in a batch (each change is also a
        row of `credit_listing_events`); a lost entry stops the run (it resumes from its cursor)."""
        subjects = sorted({item.split(":", 1)[0] for items in changes.values() for item in items})
        await self.audit_system(
            "listRules", by, policy_version, subjects,
            {"job": job_id, "trigger": trigger, **{k: v for k, v in changes.items() if v}}, endpoint=AUDIT_ENDPOINT,
        )

    async def audit_system(
        self, action: str, by: str, policy_version: str, subjects: list[str], detail: dict[str, object],
        endpoint: str = "/credit/system",
    ) -> None:
        """An audit entry for what credit governance did on its own (list rules, expiries, runs)."""
        if self.audit is None:
            return
        await self.audit(AuditEntry(
            at=dt.datetime.now(dt.timezone.utc), request_id=uuid.uuid4().hex, endpoint=endpoint, client_id=by,
            client_kind="system", outcome="ok", policy_version=policy_version or "unknown", subjects=subjects,
            operation_name=action, detail={"action": action, **detail},
        ))

    # ---- district-wide jobs ----------------------------------------------------------------
    async def jobs(self, limit: int = 20) -> list[JobState]:
        return await job_states(self.store, limit)

    async def start_job(self, rules: CreditRules, by: str, resume: bool) -> JobState:
        """A new job, or (`resume`) the newest unfinished one; refused while another is running."""
        now = dt.datetime.now(dt.timezone.utc)
        async with self.store.exclusive("credit-district-run") as conn:
            newest = (await conn.execute(select(JOBS).order_by(JOBS.c.id.desc()).limit(1))).first()
            if newest is not None and newest.status == "running":
                moved = as_utc(newest.finished_at or newest.started_at)  # SQLite gives naive UTC times back
                if (now - moved).total_seconds() < STALE:
                    raise JobRunning(f"district job {newest.id} is running (started {newest.started_at:%Y-%m-%d %H:%M} by {newest.by})")
            if resume and newest is not None and newest.status in ("running", "interrupted", "failed"):
                await conn.execute(update(JOBS).where(JOBS.c.id == newest.id).values(status="running", finished_at=now, by=by))
                job_id = newest.id
            else:
                job_id = (await conn.execute(
                    insert(JOBS).values(
                        status="running", model_version=rules.rating.version, cursor="", rated=0, failed=0,
                        started_at=now, finished_at=now, by=by, note="",
                    ).returning(JOBS.c.id)
                )).scalar_one()
            return _job((await conn.execute(select(JOBS).where(JOBS.c.id == job_id))).one())

    async def run_district(
        self, rules: CreditRules, policy_version: str, today: dt.date, by: str, *, resume: bool = False,
        batch_size: int = BATCH, progress: Progress | None = None, limit: int | None = None,
    ) -> JobState:
        """Rate the whole district (and apply the list rules) as a resumable job; returns its end state.

        `finished_at` holds the last time the job moved while it runs (its heartbeat). `limit`
        stops after that many subjects (status `interrupted`, resumable): for trials and tests.
        """
        job = await self.start_job(rules, by, resume)
        return await self.drive(job, rules, policy_version, today, by, batch_size=batch_size, progress=progress, limit=limit)

    async def drive(
        self, job: JobState, rules: CreditRules, policy_version: str, today: dt.date, by: str, *,
        batch_size: int = BATCH, progress: Progress | None = None, limit: int | None = None,
    ) -> JobState:
        """Carry a started job (`start_job`) from its cursor to the end, or to `limit` subjects."""
        if not self.records.enumerable():
            await self._finish(job.id, "failed", "no connector can enumerate the district's subjects (registration)")
            raise CreditInputError("no connector of the federation can enumerate the district's subjects (registration)")
        cursor, rated, failed = job.cursor, job.rated, job.failed
        processed = 0  # subjects done in this call (natural persons and unregistered ones are not rated)
        done = 0
        status, note = "done", ""
        try:
            while True:
                size = batch_size if limit is None else min(batch_size, limit - done)
                if size <= 0:
                    status, note = "interrupted", f"stopped after {done} subjects (limit)"
                    break
                families = {family for rule in rules.list_rules for family in rule.listing_families()}
                subjects = [s for s in await self.records.subjects(cursor, size, families) if s > cursor]
                if not subjects:
                    break
                outcome = await self.batch(rules, policy_version, subjects, today, by, trigger="bulk", job_id=job.id)
                rated += len(outcome.ratings)
                failed += len(outcome.failed)
                done += len(subjects)
                processed += len(subjects)
                cursor = subjects[-1]
                async with self.store.exclusive("credit-district-run") as conn:
                    await conn.execute(
                        update(JOBS).where(JOBS.c.id == job.id)
                        .values(cursor=cursor, rated=rated, failed=failed, finished_at=dt.datetime.now(dt.timezone.utc))
                    )
                if progress is not None:
                    waited = progress(processed, rated, failed)
                    if waited is not None:
                        await waited
        except BaseException as exc:
            status, note = "interrupted", f"{type(exc).__name__}: {exc}"[:500]
            await self._finish(job.id, status, note)
            await self._audit_run(job.id, by, policy_version)
            raise
        await self._finish(job.id, status, note)
        return await self._audit_run(job.id, by, policy_version)

    async def _audit_run(self, job_id: int, by: str, policy_version: str) -> JobState:
        """The run's own audit entry (who, model, how far: done or interrupted); its end state."""
        async with self.store.session() as session:
            ended = _job((await session.execute(select(JOBS).where(JOBS.c.id == job_id))).one())
        await self.audit_system(
            "ratingsRun", by, policy_version, [],
            {"job": ended.id, "status": ended.status, "rated": ended.rated, "failed": ended.failed,
             "model": ended.model_version, "note": ended.note},
            endpoint=AUDIT_RUN_ENDPOINT,
        )
        return ended

    async def _finish(self, job_id: int, status: str, note: str) -> None:
        async with self.store.exclusive("credit-district-run") as conn:
            await conn.execute(
                update(JOBS).where(JOBS.c.id == job_id)
                .values(status=status, note=note, finished_at=dt.datetime.now(dt.timezone.utc))
            )
