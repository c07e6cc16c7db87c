"""`xinlian serve --workers N`: several processes on one port, one store, one audit chain.

The command as an operator runs it, on a demo district, on SQLite and on PostgreSQL: concurrent
queries all answered, every request audited exactly once in a single intact, sealed chain, and
the workers stop cleanly (each writes its shutdown checkpoint).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from hub_fixture import healthy, serve_process, wait_until
from xinlian.hub.audit import AuditTrail
from xinlian.hub.cli import main
from xinlian.hub.cli.demo import ensure_demo_clients
from xinlian.hub.config import Settings
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.store import Store

QUERY = "query($u: String!) { legalPerson(uscc: $u) { uscc name penalties { decisionNumber severity } } }"


def _entries(settings: Settings) -> list[str]:
    async def read() -> list[str]:
        store = await Store.open(settings.database_url)
        try:
            return [s.entry.request_id for s in await AuditTrail(store).tail(10_000) if s.entry is not None]
        finally:
            await store.close()

    return asyncio.run(read())


def test_two_workers_share_the_port_the_store_and_one_audit_chain(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "hub"
    monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
    district = build_demo_district(data_dir, legal_persons=20, natural_persons=5)
    settings = Settings.from_env(data_dir)
    clients = asyncio.run(ensure_demo_clients(settings, dict(district.samples)))
    env = {"XINLIAN_DATABASE_URL": store_url, "XINLIAN_AUDIT_CHECKPOINT_INTERVAL": "0",
           "XINLIAN_CLUSTER_HEARTBEAT": "0.5", "XINLIAN_MONITORING_ADDRESSES": "127.0.0.1/32"}
    server, port = serve_process(data_dir, env, create=False, extra=("--workers", "2"))
    request_ids: list[str] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            wait_until(lambda: healthy(http), seconds=90, what="the workers to start")
            department = clients["department"]
            token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(department["client_id"], department["client_secret"]))
            assert token.status_code == 200, token.text
            request_ids.append(token.headers["x-request-id"])
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            subject = district.samples["multi_department_penalties"]

            def ask(_: int) -> httpx.Response:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as own:  # a connection each
                    return own.post("/graphql", json={"query": QUERY, "variables": {"u": subject}}, headers=headers)

            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(ask, range(40)))
            assert [a.status_code for a in answers] == [200] * 40
            assert all(a.json()["data"]["legalPerson"]["uscc"] == subject for a in answers)
            request_ids += [a.headers["x-request-id"] for a in answers]

            # the two workers count each other and split each department's concurrency budget
            def split(_: int) -> bool:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as own:
                    ready = own.get("/readyz").json()
                return ready["cluster"]["processes"] == 2 and all(
                    c["slots"] == max(1, c["maxConcurrency"] // 2) for c in ready["connectors"]
                )

            wait_until(lambda: all(map(split, range(6))), seconds=15, what="both workers to see two members")

            # a token revoked through one worker is refused by both at once (the change feed)
            revoked = http.post("/oauth/revoke", data={"token": headers["Authorization"][7:]},
                                auth=(department["client_id"], department["client_secret"]))
            assert revoked.status_code == 200, revoked.text
            time.sleep(1.5)  # the feed's interval (1 s) bounds it on SQLite without Redis
            with ThreadPoolExecutor(max_workers=8) as pool:
                refused = list(pool.map(ask, range(16)))
            assert [r.status_code for r in refused] == [401] * 16
            request_ids.append(revoked.headers["x-request-id"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert stderr.count("Started server process") == 2, stderr  # two workers served
    stored = _entries(settings)
    assert all(stored.count(r) == 1 for r in request_ids)  # every request audited once, in one chain
    capsys.readouterr()
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "audit trail intact" in out and "APPENDED" not in out, out
