"""`xinlian demo` as a user runs it: a real process, a real port, the printed credentials."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hub_fixture import running_hub


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_demo(data_dir: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "xinlian.hub.cli", "demo", "--port", str(port), "--data-dir", str(data_dir), "--subjects", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("XINLIAN_")},
    )


def _wait_ready(base: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"xinlian demo exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("xinlian demo did not start within 30 s")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_demo_serves_prints_credentials_and_reuses_its_data_dir(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _run_demo(tmp_path, port)
    try:
        _wait_ready(base, proc)
        clients = json.loads((tmp_path / "demo-clients.json").read_text(encoding="utf-8"))
        assert set(clients) == {"department", "bank", "admin", "subject", "market", "court", "lender"}
        for kind, client in clients.items():
            assert set(client) == {"client_id", "client_secret", "scope"}
        assert oct((tmp_path / "demo-clients.json").stat().st_mode & 0o777) == "0o600"
        dept = clients["department"]
        token = httpx.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(dept["client_id"], dept["client_secret"])).json()["access_token"]
        body = httpx.post(f"{base}/graphql", json={"query": "{ searchLegalPersons(name: \"新城区\", first: 2) { uscc name } }"},
                          headers={"Authorization": f"Bearer {token}"}).json()
        assert len(body["data"]["searchLegalPersons"]) == 2
        assert httpx.get(f"{base}/.well-known/jwks.json").json()["keys"]
    finally:
        out = _stop(proc)
    assert f"{base}/graphql" in out and dept["client_secret"] in out
    assert "Credit governance: 2 findings, 1 red-list entry" in out  # the demo's first start seeds them

    # a second run on the same data dir reuses the district, the clients and the keys
    manifest = (tmp_path / "departments" / "manifest.json").read_bytes()
    keys = sorted(p.name for p in (tmp_path / "keys").iterdir())
    port = _free_port()
    proc = _run_demo(tmp_path, port)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
    finally:
        again = _stop(proc)
    assert "Credit governance" not in again  # seeded once per hub store
    assert json.loads((tmp_path / "demo-clients.json").read_text(encoding="utf-8")) == clients
    assert (tmp_path / "departments" / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == keys


def test_public_introspection_can_be_switched_off(tmp_path: Path) -> None:
    with running_hub(tmp_path, legal_persons=20, natural_persons=5, public_introspection=False) as hub:
        refused = hub.http.post("/public/graphql", json={"query": "{ __schema { types { name } } }"})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        ok = hub.query('{ searchLegalPersons(name: "新城区", first: 1) { uscc __typename } }', None)
        assert ok.status_code == 200 and ok.json()["data"]["searchLegalPersons"][0]["__typename"] == "LegalPerson"
        # the authenticated endpoint keeps introspection for clients
        assert hub.query("{ __schema { queryType { name } } }", "department").status_code == 200


def test_demo_departments_on_postgresql_and_mariadb(tmp_path: Path, postgres_url: str, mariadb_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINLIAN_")}
    built = subprocess.run(
        [sys.executable, "-m", "xinlian.hub.cli", "demo", "--no-serve", "--subjects", "40", "--data-dir", str(tmp_path),
         "--market-url", postgres_url, "--tax-url", mariadb_url],
        capture_output=True, text=True, env=env,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    config = (tmp_path / "connectors.toml").read_text(encoding="utf-8")
    assert f'url = "{postgres_url}"' in config and f'url = "{mariadb_url}"' in config
    with running_hub(tmp_path, legal_persons=40, natural_persons=10) as hub:
        body = hub.query(
            "query($u: String!) { legalPerson(uscc: $u) { name registration { status } taxCredit { level } } }",
            "department", {"u": hub.samples["a_level_taxpayer"]},
        ).json()
        assert "errors" not in body, body.get("errors")
        assert body["data"]["legalPerson"]["taxCredit"]["level"] == "A"
        assert body["data"]["legalPerson"]["name"]
        backends = {name: hub.connector(name)._url.get_backend_name() for name in ("market", "tax")}
        assert backends == {"market": "postgresql", "tax": "mysql"}
        assert hub.connector("market").calls and hub.connector("tax").calls
