"""What-if measurements: the profile query served in-process, with and without candidate fixes.

Each variant opens a fresh hub (the real `create_app` and its lifespan, no HTTP server) on the
demo district, applies its change *to the objects of this process only* (no source file is
touched), sends the same full-profile query through `httpx.ASGITransport`, and reports wall
latency percentiles and CPU milliseconds per request (`time.process_time`, so the aiosqlite
worker threads are counted too; CPU is the steadier figure on a shared machine). Variants are
measured in `--rounds` interleaved rounds (the order rotates each round) and each figure is the
median over the rounds, with the CPU range shown, so a noisy neighbour hits every variant alike.

Variants:

- `baseline`: the hub as built.
- `stable-validation-rules`: the query-depth and alias-count rules built once per schema
  instead of once per request, so strawberry's ValidationCache can hit (today its key contains
  rule classes that `QueryDepthLimiter`/`MaxAliasesLimiter` create anew on every request).
- `no-pool-pre-ping`: connector engines without `pool_pre_ping` (a `SELECT 1` round trip
  through the aiosqlite thread on every checkout).
- `no-pre-ping-no-reset`: also without the pool's ROLLBACK on return (read-only SQLite
  connections have no transaction to roll back; not a change for server databases).
- `pool-20`: connector pools of 20 connections (default 5 + 10 overflow). Under concurrency
  the overflow connections are opened and closed per use: each is a new aiosqlite thread and a
  new database connection. Only visible with `--concurrency` above 1.
- `sqlite-one-hop`: each fetch runs as ONE blocking function in a worker thread
  (`asyncio.to_thread` over a synchronous SQLAlchemy engine on the same read-only file),
  instead of aiosqlite's thread round trip per DB-API call (connect check, cursor, execute,
  fetch, close, rollback: about ten per fetch, each a GIL hand-over between two threads).
- `sqlite-inline`: the same function called on the event loop, no thread at all. Not a fix
  (a slow department query would block every request); it shows the floor.
- `all`: stable validation rules + sqlite-one-hop.

    python bench/what_if.py                     # 300 requests per variant
    python bench/what_if.py --requests 500 --json
    python bench/what_if.py --concurrency 8         # requests in flight at once, in-process
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_services  # noqa: E402
from hub_bench import is_clean, machine, profile_query, registered_codes, richest_subject, summary  # noqa: E402
from xinlian.connectors.registry import load_connectors  # noqa: E402
from xinlian.hub.config import Settings  # noqa: E402
from xinlian.hub.principal import Principal  # noqa: E402
from xinlian.policies import load_policy  # noqa: E402


def stable_validation_rules(runtime: Any) -> None:
    """Replace per-request depth/alias limiter factories by one AddValidationRules with fixed classes."""
    from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, QueryDepthLimiter

    for schema in (runtime.schema, runtime.public_schema):
        kept: list[Any] = []
        rules: list[Any] = []
        for factory in schema.extensions:
            probe = factory() if callable(factory) and not isinstance(factory, type) else None
            if isinstance(probe, (QueryDepthLimiter, MaxAliasesLimiter)):
                rules.extend(probe.validation_rules)  # built once, reused by every request
            else:
                kept.append(factory)
        fixed = tuple(rules)
        kept.append(lambda fixed=fixed: AddValidationRules(list(fixed)))
        schema.extensions = kept


def _sql_connectors(runtime: Any) -> list[Any]:
    """The hub's SQL connectors (unwrapped from any resilience wrapper the executor adds)."""
    out = []
    for connector in runtime.federation.connectors:
        inner = getattr(connector, "connector", connector)
        if getattr(inner, "kind", None) == "sql" and hasattr(inner, "_url"):
            out.append(inner)
    return out


async def _rebuild_engines(runtime: Any, **options: Any) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    for connector in _sql_connectors(runtime):
        await connector.close()
        connector._engine = create_async_engine(connector._url, **options)


async def no_pool_pre_ping(runtime: Any) -> None:
    await _rebuild_engines(runtime)


