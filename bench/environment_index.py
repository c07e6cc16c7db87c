"""The credit environment index over a large hub store: cold and warm calls of 12 and 60 months.

What it does (in process, no network, every loop bounded):

1. opens a fresh SQLite hub store in a temporary directory (or `--data-dir`) and seeds it
   directly (bulk inserts, no registers): `--snapshots` rating snapshots (default 300,000) —
   `--snapshots / 60` subjects over 20 industries, each rated once a month for the 60 months up to
   the current one, with 0–2 penalty records in each snapshot's inputs —, `--snapshots / 100`
   findings (a tenth of them revoked, every serious one with a blacklist listing),
   `--snapshots / 300` red-list listings, and `--snapshots / 100` cases (objections, complaints,
   repairs; most of them closed, two events each);
2. times `environment_index` (hub/cases/index.py) for the district as the credit office asks it
   and for one industry as the public asks it (suppression worked out over every industry):
   **cold** — a new cache each call, so everything is read from the store and every month
   computed —, and **warm** — the same cache after a first call (the closed months come from
   memory; the store's version is read and the current month computed fresh) —, and **after a
   change** — the same cache after a finding was recorded (the facts read again, every month
   worked out again, the ratings at closed months' ends kept) —, `--runs` times each, medians
   printed.

Run from the repository root:

    python bench/environment_index.py                      # the figures in docs/benchmarks.md (run 12)
    python bench/environment_index.py --snapshots 30000    # quick

Before the cache existed (no `IndexCache` in hub/cases/index.py) every call is a cold call; the
script then times the call as it is, once per run, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import inspect
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from xinlian.hub.cases import index as index_module
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.index import Month, Window, environment_index
from xinlian.hub.cases.model import hohhot_day
from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import CaseEvent, CaseRecord, FindingRecord, ListingRecord, RatingRecord
from xinlian.policies.credit import standard_credit_rules

RATINGS, FINDINGS, LISTINGS = table_of(RatingRecord), table_of(FindingRecord), table_of(ListingRecord)
CASES, EVENTS = table_of(CaseRecord), table_of(CaseEvent)
INDUSTRIES = [f"行业{n:02d}" for n in range(20)]
LEVELS = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C")
DEPARTMENTS = ("market", "tax", "environment", "courts", "hr")
UTC = dt.timezone.utc
CHUNK = 10_000


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def subject(n: int) -> str:
    return f"91150102MA{n:08d}"


def random_day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


async def insert_chunked(store: Store, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with store.engine.begin() as conn:
            await conn.execute(insert(table), rows[start:start + CHUNK])


async def seed(store: Store, snapshots: int, today: dt.date, rng: random.Random) -> dict[str, int]:
    """The district of the module docstring; returns what was inserted."""
    months = Window(Month.of(today).plus(-59), Month.of(today)).months
    subjects = max(100, snapshots // len(months))
    first, last = months[0].first, today
    industry = {s: INDUSTRIES[rng.randrange(len(INDUSTRIES))] for s in range(subjects)}
    rows: list[dict[str, Any]] = []
    inserted = 0
    for month in months:
        for s in range(subjects):
            if inserted >= snapshots:
                break
            day = random_day(rng, month.first, min(month.last, today))
            penalties = [{"decision_number": f"P{inserted}-{k}", "decision_date": random_day(rng, first, day).isoformat(),
                          "severity": rng.choice(("轻微", "一般", "严重"))} for k in range(rng.randrange(3))]
            level = LEVELS[min(len(LEVELS) - 1, int(rng.expovariate(0.6)) + 2)]
            rows.append({
                "subject": subject(s), "subject_name": "", "industry": industry[s], "level": level, "score": 70.0,
                "supervision_class": "A" if level in ("AAA", "AA") else "C" if level.startswith("C") else "B",
                "model_version": "xc-2026.1", "policy_version": "v1", "trigger": "bulk", "job_id": None,
                "explanation": json.dumps({"indicators": [], "inputs": {"penalties": penalties}, "model_digest": ""}),
                "rated_at": dt.datetime.combine(day, dt.time(2), UTC), "rated_on": day,
            })
            inserted += 1
        if len(rows) >= CHUNK:
            await insert_chunked(store, RATINGS, rows)
            rows = []
    await insert_chunked(store, RATINGS, rows)
    log(f"  {inserted:,} rating snapshots of {subjects:,} subjects")

    findings, listings = [], []
    now = dt.datetime.now(UTC)
    for n in range(snapshots // 100):
        serious = rng.random() < 0.3
        decided = random_day(rng, first, last)
        revoked = rng.random() < 0.1
        who = subject(rng.randrange(subjects))
        findings.append({
            "subject": who, "subject_name": "", "severity": "serious" if serious else "general",
            "basis": "market-serious" if serious else "general-dishonesty", "facts": "事实", "legal_basis": "依据",
            "records": "[]", "department": rng.choice(DEPARTMENTS), "decided_on": decided, "measures": "[]",
            "status": "revoked" if revoked else "in_force", "rule": None, "recorded_at": now, "recorded_by": "bench",
            "revoked_at": dt.datetime.combine(random_day(rng, decided, last), dt.time(3), UTC) if revoked else None,
        })
        if serious:
            listings.append(listing(who, "black", decided, rng, last, now))
    for n in range(snapshots // 300):
        listings.append(listing(subject(rng.randrange(subjects)), "red", random_day(rng, first, last), rng, last, now))
    await insert_chunked(store, FINDINGS, findings)
    await insert_chunked(store, LISTINGS, listings)
    log(f"  {len(findings):,} findings, {len(listings):,} listings")

    cases, events = [], []
    answers = {"objection": ("corrected", "upheld"), "complaint": ("resolved", "rejected"), "repair": ("approved", "refused")}
    firsts = {"objection": "open", "complaint": "open", "repair": "applied"}
    for n in range(snapshots // 100):
        kind = rng.choice(("objection", "complaint", "repair"))
        filed = dt.datetime.combine(random_day(rng, first, last), dt.time(rng.randrange(24)), UTC)
        closed = filed + dt.timedelta(days=rng.randrange(1, 30), hours=rng.randrange(24))
        is_closed = closed < now and rng.random() < 0.85
        cases.append({
            "id": n + 1, "kind": kind, "subject": subject(rng.randrange(subjects)) if rng.random() < 0.9 else None,
            "subject_name": "", "status": rng.choice(answers[kind]) if is_closed else firsts[kind],
            "department": rng.choice(DEPARTMENTS), "filer_kind": "subject", "filer": "bench", "tracking_hash": None,
            "category": "wrong", "records": json.dumps([{"family": "penalties", "key": f"P{n}"}]), "description": "有误",
            "detail": "{}", "filed_at": filed, "filed_on": hohhot_day(filed),
            "deadline": hohhot_day(filed) + dt.timedelta(days=20), "closed_at": closed if is_closed else None, "resolution": "",
        })
        events.append({"case_id": n + 1, "action": "filed", "from_status": None, "to_status": firsts[kind], "at": filed,
                       "by": "bench", "by_kind": "subject", "note": "", "deadline": hohhot_day(filed) + dt.timedelta(days=20)})
        if is_closed:
            events.append({"case_id": n + 1, "action": "close", "from_status": firsts[kind], "to_status": "closed", "at": closed,
                           "by": "bench", "by_kind": "department", "note": "", "deadline": None})
    await insert_chunked(store, CASES, cases)
    await insert_chunked(store, EVENTS, events)
    log(f"  {len(cases):,} cases, {len(events):,} case events")
    return {"snapshots": inserted, "subjects": subjects, "findings": len(findings), "listings": len(listings),
            "cases": len(cases), "case_events": len(events)}


def listing(who: str, list_name: str, listed: dt.date, rng: random.Random, last: dt.date, now: dt.datetime) -> dict[str, Any]:
    ended = rng.random() < 0.2
    return {
        "subject": who, "subject_name": "", "list": list_name, "basis": "market-serious" if list_name == "black" else "honour-red-list",
        "basis_text": "", "department": "market", "finding_id": None, "rule": None, "source_ref": None, "listed_on": listed,
        "ends_on": listed + dt.timedelta(days=3 * 365), "status": "cancelled" if ended else "listed",
        "ended_on": random_day(rng, listed, last) if ended else None, "recorded_at": now, "recorded_by": "bench",
    }


async def add_finding(store: Store, today: dt.date) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(FINDINGS), [{
            "subject": subject(0), "subject_name": "", "severity": "general", "basis": "general-dishonesty", "facts": "事实",
            "legal_basis": "依据", "records": "[]", "department": "market", "decided_on": today, "measures": "[]",
            "status": "in_force", "rule": None, "recorded_at": dt.datetime.now(UTC), "recorded_by": "bench", "revoked_at": None,
        }])


async def measure(store: Store, today: dt.date, runs: int) -> list[dict[str, Any]]:
    rules, calendar = standard_credit_rules(), WorkingCalendar.load()
    cache_class = getattr(index_module, "IndexCache", None)
    parameters = inspect.signature(environment_index).parameters
    out = []
    for label, industry, audience in (("district, credit office", None, "office"), (f"{INDUSTRIES[0]}, public", INDUSTRIES[0], "public")):
        if cache_class is None and industry is not None:
            continue  # before the cache: no audiences either
        for months in (12, 60):
            window = Window(Month.of(today).plus(1 - months), Month.of(today))

            async def call(cache: Any) -> float:
                options: dict[str, Any] = {}
                if "audience" in parameters:
                    options["audience"] = audience
                if "cache" in parameters:
                    options["cache"] = cache
                started = time.perf_counter()
                await environment_index(store, rules, calendar, window, today, industry, **options)
                return time.perf_counter() - started

            cold = [await call(cache_class() if cache_class else None) for _ in range(runs)]
            warm: list[float] = []
            changed: list[float] = []
            if cache_class is not None:
                cache = cache_class()
                await call(cache)
                warm = [await call(cache) for _ in range(runs)]
                for _ in range(runs):  # a department records a finding (credit_findings moves): every month again
                    await add_finding(store, today)
                    changed.append(await call(cache))
            row = {"answer": label, "months": months, "cold_median_s": statistics.median(cold), "cold_min_s": min(cold),
                   "warm_median_s": statistics.median(warm) if warm else None, "warm_min_s": min(warm) if warm else None,
                   "after_change_median_s": statistics.median(changed) if changed else None}
            log(f"  {label}, {months} months: cold median {row['cold_median_s']:.3f} s"
                + (f", warm median {row['warm_median_s'] * 1000:.1f} ms, after a change {row['after_change_median_s']:.3f} s"
                   if warm else " (no cache in this version)"))
            out.append(row)
    return out


async def main(args: argparse.Namespace) -> None:
    today = hohhot_day(dt.datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="xinlian-index-bench-") as scratch:
        folder = Path(args.data_dir or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "hub.db"
        reuse = path.exists() and args.data_dir is not None
        store = await Store.open(f"sqlite+aiosqlite:///{path}")
        try:
            if reuse:
                log(f"reusing the store at {path}")
                seeded: dict[str, Any] = {"reused": str(path)}
            else:
                log(f"seeding {path} ...")
                started = time.perf_counter()
                seeded = await seed(store, args.snapshots, today, random.Random(args.seed))
                log(f"  seeded in {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.0f} MB")
            log(f"timing, {args.runs} runs each ...")
            results = await measure(store, today, args.runs)
        finally:
            await store.close()
    report = {"today": today.isoformat(), "seeded": seeded, "runs": args.runs, "results": results,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()}}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    print(f"store: {seeded}")
    print(f"{'answer':<28} {'months':>6} {'cold median':>12} {'warm median':>12} {'after a change':>15}")
    for r in results:
        warm = f"{r['warm_median_s'] * 1000:.1f} ms" if r["warm_median_s"] is not None else "-"
        after = f"{r['after_change_median_s']:.3f} s" if r["after_change_median_s"] is not None else "-"
        print(f"{r['answer']:<28} {r['months']:>6} {r['cold_median_s']:>10.3f} s {warm:>12} {after:>15}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=300_000, help="rating snapshots to seed (default 300,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per figure (default 5)")
    parser.add_argument("--seed", type=int, default=12, help="random seed of the generated district")
    parser.add_argument("--data-dir", default=None, help="keep the store here (seeded once, reused on the next run)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    asyncio.run(main(parser.parse_args()))
