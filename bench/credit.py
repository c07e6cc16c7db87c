"""Credit governance benchmark: a 10,000-subject `creditChecks` batch, and a district-wide re-rating.

What it does (loopback only, every loop bounded):

1. builds the demo district (`--subjects`, default 2000) in a temporary data directory (or
   `--data-dir`), creates the demo clients, starts the demo's court API (bench/demo_services.py)
   and seeds the demo's findings, listings and ratings (hub/demo/governance.py);
2. adds `--listed` extra blacklist listings (default 1,000: a serious finding each, through the
   register, as departments would), so the checks find sanctions to explain;
3. starts `xinlian serve` in its own process and gets a token for the demo lender (a bank with
   `credit:check`, declaring the purpose `loan-review`);
4. times `creditChecks(subjects: [10,000 codes], context: "lending")` end to end over HTTP
   (`--batch`; the codes are the district's subjects, the extra listed ones, and valid generated
   codes of subjects no department knows — a loan book is not only the district), `--runs`
   times after one warm-up: wall time of the request (token, body, execution, audit entry with
   10,000 subjects indexed, rendering), and the response's size and verdict counts;
5. times the district-wide re-rating in process, as `xinlian ratings run` does it: the list
   rules and a rating of every subject, from the departments' records (`--rerate-runs` times),
   in subjects per second.

Run from the repository root:

    python bench/credit.py                 # the figures in docs/benchmarks.md (run 10)
    python bench/credit.py --quick         # 1 run of each, smaller district

The target (issue 11): 10,000 subjects checked in under 2 s on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_services  # noqa: E402  (bench/demo_services.py)
from hub_bench import HubProcess, free_port, log, machine, serve_command  # noqa: E402
from xinlian.hub.cli.demo import ensure_demo_clients  # noqa: E402
from xinlian.hub.config import Settings  # noqa: E402
from xinlian.hub.credit.register import CreditRegister  # noqa: E402
from xinlian.hub.demo.generator import build_demo_district  # noqa: E402
from xinlian.hub.demo.governance import ensure_demo_credit  # noqa: E402
from xinlian.hub.store import Store  # noqa: E402
from xinlian.policies.credit import standard_credit_rules  # noqa: E402
from xinlian.schema.identifiers import (  # noqa: E402
    USCC_ALPHABET,
    org_code_check_char,
    uscc_check_char,
    validate_uscc,
)

CHECKS_QUERY = """query($s: [String!]!, $c: String!) {
  creditChecks(subjects: $s, context: $c) { subject verdict measures { code } rewards { code } }
}"""


def generated_codes(count: int, seed: int = 11) -> list[str]:
    """Valid unified social credit codes (check characters computed) of enterprises of division 150102."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < count:
        organisation = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
        try:
            body = "91150102" + organisation + org_code_check_char(organisation)
            out.add(validate_uscc(body + uscc_check_char(body)))
        except (ValueError, KeyError):
            continue
    return sorted(out)


async def add_listings(settings: Settings, codes: list[str], today: dt.date) -> None:
    store = await Store.open(settings.database_url)
    register, rules = CreditRegister(store), standard_credit_rules()
    try:
        for i, code in enumerate(codes):
            await register.record_finding(
                rules, subject=code, basis="market-serious", facts=f"严重违法失信（基准测试 {i}）", legal_basis="办法",
                records=[], department="market", decided_on=today - dt.timedelta(days=i % 700), measures=["S01"],
                by="bench", today=today,
            )
    finally:
        await store.close()


async def district_codes(settings: Settings) -> list[str]:
    from xinlian.hub.runtime import HubRuntime

    runtime = await HubRuntime.open(settings, schedule=False)
    try:
        out, after = [], ""
        while page := await runtime.credit.records.subjects(after, 5000):
            out.extend(page)
            after = page[-1]
        return out
    finally:
        await runtime.close()


