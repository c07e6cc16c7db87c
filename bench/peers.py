"""Peer benchmark: Xinlian against Apollo Gateway and Hive Gateway on the same work (issue 10, goal 1).

The setup, all on loopback (127.0.0.1), every process started here and stopped here (also on
errors and interrupts: each runs in its own process group, killed in a `finally`):

* **Data.** 2,000 companies (`--companies`) with valid unified social credit codes (check
  characters from `xinlian.schema.identifiers`), generated deterministically (fixed seed) by
  this script into `data.json`: a registration for each, a tax credit rating for most,
  judgment-debtor entries for a few, administrative penalties for about a quarter.
* **Four subgraphs** (`bench/peers/subgraph.mjs`, SDL and resolvers in `bench/peers/schemas.mjs`):
  market registration, tax credit, court judgment-debtor records and penalties, each an Apollo
  Federation v2 subgraph (`buildSubgraphSchema`, entity `Company @key(fields: "uscc")`; the
  market owns the root fields `company(uscc:)` and `companies(usccs:)`), its documents compiled
  once with graphql-jit and answered behind `node:http` from the data in memory (one company's
  answer: 30-40 µs of the subgraph's time, 100 companies' 0.2-0.35 ms; they count their own
  calls and handling times, GET /stats). Each also has a plain root field with a list argument for Xinlian's GraphQL connector
  (list mode): `companies`, `taxCredits`, `judgmentDebtors`, `penaltyRecords` (the last three
  `@inaccessible` in the supergraph).
* **Three gateways** over the same subgraphs:
  - Apollo Gateway (`@apollo/gateway` + `@apollo/server` standalone, `bench/peers/apollo.mjs`) on a
    static supergraph composed here with `@apollo/composition` (`bench/peers/compose.mjs`);
  - Hive Gateway (`hive-gateway supergraph`, `--fork 1`: one process) on the same supergraph file;
  - Xinlian (`xinlian serve`) on a fresh data directory whose `connectors.toml` has four
    `kind = "graphql"` connectors (one per subgraph, list mode, `[registries] "9" = ["market"]`
    so the market registry confirms each company), the default policy, audit on (it always
    is), rate limits off (`XINLIAN_RATE_*=off`, as tests/hub_fixture.py's NO_RATE_LIMITS), and
    a `department` client (`xinlian clients create`) whose token comes from `/oauth/token`
    (renewed before it expires).
  The Node packages are pinned in `bench/peers/package.json` / `package-lock.json` and installed
  by this script (`npm ci`) into a scratch folder, `bench/peers/.work/` (git-ignored), on first use.
* **Queries.** (a) the profile of one company: 17 fields from the 4 departments; (b) the same
  fields for a batch of 100 companies (`--batch`). Apollo and Hive get `company(uscc:)` /
  `companies(usccs:)`, Xinlian `legalPerson(uscc:)` / `legalPersons(usccs:)`, with the same
  selection. Each request asks about the next company (each batch about the next 100), so no
  gateway can merge identical in-flight subgraph calls (`--subjects one`: always the same).
  Before anything is measured, the gateways' answers (every batch request, the first 200
  profile requests) are normalised (root field name, decimals, list order) and compared with the
  generated data, hence with each other; any difference stops the run (exit status 3) with the
  first differing path.
* **Measuring.** Each gateway is pinned to core 0 (`taskset -c 0`); the subgraphs, the load
  generator (`bench/peers/loadgen.mjs`: closed-loop keep-alive HTTP in Node) and this script to
  core 1. After an initial warm-up, for every repetition (`--repetitions`, default 3), query,
  concurrency (1, 8, 32, 64) and gateway (the order rotates per repetition): `--warmup` seconds
  untimed, then `--duration` seconds timed. Per point: req/s, p50/p99 latency, the gateway's CPU
  ms per request (utime + stime of its process tree, all threads, from /proc/PID/stat at the
  window's edges), non-200 answers, answers with GraphQL errors, transport errors, subgraph calls
  per request and their handling time, each core's busy share, and the CPU used by processes
  this run did not start (a point run while they used more than `--quiet-threshold` of a core is
  run again, within `--max-wait`, else flagged). Figures are medians over the repetitions
  (errors are summed). "Overhead at concurrency 1" is the gateway's p50 minus the p50 of the
  slowest single subgraph call it makes, measured directly on the subgraph with the same load
  generator (federation form for Apollo/Hive: `company` on the market and `_entities` on the
  others; Xinlian's connector form for Xinlian).

Run from the repository root (progress on stderr, the report on stdout); bench/README.md has
the options:

    python bench/peers.py                # full run: 3 repetitions x 2 queries x 4 concurrencies x 3 gateways
    python bench/peers.py --quick        # smoke run: 1 repetition, 2 s per point, concurrency 1 and 8
    python bench/peers.py --json > peers.json

Exit status: 0 done, 2 a setup step failed (npm, a process that did not start), 3 the gateways'
answers differ.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_bench import cpu_model  # noqa: E402  (bench/hub_bench.py)
from xinlian.schema.catalogue import FAMILIES, ValueType  # noqa: E402
from xinlian.schema.identifiers import (  # noqa: E402
    USCC_ALPHABET,
    id_check_char,
    org_code_check_char,
    uscc_check_char,
    validate_uscc,
)

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
NODE_FILES = ("schemas.mjs", "subgraph.mjs", "compose.mjs", "apollo.mjs", "loadgen.mjs")
GATEWAYS = ("xinlian", "apollo", "hive")
LABELS = {"xinlian": "Xinlian", "apollo": "Apollo", "hive": "Hive"}
QUERIES = ("profile", "batch")
SEED = 20261201
START_TIMEOUT = 90.0  # seconds for a process to answer after it is started
LOADGEN_SLACK = 180.0  # seconds a load-generator run may take beyond warm-up + duration (the drain)
TOKEN_MAX_AGE = 600.0  # seconds before a Xinlian token is renewed (the hub's default TTL is 900 s)
PYTHON_PACKAGES = ("xinlian", "strawberry-graphql", "graphql-core", "starlette", "uvicorn", "aiohttp", "httpx", "sqlalchemy",
                   "aiosqlite")
NODE_PACKAGES = ("@apollo/gateway", "@apollo/server", "@apollo/composition", "@apollo/subgraph", "@graphql-hive/gateway",
                 "@graphql-hive/gateway-runtime", "graphql", "graphql-jit")

# The profile: 17 fields from the 4 departments (catalogue names; GraphQL names derive from them).
PROFILE_FIELDS: dict[str, tuple[str, ...]] = {
    "registration": ("name", "legal_representative", "status", "established_date", "registered_capital"),
    "tax_credit": ("level", "year", "evaluation_date"),
    "judgment_debtor_records": ("case_number", "court", "publish_date", "performance"),
    "penalties": ("decision_number", "violation_type", "fine_amount", "decision_date", "authority"),
}
# subgraph name, its family, its connector's department, its plain list root field (for Xinlian)
SUBGRAPHS: tuple[tuple[str, str, str, str], ...] = (
    ("market", "registration", "新城区市场监督管理局", "companies"),
    ("tax", "tax_credit", "国家税务总局呼和浩特市新城区税务局", "taxCredits"),
    ("courts", "judgment_debtor_records", "新城区人民法院", "judgmentDebtors"),
    ("penalties", "penalties", "新城区综合行政执法局", "penaltyRecords"),
)


def log(message: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class SetupError(RuntimeError):
    """A step before the measurements failed (exit status 2)."""


class AnswersDiffer(RuntimeError):
    """The gateways do not return the same data (exit status 3)."""


def gql_name(family: str, name: str) -> str:
    return FAMILIES[family].field(name).graphql_name


def family_field(family: str) -> str:
    return FAMILIES[family].graphql_field


# ---- data ---------------------------------------------------------------------------------
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌宏鹏飞"
TRADE_NAMES = ("明海", "恒泰", "金川", "青城", "塞上", "北辰", "鸿达", "瑞丰", "昭君", "大召", "敕勒", "阴山", "河套", "草原", "云中", "嘉和")
INDUSTRIES = (("批发业", "商贸"), ("零售业", "商行"), ("餐饮业", "餐饮"), ("软件和信息技术服务业", "科技"),
              ("道路运输业", "物流"), ("房屋建筑业", "建筑"), ("汽车修理与维护", "汽车维修"), ("居民服务业", "家政服务"))
STREETS = ("新华东街", "兴安北路", "海拉尔东路", "成吉思汗大街", "东影南路", "呼伦北路", "丰州路", "赛马场北路")
VIOLATIONS = (("违反城市市容和环境卫生管理规定", "《城市市容和环境卫生管理条例》第三十六条"),
              ("未按规定设置户外广告设施", "《呼和浩特市户外广告设置管理办法》第二十条"),
              ("违法占道经营", "《城市道路管理条例》第四十二条"),
              ("施工扬尘污染防治措施不到位", "《中华人民共和国大气污染防治法》第一百一十五条"),
              ("违反燃气安全管理规定", "《城镇燃气管理条例》第四十九条"))
PENALTY_AUTHORITY = "新城区综合行政执法局"
TAX_AUTHORITY = "国家税务总局呼和浩特市新城区税务局"
COURT = "呼和浩特市新城区人民法院"
DIVISION = "150102"  # Xincheng District, Hohhot


def make_uscc(rng: random.Random, authority: str = "9", kind: str = "1") -> str:
    """A valid unified social credit code (GB 32100-2015) in Xincheng District."""
    org8 = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
    body = authority + kind + DIVISION + org8 + org_code_check_char(org8)
    return validate_uscc(body + uscc_check_char(body))


def make_resident_id(rng: random.Random) -> str:
    born = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(365 * 40))
    body = DIVISION + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
    return body + id_check_char(body)


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def money(rng: random.Random, low: float, high: float) -> float:
    """An amount in 10,000 yuan with at most 2 decimals (exact as JSON text, in Float and in Decimal)."""
    return round(rng.uniform(low, high), 2)


def days_before(rng: random.Random, latest: dt.date, count: int, span: int) -> list[dt.date]:
    """`count` distinct dates within `span` days before `latest`, newest first."""
    offsets = rng.sample(range(span), count)
    return sorted((latest - dt.timedelta(days=o) for o in offsets), reverse=True)


def generate_companies(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """The companies and their records, keyed by GraphQL field names (what the subgraphs serve).

    Company 0 has records in every family (the profile subject). Lists are newest first.
    """
    rng = random.Random(seed)
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        code = make_uscc(rng)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    authority_uscc = make_uscc(random.Random(seed + 1), authority="1", kind="1")
    reference = dt.date(2026, 11, 1)
    companies = []
    for i, uscc in enumerate(codes):
        industry, suffix = rng.choice(INDUSTRIES)
        name = f"呼和浩特市新城区{rng.choice(TRADE_NAMES)}{suffix}有限公司"
        established = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))
        registration = {
            "name": name,
            "legalRepresentative": person(rng),
            "legalRepresentativeId": make_resident_id(rng),
            "status": rng.choices(("存续", "吊销", "注销"), (90, 5, 5))[0],
            "establishedDate": established.isoformat(),
            "address": f"内蒙古自治区呼和浩特市新城区{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
            "industry": industry,
            "registeredCapital": money(rng, 10, 5000),
            "contactPhone": f"0471-{rng.randrange(2000000, 7000000)}",
        }
        tax = None
        if i == 0 or rng.random() < 0.92:
            tax = {
                "level": rng.choices("ABMCD", (30, 40, 15, 10, 5))[0],
                "year": 2025,
                "evaluationDate": dt.date(2026, 4, rng.randrange(1, 29)).isoformat(),
                "taxPaid": money(rng, 0.5, 800),
                "authority": TAX_AUTHORITY,
            }
        debtor_records = []
        n_debtor = 2 if i == 0 else (rng.choice((1, 1, 2, 3)) if rng.random() < 0.06 else 0)
        for published in days_before(rng, reference, n_debtor, 900):
            filed = published - dt.timedelta(days=rng.randrange(30, 200))
            debtor_records.append({
                "caseNumber": f"({filed.year})内0102执{rng.randrange(100, 9999)}号",
                "court": COURT,
                "debtorName": name,
                "debtorIdNumber": uscc,
                "filingDate": filed.isoformat(),
                "publishDate": published.isoformat(),
                "basisDocument": f"({filed.year - 1})内0102民初{rng.randrange(100, 9999)}号",
                "obligation": f"支付货款{rng.randrange(5, 500)}万元及利息",
                "performance": rng.choice(("全部未履行", "部分未履行")),
                "dishonestBehavior": "有履行能力而拒不履行生效法律文书确定义务",
                "reviewStatus": "已审核",
            })
        penalties = []
        n_penalties = 3 if i == 0 else (rng.choice((1, 1, 1, 2, 2, 3, 4)) if rng.random() < 0.25 else 0)
        for decided in days_before(rng, reference, n_penalties, 1500):
            violation, basis = rng.choice(VIOLATIONS)
            severity = rng.choices(("轻微", "一般", "严重"), (30, 55, 15))[0]
            months = {"轻微": 3, "一般": 12, "严重": 36}[severity]
            fine = money(rng, 0.05, 20)
            penalties.append({
                "decisionNumber": f"新综执罚〔{decided.year}〕{rng.randrange(1, 9999)}号",
                "violationType": violation,
                "facts": f"当事人{violation}，经责令改正仍未改正。",
                "legalBasis": basis,
                "penaltyCategory": "罚款",
                "content": f"罚款人民币{fine}万元",
                "fineAmount": fine,
                "confiscationAmount": None,
                "decisionDate": decided.isoformat(),
                "authority": PENALTY_AUTHORITY,
                "authorityUscc": authority_uscc,
                "dataSourceUnit": PENALTY_AUTHORITY,
                "severity": severity,
                "publicityEndDate": (decided + dt.timedelta(days=30 * months)).isoformat(),
                "caseHandler": f"{person(rng)}、{person(rng)}",
                "reviewStatus": "已审核",
            })
        companies.append({
            "uscc": uscc,
            "registration": registration,
            "taxCredit": tax,
            "judgmentDebtorRecords": debtor_records,
            "penalties": penalties,
        })
    return companies


# ---- queries and their answers ------------------------------------------------------------
def selection() -> str:
    """The 17 fields, nested per family as both schemas nest them."""
    parts = ["uscc"]
    for family, names in PROFILE_FIELDS.items():
        parts.append(f"{family_field(family)} {{ {' '.join(gql_name(family, n) for n in names)} }}")
    return " ".join(parts)


def documents() -> dict[str, dict[str, str]]:
    """gateway → query → GraphQL document."""
    sel = selection()
    peer = {
        "profile": f"query Profile($uscc: String!) {{ company(uscc: $uscc) {{ {sel} }} }}",
        "batch": f"query Batch($usccs: [String!]!) {{ companies(usccs: $usccs) {{ {sel} }} }}",
    }
    hub = {
        "profile": f"query Profile($uscc: String!) {{ legalPerson(uscc: $uscc) {{ {sel} }} }}",
        "batch": f"query Batch($usccs: [String!]!) {{ legalPersons(usccs: $usccs) {{ {sel} }} }}",
    }
    return {"xinlian": hub, "apollo": peer, "hive": peer}


DECIMALS = {
    (family_field(f), gql_name(f, n))
    for f, names in PROFILE_FIELDS.items() for n in names if FAMILIES[f].field(n).type is ValueType.DECIMAL
}


def normalise(company: Any) -> Any:
    """One company's answer in a comparable form: decimals as canonical text, lists sorted."""
    if company is None:
        return None
    out: dict[str, Any] = {"uscc": company.get("uscc")}
    for family in PROFILE_FIELDS:
        key = family_field(family)
        value = company.get(key, "<absent>")

        def record(r: dict[str, Any], key: str = key) -> dict[str, Any]:
            return {
                k: (None if v is None else format(Decimal(str(v)).normalize(), "f")) if (key, k) in DECIMALS else v
                for k, v in sorted(r.items())
            }

        if isinstance(value, list):
            out[key] = sorted((record(r) for r in value), key=lambda r: json.dumps(r, ensure_ascii=False, sort_keys=True))
        elif isinstance(value, dict):
            out[key] = record(value)
        else:
            out[key] = value
    return out


