"""`xinlian ratings run|show|jobs` and `xinlian supervision plan`: ratings and supervision plans.

- `ratings run [--resume] [--limit N]` — the district-wide job: the list rules, then a rating
  of every subject of the registry under the policy's model, with a progress bar on stderr; it
  keeps its cursor after every batch, so an interrupted run (Ctrl-C, a department down) goes on
  with `--resume`. It opens the hub (connectors, policy in force) as `xinlian serve` would.
- `ratings show SUBJECT [--history] [--json]` — the current rating, explained indicator by
  indicator (or every snapshot, newest first).
- `ratings jobs` — the district jobs, newest first.
- `supervision plan [--department D] [--period 2026-Q4] [--format table|csv|xlsx] [--output F]`
  — subjects by supervision class with the inspections due in the period.

A run is audited by the hub it opens (an entry for the listings each batch's rules changed, one
for the run: `/credit/list-rules`, `/credit/district-run`); a plan read or export as a CLI entry
(`admin_session.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from xinlian.hub.credit.model import CreditInputError
from xinlian.hub.credit.ratings import Rating, RatingRegister
from xinlian.hub.credit.register import subject_key
from xinlian.hub.credit.supervision import Period, build_plan, plan_csv, plan_xlsx

from .admin_session import AdminSession, add_common_arguments, refuse_missing_store, run_admin
from .credit import policy_in_force, today
from .tables import utc_text

BAR = 30


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    ratings = sub.add_parser("ratings", help="credit ratings (三等九级): run the district, show a subject")
    r = ratings.add_subparsers(dest="ratings_command", required=True)
    run = r.add_parser("run", help="rate the whole district (list rules first), with a progress bar")
    run.add_argument("--resume", action="store_true", help="go on with the last unfinished run")
    run.add_argument("--limit", type=int, default=None, help="stop after N subjects (resumable)")
    run.add_argument("--batch", type=int, default=200, help="subjects per batch (default 200)")
    add_common_arguments(run)
    run.set_defaults(handler=run_ratings)
    show = r.add_parser("show", help="a subject's rating with its indicators")
    show.add_argument("subject", metavar="SUBJECT")
    show.add_argument("--history", action="store_true", help="every snapshot, newest first")
    show.add_argument("--json", action="store_true")
    add_common_arguments(show, changes=False)
    show.set_defaults(handler=run_show)
    jobs = r.add_parser("jobs", help="district runs, newest first")
    add_common_arguments(jobs, changes=False)
    jobs.set_defaults(handler=run_jobs)

    supervision = sub.add_parser("supervision", help="supervision plans by credit class (分级分类监管)")
    s = supervision.add_subparsers(dest="supervision_command", required=True)
    plan = s.add_parser("plan", help="subjects by supervision class for a period")
    plan.add_argument("--department", default=None, help="only the industries this department supervises")
    plan.add_argument("--period", default=None, help="2026, 2026-Q4 or 2026-12 (default: this quarter)")
    plan.add_argument("--format", choices=("table", "csv", "xlsx"), default="table")
    plan.add_argument("--output", type=Path, default=None, help="write the export here (xlsx needs it)")
    add_common_arguments(plan)
    plan.set_defaults(handler=run_plan)


class ProgressBar:
    """`[#####.....] 1200/2000 rated 1180 failed 20 85/s` on stderr, redrawn in place: subjects done
    of the district's (natural persons the list rules cover are done, not rated)."""

    def __init__(self, total: int, already: int = 0) -> None:
        self.total = max(total, 1)
        self.already = already  # done by the run this one resumes
        self.started = time.monotonic()

    def __call__(self, processed: int, rated: int, failed: int) -> None:
        done = min(self.already + processed, self.total)
        filled = min(BAR, BAR * done // self.total)
        rate = processed / max(time.monotonic() - self.started, 1e-6)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR - filled)}] {done}/{self.total} rated {rated} failed {failed} {rate:.0f}/s")
        sys.stderr.flush()


async def _count(runtime: Any, upto: str = "") -> tuple[int, int]:
    """The subjects a district run takes (the registry's and the list rules' families'), and how
    many of them sort up to `upto` (a resumed run's cursor: already done)."""
    families = {family for rule in runtime.policy.credit.list_rules for family in rule.listing_families()}
    records, after, total, before = runtime.credit.records, "", 0, 0
    while True:
        page = await records.subjects(after, 5000, families)
        if not page:
            return total, before
        total += len(page)
        before += sum(1 for key in page if upto and key <= upto)
        after = page[-1]


