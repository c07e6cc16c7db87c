"""End-to-end benchmark of the Xinlian hub: latency, throughput, hub overhead and the audit trail.

What it does, in order (every loop is bounded and stops by itself; loopback only):

1. builds the demo district in a temporary data directory (or reuses `--data-dir`), creates the
   demo clients, and starts `xinlian serve --data-dir D --port P` in a *separate process*, so the
   load generator and the hub do not share a GIL;
2. gets an access token for the demo department client from `/oauth/token`;
3. measures, with httpx:
   a. one subject's full credit profile (every family, every field the department may receive)
      on `/graphql`: sequential latency percentiles;
   b. the same profile on `/public/graphql` (the public fields);
   c. `legalPersons(usccs: [N codes])` with name, penalties, taxCredit, judgmentDebtorRecords:
      latency and response size;
   d. throughput of the profile query at several concurrencies (asyncio + httpx.AsyncClient,
      a semaphore bounding the requests in flight), with error counts and CPU used by each side;
   e. hub overhead: the same profile's connector fetches done directly in this process
      (`load_connectors` + `fetch` per family, concurrently) against the end-to-end latency,
      like Apollo Router's overhead metric (time in the router not spent waiting for subgraphs);
   f. the audit trail: entries written (hub store row count) and, on the SQLite store, the write
      transactions that carried them (commit frames in the write-ahead log; see `WalProbe`).
4. optionally (`--profile`) runs the profile query in-process through the ASGI app and splits
   its time into stages (token validation, GraphQL execution, connector fetches, audit write,
   JSON rendering), then prints a cProfile of the same requests.

Run from the repository root:

    python bench/hub_bench.py                 # the defaults documented in docs/benchmarks.md
    python bench/hub_bench.py --json > out.json
    python bench/hub_bench.py --requests 100 --duration 3 --profile

Progress goes to stderr; the report (a table, or JSON with `--json`) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import importlib.metadata
import io
import json
import os
import platform
import pstats
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Sequence

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_services  # noqa: E402  (bench/demo_services.py)
from xinlian.connectors.contract import Connector
from xinlian.connectors.registry import load_connectors
from xinlian.hub.config import Settings
from xinlian.hub.principal import Principal
from xinlian.policies import load_policy
from xinlian.policies.engine import decide
from xinlian.policies.model import DisclosureClass, Policy
from xinlian.policies.rows import PublicityWindow
from xinlian.schema.catalogue import FAMILIES, REGISTRATION, RecordFamily, SubjectKind, families_for

BATCH_FAMILIES = ("penalties", "tax_credit", "judgment_debtor_records")
SERVER_START_TIMEOUT = 60.0  # seconds to wait for /healthz
REQUEST_TIMEOUT = 120.0  # seconds; generous for the 1000-code batch on a slow machine
VERSIONS_OF = ("strawberry-graphql", "graphql-core", "starlette", "uvicorn", "sqlalchemy", "aiosqlite", "httpx", "joserfc")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- statistics ---------------------------------------------------------------------------
def summary(seconds: Sequence[float]) -> dict[str, float]:
    """Latency summary in milliseconds: n, mean, min, p50, p95, p99, max."""
    ms = sorted(s * 1000.0 for s in seconds)
    if not ms:
        return {"n": 0}
    if len(ms) == 1:
        q = [ms[0]] * 99
    else:
        q = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "n": len(ms),
        "mean": statistics.fmean(ms),
        "min": ms[0],
        "p50": q[49],
        "p95": q[94],
        "p99": q[98],
        "max": ms[-1],
    }


# ---- the machine --------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" if it cannot be read)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def machine() -> dict[str, Any]:
    model = cpu_model()
    versions = {}
    for name in VERSIONS_OF:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
        "uvloop": _importable("uvloop"),
        "httptools": _importable("httptools"),
    }


def source_tree() -> dict[str, Any]:
    """Which hub code ran: the package's directory, its git commit and whether the tree was dirty."""
    import xinlian.hub

    root = Path(xinlian.hub.__file__).resolve().parent.parent
    info: dict[str, Any] = {"path": str(root)}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    info["commit"] = git("rev-parse", "--short", "HEAD")
    if info["commit"] is None and (root / "COMMIT").is_file():  # a `git archive` snapshot that notes its commit
        info["commit"] = (root / "COMMIT").read_text().strip() + " (snapshot)"
    status = git("status", "--porcelain", "--untracked-files=no")
    info["modified_files"] = None if status is None else len([line for line in status.splitlines() if line.strip()])
    return info


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read().decode()
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant (`xinlian serve --workers N`: the supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                children.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (all their threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields_ = _stat_fields(member)
            total += int(fields_[11]) + int(fields_[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def process_rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


class MachineLoad:
    """CPU used on the whole machine over an interval (from /proc/stat), in "% of one CPU".

    `other_pct` is what neither the hub nor this benchmark used: other processes on a shared
    machine. `steal_pct` is time the hypervisor gave to other guests. Both say how far the
    figures of a phase may have been disturbed.
    """

    def __init__(self, hub_pid: int) -> None:
        self.hub_pid = hub_pid
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float, float]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        steal = values[7] if len(values) > 7 else 0
        busy = sum(values[:8]) - idle - steal
        return time.perf_counter(), busy / ticks, steal / ticks, process_cpu_seconds(self.hub_pid), time.process_time()

    def finish(self) -> dict[str, float]:
        t1, busy1, steal1, hub1, me1 = self._sample()
        t0, busy0, steal0, hub0, me0 = self.start
        wall = max(t1 - t0, 1e-9)
        hub, me = hub1 - hub0, me1 - me0
        return {
            "machine_busy_pct": 100 * (busy1 - busy0) / wall,
            "hub_pct": 100 * hub / wall,
            "bench_pct": 100 * me / wall,
            "other_pct": max(0.0, 100 * (busy1 - busy0 - hub - me) / wall),
            "steal_pct": 100 * (steal1 - steal0) / wall,
            "hub_cpu_s": hub,
        }


# ---- the hub process ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(data_dir: Path, port: int, workers: int = 1) -> list[str]:
    exe = shutil.which("xinlian")
    head = [exe] if exe else [sys.executable, "-m", "xinlian.hub.cli"]
    return [*head, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", str(workers)]


@dataclass
class HubProcess:
    command: list[str]
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        out = open(self.log_path, "wb")  # closed with the process
        # The benchmark measures the hub, not its rate limits: one client on one address would be
        # throttled within a second. Rate limiting itself is tested in tests/test_hardening.py.
        env = {**os.environ, "XINLIAN_RATE_PUBLIC": "off", "XINLIAN_RATE_IP": "off", "XINLIAN_RATE_CLIENT": "off"}
        self.process = subprocess.Popen(
            self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
        out.close()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.process.returncode}; see {self.log_path}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the hub did not answer /healthz within {SERVER_START_TIMEOUT:g} s; see {self.log_path}")

    def stop(self) -> int | None:
        """SIGINT (uvicorn's graceful shutdown: the audit trail flushes), then SIGKILL if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


# ---- the audit trail (SQLite hub store) ---------------------------------------------------
def sqlite_path(database_url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def audit_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0])
    finally:
        conn.close()


def audit_content_bytes(db: Path) -> float | None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        value = conn.execute("SELECT avg(length(CAST(content AS BLOB))) FROM audit_entries").fetchone()[0]
        return None if value is None else float(value)
    finally:
        conn.close()


def wal_commits(wal: Path) -> tuple[bytes, int]:
    """(salts of the current WAL generation, commit frames in it) of a SQLite write-ahead log.

    Frame headers are 24 bytes: page number, database size after commit (non-zero only on a
    transaction's last frame), the two salts, two checksums. The log's valid frames are the
    leading ones whose salts equal the header's; each commit frame is one write transaction.
    """
    try:
        f = open(wal, "rb")
    except FileNotFoundError:
        return b"", 0
    with f:
        header = f.read(32)
        if len(header) < 32:
            return b"", 0
        page_size = struct.unpack(">I", header[8:12])[0]
        salts = header[16:24]
        commits = 0
        while True:
            frame = f.read(24)
            if len(frame) < 24 or frame[8:16] != salts:
                break
            if struct.unpack(">I", frame[4:8])[0] != 0:
                commits += 1
            f.seek(page_size, os.SEEK_CUR)
    return salts, commits


class WalProbe:
    """Counts the hub store's write transactions during a phase (SQLite in WAL mode only).

    A read transaction is held open for the phase, so no checkpoint can restart the log under
    us; the commit frames appended meanwhile are the transactions the hub committed (only the
    audit writer writes to the store while GraphQL requests are served). The log may restart
    once, at the phase's first write, if it had been fully checkpointed before; then every
    commit in the new generation belongs to the phase. Holding the reader costs the hub
    nothing but a longer log until the phase ends.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.wal = Path(f"{db}-wal")
        self.conn: sqlite3.Connection | None = None
        self.start: tuple[bytes, int] = (b"", 0)
        self.start_entries = 0

    def __enter__(self) -> "WalProbe":
        self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30, isolation_level=None)
        self.conn.execute("BEGIN")
        self.start_entries = int(self.conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0])
        self.start = wal_commits(self.wal)
        return self

    def transactions(self) -> int:
        """Commits since the probe started (call before leaving the block)."""
        salts, commits = wal_commits(self.wal)
        if salts == self.start[0]:
            return commits - self.start[1]
        return commits

    def __exit__(self, *exc: Any) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("COMMIT")
            self.conn.close()
            self.conn = None


@dataclass
class AuditPhase:
    requests: int  # GraphQL requests sent in the phase
    entries: int | None = None  # audit rows added
    transactions: int | None = None  # store write transactions (WAL commit frames)

    def as_dict(self) -> dict[str, Any]:
        per = self.entries / self.transactions if self.entries and self.transactions else None
        return {
            "requests": self.requests,
            "entries": self.entries,
            "transactions": self.transactions,
            "entries_per_transaction": per,
        }


@contextlib.contextmanager
def audited(db: Path | None, result: AuditPhase, probe_wal: bool) -> Iterator[None]:
    """Count audit entries (and, when `probe_wal`, transactions) written inside the block."""
    if db is None:
        yield
        return
    if not probe_wal:
        before = audit_count(db)
        yield
        result.entries = audit_count(db) - before
        return
    with WalProbe(db) as probe:
        yield
        result.transactions = probe.transactions()
    result.entries = audit_count(db) - probe.start_entries


def wait_for_audit_quiet(db: Path | None, expected_at_least: int, timeout: float = 10.0) -> None:
    """Responses wait for their entries, so this returns at once; it guards against surprises."""
    if db is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and audit_count(db) < expected_at_least:
        time.sleep(0.05)


# ---- queries ------------------------------------------------------------------------------
def allowed_fields(policy: Policy, principal: Principal, family: RecordFamily) -> list[str]:
    return [spec.name for spec in family.fields if decide(policy, principal, family.name, spec.name).allowed]


def selection(family: RecordFamily, names: Sequence[str]) -> str:
    return f"{family.graphql_field} {{ {' '.join(family.field(n).graphql_name for n in names)} }}"


def profile_query(policy: Policy, principal: Principal) -> tuple[str, dict[str, list[str]]]:
    """A legal person's full profile: every family, every field `principal` may receive."""
    parts, selected = ["uscc"], {}
    if decide(policy, principal, "registration", "name").allowed:
        parts.append("name")
    for family in families_for(SubjectKind.LEGAL_PERSON):
        names = allowed_fields(policy, principal, family)
        if names:
            parts.append(selection(family, names))
            selected[family.name] = names
    query = "query Profile($uscc: String!) { legalPerson(uscc: $uscc) { " + " ".join(parts) + " } }"
    return query, selected


def batch_query(policy: Policy, principal: Principal) -> tuple[str, dict[str, list[str]]]:
    parts, selected = ["uscc", "name"], {}
    for name in BATCH_FAMILIES:
        family = FAMILIES[name]
        names = allowed_fields(policy, principal, family)
        if names:
            parts.append(selection(family, names))
            selected[name] = names
    query = "query Batch($usccs: [String!]!) { legalPersons(usccs: $usccs) { " + " ".join(parts) + " } }"
    return query, selected


# ---- direct connector fetches (the "subgraph" time of the overhead metric) ---------------
@dataclass(frozen=True)
class Fetch:
    connector: Connector
    family: str
    fields: tuple[str, ...]


def fetch_plan(
    connectors: Sequence[Connector], policy: Policy, principal: Principal, selected: dict[str, list[str]]
) -> list[Fetch]:
    """The connector calls the hub makes for one profile request, with the fields it asks for.

    Mirrors the executor: registration is loaded with the selected registration fields plus
    `name`; other families with the selected fields plus the recency field (and, for callers
    outside government, i.e. not granted SHARED, the publicity window's fields for penalties)
    that the caller may receive.
    """
    windowed = DisclosureClass.SHARED not in policy.granted(principal.scopes)

    def may(family: str, name: str) -> bool:
        return decide(policy, principal, family, name).allowed

    plan: list[Fetch] = []
    for family_name, names in selected.items():
        family = FAMILIES[family_name]
        wanted = set(names)
        if family is REGISTRATION:
            wanted.add("name")
        else:
            if family.recency:
                wanted.add(family.recency)
            if windowed and family_name == "penalties":
                wanted.update(PublicityWindow.standard().fields)
        wanted = {f for f in wanted if may(family_name, f)}
        for connector in connectors:
            if family_name in connector.families:
                fields_ = tuple(sorted(wanted & connector.provides(family_name)))
                plan.append(Fetch(connector, family_name, fields_))
    return plan


async def run_plan(plan: Sequence[Fetch], key: str, shape: str) -> None:
    if shape == "concurrent":
        await asyncio.gather(*(f.connector.fetch(f.family, [key], f.fields) for f in plan))
    elif shape == "hub":  # registration first (root resolver), then every family concurrently
        first = [f for f in plan if f.family == REGISTRATION.name]
        rest = [f for f in plan if f.family != REGISTRATION.name]
        await asyncio.gather(*(f.connector.fetch(f.family, [key], f.fields) for f in first))
        await asyncio.gather(*(f.connector.fetch(f.family, [key], f.fields) for f in rest))
    elif shape == "sequential":
        for f in plan:
            await f.connector.fetch(f.family, [key], f.fields)
    else:  # pragma: no cover
        raise ValueError(shape)


async def time_plan(plan: Sequence[Fetch], key: str, shape: str, warmup: int, runs: int) -> dict[str, float]:
    for _ in range(warmup):
        await run_plan(plan, key, shape)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await run_plan(plan, key, shape)
        samples.append(time.perf_counter() - t0)
    return summary(samples)


async def richest_subject(connectors: Sequence[Connector], codes: Sequence[str]) -> tuple[str, dict[str, int]]:
    """The registered legal person with records in the most families (ties: most records)."""
    counts: dict[str, dict[str, int]] = {}
    for connector in connectors:
        for family in sorted(connector.families):
            if SubjectKind.LEGAL_PERSON not in FAMILIES[family].subjects:
                continue
            found = await connector.fetch(family, codes, [sorted(connector.provides(family))[0]])
            for key, records in found.items():
                if not isinstance(records, list):  # a per-subject failure (FetchResult value)
                    continue
                per = counts.setdefault(key, {})
                per[family] = per.get(family, 0) + len(records)
    registered = set(codes)
    best = max(
        (k for k in counts if k in registered),
        key=lambda k: (len(counts[k]), sum(counts[k].values()), k),
    )
    return best, counts[best]


def registered_codes(connectors: Sequence[Connector]) -> list[str]:
    """Every USCC in the registry's table, read directly from the department's SQLite file."""
    for connector in connectors:
        mapping = getattr(connector, "mappings", {}).get(REGISTRATION.name)
        url = getattr(connector, "_url", None)
        if mapping is None or url is None or url.get_backend_name() != "sqlite":
            continue
        path = str(url.database).removeprefix("file:")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(f'SELECT DISTINCT "{mapping.key}" FROM "{mapping.table}" ORDER BY 1').fetchall()
        finally:
            conn.close()
        return [str(r[0]).strip() for r in rows]
    raise RuntimeError("no SQLite registry connector found to read subject codes from")


# ---- HTTP measurements --------------------------------------------------------------------
def is_clean(response: httpx.Response) -> bool:
    """200 with no GraphQL errors (a byte check: parsing every body would load the client)."""
    return response.status_code == 200 and b'"errors"' not in response.content


def sequential(
    client: httpx.Client, send: Callable[[], httpx.Response], warmup: int, runs: int, hub_pid: int
) -> dict[str, Any]:
    """Latency of `runs` requests sent one after another (after `warmup` untimed ones)."""
    for _ in range(warmup):
        send()
    samples, errors, size = [], 0, 0
    load = MachineLoad(hub_pid)
    for _ in range(runs):
        t0 = time.perf_counter()
        response = send()
        samples.append(time.perf_counter() - t0)
        size = len(response.content)
        if not is_clean(response):
            errors += 1
    machine_load = load.finish()
    return {
        "latency_ms": summary(samples),
        "errors": errors,
        "response_bytes": size,
        "hub_cpu_ms_per_request": 1000.0 * machine_load["hub_cpu_s"] / runs,
        "load": machine_load,
    }


async def throughput(
    base_url: str, token: str, query: str, variables: dict[str, Any], concurrency: int, duration: float, server_pid: int
) -> dict[str, Any]:
    """Requests/s with at most `concurrency` in flight, for `duration` seconds (then drains)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"authorization": f"Bearer {token}"}
    body = {"query": query, "variables": variables}
    samples: list[float] = []
    errors = {"http": 0, "graphql": 0, "transport": 0}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT) as client:
        # warm the connection pool so the timed window measures steady state
        await asyncio.gather(*(client.post("/graphql", json=body) for _ in range(concurrency)))
        sem = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def one() -> None:
            try:
                t0 = time.perf_counter()
                try:
                    response = await client.post("/graphql", json=body)
                except httpx.HTTPError:
                    errors["transport"] += 1
                    return
                samples.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors["http"] += 1
                elif b'"errors"' in response.content:
                    errors["graphql"] += 1
            finally:
                sem.release()

        load = MachineLoad(server_pid)
        started = time.perf_counter()
        deadline = started + duration
        while time.perf_counter() < deadline:
            await sem.acquire()
            if time.perf_counter() >= deadline:
                sem.release()
                break
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        machine_load = load.finish()
        cpu_server = machine_load["hub_cpu_s"]
    completed = len(samples)
    return {
        "concurrency": concurrency,
        "seconds": elapsed,
        "completed": completed,
        "requests_per_s": completed / elapsed if elapsed else 0.0,
        "errors": errors,
        "error_count": sum(errors.values()),
        "latency_ms": summary(samples),
        "server_cpu_s": cpu_server,
        "server_cpu_pct": 100.0 * cpu_server / elapsed if elapsed else 0.0,
        "server_cpu_ms_per_request": 1000.0 * cpu_server / completed if completed else None,
        "client_cpu_pct": machine_load["bench_pct"],
        "load": machine_load,
    }


# ---- in-process stage breakdown (--profile) -----------------------------------------------
class Stages:
    """Wall time per named stage, per request, collected by wrappers installed in this process."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.fetch_spans: list[tuple[float, float]] = []
        self.requests: list[dict[str, float]] = []

    def add(self, name: str, seconds: float) -> None:
        self.current[name] = self.current.get(name, 0.0) + seconds

    def close_request(self) -> None:
        spans = sorted(self.fetch_spans)
        union, end = 0.0, float("-inf")
        for s, e in spans:
            if e <= end:
                continue
            union += e - max(s, end)
            end = e
        self.current["connector fetch (wall, overlaps merged)"] = union
        self.current["connector fetch (sum of calls)"] = sum(e - s for s, e in spans)
        self.requests.append(self.current)
        self.current, self.fetch_spans = {}, []


def _timed_sync(stages: Stages, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            stages.add(name, time.perf_counter() - t0)

    return wrapper


def _timed_async(stages: Stages, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            stages.add(name, time.perf_counter() - t0)

    return wrapper


# Where a sample of the event-loop thread is counted: the first rule (in this order) that matches
# any frame of its stack. Order matters: the audit writer and connectors both run SQLAlchemy.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audit write (entry, chain, insert, commit)", ("/hub/audit/",)),
    ("token validation", ("/hub/auth/", "/joserfc/")),
    ("connector fetch (SQLAlchemy, aiosqlite, mapping)", ("/connectors/", "/hub/executor/loader.py", "/sqlalchemy/", "/aiosqlite/")),
    ("GraphQL validation", ("/graphql/validation/", "/strawberry/extensions/validation_cache.py", "/strawberry/extensions/query_depth_limiter.py", "/strawberry/extensions/max_aliases.py")),
    ("GraphQL parsing", ("/graphql/language/parser.py", "/graphql/language/lexer.py", "/strawberry/extensions/parser_cache.py")),
    ("JSON (request body, response)", ("/json/", "render")),
    ("GraphQL execution + hub resolvers/policy", ("/strawberry/", "/graphql/", "/hub/executor/", "/schema/", "/policies/")),
    ("HTTP + ASGI (starlette, httpx in-process client)", ("/starlette/", "/httpx/", "/httpcore/", "/anyio/", "/hub/endpoints/", "/hub/app.py")),
    ("event loop idle (waiting on threads, fsync)", ("select", "/selectors.py")),
    ("event loop scheduling", ("/asyncio/",)),
)


def categorize_pyinstrument(root: Any) -> dict[str, float]:
    """Seconds of the event-loop thread per category (see CATEGORIES), from a pyinstrument tree."""
    totals: dict[str, float] = {}

    def category(stack: list[str]) -> str:
        for name, needles in CATEGORIES:
            if any(needle in frame for frame in stack for needle in needles):
                return name
        return "other"

    def walk(frame: Any, stack: list[str]) -> None:
        here = stack + [f"{frame.file_path or ''}:{frame.function}"]
        if not frame.children:
            name = category(here)
            totals[name] = totals.get(name, 0.0) + frame.time
            return
        for child in frame.children:
            walk(child, here)

    walk(root, [])
    return totals


async def inprocess_profile(
    settings: Settings, client_id: str, secret: str, queries: dict[str, str], uscc: str, runs: int
) -> dict[str, Any]:
    """Serve the app in this process (no HTTP server, no network) and time each request's stages.

    `queries` maps an endpoint path (/graphql, /public/graphql) to its profile query. The timing
    wrappers are installed in this process only (the source is unchanged); each stage is the
    wall time of one call, so stages nest: "GraphQL execution" includes the connector fetches.
    """
    from starlette.responses import JSONResponse

    from xinlian.hub.app import create_app
    from xinlian.hub.auth.bearer import BearerValidator
    from xinlian.hub.gateway.pipeline import Gateway

    stages = Stages()
    originals = (Gateway.serve, BearerValidator.validate, JSONResponse.render)
    Gateway.serve = _timed_async(stages, "endpoint total (gateway pipeline)", Gateway.serve)  # type: ignore[method-assign]
    BearerValidator.validate = _timed_sync(stages, "token validation", BearerValidator.validate)  # type: ignore[method-assign]
    JSONResponse.render = _timed_sync(stages, "JSON response rendering", JSONResponse.render)  # type: ignore[method-assign]
    out: dict[str, Any] = {"runs": runs, "endpoints": {}}
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            for schema in (runtime.schema, runtime.public_schema):
                schema.execute = _timed_async(stages, "GraphQL execution (incl. fetches)", schema.execute)
            runtime.audit.record = _timed_async(stages, "audit record (queue + commit wait)", runtime.audit.record)
            for connector in runtime.federation.connectors:

                def make(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
                    async def fetch(*args: Any, **kwargs: Any) -> Any:
                        t0 = time.perf_counter()
                        try:
                            return await original(*args, **kwargs)
                        finally:
                            stages.fetch_spans.append((t0, time.perf_counter()))

                    return fetch

                connector.fetch = make(connector.fetch)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as client:
                token = (
                    await client.post("/oauth/token", auth=(client_id, secret), data={"grant_type": "client_credentials"})
                ).json()["access_token"]
                for path, query in queries.items():
                    headers = {} if path.startswith("/public") else {"authorization": f"Bearer {token}"}
                    body = {"query": query, "variables": {"uscc": uscc}}
                    for _ in range(30):  # warm-up: caches, connection pools
                        await client.post(path, json=body, headers=headers)
                    stages.requests.clear()
                    stages.current, stages.fetch_spans = {}, []
                    totals = []
                    for _ in range(runs):
                        t0 = time.perf_counter()
                        response = await client.post(path, json=body, headers=headers)
                        totals.append(time.perf_counter() - t0)
                        if not is_clean(response):
                            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                        stages.close_request()
                    names = list(dict.fromkeys(k for r in stages.requests for k in r))
                    medians = {n: statistics.median(r.get(n, 0.0) for r in stages.requests) * 1000.0 for n in names}
                    categories = None
                    try:
                        from pyinstrument import Profiler  # optional: pip install pyinstrument
                    except ImportError:
                        Profiler = None
                    if Profiler is not None:
                        sampler = Profiler(interval=0.0005, async_mode="disabled")
                        sampler.start()
                        for _ in range(runs):
                            await client.post(path, json=body, headers=headers)
                        sampler.stop()
                        seconds = categorize_pyinstrument(sampler.last_session.root_frame())
                        whole = sum(seconds.values()) or 1.0
                        categories = {
                            name: {"ms_per_request": 1000.0 * v / runs, "share": v / whole}
                            for name, v in sorted(seconds.items(), key=lambda kv: -kv[1])
                        }
                    profiler = cProfile.Profile()
                    profiler.enable()
                    for _ in range(runs):
                        await client.post(path, json=body, headers=headers)
                    profiler.disable()
                    own, cumulative = io.StringIO(), io.StringIO()
                    pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(25)
                    pstats.Stats(profiler, stream=cumulative).sort_stats("cumulative").print_stats(60)
                    out["endpoints"][path] = {
                        "asgi_client_total_ms": summary(totals),
                        "stage_p50_ms": medians,
                        "pyinstrument_categories": categories,
                        "cprofile_tottime_top25": own.getvalue(),
                        "cprofile_cumulative_top60": cumulative.getvalue(),
                    }
    finally:
        Gateway.serve, BearerValidator.validate, JSONResponse.render = originals  # type: ignore[method-assign]
    return out


# ---- the run ------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the Xinlian hub end to end (loopback only).")
    p.add_argument("--subjects", type=int, default=2000, help="legal persons in the demo district (natural persons: 500, or subjects/4 if smaller)")
    p.add_argument("--requests", type=int, default=300, help="timed sequential requests per latency figure (default 300)")
    p.add_argument("--warmup", type=int, default=30, help="untimed requests before each latency figure (default 30)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per throughput run (default 10)")
    p.add_argument("--concurrency", default="8,32", help="comma-separated concurrencies for throughput (default 8,32)")
    p.add_argument("--batch-codes", type=int, default=1000, help="codes in the legalPersons batch (default 1000, capped at subjects)")
    p.add_argument("--batch-runs", type=int, default=10, help="timed runs of the batch query (default 10)")
    p.add_argument("--subject", default=None, help="USCC for the profile query (default: the subject with records in most families)")
    p.add_argument("--data-dir", default=None, help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--port", type=int, default=0, help="hub port (default: a free one)")
    p.add_argument("--workers", type=int, default=1, help="hub worker processes (xinlian serve --workers; CPU counts them all)")
    p.add_argument("--court-nodelay", action="store_true",
                   help="what-if: serve the demo court API with TCP_NODELAY (see bench/demo_services.py)")
    p.add_argument("--no-wal-probe", action="store_true", help="do not count store transactions (SQLite WAL commit frames)")
    p.add_argument("--profile", action="store_true", help="also time one request's stages in-process and print a cProfile")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = p.parse_args(argv)
    if args.subjects < 12:
        p.error("--subjects must be at least 12 (the demo district's named samples)")
    if args.requests < 2 or args.warmup < 0 or args.duration <= 0 or args.batch_runs < 1:
        p.error("--requests >= 2, --warmup >= 0, --duration > 0, --batch-runs >= 1")
    try:
        args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency: comma-separated whole numbers")
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency: at least one value >= 1")
    return args


async def direct_overhead(
    connectors_path: Path, data_dir: Path, policy: Policy, callers: dict[str, tuple[Principal, dict[str, list[str]]]],
    key: str, warmup: int, runs: int,
) -> dict[str, Any]:
    """Time the profile's connector calls in this process (fresh connectors, closed afterwards)."""
    connectors = load_connectors(connectors_path, data_dir)
    out: dict[str, Any] = {}
    try:
        for endpoint, (principal, selected) in callers.items():
            plan = fetch_plan(connectors, policy, principal, selected)
            out[endpoint] = {
                "calls": [f"{f.connector.name}.{f.family}" for f in plan],
                "concurrent_ms": await time_plan(plan, key, "concurrent", warmup, runs),
                "hub_shape_ms": await time_plan(plan, key, "hub", warmup, max(2, runs // 3)),
                "sequential_ms": await time_plan(plan, key, "sequential", warmup, max(2, runs // 3)),
            }
    finally:
        for connector in connectors:
            await connector.close()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command_line = shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None else shlex.join(["hub_bench.py", *argv])
    results: dict[str, Any] = {
        "command": command_line,
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "source": source_tree(),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
    }
    tmp = None
    if args.data_dir:
        data_dir = Path(args.data_dir).resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="xinlian-bench-")
        data_dir = Path(tmp.name) / "data"
    try:
        return run(args, data_dir, results)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run(args: argparse.Namespace, data_dir: Path, results: dict[str, Any]) -> int:
    from xinlian.hub.cli.demo import ensure_demo_clients
    from xinlian.hub.demo.generator import build_demo_district

    natural = min(500, max(args.subjects // 4, 3))
    t0 = time.perf_counter()
    district = build_demo_district(data_dir, legal_persons=args.subjects, natural_persons=natural)
    port = args.port or free_port()
    settings = Settings.from_env(data_dir, port=port)
    clients = asyncio.run(ensure_demo_clients(settings))
    results["district"] = {
        "legal_persons": district.legal_persons,
        "natural_persons": district.natural_persons,
        "reused": district.reused,
        "build_s": time.perf_counter() - t0,
    }
    log(f"demo district ready in {data_dir} ({district.legal_persons} legal persons, {results['district']['build_s']:.1f} s)")

    with demo_services.running(data_dir, data_dir / "bench-demo-services.log", nodelay=args.court_nodelay) as services:
        results["demo_services"] = {k: v for k, v in services.items() if k != "pid"}
        if services.get("court_url"):
            log(f"demo department services running (court API {services['court_url']}), pid {services['pid']}")
        return measure_all(args, data_dir, port, settings, clients, results)


def measure_all(
    args: argparse.Namespace, data_dir: Path, port: int, settings: Settings, clients: dict[str, Any], results: dict[str, Any]
) -> int:
    policy = load_policy(settings.policy_path)
    department = clients["department"]
    dept = Principal(client_id=department["client_id"], kind="department", scopes=frozenset(department["scope"].split()))
    public = Principal.public(policy.public_scope)
    private_query, private_selected = profile_query(policy, dept)
    public_query, public_selected = profile_query(policy, public)
    batch_q, _ = batch_query(policy, dept)

    connectors_path = settings.connectors_path or data_dir / "connectors.toml"

    async def pick() -> tuple[list[str], str, dict[str, int]]:
        connectors = load_connectors(connectors_path, data_dir)
        try:
            codes = registered_codes(connectors)
            if args.subject:
                return codes, args.subject, {}
            return (codes, *await richest_subject(connectors, codes))
        finally:
            for connector in connectors:
                await connector.close()

    codes, subject, records = asyncio.run(pick())
    batch_codes = codes[: min(args.batch_codes, len(codes), settings.batch_limit)]
    results["subject"] = {"uscc": subject, "records_per_family": records}
    results["queries"] = {"profile_graphql": private_query, "profile_public": public_query, "batch": batch_q}
    store_db = sqlite_path(settings.database_url)
    probe_wal = store_db is not None and not args.no_wal_probe

    hub = HubProcess(serve_command(data_dir, port, args.workers), f"http://127.0.0.1:{port}", data_dir / "bench-hub.log")
    results["server_command"] = shlex.join(hub.command)
    log(f"starting the hub: {results['server_command']}")
    hub.start()
    audit: dict[str, AuditPhase] = {}
    entries_before = audit_count(store_db) if store_db else None
    try:
        results["server_rss_mib_start"] = process_rss_mib(hub.pid)
        token_response = httpx.post(
            f"{hub.base_url}/oauth/token",
            auth=(department["client_id"], department["client_secret"]),
            data={"grant_type": "client_credentials"},
            timeout=30,
        )
        token_response.raise_for_status()
        token = token_response.json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}
        private_body = {"query": private_query, "variables": {"uscc": subject}}
        public_body = {"query": public_query, "variables": {"uscc": subject}}

        with httpx.Client(base_url=hub.base_url, timeout=REQUEST_TIMEOUT) as client:
            # token endpoint (client_secret_basic): not part of the brief's list, cheap to show
            token_runs = min(50, args.requests)
            results["token_endpoint"] = sequential(
                client,
                lambda: client.post("/oauth/token", auth=(department["client_id"], department["client_secret"]),
                                    data={"grant_type": "client_credentials"}),
                warmup=3, runs=token_runs, hub_pid=hub.pid,
            )

            log("transport floor: GET /healthz")
            results["healthz"] = sequential(client, lambda: client.get("/healthz"), args.warmup, args.requests, hub.pid)

            log(f"a. profile on /graphql: {args.warmup} warm-up + {args.requests} sequential")
            audit["a_profile_graphql"] = phase = AuditPhase(args.warmup + args.requests)
            with audited(store_db, phase, probe_wal):
                results["a_profile_graphql"] = sequential(
                    client, lambda: client.post("/graphql", json=private_body, headers=auth), args.warmup, args.requests,
                    hub.pid,
                )

            log(f"b. profile on /public/graphql: {args.warmup} warm-up + {args.requests} sequential")
            audit["b_profile_public"] = phase = AuditPhase(args.warmup + args.requests)
            with audited(store_db, phase, probe_wal):
                results["b_profile_public"] = sequential(
                    client, lambda: client.post("/public/graphql", json=public_body), args.warmup, args.requests, hub.pid
                )

            log(f"c. legalPersons with {len(batch_codes)} codes: 1 warm-up + {args.batch_runs} runs")
            batch_body = {"query": batch_q, "variables": {"usccs": batch_codes}}
            audit["c_batch"] = phase = AuditPhase(1 + args.batch_runs)
            with audited(store_db, phase, probe_wal):
                batch = sequential(
                    client, lambda: client.post("/graphql", json=batch_body, headers=auth), 1, args.batch_runs, hub.pid
                )
                last = client.post("/graphql", json=batch_body, headers=auth)
                phase.requests += 1
            data = last.json().get("data") or {}
            people = data.get("legalPersons") or []
            batch["codes"] = len(batch_codes)
            batch["request_bytes"] = len(json.dumps(batch_body).encode())
            batch["subjects_found"] = sum(1 for p in people if p)
            batch["records"] = {
                name: sum(len(p.get(FAMILIES[name].graphql_field) or []) if FAMILIES[name].many
                          else int(p.get(FAMILIES[name].graphql_field) is not None) for p in people if p)
                for name in BATCH_FAMILIES
            }
            results["c_batch"] = batch

        results["d_throughput"] = []
        for concurrency in args.concurrency:
            log(f"d. throughput at concurrency {concurrency} for {args.duration:g} s")
            phase = AuditPhase(0)
            with audited(store_db, phase, probe_wal):
                run_ = asyncio.run(
                    throughput(hub.base_url, token, private_query, {"uscc": subject}, concurrency, args.duration, hub.pid)
                )
            phase.requests = run_["completed"] + run_["errors"]["transport"] + concurrency  # + the pool warm-up
            audit[f"d_throughput_c{concurrency}"] = phase
            results["d_throughput"].append(run_)
        results["server_rss_mib_end"] = process_rss_mib(hub.pid)
    finally:
        code = hub.stop()
        results["server_exit_code"] = code
        if code not in (0, None):
            log(f"the hub exited with {code}; last log lines:\n{hub.tail()}")

    log(f"e. direct connector fetches in-process: {args.warmup} warm-up + {args.requests} runs per shape")
    callers = {"graphql": (dept, private_selected), "public": (public, public_selected)}
    direct = asyncio.run(direct_overhead(connectors_path, data_dir, policy, callers, subject, args.warmup, args.requests))
    overhead: dict[str, Any] = {}
    floor = results["healthz"]["latency_ms"]["p50"]
    for endpoint, key in (("graphql", "a_profile_graphql"), ("public", "b_profile_public")):
        e2e = results[key]["latency_ms"]["p50"]
        fetch = direct[endpoint]["concurrent_ms"]["p50"]
        overhead[endpoint] = {
            "end_to_end_p50_ms": e2e,
            "direct_fetch_p50_ms": fetch,
            "direct_fetch_hub_shape_p50_ms": direct[endpoint]["hub_shape_ms"]["p50"],
            "direct_fetch_sequential_p50_ms": direct[endpoint]["sequential_ms"]["p50"],
            "overhead_p50_ms": e2e - fetch,
            "overhead_share": (e2e - fetch) / e2e if e2e else None,
            "http_floor_p50_ms": floor,
            "overhead_minus_http_floor_ms": e2e - fetch - floor,
        }
    results["e_direct_fetch"] = direct
    results["e_overhead"] = overhead

    if store_db is not None:
        total = audit_count(store_db) - (entries_before or 0)
        results["f_audit"] = {
            "store": "sqlite",
            "phases": {name: p.as_dict() for name, p in audit.items()},
            "entries_written_total": total,
            "graphql_requests_total": sum(p.requests for p in audit.values()),
            "avg_content_bytes": audit_content_bytes(store_db),
            "transactions_counted": probe_wal,
        }
    else:
        results["f_audit"] = {"store": "not sqlite: entries and transactions not counted"}

    if args.profile:
        log(f"profile: {args.requests} in-process requests through the ASGI app (stages), then cProfile")
        results["profile"] = asyncio.run(
            inprocess_profile(
                settings, department["client_id"], department["client_secret"],
                {"/graphql": private_query, "/public/graphql": public_query}, subject, args.requests,
            )
        )

    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2, default=str))
    else:
        print(render(results))
    return 0


# ---- the report ---------------------------------------------------------------------------
def _row(name: str, s: dict[str, float], extra: str = "", cpu: float | None = None) -> str:
    if not s.get("n"):
        return f"  {name:<34} (no samples)"
    cpu_text = "" if cpu is None else f"{cpu:>14.2f}"
    return (f"  {name:<34} {s['n']:>5} {s['p50']:>9.2f} {s['p95']:>9.2f} {s['p99']:>9.2f} "
            f"{s['mean']:>9.2f} {s['max']:>9.2f}{cpu_text}  {extra}")


def _seq(name: str, phase: dict[str, Any], extra: str) -> str:
    return _row(name, phase["latency_ms"], extra, phase.get("hub_cpu_ms_per_request"))


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        "Xinlian hub benchmark",
        f"  command        {r['command']}",
        f"  hub process    {r['server_command']}",
        f"  source         {r['source']['path']} at {r['source']['commit']}"
        + ("" if r["source"]["modified_files"] is None else f" ({r['source']['modified_files']} tracked files modified in the work tree)"),
        f"  machine        {m['nproc']} CPUs usable, {m['cpu_model']}; {m['implementation']} {m['python']}; {m['platform']}",
        "  packages       " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + f"; uvloop={m['uvloop']} httptools={m['httptools']}",
        f"  district       {r['district']['legal_persons']} legal + {r['district']['natural_persons']} natural persons"
        f" ({'reused' if r['district']['reused'] else 'built'} in {r['district']['build_s']:.1f} s)",
        f"  profile subject {r['subject']['uscc']} records {r['subject']['records_per_family']}",
        f"  demo services  {r.get('demo_services')}",
        "",
        "Sequential latency (ms)                   n       p50       p95       p99      mean       max  hub CPU ms/req  response",
        _seq("GET /healthz (HTTP floor)", r["healthz"], f"{r['healthz']['response_bytes']} B"),
        _seq("POST /oauth/token", r["token_endpoint"], f"{r['token_endpoint']['response_bytes']} B"),
        _seq("a. profile /graphql", r["a_profile_graphql"],
             f"{r['a_profile_graphql']['response_bytes']} B, errors {r['a_profile_graphql']['errors']}"),
        _seq("b. profile /public/graphql", r["b_profile_public"],
             f"{r['b_profile_public']['response_bytes']} B, errors {r['b_profile_public']['errors']}"),
        _seq(f"c. legalPersons x{r['c_batch']['codes']}", r["c_batch"],
             f"{r['c_batch']['response_bytes'] / 1024:.0f} KiB, errors {r['c_batch']['errors']}"),
        f"     batch: request {r['c_batch']['request_bytes'] / 1024:.1f} KiB, {r['c_batch']['subjects_found']} subjects found,"
        f" records {r['c_batch']['records']}",
        "  machine load during a/b/c (% of one CPU; other = neither hub nor bench):  "
        + "; ".join(
            f"{k[0]}: other {r[k]['load']['other_pct']:.0f}%, steal {r[k]['load']['steal_pct']:.0f}%"
            for k in ("a_profile_graphql", "b_profile_public", "c_batch")
        ),
        "",
        "d. Throughput, profile query on /graphql",
        "  conc  seconds  completed    req/s  errors    p50 ms    p99 ms  hub CPU%  hub CPU ms/req  client CPU%  other CPU%",
    ]
    for t in r["d_throughput"]:
        lat = t["latency_ms"]
        per = t["server_cpu_ms_per_request"]
        out.append(
            f"  {t['concurrency']:>4} {t['seconds']:>8.1f} {t['completed']:>10} {t['requests_per_s']:>8.1f} {t['error_count']:>7}"
            f" {lat.get('p50', 0):>9.1f} {lat.get('p99', 0):>9.1f} {t['server_cpu_pct']:>9.0f} {per if per is None else round(per, 2):>15}"
            f" {t['client_cpu_pct']:>12.0f} {t['load']['other_pct']:>11.0f}"
        )
    out += ["", "e. Hub overhead (like Apollo Router's overhead metric): end-to-end p50 minus direct connector fetch p50"]
    out.append("  endpoint   e2e p50   fetch p50 (concurrent / hub shape / sequential)   overhead   share   minus HTTP floor")
    for endpoint, o in r["e_overhead"].items():
        out.append(
            f"  {endpoint:<9} {o['end_to_end_p50_ms']:>8.2f}   {o['direct_fetch_p50_ms']:>8.2f} / {o['direct_fetch_hub_shape_p50_ms']:>6.2f} /"
            f" {o['direct_fetch_sequential_p50_ms']:>6.2f}                      {o['overhead_p50_ms']:>8.2f}   {100 * (o['overhead_share'] or 0):>4.0f}%"
            f"   {o['overhead_minus_http_floor_ms']:>8.2f}"
        )
    calls = r["e_direct_fetch"]["graphql"]["calls"]
    out.append(f"  connector calls per profile ({len(calls)}): {', '.join(calls)}")
    f = r["f_audit"]
    out += ["", "f. Audit trail"]
    if "phases" in f:
        out.append("  phase                      requests   entries   transactions   entries/transaction")
        for name, p in f["phases"].items():
            per = p["entries_per_transaction"]
            out.append(
                f"  {name:<26} {p['requests']:>8} {p['entries'] if p['entries'] is not None else '-':>9}"
                f" {p['transactions'] if p['transactions'] is not None else '-':>14} {'-' if per is None else f'{per:.2f}':>21}"
            )
        out.append(
            f"  total entries written {f['entries_written_total']} for {f['graphql_requests_total']} GraphQL requests;"
            f" average entry content {f['avg_content_bytes'] or 0:.0f} bytes"
        )
    else:
        out.append(f"  {f['store']}")
    if "profile" in r:
        p = r["profile"]
        for path, e in p["endpoints"].items():
            out += ["", f"In-process stages of the profile query on {path} (ASGI app, no HTTP server; p50 of {p['runs']} requests, ms)"]
            out.append(_row("ASGI client round trip", e["asgi_client_total_ms"]))
            for name, value in e["stage_p50_ms"].items():
                out.append(f"  {name:<45} {value:>8.2f}")
            if e.get("pyinstrument_categories"):
                out.append(f"  where the event-loop thread's time goes (pyinstrument samples, {path}):")
                for name, c in e["pyinstrument_categories"].items():
                    out.append(f"    {name:<52} {100 * c['share']:>5.1f}%   ({c['ms_per_request']:.1f} ms/req under the profiler)")
        e = p["endpoints"].get("/graphql")
        if e:
            out += ["", f"cProfile of {p['runs']} in-process requests on /graphql, by own time (see --json for more):",
                    "\n".join(e["cprofile_tottime_top25"].splitlines()[:30])]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