async def no_pre_ping_no_reset(runtime: Any) -> None:
    await _rebuild_engines(runtime, pool_reset_on_return=None)


async def pool_20(runtime: Any) -> None:
    await _rebuild_engines(runtime, pool_pre_ping=True, pool_size=20, max_overflow=0)


def _sync_rows(connector: Any, inline: bool) -> None:
    """Replace the connector's `_rows` (its one execution seam) by a synchronous engine."""
    from sqlalchemy import create_engine

    engine = create_engine(connector._url.set(drivername="sqlite"), pool_size=20, max_overflow=0)

    def run(statement: Any) -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(statement).all())

    async def rows(statement: Any) -> list[Any]:
        return run(statement) if inline else await asyncio.to_thread(run, statement)

    connector._rows = rows


async def sqlite_one_hop(runtime: Any) -> None:
    for connector in _sql_connectors(runtime):
        if connector._url.get_backend_name() == "sqlite":
            _sync_rows(connector, inline=False)


async def sqlite_inline(runtime: Any) -> None:
    for connector in _sql_connectors(runtime):
        if connector._url.get_backend_name() == "sqlite":
            _sync_rows(connector, inline=True)


async def everything(runtime: Any) -> None:
    stable_validation_rules(runtime)
    await sqlite_one_hop(runtime)


async def _nothing(runtime: Any) -> None:
    return None


async def _stable(runtime: Any) -> None:
    stable_validation_rules(runtime)


VARIANTS: dict[str, Callable[[Any], Any]] = {
    "baseline": _nothing,
    "stable-validation-rules": _stable,
    "no-pool-pre-ping": no_pool_pre_ping,
    "no-pre-ping-no-reset": no_pre_ping_no_reset,
    "pool-20": pool_20,
    "sqlite-one-hop": sqlite_one_hop,
    "sqlite-inline": sqlite_inline,
    "all": everything,
}


