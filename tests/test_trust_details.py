"""Issue 9, items 2–5, through a real hub: long names masked, dry runs that show no more than the
admin may see, tokens that stay dead after a disable or a secret rotation, private file modes."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from hub_fixture import RunningHub, running_hub, wait_until
from xinlian.hub.auth.clients import ClientRegistry
from xinlian.hub.demo.generator import build_demo_district
from xinlian.hub.governance.policy_versions import PolicyHistory

LONG_NAME = "乌云其木格"
DEBTOR = """query D($id: String!) { naturalPerson(idNumber: $id) { judgmentDebtorRecords { caseNumber debtorName debtorIdNumber } } }"""
DRY_RUN = """
query Dry($client: String!, $subject: String!, $version: String, $purpose: String) {
  dryRun(clientId: $client, subject: $subject, policyVersion: $version, purpose: $purpose) {
    policyVersion data decisions { family field disclosureClass allowed mask } released masked
  }
}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    data_dir = tmp_path_factory.mktemp("hub")
    district = build_demo_district(data_dir, legal_persons=150, natural_persons=40)
    person = district.samples["natural_debtor"]
    with sqlite3.connect(district.databases["courts"]) as conn:  # a long Mongolian name on the court's list
        assert conn.execute("UPDATE sxbzxr SET bzxrmc = ? WHERE upper(zjhm) = ?", (LONG_NAME, person)).rowcount >= 1
    os.chmod(data_dir, 0o755)  # as a loose umask would leave it: the hub must tighten it
    old = os.umask(0)
    try:
        with running_hub(data_dir) as running:
            os.umask(old)
            yield running
    finally:
        os.umask(old)


