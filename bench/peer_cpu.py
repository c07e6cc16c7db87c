"""The peer benchmark's two queries served in process: hub CPU per request, and where it goes.

`bench/peers.py` measures Xinlian as a server next to Apollo and Hive. This script keeps its data
and its subgraphs (the four Node subgraphs of `bench/peers/`, 2,000 generated companies, Xinlian's
four `graphql` connectors, the default policy, audit on, rate limits off) but serves the hub *in
this process*, through the real ASGI app (gateway pipeline, token, audit, JSON) with
`httpx.ASGITransport`, so that a change to the executor can be measured and profiled without a
server in between:

    python bench/peer_cpu.py                        # profile and batch, 3 rounds, CPU ms per request
    python bench/peer_cpu.py --query batch --cprofile 40   # + a cProfile of the batch (top 40 by own time)
    python bench/peer_cpu.py --variants planned,graphql-core  # the plan executor on and off, interleaved

CPU is `time.process_time()` of this process (every thread: the event loop, the audit writer,
the connector's client) per request, which includes the in-process HTTP client's small share.
Every answer of the first round is checked against the generated data (as `peers.py` does) and,
with several variants, against the other variants' answers byte for byte. The subgraphs run on
the second core and this process on the first when two cores and `taskset` are available.
Loopback only; every loop is bounded by `--requests` and `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (bench/peers.py)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--query", choices=("profile", "batch", "both"), default="both")
    p.add_argument("--requests", type=int, default=0, help="timed requests per round (default: profile 300, batch 40)")
    p.add_argument("--warmup", type=int, default=0, help="untimed requests per round (default: profile 30, batch 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    p.add_argument("--variants", default="planned",
                   help="comma-separated: planned (the plan executor, as shipped), graphql-core (the plan executor"
                        " switched off: every document through Strawberry / graphql-core)")
    p.add_argument("--cprofile", type=int, default=0, help="print a cProfile (top N by own time) of one more round")
    p.add_argument("--companies", type=int, default=2000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--scratch", default=str(peers.PEERS / ".work"))
    return p.parse_args()


def set_variant(runtime: Any, variant: str) -> None:
    """Switch the planned executor on or off for this process's schemas."""
    try:
        from xinlian.hub.executor.planned import planner_of
    except ImportError:  # a tree without the planned executor: everything goes through graphql-core
        return
    for schema in (runtime.schema, runtime.public_schema):
        planner = planner_of(schema)
        if planner is not None:
            planner.enable(schema, variant == "planned")


