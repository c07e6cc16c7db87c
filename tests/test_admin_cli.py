"""The administrative CLI: clients, purposes, consents, objections, access logs — each change audited."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.auth.clients import ClientRegistry
from xinlian.hub.cli import main
from xinlian.hub.config import Settings
from xinlian.hub.store import Store

PERSON = "110102199101010078"  # a valid resident ID
OTHER_PERSON = "44011320141005001X"
COMPANY = "91110000600037341L"  # a valid USCC


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"

    async def create() -> None:  # the store a started hub leaves (the CLI never creates one)
        await (await Store.open(Settings.from_env(directory).database_url)).close()

    asyncio.run(create())
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


def audit(data_dir: Path) -> list[AuditEntry]:
    async def tail(store: Store) -> list[AuditEntry]:
        return [s.entry for s in await AuditTrail(store).tail(1000) if s.entry is not None]

    return with_store(data_dir, tail)


def client(data_dir: Path, client_id: str) -> Any:
    return with_store(data_dir, lambda store: ClientRegistry(store).get(client_id))


def authenticates(data_dir: Path, client_id: str, secret: str) -> bool:
    return with_store(data_dir, lambda store: ClientRegistry(store).authenticate(client_id, secret)) is not None


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture()
def bank(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """A purpose `loan-review` and a bank `bank-cli` registered for it."""
    assert run(data_dir, "purposes", "define", "loan-review", "贷款审批", "--description", "Loans.") == 0
    argv = ["clients", "create", "呼和浩特银行", "--kind", "bank", "--purposes", "loan-review", "--client-id", "bank-cli"]
    assert run(data_dir, *argv, "--json", "--by", "ops-zhang") == 0
    created = json.loads(capsys.readouterr().out.splitlines()[-1])
    return created


# ---- purposes ---------------------------------------------------------------------------------


def test_define_list_and_retire_purposes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "purposes", "define", "loan-review", "贷款审批", "--by", "ops-li") == 0
    assert "defined loan-review" in capsys.readouterr().out
    assert run(data_dir, "purposes", "list", "--json") == 0
    [listed] = json_lines(capsys.readouterr().out)
    assert (listed["code"], listed["label"], listed["retired"]) == ("loan-review", "贷款审批", False)
    assert run(data_dir, "purposes", "retire", "loan-review") == 0
    assert run(data_dir, "purposes", "list") == 0
    assert "no purposes" in capsys.readouterr().out
    assert run(data_dir, "purposes", "list", "--all") == 0
    assert "loan-review" in capsys.readouterr().out
    entries = [e for e in audit(data_dir) if e.endpoint == "cli"]
    assert [(e.client_id, e.client_kind, e.detail) for e in entries] == [
        ("ops-li", "admin", {"action": "definePurpose", "code": "loan-review", "label": "贷款审批"}),
        ("cli", "admin", {"action": "retirePurpose", "code": "loan-review"}),
    ]
    assert all(e.outcome == "ok" for e in entries)


@pytest.mark.parametrize("argv", [["define", "Bad Code", "x"], ["define", "ok-code", " "], ["retire", "nothing"]])
def test_bad_purpose_commands_exit_2_and_change_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert run(data_dir, "purposes", *argv) == 2
    assert capsys.readouterr().err.startswith("xinlian purposes: ")
    assert run(data_dir, "purposes", "list", "--all", "--json") == 0
    assert capsys.readouterr().out == ""
    assert audit(data_dir) == []


# ---- clients ----------------------------------------------------------------------------------


def test_create_a_bank_with_purposes(data_dir: Path, bank: dict[str, Any]) -> None:
    assert bank["client_id"] == "bank-cli" and bank["purposes"] == ["loan-review"]
    assert authenticates(data_dir, "bank-cli", bank["client_secret"])
    [entry] = [e for e in audit(data_dir) if (e.detail or {}).get("action") == "createClient"]
    assert entry.endpoint == "cli" and entry.client_id == "ops-zhang" and entry.client_kind == "admin"
    assert entry.detail == {
        "action": "createClient", "client_id": "bank-cli", "kind": "bank",
        "scope": "credit:public credit:authorized", "purposes": ["loan-review"],
    }
    assert bank["client_secret"] not in entry.canonical_content()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["X", "--kind", "bank", "--purposes", "loan-review,unknown"], "unknown or retired purposes: unknown"),
        (["X", "--kind", "bank", "--subject", COMPANY], "only a client of kind 'subject'"),
        (["X", "--kind", "subject", "--subject", "91110000600037341N"], "neither a valid USCC nor a valid resident ID"),
        (["X", "--kind", "bank", "--scope", "bad\\scope"], "invalid scope token"),
        (["X", "--kind", "bank", "--client-id", "bank-cli"], "already registered"),
    ],
)
def test_refused_client_creation_exits_2_and_changes_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any], argv: list[str], message: str
) -> None:
    before = audit(data_dir)
    assert run(data_dir, "clients", "list", "--json") == 0
    clients_before = capsys.readouterr().out
    full = argv if "--client-id" in argv else [*argv, "--client-id", "refused"]
    assert run(data_dir, "clients", "create", *full) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert client(data_dir, "refused") is None
    assert run(data_dir, "clients", "list", "--json") == 0
    assert capsys.readouterr().out == clients_before
    assert audit(data_dir) == before


def test_rotate_a_secret(data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any]) -> None:
    assert run(data_dir, "clients", "rotate-secret", "bank-cli", "--json") == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["client_id"] == "bank-cli" and rotated["client_secret"] != bank["client_secret"]
    assert not authenticates(data_dir, "bank-cli", bank["client_secret"])
    assert authenticates(data_dir, "bank-cli", rotated["client_secret"])
    assert audit(data_dir)[-1].detail == {"action": "rotateClientSecret", "client_id": "bank-cli"}
    assert run(data_dir, "clients", "rotate-secret", "nobody") == 2
    assert "no client 'nobody'" in capsys.readouterr().err


def test_scope_purposes_subject_disable_and_enable(data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any]) -> None:
    assert run(data_dir, "purposes", "define", "credit-card-review", "信用卡审批") == 0
    assert run(data_dir, "clients", "set-scope", "bank-cli", "credit:public") == 0
    assert run(data_dir, "clients", "set-purposes", "bank-cli", "loan-review,credit-card-review") == 0
    record = client(data_dir, "bank-cli")
    assert record.scope == "credit:public" and record.purposes == "loan-review credit-card-review"
    assert run(data_dir, "clients", "set-purposes", "bank-cli", "") == 0
    assert client(data_dir, "bank-cli").purposes == ""

    assert run(data_dir, "clients", "create", "企业门户", "--kind", "subject", "--client-id", "portal-1") == 0
    assert run(data_dir, "clients", "set-subject", "portal-1", COMPANY.lower()) == 0
    assert client(data_dir, "portal-1").subject_id == COMPANY
    assert run(data_dir, "clients", "set-subject", "bank-cli", COMPANY) == 2  # not a subject client
    assert run(data_dir, "clients", "set-subject", "portal-1") == 0
    assert client(data_dir, "portal-1").subject_id is None

    assert run(data_dir, "clients", "disable", "bank-cli", "--by", "ops-wang") == 0
    assert client(data_dir, "bank-cli").disabled
    assert run(data_dir, "clients", "enable", "bank-cli") == 0
    assert not client(data_dir, "bank-cli").disabled
    assert run(data_dir, "clients", "enable", "nobody") == 2
    actions = [(e.client_id, e.detail) for e in audit(data_dir)][-9:]
    assert actions == [
        ("cli", {"action": "definePurpose", "code": "credit-card-review", "label": "信用卡审批"}),
        ("cli", {"action": "setClientScope", "client_id": "bank-cli", "scope": "credit:public"}),
        ("cli", {"action": "setClientPurposes", "client_id": "bank-cli", "purposes": ["loan-review", "credit-card-review"]}),
        ("cli", {"action": "setClientPurposes", "client_id": "bank-cli", "purposes": []}),
        ("cli", {"action": "createClient", "client_id": "portal-1", "kind": "subject", "scope": "credit:public"}),
        ("cli", {"action": "setClientSubject", "client_id": "portal-1", "subject_id": COMPANY}),
        ("cli", {"action": "setClientSubject", "client_id": "portal-1", "subject_id": ""}),
        ("ops-wang", {"action": "disableClient", "client_id": "bank-cli"}),
        ("cli", {"action": "enableClient", "client_id": "bank-cli"}),
    ]


def test_the_original_client_commands_are_audited_too(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "clients", "add", "--name", "新城区税务局", "--kind", "department", "--client-id", "tax-1") == 0
    assert run(data_dir, "clients", "disable", "tax-1") == 0
    assert run(data_dir, "clients", "disable", "nobody") == 2  # refused: 2, as every clients command (add used to exit 1)
    details = [e.detail for e in audit(data_dir)]
    assert details == [
        {"action": "createClient", "client_id": "tax-1", "kind": "department", "scope": "credit:public credit:shared"},
        {"action": "disableClient", "client_id": "tax-1"},
    ]


# ---- consents ---------------------------------------------------------------------------------


def test_grant_list_and_revoke_consents(data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any]) -> None:
    capsys.readouterr()
    grant = ["consents", "grant", PERSON, "bank-cli", "loan-review"]
    assert run(data_dir, *grant, "--days", "30", "--reference", "SQ-0001", "--by", "ops-zhang") == 0
    assert run(data_dir, *grant, "--until", "2099-12-31") == 2  # more than about three years
    until = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    assert run(data_dir, "consents", "grant", OTHER_PERSON, "bank-cli", "loan-review", "--until", until) == 0
    capsys.readouterr()
    assert run(data_dir, "consents", "list", "--subject", PERSON, "--json") == 0
    [first] = json_lines(capsys.readouterr().out)
    assert (first["subject"], first["client_id"], first["purpose"], first["reference"]) == (PERSON, "bank-cli", "loan-review", "SQ-0001")
    assert first["in_force"] and first["recorded_by"] == "ops-zhang"
    assert run(data_dir, "consents", "list", "--client", "bank-cli", "--json") == 0
    listed = json_lines(capsys.readouterr().out)
    second = next(c for c in listed if c["subject"] == OTHER_PERSON)
    expected_end = dt.datetime.combine(dt.date.fromisoformat(until), dt.time(16, 0), dt.timezone.utc)  # 24:00 CST
    assert second["expires_at"] == expected_end.strftime("%Y-%m-%dT%H:%M:%SZ")

    assert run(data_dir, "consents", "revoke", str(first["id"])) == 0
    assert run(data_dir, "consents", "revoke", str(first["id"])) == 2
    capsys.readouterr()
    assert run(data_dir, "consents", "list", "--subject", PERSON, "--json") == 0
    [revoked] = json_lines(capsys.readouterr().out)
    assert revoked["revoked_at"] and not revoked["in_force"]
    granted = [e for e in audit(data_dir) if (e.detail or {}).get("action") == "registerConsent"]
    assert granted[0].subjects == [PERSON] and granted[0].client_id == "ops-zhang"
    assert granted[0].detail == {
        "action": "registerConsent", "consent_id": first["id"], "subject": PERSON, "client_id": "bank-cli",
        "purpose": "loan-review", "reference": "SQ-0001",
    }
    assert audit(data_dir)[-1].detail == {"action": "revokeConsent", "consent_id": first["id"], "subject": PERSON, "client_id": "bank-cli"}


@pytest.mark.parametrize(
    "argv, message",
    [
        ([PERSON, "bank-cli", "credit-card-review", "--days", "30"], "no purpose 'credit-card-review'"),
        ([PERSON, "nobody", "loan-review", "--days", "30"], "no client 'nobody'"),
        ([COMPANY, "bank-cli", "loan-review", "--days", "30"], "consents are for natural persons"),
        ([PERSON, "bank-cli", "loan-review", "--days", "0"], "--days: at least 1"),
        ([PERSON, "bank-cli", "loan-review", "--until", "next week"], "--until"),
        ([PERSON, "bank-cli", "loan-review", "--until", "2001-01-01"], "expire after"),
    ],
)
def test_refused_consents_exit_2_and_record_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any], argv: list[str], message: str
) -> None:
    before = audit(data_dir)
    assert run(data_dir, "consents", "grant", *argv) == 2
    assert message in capsys.readouterr().err
    assert run(data_dir, "consents", "list", "--json") == 0
    assert capsys.readouterr().out == ""
    assert audit(data_dir) == before


def test_a_consent_needs_a_purpose_of_the_client(data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any]) -> None:
    assert run(data_dir, "purposes", "define", "supply-chain-finance", "供应链金融") == 0
    assert run(data_dir, "consents", "grant", PERSON, "bank-cli", "supply-chain-finance", "--days", "30") == 2
    assert "not among client 'bank-cli'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # --days and --until together
        run(data_dir, "consents", "grant", PERSON, "bank-cli", "loan-review", "--days", "3", "--until", "2030-01-01")
    assert exited.value.code == 2


# ---- objections -------------------------------------------------------------------------------


def test_file_list_and_close_objections(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["objections", "file", COMPANY, "penalties", "新市监罚〔2026〕12号", "--reason", "已缴纳罚款并整改"]
    assert run(data_dir, *argv, "--by", "ops-zhao") == 0
    assert "(open, answer due " in capsys.readouterr().out
    assert run(data_dir, "objections", "list", "--status", "open", "--json") == 0
    [filed] = json_lines(capsys.readouterr().out)
    assert (filed["subject"], filed["family"], filed["record_ref"], filed["filed_by"]) == (
        COMPANY, "penalties", "新市监罚〔2026〕12号", "ops-zhao"
    )
    assert filed["grounds"] == "wrong" and filed["deadline"]  # ten working days after today
    assert run(data_dir, "objections", "close", str(filed["id"]), "corrected", "--note", "部门已更正") == 0
    assert run(data_dir, "objections", "close", str(filed["id"]), "upheld", "--note", "x") == 2  # closed already
    capsys.readouterr()
    assert run(data_dir, "objections", "list", "--subject", COMPANY, "--json") == 0
    [closed] = json_lines(capsys.readouterr().out)
    assert (closed["status"], closed["outcome"]) == ("corrected", "部门已更正")
    details = [e.detail for e in audit(data_dir)]
    assert details == [
        {"action": "fileObjection", "objection_id": filed["id"], "subject": COMPANY, "family": "penalties",
         "record_ref": "新市监罚〔2026〕12号", "reason": "已缴纳罚款并整改", "grounds": "wrong"},
        {"action": "closeObjection", "objection_id": filed["id"], "subject": COMPANY, "outcome": "corrected", "note": "部门已更正"},
    ]
    assert run(data_dir, "objections", "file", COMPANY, "nothing", "x", "--reason", "y") == 2
    assert run(data_dir, "objections", "file", "91110000600037341N", "penalties", "x", "--reason", "y") == 2
    assert run(data_dir, "objections", "file", COMPANY, "penalties", "x", "--reason", " ") == 2
    assert len(audit(data_dir)) == 2


# ---- access log -------------------------------------------------------------------------------


def _accesses(data_dir: Path) -> None:
    """Three requests about PERSON (a bank's, the public's, a CLI change) written to the trail."""

    def entry(endpoint: str, client_id: str | None, kind: str | None, **extra: Any) -> AuditEntry:
        return AuditEntry(
            at=dt.datetime.now(dt.timezone.utc), request_id="r", endpoint=endpoint, client_id=client_id,
            client_kind=kind, outcome="ok", policy_version="v1", subjects=[PERSON], **extra,
        )

    async def write(store: Store) -> None:
        trail = AuditTrail(store)
        await trail.start()
        try:
            await trail.record(entry("/graphql", "bank-cli", "bank", purpose="loan-review",
                                     released=["social_insurance_contributions.monthly_base"],
                                     masked=["social_insurance_contributions.monthly_base"], denied=["penalties.case_handler"]))
            await trail.record(entry("/public/graphql", None, None, released=["penalties.decision_number"]))
            await trail.record(entry("cli", "cli", "admin", detail={"action": "registerConsent"}))
        finally:
            await trail.stop()

    with_store(data_dir, write)


def test_access_log_of_a_subject(data_dir: Path, capsys: pytest.CaptureFixture[str], bank: dict[str, Any]) -> None:
    _accesses(data_dir)
    capsys.readouterr()
    assert run(data_dir, "access-log", PERSON, "--json") == 0
    items = json_lines(capsys.readouterr().out)
    assert [(i["endpoint"], i["clientId"]) for i in items] == [("/public/graphql", None), ("/graphql", "bank-cli")]
    assert items[1]["clientName"] == "呼和浩特银行" and items[1]["purpose"] == "loan-review"
    assert items[1]["masked"] == ["social_insurance_contributions.monthly_base"]
    assert run(data_dir, "access-log", PERSON, "--first", "1") == 0
    text = capsys.readouterr().out
    assert "/public/graphql  public  ok" in text and f"--before {items[0]['seq']}" in text
    assert run(data_dir, "access-log", PERSON, "--before", str(items[0]["seq"])) == 0
    older = capsys.readouterr().out
    assert "呼和浩特银行 (bank)" in older and "masked: social_insurance_contributions.monthly_base" in older
    assert run(data_dir, "access-log", OTHER_PERSON) == 0
    assert "no accesses" in capsys.readouterr().out
    before = len(audit(data_dir))
    assert run(data_dir, "access-log", "36042619910102009X") == 2
    assert "neither a valid USCC nor a valid resident ID" in capsys.readouterr().err
    assert run(data_dir, "access-log", PERSON, "--first", "0") == 2
    assert len(audit(data_dir)) == before  # reading writes no entry


def test_the_data_directory_comes_from_the_environment(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XINLIAN_DATA_DIR", str(data_dir))
    assert main(["purposes", "define", "loan-review", "贷款审批"]) == 0
    assert main(["clients", "create", "银行", "--kind", "bank", "--purposes", "loan-review", "--client-id", "b-env"]) == 0
    out = capsys.readouterr().out
    assert "client_secret" in out and "loan-review" in out
    assert client(data_dir, "b-env").purposes == "loan-review"


@pytest.mark.parametrize(
    "argv",
    [
        ["purposes", "list"],
        ["purposes", "define", "loan-review", "贷款审批"],
        ["clients", "create", "银行", "--kind", "bank"],
        ["policy", "list"],
        ["policy", "set-class", "penalties", "case_handler", "public", "--reason", "r"],
    ],
    ids=["purposes-list", "purposes-define", "clients-create", "policy-list", "policy-set-class"],
)
def test_a_mistyped_data_directory_is_refused_and_no_store_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR", "XINLIAN_POLICY"):
        monkeypatch.delenv(name, raising=False)
    mistyped = tmp_path / "xinlain-data"
    assert main([*argv, "--data-dir", str(mistyped)]) == 2
    err = capsys.readouterr().err
    assert f"no hub store at {mistyped / 'hub.db'} (start the hub once, or check --data-dir)" in err
    assert not (mistyped / "hub.db").exists()
