"""What the audit trail's writer costs per entry: with and without the head seal, one writer at a
time and with concurrent callers (group commit), on SQLite and, when reachable, PostgreSQL.

    python bench/audit_write.py [--entries 1000] [--concurrency 1 32] [--postgres URL]

Prints CPU milliseconds (this process) and wall milliseconds per entry, and entries per batch.
Bounded: each run writes `--entries` entries and stops. A scratch SQLite file in a temporary
directory; on PostgreSQL a scratch database created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

from xinlian.hub.audit import AuditEntry, AuditTrail
from xinlian.hub.audit.seal import HeadSealer
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        at=dt.datetime.now(dt.timezone.utc), request_id=f"bench-{i}", endpoint="/graphql", client_id="bank-1",
        client_kind="bank", purpose="loan-review", subjects=["91150102MA0000001X"], released=["market.name"],
        outcome="ok", policy_version="v1",
    )


async def one_run(url: str, data_dir: Path, *, sealed: bool, entries: int, concurrency: int) -> tuple[float, float, float]:
    store = await Store.open(url)
    sealer = HeadSealer(Keyring.load_or_create(data_dir), "bench") if sealed else None
    trail = AuditTrail(store, sealer=sealer)
    try:
        for i in range(20):  # warm up: connections, statement caches
            await trail.record(entry(i))
        batches0 = trail.batches
        cpu, wall = time.process_time(), time.perf_counter()
        per_worker = entries // concurrency

        async def worker(w: int) -> None:
            for i in range(per_worker):
                await trail.record(entry(w * per_worker + i))

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        written = per_worker * concurrency
        return cpu / written * 1000, wall / written * 1000, written / max(1, trail.batches - batches0)
    finally:
        await trail.stop()
        await store.close()


async def postgres_database(admin_url: str, create: bool, name: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
                        help="an admin URL to create a scratch database on ('' to skip)")
    args = parser.parse_args()
    print(f"{'store':<10} {'seal':<5} {'conc':>4} {'cpu ms/entry':>13} {'wall ms/entry':>14} {'entries/batch':>14}")
    with tempfile.TemporaryDirectory() as scratch:
        targets = [("sqlite", lambda n: f"sqlite+aiosqlite:///{Path(scratch) / n}.db")]
        if args.postgres:
            base = args.postgres.rsplit("/", 1)[0]
            targets.append(("postgres", lambda n: f"{base}/{n}"))
        for store_name, make_url in targets:
            for concurrency in args.concurrency:
                for sealed in (False, True, False, True):  # interleaved, twice
                    name = f"xinlian_bench_{uuid.uuid4().hex[:8]}"
                    if store_name == "postgres":
                        try:
                            await postgres_database(args.postgres, True, name)
                        except OSError as exc:
                            print(f"postgres: skipped ({exc})")
                            break
                    try:
                        cpu, wall, per_batch = await one_run(
                            make_url(name), Path(scratch) / name, sealed=sealed, entries=args.entries, concurrency=concurrency
                        )
                    finally:
                        if store_name == "postgres":
                            await postgres_database(args.postgres, False, name)
                    print(f"{store_name:<10} {'yes' if sealed else 'no':<5} {concurrency:>4} {cpu:>13.3f} {wall:>14.3f} {per_batch:>14.1f}")


if __name__ == "__main__":
    asyncio.run(main())
