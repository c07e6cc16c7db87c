"""A real hub on loopback over a small demo district, shared by the end-to-end tests.

`running_hub(tmp)` builds the demo district, creates the demo clients, and serves
`create_app(settings)` under uvicorn on 127.0.0.1. Tests talk to it over HTTP and, to prove
what connectors were asked, read the connectors' call logs from the app's runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx

from servers import serve_app
from xinlian.hub.app import create_app
from xinlian.hub.cli.demo import ensure_demo_clients
from xinlian.hub.config import Settings
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.demo.services import start_demo_services
from xinlian.hub.governance import ConsentBook, ObjectionRegister
from xinlian.hub.governance.policy_versions import PolicyHistory
from xinlian.hub.guard.rate_limits import RateRules
from xinlian.hub.serving import uvicorn_options


def wait_until(condition: Any, seconds: float = 5.0, what: str = "the condition") -> float:
    """Poll `condition()` every 50 ms until it is true; fail after `seconds`. Returns the wait.

    For what a hub does on its own clock (policy activations, revocations, key rotations are
    picked up within an interval): wait for the condition, never a fixed time.
    """
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what} did not happen within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(http: httpx.Client) -> bool:
    """Whether the hub behind `http` answers /healthz (False while it is starting)."""
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def serve_process(
    data_dir: Path, env: dict[str, str], *, capture: str = "stderr", create: bool = True, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], int]:
    """`xinlian serve` as an operator runs it, in its own process on a free loopback port, with
    `env` added to the environment (the test's XINLIAN_DATABASE_URL removed unless `env` sets
    it): the SQLite store of `data_dir` (`--create`) by default. `capture`: which of stdout and
    stderr is piped for the test to read (the other is discarded). Returns (process, port)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "XINLIAN_DATABASE_URL"} | env
    command = [sys.executable, "-m", "xinlian.hub.cli", "serve", *(["--create"] if create else []),
               "--data-dir", str(data_dir), "--port", str(port), *extra]
    piped, dropped = subprocess.PIPE, subprocess.DEVNULL
    server = subprocess.Popen(
        command, env=environment, text=True, start_new_session=True,
        stdout=piped if capture == "stdout" else dropped, stderr=piped if capture == "stderr" else dropped,
    )
    return server, port


NO_RATE_LIMITS = RateRules(public_ip="off", graphql_ip="off", client="off", oauth_ip="off", meta_ip="off")


def post_token(
    base_url: str, *, source: str = "127.0.0.1", headers: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None, **form: str,
) -> httpx.Response:
    """POST a client_credentials token request from a chosen loopback `source` address
    (127.0.0.x: lockouts and per-address limits key on it)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as http:
        return http.post("/oauth/token", data={"grant_type": "client_credentials", **form}, headers=headers, auth=auth)


def with_policy_history(url: str, call: Any) -> Any:
    """Run `await call(PolicyHistory(store))` against the hub store at `url` (its own connection)."""
    from xinlian.hub.store import Store

    async def run() -> Any:
        store = Store(url)
        try:
            return await call(PolicyHistory(store))
        finally:
            await store.close()

    return asyncio.run(run())


@dataclass
class RunningHub:
    base_url: str
    app: Any
    data_dir: Path
    clients: dict[str, dict[str, Any]]
    samples: dict[str, str]
    http: httpx.Client
    services: Any = None  # the demo's live department services (the court's REST API)

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def on_store(self, action: Any) -> Any:
        """Run `action(store)` against the running hub's store from the test thread (own connection)."""
        from xinlian.hub.store import Store

        async def run() -> Any:
            store = await Store.open(self.runtime.settings.database_url)
            try:
                return await action(store)
            finally:
                await store.close()

        return asyncio.run(run())

    def audit_entries(self, request_id: str | None = None, n: int = 500) -> list[Any]:
        """The latest audit entries (`AuditEntry`, of one request if given), read from the hub store."""
        from xinlian.hub.audit import AuditTrail

        async def read(store: Any) -> list[Any]:
            return await AuditTrail(store).tail(n)

        entries = [s.entry for s in self.on_store(read) if s.entry is not None]
        return [e for e in entries if request_id is None or e.request_id == request_id]

    def connector(self, name: str) -> Any:
        return next(c for c in self.runtime.federation.connectors if c.name == name)

    def token(self, kind: str, scope: str | None = None) -> str:
        client = self.clients[kind]
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        response = self.http.post("/oauth/token", data=form, auth=(client["client_id"], client["client_secret"]))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def query(
        self, query: str, kind: str | None = None, variables: dict[str, Any] | None = None, purpose: str | None = None
    ) -> httpx.Response:
        """POST a query to /graphql as a demo client kind, or to /public/graphql when kind is None.

        `purpose` is sent as the `Xinlian-Purpose` header (the demo bank may declare `loan-review`).
        """
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if kind is None:
            return self.http.post("/public/graphql", json=body)
        headers = {"Authorization": f"Bearer {self.token(kind)}"}
        if purpose is not None:
            headers["Xinlian-Purpose"] = purpose
        return self.http.post("/graphql", json=body, headers=headers)


@contextlib.contextmanager
def objections_closed(hub: RunningHub) -> Iterator[None]:
    """Close, when the block ends (also by a failed assertion), every objection filed in it and left open.

    An open objection flags its record for every caller: one that a failed test left open would
    change what the later tests of a module sharing the hub see.
    """

    async def open_ids(store: Any) -> set[int]:
        return {o.id for o in await ObjectionRegister(store).list(status="open", limit=100_000)}

    async def close_new(store: Any) -> None:
        register = ObjectionRegister(store)
        for objection_id in sorted(await open_ids(store) - before):
            await register.close(objection_id, "withdrawn", "closed after the test", "test")

    before = hub.on_store(open_ids)
    try:
        yield
    finally:
        hub.on_store(close_new)


@contextlib.contextmanager
def consents_revoked(hub: RunningHub) -> Iterator[None]:
    """Revoke, when the block ends (also by a failed assertion), every consent recorded in it and not revoked.

    A consent in force opens a person's AUTHORIZED data to a client: one that a failed test left
    in force would change what the later tests of a module sharing the hub see.
    """

    async def unrevoked(store: Any) -> set[int]:
        return {c.id for c in await ConsentBook(store).list(limit=100_000) if c.revoked_at is None}

    async def revoke_new(store: Any) -> None:
        book = ConsentBook(store)
        for consent_id in sorted(await unrevoked(store) - before):
            await book.revoke(consent_id)

    before = hub.on_store(unrevoked)
    try:
        yield
    finally:
        hub.on_store(revoke_new)


@contextlib.contextmanager
def running_hub(
    data_dir: Path,
    legal_persons: int = 150,
    natural_persons: int = 40,
    database_url: str | None = None,
    **overrides: Any,
) -> Iterator[RunningHub]:
    district = build_demo_district(data_dir, legal_persons=legal_persons, natural_persons=natural_persons)
    settings = Settings.from_env(data_dir, database_url=database_url or f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    settings = dataclasses.replace(settings, **overrides)
    clients = asyncio.run(ensure_demo_clients(settings, dict(district.samples)))
    services = start_demo_services(data_dir)  # the court's REST API, as `xinlian demo` starts it
    try:
        app = create_app(settings)
        with serve_app(app, **uvicorn_options(settings)) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
            yield RunningHub(base_url, app, data_dir, clients, dict(district.samples), http, services)
    finally:
        services.stop()