def expected(company: dict[str, Any]) -> dict[str, Any]:
    """What every gateway must answer for one generated company (before `normalise`)."""
    out: dict[str, Any] = {"uscc": company["uscc"]}
    for family, names in PROFILE_FIELDS.items():
        key = family_field(family)
        wanted = [gql_name(family, n) for n in names]
        value = company[key]
        if isinstance(value, list):
            out[key] = [{k: r[k] for k in wanted} for r in value]
        else:
            out[key] = None if value is None else {k: value[k] for k in wanted}
    return out


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{path or '<root>'}: {json.dumps(a, ensure_ascii=False)[:200]} != {json.dumps(b, ensure_ascii=False)[:200]}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            d = first_difference(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


# ---- Xinlian's data directory -------------------------------------------------------------
def connectors_toml(ports: dict[str, int]) -> str:
    """Four graphql connectors, one per subgraph, every catalogue field of its family mapped."""
    lines = [
        "# Written by bench/peers.py: Xinlian's GraphQL connectors to the benchmark's four subgraphs.",
        "[registries]",
        '"9" = ["market"]   # the market registry confirms that a company exists',
        "",
    ]
    for name, family, department, root in SUBGRAPHS:
        spec = FAMILIES[family]
        lines += [
            "[[connector]]",
            f'name = "{name}"',
            'kind = "graphql"',
            f'department = "{department}"',
            f'endpoint = "http://127.0.0.1:{ports[name]}/graphql"',
            "",
            f"[connector.families.{family}]",
            f'table = "{root}"',
            'key = "uscc"',
            "",
            f"[connector.families.{family}.fields]",
            *(f'{f.name} = "{f.graphql_name}"' for f in spec.fields),
            "",
            f"[connector.graphql.{family}]",
            'argument = "usccs"',
            f'records = "{spec.graphql_field}"',
            "",
        ]
    return "\n".join(lines)


def xinlian_command() -> list[str]:
    exe = shutil.which("xinlian") or str(Path(sys.executable).with_name("xinlian"))
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "xinlian.hub.cli"]


