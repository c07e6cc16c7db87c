"""A `department` client speaks for its department: bound, re-bound and unbound through the admin
API of a real hub and through the CLI, refused for other kinds and for departments the
federation does not have, and carried into the principal of every request the client makes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import httpx
import pytest

from hub_fixture import RunningHub, running_hub
from xinlian.hub.admin.dry_run import _principal as dry_run_principal
from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.auth.clients import ClientError, ClientRegistry
from xinlian.hub.cli import main
from xinlian.hub.config import Settings
from xinlian.hub.gateway import pipeline
from xinlian.hub.governance import PurposeRegistry
from xinlian.hub.governance.client_directory import ClientDirectory
from xinlian.hub.principal import Principal
from xinlian.hub.store import Store

DEMO_DEPARTMENTS = ["courts", "environment", "hr", "market", "tax"]  # the demo federation's connectors
CREATE = """
mutation Create($name: String!, $kind: String!, $department: String, $clientId: String) {
  createClient(name: $name, kind: $kind, department: $department, clientId: $clientId) {
    clientSecret client { clientId kind department }
  }
}
"""
SET = """
mutation Set($clientId: String!, $department: String) {
  setClientDepartment(clientId: $clientId, department: $department) { clientId kind department }
}
"""
CLIENT = "query One($clientId: String!) { client(clientId: $clientId) { clientId department } }"


# ---- the admin API on a real hub ----------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("department-hub")) as running:
        yield running


def admin(hub: RunningHub, query: str, variables: dict[str, Any]) -> httpx.Response:
    return hub.http.post(
        "/admin/graphql", json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def refused(response: httpx.Response) -> str:
    """The message of a BAD_USER_INPUT refusal."""
    body = response.json()
    assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["BAD_USER_INPUT"], body
    return str(body["errors"][0]["message"])


def actions(hub: RunningHub, response: httpx.Response) -> list[dict[str, Any]]:
    """What the request's own audit entry says it did."""
    found = [
        e for e in hub.audit_entries(response.headers["x-request-id"])
        if not (e.detail or {}).get("intent") and not (e.detail or {}).get("dryRun")
    ]
    assert len(found) == 1, found
    return list(found[0].detail["actions"])


def stored(hub: RunningHub, client_id: str) -> Any:
    return hub.on_store(lambda store: ClientRegistry(store).get(client_id))


def token_for(hub: RunningHub, client_id: str, secret: str) -> str:
    response = hub.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture()
def seen(monkeypatch: pytest.MonkeyPatch) -> list[Principal]:
    """The principals the hub's authentication stage hands on to the handlers, request by request."""
    principals: list[Principal] = []
    declare = pipeline.declare_purpose

    async def spy(*args: Any) -> Principal:
        principal = await declare(*args)
        principals.append(principal)
        return principal

    monkeypatch.setattr(pipeline, "declare_purpose", spy)
    return principals


def principal_of(hub: RunningHub, token: str, seen: list[Principal]) -> Principal:
    """The principal the hub builds for one /graphql request made with `token`."""
    seen.clear()
    response = hub.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert len(seen) == 1, seen
    return seen[0]


def test_a_department_client_is_created_bound_and_its_token_speaks_for_the_department(
    hub: RunningHub, seen: list[Principal]
) -> None:
    response = admin(hub, CREATE, {"name": "新城区市场监督管理局", "kind": "department", "department": "market",
                                   "clientId": "dept-market"})
    created = ok(response)["createClient"]
    assert created["client"] == {"clientId": "dept-market", "kind": "department", "department": "market"}
    assert stored(hub, "dept-market").department == "market"
    assert actions(hub, response) == [{
        "action": "createClient", "client_id": "dept-market", "kind": "department",
        "scope": "credit:public credit:shared", "department": "market",
    }]

    principal = principal_of(hub, token_for(hub, "dept-market", created["clientSecret"]), seen)
    assert principal.client_id == "dept-market" and principal.kind == "department"
    assert principal.department == "market" and principal.subject_id is None


def test_binding_and_unbinding_reach_the_tokens_already_issued(hub: RunningHub, seen: list[Principal]) -> None:
    created = ok(admin(hub, CREATE, {"name": "新城区税务局", "kind": "department", "clientId": "dept-tax"}))["createClient"]
    assert created["client"]["department"] is None
    token = token_for(hub, "dept-tax", created["clientSecret"])
    assert principal_of(hub, token, seen).department is None

    response = admin(hub, SET, {"clientId": "dept-tax", "department": " tax "})
    assert ok(response)["setClientDepartment"] == {"clientId": "dept-tax", "kind": "department", "department": "tax"}
    assert actions(hub, response) == [{"action": "setClientDepartment", "client_id": "dept-tax", "department": "tax"}]
    assert principal_of(hub, token, seen).department == "tax"  # at once in the hub that made the change

    response = admin(hub, SET, {"clientId": "dept-tax"})  # no department: unbind
    assert ok(response)["setClientDepartment"]["department"] is None
    assert actions(hub, response) == [{"action": "setClientDepartment", "client_id": "dept-tax", "department": ""}]
    assert stored(hub, "dept-tax").department is None
    assert principal_of(hub, token, seen).department is None
    assert ok(admin(hub, CLIENT, {"clientId": "dept-tax"}))["client"] == {"clientId": "dept-tax", "department": None}


