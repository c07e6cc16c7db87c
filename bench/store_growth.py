"""Does the hub's cost per request stay flat as its audit trail grows? (issue 10, goal 3)

Setup, in a temporary directory (every loop bounded, loopback only, everything cleaned up):

1. one demo district per store and trail size (`build_demo_district`, the demo clients, the demo's
   live department services in a process of their own, as in `bench/hub_bench.py`), on the
   embedded SQLite store (`<data-dir>/hub.db`) and on PostgreSQL (a scratch database per size,
   created on `--pg-admin-url` and dropped at the end; the hub gets it as `XINLIAN_DATABASE_URL`);
2. an audit trail of N entries written straight into each store: valid chained rows (the hash rule
   of hub/audit/chain.py over `AuditEntry(...).canonical_content()`), their `audit_subjects` rows
   (as `chain_rows` writes them), a realistic spread of endpoints, clients, purposes, outcomes and
   subjects (the district's legal persons, resident IDs, batches of 2-100). One generated stream
   feeds every store (the 10k trail is the first 10k entries of the 1M one): bulk `executemany`
   (SQLite, 25k-row transactions) or `COPY` (PostgreSQL), then PostgreSQL `VACUUM ANALYZE` (what
   autovacuum would have done by then). The head is then sealed with the data directory's key
   (`HeadSealer`, run from entry 1), the last `--tail` entries are written through the real
   `AuditTrail` (`sealed_trail`, so the seal on the store is the hub's own), and a signed checkpoint
   of the head is appended, as a long-running hub would have; the smallest trail of each store is
   checked with `xinlian audit verify` (chain, seal, checkpoint, subject index);
3. every hub (`xinlian serve --data-dir D --port P`, rate limits off) runs at once; in each of
   `--rounds` rounds (hubs in alternating order) the benchmark gets a `demo-department` token and
   sends, sequentially, `GET /healthz`, `{ __typename }` on /graphql and the department's full
   profile query (hub_bench.py's), then the profile at concurrency `--concurrency` (a fixed count
   of requests). For each: hub CPU ms per request (/proc/<pid>/stat utime+stime, all threads), on
   PostgreSQL also the CPU of the scratch database's backends per request, and p50 latency.
   Medians over the rounds, and the ratio largest / smallest trail, are printed with the store
   sizes (SQLite `hub.db` and `hub.db-wal`, PostgreSQL table and index sizes);
4. diagnosis (`--no-diagnose` to skip): each store is also served in process through the ASGI app
   (hub stopped), and for the profile query the benchmark records the SQL statements per request
   (SQLAlchemy engine events; the SQLite audit writer's own `sqlite3` connection through a trace
   callback) with their time, CPU per request by thread (/proc/self/task), the audit writer's CPU
   per batch, and a cProfile (event-loop thread) whose per-function differences between the sizes
   are listed; then EXPLAIN (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN ANALYZE` of reads)
   of every distinct statement on the largest store, flagging full scans, each read statement
   timed on every size, and the SQLite WAL: its size and whether a passive checkpoint completes;
5. the audit append alone (`append_cost`): entries recorded one at a time through the real
   `AuditTrail` on each size, interleaved blocks, CPU per entry (this process, the SQLite writer's
   thread, the PostgreSQL writer's backend) and read/write syscalls and bytes (/proc/self/io); and
   what-ifs, in this process or on the scratch stores only (`--no-what-if` to skip): the SQLite
   writer's page cache enlarged, time-ordered request ids instead of `uuid4().hex`, and, last
   because it rebuilds the scratch tables, `audit_entries` without its UNIQUE(hash) index.

Run from the repository root (10-15 min with the defaults on a 2-core machine; generating and
loading the 1M-entry trail into both stores takes 2-3 of them):

    python bench/store_growth.py                               # --sizes 10000,1000000, both stores
    python bench/store_growth.py --sizes 10000,100000 --stores sqlite --rounds 2   # quicker
    python bench/store_growth.py --snapshot HEAD --json out.json   # a commit's code, not the work tree
    python bench/store_growth.py --keep /tmp/growth            # keep the data directories

Progress goes to stderr, the report to stdout (`--json FILE`: every figure as JSON as well).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import datetime as dt
import io
import json
import os
import pstats
import random
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import httpx

PACKAGE_DIRS = ("hub", "schema", "connectors", "policies", "keys")  # pyproject's package-dir: xinlian.<name> = <name>/


def run_on_snapshot(argv: Sequence[str]) -> int | None:
    """`--snapshot REV`: run this script again against `git archive REV` of the hub's packages
    (unpacked as `xinlian.*` in a temporary directory put first on PYTHONPATH, also for the hub
    processes), so that edits in progress in the work tree do not change the code measured.
    Returns the exit code of that run, or None when no snapshot is asked for (or this is it)."""
    rev = None
    for i, arg in enumerate(argv):
        if arg == "--snapshot" and i + 1 < len(argv):
            rev = argv[i + 1]
        elif arg.startswith("--snapshot="):
            rev = arg.split("=", 1)[1]
    if rev is None or os.environ.get("XINLIAN_BENCH_SNAPSHOT"):
        return None
    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", rev], check=True, capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="xinlian-snapshot-") as tmp:
        root = Path(tmp) / "xinlian"
        archive = subprocess.run(["git", "-C", str(repo), "archive", commit, *PACKAGE_DIRS], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        (root / "COMMIT").write_text(commit + "\n")
        print(f"[growth] measuring the packages of commit {commit} (git archive, in {tmp})", file=sys.stderr, flush=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")])),
               "XINLIAN_BENCH_SNAPSHOT": commit}
        return subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], env=env).returncode


if __name__ == "__main__":
    _code = run_on_snapshot(sys.argv[1:])
    if _code is not None:
        sys.exit(_code)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_services  # noqa: E402  (bench/demo_services.py)
import hub_bench as hb  # noqa: E402  (bench/hub_bench.py: the hub process, CPU readings, the profile query)
from xinlian.connectors.registry import load_connectors  # noqa: E402
from xinlian.hub.audit.chain import GENESIS_HASH, chain_hash  # noqa: E402
from xinlian.hub.audit.entry import AuditEntry, format_time  # noqa: E402
from xinlian.hub.config import Settings  # noqa: E402
from xinlian.hub.principal import Principal  # noqa: E402
from xinlian.policies import load_policy  # noqa: E402

CHUNK = 25_000  # entries per bulk transaction
TYPENAME = "{ __typename }"
RATE_OFF = {"XINLIAN_RATE_PUBLIC": "off", "XINLIAN_RATE_IP": "off", "XINLIAN_RATE_CLIENT": "off"}
SCRATCH_PREFIX = "xinlian_growth_"
PG_BACKEND_CPU_NOTE = "CPU of the PostgreSQL backends connected to the scratch database"


def log(message: str) -> None:
    print(f"[growth {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# ---- a realistic synthetic trail ----------------------------------------------------------
# released field lists as the hub records them (one real profile entry of the demo department,
# the public contract's fields, a bank's, the batch's)
DEPARTMENT_FIELDS = [
    *(f"registration.{f}" for f in ("name", "legal_representative", "status", "established_date", "address", "industry",
                                    "registered_capital", "contact_phone")),
    *(f"penalties.{f}" for f in ("decision_number", "violation_type", "facts", "legal_basis", "penalty_category", "content",
                                 "fine_amount", "confiscation_amount", "decision_date", "authority", "authority_uscc",
                                 "data_source_unit", "severity", "publicity_end_date", "case_handler", "review_status")),
    *(f"tax_credit.{f}" for f in ("level", "year", "evaluation_date", "authority")),
    *(f"licenses.{f}" for f in ("decision_number", "license_name", "license_category", "decision_date", "valid_to",
                                "authority")),
]
PUBLIC_FIELDS = [
    *(f"registration.{f}" for f in ("name", "status", "established_date", "industry")),
    *(f"penalties.{f}" for f in ("decision_number", "violation_type", "decision_date", "authority", "content")),
    "tax_credit.level", "tax_credit.year",
]
BANK_FIELDS = [*PUBLIC_FIELDS, "judgment_debtor_records.case_number", "judgment_debtor_records.court",
               "social_insurance_arrears.arrears_amount"]
BATCH_FIELDS = ["registration.name", "penalties.decision_number", "penalties.decision_date", "tax_credit.level",
                "judgment_debtor_records.case_number"]
RULES = ["honors:objection-flag", "judgment_debtor_records:objection-flag", "licenses:objection-flag",
         "penalties:objection-flag", "social_insurance_arrears:objection-flag", "tax_credit:objection-flag"]
DEPARTMENT_CLIENTS = ["demo-department", *(f"dept-{n:02d}" for n in range(1, 12))]
BANK_CLIENTS = ["demo-bank", *(f"bank-{n:02d}" for n in range(1, 8))]
PURPOSES = ["loan-review", "credit-card-review", "supply-chain-finance"]


@dataclass
class Population:
    """Whom the synthetic entries are about and who asked."""

    legal: list[str]
    natural: list[str]
    addresses: list[str]


def make_population(legal: Sequence[str], rng: random.Random, natural: int = 500) -> Population:
    people = sorted({f"150102{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
                     f"{rng.randint(0, 9999):04d}" for _ in range(natural)})
    addresses = [f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(300)]
    return Population(list(legal), people, addresses)


def synthetic_entry(rng: random.Random, pop: Population, at: dt.datetime) -> AuditEntry:
    """One entry of a district's everyday traffic (weights: mostly single-subject profiles)."""
    roll = rng.random()
    addr = rng.choice(pop.addresses)
    rid = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    common: dict[str, Any] = {"at": at, "request_id": rid, "remote_addr": addr, "policy_version": "v1"}
    if roll < 0.45:  # a department reads one legal person's profile
        return AuditEntry(endpoint="/graphql", client_id=rng.choice(DEPARTMENT_CLIENTS), client_kind="department",
                          outcome="ok", subjects=[rng.choice(pop.legal)], released=DEPARTMENT_FIELDS,
                          detail={"rules_applied": RULES}, operation_name="Profile", **common)
    if roll < 0.57:  # a bank, with a purpose, about a company or a person
        subject = rng.choice(pop.natural) if rng.random() < 0.3 else rng.choice(pop.legal)
        return AuditEntry(endpoint="/graphql", client_id=rng.choice(BANK_CLIENTS), client_kind="bank",
                          purpose=rng.choice(PURPOSES), outcome="ok", subjects=[subject], released=BANK_FIELDS,
                          detail={"rules_applied": RULES[:3]}, **common)
    if roll < 0.72:  # the public endpoint
        return AuditEntry(endpoint="/public/graphql", client_id=None, client_kind="public", outcome="ok",
                          subjects=[rng.choice(pop.legal)], released=PUBLIC_FIELDS, **common)
    if roll < 0.74:  # a batch of 2-100 subjects
        subjects = rng.sample(pop.legal, rng.randint(2, 100))
        return AuditEntry(endpoint="/graphql", client_id=rng.choice(DEPARTMENT_CLIENTS), client_kind="department",
                          outcome=rng.choice(["ok", "ok", "ok", "partial"]), subjects=subjects, released=BATCH_FIELDS,
                          operation_name="Batch", **common)
    if roll < 0.89:  # token issuance
        client = rng.choice(DEPARTMENT_CLIENTS + BANK_CLIENTS)
        return AuditEntry(endpoint="/oauth/token", client_id=client,
                          client_kind="bank" if client.startswith(("bank", "demo-bank")) else "department",
                          outcome="ok", **common)
    if roll < 0.94:  # refused before authentication
        return AuditEntry(endpoint="/graphql", client_id=None, client_kind=None, outcome="rejected",
                          errors=["UNAUTHENTICATED"], detail={"reason": "expired token"}, **common)
    return AuditEntry(endpoint="/graphql", client_id=rng.choice(DEPARTMENT_CLIENTS), client_kind="department",
                      outcome="ok", **common)  # no subject: { __typename }, introspection, ...


