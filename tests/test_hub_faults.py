"""Departments that fail: down, garbage, slow, buggy — and an audit store that fails.

Each test asserts what the caller receives and that the hub keeps serving the next request.
Faults are injected into the real connectors of a real hub served on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import sqlite3
import time
from typing import Any, Awaitable, Callable, Iterator

import pytest

from hub_fixture import RunningHub, running_hub

PROFILE = """
query($u: String!) { legalPerson(uscc: $u) {
  uscc name registration { status } penalties { decisionNumber } taxCredit { level }
  judgmentDebtorRecords { caseNumber } honors { honorName } licenses { licenseName }
} }
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("faults"), legal_persons=60, natural_persons=15) as running:
        yield running


@contextlib.contextmanager
def wrapped_fetch(connector: Any, wrapper: Callable[[Callable[..., Awaitable[Any]], tuple[Any, ...]], Awaitable[Any]]) -> Iterator[None]:
    """Replace a real connector's fetch with `wrapper(original, args)` for the block."""
    original = connector.fetch

    async def fetch(*args: Any) -> Any:
        return await wrapper(original, args)

    connector.fetch = fetch
    try:
        yield
    finally:
        del connector.fetch


def upstream_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in body.get("errors", []) if e["extensions"]["code"].startswith("UPSTREAM_")]


def assert_healthy_profile(hub: RunningHub, uscc: str) -> None:
    body = hub.query(PROFILE, "department", {"u": uscc}).json()
    assert "errors" not in body, body.get("errors")
    assert body["data"]["legalPerson"]["uscc"] == uscc


def test_a_department_database_that_is_garbage(hub: RunningHub) -> None:
    uscc = hub.samples["a_level_taxpayer"]
    tax_db = hub.data_dir / "departments" / "tax.db"
    saved = tax_db.with_suffix(".saved")
    shutil.copy(tax_db, saved)
    try:
        tax_db.write_bytes(b"this is not a database" * 100)
        response = hub.query(PROFILE, "department", {"u": uscc})
        body = response.json()
        [entry] = hub.audit_entries(response.headers["x-request-id"])
        assert entry.detail["unavailable"] == [hub.connector("tax").department]  # availability, per request
        assert hub.connector("tax").department in entry.detail["asked"]  # and the departments it called
        assert hub.connector("courts").department in entry.detail["asked"]
        person = body["data"]["legalPerson"]
        assert person["taxCredit"] is None and person["penalties"] is None  # tax feeds both
        errors = upstream_errors(body)
        assert sorted(e["path"][-1] for e in errors) == ["penalties", "taxCredit"]
        assert {e["extensions"]["code"] for e in errors} == {"UPSTREAM_UNAVAILABLE"}
        assert {e["extensions"]["department"] for e in errors} == {hub.connector("tax").department}
        assert str(hub.data_dir) not in str(errors) and "sqlite" not in str(errors).lower()
        assert person["name"] and person["registration"]["status"] and person["judgmentDebtorRecords"] is not None
    finally:
        shutil.move(saved, tax_db)
    assert_healthy_profile(hub, uscc)


@pytest.mark.parametrize(
    "fault, code, reason",
    [
        ("error", "UPSTREAM_UNAVAILABLE", "http_status"),
        ("garbage", "UPSTREAM_INVALID", "invalid_data"),
        ("shape", "UPSTREAM_INVALID", "invalid_data"),
        ("reset", "UPSTREAM_UNAVAILABLE", None),
        ("truncated", None, None),
    ],
)
def test_the_court_api_misbehaving(hub: RunningHub, fault: str, code: str | None, reason: str | None) -> None:
    """The court is a real REST service on loopback; each fault is its answer to the next requests."""
    uscc = hub.samples["judgment_debtor"]
    link = hub.runtime.federation.department("courts").link
    saved = link.policy
    try:
        link.policy = dataclasses.replace(saved, retries=0)
        hub.services.court.state.faults.inject(fault, times=1)
        body = hub.query(PROFILE, "department", {"u": uscc}).json()
    finally:
        link.policy = saved
        hub.services.court.state.faults.clear()
    person = body["data"]["legalPerson"]
    assert person["judgmentDebtorRecords"] is None
    [error] = upstream_errors(body)
    assert error["path"] == ["legalPerson", "judgmentDebtorRecords"]
    assert error["extensions"]["department"] == hub.connector("courts").department
    if code:
        assert error["extensions"]["code"] == code
    if reason:
        assert error["extensions"]["reason"] == reason
    assert "127.0.0.1" not in error["message"] and "api" not in error["message"].lower()
    assert person["name"] and person["taxCredit"] is not None, "the other departments are served"
    assert_healthy_profile(hub, uscc)


def test_a_hung_court_api(hub: RunningHub) -> None:
    link = hub.runtime.federation.department("courts").link
    saved = link.policy
    try:
        link.policy = dataclasses.replace(saved, timeout=0.3, retries=0)
        hub.services.court.state.faults.inject("hang", times=1)
        started = time.monotonic()
        body = hub.query(PROFILE, "department", {"u": hub.samples["judgment_debtor"]}).json()
        assert time.monotonic() - started < 5
    finally:
        link.policy = saved
        hub.services.court.state.faults.clear()
    [error] = upstream_errors(body)
    assert error["extensions"]["reason"] == "timeout"
    assert_healthy_profile(hub, hub.samples["judgment_debtor"])


