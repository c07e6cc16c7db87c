"""Department-call latency of the demo's SQL connectors against the GraphQL path (issue 10's target).

The target: "the same profile over the demo's SQL connectors (SQLite, PostgreSQL, MariaDB) no
slower per department call than the GraphQL path". One command, loopback only, every process it
starts stopped in a `finally` (also on errors, SIGINT, SIGTERM), the scratch databases dropped and
the run directory removed afterwards (unless `--keep`):

1. builds the demo district (`build_demo_district`, `--subjects` legal persons as in hub_bench.py,
   default 2,000), creates the demo clients and starts the demo court's REST service
   (bench/demo_services.py), then picks the profile subject as hub_bench.py does (the registered
   company with records in the most families) and builds the same profile query (every family,
   every field a `department` client may receive);
2. copies that data directory once per configuration and changes only what the configuration is
   about, as `xinlian demo --market-url/--tax-url` does (`publish_department` + `point_connector`,
   hub/demo/remote.py):
   * `sqlite`: the demo as shipped (market, tax, environment on SQLite files; courts REST; hr a
     file drop);
   * `postgresql`: market published to a scratch database on 127.0.0.1:5432 (`--postgres-url`,
     user postgres, trust) and its connector pointed there;
   * `mariadb`: tax published to a scratch database on 127.0.0.1:3306 (`--mariadb-url`, root,
     empty password) and its connector pointed there;
   * `graphql`: tax served by GraphQL instead: two of bench/peers.py's Node subgraphs
     (bench/peers/subgraph.mjs `tax` for tax_credit, `penalties` for the tax bureau's penalties;
     graphql-jit behind node:http, Node packages installed by peers.py's `ensure_node_modules`
     into bench/peers/.work) loaded with the tax bureau's records as the SQL connector returns
     them, and two `kind = "graphql"` connectors in list mode (`tax`, `tax_penalties`: the
     connector form bench/peers.py's Xinlian uses, the same batch_size and timeout as the SQL
     one, the same fields).
   The market and tax configurations are separate runs (not one run with both, as the demo
   allows) so that each differs from `sqlite` in one department; the connectors that did not move
   are a control: their figures should match across configurations.
3. starts one `xinlian serve` (a real uvicorn process) per configuration, all at once, each on its
   own copy (`XINLIAN_MONITORING_ADDRESSES=127.0.0.1/32` so this script may read /metrics, rate
   limits off as in hub_bench.py / peers.py, `XINLIAN_CONNECTORS`/`_DATABASE_URL`/... of the
   caller's environment cleared), gets a `department` token from each, and checks that every hub
   answers the profile with the same data (decimals and list order normalised; exit status 3 if
   not);
4. measures, for `--rounds` rounds with the configurations' order rotated each round:
   * concurrency 1: `--warmup` untimed requests, then `--requests` sequential requests;
   * concurrency `--concurrency` (8): a closed loop of that many keep-alive connections, first
     `--c8-warmup` seconds untimed, then `--duration` seconds (requests in flight at the deadline
     are awaited and counted);
   around each timed window it reads the hub's `/metrics` and takes the difference of
   `xinlian_department_call_duration_seconds{connector,outcome}` (one observation per attempt
   that reached the department, timed in `DepartmentLink._attempt` from after the bulkhead slot
   is taken to the connector's answer: query + rows + mapping, or HTTP round trip + JSON + mapping;
   at concurrency 8 it includes the time the call waits for the hub's busy event loop): per
   connector the calls, the mean (exact: `_sum` / `_count`) and an approximate p50 (linear
   interpolation inside the histogram's buckets, 0.5 / 1 / 2.5 / 5 / 10 ms ..., as Prometheus'
   `histogram_quantile`: read it as "which bucket", not to the tenth of a millisecond), calls per
   request; the hub's CPU per request (utime + stime of its process tree from /proc); the CPU of
   the department's server per request where it is a separate process (PostgreSQL's and
   MariaDB's processes: all of them, so anything else using the server shows up here too; the
   Node subgraphs; the court service); the subgraphs' own handling time per call (their GET
   /stats); the connections the database server accepted (PostgreSQL: sessions of the scratch
   database; MariaDB: its global `Connections` counter), which shows connection-pool churn; and
   the CPU used meanwhile by processes this run did not start ("other", in % of a core: noise
   from other users of the machine);
5. then, with the hubs idle, makes the profile's SQL and GraphQL department calls "alone": in this
   process, through a fresh copy of each configuration's connectors (no hub, no resilience link),
   one call at a time (`hub_bench.fetch_plan`: the families and fields the hub asks for), timing
   each and counting the event-loop turns it needs (`LoopTurns`). This separates the engine's own
   per-call cost from the time a call waits in the hub: inside the hub a request's ~13 department
   calls run concurrently on one event loop, so even at concurrency 1 a call's time includes
   handling the others, and at concurrency 8 every loop turn is long — a call needing more turns
   (round trips) waits proportionally longer.

Why the GraphQL path is measured here and not by bench/peers.py: the same hub, district,
subject, query, policy, audit trail and load generator, only the tax bureau's connector kind
changed, so the per-call figures of the four kinds are measured the same way in one run and the
ratios need no second benchmark. The GraphQL connector's calls go to the same Node subgraph code
(`subgraph.mjs`, 30-40 µs of handling per call) and in the same form as in bench/peers.py. One
difference in work: the subgraph's `taxCredit` is one record (the newest rating) where the SQL
table holds every year's (about 2.4 rows per company, the hub keeps the newest).

Ratios "÷ graphql" divide a row's per-call mean (and p50) by the pooled per-call mean (p50) of the
GraphQL connectors in the `graphql` configuration at the same concurrency: below 1.00x means that
kind of call is faster than a GraphQL connector's call. The "same department" table compares the
tax bureau on SQLite, MariaDB and GraphQL, and the market on SQLite and PostgreSQL: the same
calls with the same rows, only the engine differs.

Run from the repository root (progress on stderr, the report on stdout):

    python bench/sql_paths.py                 # 3 rounds, 300 sequential requests + 10 s at concurrency 8 per configuration
    python bench/sql_paths.py --quick         # smoke run, about a minute
    python bench/sql_paths.py --json > sql_paths.json
    python bench/sql_paths.py --configs sqlite,mariadb,graphql --rounds 5

Exit status: 0 done, 2 a setup step failed (the run directory with the logs is kept), 3 the
hubs' answers differ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_services  # noqa: E402  (bench/demo_services.py)
import hub_bench as hb  # noqa: E402  (bench/hub_bench.py)
import peers  # noqa: E402  (bench/peers.py)

CONFIGS = ("sqlite", "postgresql", "mariadb", "graphql")
KINDS = ("sqlite", "postgresql", "mariadb", "graphql", "rest", "filedrop")
SQL_KINDS = ("sqlite", "postgresql", "mariadb")
METRIC = "xinlian_department_call_duration_seconds"
MONITORING = "127.0.0.1/32"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
REQUEST_TIMEOUT = 60.0
PASSWORD_ENV = {"postgresql": "XINLIAN_BENCH_PG_PASSWORD", "mariadb": "XINLIAN_BENCH_MARIADB_PASSWORD"}
# the graphql configuration: the tax bureau's families, each from one bench/peers subgraph
GRAPHQL_TAX = (  # connector name, family, subgraph, root field, records field
    ("tax", "tax_credit", "tax", "taxCredits", "taxCredit"),
    ("tax_penalties", "penalties", "penalties", "penaltyRecords", "penalties"),
)
SERVER_COMMS = {"postgresql": ("postgres",), "mariadb": ("mariadbd", "mysqld")}


def log(message: str) -> None:
    print(f"[sql_paths {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class SetupError(RuntimeError):
    """A step before the measurements failed (exit status 2)."""


class AnswersDiffer(RuntimeError):
    """The hubs do not return the same profile (exit status 3)."""


# ---- the histogram ------------------------------------------------------------------------
@dataclass
class Calls:
    """Department calls of one connector (all outcomes): count, seconds, cumulative buckets."""

    count: float = 0.0
    seconds: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (s) → cumulative count
    outcomes: dict[str, float] = field(default_factory=dict)

    def __add__(self, other: "Calls") -> "Calls":
        return Calls(
            self.count + other.count, self.seconds + other.seconds,
            {b: self.buckets.get(b, 0.0) + other.buckets.get(b, 0.0) for b in set(self.buckets) | set(other.buckets)},
            {o: self.outcomes.get(o, 0.0) + other.outcomes.get(o, 0.0) for o in set(self.outcomes) | set(other.outcomes)},
        )

    def __sub__(self, other: "Calls") -> "Calls":
        return Calls(
            self.count - other.count, self.seconds - other.seconds,
            {b: v - other.buckets.get(b, 0.0) for b, v in self.buckets.items()},
            {o: v - other.outcomes.get(o, 0.0) for o, v in self.outcomes.items()},
        )

    def mean_ms(self) -> float | None:
        return 1000.0 * self.seconds / self.count if self.count > 0 else None

    def quantile_ms(self, q: float) -> float | None:
        """Approximate quantile from the buckets (linear inside a bucket, as histogram_quantile)."""
        total = self.buckets.get(math.inf, self.count)
        if total <= 0:
            return None
        rank, lower, below = q * total, 0.0, 0.0
        for bound in sorted(self.buckets):
            cumulative = self.buckets[bound]
            if cumulative >= rank:
                if math.isinf(bound):
                    return 1000.0 * lower  # beyond the last finite bucket: its bound, as Prometheus does
                if cumulative == below:
                    return 1000.0 * bound
                return 1000.0 * (lower + (bound - lower) * (rank - below) / (cumulative - below))
            lower, below = bound, cumulative
        return None

    def shares(self) -> dict[str, float]:
        """Share of the calls at or under each finite bucket bound (ms as text)."""
        if self.count <= 0:
            return {}
        return {f"{1000 * b:g}": v / self.count for b, v in sorted(self.buckets.items()) if not math.isinf(b) and b <= 0.1}

    def as_dict(self, requests: int) -> dict[str, Any]:
        return {
            "calls": int(round(self.count)),
            "calls_per_request": self.count / requests if requests else None,
            "mean_ms": self.mean_ms(),
            "p50_ms_approx": self.quantile_ms(0.5),
            "p90_ms_approx": self.quantile_ms(0.9),
            "share_at_or_under_ms": self.shares(),
            "outcomes": {k: int(round(v)) for k, v in sorted(self.outcomes.items()) if v},
        }


def parse_metrics(text: str) -> dict[str, Calls]:
    """connector → its `xinlian_department_call_duration_seconds` figures, summed over outcomes."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Calls] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            connector = sample.labels.get("connector")
            if connector is None:
                continue
            calls = out.setdefault(connector, Calls())
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                calls.buckets[bound] = calls.buckets.get(bound, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                calls.count += sample.value
                outcome = sample.labels.get("outcome", "?")
                calls.outcomes[outcome] = calls.outcomes.get(outcome, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                calls.seconds += sample.value
    return out


def difference(after: dict[str, Calls], before: dict[str, Calls]) -> dict[str, Calls]:
    return {name: calls - before.get(name, Calls()) for name, calls in after.items()}


# ---- CPU ------------------------------------------------------------------------------------
def comm_pids(names: Sequence[str]) -> list[int]:
    """Processes whose command name (/proc/PID/comm) is one of `names` (database servers)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip() in names:
                    out.append(int(entry))
    return out


def machine_busy_s() -> float:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    steal = values[7] if len(values) > 7 else 0
    return (sum(values[:8]) - idle - steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Cpu:
    """CPU seconds of the hub, the department servers, this script and the machine, at one moment."""

    at: float
    hub: float
    servers: dict[str, float]
    me: float
    machine: float

    @classmethod
    def sample(cls, hub_pid: int, servers: dict[str, list[int]]) -> "Cpu":
        return cls(
            time.perf_counter(), hb.process_cpu_seconds(hub_pid),
            {name: peers.cpu_seconds(pids) for name, pids in servers.items()},
            time.process_time(), machine_busy_s(),
        )

    def since(self, start: "Cpu", requests: int) -> dict[str, Any]:
        wall = max(self.at - start.at, 1e-9)
        hub, me = self.hub - start.hub, self.me - start.me
        servers = {name: self.servers[name] - start.servers.get(name, 0.0) for name in self.servers}
        other = (self.machine - start.machine) - hub - me - sum(servers.values())

        def per(seconds: float) -> float | None:
            return 1000.0 * seconds / requests if requests else None

        return {
            "hub_cpu_ms_per_request": per(hub),
            "server_cpu_ms_per_request": {name: per(s) for name, s in servers.items()},
            "hub_cpu_pct": 100.0 * hub / wall,
            "bench_cpu_pct": 100.0 * me / wall,
            "other_cpu_pct": max(0.0, 100.0 * other / wall),
        }


# ---- configurations -------------------------------------------------------------------------
@dataclass
class Config:
    name: str
    data_dir: Path
    connectors: dict[str, dict[str, str]] = field(default_factory=dict)  # name → kind, department
    moved: str = ""  # what differs from the demo as shipped
    base_url: str = ""
    hub: peers.Started | None = None
    servers: dict[str, list[int]] = field(default_factory=dict)  # what to count as department-server CPU
    stats_urls: list[str] = field(default_factory=list)  # the subgraphs' GET /stats
    env: dict[str, str] = field(default_factory=dict)
    token: str = ""
    server: tuple[str, str, str] | None = None  # (kind, admin URL, scratch database): connections opened


def connector_kinds(path: Path) -> dict[str, dict[str, str]]:
    """connector name → {"kind": sqlite|postgresql|mariadb|graphql|rest|filedrop, "department": ...}."""
    from sqlalchemy.engine import make_url

    out = {}
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("connector", []):
        kind = str(entry.get("kind"))
        if kind == "sql":
            backend = make_url(str(entry["url"]).replace("{password}", "x")).get_backend_name()
            kind = {"mysql": "mariadb"}.get(backend, backend)
        out[str(entry["name"])] = {"kind": kind, "department": str(entry.get("department", ""))}
    return out


def server_url(admin_url: str, database: str, option: str) -> tuple[str, str | None]:
    """(connector URL of `database` on the admin URL's server, with `{password}` if it has one; the password)."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    if url.host not in LOOPBACK:
        raise SetupError(f"{option}: {url.host!r} is not a loopback address (this benchmark stays on loopback)")
    password = url.password
    user = quote(url.username or "", safe="") + (":{password}" if password else "")
    port = f":{url.port}" if url.port else ""
    query = "?" + "&".join(f"{k}={v}" for k, v in url.query.items()) if url.query else ""
    return f"{url.drivername}://{user}@{url.host}{port}/{database}{query}", (str(password) if password else None)


async def server_admin(admin_url: str, statement: str) -> None:
    """Run one statement on the server of `admin_url` outside a transaction (CREATE/DROP DATABASE)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = make_url(admin_url)
    if url.get_backend_name() == "postgresql" and not url.database:
        url = url.set(database="postgres")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def connections_counter(server: tuple[str, str, str] | None) -> int | None:
    """Connections the server has accepted so far: PostgreSQL `pg_stat_database.sessions` of the
    scratch database (flushed by backends about once a second: approximate over a short window);
    MariaDB's global `Connections` status (every client of the server, this query's own included)."""
    if server is None:
        return None
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    kind, admin_url, database = server
    url = make_url(admin_url)
    if kind == "postgresql" and not url.database:
        url = url.set(database="postgres")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if kind == "postgresql":
                row = (await conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = :d"),
                                          {"d": database})).first()
            else:
                row = (await conn.execute(text("SHOW GLOBAL STATUS LIKE 'Connections'"))).first()
    except Exception:  # a diagnostic: never fail the run for it
        return None
    finally:
        await engine.dispose()
    if row is None:
        return None
    value = int(row[-1])
    return value - 1 if kind == "mariadb" else value  # not counting this query's own connection


def opened(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before


@dataclass
class Scratch:
    """A scratch database this run created on a server (dropped in the `finally`)."""

    kind: str
    admin_url: str
    name: str

    def drop(self) -> None:
        statement = (f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)' if self.kind == "postgresql"
                     else f"DROP DATABASE IF EXISTS `{self.name}`")
        try:
            asyncio.run(server_admin(self.admin_url, statement))
            log(f"dropped the scratch database {self.name} ({self.kind})")
        except Exception as exc:  # report, go on cleaning up
            log(f"could not drop the scratch database {self.name} on {self.kind}: {type(exc).__name__}: {exc}")


def publish(config: Config, department: str, kind: str, admin_url: str, option: str, scratch: list[Scratch]) -> None:
    """Create a scratch database, publish the department into it, point its connector there."""
    from xinlian.hub.demo.remote import point_connector, publish_department

    name = f"xinlian_bench_{uuid.uuid4().hex[:10]}"
    url, password = server_url(admin_url, name, option)
    create = (f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0" if kind == "postgresql"
              else f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    asyncio.run(server_admin(admin_url, create))
    scratch.append(Scratch(kind, admin_url, name))
    config.server = (kind, admin_url, name)
    t0 = time.perf_counter()
    asyncio.run(publish_department(config.data_dir, department, url, password=password))
    env_name = PASSWORD_ENV[kind] if password else None
    if env_name and password:
        os.environ[env_name] = password  # point_connector loads the connectors, which read it
        config.env[env_name] = password
    point_connector(config.data_dir / "connectors.toml", department, url, env_name, data_dir=config.data_dir)
    log(f"{config.name}: {department} published to {kind} database {name} in {time.perf_counter() - t0:.1f} s")


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


async def export_tax(data_dir: Path) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The tax bureau's records as its SQL connector returns them, in bench/peers' data.json form
    (GraphQL field names; `taxCredit` the newest rating), and the fields the connector provides."""
    import sqlite3

    from xinlian.connectors.registry import load_connectors
    from xinlian.schema.catalogue import FAMILIES

    connectors = load_connectors(data_dir / "connectors.toml", data_dir)
    try:
        tax = next(c for c in connectors if c.name == "tax")
        provided = {family: sorted(tax.provides(family)) for family in ("tax_credit", "penalties")}
        companies: dict[str, dict[str, Any]] = {}
        conn = sqlite3.connect(f"file:{data_dir / 'departments' / 'tax.db'}?mode=ro", uri=True)
        try:
            for family, fields in provided.items():
                mapping = tax.mappings[family]  # type: ignore[attr-defined]
                keys = [str(r[0]).strip() for r in conn.execute(f'SELECT DISTINCT "{mapping.key}" FROM "{mapping.table}"')]
                found = await tax.fetch(family, keys, fields)
                spec = FAMILIES[family]
                for key, records in found.items():
                    if not isinstance(records, list) or not records:
                        continue
                    rows = [{spec.field(n).graphql_name: json_value(r.get(n)) for n in fields} for r in records]
                    company = companies.setdefault(key, {"uscc": key})
                    if spec.many:
                        company[spec.graphql_field] = rows
                    else:
                        recency = spec.recency or fields[0]
                        newest = max(range(len(records)), key=lambda i: (records[i].get(recency) is not None,
                                                                        records[i].get(recency) or 0))
                        company[spec.graphql_field] = rows[newest]
        finally:
            conn.close()
    finally:
        for connector in connectors:
            await connector.close()
    return {"companies": list(companies.values())}, provided


def graphql_blocks(department: str, ports: dict[str, int], provided: dict[str, list[str]]) -> str:
    from xinlian.schema.catalogue import FAMILIES

    lines = ["# Written by bench/sql_paths.py: the tax bureau served by GraphQL (bench/peers subgraphs), list mode."]
    for name, family, subgraph, root, records in GRAPHQL_TAX:
        spec = FAMILIES[family]
        lines += [
            "[[connector]]", f'name = "{name}"', 'kind = "graphql"', f'department = "{department}"',
            f'endpoint = "http://127.0.0.1:{ports[subgraph]}/graphql"', "batch_size = 200", "timeout = 3.0", "",
            f"[connector.families.{family}]", f'table = "{root}"', 'key = "uscc"', "",
            f"[connector.families.{family}.fields]", *(f'{n} = "{spec.field(n).graphql_name}"' for n in provided[family]), "",
            f"[connector.graphql.{family}]", 'argument = "usccs"', f'records = "{records}"', "",
        ]
    return "\n".join(lines) + "\n"


def replace_connector(path: Path, name: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    block = re.search(rf'(?ms)^\[\[connector\]\]\s*\nname = "{re.escape(name)}"\n.*?(?=^\[\[connector\]\]|^# -{{5,}}|\Z)', text)
    if block is None:
        raise SetupError(f"{path}: no [[connector]] named {name!r}")
    path.write_text(text[: block.start()] + replacement + "\n" + text[block.end() :], encoding="utf-8")


async def check_connectors(data_dir: Path) -> None:
    from xinlian.connectors.registry import load_connectors

    for connector in load_connectors(data_dir / "connectors.toml", data_dir):
        await connector.close()


def setup_graphql(config: Config, procs: peers.Processes, scratch_dir: Path, run_dir: Path) -> None:
    node = peers.node_binary()
    peers.ensure_node_modules(scratch_dir)
    data, provided = asyncio.run(export_tax(config.data_dir))
    path = run_dir / "tax-data.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "NODE_ENV": "production"}
    ports: dict[str, int] = {}
    for _, _, subgraph, _, _ in GRAPHQL_TAX:
        item = procs.start(f"subgraph-{subgraph}", [node, "subgraph.mjs", subgraph, str(path)], core=None, cwd=scratch_dir,
                           env=env)
        ports[subgraph] = int(procs.ready_line(item, "port")["port"])
        config.servers.setdefault("node subgraphs", []).append(item.pid)
        config.stats_urls.append(f"http://127.0.0.1:{ports[subgraph]}/stats")
    department = connector_kinds(config.data_dir / "connectors.toml")["tax"]["department"]
    replace_connector(config.data_dir / "connectors.toml", "tax", graphql_blocks(department, ports, provided))
    asyncio.run(check_connectors(config.data_dir))
    log(f"graphql: tax served by subgraphs {', '.join(f'{k} :{v}' for k, v in ports.items())}"
        f" ({len(data['companies'])} taxpayers)")


# ---- the hubs -------------------------------------------------------------------------------
def hub_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in peers.XINLIAN_CLEARED} | peers.XINLIAN_ENV
    return env | {"XINLIAN_MONITORING_ADDRESSES": MONITORING} | extra


def start_hub(config: Config, procs: peers.Processes) -> None:
    port = peers.free_port()
    command = [*peers.xinlian_command(), "serve", "--data-dir", str(config.data_dir), "--host", "127.0.0.1",
               "--port", str(port)]
    config.hub = procs.start(f"hub-{config.name}", command, core=None, cwd=config.data_dir, env=hub_env(config.env),
                             graceful=signal.SIGINT)
    config.base_url = f"http://127.0.0.1:{port}"


def token(config: Config, client: dict[str, Any]) -> str:
    response = httpx.post(f"{config.base_url}/oauth/token", auth=(client["client_id"], client["client_secret"]),
                          data={"grant_type": "client_credentials"}, timeout=30)
    if response.status_code != 200:
        raise SetupError(f"{config.name}: the hub refused the token request: {response.status_code} {response.text[:300]}")
    config.token = str(response.json()["access_token"])
    return config.token


def canonical(value: Any) -> Any:
    """An answer in a comparable form: numbers as canonical decimal text, lists sorted."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(Decimal(str(value)).normalize(), "f")
    return value


def check_answers(configs: Sequence[Config], body: dict[str, Any]) -> dict[str, Any]:
    reference: tuple[str, Any] | None = None
    sizes = {}
    for config in configs:
        response = httpx.post(f"{config.base_url}/graphql", json=body, timeout=REQUEST_TIMEOUT,
                              headers={"authorization": f"Bearer {config.token}"})
        answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or answer.get("errors") or not (answer.get("data") or {}).get("legalPerson"):
            raise AnswersDiffer(f"{config.name}: {response.status_code} {response.text[:600]}")
        sizes[config.name] = len(response.content)
        data = canonical(answer["data"])
        if reference is None:
            reference = (config.name, data)
        else:
            gap = peers.first_difference(data, reference[1])
            if gap:
                raise AnswersDiffer(f"{config.name} differs from {reference[0]} at {gap}")
    return {"equal": True, "reference": reference[0] if reference else None, "response_bytes": sizes}


# ---- measuring ------------------------------------------------------------------------------
def clean(response: httpx.Response) -> bool:
    return response.status_code == 200 and b'"errors"' not in response.content


def subgraph_stats(urls: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for url in urls:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            out.append(httpx.get(url, timeout=10).json())
    return out


def phase_result(
    config: Config, concurrency: int, requests: int, errors: int, seconds: float, latencies: list[float],
    before: dict[str, Calls], after: dict[str, Calls], cpu0: Cpu, cpu1: Cpu, stats: list[dict[str, Any]],
    connections: int | None,
) -> dict[str, Any]:
    calls = difference(after, before)
    return {
        "config": config.name, "concurrency": concurrency, "requests": requests, "errors": errors, "seconds": seconds,
        "requests_per_s": requests / seconds if seconds else None, "latency_ms": hb.summary(latencies),
        "calls": calls, "cpu": cpu1.since(cpu0, requests), "subgraph_stats": stats,
        "server_connections_opened": connections,
    }


def measure_c1(config: Config, body: dict[str, Any], warmup: int, runs: int) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {config.token}"}
    with httpx.Client(base_url=config.base_url, timeout=REQUEST_TIMEOUT) as client:
        for _ in range(warmup):
            client.post("/graphql", json=body, headers=headers)
        subgraph_stats(config.stats_urls)  # resets their counters
        connections0 = asyncio.run(connections_counter(config.server))
        before = parse_metrics(client.get("/metrics").text)
        assert config.hub is not None
        cpu0 = Cpu.sample(config.hub.pid, config.servers)
        latencies, errors = [], 0
        started = time.perf_counter()
        for _ in range(runs):
            t0 = time.perf_counter()
            response = client.post("/graphql", json=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            errors += not clean(response)
        seconds = time.perf_counter() - started
        cpu1 = Cpu.sample(config.hub.pid, config.servers)
        stats = subgraph_stats(config.stats_urls)
        after = parse_metrics(client.get("/metrics").text)
    time.sleep(1.2 if config.server else 0)  # PostgreSQL backends flush their session counts about once a second
    connections = opened(connections0, asyncio.run(connections_counter(config.server)))
    return phase_result(config, 1, runs, errors, seconds, latencies, before, after, cpu0, cpu1, stats, connections)


async def closed_loop(client: httpx.AsyncClient, body: dict[str, Any], concurrency: int, seconds: float,
                      latencies: list[float]) -> int:
    """`concurrency` workers posting one after another until `seconds` have passed; returns errors."""
    deadline = time.perf_counter() + seconds
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                response = await client.post("/graphql", json=body)
            except httpx.HTTPError:
                errors += 1
                await asyncio.sleep(0.005)
                continue
            latencies.append(time.perf_counter() - t0)
            errors += not clean(response)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


async def measure_cn(config: Config, body: dict[str, Any], concurrency: int, warmup: float, duration: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"authorization": f"Bearer {config.token}"}
    assert config.hub is not None
    async with httpx.AsyncClient(base_url=config.base_url, headers=headers, limits=limits,
                                 timeout=REQUEST_TIMEOUT) as client:
        if warmup > 0:
            await closed_loop(client, body, concurrency, warmup, [])
        await asyncio.to_thread(subgraph_stats, config.stats_urls)
        connections0 = await connections_counter(config.server)
        before = parse_metrics((await client.get("/metrics")).text)
        cpu0 = Cpu.sample(config.hub.pid, config.servers)
        latencies: list[float] = []
        started = time.perf_counter()
        errors = await closed_loop(client, body, concurrency, duration, latencies)
        seconds = time.perf_counter() - started
        cpu1 = Cpu.sample(config.hub.pid, config.servers)
        stats = await asyncio.to_thread(subgraph_stats, config.stats_urls)
        after = parse_metrics((await client.get("/metrics")).text)
    await asyncio.sleep(1.2 if config.server else 0)
    connections = opened(connections0, await connections_counter(config.server))
    return phase_result(config, concurrency, len(latencies), errors, seconds, latencies, before, after, cpu0, cpu1, stats,
                        connections)


def alive(config: Config) -> None:
    if config.hub is None or config.hub.process.poll() is not None:
        code = None if config.hub is None else config.hub.process.returncode
        raise SetupError(f"the {config.name} hub exited ({code}):\n{config.hub.tail() if config.hub else ''}")


class LoopTurns:
    """Counts the running event loop's turns (calls of its selector's `select`) while active.

    A call that needs more turns waits longer in a busy hub: every turn, the loop first runs the
    callbacks of everything else that became ready (the other calls of the request, the other
    requests). A thread hop (SQLite) takes 2, a keep-alive HTTP round trip 2-4, a round trip to a
    database through SQLAlchemy's async layer more (its pre-ping, BEGIN, statement, ROLLBACK).
    Uses asyncio's private `_selector`; without one the count is None."""

    def __init__(self) -> None:
        self.count = 0
        self.active = False
        self._selector: Any = None
        self._select: Any = None

    def __enter__(self) -> "LoopTurns":
        selector = getattr(asyncio.get_running_loop(), "_selector", None)
        if selector is not None and hasattr(selector, "select"):
            self._selector, self._select = selector, selector.select

            def select(timeout: float | None = None) -> Any:
                self.count += 1
                return self._select(timeout)

            selector.select = select
            self.active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._selector is not None:
            self._selector.select = self._select
        self.active = False


@dataclass
class Profile:
    """The profile request and what the direct calls need to make the hub's calls themselves."""

    body: dict[str, Any]
    client: dict[str, Any]
    policy: Any
    principal: Any
    selected: dict[str, list[str]]
    subject: str


async def direct_calls(config: Config, profile: Profile, warmup: int, runs: int) -> dict[str, Any]:
    """The profile's calls to the SQL and GraphQL departments made alone: in this process, through a
    fresh copy of the configuration's connectors (no hub, no DepartmentLink), one call at a time,
    `warmup` untimed and `runs` timed per call (hub_bench.fetch_plan: the hub's families and fields).
    The engine's own per-call latency, without the hub's other concurrent calls and event loop."""
    from xinlian.connectors.registry import load_connectors

    connectors = load_connectors(config.data_dir / "connectors.toml", config.data_dir)
    samples: dict[str, list[float]] = {}
    families: dict[str, dict[str, Any]] = {}
    turns: dict[str, list[float]] = {}
    with LoopTurns() as counter:
        try:
            for call in hb.fetch_plan(connectors, profile.policy, profile.principal, profile.selected):
                name = call.connector.name
                if config.connectors[name]["kind"] not in SQL_KINDS + ("graphql",):
                    continue
                for _ in range(warmup):
                    await call.connector.fetch(call.family, [profile.subject], call.fields)
                mine = []
                counted = counter.count
                for _ in range(runs):
                    t0 = time.perf_counter()
                    await call.connector.fetch(call.family, [profile.subject], call.fields)
                    mine.append(time.perf_counter() - t0)
                samples.setdefault(name, []).extend(mine)
                per_call = (counter.count - counted) / runs if counter.active else None
                families.setdefault(name, {})[call.family] = hb.summary(mine) | {"loop_turns_per_call": per_call}
                if per_call is not None:
                    turns.setdefault(name, []).append(per_call)
        finally:
            for connector in connectors:
                await connector.close()

    def pool(by: str) -> dict[str, Any]:
        groups: dict[str, list[float]] = {}
        counts: dict[str, list[float]] = {}
        for name, values in samples.items():
            groups.setdefault(config.connectors[name][by], []).extend(values)
            counts.setdefault(config.connectors[name][by], []).extend(turns.get(name, []))
        return {k: hb.summary(v) | {"loop_turns_per_call": statistics.fmean(counts[k]) if counts[k] else None}
                for k, v in groups.items()}

    return {
        "connectors": {n: hb.summary(v) | {"families": families[n],
                                           "loop_turns_per_call": statistics.fmean(turns[n]) if turns.get(n) else None}
                       for n, v in samples.items()},
        "kinds": pool("kind"),
        "departments": pool("department"),
    }


# ---- summarising ----------------------------------------------------------------------------
def pooled(phases: Sequence[dict[str, Any]], names: Sequence[str]) -> Calls:
    total = Calls()
    for p in phases:
        for name in names:
            total = total + p["calls"].get(name, Calls())
    return total


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(configs: Sequence[Config], phases: Sequence[dict[str, Any]], concurrencies: Sequence[int]) -> dict[str, Any]:
    """Per configuration × concurrency: per connector, per kind and per department, rounds pooled."""
    out: dict[str, Any] = {}
    for config in configs:
        per_conc: dict[str, Any] = {}
        for c in concurrencies:
            mine = [p for p in phases if p["config"] == config.name and p["concurrency"] == c]
            if not mine:
                continue
            requests = sum(p["requests"] for p in mine)
            seconds = sum(p["seconds"] for p in mine)

            def group(by: str) -> dict[str, Any]:
                keys = sorted({info[by] for info in config.connectors.values()})
                return {k: pooled(mine, [n for n, info in config.connectors.items() if info[by] == k]).as_dict(requests)
                        for k in keys}

            cpu = [p["cpu"] for p in mine]
            server_names = sorted({n for x in cpu for n in x["server_cpu_ms_per_request"]})
            stats = [s for p in mine for s in p["subgraph_stats"] if s.get("count")]
            per_conc[str(c)] = {
                "requests": requests,
                "errors": sum(p["errors"] for p in mine),
                "requests_per_s": requests / seconds if seconds else None,
                "latency_p50_ms": median(p["latency_ms"].get("p50") for p in mine),
                "hub_cpu_ms_per_request": median(x["hub_cpu_ms_per_request"] for x in cpu),
                "server_cpu_ms_per_request": {n: median(x["server_cpu_ms_per_request"].get(n) for x in cpu) for n in server_names},
                "other_cpu_pct_max": max(x["other_cpu_pct"] for x in cpu),
                "server_connections_opened_per_request": (
                    sum(p["server_connections_opened"] for p in mine) / requests
                    if requests and all(p["server_connections_opened"] is not None for p in mine) else None
                ),
                "connectors": {n: pooled(mine, [n]).as_dict(requests) | config.connectors[n] for n in config.connectors},
                "kinds": group("kind"),
                "departments": group("department"),
                "subgraph_handling_us": {
                    "calls": sum(s["count"] for s in stats),
                    "mean_us": (sum(s["mean_us"] * s["count"] for s in stats) / sum(s["count"] for s in stats))
                    if stats else None,
                },
                "rounds": [
                    {"requests": p["requests"], "latency_p50_ms": p["latency_ms"].get("p50"),
                     "hub_cpu_ms_per_request": p["cpu"]["hub_cpu_ms_per_request"], "other_cpu_pct": p["cpu"]["other_cpu_pct"],
                     "mean_ms": {n: calls.mean_ms() for n, calls in p["calls"].items()}}
                    for p in mine
                ],
            }
        out[config.name] = per_conc
    return out


def graphql_reference(summary: dict[str, Any], c: int) -> dict[str, Any] | None:
    return summary.get("graphql", {}).get(str(c), {}).get("kinds", {}).get("graphql")


# ---- the report -----------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def render(results: dict[str, Any]) -> str:
    s, o, direct = results["summary"], results["options"], results["direct"]
    hi = o["concurrency"]
    concs = [1, hi]
    m = results["machine"]
    configs = results["configs"]
    out = [
        "Department calls: the demo's SQL connectors against the GraphQL path (bench/sql_paths.py)",
        f"  command     {results['command']}",
        f"  machine     {m['nproc']} CPUs, {m['cpu_model']}; Python {m['python']}",
        f"  source      {results['source']['path']} at {results['source']['commit']}"
        + ("" if results["source"]["modified_files"] is None
           else f" ({results['source']['modified_files']} tracked files modified in the work tree)"),
        f"  district    {results['district']['legal_persons']} legal persons; profile subject {results['subject']['uscc']}"
        f" (records {results['subject']['records_per_family']})",
        f"  run         {o['rounds']} round(s), configurations rotated; per configuration and round {o['warmup']} + "
        f"{o['requests']} sequential requests, then {o['c8_warmup']:g} + {o['duration']:g} s at concurrency {hi};"
        f" took {results['elapsed_s'] / 60:.1f} min",
        "  configs     " + "; ".join(f"{c['name']}: {c['moved']}" for c in configs),
        f"  answers     every hub returned the same profile ({results['answers']['reference']} as reference)",
    ]
    for skipped in results.get("skipped", []):
        out.append(f"  SKIPPED     {skipped}")

    def hub_row(config: str, c: int, by: str, key: str) -> dict[str, Any]:
        return s.get(config, {}).get(str(c), {}).get(by, {}).get(key) or {}

    def alone(config: str, by: str, key: str) -> dict[str, Any]:
        return direct.get(config, {}).get(by, {}).get(key) or {}

    ref = {c: hub_row("graphql", c, "kinds", "graphql") for c in concs}
    ref_alone = alone("graphql", "kinds", "graphql")
    out += ["", "Per configuration and connector kind. alone = each call made by itself in this process (no hub);"
            f" c1 / c{hi} = in the hub (/metrics), p50≈ from its buckets. ÷ graphql = over the GraphQL connectors' figure:",
            "", f"| config | kind | connectors | calls/req | alone mean / p50 ms | loop turns/call | c1 mean / p50≈ ms |"
            f" c{hi} mean / p50≈ ms | ÷ graphql alone (mean / p50) | ÷ graphql c1 (mean / p50) |"
            f" ÷ graphql c{hi} (mean / p50) |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for config in configs:
        name = config["name"]
        for kind in KINDS:
            rows = {c: hub_row(name, c, "kinds", kind) for c in concs}
            if not any(rows.values()):
                continue
            members = sorted(n for n, info in config["connectors"].items() if info["kind"] == kind)
            solo = alone(name, "kinds", kind)
            compare = kind in SQL_KINDS
            out.append(
                f"| {name} | {kind} | {', '.join(members)} | {fmt((rows[1] or rows[hi]).get('calls_per_request'), 1)} |"
                f" {fmt(solo.get('mean'))} / {fmt(solo.get('p50'))} | {fmt(solo.get('loop_turns_per_call'), 1)} |"
                + "".join(f" {fmt(rows[c].get('mean_ms'))} / {fmt(rows[c].get('p50_ms_approx'))} |" for c in concs)
                + (f" {ratio(solo.get('mean'), ref_alone.get('mean'))} / {ratio(solo.get('p50'), ref_alone.get('p50'))} |"
                   if compare else " |")
                + "".join(f" {ratio(rows[c].get('mean_ms'), ref[c].get('mean_ms'))} /"
                          f" {ratio(rows[c].get('p50_ms_approx'), ref[c].get('p50_ms_approx'))} |" if compare else " |"
                          for c in concs)
            )

    out += ["", "Same department, only the engine differs (per-call mean / p50 ms; ÷ sqlite = over the same department"
            " in the sqlite configuration):", "",
            f"| department | config | kind | calls/req | alone | c1 | c{hi} | ÷ sqlite alone | ÷ sqlite c1 | ÷ sqlite c{hi} |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for connector, label, wanted in (("tax", "tax bureau", ("sqlite", "mariadb", "graphql")),
                                     ("market", "market regulation", ("sqlite", "postgresql"))):
        department = next((c["connectors"][connector]["department"] for c in configs if connector in c["connectors"]), None)
        if department is None:
            continue
        for name in wanted:
            config = next((c for c in configs if c["name"] == name), None)
            if config is None:
                continue
            rows = {c: hub_row(name, c, "departments", department) for c in concs}
            base = {c: hub_row("sqlite", c, "departments", department) for c in concs}
            solo, solo_base = alone(name, "departments", department), alone("sqlite", "departments", department)
            kinds = sorted({info["kind"] for info in config["connectors"].values() if info["department"] == department})
            out.append(
                f"| {label} | {name} | {', '.join(kinds)} | {fmt((rows[1] or rows[hi]).get('calls_per_request'), 1)} |"
                f" {fmt(solo.get('mean'))} / {fmt(solo.get('p50'))} |"
                + "".join(f" {fmt(rows[c].get('mean_ms'))} / {fmt(rows[c].get('p50_ms_approx'))} |" for c in concs)
                + f" {ratio(solo.get('mean'), solo_base.get('mean'))} |"
                + "".join(f" {ratio(rows[c].get('mean_ms'), base[c].get('mean_ms'))} |" for c in concs)
            )

    out += ["", "Per connector (mean / p50 ms):", "",
            f"| config | connector | kind | calls/req | alone | loop turns/call | c1 | c{hi} | not success |",
            "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for config in configs:
        name = config["name"]
        for connector, info in config["connectors"].items():
            rows = {c: hub_row(name, c, "connectors", connector) for c in concs}
            solo = alone(name, "connectors", connector)
            bad = {k: v for c in concs for k, v in (rows[c].get("outcomes") or {}).items() if k != "success"}
            out.append(
                f"| {name} | {connector} | {info['kind']} | {fmt((rows[1] or rows[hi]).get('calls_per_request'), 1)} |"
                + (f" {fmt(solo.get('mean'))} / {fmt(solo.get('p50'))} | {fmt(solo.get('loop_turns_per_call'), 1)} |"
                   if solo else " - | - |")
                + "".join(f" {fmt(rows[c].get('mean_ms'))} / {fmt(rows[c].get('p50_ms_approx'))} |" for c in concs)
                + f" {', '.join(f'{k} {v}' for k, v in bad.items()) or '-'} |"
            )

    out += ["", "Per configuration (whole requests):", "",
            "| config | conc | requests | errors | req/s | request p50 ms | hub CPU ms/req | department servers CPU ms/req |"
            " server connections opened /req | subgraph handling µs/call | other processes % (max) |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for config in configs:
        for c in concs:
            row = s.get(config["name"], {}).get(str(c))
            if not row:
                continue
            servers = ", ".join(f"{n} {fmt(v)}" for n, v in row["server_cpu_ms_per_request"].items()) or "-"
            out.append(
                f"| {config['name']} | {c} | {row['requests']} | {row['errors']} | {fmt(row['requests_per_s'], 1)} |"
                f" {fmt(row['latency_p50_ms'])} | {fmt(row['hub_cpu_ms_per_request'])} | {servers} |"
                f" {fmt(row['server_connections_opened_per_request'])} |"
                f" {fmt(row['subgraph_handling_us']['mean_us'], 0)} | {fmt(row['other_cpu_pct_max'], 0)} |"
            )
    noisy = [f"{c['name']} c={k}" for c in configs for k, row in s.get(c["name"], {}).items() if row["other_cpu_pct_max"] > 15]
    if noisy:
        out += ["", f"WARNING: other processes used more than 15 % of a core during: {', '.join(noisy)} — those figures"
                " are noisy; take the final ones on a quiet machine."]
    out += ["", "In the hub: one observation per attempt that reached the department (DepartmentLink: after the bulkhead"
            " slot, until the connector's answer is back on the event loop), so a call's time includes waiting for"
            " the hub's loop while the request's other calls are handled; mean exact (_sum/_count), p50 interpolated in"
            " the buckets 0.5/1/2.5/5/10 ms. Alone: the same calls (families, fields, subject) one at a time through a"
            " fresh connector in this process; loop turns/call = event-loop iterations each of them needed (the more, the"
            " longer a call waits in a busy hub). ÷ graphql below 1.00x = faster than a GraphQL connector's call. Hub CPU ="
            " utime+stime of the hub's process tree per request (SQLite runs inside it); department servers CPU = the"
            " court service, the Node subgraphs, all postgres / mariadbd processes (shared with any other user of those"
            " servers). Server connections opened: PostgreSQL sessions of the scratch database / MariaDB's global"
            " Connections counter (any client of the server)."]
    return "\n".join(out)


# ---- the run --------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Department-call latency of the demo's SQL connectors (SQLite, PostgreSQL, MariaDB) against a GraphQL"
                    " connector, on the profile query (loopback only).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--subjects", type=int, default=2000, help="legal persons in the demo district (as hub_bench.py)")
    p.add_argument("--subject", default=None, help="USCC for the profile (default: the one with records in most families)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {','.join(CONFIGS)}")
    p.add_argument("--rounds", type=int, default=3, help="rounds over the configurations (order rotated); rounds pooled")
    p.add_argument("--requests", type=int, default=300, help="timed sequential requests per configuration and round")
    p.add_argument("--warmup", type=int, default=30, help="untimed sequential requests before them")
    p.add_argument("--concurrency", type=int, default=8, help="the concurrent level (besides 1)")
    p.add_argument("--duration", type=float, default=10.0, help="timed seconds at --concurrency per configuration and round")
    p.add_argument("--c8-warmup", type=float, default=2.0, help="untimed seconds at --concurrency before them")
    p.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
                   help="an account on a loopback PostgreSQL that may create databases (a scratch one is made, then dropped)")
    p.add_argument("--mariadb-url", default="mysql+asyncmy://root@127.0.0.1:3306",
                   help="an account on a loopback MariaDB that may create databases (a scratch one is made, then dropped)")
    p.add_argument("--scratch", default=str(peers.PEERS / ".work"), help="where bench/peers.py installs its Node packages")
    p.add_argument("--quick", action="store_true", help="smoke run (about a minute): 1 round, 20 + 100 sequential, 1 + 3 s at"
                                                        " the concurrent level")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.add_argument("--json-out", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--keep", action="store_true", help="keep the run directory (data directories, logs)")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.requests, args.warmup, args.duration, args.c8_warmup = 1, 100, 20, 3.0, 1.0
    args.configs = [c.strip() for c in str(args.configs).split(",") if c.strip()]
    if not args.configs or set(args.configs) - set(CONFIGS) or len(set(args.configs)) != len(args.configs):
        p.error(f"--configs: a subset of {','.join(CONFIGS)}")
    if args.subjects < 12:
        p.error("--subjects must be at least 12 (the demo district's named samples)")
    if not 1 <= args.rounds <= 50 or args.requests < 2 or args.warmup < 0 or args.duration <= 0 or args.c8_warmup < 0:
        p.error("--rounds 1..50, --requests >= 2, --warmup >= 0, --duration > 0, --c8-warmup >= 0")
    if not 2 <= args.concurrency <= 256:
        p.error("--concurrency 2..256")
    return args


def prepare(args: argparse.Namespace, run_dir: Path, procs: peers.Processes, stack: contextlib.ExitStack,
            scratch: list[Scratch], results: dict[str, Any]) -> tuple[list[Config], Profile]:
    from xinlian.connectors.registry import load_connectors
    from xinlian.hub.cli.demo import ensure_demo_clients
    from xinlian.hub.config import Settings
    from xinlian.hub.demo.generator import build_demo_district
    from xinlian.hub.principal import Principal
    from xinlian.policies import load_policy

    base = run_dir / "base"
    natural = min(500, max(args.subjects // 4, 3))
    t0 = time.perf_counter()
    district = build_demo_district(base, legal_persons=args.subjects, natural_persons=natural)
    settings = Settings.from_env(base, port=peers.free_port())
    clients = asyncio.run(ensure_demo_clients(settings))
    results["district"] = {"legal_persons": district.legal_persons, "natural_persons": district.natural_persons,
                           "build_s": time.perf_counter() - t0}
    services = stack.enter_context(demo_services.running(base, run_dir / "demo-services.log"))
    log(f"demo district built in {run_dir} ({district.legal_persons} legal persons), court API {services.get('court_url')}")

    async def pick() -> tuple[str, dict[str, int]]:
        connectors = load_connectors(base / "connectors.toml", base)
        try:
            if args.subject:
                return args.subject, {}
            return await hb.richest_subject(connectors, hb.registered_codes(connectors))
        finally:
            for connector in connectors:
                await connector.close()

    subject, records = asyncio.run(pick())
    policy = load_policy(settings.policy_path)
    department = clients["department"]
    principal = Principal(client_id=department["client_id"], kind="department",
                          scopes=frozenset(department["scope"].split()))
    query, selected = hb.profile_query(policy, principal)
    results["subject"] = {"uscc": subject, "records_per_family": records}
    results["query"] = query

    configs: list[Config] = []
    for name in args.configs:
        config = Config(name, run_dir / name)
        shutil.copytree(base, config.data_dir, ignore=shutil.ignore_patterns("*.log"))
        config.servers["court service"] = [int(services["pid"])] if services.get("pid") else []
        try:
            if name == "sqlite":
                config.moved = "the demo as shipped"
            elif name == "postgresql":
                config.moved = "market on PostgreSQL"
                publish(config, "market", "postgresql", args.postgres_url, "--postgres-url", scratch)
                config.servers["postgres"] = comm_pids(SERVER_COMMS["postgresql"])
            elif name == "mariadb":
                config.moved = "tax on MariaDB"
                publish(config, "tax", "mariadb", args.mariadb_url, "--mariadb-url", scratch)
                config.servers["mariadb"] = comm_pids(SERVER_COMMS["mariadb"])
            elif name == "graphql":
                config.moved = "tax on two GraphQL connectors (bench/peers subgraphs tax + penalties)"
                setup_graphql(config, procs, Path(args.scratch).resolve(), run_dir)
        except Exception as exc:  # a server that is not there, no Node, a refused login: measure the others, say so
            message = f"{name}: {type(exc).__name__}: {str(exc).strip()[:400]}"
            log(f"SKIPPING {message}")
            results.setdefault("skipped", []).append(message)
            shutil.rmtree(config.data_dir, ignore_errors=True)
            continue
        config.connectors = connector_kinds(config.data_dir / "connectors.toml")
        configs.append(config)
    if not configs:
        raise SetupError("no configuration could be set up")
    body = {"query": query, "variables": {"uscc": subject}}
    return configs, Profile(body, department, policy, principal, selected, subject)


def run(args: argparse.Namespace, run_dir: Path, procs: peers.Processes, stack: contextlib.ExitStack,
        scratch: list[Scratch], results: dict[str, Any]) -> None:
    configs, profile = prepare(args, run_dir, procs, stack, scratch, results)
    client, body = profile.client, profile.body
    for config in configs:
        start_hub(config, procs)
    for config in configs:
        assert config.hub is not None
        procs.wait_http(config.hub, f"{config.base_url}/healthz")
        token(config, client)
        probe = httpx.get(f"{config.base_url}/metrics", timeout=10)
        if probe.status_code != 200:
            raise SetupError(f"{config.name}: /metrics answered {probe.status_code} (XINLIAN_MONITORING_ADDRESSES?)")
    log("hubs: " + ", ".join(f"{c.name} {c.base_url} (pid {c.hub.pid if c.hub else '?'})" for c in configs))
    results["configs"] = [{"name": c.name, "moved": c.moved, "connectors": c.connectors, "data_dir": str(c.data_dir)}
                          for c in configs]
    results["answers"] = check_answers(configs, body)
    log("every hub answered the profile with the same data")

    phases: list[dict[str, Any]] = []
    hi = args.concurrency
    for r in range(args.rounds):
        shift = r % len(configs)
        for config in configs[shift:] + configs[:shift]:
            alive(config)
            token(config, client)  # fresh for each configuration's turn
            c1 = measure_c1(config, body, args.warmup, args.requests)
            cn = asyncio.run(measure_cn(config, body, hi, args.c8_warmup, args.duration))
            for phase in (c1, cn):
                phase["round"] = r + 1
                phases.append(phase)
                moved = [n for n, info in config.connectors.items() if info["kind"] in SQL_KINDS + ("graphql",)]
                means = ", ".join(f"{n} {fmt(phase['calls'].get(n, Calls()).mean_ms())}" for n in moved)
                log(f"round {r + 1} {config.name:<10} c={phase['concurrency']:<3} {phase['requests']:>5} req"
                    f" p50 {phase['latency_ms'].get('p50', 0):6.2f} ms, hub CPU {fmt(phase['cpu']['hub_cpu_ms_per_request'])}"
                    f" ms/req, errors {phase['errors']}, other {phase['cpu']['other_cpu_pct']:.0f}%; call means ms: {means}")
    results["direct"] = {}
    for config in configs:
        log(f"{config.name}: the SQL and GraphQL calls alone, in this process ({args.requests} per call)")
        results["direct"][config.name] = asyncio.run(direct_calls(config, profile, min(args.warmup, 20), args.requests))
    results["phases"] = [
        {**{k: v for k, v in p.items() if k != "calls"},
         "calls": {n: c.as_dict(p["requests"]) for n, c in p["calls"].items()}} for p in phases
    ]
    results["summary"] = summarise(configs, phases, [1, hi])


@contextlib.contextmanager
def signals_as_exit() -> Iterator[None]:
    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": " ".join(["python", "bench/sql_paths.py", *(sys.argv[1:] if argv is None else argv)]),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "options": {k: v for k, v in vars(args).items() if k not in ("json", "json_out")},
        "machine": hb.machine(),
        "source": hb.source_tree(),
    }
    run_dir = Path(tempfile.mkdtemp(prefix="xinlian-sql-paths-"))
    procs = peers.Processes(run_dir, pin=False)
    scratch: list[Scratch] = []
    code = 0
    with signals_as_exit(), contextlib.ExitStack() as stack:
        try:
            run(args, run_dir, procs, stack, scratch, results)
            results["elapsed_s"] = time.monotonic() - started
            text = json.dumps(results, ensure_ascii=False, indent=2, default=str)
            if args.json_out:
                Path(args.json_out).write_text(text + "\n", encoding="utf-8")
            print(text if args.json else render(results))
        except (SetupError, peers.SetupError) as exc:
            log(f"setup failed: {exc}")
            code = 2
        except AnswersDiffer as exc:
            log(f"THE HUBS' ANSWERS DIFFER; nothing was measured: {exc}")
            code = 3
        except (KeyboardInterrupt, SystemExit):
            log("interrupted: stopping every process this run started")
            raise
        finally:
            procs.stop_all()  # the hubs first: their pools hold connections to the scratch databases
            stack.close()  # the court service
            for database in scratch:
                database.drop()
            if args.keep or code:
                log(f"kept the run directory (data directories, logs): {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