@dataclass
class Chunk:
    entries: list[tuple[int, str, str, str | None, str, str, str]]  # seq, at, request_id, client_id, content, prev, hash
    subjects: list[tuple[str, int]]

    @property
    def last_seq(self) -> int:
        return self.entries[-1][0]


def generate(total: int, pop: Population, seed: int, chunk: int = CHUNK) -> Iterator[Chunk]:
    """`total` chained rows from entry 1, `chunk` at a time; times spread over the past (~3 s apart)."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    at = now - dt.timedelta(seconds=3.0 * total)
    prev = GENESIS_HASH
    seq = 0
    while seq < total:
        rows: list[tuple[int, str, str, str | None, str, str, str]] = []
        subjects: list[tuple[str, int]] = []
        for _ in range(min(chunk, total - seq)):
            seq += 1
            at += dt.timedelta(microseconds=rng.randint(1, 6_000_000))
            entry = synthetic_entry(rng, pop, min(at, now))
            content = entry.canonical_content()
            digest = chain_hash(prev, content)
            rows.append((seq, format_time(entry.at), entry.indexed_request_id, entry.indexed_client_id, content, prev, digest))
            subjects.extend((s, seq) for s in dict.fromkeys(x[:32] for x in entry.subjects))  # as chain_rows does
            prev = digest
        yield Chunk(rows, subjects)


# ---- stores -------------------------------------------------------------------------------
INSERT_ENTRY = "INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_SUBJECT = "INSERT INTO audit_subjects (subject, seq) VALUES (?, ?)"
ENTRY_COLUMNS = ["seq", "at", "request_id", "client_id", "content", "prev_hash", "hash"]


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_admin(admin_url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(pg_dsn(admin_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@dataclass
class Target:
    """One store with one trail size: its data directory, hub port, store URL and hub process."""

    store: str  # "sqlite" | "postgres"
    size: int
    data_dir: Path
    port: int
    database_url: str
    pg_database: str | None = None
    bulk_done: int = 0
    hub: hb.HubProcess | None = None
    clients: dict[str, Any] = field(default_factory=dict)
    district: Any = None
    generation: dict[str, float] = field(default_factory=dict)
    _sqlite: sqlite3.Connection | None = None
    _pg: Any = None

    @property
    def name(self) -> str:
        return f"{self.store} {size_label(self.size)}"

    @property
    def sqlite_file(self) -> Path:
        return self.data_dir / "hub.db"

    def settings(self) -> Settings:
        return Settings.from_env(self.data_dir, port=self.port, database_url=self.database_url)

    # bulk loading
    async def open_bulk(self) -> None:
        if self.store == "sqlite":
            conn = sqlite3.connect(self.sqlite_file, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = OFF")  # a benchmark's bulk load; the hub's own writes use FULL
            conn.execute("PRAGMA cache_size = -524288")  # 512 MiB: random index inserts stay in memory
            self._sqlite = conn
        else:
            import asyncpg

            self._pg = await asyncpg.connect(pg_dsn(self.database_url))
            await self._pg.execute("SET synchronous_commit = off")

    async def load(self, chunk: Chunk, bulk_total: int) -> None:
        rows = [r for r in chunk.entries if r[0] <= bulk_total]
        if not rows:
            return
        last = rows[-1][0]
        subjects = [s for s in chunk.subjects if s[1] <= last]
        if self._sqlite is not None:
            conn = self._sqlite
            conn.execute("BEGIN")
            conn.executemany(INSERT_ENTRY, rows)
            conn.executemany(INSERT_SUBJECT, subjects)
            conn.execute("COMMIT")
        else:
            async with self._pg.transaction():
                await self._pg.copy_records_to_table("audit_entries", records=rows, columns=ENTRY_COLUMNS)
                await self._pg.copy_records_to_table("audit_subjects", records=subjects, columns=["subject", "seq"])
        self.bulk_done = last

    async def close_bulk(self) -> None:
        if self._sqlite is not None:
            self._sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            t0 = time.perf_counter()
            await self._pg.execute("VACUUM (ANALYZE) audit_entries")
            await self._pg.execute("VACUUM (ANALYZE) audit_subjects")
            self.generation["vacuum_analyze_s"] = time.perf_counter() - t0
            await self._pg.close()
            self._pg = None

    def sizes(self) -> dict[str, Any]:
        if self.store == "sqlite":
            wal = Path(f"{self.sqlite_file}-wal")
            return {"hub.db": self.sqlite_file.stat().st_size, "hub.db-wal": wal.stat().st_size if wal.exists() else 0}
        return asyncio.run(pg_sizes(self.database_url))


async def pg_sizes(url: str) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        out: dict[str, Any] = {}
        for table in ("audit_entries", "audit_subjects"):
            row = await conn.fetchrow(
                "SELECT pg_table_size($1::regclass) AS t, pg_indexes_size($1::regclass) AS i", table
            )
            out[f"{table} table"] = row["t"]
            out[f"{table} indexes"] = row["i"]
        out["database"] = await conn.fetchval("SELECT pg_database_size(current_database())")
        return out
    finally:
        await conn.close()


async def finish_trail(target: Target, pop: Population, tail: int, seed: int) -> None:
    """Seal the bulk-loaded head as the hub would have, write `tail` entries through the real
    trail (so the seal in the store is the hub's own), and sign a checkpoint of the head."""
    from sqlalchemy import select

    from xinlian.hub.audit.checkpoint import append_checkpoint, checkpoint_directory, sign_checkpoint
    from xinlian.hub.audit.seal import HeadSealer, write_seal
    from xinlian.hub.audit.trail import AUDIT_TABLE, CHAIN_LOCK
    from xinlian.hub.cli.admin_session import sealed_trail
    from xinlian.hub.store import Store
    from xinlian.keys.keyring import Keyring

    settings = target.settings()
    store = await Store.open(settings.database_url)
    try:
        keyring = Keyring.load_or_create(settings.data_dir, reload_interval=3600.0)
        t = AUDIT_TABLE.c
        async with store.exclusive(CHAIN_LOCK) as conn:
            head = (await conn.execute(select(t.seq, t.hash).order_by(t.seq.desc()).limit(1))).first()
            if head is not None:  # the run of a hub that wrote every entry from 1
                await write_seal(conn, HeadSealer(keyring, settings.issuer).seal(head.seq, head.hash, run_from=1))
        trail = sealed_trail(settings, store)
        await trail.start()
        rng = random.Random(seed + 1)
        try:
            for _ in range(tail):
                await trail.record(synthetic_entry(rng, pop, dt.datetime.now(dt.timezone.utc)))
        finally:
            await trail.stop()
        async with store.engine.connect() as conn:
            head = (await conn.execute(select(t.seq, t.hash).order_by(t.seq.desc()).limit(1))).first()
        assert head is not None and head.seq == target.size, (head, target.size)
        checkpoint = sign_checkpoint(keyring, head.seq, head.hash, issuer=settings.issuer)
        append_checkpoint(checkpoint_directory(settings.data_dir), checkpoint)
    finally:
        await store.close()


def xinlian_command() -> list[str]:
    """The `xinlian` command of this environment (as hub_bench.py's `serve_command` finds it)."""
    exe = shutil.which("xinlian")
    return [exe] if exe else [sys.executable, "-m", "xinlian.hub.cli"]


def audit_verify(target: Target) -> str:
    """`xinlian audit verify` on the target's data directory: its last line (and exit code)."""
    env = {**os.environ, "XINLIAN_DATABASE_URL": target.database_url}
    command = [*xinlian_command(), "audit", "verify", "--data-dir", str(target.data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return f"exit {done.returncode}: {lines[-1] if lines else '(no output)'}"


# ---- measuring over HTTP ------------------------------------------------------------------
def pg_backend_pids(url: str) -> list[int]:
    async def query() -> list[int]:
        import asyncpg

        conn = await asyncpg.connect(pg_dsn(url))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [int(r["pid"]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(query())


class StoreCpu:
    """CPU of the scratch database's PostgreSQL backends (None for SQLite: the store is in-process)."""

    def __init__(self, target: Target) -> None:
        self.url = target.database_url if target.store == "postgres" else None
        self.before: dict[int, float] = {}

    @staticmethod
    def _read(pids: Sequence[int]) -> dict[int, float]:
        out = {}
        for pid in pids:
            with contextlib.suppress(OSError, ValueError):
                out[pid] = hb.process_cpu_seconds(pid)
        return out

    def start(self) -> None:
        if self.url is not None:
            self.before = self._read(pg_backend_pids(self.url))

    def seconds(self) -> float | None:
        if self.url is None:
            return None
        after = self._read(pg_backend_pids(self.url))
        return sum(v - self.before.get(pid, 0.0) for pid, v in after.items())


def phase_result(
    latencies: list[float], hub_cpu: float, store_cpu: float | None, errors: int, load: dict[str, float]
) -> dict[str, Any]:
    n = max(1, len(latencies))
    return {
        "n": len(latencies),
        "errors": errors,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "hub_cpu_ms": 1000 * hub_cpu / n,
        "store_cpu_ms": None if store_cpu is None else 1000 * store_cpu / n,
        "other_cpu_pct": load["other_pct"],  # CPU of processes other than this hub and the benchmark (noise)
    }


def sequential(target: Target, client: httpx.Client, send: Callable[[], httpx.Response], warmup: int, runs: int) -> dict[str, Any]:
    assert target.hub is not None
    for _ in range(warmup):
        send()
    store_cpu = StoreCpu(target)
    store_cpu.start()
    load = hb.MachineLoad(target.hub.pid)
    cpu0 = hb.process_cpu_seconds(target.hub.pid)
    samples, errors = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        response = send()
        samples.append(time.perf_counter() - t0)
        errors += 0 if hb.is_clean(response) else 1
    hub_cpu = hb.process_cpu_seconds(target.hub.pid) - cpu0
    machine_load = load.finish()
    return phase_result(samples, hub_cpu, store_cpu.seconds(), errors, machine_load)


async def concurrent(target: Target, headers: dict[str, str], body: dict[str, Any], concurrency: int, total: int) -> dict[str, Any]:
    """`total` profile requests, at most `concurrency` in flight."""
    assert target.hub is not None
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=target.hub.base_url, headers=headers, limits=limits, timeout=hb.REQUEST_TIMEOUT) as client:
        await asyncio.gather(*(client.post("/graphql", json=body) for _ in range(concurrency)))  # warm the pool
        store_cpu = StoreCpu(target)
        await asyncio.to_thread(store_cpu.start)
        load = hb.MachineLoad(target.hub.pid)
        cpu0 = hb.process_cpu_seconds(target.hub.pid)
        samples: list[float] = []
        errors = 0
        queue = iter(range(total))

        async def worker() -> None:
            nonlocal errors
            for _ in queue:  # shared iterator: `total` requests in all
                t0 = time.perf_counter()
                try:
                    response = await client.post("/graphql", json=body)
                except httpx.HTTPError:
                    errors += 1
                    continue
                samples.append(time.perf_counter() - t0)
                errors += 0 if hb.is_clean(response) else 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        hub_cpu = hb.process_cpu_seconds(target.hub.pid) - cpu0
        machine_load = load.finish()
        store_seconds = await asyncio.to_thread(store_cpu.seconds)
    return phase_result(samples, hub_cpu, store_seconds, errors, machine_load)


def token(target: Target) -> str:
    assert target.hub is not None
    department = target.clients["department"]
    response = httpx.post(
        f"{target.hub.base_url}/oauth/token", auth=(department["client_id"], department["client_secret"]),
        data={"grant_type": "client_credentials"}, timeout=60,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


PHASES = ("healthz", "typename", "profile", "profile_c")


def measure_round(targets: Sequence[Target], args: argparse.Namespace, query: str, subject: str, r: int) -> dict[str, dict[str, Any]]:
    """One round: each figure measured on every hub back to back (alternating order), so that the
    sizes compared are measured minutes apart at most, under the same load of the machine."""
    order = list(targets) if r % 2 == 0 else list(reversed(targets))
    out: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
    auth = {t.name: {"authorization": f"Bearer {token(t)}"} for t in targets}
    profile = {"query": query, "variables": {"uscc": subject}}
    sends: dict[str, Callable[[httpx.Client, dict[str, str]], httpx.Response]] = {
        "healthz": lambda c, a: c.get("/healthz"),
        "typename": lambda c, a: c.post("/graphql", json={"query": TYPENAME}, headers=a),
        "profile": lambda c, a: c.post("/graphql", json=profile, headers=a),
    }
    for phase, send in sends.items():
        for target in order:
            assert target.hub is not None
            with httpx.Client(base_url=target.hub.base_url, timeout=hb.REQUEST_TIMEOUT) as client:
                headers = auth[target.name]
                out[target.name][phase] = sequential(target, client, lambda: send(client, headers), args.warmup, args.requests)
    for target in order:
        out[target.name]["profile_c"] = asyncio.run(
            concurrent(target, auth[target.name], profile, args.concurrency, args.concurrent_requests)
        )
        if target.store == "sqlite":
            out[target.name]["files"] = target.sizes()
    if args.pinned_wal:
        for target in order:
            if target.store != "sqlite":
                continue
            assert target.hub is not None
            headers = auth[target.name]
            with httpx.Client(base_url=target.hub.base_url, timeout=hb.REQUEST_TIMEOUT) as client, pinned_wal(target) as pin:
                out[target.name]["profile_pinned"] = sequential(
                    target, client, lambda: client.post("/graphql", json=profile, headers=headers), args.warmup, args.requests
                )
                out[target.name]["profile_pinned"]["wal_bytes_at_end"] = pin.wal_bytes()
    return out


class PinnedWal:
    def __init__(self, db: Path) -> None:
        self.wal = Path(f"{db}-wal")

    def wal_bytes(self) -> int:
        return self.wal.stat().st_size if self.wal.exists() else 0


@contextlib.contextmanager
def pinned_wal(target: Target) -> Iterator[PinnedWal]:
    """A read transaction held open on the SQLite store for the block (as hub_bench.py's `WalProbe`
    does to count commits): no checkpoint can pass its snapshot, so the WAL grows meanwhile."""
    conn = sqlite3.connect(f"file:{target.sqlite_file}?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM audit_head_seal").fetchone()
        yield PinnedWal(target.sqlite_file)
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("COMMIT")
        conn.close()


# ---- the audit append alone ---------------------------------------------------------------
def io_counters() -> dict[str, int]:
    """This process's /proc/self/io: read and write syscalls (syscr, syscw) and bytes (rchar, wchar)."""
    out = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = int(value)
    return out


def ordered_request_id(rng: random.Random) -> str:
    """A time-ordered request id (nanoseconds since the epoch, then random bits; 32 hex digits like
    uuid4().hex): consecutive ids land next to each other in an index (what-if only)."""
    return f"{time.time_ns():016x}{rng.getrandbits(64):016x}"


async def append_cost(
    group: Sequence[Target], blocks: int, per_block: int, cache_kib: int | None, seed: int, ordered_ids: bool = False
) -> dict[str, Any]:
    """The audit trail's append alone, on each store of `group` (one store kind, several sizes):
    `blocks` interleaved blocks of `per_block` entries, each recorded and awaited on its own (one
    entry per transaction, as under sequential requests), through the real `AuditTrail` with the
    hub's head seal. Per entry: CPU of this process (event loop + writer thread), of the SQLite
    writer's thread, of the PostgreSQL backend of the asyncpg writer; read/write syscalls and bytes.
    What-ifs (this process only, no source changed): `cache_kib`, the SQLite writer connection's
    page cache set to that size (`PRAGMA cache_size = -N`); `ordered_ids`, entries carry
    time-ordered request ids (`ordered_request_id`) instead of the hub's `uuid4().hex`."""
    from xinlian.hub.cli.admin_session import sealed_trail
    from xinlian.hub.store import Store

    opened: list[tuple[Target, Any, Any, dict[str, float]]] = []
    rng = random.Random(seed)
    pop = make_population([f"91150102MA{n:08d}" for n in range(2000)], rng)
    try:
        for target in group:
            store = await Store.open(target.database_url)
            trail = sealed_trail(target.settings(), store)
            stats: dict[str, float] = {}
            chain = getattr(trail, "_chain", None)
            if chain is not None:
                instrument_chain_writer(chain, SqlLog(on=True), stats)
                if cache_kib is not None and hasattr(chain, "_connect"):
                    plain_connect = chain._connect

                    def bigger_cache(connect: Callable[[], Any] = plain_connect) -> Any:
                        connection = connect()
                        connection.execute(f"PRAGMA cache_size = -{cache_kib}")
                        return connection

                    chain._connect = bigger_cache
            await trail.start()
            opened.append((target, store, trail, stats))
        for _, _, trail, _ in opened:  # warm up: connections, caches, the seal check
            for _ in range(50):
                await trail.record(synthetic_entry(rng, pop, dt.datetime.now(dt.timezone.utc)))
        samples: dict[str, list[dict[str, float]]] = {t.name: [] for t in group}
        for b in range(blocks):
            for target, _store, trail, stats in (opened if b % 2 == 0 else list(reversed(opened))):
                chain = getattr(trail, "_chain", None)
                connection = getattr(chain, "_connection", None)
                backend = connection.get_server_pid() if connection is not None and hasattr(connection, "get_server_pid") else None
                writer0 = stats.get("cpu_s", 0.0)
                backend0 = hb.process_cpu_seconds(backend) if backend else 0.0
                io0, cpu0, wall0 = io_counters(), time.process_time(), time.perf_counter()
                for _ in range(per_block):
                    entry = synthetic_entry(rng, pop, dt.datetime.now(dt.timezone.utc))
                    if ordered_ids:
                        entry = dataclasses.replace(entry, request_id=ordered_request_id(rng))
                    await trail.record(entry)
                wall, cpu, io1 = time.perf_counter() - wall0, time.process_time() - cpu0, io_counters()
                sample = {
                    "cpu_ms": 1000 * cpu / per_block,
                    "wall_ms": 1000 * wall / per_block,
                    "writer_thread_cpu_ms": 1000 * (stats.get("cpu_s", 0.0) - writer0) / per_block if "cpu_s" in stats else None,
                    "pg_backend_cpu_ms": 1000 * (hb.process_cpu_seconds(backend) - backend0) / per_block if backend else None,
                }
                for key in ("syscr", "syscw", "rchar", "wchar"):
                    sample[key] = (io1[key] - io0[key]) / per_block
                samples[target.name].append(sample)
    finally:
        for _, store, trail, _ in opened:
            await trail.stop()
            await store.close()
    out: dict[str, Any] = {}
    for name, rows in samples.items():
        out[name] = {key: statistics.median(r[key] for r in rows) if rows and rows[0][key] is not None else None
                     for key in (rows[0] if rows else {})}
        out[name]["blocks"] = len(rows)
        out[name]["cpu_ms_all_blocks"] = [round(r["cpu_ms"], 3) for r in rows]
    return out


def drop_hash_unique(target: Target) -> float:
    """What-if, on the benchmark's scratch store only: `audit_entries` without its UNIQUE(hash)
    index (SQLite: the table rebuilt without it, other indexes re-created; PostgreSQL: the
    constraint dropped). Returns the seconds it took."""
    t0 = time.perf_counter()
    if target.store == "sqlite":
        conn = sqlite3.connect(target.sqlite_file, isolation_level=None, timeout=60)
        try:
            conn.execute("PRAGMA cache_size = -262144")
            table_sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_entries'").fetchone()[0]
            indexes = [r[0] for r in conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_entries' AND sql IS NOT NULL")]
            without = re.sub(r",\s*UNIQUE \(hash\)", "", table_sql).replace("CREATE TABLE audit_entries", "CREATE TABLE audit_entries_new", 1)
            if without == table_sql.replace("CREATE TABLE audit_entries", "CREATE TABLE audit_entries_new", 1):
                raise RuntimeError(f"no UNIQUE (hash) in {table_sql!r}")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(without)
            conn.execute("INSERT INTO audit_entries_new SELECT * FROM audit_entries ORDER BY seq")
            conn.execute("DROP TABLE audit_entries")
            conn.execute("ALTER TABLE audit_entries_new RENAME TO audit_entries")
            for sql in indexes:
                conn.execute(sql)
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        async def drop() -> None:
            import asyncpg

            conn = await asyncpg.connect(pg_dsn(target.database_url))
            try:
                names = await conn.fetch(
                    "SELECT conname FROM pg_constraint WHERE conrelid = 'audit_entries'::regclass AND contype = 'u'")
                for row in names:
                    await conn.execute(f'ALTER TABLE audit_entries DROP CONSTRAINT "{row["conname"]}"')
            finally:
                await conn.close()

        asyncio.run(drop())
    return time.perf_counter() - t0


# ---- in-process diagnosis -----------------------------------------------------------------
def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by Python thread name (numbers merged:
    "Thread-3" and "Thread-7" count as "Thread-N"); threads Python does not know by their comm."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            raw = (task / "stat").read_text()
            fields_ = raw[raw.rindex(")") + 2 :].split()
            name = names.get(int(task.name)) or f"native:{raw[raw.index('(') + 1 : raw.rindex(')')]}"
            name = re.sub(r"\d+", "N", name.split(" (")[0])
            out[name] = out.get(name, 0.0) + (int(fields_[11]) + int(fields_[12])) / ticks
    return out


def normalise_sql(statement: str) -> str:
    text = " ".join(statement.split())
    text = re.sub(r"'(?:[^']|'')*'", "?", text)  # literals (the sqlite3 trace callback expands them)
    text = re.sub(r"\b\d+(?:\.\d+)?\b", "?", text)
    text = re.sub(r"\$\d+(::\w+)?", "?", text)
    text = re.sub(r"\(\?(?:, \?)+\)", "(?…)", text)
    return text


@dataclass
class SqlLog:
    """Statements seen in the window: count, wall time (engine) and one sample with parameters."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    samples: dict[str, tuple[str, Any, str]] = field(default_factory=dict)  # text, params, origin
    on: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, statement: str, params: Any, seconds: float | None, origin: str) -> None:
        if not self.on:
            return
        key = f"[{origin}] {normalise_sql(statement)}"
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if seconds is not None:
                self.seconds[key] = self.seconds.get(key, 0.0) + seconds
            self.samples.setdefault(key, (statement, params, origin))


def install_sql_capture(engine: Any, sql: SqlLog) -> Callable[[], None]:
    """Record every statement of the store's SQLAlchemy engine (with its wall time)."""
    from sqlalchemy import event

    started: dict[int, float] = {}

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        t0 = started.pop(id(cursor), None)
        sql.add(statement, parameters, None if t0 is None else time.perf_counter() - t0, "engine")

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)

    def remove() -> None:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)

    return remove


def instrument_chain_writer(chain: Any, sql: SqlLog, stats: dict[str, float]) -> None:
    """Time each batch of whichever writer the trail uses, and record the statements of a writer
    that keeps a connection of its own (a `sqlite3` one through a trace callback, an asyncpg one
    through a query logger). Patches this instance only."""
    origin = f"audit writer: {type(chain).__name__}"

    def note(cpu: float | None, wall: float, entries: int) -> None:
        if sql.on:
            stats["batches"] = stats.get("batches", 0) + 1
            stats["entries"] = stats.get("entries", 0) + entries
            stats["wall_s"] = stats.get("wall_s", 0.0) + wall
            if cpu is not None:
                stats["cpu_s"] = stats.get("cpu_s", 0.0) + cpu

    traced: set[int] = set()  # ids of the connections already traced

    def trace(connection: Any) -> None:
        if connection is None or id(connection) in traced:
            return
        if isinstance(connection, sqlite3.Connection):
            connection.set_trace_callback(lambda statement: sql.add(statement, None, None, origin))
        elif hasattr(connection, "add_query_logger"):  # asyncpg
            connection.add_query_logger(lambda q: sql.add(q.query, q.args, q.elapsed, origin))
        traced.add(id(connection))

    if hasattr(chain, "_commit") and hasattr(chain, "_connect"):  # the SQLite writer: its thread's CPU per batch
        original_connect, original_commit = chain._connect, chain._commit

        def connect() -> Any:
            connection = original_connect()
            trace(connection)
            return connection

        def commit(batch: Any) -> Any:
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                return original_commit(batch)
            finally:
                note(time.thread_time() - cpu0, time.perf_counter() - wall0, len(batch.entries))

        chain._connect, chain._commit = connect, commit
        trace(getattr(chain, "_connection", None))
        stats["cpu_measured"] = 1
        return
    original = chain.commit

    async def timed(batch: Any) -> Any:
        trace(getattr(chain, "_connection", None))
        wall0 = time.perf_counter()
        try:
            return await original(batch)
        finally:
            note(None, time.perf_counter() - wall0, len(batch.entries))
            trace(getattr(chain, "_connection", None))

    chain.commit = timed


async def diagnose(target: Target, query: str, subject: str, runs: int) -> tuple[dict[str, Any], dict[str, tuple[str, Any, str]]]:
    """Serve the profile query in process: SQL per request, CPU by thread, audit writer time, cProfile.
    Returns the findings and one sample (statement, parameters, origin) of each statement seen."""
    from xinlian.hub.app import create_app

    settings = target.settings()
    department = target.clients["department"]
    sql = SqlLog()
    writer_stats: dict[str, float] = {}
    out: dict[str, Any] = {"runs": runs}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        remove = install_sql_capture(runtime.store.engine, sql)
        chain = getattr(runtime.audit, "_chain", None)
        out["audit_writer_class"] = type(chain).__name__
        if chain is not None:
            instrument_chain_writer(chain, sql, writer_stats)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=settings.issuer, timeout=120) as client:
                response = await client.post(
                    "/oauth/token", auth=(department["client_id"], department["client_secret"]),
                    data={"grant_type": "client_credentials"},
                )
                headers = {"authorization": f"Bearer {response.json()['access_token']}"}
                body = {"query": query, "variables": {"uscc": subject}}

                async def send() -> None:
                    r = await client.post("/graphql", json=body, headers=headers)
                    if not hb.is_clean(r):
                        raise RuntimeError(f"profile: {r.status_code} {r.text[:300]}")

                for _ in range(30):
                    await send()
                # SQL and CPU by thread
                sql.on = True
                threads0, cpu0, wall0 = thread_cpu(), time.process_time(), time.perf_counter()
                for _ in range(runs):
                    await send()
                wall, cpu, threads1 = time.perf_counter() - wall0, time.process_time() - cpu0, thread_cpu()
                sql.on = False
                out["wall_ms_per_request"] = 1000 * wall / runs
                out["cpu_ms_per_request"] = 1000 * cpu / runs
                out["thread_cpu_ms_per_request"] = {
                    k: 1000 * (v - threads0.get(k, 0.0)) / runs for k, v in sorted(threads1.items())
                    if v - threads0.get(k, 0.0) > 0
                }
                out["sql"] = {
                    k: {"per_request": c / runs,
                        "mean_ms": 1000 * sql.seconds[k] / c if k in sql.seconds else None}
                    for k, c in sorted(sql.counts.items(), key=lambda kv: -kv[1])
                }
                batches = max(1, int(writer_stats.get("batches", 0)))
                out["audit_writer"] = {
                    "batches": int(writer_stats.get("batches", 0)),
                    "entries": int(writer_stats.get("entries", 0)),
                    "cpu_ms_per_batch": 1000 * writer_stats["cpu_s"] / batches if "cpu_s" in writer_stats else None,
                    "wall_ms_per_batch": 1000 * writer_stats.get("wall_s", 0.0) / batches,
                }
                # cProfile of the event-loop thread
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(runs):
                    await send()
                profiler.disable()
                stats = pstats.Stats(profiler)
                functions: dict[str, list[float]] = {}
                for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
                    key = f"{_short(filename)}:{line}({name})"
                    functions[key] = [calls / runs, 1000 * tottime / runs, 1000 * cumtime / runs]
                out["cprofile"] = functions  # per request: calls, own ms, cumulative ms
        finally:
            remove()
    return out, dict(sql.samples)


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/lib/python3", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        return str(value)


def _first_row(params: Any) -> Any:
    if isinstance(params, list) and params and isinstance(params[0], (list, tuple, dict)):
        return params[0]  # executemany: the first row
    return params


def _is_read(statement: str) -> bool:
    return statement.lstrip().upper().startswith("SELECT")


def explain_sqlite(db: Path, samples: dict[str, tuple[str, Any, str]]) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of each statement seen (with its sampled parameters), read-only."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    out: dict[str, list[str]] = {}
    try:
        for key, (statement, params, _origin) in samples.items():
            params = _first_row(params)
            try:
                if params is None:
                    rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
                else:
                    rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
                out[key] = [str(r[-1]) for r in rows] or ["(no plan: a write without a search)"]
            except sqlite3.Error as exc:
                out[key] = [f"(not explained: {exc})"]
    finally:
        conn.close()
    return out


def time_reads_sqlite(db: Path, samples: dict[str, tuple[str, Any, str]], repeat: int) -> dict[str, float]:
    """Mean microseconds of each read statement seen, run `repeat` times on a read-only connection."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    out: dict[str, float] = {}
    try:
        for key, (statement, params, _origin) in samples.items():
            if not _is_read(statement):
                continue
            params = _first_row(params) or ()
            with contextlib.suppress(sqlite3.Error):
                conn.execute(statement, params).fetchall()
                t0 = time.perf_counter()
                for _ in range(repeat):
                    conn.execute(statement, params).fetchall()
                out[key] = 1e6 * (time.perf_counter() - t0) / repeat
    finally:
        conn.close()
    return out


async def explain_postgres(url: str, samples: dict[str, tuple[str, Any, str]]) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each read seen, EXPLAIN of each write (never executed)."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    out: dict[str, list[str]] = {}
    try:
        for key, (statement, params, _origin) in samples.items():
            if statement.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
                continue
            verb = "EXPLAIN (ANALYZE, BUFFERS)" if _is_read(statement) else "EXPLAIN"
            row = _first_row(params)
            try:
                rows = await conn.fetch(f"{verb} {statement}", *(list(row) if isinstance(row, (list, tuple)) else []))
                out[key] = [str(r[0]) for r in rows]
            except Exception as exc:  # a statement the sample cannot replay
                out[key] = [f"(not explained: {type(exc).__name__}: {exc})"]
    finally:
        await conn.close()
    return out


async def time_reads_postgres(url: str, samples: dict[str, tuple[str, Any, str]], repeat: int) -> dict[str, float]:
    """Mean microseconds (round trip) of each read statement seen, run `repeat` times."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    out: dict[str, float] = {}
    try:
        for key, (statement, params, _origin) in samples.items():
            if not _is_read(statement) or "pg_advisory" in statement:
                continue
            row = _first_row(params)
            values = list(row) if isinstance(row, (list, tuple)) else []
            with contextlib.suppress(Exception):
                await conn.fetch(statement, *values)
                t0 = time.perf_counter()
                for _ in range(repeat):
                    await conn.fetch(statement, *values)
                out[key] = 1e6 * (time.perf_counter() - t0) / repeat
    finally:
        await conn.close()
    return out


def wal_state(db: Path) -> dict[str, Any]:
    """WAL size, and what a PASSIVE checkpoint from another connection achieves (busy, log, done)."""
    wal = Path(f"{db}-wal")
    before = wal.stat().st_size if wal.exists() else 0
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        autockpt = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    finally:
        conn.close()
    return {"wal_bytes": before, "checkpoint_busy": busy, "wal_frames": frames, "checkpointed_frames": done,
            "wal_autocheckpoint": autockpt}


# ---- the run ------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="CPU per request of the hub as its audit trail grows (SQLite, PostgreSQL).")
    p.add_argument("--sizes", default="10000,1000000", help="audit trail sizes, comma-separated (default 10000,1000000)")
    p.add_argument("--stores", default="sqlite,postgres", help="stores: sqlite, postgres or both (default both)")
    p.add_argument("--pg-admin-url", default=os.environ.get("XINLIAN_BENCH_PG_ADMIN", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
                   help="PostgreSQL URL to create and drop the scratch databases on")
    p.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds (default 3; medians are printed)")
    p.add_argument("--requests", type=int, default=300, help="sequential requests per figure per round (default 300)")
    p.add_argument("--concurrent-requests", type=int, default=600, help="profile requests at --concurrency per round (default 600)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--pinned-wal", action="store_true",
                   help="SQLite: also the sequential profile with a read transaction held open on the store (as hub_bench.py's WAL probe)")
    p.add_argument("--tail", type=int, default=20, help="entries written through the real AuditTrail after the bulk load")
    p.add_argument("--subjects", type=int, default=2000, help="legal persons of the demo district (default 2000)")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--verify-up-to", type=int, default=10000, help="run `xinlian audit verify` on trails up to this size")
    p.add_argument("--no-diagnose", action="store_true", help="skip the in-process diagnosis (SQL, threads, cProfile, EXPLAIN)")
    p.add_argument("--diagnose-runs", type=int, default=200, help="in-process requests per diagnosis figure")
    p.add_argument("--append-blocks", type=int, default=8, help="interleaved blocks of the append-alone measurement")
    p.add_argument("--append-entries", type=int, default=250, help="entries per block of the append-alone measurement")
    p.add_argument("--what-if-cache-kib", type=int, default=32768,
                   help="what-if: the SQLite audit writer's page cache (KiB) in an append-alone run (0: skip)")
    p.add_argument("--no-what-if", action="store_true",
                   help="skip the append-alone what-ifs (page cache, time-ordered request ids, no UNIQUE(hash))")
    p.add_argument("--court-delay", action="store_true",
                   help="serve the demo court API as shipped (Nagle on: +40 ms latency per call; see hub_bench.py --court-nodelay)")
    p.add_argument("--snapshot", default=None, metavar="REV",
                   help="measure the packages of git revision REV (git archive) instead of the work tree")
    p.add_argument("--keep", default=None, help="build in (and keep) this directory instead of a temporary one")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every figure as JSON to FILE")
    args = p.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in str(args.sizes).split(",") if s.strip()})
    except ValueError:
        p.error("--sizes: comma-separated whole numbers")
    args.stores = [s.strip() for s in str(args.stores).split(",") if s.strip()]
    if not args.sizes or min(args.sizes) <= args.tail or not set(args.stores) <= {"sqlite", "postgres"} or not args.stores:
        p.error("--sizes must be larger than --tail; --stores: sqlite and/or postgres")
    if min(args.rounds, args.requests, args.concurrent_requests, args.concurrency, args.diagnose_runs,
           args.append_blocks, args.append_entries) < 1:
        p.error("--rounds, --requests, --concurrent-requests, --concurrency, --diagnose-runs, --append-* must be >= 1")
    return args


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pick_subject(target: Target) -> tuple[list[str], str]:
    async def pick() -> tuple[list[str], str]:
        connectors = load_connectors(target.data_dir / "connectors.toml", target.data_dir)
        try:
            codes = hb.registered_codes(connectors)
            subject, _ = await hb.richest_subject(connectors, codes)
            return codes, subject
        finally:
            for connector in connectors:
                await connector.close()

    return asyncio.run(pick())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(RATE_OFF)  # the hubs and the in-process app measure the hub, not its rate limits
    command = shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None else shlex.join(["store_growth.py", *argv])
    results: dict[str, Any] = {"command": command, "machine": hb.machine(), "source": hb.source_tree(),
                               "options": {k: v for k, v in vars(args).items() if k != "json"}}
    with contextlib.ExitStack() as stack:
        if args.keep:
            root = Path(args.keep).resolve()
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xinlian-growth-")))
        targets: list[Target] = []
        stack.callback(drop_databases, args, targets)
        for store in args.stores:
            for size in args.sizes:
                port = hb.free_port()
                data_dir = root / f"{store}-{size}"
                if store == "sqlite":
                    url = f"sqlite+aiosqlite:///{data_dir / 'hub.db'}"
                    targets.append(Target(store, size, data_dir, port, url))
                else:
                    name = f"{SCRATCH_PREFIX}{os.getpid()}_{size}"
                    url = f"{args.pg_admin_url.rsplit('/', 1)[0]}/{name}"
                    targets.append(Target(store, size, data_dir, port, url, pg_database=name))
        return run(args, stack, targets, results)


def drop_databases(args: argparse.Namespace, targets: Sequence[Target]) -> None:
    for target in targets:
        if target.pg_database is not None:
            try:
                asyncio.run(pg_admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{target.pg_database}" WITH (FORCE)'))
                log(f"dropped scratch database {target.pg_database}")
            except Exception as exc:  # report, and go on dropping the others
                log(f"could not drop {target.pg_database}: {exc!r}")


def run(args: argparse.Namespace, stack: contextlib.ExitStack, targets: list[Target], results: dict[str, Any]) -> int:
    from xinlian.hub.cli.demo import ensure_demo_clients
    from xinlian.hub.demo.generator import build_demo_district

    natural = min(500, max(args.subjects // 4, 3))
    for target in targets:
        if target.pg_database is not None:
            asyncio.run(pg_admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{target.pg_database}" WITH (FORCE)'))
            asyncio.run(pg_admin(args.pg_admin_url, f'CREATE DATABASE "{target.pg_database}"'))
        target.district = build_demo_district(target.data_dir, legal_persons=args.subjects, natural_persons=natural)
        target.clients = asyncio.run(ensure_demo_clients(target.settings()))  # also migrates the store
        services = stack.enter_context(  # the demo's live department services (the court API), idle until used
            demo_services.running(target.data_dir, target.data_dir / "bench-demo-services.log", nodelay=not args.court_delay)
        )
        log(f"{target.name}: district in {target.data_dir}, court API {services.get('court_url')}")
    codes, subject = pick_subject(targets[0])
    policy = load_policy(targets[0].settings().policy_path)
    department = targets[0].clients["department"]
    principal = Principal(client_id=department["client_id"], kind="department", scopes=frozenset(department["scope"].split()))
    query, _ = hb.profile_query(policy, principal)
    results["subject"] = subject
    results["profile_query"] = query

    # the trails: one generated stream, loaded into every target up to its size
    rng = random.Random(args.seed)
    pop = make_population(codes, rng)
    biggest = max(args.sizes)
    log(f"generating {biggest} audit entries and loading them into {len(targets)} store(s)")

    async def load_all() -> dict[str, float]:
        for target in targets:
            await target.open_bulk()
        timing = {"generate_s": 0.0}
        loading = {t.name: 0.0 for t in targets}
        try:
            t0 = time.perf_counter()
            for chunk in generate(biggest, pop, args.seed):
                timing["generate_s"] += time.perf_counter() - t0
                for target in targets:
                    if target.bulk_done < target.size - args.tail:
                        t1 = time.perf_counter()
                        await target.load(chunk, target.size - args.tail)
                        loading[target.name] += time.perf_counter() - t1
                if chunk.last_seq % 100_000 < CHUNK:
                    log(f"  {chunk.last_seq} entries generated and loaded")
                t0 = time.perf_counter()
        finally:
            for target in targets:
                await target.close_bulk()
        for target in targets:
            target.generation["bulk_load_s"] = loading[target.name]
        return timing

    t_all = time.perf_counter()
    results["generation"] = asyncio.run(load_all())
    for target in targets:
        asyncio.run(finish_trail(target, pop, args.tail, args.seed))
    results["generation"]["total_s"] = time.perf_counter() - t_all
    log(f"trails written in {results['generation']['total_s']:.0f} s")
    results["verify"] = {}
    for target in targets:
        if target.size <= args.verify_up_to:
            results["verify"][target.name] = audit_verify(target)
            log(f"xinlian audit verify ({target.name}): {results['verify'][target.name]}")
    results["targets"] = {t.name: {"store": t.store, "size": t.size, "generation": t.generation, "sizes_before": t.sizes()}
                          for t in targets}

    # the hubs
    for target in targets:
        target.hub = hb.HubProcess(hb.serve_command(target.data_dir, target.port), f"http://127.0.0.1:{target.port}",
                                   target.data_dir / "bench-hub.log")
        with environment(XINLIAN_DATABASE_URL=target.database_url):
            target.hub.start()
        stack.callback(target.hub.stop)
        log(f"hub {target.name} on port {target.port} (pid {target.hub.pid})")

    rounds: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds}")
        for name, found in measure_round(targets, args, query, subject, r).items():
            rounds[name].append(found)
    results["rounds"] = rounds
    for target in targets:
        results["targets"][target.name]["sizes_after"] = target.sizes()
        if target.store == "sqlite":
            results["targets"][target.name]["wal"] = wal_state(target.sqlite_file)
        results["targets"][target.name]["hub_rss_mib"] = hb.process_rss_mib(target.hub.pid) if target.hub else None
    for target in targets:
        if target.hub is not None:
            code = target.hub.stop()
            if code not in (0, None):
                log(f"hub {target.name} exited with {code}:\n{target.hub.tail()}")

    if not args.no_diagnose:
        results["diagnosis"] = diagnosis = {}
        samples: dict[str, dict[str, tuple[str, Any, str]]] = {store: {} for store in args.stores}
        for target in targets:
            log(f"diagnosis in process: {target.name}")
            with environment(XINLIAN_DATABASE_URL=target.database_url):
                found, seen = asyncio.run(diagnose(target, query, subject, args.diagnose_runs))
            diagnosis[target.name] = found
            samples[target.store].update(seen)
        for store in args.stores:
            group = [t for t in targets if t.store == store]
            largest = max(group, key=lambda t: t.size)
            log(f"EXPLAIN on {largest.name}; each read statement timed on every size")
            diagnosis[f"samples {store}"] = {k: [v[0], _jsonable(v[1]), v[2]] for k, v in samples[store].items()}
            if store == "sqlite":
                diagnosis[f"explain {largest.name}"] = explain_sqlite(largest.sqlite_file, samples[store])
                diagnosis[f"wal {largest.name}"] = wal_state(largest.sqlite_file)
                for t in group:
                    diagnosis[f"reads {t.name}"] = time_reads_sqlite(t.sqlite_file, samples[store], 200)
            else:
                diagnosis[f"explain {largest.name}"] = asyncio.run(explain_postgres(largest.database_url, samples[store]))
                for t in group:
                    diagnosis[f"reads {t.name}"] = asyncio.run(time_reads_postgres(t.database_url, samples[store], 200))
        for store in args.stores:
            group = sorted((t for t in targets if t.store == store), key=lambda t: t.size)
            log(f"audit append alone, {store}: {args.append_blocks} interleaved blocks of {args.append_entries} entries per size")
            append: dict[str, Any] = {}
            diagnosis[f"append {store}"] = append
            cache = args.what_if_cache_kib if store == "sqlite" and args.what_if_cache_kib else None
            runs: list[tuple[str, int | None, bool]] = [("as shipped", None, False)]
            if not args.no_what_if:
                if cache:
                    runs.append((f"what-if: writer page cache {cache} KiB", cache, False))
                runs.append(("what-if: time-ordered request ids", None, True))
            for label, cache_kib, ordered in runs:
                log(f"  {label}")
                append[label] = asyncio.run(
                    append_cost(group, args.append_blocks, args.append_entries, cache_kib, args.seed + len(append), ordered)
                )
            if not args.no_what_if:  # last: it changes the scratch stores' schema
                for t in group:
                    log(f"  what-if: {t.name} without UNIQUE(hash) (scratch store rebuilt)")
                    append.setdefault("rebuild_s", {})[t.name] = drop_hash_unique(t)
                later = [("what-if: time-ordered request ids, no UNIQUE(hash)", None, True)]
                if cache:
                    later.append((f"what-if: all three (ids, no UNIQUE(hash), cache {cache} KiB)", cache, True))
                for label, cache_kib, ordered in later:
                    log(f"  {label}")
                    append[label] = asyncio.run(
                        append_cost(group, args.append_blocks, args.append_entries, cache_kib, args.seed + len(append), ordered)
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    print(render(results, targets, args))
    return 0


# ---- the report ---------------------------------------------------------------------------
def median_of(rounds: list[dict[str, Any]], phase: str, key: str) -> float | None:
    values = [r[phase][key] for r in rounds if r[phase].get(key) is not None]
    return statistics.median(values) if values else None


def _f(value: float | None, width: int = 8, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


LABELS = {"healthz": "GET /healthz", "typename": "{ __typename }", "profile": "profile, sequential", "profile_c": "profile, concurrency",
          "profile_pinned": "profile, WAL pinned"}


def render(r: dict[str, Any], targets: Sequence[Target], args: argparse.Namespace) -> str:
    m = r["machine"]
    out = [
        "Xinlian hub: cost per request as the audit trail grows",
        f"  command   {r['command']}",
        f"  source    {r['source']['path']} at {r['source']['commit']}"
        + ("" if r["source"]["modified_files"] is None else f" ({r['source']['modified_files']} tracked files modified)"),
        f"  machine   {m['nproc']} CPUs, {m['cpu_model']}; {m['implementation']} {m['python']}",
        f"  subject   {r['subject']}; {args.rounds} rounds x ({args.requests} sequential per figure + "
        f"{args.concurrent_requests} at concurrency {args.concurrency}); medians",
        f"  trails    generated in {r['generation']['generate_s']:.0f} s; total with loading, seals, tails "
        f"{r['generation']['total_s']:.0f} s",
    ]
    for name, t in r["targets"].items():
        gen = ", ".join(f"{k} {v:.0f} s" for k, v in t["generation"].items())
        out.append(f"            {name:<16} {gen}; before: " + ", ".join(f"{k} {human(v)}" for k, v in t["sizes_before"].items()))
    for name, line in r.get("verify", {}).items():
        out.append(f"  verify    {name}: {line}")
    out += ["", f"{'store':<9}{'figure':<24}" + "".join(f"{size_label(s):>30}" for s in args.sizes) + "   ratio largest/smallest",
            f"{'':<9}{'':<24}" + "".join(f"{'hub CPU ms  p50 ms  store CPU':>30}" for _ in args.sizes)
            + "   hub CPU   p50  min CPU",
            "  (medians over the rounds; CPU per request in ms; 'min CPU': ratio of each size's lowest round, the least disturbed)"]
    for store in args.stores:
        names = {t.size: t.name for t in targets if t.store == store}
        for phase in (*PHASES, "profile_pinned"):
            if any(phase not in rr for t in names.values() for rr in r["rounds"][t]):
                continue
            cells, firsts, lasts = [], None, None
            for size in args.sizes:
                rounds = r["rounds"][names[size]]
                cpu, p50, store_cpu = (median_of(rounds, phase, k) for k in ("hub_cpu_ms", "p50_ms", "store_cpu_ms"))
                least = min(rr[phase]["hub_cpu_ms"] for rr in rounds)
                cells.append(f"{_f(cpu, 10)}{_f(p50, 8)}{_f(store_cpu, 12)}")
                firsts = firsts or (cpu, p50, least)
                lasts = (cpu, p50, least)
            ratio = ""
            if firsts and lasts and firsts[0] and firsts[1] and firsts[2] and lasts[0] is not None and lasts[1] is not None:
                ratio = f"   {lasts[0] / firsts[0]:>7.2f} {lasts[1] / firsts[1]:>5.2f} {lasts[2] / firsts[2]:>7.2f}"
            label = LABELS[phase] + (f" {args.concurrency}" if phase == "profile_c" else "")
            out.append(f"{store:<9}{label:<24}" + "".join(cells) + ratio)
            if phase == "profile_pinned":
                out[-1] += "   (WAL at the end: " + ", ".join(
                    f"{size_label(sz)} {human(statistics.median(rr[phase]['wal_bytes_at_end'] for rr in r['rounds'][names[sz]]))}"
                    for sz in args.sizes) + ")"
        phases = [rr[ph] for t in names.values() for rr in r["rounds"][t] for ph in (*PHASES, "profile_pinned") if ph in rr]
        errors = sum(ph.get("errors", 0) for ph in phases)
        other = statistics.median(ph["other_cpu_pct"] for ph in phases)
        out.append(f"{'':<9}errors in all rounds: {errors}; CPU of other processes meanwhile (noise): median {other:.0f}%"
                   f" of one CPU, max {max(ph['other_cpu_pct'] for ph in phases):.0f}%"
                   + (f"; store CPU = {PG_BACKEND_CPU_NOTE}" if store == "postgres" else "; store CPU is in the hub process (SQLite)"))
    out += ["", "Per round (hub CPU ms/request of the sequential profile): "
            + "; ".join(f"{n}: " + " ".join(f"{rr['profile']['hub_cpu_ms']:.2f}" for rr in rs) for n, rs in r["rounds"].items())]
    out.append("Store files after the rounds:")
    for name, t in r["targets"].items():
        line = f"  {name:<16} " + ", ".join(f"{k} {human(v)}" for k, v in t["sizes_after"].items())
        if "wal" in t:
            w = t["wal"]
            line += (f"; WAL {w['wal_frames']} frames, passive checkpoint copied {w['checkpointed_frames']}"
                     f" (busy={w['checkpoint_busy']}, autocheckpoint {w['wal_autocheckpoint']} pages)")
        line += f"; hub RSS {t['hub_rss_mib']:.0f} MiB" if t.get("hub_rss_mib") else ""
        out.append(line)
    if "diagnosis" in r:
        out += render_diagnosis(r["diagnosis"], targets, args)
    return "\n".join(out)


def render_diagnosis(d: dict[str, Any], targets: Sequence[Target], args: argparse.Namespace) -> list[str]:
    out = ["", f"Diagnosis: the profile query served in process (ASGI app, no HTTP server), {args.diagnose_runs} requests"]
    for store in args.stores:
        group = sorted((t for t in targets if t.store == store), key=lambda t: t.size)
        small, large = d[group[0].name], d[group[-1].name]
        out.append(f"  {store}: {group[0].name} vs {group[-1].name}")
        out.append(f"    CPU ms/request (all threads) {small['cpu_ms_per_request']:.2f} vs {large['cpu_ms_per_request']:.2f};"
                   f" wall {small['wall_ms_per_request']:.2f} vs {large['wall_ms_per_request']:.2f}")
        names = sorted(set(small["thread_cpu_ms_per_request"]) | set(large["thread_cpu_ms_per_request"]))
        out.append("    by thread: " + "; ".join(
            f"{n} {small['thread_cpu_ms_per_request'].get(n, 0):.2f} vs {large['thread_cpu_ms_per_request'].get(n, 0):.2f}" for n in names))
        a, b = small["audit_writer"], large["audit_writer"]
        out.append(f"    audit writer ({small['audit_writer_class']}): {a['entries']}/{a['batches']} vs {b['entries']}/{b['batches']}"
                   f" entries/batches; CPU {_f(a['cpu_ms_per_batch'], 0, 3)} vs {_f(b['cpu_ms_per_batch'], 0, 3)} ms/batch"
                   f" (its thread); wall {a['wall_ms_per_batch']:.3f} vs {b['wall_ms_per_batch']:.3f} ms/batch")
        out.append("    SQL per request (count, mean ms where timed), small vs large:")
        for key in sorted(set(small["sql"]) | set(large["sql"]), key=lambda k: -(large["sql"].get(k) or small["sql"][k])["per_request"]):
            s, b_ = small["sql"].get(key, {}), large["sql"].get(key, {})
            out.append(f"      {s.get('per_request', 0):>6.2f} {_f(s.get('mean_ms'), 7, 3)} | {b_.get('per_request', 0):>6.2f}"
                       f" {_f(b_.get('mean_ms'), 7, 3)}  {key[:150]}")
        out.append("    cProfile (event-loop thread), largest growth of own time per request (ms, small -> large, calls/request):")
        fs, fl = small["cprofile"], large["cprofile"]
        growth = sorted(set(fs) | set(fl), key=lambda k: -((fl.get(k) or [0, 0, 0])[1] - (fs.get(k) or [0, 0, 0])[1]))
        for key in growth[:12]:
            s_, l_ = fs.get(key) or [0, 0, 0], fl.get(key) or [0, 0, 0]
            out.append(f"      {s_[1]:>7.3f} -> {l_[1]:>7.3f}  ({s_[0]:.1f} -> {l_[0]:.1f} calls)  {key[:120]}")
        total_s = sum(v[1] for v in fs.values())
        total_l = sum(v[1] for v in fl.values())
        out.append(f"      own time in all functions: {total_s:.2f} -> {total_l:.2f} ms/request (under the profiler)")
        append = d.get(f"append {store}", {})
        if append:
            metrics = ("cpu_ms", "writer_thread_cpu_ms", "pg_backend_cpu_ms", "wall_ms", "syscr", "syscw", "rchar", "wchar")
            first = next(iter(v for k, v in append.items() if k != "rebuild_s"))
            shown = [m for m in metrics if first[group[0].name].get(m) is not None]
            out.append(f"    audit append alone, per entry (medians of {first[group[0].name]['blocks']} interleaved blocks;"
                       f" each cell {group[0].name} -> {group[-1].name}):")
            out.append("      " + f"{'':<58}" + "".join(f"{m:>22}   " for m in shown))
            for label, found in append.items():
                if label == "rebuild_s":
                    continue
                a_, b_ = found[group[0].name], found[group[-1].name]
                cells = "".join(f"{a_[m]:>10.2f} ->{b_[m]:>9.2f}   " for m in shown)
                out.append(f"      {label[:58]:<58}{cells}")
            if "rebuild_s" in append:
                out.append("      (tables rebuilt without UNIQUE(hash) in " + ", ".join(f"{k} {v:.0f} s" for k, v in append["rebuild_s"].items()) + ")")
        reads_s, reads_l = d.get(f"reads {group[0].name}", {}), d.get(f"reads {group[-1].name}", {})
        out.append(f"    each read statement run 200 times on each store (mean µs), {group[0].name} vs {group[-1].name}:")
        for key in sorted(reads_l, key=lambda k: -(reads_l[k] / max(reads_s.get(k, 1e-9), 1e-9))):
            out.append(f"      {_f(reads_s.get(key), 9, 1)} {_f(reads_l[key], 9, 1)}  x{reads_l[key] / max(reads_s.get(key, 1e-9), 1e-9):.2f}  {key[:130]}")
        explain = d.get(f"explain {group[-1].name}", {})
        out.append(f"    plans on {group[-1].name} (!! a full scan of a table that grows with the trail;"
                   " ~ a scan of a small table that does not):")
        for key, plan in explain.items():
            marks = {_scan_mark(key, line) for line in plan} - {"  "}
            out.append(f"      {'!!' if '!!' in marks else '~ ' if marks else '  '} {key[:140]}")
            for line in plan[:8]:
                out.append(f"           {line[:150]}")
        if f"wal {group[-1].name}" in d:
            out.append(f"    WAL after the diagnosis: {d[f'wal {group[-1].name}']}")
    return out


GROWING_TABLES = ("audit_entries", "audit_subjects")


def _scan_mark(statement: str, line: str) -> str:
    """'!!' for a full scan of a growing table, '~ ' for a scan of another table, '  ' otherwise.

    SQLite's `SCAN t` under `ORDER BY <rowid> DESC LIMIT n` with no `USE TEMP B-TREE` reads the
    table in rowid order and stops after n rows: not a full scan (the chain head query)."""
    text = line.strip()
    table = None
    if text.startswith("SCAN ") and "COVERING INDEX" not in text:
        table = text.split()[1]
        if "LIMIT" in statement.upper() and "ORDER BY" in statement.upper() and "USING" not in text:
            return "  "  # a rowid-order walk that stops at the LIMIT
    elif "Seq Scan on " in text:
        table = text.split("Seq Scan on ", 1)[1].split()[0]
    if table is None:
        return "  "
    return "!!" if table in GROWING_TABLES else "~ "


if __name__ == "__main__":
    sys.exit(main())
