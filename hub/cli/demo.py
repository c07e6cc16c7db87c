"""`xinlian demo` (build the demo district and serve it) and `xinlian serve` (serve a data dir).

Both check that `--host`/`--port` can be served (a bind test) before printing anything, so a
taken port never shows the URLs and secrets as if for someone else's hub: exit 2. `serve`
refuses a data directory that does not exist (a mistyped `--data-dir` would otherwise start an
empty hub that `/readyz` calls ready) unless `--create` is given; `demo` creates its own.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from xinlian.hub.config import Settings
from xinlian.hub.gateway.addresses import parse_networks

from .admin_session import missing_store

DEMO_CLIENTS: dict[str, dict[str, str]] = {
    "department": {"client_id": "demo-department", "name": "新城区发展和改革局（社会信用体系建设办公室）"},
    "bank": {"client_id": "demo-bank", "name": "内蒙古银行呼和浩特新城支行"},
    "admin": {"client_id": "demo-admin", "name": "新城区信用平台管理员"},
    "subject": {"client_id": "demo-subject", "name": "信用主体门户（示例企业）"},
    # credit governance (docs/governance.md): departments that record findings for their own
    # department, and a lender that screens its loan book with credit checks
    "market": {"client_id": "demo-market", "name": "新城区市场监督管理局", "kind": "department",
               "scope": "credit:public credit:shared credit:findings", "department": "market"},
    "court": {"client_id": "demo-court", "name": "新城区人民法院", "kind": "department",
              "scope": "credit:public credit:shared credit:findings", "department": "courts"},
    "lender": {"client_id": "demo-lender", "name": "呼和浩特新城农商银行（信贷审查）", "kind": "bank",
               "scope": "credit:public credit:check"},
}
# purposes the demo defines; the demo bank is registered for the first two
DEMO_PURPOSES: dict[str, tuple[str, str]] = {
    "loan-review": ("贷款审批", "Reviewing a loan application of the subject."),
    "credit-card-review": ("信用卡审批", "Reviewing a credit card application of the subject."),
    "supply-chain-finance": ("供应链金融", "Financing against receivables of the subject's buyers."),
}
DEMO_BANK_PURPOSES = ("loan-review", "credit-card-review")
DEMO_CONSENT_DAYS = 365


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    demo = sub.add_parser("demo", help="build the demo district (once) and serve the hub on it")
    _serve_options(demo)
    demo.add_argument("--subjects", type=int, default=2000, help="legal persons in the demo district (default 2000)")
    demo.add_argument("--no-serve", action="store_true", help="build the district and clients, then exit")
    demo.add_argument("--market-url", default=None,
                      help="serve market regulation from this PostgreSQL/MariaDB database (the demo publishes its tables there)")
    demo.add_argument("--tax-url", default=None,
                      help="serve the tax bureau from this PostgreSQL/MariaDB database (the demo publishes its tables there)")
    demo.set_defaults(handler=run_demo)

    serve = sub.add_parser("serve", help="serve the hub on a data directory")
    _serve_options(serve)
    serve.add_argument("--create", action="store_true",
                       help="start a new, empty hub when the data directory does not exist yet (otherwise refused)")
    serve.set_defaults(handler=run_serve)


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--workers", type=_workers, default=_workers(os.environ.get("XINLIAN_WORKERS", "1")),
        help="worker processes sharing the port (default 1, or XINLIAN_WORKERS); see docs/deployment.md",
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-dir", default=None, help="data directory (default ./xinlian-data or XINLIAN_DATA_DIR)")
    parser.add_argument(
        "--trusted-proxy", action="append", default=None, metavar="ADDRESS[/BITS]", type=_network,
        help="a reverse proxy whose X-Forwarded-For/-Proto the hub believes (repeatable; "
             "default none, or XINLIAN_TRUSTED_PROXIES)",
    )


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("workers: 1 to 64")
    return value


def _network(text: str) -> str:
    try:
        parse_networks([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(args.data_dir, host=args.host, port=args.port)
    if args.trusted_proxy:
        settings = dataclasses.replace(settings, trusted_proxies=parse_networks(args.trusted_proxy))
    return settings


async def ensure_demo_clients(settings: Settings, samples: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Create the demo clients once; later runs reuse them (and re-create any that are gone).

    With the district's `samples`, also set up what access control needs for a walkthrough:
    the demo purposes, the bank's allowed purposes, the subject client bound to a sample company,
    and the sample insured person's consent to the bank for `loan-review`.
    """
    from xinlian.hub.auth.clients import ClientRegistry, default_scope
    from xinlian.hub.store import Store

    path = settings.data_dir / "demo-clients.json"
    saved: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    store = await Store.open(settings.database_url)
    try:
        registry = ClientRegistry(store)
        out: dict[str, dict[str, Any]] = {}
        for key, spec in DEMO_CLIENTS.items():
            known = saved.get(key)
            if known and await registry.authenticate(known["client_id"], known["client_secret"]) is not None:
                out[key] = known
                continue
            if await registry.get(spec["client_id"]) is not None:
                await registry.remove(spec["client_id"])
            kind = spec.get("kind", key)
            scope = spec.get("scope") or default_scope(kind)
            client_id, secret = await registry.create(spec["name"], kind, scope, client_id=spec["client_id"])
            if spec.get("department"):
                await registry.set_department(client_id, spec["department"])
            out[key] = {"client_id": client_id, "client_secret": secret, "scope": scope}
        if samples:
            await _ensure_demo_governance(store, registry, samples)
    finally:
        await store.close()
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)
    return out