@pytest.mark.parametrize("kind", ["bank", "subject", "admin"])
def test_only_a_department_client_speaks_for_a_department(hub: RunningHub, kind: str) -> None:
    client_id = hub.clients[kind]["client_id"]
    message = refused(admin(hub, SET, {"clientId": client_id, "department": "market"}))
    assert message == f"only a client of kind 'department' speaks for a department ({client_id!r} is {kind!r})"
    assert stored(hub, client_id).department is None

    message = refused(admin(hub, CREATE, {"name": "某机构", "kind": kind, "department": "market", "clientId": f"x-{kind}"}))
    assert "only a client of kind 'department' speaks for a department" in message
    assert stored(hub, f"x-{kind}") is None  # nothing created

    ok(admin(hub, SET, {"clientId": client_id}))  # unbinding a client that has no department is harmless


def test_a_department_outside_the_federation_is_refused_naming_the_known_ones(hub: RunningHub) -> None:
    department = hub.clients["department"]["client_id"]
    message = refused(admin(hub, SET, {"clientId": department, "department": "taxes"}))
    assert message == (
        "unknown department 'taxes': not a connector of this hub's federation (known: " + ", ".join(DEMO_DEPARTMENTS) + ")"
    )
    assert stored(hub, department).department is None

    for malformed in ("Market", "1tax", "market regulation", "市场监管", "m" * 65):
        assert "invalid department" in refused(admin(hub, SET, {"clientId": department, "department": malformed}))
    assert "unknown department 'court'" in refused(
        admin(hub, CREATE, {"name": "法院", "kind": "department", "department": "court", "clientId": "dept-court"})
    )
    assert stored(hub, "dept-court") is None
    assert "no client 'nobody'" in refused(admin(hub, SET, {"clientId": "nobody", "department": "tax"}))


def test_the_client_directory_and_a_dry_run_carry_the_department(hub: RunningHub) -> None:
    created = ok(admin(hub, CREATE, {"name": "新城区生态环境分局", "kind": "department", "department": "environment",
                                     "clientId": "dept-env"}))["createClient"]
    assert created["client"]["department"] == "environment"

    async def read(store: Store) -> tuple[Any, Principal]:
        facts = await ClientDirectory(store).facts("dept-env")
        runtime = SimpleNamespace(store=store, purposes=PurposeRegistry(store))
        principal, _ = await dry_run_principal(runtime, "dept-env", None)  # type: ignore[arg-type]
        return facts, principal

    facts, principal = hub.on_store(read)
    assert facts is not None and facts.department == "environment"
    assert principal.department == "environment" and principal.kind == "department"


# ---- the registry ---------------------------------------------------------------------------


def test_the_registry_checks_the_form_and_the_kind(tmp_path: Path) -> None:
    async def go() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
        try:
            registry = ClientRegistry(store)
            dept, _ = await registry.create("市场监管局", "department", client_id="d-1", department="market")
            bank, _ = await registry.create("银行", "bank", client_id="b-1")
            assert (await registry.get(dept)).department == "market"  # type: ignore[union-attr]
            assert await registry.set_department(dept, "hr") and (await registry.get(dept)).department == "hr"  # type: ignore[union-attr]
            assert await registry.set_department(dept, None) and (await registry.get(dept)).department is None  # type: ignore[union-attr]
            with pytest.raises(ClientError, match="only a client of kind 'department'"):
                await registry.set_department(bank, "market")
            with pytest.raises(ClientError, match="only a client of kind 'department'"):
                await registry.create("银行", "bank", client_id="b-2", department="market")
            with pytest.raises(ClientError, match="invalid department"):
                await registry.set_department(dept, "Market")
            assert not await registry.set_department("nobody", "market")
            assert await registry.get("b-2") is None
        finally:
            await store.close()

    asyncio.run(go())


# ---- the CLI --------------------------------------------------------------------------------