def run_ratings(args: argparse.Namespace) -> int:
    from xinlian.hub.config import Settings
    from xinlian.hub.runtime import HubRuntime

    settings = Settings.from_env(args.data_dir)
    if refuse_missing_store(settings):
        return 2
    if args.limit is not None and args.limit < 1 or not 1 <= args.batch <= 1000:
        print("xinlian ratings: --limit at least 1, --batch 1 to 1000", file=sys.stderr)
        return 2

    async def run() -> Any:
        runtime = await HubRuntime.open(settings, schedule=False)
        try:
            cursor = ""
            if args.resume:
                jobs = await runtime.credit.district.jobs(limit=1)
                cursor = jobs[0].cursor if jobs and jobs[0].status != "done" else ""
            total, already = await _count(runtime, cursor)
            bar = ProgressBar(total, already)
            policy = runtime.policy
            return await runtime.credit.district.run_district(
                policy.credit, policy.version, runtime.today(), args.by, resume=args.resume, batch_size=args.batch,
                progress=bar, limit=args.limit,
            )
        finally:
            await runtime.close()

    try:
        job = asyncio.run(run())
    except CreditInputError as exc:
        print(f"\nxinlian ratings: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nxinlian ratings: interrupted; go on with `xinlian ratings run --resume`", file=sys.stderr)
        return 130
    sys.stderr.write("\n")  # the run's own audit entries were written by the hub it opened (hub/credit/district.py)
    print(f"job {job.id} {job.status}: {job.rated} rated, {job.failed} failed (model {job.model_version})"
          + (f" — {job.note}" if job.note else ""))
    if job.failed:
        print(f"xinlian ratings: {job.failed} subject(s) not rated: a department holding their records did not answer "
              "(see `xinlian connectors check`); the next run takes them again", file=sys.stderr)
    return 0 if job.status in ("done", "interrupted") and not job.failed else 1


def _rating_document(r: Rating) -> dict[str, Any]:
    return {
        "subject": r.subject, "name": r.subject_name, "industry": r.industry, "level": r.level, "score": r.score,
        "class": r.supervision_class, "model": r.model_version, "policy": r.policy_version,
        "rated_on": r.rated_on.isoformat(), "trigger": r.trigger,
        "indicators": [{"name": i.name, "points": i.points, "weight": i.weight, "detail": i.detail, "evidence": list(i.evidence)}
                       for i in r.indicators],
    }


def run_show(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        key = subject_key(args.subject)
        register = RatingRegister(session.store)
        found = await register.history(key) if args.history else [r for r in [await register.latest(key)] if r is not None]
        if not found:
            session.say(f"{key} has no rating yet (xinlian ratings run)")
            return 0
        for r in found:
            if args.json:
                session.say(json.dumps(_rating_document(r), ensure_ascii=False))
                continue
            session.say(f"{r.subject} {r.subject_name}: {r.level} ({r.score:g}) class {r.supervision_class}, "
                        f"model {r.model_version}, rated {r.rated_on} ({r.trigger})")
            rows = [{"indicator": i.name, "points": f"{i.points:+g}", "detail": i.detail, "evidence": list(i.evidence)}
                    for i in r.indicators if i.points or i.evidence]
            session.listing(rows, ("indicator", "points", "detail", "evidence"), False, "  (no indicator scored)")
        return 0

    return run_admin(args, "ratings", show)


def run_jobs(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        from sqlalchemy import select

        from xinlian.hub.credit.district import JOBS, _job

        async with session.store.session() as db:
            jobs = [_job(row) for row in await db.execute(select(JOBS).order_by(JOBS.c.id.desc()).limit(20))]
        rows = [{"id": j.id, "status": j.status, "model": j.model_version, "rated": j.rated, "failed": j.failed,
                 "cursor": j.cursor, "started": utc_text(j.started_at), "by": j.by, "note": j.note}
                for j in jobs]
        session.listing(rows, ("id", "status", "model", "rated", "failed", "cursor", "started", "by", "note"), False, "no runs yet")
        return 0

    return run_admin(args, "ratings", show)


def run_plan(args: argparse.Namespace) -> int:
    if args.format == "xlsx" and args.output is None:
        print("xinlian supervision: --format xlsx needs --output FILE", file=sys.stderr)
        return 2

    async def plan(session: AdminSession) -> int:
        policy = await policy_in_force(session)
        period = Period.parse(args.period, today())
        built = build_plan(policy.credit, await RatingRegister(session.store).current_all(), args.department, period)
        session.record("supervisionPlan", read=True, department=args.department, period=period.text, subjects=len(built.entries),
                       format=args.format)
        if args.format == "table":
            rows = [vars(e) | {"rated_on": e.rated_on.isoformat()} for e in built.entries]
            session.say(f"supervision plan {period.text} ({period.start} – {period.end})"
                        f"{' for ' + args.department if args.department else ''}: "
                        f"C {built.count('C')}, B {built.count('B')}, A {built.count('A')}")
            session.listing(rows, ("subject", "name", "level", "supervision_class", "inspections_due", "industry"), False,
                            "no rated subjects (xinlian ratings run)")
            return 0
        data = plan_xlsx(built) if args.format == "xlsx" else plan_csv(built).encode("utf-8")
        if args.output is None:
            session.say(data.decode("utf-8").rstrip("\n"))
        else:
            args.output.write_bytes(data)
            session.say(f"{len(built.entries)} subjects written to {args.output}")
        return 0

    return run_admin(args, "supervision", plan)