async def _ensure_demo_governance(store: Any, registry: Any, samples: dict[str, str]) -> None:
    import datetime as dt

    from xinlian.hub.governance import ConsentBook, PurposeRegistry

    purposes = PurposeRegistry(store)
    for code, (label, description) in DEMO_PURPOSES.items():
        if await purposes.get(code) is None:
            await purposes.define(code, label, description)
    await registry.set_purposes(DEMO_CLIENTS["bank"]["client_id"], list(DEMO_BANK_PURPOSES))
    await registry.set_purposes(DEMO_CLIENTS["lender"]["client_id"], list(DEMO_BANK_PURPOSES))
    await registry.set_subject(DEMO_CLIENTS["subject"]["client_id"], samples["judgment_debtor"])
    consents = ConsentBook(store)
    person, bank = samples["insured_person"], DEMO_CLIENTS["bank"]["client_id"]
    now = dt.datetime.now(dt.timezone.utc)
    if not await consents.consenting([person], bank, DEMO_BANK_PURPOSES[0], now):
        await consents.grant(
            person, bank, DEMO_BANK_PURPOSES[0], now + dt.timedelta(days=DEMO_CONSENT_DAYS),
            recorded_by="demo", reference="DEMO-CONSENT-0001",
        )


def _banner(settings: Settings, host: str, port: int, clients: dict[str, dict[str, Any]] | None) -> str:
    base = f"http://{host}:{port}"
    lines = [
        "Xinlian (信联) hub",
        f"  data directory     {settings.data_dir}",
        f"  hub store          {settings.database_url.split('@')[-1]}",
        f"  GraphQL (token)    {base}/graphql",
        f"  GraphQL (public)   {base}/public/graphql",
        f"  token endpoint     {base}/oauth/token",
        f"  JWKS               {base}/.well-known/jwks.json",
    ]
    if clients:
        lines.append(f"  demo clients       {settings.data_dir / 'demo-clients.json'}")
        for kind, c in clients.items():
            lines.append(f"    {kind:<11} client_id={c['client_id']}  client_secret={c['client_secret']}  scope=\"{c['scope']}\"")
        c = clients["department"]
        lines.append("  try:")
        lines.append(
            f"    curl -s -u {c['client_id']}:{c['client_secret']} -d grant_type=client_credentials {base}/oauth/token"
        )
    return "\n".join(lines)


def port_taken(host: str, port: int) -> str | None:
    """Why `host:port` cannot be served (already in use, bad address), or None when a bind succeeds."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror or exc}"
    family, kind, proto, _, address = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no obstacle
        probe.bind(address)
        probe.listen(1)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use (another hub or program is listening there)"
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    finally:
        probe.close()
    return None


def _refuse_taken(prog: str, host: str, port: int) -> bool:
    """Print why and return True when the port cannot be served (checked before anything is printed)."""
    why = port_taken(host, port)
    if why is None:
        return False
    print(f"xinlian {prog}: {why}; choose another with --port", file=sys.stderr)
    return True


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve in this process, or (`workers` > 1) in that many worker processes on one socket,
    each with its own runtime over the same store and data directory (docs/deployment.md)."""
    import uvicorn

    from xinlian.hub.app import SERVE_OPTIONS_ENV, create_app
    from xinlian.hub.serving import uvicorn_options

    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", **uvicorn_options(settings))
        return
    os.environ[SERVE_OPTIONS_ENV] = json.dumps({
        "data_dir": str(settings.data_dir), "host": host, "port": port,
        "trusted_proxies": [str(n) for n in settings.trusted_proxies],
    })
    uvicorn.run(
        "xinlian.hub.app:app_from_serve_options", factory=True, workers=workers, host=host, port=port,
        log_level="info", **uvicorn_options(settings, workers=workers),
    )