async def rerate(settings: Settings) -> dict[str, Any]:
    from xinlian.hub.runtime import HubRuntime

    runtime = await HubRuntime.open(settings, schedule=False)
    try:
        policy = runtime.policy
        started, cpu = time.perf_counter(), time.process_time()
        job = await runtime.credit.district.run_district(policy.credit, policy.version, runtime.today(), "bench")
        wall, cpu_used = time.perf_counter() - started, time.process_time() - cpu
        return {"subjects": job.rated + job.failed, "rated": job.rated, "failed": job.failed, "seconds": round(wall, 2),
                "per_second": round((job.rated + job.failed) / wall, 1), "cpu_seconds": round(cpu_used, 2)}
    finally:
        await runtime.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subjects", type=int, default=2000)
    p.add_argument("--listed", type=int, default=1000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rerate-runs", type=int, default=2)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--quick", action="store_true", help="--subjects 500 --listed 200 --runs 1 --rerate-runs 1")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.subjects, args.listed, args.runs, args.rerate_runs = 500, 200, 1, 1
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="xinlian-credit-bench-"))
    settings = Settings.from_env(data_dir)
    log(f"building the demo district ({args.subjects} legal persons) in {data_dir}")
    district = build_demo_district(data_dir, legal_persons=args.subjects, natural_persons=args.subjects // 4)
    clients = asyncio.run(ensure_demo_clients(settings, dict(district.samples)))
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    results: dict[str, Any] = {"machine": machine(), "subjects": args.subjects, "batch": args.batch}
    with demo_services.running(data_dir, data_dir / "bench-demo-services.log") as _services:
        log("seeding the demo's findings, listings and ratings")
        seeded = asyncio.run(ensure_demo_credit(settings, dict(district.samples)))
        results["seeded"] = seeded
        known = asyncio.run(district_codes(settings))
        outsiders = generated_codes(max(0, args.batch - len(known)))
        book = (known + outsiders)[: args.batch]
        extra = [c for c in book if c not in set(district.samples.values())][: args.listed]
        log(f"listing {len(extra)} more subjects on the blacklist (one serious finding each)")
        started = time.perf_counter()
        asyncio.run(add_listings(settings, extra, today))
        results["listing_seconds"] = round(time.perf_counter() - started, 1)

        port = free_port()
        hub = HubProcess(serve_command(data_dir, port), f"http://127.0.0.1:{port}", data_dir / "bench-hub.log")
        hub.start()
        try:
            lender = clients["lender"]
            with httpx.Client(base_url=hub.base_url, timeout=120) as http:
                token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                  auth=(lender["client_id"], lender["client_secret"])).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}", "Xinlian-Purpose": "loan-review"}
                body = {"query": CHECKS_QUERY, "variables": {"s": book, "c": "lending"}}
                timings: list[float] = []
                answer: dict[str, Any] = {}
                for run in range(args.runs + 1):
                    started = time.perf_counter()
                    response = http.post("/graphql", json=body, headers=headers)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200 or "errors" in response.json():
                        raise RuntimeError(f"creditChecks failed: {response.status_code} {response.text[:500]}")
                    answer = response.json()
                    if run:  # the first is the warm-up
                        timings.append(elapsed)
                    log(f"creditChecks of {len(book)} subjects: {elapsed:.3f} s{' (warm-up)' if not run else ''}")
                verdicts: dict[str, int] = {}
                for item in answer["data"]["creditChecks"]:
                    verdicts[item["verdict"]] = verdicts.get(item["verdict"], 0) + 1
                results["credit_checks"] = {
                    "subjects": len(book), "runs": len(timings), "min_s": round(min(timings), 3),
                    "median_s": round(statistics.median(timings), 3), "max_s": round(max(timings), 3),
                    "response_bytes": len(response.content), "verdicts": verdicts,
                }
        finally:
            hub.stop()
        rerates = []
        for run in range(args.rerate_runs):
            log(f"district re-rating {run + 1}/{args.rerate_runs}")
            rerates.append(asyncio.run(rerate(settings)))
        results["rerating"] = rerates
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return 0
    c = results["credit_checks"]
    print(f"creditChecks, {c['subjects']} subjects, context lending ({c['runs']} runs after a warm-up):")
    print(f"  wall time per request  min {c['min_s']} s  median {c['median_s']} s  max {c['max_s']} s   (target < 2 s)")
    print(f"  response {c['response_bytes'] / 1e6:.1f} MB, verdicts {c['verdicts']}")
    for r in rerates:
        print(f"district re-rating: {r['subjects']} subjects in {r['seconds']} s ({r['per_second']}/s, "
              f"{r['cpu_seconds']} s CPU in this process), {r['failed']} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