CONNECTORS = "".join(f'[[connector]]\nname = "{name}"\nkind = "sql"\n\n' for name in DEMO_DEPARTMENTS)


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with a hub store and a connectors file naming the demo's departments."""
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR", "XINLIAN_CONNECTORS"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"

    async def create() -> None:
        await (await Store.open(Settings.from_env(directory).database_url)).close()

    asyncio.run(create())
    (directory / "connectors.toml").write_text(CONNECTORS, encoding="utf-8")
    return directory


def run(data_dir: Path, *argv: str) -> int:
    return main([*argv, "--data-dir", str(data_dir)])


def with_store(data_dir: Path, use: Any) -> Any:
    async def go() -> Any:
        store = await Store.open(Settings.from_env(data_dir).database_url)
        try:
            return await use(store)
        finally:
            await store.close()

    return asyncio.run(go())


def client(data_dir: Path, client_id: str) -> Any:
    return with_store(data_dir, lambda store: ClientRegistry(store).get(client_id))


def audit(data_dir: Path) -> list[AuditEntry]:
    async def tail(store: Store) -> list[AuditEntry]:
        return [s.entry for s in await AuditTrail(store).tail(1000) if s.entry is not None]

    return with_store(data_dir, tail)


def test_the_cli_binds_shows_and_unbinds(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["clients", "add", "--name", "新城区市场监督管理局", "--kind", "department", "--department", "market",
            "--client-id", "dept-cli", "--json", "--by", "ops-zhang"]
    assert run(data_dir, *argv) == 0
    created = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert created["department"] == "market" and created["client_secret"]
    assert client(data_dir, "dept-cli").department == "market"

    assert run(data_dir, "clients", "set-department", "dept-cli", "tax") == 0
    assert capsys.readouterr().out.strip() == "dept-cli speaks for: tax"
    assert run(data_dir, "clients", "show", "dept-cli") == 0
    shown = capsys.readouterr().out
    assert "department     tax" in shown and "secret" not in shown
    assert run(data_dir, "clients", "list", "--json") == 0
    rows = {row["client_id"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["dept-cli"]["department"] == "tax"

    assert run(data_dir, "clients", "set-department", "dept-cli") == 0  # no DEPARTMENT: unbind
    assert capsys.readouterr().out.strip() == "dept-cli speaks for: (no department)"
    assert client(data_dir, "dept-cli").department is None
    assert run(data_dir, "clients", "show", "dept-cli", "--json") == 0
    assert json.loads(capsys.readouterr().out)["department"] is None

    assert [(e.client_id, e.detail) for e in audit(data_dir)][-3:] == [
        ("ops-zhang", {"action": "createClient", "client_id": "dept-cli", "kind": "department",
                       "scope": "credit:public credit:shared", "department": "market"}),
        ("cli", {"action": "setClientDepartment", "client_id": "dept-cli", "department": "tax"}),
        ("cli", {"action": "setClientDepartment", "client_id": "dept-cli", "department": ""}),
    ]


def test_the_cli_refuses_other_kinds_and_unknown_departments(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "clients", "add", "银行", "--kind", "bank", "--client-id", "bank-cli") == 0
    assert run(data_dir, "clients", "add", "税务局", "--kind", "department", "--client-id", "dept-cli") == 0
    capsys.readouterr()
    entries = len(audit(data_dir))

    assert run(data_dir, "clients", "set-department", "bank-cli", "market") == 2
    assert "only a client of kind 'department' speaks for a department ('bank-cli' is 'bank')" in capsys.readouterr().err
    assert run(data_dir, "clients", "add", "银行二", "--kind", "bank", "--department", "market", "--client-id", "bank-2") == 2
    assert "only a client of kind 'department'" in capsys.readouterr().err
    assert client(data_dir, "bank-2") is None

    assert run(data_dir, "clients", "set-department", "dept-cli", "taxes") == 2
    err = capsys.readouterr().err
    assert "unknown department 'taxes'" in err and "known: courts, environment, hr, market, tax" in err
    assert run(data_dir, "clients", "set-department", "dept-cli", "Tax") == 2
    assert "invalid department 'Tax'" in capsys.readouterr().err
    assert run(data_dir, "clients", "set-department", "nobody", "tax") == 2
    assert "no client 'nobody'" in capsys.readouterr().err
    assert client(data_dir, "dept-cli").department is None
    assert len(audit(data_dir)) == entries  # nothing changed, nothing audited


def test_without_connectors_only_the_form_is_checked(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data_dir / "connectors.toml").unlink()
    assert run(data_dir, "clients", "add", "住建局", "--kind", "department", "--department", "housing",
               "--client-id", "dept-h") == 0
    assert client(data_dir, "dept-h").department == "housing"
    assert run(data_dir, "clients", "set-department", "dept-h", "Housing") == 2
    assert "invalid department" in capsys.readouterr().err