def admin(hub: RunningHub, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = hub.http.post(
        "/admin/graphql", json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


# ---- item 2: names of any length are masked --------------------------------------------------


@pytest.mark.parametrize("kind", [None, "bank"])
def test_a_long_name_is_masked_for_the_public_and_for_a_bank(hub: RunningHub, kind: str | None) -> None:
    person = hub.samples["natural_debtor"]
    body = hub.query(DEBTOR, kind, {"id": person}).json()
    records = body["data"]["naturalPerson"]["judgmentDebtorRecords"]
    assert records
    for record in records:
        assert record["debtorName"] == "乌****"
        assert not set("云其木格") & set(record["debtorName"])


def test_departments_still_see_the_long_name_in_clear(hub: RunningHub) -> None:
    person = hub.samples["natural_debtor"]
    records = hub.query(DEBTOR, "department", {"id": person}).json()["data"]["naturalPerson"]["judgmentDebtorRecords"]
    assert {r["debtorName"] for r in records} == {LONG_NAME}


@pytest.mark.parametrize("kind", [None, "bank"])
def test_a_legal_persons_own_name_on_the_debtor_list_stays_public(hub: RunningHub, kind: str | None) -> None:
    """The `name` mask is for persons: a dishonest company is named in full on the blacklist."""
    company = hub.samples["judgment_debtor"]
    query = "query($u: String!) { legalPerson(uscc: $u) { name judgmentDebtorRecords { debtorName } } }"
    node = hub.query(query, kind, {"u": company}).json()["data"]["legalPerson"]
    assert node["judgmentDebtorRecords"] and len(node["name"]) >= 5
    assert {r["debtorName"] for r in node["judgmentDebtorRecords"]} == {node["name"]}


# ---- item 3: dry runs show decisions and shapes, not values the admin may not see -------------


def test_a_dry_run_shows_authorized_values_only_as_shapes(hub: RunningHub) -> None:
    person = hub.samples["insured_person"]
    dry = admin(hub, DRY_RUN, {"client": "demo-bank", "subject": person, "purpose": "loan-review"})["dryRun"]
    decisions = {f"{d['family']}.{d['field']}": d for d in dry["decisions"]}
    assert decisions["social_insurance_contributions.monthly_base"]["allowed"] is True  # X's decision is shown
    assert "social_insurance_contributions.monthly_base" in dry["masked"]
    contributions = dry["data"]["naturalPerson"]["socialInsuranceContributions"]
    assert contributions
    for record in contributions:  # AUTHORIZED: the admin's own scopes do not grant it
        assert record["monthlyBase"] in (None, "<decimal>")
        assert record["employerName"] in (None, "<string>")
    assert any(r["monthlyBase"] == "<decimal>" for r in contributions)


def test_a_dry_run_keeps_values_the_admin_itself_may_see(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    dry = admin(hub, DRY_RUN, {"client": "demo-department", "subject": uscc})["dryRun"]
    registration = dry["data"]["legalPerson"]["registration"]
    assert registration["name"] and not registration["name"].startswith("<")
    assert registration["contactPhone"] and not registration["contactPhone"].startswith("<")  # SHARED: the admin has it


def test_a_dry_run_under_a_never_activated_version_returns_no_confidential_value(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    leaky = Path("policies/default.toml").read_text(encoding="utf-8").replace(
        'legal_representative_id = "CONFIDENTIAL"', 'legal_representative_id = "PUBLIC"'
    )

    async def store_it(store: Any) -> str:
        stored = await PolicyHistory(store).import_text(leaky, "test", "leak trial", activate=False)
        return str(stored.version)

    version = hub.on_store(store_it)
    dry = admin(hub, DRY_RUN, {"client": "demo-department", "subject": uscc, "version": version})["dryRun"]
    assert dry["policyVersion"] == version
    decision = next(d for d in dry["decisions"] if d["field"] == "legal_representative_id")
    assert decision["disclosureClass"] == "PUBLIC" and decision["allowed"] is True
    assert "registration.legal_representative_id" in dry["released"]  # X would get it under that version ...
    shown = dry["data"]["legalPerson"]["registration"]["legalRepresentativeId"]
    assert shown in (None, "<string>")  # ... but the dry run never returns the value itself


def test_dry_run_reads_count_against_the_admins_cap(tmp_path: Path) -> None:
    """Dry runs read AUTHORIZED data: they count against the admin's own cap (one subject a day
    here), so the second subject crosses it and the admin — not the client — gets the alert."""
    with running_hub(tmp_path, legal_persons=12, natural_persons=4, authorized_subject_cap="1/day") as running:
        for sample in ("a_level_taxpayer", "multi_department_penalties"):  # the bank reads AUTHORIZED taxPaid
            admin(running, DRY_RUN, {"client": "demo-bank", "subject": running.samples[sample], "purpose": "loan-review"})
        alerts = [e for e in running.audit_entries() if e.outcome == "alert"]
    assert [a.client_id for a in alerts] == [running.clients["admin"]["client_id"]]


# ---- item 5: tokens issued before a disable or a rotation stay dead ---------------------------


def _token(hub: RunningHub, client_id: str, secret: str) -> httpx.Response:
    return hub.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def _status(hub: RunningHub, token: str) -> int:
    query = {"query": "query($u: String!) { legalPerson(uscc: $u) { uscc } }", "variables": {"u": hub.samples["multi_department_penalties"]}}
    return hub.http.post("/graphql", json=query, headers={"Authorization": f"Bearer {token}"}).status_code


def _registry(hub: RunningHub, call: Callable[[ClientRegistry], Any]) -> Any:
    return hub.on_store(lambda store: call(ClientRegistry(store)))


def _new_client(hub: RunningHub, client_id: str) -> str:
    async def create(registry: ClientRegistry) -> str:
        return (await registry.create("测试银行", "bank", client_id=client_id))[1]

    return str(_registry(hub, create))


def test_re_enabling_a_client_does_not_revive_its_old_tokens(hub: RunningHub) -> None:
    secret = _new_client(hub, "trust-disable")
    canary_secret = _new_client(hub, "trust-disable-canary")
    old = _token(hub, "trust-disable", secret).json()["access_token"]
    assert _status(hub, old) == 200
    assert _registry(hub, lambda r: r.disable("trust-disable"))
    wait_until(lambda: _status(hub, old) == 401, 5, "the hub refusing the disabled client's token")
    assert _registry(hub, lambda r: r.enable("trust-disable"))
    fresh = _token(hub, "trust-disable", secret)
    assert fresh.status_code == 200
    wait_until(lambda: _status(hub, fresh.json()["access_token"]) == 200, 5, "the hub accepting the re-enabled client")
    # past a re-read of the revocation list after the re-enable, the old token must still be refused:
    # disable another client now and wait until the hub refuses its token (it has re-read the store)
    canary = _token(hub, "trust-disable-canary", canary_secret).json()["access_token"]
    assert _status(hub, canary) == 200
    assert _registry(hub, lambda r: r.disable("trust-disable-canary"))
    wait_until(lambda: _status(hub, canary) == 401, 5, "the hub re-reading the revocation list")
    assert _status(hub, old) == 401


def test_rotating_a_secret_ends_the_tokens_issued_with_the_old_one(hub: RunningHub) -> None:
    secret = _new_client(hub, "trust-rotate")
    old = _token(hub, "trust-rotate", secret).json()["access_token"]
    assert _status(hub, old) == 200
    new_secret = _registry(hub, lambda r: r.rotate_secret("trust-rotate"))
    wait_until(lambda: _status(hub, old) == 401, 5, "the hub refusing the token of the old secret")
    assert _token(hub, "trust-rotate", secret).status_code == 401
    issued = _token(hub, "trust-rotate", new_secret)
    assert issued.status_code == 200
    new = issued.json()["access_token"]
    assert _status(hub, new) == 200 and _status(hub, old) == 401
    introspect = hub.http.post("/oauth/introspect", data={"token": old}, auth=("trust-rotate", new_secret))
    assert introspect.json() == {"active": False}


# ---- item 4: private file modes ---------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_store_and_keys_are_private(hub: RunningHub) -> None:
    assert _mode(hub.data_dir) == 0o700
    for name in ("hub.db", "hub.db-wal", "hub.db-shm"):
        path = hub.data_dir / name
        assert path.exists() and _mode(path) == 0o600, (name, oct(_mode(path)))
    keys = hub.data_dir / "keys"
    assert _mode(keys) == 0o700
    files = [p for p in keys.iterdir() if p.is_file()]
    assert files and all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