# rate limits off (the settings behind tests/hub_fixture.py's NO_RATE_LIMITS, read by hub/config.py)
XINLIAN_ENV = {f"XINLIAN_RATE_{k}": "off" for k in ("PUBLIC", "IP", "CLIENT", "OAUTH", "META")}
# settings of the caller's environment that would point the hub elsewhere than the prepared data directory, or
# run it as several processes (one process per gateway: the peers run one Node process each)
XINLIAN_CLEARED = ("XINLIAN_CONNECTORS", "XINLIAN_DATABASE_URL", "XINLIAN_POLICY", "XINLIAN_DATA_DIR", "XINLIAN_WORKERS")


def prepare_xinlian(data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    """Create the data directory, its connectors.toml and a department client; return the client."""
    data_dir.mkdir(parents=True)
    (data_dir / "connectors.toml").write_text(connectors_toml(ports), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in XINLIAN_CLEARED} | XINLIAN_ENV
    cli = xinlian_command()
    check = subprocess.run([*cli, "connectors", "check", "--data-dir", str(data_dir)], capture_output=True, text=True,
                           timeout=120, env=env)
    if check.returncode != 0:
        raise SetupError(f"xinlian connectors check failed ({check.returncode}):\n{check.stdout}{check.stderr}")
    done = subprocess.run(
        [*cli, "clients", "create", "bench department", "--kind", "department", "--client-id", "bench-department",
         "--json", "--data-dir", str(data_dir), "--by", "bench/peers.py"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    if done.returncode != 0:
        raise SetupError(f"xinlian clients create failed ({done.returncode}): {done.stderr.strip()}")
    client = json.loads(done.stdout)
    return {"client_id": client["client_id"], "client_secret": client["client_secret"]}


def audit_entries(data_dir: Path) -> int | None:
    db = data_dir / "hub.db"
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0])
        except sqlite3.Error:
            return None


# ---- processes ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    graceful: int = signal.SIGTERM  # the signal that asks it to stop

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Processes:
    """Every process this script starts, each in its own session (process group), stopped on exit."""

    def __init__(self, log_dir: Path, pin: bool) -> None:
        self.log_dir = log_dir
        self.pin = pin
        self.started: list[Started] = []

    def start(
        self, name: str, argv: Sequence[str], *, core: int | None, cwd: Path, env: dict[str, str] | None = None,
        graceful: int = signal.SIGTERM,
    ) -> Started:
        log_path = self.log_dir / f"{name}.log"
        command = ["taskset", "-c", str(core), *argv] if self.pin and core is not None else list(argv)
        with open(log_path, "wb") as out:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        item = Started(name, process, log_path, graceful)
        self.started.append(item)
        return item

    def ready_line(self, item: Started, key: str, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """The first JSON line holding `key` that the process printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if item.process.poll() is not None:
                raise SetupError(f"{item.name} exited with {item.process.returncode}:\n{item.tail()}")
            with contextlib.suppress(OSError):
                for line in item.log_path.read_text(errors="replace").splitlines():
                    if line.startswith("{"):
                        with contextlib.suppress(ValueError):
                            value = json.loads(line)
                            if isinstance(value, dict) and key in value:
                                return value
            time.sleep(0.05)
        raise SetupError(f"{item.name} did not start within {timeout:g} s:\n{item.tail()}")

    def wait_http(self, item: Started, url: str, *, body: dict[str, Any] | None = None,
                  timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if item.process.poll() is not None:
                raise SetupError(f"{item.name} exited with {item.process.returncode}:\n{item.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.post(url, json=body, timeout=2) if body is not None else httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return
            time.sleep(0.1)
        raise SetupError(f"{item.name} did not answer {url} within {timeout:g} s:\n{item.tail()}")

    def pids(self) -> list[int]:
        """Every live process this script started (with their children), and this script."""
        return process_tree(os.getpid(), *(item.pid for item in self.started if item.process.poll() is None))

    def stop_all(self) -> None:
        for item in reversed(self.started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if item.process.poll() is None:
                    os.killpg(item.pid, item.graceful)
        deadline = time.monotonic() + 20
        for item in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                item.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(item.pid, signal.SIGKILL)  # the group: anything it left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                item.process.wait(timeout=5)
        self.started.clear()


def process_tree(*roots: int) -> list[int]:
    """The `roots` and their descendants (threads are counted inside each process's /proc/PID/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = list(roots)
    while todo and len(out) < 10_000:
        pid = todo.pop()
        if pid not in out:
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(f"/proc/{pid}/stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# ---- Node: install, compose -----------------------------------------------------------------
def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise SetupError("node is not on PATH (Node.js 20 or later is needed)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        raise SetupError(f"Node.js 20 or later is needed, found {version}")
    return node


def ensure_node_modules(scratch: Path) -> None:
    """Install the pinned packages into `scratch` (once per package.json / lock), copy the scripts there."""
    scratch.mkdir(parents=True, exist_ok=True)
    manifests = [PEERS / "package.json", *([PEERS / "package-lock.json"] if (PEERS / "package-lock.json").exists() else [])]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in manifests)).hexdigest()
    stamp = scratch / ".installed"
    if not (stamp.exists() and stamp.read_text().strip() == digest and (scratch / "node_modules").is_dir()):
        npm = shutil.which("npm")
        if npm is None:
            raise SetupError("npm is not on PATH")
        for path in manifests:
            shutil.copy2(path, scratch / path.name)
        command = [npm, "ci" if len(manifests) == 2 else "install", "--no-audit", "--no-fund", "--loglevel=error"]
        log(f"installing the Node packages into {scratch} ({' '.join(command[1:])}; about 1-2 minutes the first time)")
        with open(scratch / "npm-install.log", "wb") as out:
            try:
                done = subprocess.run(command, cwd=scratch, stdout=out, stderr=subprocess.STDOUT, timeout=1200)
            except subprocess.TimeoutExpired:
                raise SetupError(f"npm did not finish within 20 minutes; see {scratch / 'npm-install.log'}") from None
        if done.returncode != 0:
            tail = (scratch / "npm-install.log").read_text(errors="replace")[-2000:]
            raise SetupError(f"npm failed ({done.returncode}):\n{tail}")
        stamp.write_text(digest)
    for name in NODE_FILES:
        shutil.copy2(PEERS / name, scratch / name)


def node_versions(scratch: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in NODE_PACKAGES:
        try:
            out[name] = json.loads((scratch / "node_modules" / name / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            out[name] = None
    return out


# ---- the load generator -------------------------------------------------------------------
def loadgen(
    node: str, scratch: Path, work: Path, url: str, bodies: Sequence[dict[str, Any]], *, concurrency: int,
    duration: float, warmup: float, pids: Sequence[int] = (), our_pids: Sequence[int] = (),
    headers: dict[str, str] | None = None, core: int | None = None, stats_urls: Sequence[str] = (),
) -> dict[str, Any]:
    """One run of bench/peers/loadgen.mjs (see there); adds the gateway's CPU ms per request."""
    config = {
        "url": url, "bodies": [json.dumps(b, ensure_ascii=False) for b in bodies], "headers": headers or {},
        "concurrency": concurrency, "duration": duration, "warmup": warmup, "pids": list(pids),
        "ourPids": list(our_pids), "clkTck": os.sysconf("SC_CLK_TCK"), "statsUrls": list(stats_urls), "timeout": 60,
    }
    path = work / "loadgen-config.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    command = [node, str(scratch / "loadgen.mjs"), str(path)]
    if core is not None:
        command = ["taskset", "-c", str(core), *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=scratch,
                              timeout=warmup + duration + LOADGEN_SLACK)
    except subprocess.TimeoutExpired:
        raise SetupError(f"the load generator did not finish within {warmup + duration + LOADGEN_SLACK:g} s") from None
    if done.returncode != 0:
        raise SetupError(f"the load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    ticks = [v for v in result.pop("cpuTicks").values() if v is not None]
    cpu = sum(ticks) / os.sysconf("SC_CLK_TCK")
    result["gateway_cpu_s"] = cpu if pids else None
    result["cpu_ms_per_request"] = 1000 * cpu / result["completed"] if pids and result["completed"] else None
    result["errors"] = result["non200"] + result["graphqlErrors"] + result["transportErrors"]
    return result


# ---- the run --------------------------------------------------------------------------------
@dataclass
class Setup:
    node: str
    scratch: Path
    run_dir: Path
    companies: list[dict[str, Any]]
    procs: Processes
    gateway_core: int | None = None  # None: unpinned
    other_core: int | None = None
    subgraph_ports: dict[str, int] = field(default_factory=dict)
    gateway_urls: dict[str, str] = field(default_factory=dict)
    gateway_roots: dict[str, Started] = field(default_factory=dict)
    xinlian_client: dict[str, str] = field(default_factory=dict)
    xinlian_token: tuple[str, float] = ("", 0.0)
    xinlian_data: Path | None = None
    waited_s: float = 0.0  # waited in all for the machine to be quiet


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Compare Xinlian with Apollo Gateway and Hive Gateway on the same subgraphs (loopback only).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=8.0, help="timed seconds per point")
    p.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each point")
    p.add_argument("--initial-warmup", type=float, default=5.0,
                   help="untimed seconds per gateway and query at concurrency 8 before the first point (JIT, caches, pools)")
    p.add_argument("--repetitions", type=int, default=3, help="interleaved repetitions (medians are reported)")
    p.add_argument("--concurrency", default="1,8,32,64", help="comma-separated concurrencies")
    p.add_argument("--gateways", default=",".join(GATEWAYS), help="comma-separated subset of xinlian,apollo,hive")
    p.add_argument("--companies", type=int, default=2000, help="companies in the generated data")
    p.add_argument("--batch", type=int, default=100, help="companies in the batch query")
    p.add_argument("--subjects", choices=("rotate", "one"), default="rotate",
                   help="rotate: each request asks about the next company (batches: the next 100); one: every"
                        " request asks about the same company (batch: the same 100), which lets a gateway that"
                        " merges identical in-flight subgraph calls (Hive) skip most of them")
    p.add_argument("--check-profiles", type=int, default=200,
                   help="profile requests whose answers are checked against the data before measuring (every"
                        " batch request is checked)")
    p.add_argument("--quiet-threshold", type=float, default=15.0,
                   help="before each point, wait while processes not started here use more than this %% of a core")
    p.add_argument("--max-wait", type=float, default=1800.0,
                   help="seconds the whole run may lose to a busy machine, waiting or re-running disturbed points"
                        " (then it goes on and flags them)")
    p.add_argument("--retries", type=int, default=2,
                   help="runs of a point again when other processes used more than --quiet-threshold during it")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 repetition, 2 s per point (0.5 s warm-up), concurrency 1 and 8")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.add_argument("--json-out", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores (taskset)")
    p.add_argument("--scratch", default=str(PEERS / ".work"), help="where the Node packages are installed")
    p.add_argument("--keep", action="store_true", help="keep the run directory (data, supergraph, Xinlian data dir, logs)")
    args = p.parse_args(argv)
    if args.quick:
        args.repetitions, args.duration, args.warmup, args.initial_warmup = 1, 2.0, 0.5, 1.0
        args.concurrency, args.max_wait = "1,8", min(args.max_wait, 120.0)
    try:
        args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        p.error("--concurrency: comma-separated whole numbers")
    args.gateways = [g.strip() for g in str(args.gateways).split(",") if g.strip()]
    if not args.concurrency or min(args.concurrency) < 1 or max(args.concurrency) > 1024:
        p.error("--concurrency: values from 1 to 1024")
    if not args.gateways or set(args.gateways) - set(GATEWAYS) or len(set(args.gateways)) != len(args.gateways):
        p.error(f"--gateways: a subset of {','.join(GATEWAYS)}")
    if args.duration <= 0 or args.warmup < 0 or args.initial_warmup < 0 or not 1 <= args.repetitions <= 50:
        p.error("--duration > 0, --warmup >= 0, --initial-warmup >= 0, --repetitions 1..50")
    if args.max_wait < 0 or args.quiet_threshold <= 0 or not 0 <= args.retries <= 10:
        p.error("--max-wait >= 0, --quiet-threshold > 0, --retries 0..10")
    if args.check_profiles < 1:
        p.error("--check-profiles >= 1")
    if not 10 <= args.companies <= 100_000 or not 1 <= args.batch <= min(args.companies, 1000):
        p.error("--companies 10..100000, --batch 1..min(companies, 1000)")
    return args


def pick_cores(pin: bool) -> tuple[int | None, int | None]:
    """(gateway core, everything-else core), or (None, None) when not pinning."""
    if not pin:
        return None, None
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2 or shutil.which("taskset") is None:
        log("fewer than 2 usable cores or no taskset: running unpinned")
        return None, None
    return available[0], available[1]


def start_subgraphs(setup: Setup) -> None:
    data = setup.run_dir / "data.json"
    env = {**os.environ, "NODE_ENV": "production"}
    started = {
        name: setup.procs.start(f"subgraph-{name}", [setup.node, "subgraph.mjs", name, str(data)],
                                core=setup.other_core, cwd=setup.scratch, env=env)
        for name, *_ in SUBGRAPHS
    }
    for name, item in started.items():
        setup.subgraph_ports[name] = int(setup.procs.ready_line(item, "port")["port"])
    log("subgraphs: " + ", ".join(f"{n} :{p}" for n, p in setup.subgraph_ports.items()))


def compose(setup: Setup) -> Path:
    out = setup.run_dir / "supergraph.graphql"
    pairs = [f"{name}=http://127.0.0.1:{port}/graphql" for name, port in setup.subgraph_ports.items()]
    done = subprocess.run([setup.node, "compose.mjs", str(out), *pairs], cwd=setup.scratch, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise SetupError(f"supergraph composition failed:\n{done.stderr}")
    for line in done.stderr.splitlines():
        log(line)
    return out


def start_gateways(setup: Setup, gateways: Sequence[str], supergraph: Path) -> None:
    procs, core = setup.procs, setup.gateway_core
    env = {**os.environ, "NODE_ENV": "production"}
    ping = {"query": "{ __typename }"}
    if "apollo" in gateways:
        item = procs.start("apollo", [setup.node, "apollo.mjs", str(supergraph)], core=core, cwd=setup.scratch, env=env)
        port = int(procs.ready_line(item, "port")["port"])
        setup.gateway_urls["apollo"] = f"http://127.0.0.1:{port}/"
        procs.wait_http(item, setup.gateway_urls["apollo"], body=ping)
        setup.gateway_roots["apollo"] = item
    if "hive" in gateways:
        port = free_port()
        hive = str(setup.scratch / "node_modules" / "@graphql-hive" / "gateway" / "dist" / "bin.js")
        item = procs.start("hive", [setup.node, hive, "supergraph", str(supergraph), "--host", "127.0.0.1", "--port",
                                    str(port), "--fork", "1"], core=core, cwd=setup.scratch, env=env)
        setup.gateway_urls["hive"] = f"http://127.0.0.1:{port}/graphql"
        procs.wait_http(item, setup.gateway_urls["hive"], body=ping)
        setup.gateway_roots["hive"] = item
    if "xinlian" in gateways:
        data_dir = setup.run_dir / "xinlian"
        setup.xinlian_data = data_dir
        setup.xinlian_client = prepare_xinlian(data_dir, setup.subgraph_ports)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in XINLIAN_CLEARED} | XINLIAN_ENV
        command = [*xinlian_command(), "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
        item = procs.start("xinlian", command, core=core, cwd=data_dir, env=env, graceful=signal.SIGINT)
        base = f"http://127.0.0.1:{port}"
        procs.wait_http(item, f"{base}/healthz")
        setup.gateway_urls["xinlian"] = f"{base}/graphql"
        setup.gateway_roots["xinlian"] = item
    log("gateways: " + ", ".join(f"{g} {u} (pid {setup.gateway_roots[g].pid})" for g, u in setup.gateway_urls.items()))


def xinlian_headers(setup: Setup) -> dict[str, str]:
    """A bearer token for the department client, renewed before it gets old."""
    token, issued = setup.xinlian_token
    if not token or time.monotonic() - issued > TOKEN_MAX_AGE:
        base = setup.gateway_urls["xinlian"].removesuffix("/graphql")
        response = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"}, timeout=30,
                              auth=(setup.xinlian_client["client_id"], setup.xinlian_client["client_secret"]))
        if response.status_code != 200:
            raise SetupError(f"Xinlian refused the token request: {response.status_code} {response.text[:300]}")
        token, issued = response.json()["access_token"], time.monotonic()
        setup.xinlian_token = token, issued
    return {"authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Subjects:
    """Whom the requests ask about, in turn: one company per profile request, `batch` per batch request."""

    profile: tuple[str, ...]
    batch: tuple[tuple[str, ...], ...]

    @classmethod
    def choose(cls, companies: Sequence[dict[str, Any]], batch: int, rotate: bool) -> "Subjects":
        codes = [c["uscc"] for c in companies]
        if not rotate:
            return cls((codes[0],), (tuple(codes[:batch]),))
        chunks = tuple(tuple(codes[i : i + batch]) for i in range(0, len(codes) - batch + 1, batch))
        return cls(tuple(codes), chunks)

    def keys(self, query: str) -> list[list[str]]:
        """The subject keys of each request of `query`, in the order they are sent."""
        return [[c] for c in self.profile] if query == "profile" else [list(b) for b in self.batch]


def request_bodies(gateway: str, query: str, subjects: Subjects) -> list[dict[str, Any]]:
    document = documents()[gateway][query]
    if query == "profile":
        return [{"query": document, "variables": {"uscc": code}} for code in subjects.profile]
    return [{"query": document, "variables": {"usccs": list(codes)}} for codes in subjects.batch]


def headers_for(setup: Setup, gateway: str) -> dict[str, str]:
    return xinlian_headers(setup) if gateway == "xinlian" else {}


def verify(setup: Setup, gateways: Sequence[str], subjects: Subjects, profiles: int) -> dict[str, Any]:
    """Ask each gateway every batch request and the first `profiles` profile requests the points will
    send; every normalised answer must equal the generated data (and so the other gateways' answers).
    Raises `AnswersDiffer` naming the gateway, the request and the first difference."""
    by_code = {c["uscc"]: c for c in setup.companies}
    report: dict[str, Any] = {}
    with httpx.Client(timeout=120) as client:
        for query in QUERIES:
            keys = subjects.keys(query)
            count = min(len(keys), profiles) if query == "profile" else len(keys)
            for gateway in gateways:
                answers = []
                bodies = request_bodies(gateway, query, subjects)[:count]
                for i, (body, codes) in enumerate(zip(bodies, keys)):
                    where = f"{gateway} {query} request {i} ({codes[0]}{' ...' if len(codes) > 1 else ''})"
                    response = client.post(setup.gateway_urls[gateway], json=body, headers=headers_for(setup, gateway))
                    if response.status_code != 200:
                        raise AnswersDiffer(f"{where}: HTTP {response.status_code}: {response.text[:500]}")
                    answer = response.json()
                    if answer.get("errors"):
                        raise AnswersDiffer(f"{where}: GraphQL errors: {json.dumps(answer['errors'], ensure_ascii=False)[:800]}")
                    data = answer.get("data") or {}
                    root = next(iter(data.values()), None) if len(data) == 1 else None
                    got = normalise(root) if query == "profile" else [normalise(c) for c in root or []]
                    want = (normalise(expected(by_code[codes[0]])) if query == "profile"
                            else [normalise(expected(by_code[c])) for c in codes])
                    difference = first_difference(got, want)
                    if difference:
                        raise AnswersDiffer(f"{where} differs from the generated data at {difference}")
                    answers.append(len(response.content))
                report[f"{gateway}.{query}"] = {"requests_checked": count, "response_bytes_mean": statistics.fmean(answers)}
    report["all_equal"] = True  # every answer equalled the data, hence every other gateway's answer
    return report


def direct_bodies(query: str, subjects: Subjects) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """subgraph → form → request bodies: the subgraph calls as the peers make them ("federation":
    `company`/`companies` on the market, `_entities` elsewhere) and as Xinlian's connector makes them."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, family, _, root in SUBGRAPHS:
        inner = " ".join(gql_name(family, n) for n in PROFILE_FIELDS[family])
        sel = f"{family_field(family)} {{ {inner} }}"
        forms: dict[str, list[dict[str, Any]]] = {"federation": [], "connector": []}
        for keys in subjects.keys(query):
            forms["connector"].append({
                "query": f"query xinlian_{family}($keys: [String!]!) {{ {root}(usccs: $keys) {{ uscc {sel} }} }}",
                "variables": {"keys": keys}, "operationName": f"xinlian_{family}",
            })
            if name != "market":
                forms["federation"].append({
                    "query": "query($representations: [_Any!]!) { _entities(representations: $representations) "
                             f"{{ ... on Company {{ {sel} }} }} }}",
                    "variables": {"representations": [{"__typename": "Company", "uscc": k} for k in keys]},
                })
            elif query == "profile":
                forms["federation"].append({"query": f"query($u: String!) {{ company(uscc: $u) {{ __typename uscc {sel} }} }}",
                                            "variables": {"u": keys[0]}})
            else:
                forms["federation"].append({
                    "query": f"query($u: [String!]!) {{ companies(usccs: $u) {{ __typename uscc {sel} }} }}",
                    "variables": {"u": keys},
                })
        out[name] = forms
    return out


def measure_direct(setup: Setup, subjects: Subjects, seconds: float) -> dict[str, Any]:
    """p50 of single subgraph calls at concurrency 1, per query, subgraph and form."""
    out: dict[str, Any] = {}
    for query in QUERIES:
        for name, forms in direct_bodies(query, subjects).items():
            for form, bodies in forms.items():
                base = f"http://127.0.0.1:{setup.subgraph_ports[name]}"
                r = loadgen(setup.node, setup.scratch, setup.run_dir, f"{base}/graphql", bodies, concurrency=1,
                            duration=seconds, warmup=min(0.3, seconds), core=setup.other_core,
                            stats_urls=[f"{base}/stats"])
                if r["errors"]:
                    raise SetupError(f"subgraph {name} ({form}, {query}) answered with errors: {r['firstError']}")
                server = r["subgraphs"][0]
                out.setdefault(query, {}).setdefault(name, {})[form] = {
                    "p50_ms": r["latency"]["p50"], "p99_ms": r["latency"]["p99"], "rps": r["rps"], "bytes": r["bytes"],
                    "server_p50_us": server.get("p50_us"), "server_p99_us": server.get("p99_us"),
                }
    return out


def machine_process_seconds() -> float:
    """User + system CPU seconds of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:4]]
    return sum(values) / os.sysconf("SC_CLK_TCK")


def foreign_cpu(setup: Setup, seconds: float) -> float:
    """% of one core used over `seconds` by processes this script did not start."""
    pids = setup.procs.pids()
    machine0, ours0, t0 = machine_process_seconds(), cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    machine1, ours1, t1 = machine_process_seconds(), cpu_seconds(pids), time.monotonic()
    return max(0.0, 100 * ((machine1 - machine0) - (ours1 - ours0)) / (t1 - t0))


def wait_for_quiet(args: argparse.Namespace, setup: Setup) -> float:
    """Before a point: wait (within the run's budget) while other processes load the machine."""
    foreign = foreign_cpu(setup, 0.5)
    if foreign <= args.quiet_threshold or setup.waited_s >= args.max_wait:
        return foreign
    log(f"other processes use {foreign:.0f}% of a core: waiting for a quiet machine "
        f"(at most {args.max_wait - setup.waited_s:.0f} s more in this run)")
    started = time.monotonic()
    while setup.waited_s + (time.monotonic() - started) < args.max_wait:
        foreign = foreign_cpu(setup, 2.0)
        if foreign <= args.quiet_threshold:
            break
    setup.waited_s += time.monotonic() - started
    log(f"going on after {time.monotonic() - started:.0f} s (other processes: {foreign:.0f}% of a core)")
    return foreign


def idle_cpu(setup: Setup, seconds: float = 3.0) -> dict[str, float]:
    """Each gateway's CPU use while nobody asks it anything (pollers, timers), in % of one core."""
    trees = {g: process_tree(item.pid) for g, item in setup.gateway_roots.items()}
    before = {g: cpu_seconds(p) for g, p in trees.items()}
    time.sleep(seconds)
    return {g: 100 * (cpu_seconds(p) - before[g]) / seconds for g, p in trees.items()}


def point(
    setup: Setup, gateway: str, query: str, subjects: Subjects, concurrency: int, duration: float, warmup: float,
) -> dict[str, Any]:
    root = setup.gateway_roots[gateway]
    if root.process.poll() is not None:
        raise SetupError(f"{gateway} exited with {root.process.returncode}:\n{root.tail()}")
    tree = process_tree(root.pid)
    return loadgen(
        setup.node, setup.scratch, setup.run_dir, setup.gateway_urls[gateway], request_bodies(gateway, query, subjects),
        concurrency=concurrency, duration=duration, warmup=warmup, pids=tree,
        our_pids=[p for p in setup.procs.pids() if p not in tree], headers=headers_for(setup, gateway),
        core=setup.other_core, stats_urls=[f"http://127.0.0.1:{port}/stats" for port in setup.subgraph_ports.values()],
    )


def disturbed_retried(
    args: argparse.Namespace, setup: Setup, gateway: str, query: str, subjects: Subjects, concurrency: int,
) -> dict[str, Any]:
    """One point, run again (at most `--retries` times, within the waiting budget) while processes
    this script did not start used more than `--quiet-threshold` of a core during it; the least
    disturbed run is kept."""
    best: dict[str, Any] | None = None
    for attempt in range(1 + args.retries):
        before = wait_for_quiet(args, setup)
        started = time.monotonic()
        r = point(setup, gateway, query, subjects, concurrency, args.duration, args.warmup)
        r.update(foreign_before_pct=before, attempts=attempt + 1)
        if best is None or r["foreignCpuPct"] < best["foreignCpuPct"]:
            best = r
        if r["foreignCpuPct"] <= args.quiet_threshold or attempt == args.retries or setup.waited_s >= args.max_wait:
            break
        setup.waited_s += time.monotonic() - started  # a disturbed run is time lost to the other processes
        log(f"other processes used {r['foreignCpuPct']:.0f}% of a core during {gateway} {query} c={concurrency}:"
            " running it again")
    assert best is not None
    return best


def run_repetition(
    args: argparse.Namespace, setup: Setup, subjects: Subjects, rep: int, progress: list[int],
) -> list[dict[str, Any]]:
    """One repetition: every query, concurrency and gateway, the gateways' order rotated by `rep`."""
    points: list[dict[str, Any]] = []
    shift = rep % len(args.gateways)
    order = list(args.gateways[shift:]) + list(args.gateways[:shift])
    for query in QUERIES:
        for concurrency in args.concurrency:
            for gateway in order:
                progress[0] += 1
                r = disturbed_retried(args, setup, gateway, query, subjects, concurrency)
                r.update(gateway=gateway, query=query, concurrency=concurrency, repetition=rep + 1)
                points.append(r)
                lat = r["latency"]
                log(f"[{progress[0]}/{progress[1]}] rep {rep + 1} {query:<7} c={concurrency:<3} {gateway:<7} "
                    f"{r['rps']:8.1f} req/s  p50 {lat['p50'] or 0:7.2f} ms  p99 {lat['p99'] or 0:7.2f} ms  "
                    f"cpu {r['cpu_ms_per_request'] or 0:6.2f} ms/req  errors {r['errors']}  "
                    f"others {r['foreignCpuPct']:.0f}%"
                    + (f"  ({r['firstError'][:160]})" if r["errors"] else ""))
    return points


def med(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(
    setup: Setup, points: Sequence[dict[str, Any]], direct: Sequence[dict[str, Any]], threshold: float,
) -> dict[str, Any]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["query"], p["gateway"], p["concurrency"]), []).append(p)
    gateway_core = str(setup.gateway_core if setup.gateway_core is not None else 0)
    other_core = str(setup.other_core if setup.other_core is not None else 1)
    table: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (query, gateway, concurrency), ps in sorted(groups.items()):
        table.setdefault(query, {}).setdefault(gateway, {})[str(concurrency)] = {
            "repetitions": len(ps),
            "rps": med([p["rps"] for p in ps]),
            "p50_ms": med([p["latency"]["p50"] for p in ps]),
            "p99_ms": med([p["latency"]["p99"] for p in ps]),
            "cpu_ms_per_request": med([p["cpu_ms_per_request"] for p in ps]),
            "completed": sum(p["completed"] for p in ps),
            "non200": sum(p["non200"] for p in ps),
            "graphql_errors": sum(p["graphqlErrors"] for p in ps),
            "transport_errors": sum(p["transportErrors"] for p in ps),
            "gateway_core_busy_pct": med([p["cores"].get(gateway_core) for p in ps]),
            "other_core_busy_pct": med([p["cores"].get(other_core) for p in ps]),
            "loadgen_cpu_pct": med([100 * p["loadgenCpuMs"] / 1000 / p["seconds"] for p in ps]),
            "foreign_cpu_pct": med([p["foreignCpuPct"] for p in ps]),
            # subgraph calls per gateway request, and the slowest subgraph's median handling time (server side)
            "subgraph_calls_per_request": med([sum(x.get("count", 0) for x in p["subgraphs"]) / p["completed"]
                                               for p in ps if p["completed"]]),
            "subgraph_p50_us": med([max((x.get("p50_us") or 0 for x in p["subgraphs"]), default=None) for p in ps]),
            "first_error": next((p["firstError"] for p in ps if p["firstError"]), None),
        }
    # the slowest single subgraph call (p50, median over repetitions), per query and form
    slowest: dict[str, dict[str, dict[str, Any]]] = {}
    for query in QUERIES:
        for form in ("federation", "connector"):
            per = {name: med([d[query][name][form]["p50_ms"] for d in direct if query in d]) for name, *_ in SUBGRAPHS}
            server = {name: med([d[query][name][form]["server_p50_us"] for d in direct if query in d])
                      for name, *_ in SUBGRAPHS}
            present = {k: v for k, v in per.items() if v is not None}
            if present:
                name = max(present, key=lambda k: present[k])
                slowest.setdefault(query, {})[form] = {"subgraph": name, "p50_ms": present[name], "all_p50_ms": per,
                                                       "server_p50_us": server}
    overhead: dict[str, dict[str, float | None]] = {}
    for query, gateways in table.items():
        for gateway, by_c in gateways.items():
            form = "connector" if gateway == "xinlian" else "federation"
            p50 = (by_c.get("1") or {}).get("p50_ms")
            floor = slowest.get(query, {}).get(form, {}).get("p50_ms")
            overhead.setdefault(query, {})[gateway] = None if p50 is None or floor is None else p50 - floor
    disturbed = [
        {"gateway": p["gateway"], "query": p["query"], "concurrency": p["concurrency"], "repetition": p["repetition"],
         "foreign_cpu_pct": p["foreignCpuPct"]}
        for p in points if p["foreignCpuPct"] > threshold
    ]
    return {"table": table, "slowest_subgraph_call": slowest, "overhead_c1_ms": overhead, "disturbed_points": disturbed}


def machine(setup: Setup) -> dict[str, Any]:
    model = cpu_model()
    python_packages: dict[str, str | None] = {}
    for name in PYTHON_PACKAGES:
        try:
            python_packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            python_packages[name] = None
    node_version = subprocess.run([setup.node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()

    def git(*a: str) -> str | None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["git", "-C", str(HERE.parent), *a], capture_output=True, text=True, timeout=10)
            return done.stdout.strip() if done.returncode == 0 else None
        return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node_version,
        "python_packages": python_packages,
        "node_packages": node_versions(setup.scratch),
        "commit": git("rev-parse", "--short", "HEAD"),
        "modified_tracked_files": None if status is None else len(status.splitlines()),
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def headline(results: dict[str, Any], query: str, gateways: Sequence[str]) -> list[str]:
    """The issue's table: CPU per request at c=8, req/s and p50/p99 at c=32, overhead at c=1."""
    table, s = results["summary"]["table"].get(query, {}), results["summary"]

    def cell(g: str, c: str, key: str, digits: int = 1) -> str:
        return fmt(table.get(g, {}).get(c, {}).get(key), digits)

    title = ("profile query, one company, 17 fields from 4 departments" if query == "profile"
             else f"batch of {results['data']['batch']} companies")
    rows = [f"| {title} | " + " | ".join(LABELS[g] for g in gateways) + " |", "|---|" + "---|" * len(gateways)]
    concs = [str(c) for c in results["options"]["concurrency"]]
    if "8" in concs:
        rows.append("| CPU per request (ms), concurrency 8 | " + " | ".join(cell(g, "8", "cpu_ms_per_request") for g in gateways) + " |")
    for c in (c for c in ("32", "64") if c in concs):
        rows.append(f"| req/s at concurrency {c} | " + " | ".join(cell(g, c, "rps", 0) for g in gateways) + " |")
        rows.append(f"| p50 / p99 at concurrency {c} (ms) | "
                    + " | ".join(f"{cell(g, c, 'p50_ms', 0)} / {cell(g, c, 'p99_ms', 0)}" for g in gateways) + " |")
    if "8" in concs:
        rows.append("| req/s at concurrency 8 | " + " | ".join(cell(g, "8", "rps", 0) for g in gateways) + " |")
    if "1" in concs:
        rows.append("| overhead at concurrency 1 (p50 − slowest subgraph call) | "
                    + " | ".join(f"{fmt(s['overhead_c1_ms'].get(query, {}).get(g), 2)} ms" for g in gateways) + " |")
    return rows


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["summary"]
    table = s["table"]
    gateways = [g for g in GATEWAYS if g in results["options"]["gateways"]]
    concs = [str(c) for c in results["options"]["concurrency"]]
    o, d = results["options"], results["data"]
    out = [
        "Peer benchmark: Xinlian vs Apollo Gateway vs Hive Gateway (bench/peers.py)",
        f"  command     {results['command']}",
        f"  machine     {m['cores']} cores, {m['cpu_model']}, Linux {m['kernel']}; Python {m['python']}, Node {m['node']}",
        "  node        " + ", ".join(f"{k} {v}" for k, v in m["node_packages"].items()),
        "  python      " + ", ".join(f"{k} {v}" for k, v in m["python_packages"].items()),
        f"  source      commit {m['commit']}, {m['modified_tracked_files']} tracked files modified in the work tree",
        f"  pinning     {results['pinning']}",
        f"  run         {o['repetitions']} repetition(s) x ({o['warmup']:g} s warm-up + {o['duration']:g} s timed) per point,"
        f" gateways interleaved; medians over repetitions; started {results['started_at']},"
        f" took {results['elapsed_s'] / 60:.1f} min (waited {results['waited_s']:.0f} s for a quiet machine)",
        f"  data        {d['companies']} companies (records: {d['records']}); subjects: {d['subjects']}"
        + (f" (each profile request asks about the next of the {d['profile_requests']} companies, each batch request"
           f" about the next {d['batch']} of them: {d['batch_requests']} different batches)" if d["subjects"] == "rotate"
           else f" (every profile request asks about {d['first_profile_uscc']}, every batch request about the same"
                f" {d['batch']})"),
        "  checked     before measuring, every gateway's answers equalled the generated data: "
        + ", ".join(f"{k} {v['requests_checked']} requests" for k, v in results["verification"].items()
                    if isinstance(v, dict)),
        "  idle CPU    " + ", ".join(f"{LABELS[g]} {v:.1f}%" for g, v in results["idle_cpu_pct"].items()) + " of a core",
    ]
    if results.get("audit_entries") is not None:
        out.append(f"  audit       Xinlian's audit trail: {results['audit_entries']['start']} entries before the points,"
                   f" {results['audit_entries']['end']} after")
    for query in QUERIES:
        title = ("profile: one company, 17 fields from 4 departments" if query == "profile"
                 else f"batch: {results['data']['batch']} companies, the same 17 fields each")
        out += ["", f"## {title}", "", *headline(results, query, gateways), "",
                "| conc | gateway | req/s | p50 ms | p99 ms | CPU ms/req | errors: non-200 / GraphQL / transport |"
                " subgraph calls/req | slowest subgraph p50 µs | gateway core % | other core % | other processes % |",
                "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
        for c in concs:
            for g in gateways:
                row = table.get(query, {}).get(g, {}).get(c)
                if not row:
                    continue
                out.append(
                    f"| {c} | {LABELS[g]} | {fmt(row['rps'])} | {fmt(row['p50_ms'], 2)} | {fmt(row['p99_ms'], 2)} |"
                    f" {fmt(row['cpu_ms_per_request'], 2)} | {row['non200']} / {row['graphql_errors']} /"
                    f" {row['transport_errors']} | {fmt(row['subgraph_calls_per_request'], 1)} |"
                    f" {fmt(row['subgraph_p50_us'], 0)} | {fmt(row['gateway_core_busy_pct'], 0)} |"
                    f" {fmt(row['other_core_busy_pct'], 0)} | {fmt(row['foreign_cpu_pct'], 0)} |"
                )
        for form, info in s["slowest_subgraph_call"].get(query, {}).items():
            calls = ", ".join(f"{n} {fmt(v, 3)} ms ({fmt(info['server_p50_us'][n], 0)} µs)"
                              for n, v in info["all_p50_ms"].items())
            who = "as Apollo/Hive ask: company, _entities" if form == "federation" else "as Xinlian's connector asks"
            out.append(f"  one subgraph call at concurrency 1, p50 round trip (subgraph's own handling), {who}: {calls}")
        if "xinlian" in gateways and len(gateways) > 1:
            out += ["", "| Xinlian ÷ peer | " + " | ".join(f"c={c}" for c in concs) + " |", "|---|" + "---:|" * len(concs)]
            for peer in (g for g in gateways if g != "xinlian"):
                for label, key in (("req/s", "rps"), ("p50", "p50_ms"), ("p99", "p99_ms"), ("CPU/req", "cpu_ms_per_request")):
                    cells = [ratio(table.get(query, {}).get("xinlian", {}).get(c, {}).get(key),
                                   table.get(query, {}).get(peer, {}).get(c, {}).get(key)) for c in concs]
                    out.append(f"| {label} vs {LABELS[peer]} | " + " | ".join(cells) + " |")
        for g in gateways:
            for c, row in table.get(query, {}).get(g, {}).items():
                if row["first_error"]:
                    out.append(f"  first error, {LABELS[g]} c={c}: {row['first_error'][:300]}")
    if s["disturbed_points"]:
        out += ["", f"WARNING: {len(s['disturbed_points'])} point(s) ran while other processes used more than "
                f"{results['options']['quiet_threshold']:g}% of a core (the figures of those may be off): "
                + "; ".join(f"{LABELS[d['gateway']]} {d['query']} c={d['concurrency']} rep {d['repetition']}"
                            f" ({d['foreign_cpu_pct']:.0f}%)" for d in s["disturbed_points"][:20])]
    out += ["", "req/s: higher is better; latency, CPU and the ratios of them: lower is better. CPU ms/req = utime +"
            " stime of the gateway's process tree (all threads) over the timed window ÷ requests completed. Subgraph"
            " calls/req and p50 µs: counted by the subgraphs themselves (handling time: body read → answer written)."
            " Core %: busy share of the gateways' core and of the other core (subgraphs + load generator). \"other"
            " processes\": CPU of processes this run did not start, in % of one core (0 on a quiet machine)."]
    return "\n".join(out)


def records(companies: Sequence[dict[str, Any]], key: str) -> int:
    """How many records of one family the companies have (a single record counts 1)."""
    return sum(len(c[key]) if isinstance(c[key], list) else int(c[key] is not None) for c in companies)


def run(args: argparse.Namespace, setup: Setup, results: dict[str, Any]) -> None:
    results["pinning"] = ("unpinned" if setup.gateway_core is None else
                          f"gateways on core {setup.gateway_core}; subgraphs, load generator and this script on core"
                          f" {setup.other_core}")
    if setup.other_core is not None:
        os.sched_setaffinity(0, {setup.other_core})
    results["machine"] = machine(setup)
    (setup.run_dir / "data.json").write_text(json.dumps({"companies": setup.companies}, ensure_ascii=False),
                                             encoding="utf-8")
    subjects = Subjects.choose(setup.companies, args.batch, rotate=args.subjects == "rotate")
    batch = setup.companies[: args.batch]
    results["data"] = {
        "companies": len(setup.companies), "seed": SEED, "subjects": args.subjects, "batch": args.batch,
        "profile_requests": len(subjects.profile), "batch_requests": len(subjects.batch),
        "first_profile_uscc": subjects.profile[0],
        "records": ", ".join(f"{key} {records(setup.companies, key)}" for key in map(family_field, PROFILE_FIELDS)),
        "first_batch_records": ", ".join(f"{key} {records(batch, key)}" for key in map(family_field, PROFILE_FIELDS)),
    }
    results["queries"] = documents()
    start_subgraphs(setup)
    supergraph = compose(setup)
    start_gateways(setup, args.gateways, supergraph)
    if setup.xinlian_data is not None:
        results["xinlian_connectors_toml"] = (setup.xinlian_data / "connectors.toml").read_text(encoding="utf-8")
    log("checking that every gateway returns the generated data")
    results["verification"] = verify(setup, args.gateways, subjects, args.check_profiles)
    log("every gateway returned the same data for the profile and the batch")
    results["idle_cpu_pct"] = idle_cpu(setup)
    if args.initial_warmup > 0:
        log(f"initial warm-up: {args.initial_warmup:g} s per gateway and query at concurrency 8")
        for gateway in args.gateways:
            for query in QUERIES:
                point(setup, gateway, query, subjects, 8, 0.1, args.initial_warmup)
    results["audit_entries"] = {"start": audit_entries(setup.xinlian_data)} if setup.xinlian_data else None
    n_points = args.repetitions * len(QUERIES) * len(args.concurrency) * len(args.gateways)
    direct_s = min(1.5, args.duration)
    estimate = n_points * (args.warmup + args.duration + 1.3) + args.repetitions * 16 * (direct_s + 0.6)
    log(f"{n_points} points and the direct subgraph calls: about {estimate / 60:.0f} min on a quiet machine")
    direct: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    progress = [0, n_points]
    for rep in range(args.repetitions):
        log(f"repetition {rep + 1}: direct subgraph calls at concurrency 1")
        wait_for_quiet(args, setup)
        direct.append(measure_direct(setup, subjects, direct_s))
        points += run_repetition(args, setup, subjects, rep, progress)
    results["direct_subgraph_calls"] = direct
    results["points"] = points
    if results["audit_entries"] is not None and setup.xinlian_data is not None:
        results["audit_entries"]["end"] = audit_entries(setup.xinlian_data)
    results["waited_s"] = setup.waited_s
    results["summary"] = summarise(setup, points, direct, args.quiet_threshold)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": " ".join(["python", "bench/peers.py", *(sys.argv[1:] if argv is None else argv)]),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "options": {k: v for k, v in vars(args).items() if k not in ("json", "json_out")},
    }

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    run_dir = Path(tempfile.mkdtemp(prefix="xinlian-peers-"))
    procs = Processes(run_dir, pin=not args.no_pin)
    code = 0
    try:
        node = node_binary()
        scratch = Path(args.scratch).resolve()
        ensure_node_modules(scratch)
        gateway_core, other_core = pick_cores(not args.no_pin)
        procs.pin = gateway_core is not None
        log(f"run directory {run_dir}; generating {args.companies} companies")
        setup = Setup(node=node, scratch=scratch, run_dir=run_dir, companies=generate_companies(args.companies),
                      procs=procs, gateway_core=gateway_core, other_core=other_core)
        run(args, setup, results)
        results["elapsed_s"] = time.monotonic() - started
        text = json.dumps(results, ensure_ascii=False, indent=2, default=str)
        if args.json_out:
            Path(args.json_out).write_text(text + "\n", encoding="utf-8")
        print(text if args.json else render(results))
    except SetupError as exc:
        log(f"setup failed: {exc}")
        code = 2
    except AnswersDiffer as exc:
        log(f"THE GATEWAYS' ANSWERS DIFFER; nothing was measured: {exc}")
        code = 3
    except (KeyboardInterrupt, SystemExit):
        log("interrupted: stopping every process this run started")
        raise
    finally:
        procs.stop_all()
        if args.keep or code:
            log(f"kept the run directory (logs, data, supergraph, Xinlian data dir): {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
