"""Operating the federation: /readyz, the circuit breaker seen from outside, `connectors check`,
and the optional PUBLIC record cache."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

from hub_fixture import running_hub, wait_until
from xinlian.connectors.resilience import CircuitState
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.demo.services import start_demo_services

QUERY = "query($u: String!) { legalPerson(uscc: $u) { name taxCredit { level } } }"


def test_readyz_shows_a_circuit_opening_and_closing(tmp_path: Path) -> None:
    with running_hub(tmp_path, legal_persons=30, natural_persons=10) as hub:
        hub.http.headers["Authorization"] = f"Bearer {hub.token('admin')}"  # the detail is for admins
        ready = hub.http.get("/readyz").json()
        assert ready["status"] == "ready" and ready["store"] == "ok"
        assert ready["rateLimiter"]["storage"] == "memory" and ready["rateLimiter"]["state"] == "ok"
        assert {c["connector"]: c["condition"] for c in ready["connectors"]} == {
            "market": "healthy", "tax": "healthy", "environment": "healthy", "courts": "healthy", "hr": "healthy"
        }
        link = hub.runtime.federation.department("tax").link
        link.policy = dataclasses.replace(link.policy, failure_threshold=2, reset_timeout=0.5, retries=0)
        tax_db = hub.data_dir / "departments" / "tax.db"
        saved = tax_db.with_suffix(".saved")
        shutil.copy(tax_db, saved)
        tax_db.write_bytes(b"garbage" * 1000)
        uscc = hub.samples["a_level_taxpayer"]
        try:
            for _ in range(2):
                hub.query(QUERY, "department", {"u": uscc})
            tax = next(c for c in hub.http.get("/readyz").json()["connectors"] if c["connector"] == "tax")
            assert tax["condition"] == "open" and tax["circuit"] == "open" and tax["consecutiveFailures"] == 2
            attempts = link.status().attempts
            body = hub.query(QUERY, "department", {"u": uscc}).json()
            assert body["data"]["legalPerson"]["name"], "other departments are still served"
            [error] = body["errors"]
            assert error["extensions"]["reason"] == "circuit_open"
            assert link.status().attempts == attempts, "an open circuit fails fast without asking the tax bureau"
        finally:
            shutil.move(saved, tax_db)
        # past reset_timeout the circuit reads half-open: the next call is the probe
        wait_until(lambda: link.state is CircuitState.HALF_OPEN, 5, "the circuit's reset timeout")
        body = hub.query(QUERY, "department", {"u": uscc}).json()
        assert "errors" not in body and body["data"]["legalPerson"]["taxCredit"]
        tax = next(c for c in hub.http.get("/readyz").json()["connectors"] if c["connector"] == "tax")
        assert tax["circuit"] == "closed" and tax["condition"] == "healthy"
        assert "garbage" not in hub.http.get("/readyz").text


def test_connectors_check_prints_a_table_and_fails_on_a_down_department(tmp_path: Path) -> None:
    build_demo_district(tmp_path, legal_persons=20, natural_persons=5)
    command = [sys.executable, "-m", "xinlian.hub.cli", "connectors", "check", "--data-dir", str(tmp_path)]
    services = start_demo_services(tmp_path)
    try:
        ok = subprocess.run(command, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "market" in ok.stdout and "courts" in ok.stdout and "DOWN" not in ok.stdout
        (tmp_path / "departments" / "tax.db").unlink()
        down = subprocess.run(command + ["--json"], capture_output=True, text=True)
    finally:
        services.stop()
    assert down.returncode == 1
    rows = {r["connector"]: r for r in json.loads(down.stdout)}
    assert rows["tax"]["healthy"] is False and rows["market"]["healthy"] is True and rows["courts"]["healthy"] is True
    court_down = subprocess.run(command + ["--json"], capture_output=True, text=True)  # the court API stopped
    assert {r["connector"]: r["healthy"] for r in json.loads(court_down.stdout)}["courts"] is False


def test_public_records_are_cached_only_when_configured_and_only_public(tmp_path: Path) -> None:
    district = build_demo_district(tmp_path, legal_persons=30, natural_persons=10)
    config = district.connectors_path.read_text(encoding="utf-8")
    district.connectors_path.write_text(
        config.replace('name = "market"\n', 'name = "market"\ncache_ttl = 60\n', 1), encoding="utf-8"
    )
    with running_hub(tmp_path, legal_persons=30, natural_persons=10) as hub:
        market, tax = hub.connector("market"), hub.connector("tax")
        uscc = hub.samples["multi_department_penalties"]
        public = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber fineAmount } } }"
        first = hub.query(public, None, {"u": uscc}).json()
        market.calls.clear()
        tax.calls.clear()
        second = hub.query(public, None, {"u": uscc}).json()
        assert second == first
        assert [c for c in market.calls if c.family == "penalties"] == [], "market's PUBLIC penalties came from the cache"
        assert [c for c in tax.calls if c.family == "penalties"], "tax has no cache_ttl: it is asked every time"
        # a SHARED field in the fetch: never cached
        shared = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber caseHandler } } }"
        for _ in range(2):
            hub.query(shared, "department", {"u": uscc})
        assert len([c for c in market.calls if c.family == "penalties"]) == 2
        assert hub.runtime.cache.hits >= 1