async def measure(
    settings: Settings, client: dict[str, str], query: str, uscc: str, variant: str, warmup: int, runs: int, concurrency: int
) -> dict[str, Any]:
    from strawberry.extensions.validation_cache import _get_validate_cache

    from xinlian.hub.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        await VARIANTS[variant](runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.issuer) as http:
            token = (
                await http.post("/oauth/token", auth=(client["client_id"], client["client_secret"]),
                                data={"grant_type": "client_credentials"})
            ).json()["access_token"]
            headers = {"authorization": f"Bearer {token}"}
            body = {"query": query, "variables": {"uscc": uscc}}
            for _ in range(warmup):
                await http.post("/graphql", json=body, headers=headers)
            cache = _get_validate_cache(512)
            before = cache.cache_info()
            first = await http.post("/graphql", json=body, headers=headers)
            digest = hashlib.sha256(first.content).hexdigest()
            samples: list[float] = []
            sem = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with sem:
                    t0 = time.perf_counter()
                    response = await http.post("/graphql", json=body, headers=headers)
                    samples.append(time.perf_counter() - t0)
                    if not is_clean(response):
                        raise RuntimeError(f"{variant}: {response.status_code} {response.text[:300]}")

            cpu0, wall0 = time.process_time(), time.perf_counter()
            if concurrency == 1:
                for _ in range(runs):
                    await one()
            else:
                await asyncio.gather(*(one() for _ in range(runs)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            after = cache.cache_info()
    return {
        "variant": variant,
        "latency_ms": summary(samples),
        "cpu_ms_per_request": 1000.0 * cpu / runs,
        "requests_per_s": runs / wall,
        "response_sha256": digest,
        "validation_cache_hits": after.hits - before.hits,
        "validation_cache_misses": after.misses - before.misses,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="In-process what-if measurements of candidate hub fixes.")
    p.add_argument("--subjects", type=int, default=2000)
    p.add_argument("--requests", type=int, default=200, help="timed requests per variant and round (default 200)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all variants (default 3)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (default 1: sequential)")
    p.add_argument("--court-nodelay", action="store_true", help="serve the demo court API with TCP_NODELAY")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from xinlian.hub.cli.demo import ensure_demo_clients
    from xinlian.hub.demo.generator import build_demo_district

    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="xinlian-whatif-")
    data_dir = Path(args.data_dir).resolve() if args.data_dir else Path(tmp.name) / "data"  # type: ignore[union-attr]
    stack = contextlib.ExitStack()
    try:
        build_demo_district(data_dir, legal_persons=args.subjects, natural_persons=min(500, max(args.subjects // 4, 3)))
        settings = Settings.from_env(data_dir, port=8000)
        clients = asyncio.run(ensure_demo_clients(settings))
        stack.enter_context(
            demo_services.running(data_dir, data_dir / "what-if-demo-services.log", nodelay=args.court_nodelay)
        )
        department = clients["department"]
        policy = load_policy(settings.policy_path)
        principal = Principal(department["client_id"], "department", frozenset(department["scope"].split()))
        query, _ = profile_query(policy, principal)
        async def pick() -> str:
            connectors = load_connectors(settings.connectors_path or data_dir / "connectors.toml", data_dir)
            try:
                return (await richest_subject(connectors, registered_codes(connectors)))[0]
            finally:
                for c in connectors:
                    await c.close()

        subject = asyncio.run(pick())
        names = list(VARIANTS)
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in names}
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[: round_ % len(names)]
            for variant in order:
                print(f"[what-if] round {round_ + 1}/{args.rounds}: {variant}", file=sys.stderr, flush=True)
                runs[variant].append(
                    asyncio.run(measure(settings, department, query, subject, variant, args.warmup, args.requests, args.concurrency))
                )
        rows = [
            {
                "variant": v,
                "rounds": runs[v],
                "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in runs[v]),
                "p95_ms": statistics.median(r["latency_ms"]["p95"] for r in runs[v]),
                "requests_per_s": statistics.median(r["requests_per_s"] for r in runs[v]),
                "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in runs[v]),
                "cpu_ms_min": min(r["cpu_ms_per_request"] for r in runs[v]),
                "cpu_ms_max": max(r["cpu_ms_per_request"] for r in runs[v]),
                "validation_cache_hits": sum(r["validation_cache_hits"] for r in runs[v]),
                "validation_cache_misses": sum(r["validation_cache_misses"] for r in runs[v]),
                "same_response_as_baseline": all(
                    r["response_sha256"] == runs["baseline"][0]["response_sha256"] for r in runs[v]
                ),
            }
            for v in names
        ]
    finally:
        stack.close()
        if tmp is not None:
            tmp.cleanup()
    command = shlex.join(["python", *sys.argv]) if argv is None else shlex.join(["what_if.py", *argv])
    result = {"command": command, "machine": machine(), "subject": subject, "concurrency": args.concurrency, "variants": rows}
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    base = rows[0]["cpu_ms_per_request"]
    print(f"command  {command}")
    print(f"machine  {result['machine']['nproc']} CPUs, {result['machine']['cpu_model']}, Python {result['machine']['python']}")
    print(f"subject  {subject}; {args.requests} requests per variant and round after {args.warmup} warm-up,"
          f" {args.rounds} rounds, concurrency {args.concurrency}; in-process, no HTTP server; medians over rounds")
    print("variant                   wall p50  wall p95    req/s  CPU ms/req (min-max)   vs baseline  validation hit/miss  same body")
    for r in rows:
        print(f"{r['variant']:<24} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['requests_per_s']:>8.1f}"
              f" {r['cpu_ms_per_request']:>10.2f} ({r['cpu_ms_min']:.1f}-{r['cpu_ms_max']:.1f})"
              f" {100 * (r['cpu_ms_per_request'] / base - 1):>+10.0f}%  {r['validation_cache_hits']:>8}/{r['validation_cache_misses']:<8}"
              f"  {'yes' if r['same_response_as_baseline'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