async def serve(args: argparse.Namespace, data_dir: Path, client: dict[str, str], companies: list[dict[str, Any]]) -> None:
    from xinlian.hub.app import create_app
    from xinlian.hub.config import Settings

    os.environ.update(peers.XINLIAN_ENV)
    settings = Settings.from_env(data_dir)
    app = create_app(settings)
    subjects = peers.Subjects.choose(companies, args.batch, rotate=True)
    by_code = {c["uscc"]: c for c in companies}
    queries = ["profile", "batch"] if args.query == "both" else [args.query]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results: dict[tuple[str, str], list[float]] = {}
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.issuer, timeout=120) as http:
            token = (await http.post("/oauth/token", auth=(client["client_id"], client["client_secret"]),
                                     data={"grant_type": "client_credentials"})).json()["access_token"]
            headers = {"authorization": f"Bearer {token}"}
            cursor = {"profile": 0, "batch": 0}
            bodies = {q: peers.request_bodies("xinlian", q, subjects) for q in ("profile", "batch")}
            keys = {q: subjects.keys(q) for q in ("profile", "batch")}
            answers: dict[tuple[str, str], list[bytes]] = {}
            sent: list[tuple[str, str, list[str], httpx.Response]] = []

            async def one(query: str, check: bool, variant: str) -> None:
                i = cursor[query] % len(bodies[query])
                cursor[query] += 1
                response = await http.post("/graphql", json=bodies[query][i], headers=headers)
                if check:  # checked after the timed window
                    sent.append((variant, query, keys[query][i], response))

            def checked() -> None:
                for variant, query, codes, response in sent:
                    if response.status_code != 200:
                        raise SystemExit(f"{query}: HTTP {response.status_code}: {response.text[:500]}")
                    answer = response.json()
                    if answer.get("errors"):
                        raise SystemExit(f"{query}: errors {json.dumps(answer['errors'], ensure_ascii=False)[:500]}")
                    root = next(iter(answer["data"].values()))
                    got = peers.normalise(root) if query == "profile" else [peers.normalise(c) for c in root]
                    want = (peers.normalise(peers.expected(by_code[codes[0]])) if query == "profile"
                            else [peers.normalise(peers.expected(by_code[c])) for c in codes])
                    difference = peers.first_difference(got, want)
                    if difference:
                        raise SystemExit(f"{variant} {query} differs from the data at {difference}")
                    answers.setdefault((variant, query), []).append(response.content)
                sent.clear()

            for rnd in range(args.rounds):
                order = variants if rnd % 2 == 0 else list(reversed(variants))
                for query in queries:
                    requests = args.requests or (300 if query == "profile" else 40)
                    warmup = args.warmup or (30 if query == "profile" else 5)
                    for variant in order:
                        set_variant(runtime, variant)
                        cursor[query] = 0
                        for _ in range(warmup):
                            await one(query, False, variant)
                        gc.collect()
                        cursor[query] = 0
                        started = time.process_time()
                        for _ in range(requests):
                            await one(query, rnd == 0, variant)
                        cpu = (time.process_time() - started) * 1000 / requests
                        checked()
                        results.setdefault((variant, query), []).append(cpu)
                        peers.log(f"round {rnd + 1} {variant:13} {query:8} {cpu:7.2f} ms CPU per request")
            for query in queries:
                seen = [answers.get((v, query), []) for v in variants]
                for v, got in zip(variants[1:], seen[1:]):
                    if got != seen[0]:
                        raise SystemExit(f"{query}: the answers of {v} differ from those of {variants[0]}")
            if args.cprofile:
                for query in queries:
                    set_variant(runtime, variants[0])
                    requests = args.requests or (300 if query == "profile" else 40)
                    profiler = cProfile.Profile()
                    profiler.enable()
                    for _ in range(requests):
                        await one(query, False, variants[0])
                    profiler.disable()
                    out = io.StringIO()
                    stats = pstats.Stats(profiler, stream=out)
                    stats.sort_stats("tottime").print_stats(args.cprofile)
                    stats.sort_stats("cumulative").print_stats(args.cprofile)
                    print(f"==== cProfile {variants[0]} {query}, {requests} requests\n{out.getvalue()}")
    print(f"{'variant':14} {'query':8} CPU ms per request (median of {args.rounds} rounds; each round)")
    for (variant, query), values in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{variant:14} {query:8} {statistics.median(values):7.2f}   {[round(v, 2) for v in values]}")


def main() -> None:
    args = parse_args()
    node = peers.node_binary()
    scratch = Path(args.scratch).resolve()
    peers.ensure_node_modules(scratch)
    run_dir = Path(tempfile.mkdtemp(prefix="xinlian-peer-cpu-"))
    procs = peers.Processes(run_dir, pin=True)
    gateway_core, other_core = peers.pick_cores(True)
    procs.pin = gateway_core is not None
    try:
        companies = peers.generate_companies(args.companies)
        setup = peers.Setup(node=node, scratch=scratch, run_dir=run_dir, companies=companies, procs=procs,
                            gateway_core=gateway_core, other_core=other_core)
        (run_dir / "data.json").write_text(json.dumps({"companies": companies}, ensure_ascii=False), encoding="utf-8")
        peers.start_subgraphs(setup)
        data_dir = run_dir / "xinlian"
        client = peers.prepare_xinlian(data_dir, setup.subgraph_ports)
        if gateway_core is not None:
            os.sched_setaffinity(0, {gateway_core})
        asyncio.run(serve(args, data_dir, client, companies))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
