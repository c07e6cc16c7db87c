"""CPU of one `legalPersons` batch of 1,000 subjects, served in process (no HTTP), per run.

Builds a demo district (1,000 legal persons) in a temporary directory, opens a `HubRuntime` on
it with the demo's live court service, and executes the batch query as `demo-department`
through the real schema and executor `--runs` times (the first is a warm-up), printing the
process CPU milliseconds of each run and their median. Compare commits by running it with
`PYTHONPATH=<an extracted commit>` (see docs/benchmarks.md). Loopback only; bounded by --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import xinlian
from xinlian.hub.cli.demo import ensure_demo_clients
from xinlian.hub.config import Settings
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.demo.services import start_demo_services
from xinlian.hub.principal import Principal
from xinlian.hub.runtime import HubRuntime

QUERY = (
    "query Q($c: [String!]!) { legalPersons(usccs: $c) { uscc name "
    "penalties { decisionNumber severity decisionDate dataSourceUnit caseHandler fineAmount } "
    "taxCredit { level year } judgmentDebtorRecords { caseNumber court } } }"
)


async def measure(settings: Settings, codes: list[str], runs: int) -> list[float]:
    runtime = await HubRuntime.open(settings)
    principal = Principal("demo-department", "department", frozenset({"credit:public", "credit:shared"}))
    times: list[float] = []
    try:
        for _ in range(runs):
            ctx = runtime.request_context(principal, public_endpoint=False)
            started = time.process_time()
            result = await runtime.schema.execute(QUERY, variable_values={"c": codes}, context_value=ctx)
            times.append((time.process_time() - started) * 1000)
            if result.errors:
                raise SystemExit(f"the batch failed: {result.errors[:2]}")
    finally:
        await runtime.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs, the first one a warm-up (default 11)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="xinlian-batch-"))
    build_demo_district(data_dir, legal_persons=1000, natural_persons=100)
    settings = Settings.from_env(data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    asyncio.run(ensure_demo_clients(settings))
    with sqlite3.connect(data_dir / "departments" / "market.db") as db:
        codes = [row[0] for row in db.execute("SELECT tyshxydm FROM qy_jbxx LIMIT 1000")]
    services = start_demo_services(data_dir)
    try:
        times = asyncio.run(measure(settings, codes, max(2, args.runs)))
    finally:
        services.stop()
    timed = times[1:]
    print(f"source {list(xinlian.__path__)}")
    print(f"legalPersons x{len(codes)}: CPU ms per run {[round(t) for t in timed]}, median {statistics.median(timed):.0f}")


if __name__ == "__main__":
    main()