def test_a_department_that_is_slower_than_its_timeout(hub: RunningHub) -> None:
    tax = hub.connector("tax")
    link = hub.runtime.federation.department("tax").link
    saved_policy = link.policy
    link.policy = dataclasses.replace(saved_policy, timeout=0.2, retries=0)

    async def hang(original: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
        await asyncio.sleep(5)
        return await original(*args)

    try:
        with wrapped_fetch(tax, hang):
            started = time.monotonic()
            body = hub.query(PROFILE, "department", {"u": hub.samples["a_level_taxpayer"]}).json()
            assert time.monotonic() - started < 4, "the request did not wait for the hung department"
        person = body["data"]["legalPerson"]
        assert person["taxCredit"] is None and person["penalties"] is None  # tax feeds both
        assert person["licenses"] is not None and person["name"]
        departments = {e["extensions"]["department"] for e in upstream_errors(body)}
        assert departments == {tax.department}
        assert all(e["extensions"]["reason"] == "timeout" for e in upstream_errors(body))
    finally:
        link.policy = saved_policy
    assert_healthy_profile(hub, hub.samples["a_level_taxpayer"])


def test_a_connector_that_raises_an_unexpected_error(hub: RunningHub) -> None:
    environment = hub.connector("environment")

    async def crash(original: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
        raise RuntimeError("password=hunter2 at /secret/path")

    with wrapped_fetch(environment, crash):
        response = hub.query(PROFILE, "department", {"u": hub.samples["clean"]})
    assert response.status_code == 200
    errors = upstream_errors(response.json())
    assert errors and {e["extensions"]["department"] for e in errors} == {environment.department}
    assert "hunter2" not in response.text and "/secret/path" not in response.text
    assert_healthy_profile(hub, hub.samples["clean"])


def test_the_registry_down_still_serves_other_departments(hub: RunningHub) -> None:
    market = hub.connector("market")

    async def down(original: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
        raise ConnectionRefusedError("connection refused")

    with wrapped_fetch(market, down):
        body = hub.query(PROFILE, "department", {"u": hub.samples["judgment_debtor"]}).json()
    person = body["data"]["legalPerson"]
    assert person["uscc"] == hub.samples["judgment_debtor"]
    assert person["name"] is None and person["registration"] is None
    assert person["judgmentDebtorRecords"], "the courts still answer"
    assert {e["extensions"]["department"] for e in upstream_errors(body)} == {market.department}


def test_departments_are_asked_concurrently(hub: RunningHub) -> None:
    spans: dict[str, tuple[float, float]] = {}

    def recorder(name: str) -> Callable[..., Awaitable[Any]]:
        async def record(original: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Any:
            start = time.monotonic()
            await asyncio.sleep(0.15)
            result = await original(*args)
            spans[f"{name}:{args[0]}"] = (start, time.monotonic())
            return result

        return record

    query = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } taxCredit { level } judgmentDebtorRecords { caseNumber } } }"
    with contextlib.ExitStack() as stack:
        for name in ("market", "tax", "environment", "courts"):
            stack.enter_context(wrapped_fetch(hub.connector(name), recorder(name)))
        # skip the registry round (it precedes the families by design): time the family fan-out
        body = hub.query(query, "department", {"u": hub.samples["multi_department_penalties"]}).json()
    assert "errors" not in body
    fan_out = {k: v for k, v in spans.items() if not k.endswith(":registration")}
    assert {"market:penalties", "tax:penalties", "environment:penalties", "tax:tax_credit", "courts:judgment_debtor_records"} <= set(fan_out)
    latest_start = max(start for start, _ in fan_out.values())
    earliest_end = min(end for _, end in fan_out.values())
    assert latest_start < earliest_end, f"calls did not overlap: {fan_out}"


def test_no_response_without_its_audit_entry(hub: RunningHub) -> None:
    db = hub.data_dir / "hub.db"
    token = hub.token("department")  # token requests are audited too: get one while the trail works
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE audit_entries RENAME TO audit_entries_away")
    try:
        response = hub.http.post(
            "/graphql", json={"query": PROFILE, "variables": {"u": hub.samples["clean"]}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 503
        assert response.json() == {
            "errors": [{"message": "The audit trail is unavailable; the response was withheld.", "extensions": {"code": "AUDIT_UNAVAILABLE"}}]
        }
        assert hub.samples["clean"] not in response.text
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE audit_entries_away RENAME TO audit_entries")
    assert_healthy_profile(hub, hub.samples["clean"])


def test_the_hub_store_on_postgresql(tmp_path, postgres_url: str) -> None:
    with running_hub(tmp_path, legal_persons=30, natural_persons=10, database_url=postgres_url) as pg_hub:
        body = pg_hub.query(PROFILE, "bank", {"u": pg_hub.samples["clean"]}, purpose="loan-review").json()
        assert body["data"]["legalPerson"]["uscc"] == pg_hub.samples["clean"]
        import os
        import subprocess
        import sys

        env = dict(os.environ, XINLIAN_DATABASE_URL=postgres_url)
        verify = subprocess.run(
            [sys.executable, "-m", "xinlian.hub.cli", "audit", "verify", "--data-dir", str(tmp_path)],
            capture_output=True, text=True, env=env,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "intact" in verify.stdout