def run_demo(args: argparse.Namespace) -> int:
    from xinlian.hub.demo.generator import build_demo_district
    from xinlian.hub.demo.services import start_demo_services

    settings = _settings(args)
    if args.subjects < 12:
        print("xinlian demo: --subjects must be at least 12", file=sys.stderr, flush=True)
        return 2
    if not args.no_serve and _refuse_taken("demo", args.host, args.port):  # before any URL or secret is shown
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    district = build_demo_district(settings.data_dir, legal_persons=args.subjects, natural_persons=args.subjects // 4)
    code = _publish_departments(settings, {"market": args.market_url, "tax": args.tax_url})
    if code:
        return code
    clients = asyncio.run(ensure_demo_clients(settings, dict(district.samples)))
    print(f"Demo district: {district.legal_persons} legal persons, {district.natural_persons} natural persons")
    if args.no_serve:
        print(_banner(settings, args.host, args.port, clients), flush=True)
        return 0
    services = start_demo_services(settings.data_dir)
    try:
        if services.court_url:
            print(f"Court API (REST stand-in for 新城区人民法院): {services.court_url}")
        _seed_credit(settings, dict(district.samples))
        _seed_cases(settings, dict(district.samples))
        print(_banner(settings, args.host, args.port, clients), flush=True)
        _serve(settings, args.host, args.port, args.workers)
    finally:
        services.stop()
    return 0


def _seed_credit(settings: Settings, samples: dict[str, str]) -> None:
    """The demo's findings, listings and ratings, once per hub store (hub/demo/governance.py)."""
    from xinlian.hub.demo.governance import ensure_demo_credit

    started = time.monotonic()

    def progress(done: int, rated: int, failed: int) -> None:
        print(f"\rRating the district: {rated} rated, {failed} failed", end="", file=sys.stderr, flush=True)

    done = asyncio.run(ensure_demo_credit(settings, samples, progress))
    if done["rated"] or done["findings"]:
        print(f"\nCredit governance: {done['findings']} findings, {done['redListed']} red-list entry, "
              f"{done['rated']} subjects rated ({time.monotonic() - started:.1f} s); see docs/governance.md", flush=True)


def _seed_cases(settings: Settings, samples: dict[str, str]) -> None:
    """The demo's open cases, once per hub store (hub/demo/cases.py)."""
    from xinlian.hub.demo.cases import ensure_demo_cases

    done = asyncio.run(ensure_demo_cases(settings, samples))
    if done["objections"] or done["complaints"]:
        print(f"Cases: {done['objections']} objections, {done['complaints']} complaint (tracking code "
              f"{done['trackingCode']}), {done['repairs']} repair application; `xinlian cases list`, docs/cases.md",
              flush=True)


def _publish_departments(settings: Settings, urls: dict[str, str | None]) -> int:
    """Copy demo departments onto database servers and point their connectors there (0 = done)."""
    from xinlian.connectors.mapping import ConnectorConfigError
    from xinlian.hub.demo.remote import PublishError, point_connector, publish_department

    connectors_path = settings.connectors_path or settings.data_dir / "connectors.toml"
    for department, url in urls.items():
        if not url:
            continue
        try:
            asyncio.run(publish_department(settings.data_dir, department, url, connectors_path=connectors_path))
            point_connector(connectors_path, department, url, data_dir=settings.data_dir)
        except (ValueError, PublishError, ConnectorConfigError) as exc:
            print(f"xinlian demo: {department}: {exc}", flush=True)
            return 2
        print(f"Demo department {department} now served from {url.split('@')[-1]}", flush=True)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not Path(settings.data_dir).is_dir():
        missing = missing_store(settings)
        if not args.create:
            store = f" (and no hub store at {missing})" if missing else ""
            print(f"xinlian serve: no data directory at {settings.data_dir}{store}; check --data-dir, or pass "
                  "--create to start a new, empty hub there", file=sys.stderr)
            return 2
    if _refuse_taken("serve", args.host, args.port):
        return 2
    if args.create:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(_banner(settings, args.host, args.port, None), flush=True)
    _serve(settings, args.host, args.port, args.workers)
    return 0
