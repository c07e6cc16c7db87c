"""The hub end to end: a real uvicorn server, real OAuth2 tokens, real SQLite departments."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Iterator

import pytest

from hub_fixture import RunningHub, running_hub
from xinlian.hub.cli import main as cli_main

PROFILE = """
query Profile($uscc: String!) {
  legalPerson(uscc: $uscc) {
    uscc name
    registration { status legalRepresentative contactPhone establishedDate registeredCapital }
    penalties { decisionNumber severity decisionDate dataSourceUnit caseHandler fineAmount }
    taxCredit { level year taxPaid }
    judgmentDebtorRecords { caseNumber court }
    licenses { licenseName }
    honors { honorName }
  }
}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running


def errors_by_code(body: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [e for e in body.get("errors", []) if e["extensions"]["code"] == code]


def test_department_sees_shared_fields_of_peers(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    body = hub.query(PROFILE, "department", {"uscc": uscc}).json()
    person = body["data"]["legalPerson"]
    assert person["uscc"] == uscc and person["name"].startswith("呼和浩特市新城区")
    assert person["registration"]["contactPhone"]  # SHARED: departments receive it
    assert person["taxCredit"]["level"] in {"A", "B", "M", "C", "D"}
    sources = {p["dataSourceUnit"] for p in person["penalties"]}
    assert len(sources) >= 2, "penalties are a union across departments"
    assert all(p["caseHandler"] for p in person["penalties"] if "市场" in p["dataSourceUnit"])
    # taxPaid is AUTHORIZED: not for departments
    forbidden = errors_by_code(body, "FORBIDDEN")
    assert [e["path"] for e in forbidden] == [["legalPerson", "taxCredit", "taxPaid"]]
    assert person["taxCredit"]["taxPaid"] is None


def test_bank_gets_authorized_not_shared(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    body = hub.query(PROFILE, "bank", {"uscc": uscc}, purpose="loan-review").json()
    person = body["data"]["legalPerson"]
    assert person["taxCredit"]["taxPaid"] is not None  # AUTHORIZED
    assert person["taxCredit"]["level"]  # the bank-tax override makes the level AUTHORIZED for banks
    assert person["registration"]["contactPhone"] is None
    assert all(p["caseHandler"] is None for p in person["penalties"])
    paths = sorted(e["path"] for e in errors_by_code(body, "FORBIDDEN"))
    assert paths == [
        ["legalPerson", "penalties", "@", "caseHandler"],
        ["legalPerson", "registration", "contactPhone"],
    ]
    assert person["penalties"], "the rest of the data is returned"


def test_denied_fields_are_never_fetched(hub: RunningHub) -> None:
    market = hub.connector("market")
    tax = hub.connector("tax")
    market.calls.clear()
    tax.calls.clear()
    hub.query(PROFILE, "bank", {"uscc": hub.samples["multi_department_penalties"]}, purpose="loan-review")
    asked = {(c.family, f) for c in market.calls + tax.calls for f in c.fields}
    assert ("registration", "contact_phone") not in asked
    assert ("penalties", "case_handler") not in asked
    assert ("registration", "status") in asked
    # a family whose selected fields are all denied is not fetched at all
    tax.calls.clear()
    body = hub.query("query($u: String!) { legalPerson(uscc: $u) { taxCredit { taxPaid } } }", "department",
                     {"u": hub.samples["a_level_taxpayer"]}).json()
    assert body["data"]["legalPerson"]["taxCredit"] is None
    assert errors_by_code(body, "FORBIDDEN")[0]["path"] == ["legalPerson", "taxCredit"]
    assert [c for c in tax.calls if c.family == "tax_credit"] == []


def test_confidential_field_never_leaves_its_source(hub: RunningHub) -> None:
    market = hub.connector("market")
    market.calls.clear()
    for kind in ("department", "bank", "admin"):
        body = hub.query(
            "query($u: String!) { legalPerson(uscc: $u) { registration { status legalRepresentativeId } } }",
            kind, {"u": hub.samples["clean"]},
        ).json()
        assert body["data"]["legalPerson"]["registration"]["legalRepresentativeId"] is None
        assert errors_by_code(body, "FORBIDDEN")[0]["extensions"]["disclosureClass"] == "CONFIDENTIAL"
    assert all("legal_representative_id" not in c.fields for c in market.calls)
    schema = hub.http.post("/public/graphql", json={"query": '{ __type(name: "Registration") { fields { name } } }'}).json()
    assert "legalRepresentativeId" not in {f["name"] for f in schema["data"]["__type"]["fields"]}


def test_public_endpoint_serves_only_public_fields(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    ok = hub.query(
        "query($u: String!) { legalPerson(uscc: $u) { name penalties { decisionNumber fineAmount } } }", None, {"u": uscc}
    )
    assert ok.status_code == 200 and ok.json()["data"]["legalPerson"]["penalties"]
    for field in ("registration { contactPhone }", "taxCredit { level }", "penalties { caseHandler }"):
        refused = hub.query(f'{{ legalPerson(uscc: "{uscc}") {{ {field} }} }}', None)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    introspection = hub.http.post(
        "/public/graphql", json={"query": "{ __schema { types { name fields { name } } } }"}
    ).json()["data"]["__schema"]["types"]
    fields = {(t["name"], f["name"]) for t in introspection for f in (t["fields"] or [])}
    assert ("AdministrativePenalty", "fineAmount") in fields
    assert ("AdministrativePenalty", "caseHandler") not in fields
    assert ("Registration", "contactPhone") not in fields
    assert not any(t["name"] == "TaxCredit" for t in introspection)


def test_penalties_past_their_window_are_not_public(hub: RunningHub) -> None:
    uscc = hub.samples["expired_penalty"]
    query = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber severity decisionDate } } }"
    internal = hub.query(query, "department", {"u": uscc}).json()["data"]["legalPerson"]["penalties"]
    public = hub.query(query, None, {"u": uscc}).json()["data"]["legalPerson"]["penalties"]
    assert len(internal) > len(public)
    hidden = {p["decisionNumber"] for p in internal} - {p["decisionNumber"] for p in public}
    assert hidden
    minor = hub.query(query, None, {"u": hub.samples["minor_penalty"]}).json()["data"]["legalPerson"]["penalties"]
    assert all(p["severity"] != "轻微" for p in minor)


@pytest.mark.parametrize(
    "query, argument",
    [
        ('{ legalPerson(uscc: "91110000600037341N") { name } }', "uscc"),
        ('{ legalPerson(uscc: "9111000060003IOZSV") { name } }', "uscc"),
        ('{ naturalPerson(idNumber: "36042619910102009X") { idNumber } }', "idNumber"),
        ('{ legalPersons(usccs: ["91110000600037341L", "bad"]) { name } }', "usccs"),
    ],
)
def test_invalid_identifiers_are_rejected_before_any_connector(hub: RunningHub, query: str, argument: str) -> None:
    for connector in hub.runtime.federation.connectors:
        connector.calls.clear()
    for kind in (None, "department"):
        body = hub.query(query, kind).json()
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["argument"] == argument
    assert all(c.calls == [] for c in hub.runtime.federation.connectors)


def test_batch_costs_ceil_n_over_batch_size_calls(hub: RunningHub) -> None:
    from xinlian.schema.identifiers import validate_uscc  # noqa: F401  (codes come from the demo)

    codes = [row for row in _demo_codes(hub)][:120]
    market, courts = hub.connector("market"), hub.connector("courts")
    saved = market.batch_size, courts.batch_size
    market.batch_size, courts.batch_size = 50, 40
    try:
        market.calls.clear()
        courts.calls.clear()
        body = hub.query(
            "query($c: [String!]!) { legalPersons(usccs: $c) { uscc name penalties { decisionNumber } judgmentDebtorRecords { caseNumber } } }",
            "department", {"c": codes},
        ).json()
        assert "errors" not in body, body.get("errors")
        assert [p["uscc"] for p in body["data"]["legalPersons"]] == codes
        by_family: dict[str, int] = {}
        for call in market.calls + courts.calls:
            by_family[f"{call.family}"] = by_family.get(call.family, 0) + 1
        assert by_family["registration"] == 3  # ceil(120 / 50)
        assert sum(1 for c in market.calls if c.family == "penalties") == 3
        assert sum(1 for c in courts.calls if c.family == "judgment_debtor_records") == 3  # ceil(120 / 40)
        assert max(len(c.keys) for c in market.calls) == 50
    finally:
        market.batch_size, courts.batch_size = saved


def test_batch_limit_is_enforced(hub: RunningHub) -> None:
    codes = _demo_codes(hub)
    limit = hub.runtime.settings.batch_limit
    body = hub.query("query($c: [String!]!) { legalPersons(usccs: $c) { uscc } }", "department",
                     {"c": (codes * (limit // len(codes) + 2))[: limit + 1]}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert str(limit) in body["errors"][0]["message"]


def _demo_codes(hub: RunningHub) -> list[str]:
    import sqlite3

    with sqlite3.connect(hub.data_dir / "departments" / "market.db") as db:
        return [row[0] for row in db.execute("SELECT tyshxydm FROM qy_jbxx ORDER BY tyshxydm")]


def test_unknown_subject_is_null(hub: RunningHub) -> None:
    body = hub.query('{ legalPerson(uscc: "91110000600037341L") { name penalties { decisionNumber } } }', None).json()
    assert body == {"data": {"legalPerson": None}}


def test_natural_person_and_search(hub: RunningHub) -> None:
    body = hub.query(
        "query($id: String!) { naturalPerson(idNumber: $id) { idNumber judgmentDebtorRecords { caseNumber debtorName } } }",
        None, {"id": hub.samples["natural_debtor"]},
    ).json()
    assert body["data"]["naturalPerson"]["judgmentDebtorRecords"]
    found = hub.query('{ searchLegalPersons(name: "新城区", first: 5) { uscc name } }', None).json()
    people = found["data"]["searchLegalPersons"]
    assert 1 <= len(people) <= 5 and all("新城区" in p["name"] for p in people)
    wild = hub.query('{ searchLegalPersons(name: "%", first: 5) { uscc } }', None)
    assert wild.json()["data"]["searchLegalPersons"] == []
    # a search that finds nothing still called the registry: its audit entry says so (availability)
    [entry] = hub.audit_entries(wild.headers["x-request-id"])
    assert "新城区市场监督管理局" in entry.detail["asked"]


def test_catalogue_lists_every_field_with_class_and_sources(hub: RunningHub) -> None:
    from xinlian.schema.catalogue import FAMILIES

    query = "{ catalogue { family fieldName valueType label disclosureClass sourceDepartments description } }"
    body = hub.query(query, "bank", purpose="loan-review").json()
    entries = body["data"]["catalogue"]
    assert len(entries) == sum(len(f.fields) for f in FAMILIES.values())
    phone = next(e for e in entries if e["family"] == "registration" and e["fieldName"] == "contactPhone")
    assert phone["disclosureClass"] == "SHARED" and phone["sourceDepartments"] == ["新城区市场监督管理局"]
    penalty = next(e for e in entries if e["family"] == "penalties" and e["fieldName"] == "fineAmount")
    assert len(penalty["sourceDepartments"]) == 3
    public = hub.query(query, None).json()["data"]["catalogue"]
    assert {e["disclosureClass"] for e in public} == {"PUBLIC"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}],
)
def test_graphql_without_a_valid_token_is_401_json(hub: RunningHub, headers: dict[str, str]) -> None:
    response = hub.http.post("/graphql", json={"query": "{ catalogue { family } }"}, headers=headers)
    assert response.status_code == 401
    # RFC 6750 §3.1: a request without credentials gets a challenge without an error code
    # (and so does one using another scheme, Basic); a bad bearer token is invalid_token
    bearer = headers.get("Authorization", "").startswith("Bearer")
    assert response.json()["error"] == ("invalid_token" if bearer else "unauthenticated")
    assert ("error=" in response.headers["www-authenticate"]) == bearer
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "content, code, status",
    [
        (b"{not json", "BAD_REQUEST", 400),
        (json.dumps({"query": "{ legalPerson(uscc: "}).encode(), "GRAPHQL_PARSE_FAILED", 400),
        (json.dumps({"query": "{ nope }"}).encode(), "GRAPHQL_VALIDATION_FAILED", 400),
        (json.dumps({"query": 42}).encode(), "BAD_REQUEST", 400),
        (json.dumps({"query": "{ catalogue { family } }", "pad": "x" * 70_000}).encode(), "PAYLOAD_TOO_LARGE", 413),
    ],
)
def test_bad_requests_get_clear_errors(hub: RunningHub, content: bytes, code: str, status: int) -> None:
    response = hub.http.post("/public/graphql", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code


def test_every_request_is_audited_and_the_chain_verifies(hub: RunningHub) -> None:
    before = len(_tail(hub, 1000))
    uscc = hub.samples["multi_department_penalties"]
    hub.query(PROFILE, "bank", {"uscc": uscc}, purpose="loan-review")
    hub.query('{ legalPerson(uscc: "bad") { name } }', None)
    hub.http.post("/graphql", json={"query": "{ catalogue { family } }"})  # no token
    entries = _tail(hub, 1000)
    # the bank's token request is audited too (every entry point is); then three GraphQL requests
    assert len(entries) == before + 4
    token, bank, public, unauthenticated = entries[-4:]
    assert token["endpoint"] == "/oauth/token" and token["client_id"] == "demo-bank" and token["outcome"] == "ok"
    assert bank["client_id"] == "demo-bank" and bank["client_kind"] == "bank"
    assert bank["subjects"] == [uscc]
    assert "penalties.case_handler" in bank["denied"] and "registration.contact_phone" in bank["denied"]
    assert "tax_credit.tax_paid" in bank["released"]
    assert bank["outcome"] == "partial" and bank["policy_version"] == "v1"
    assert public["client_id"] is None and public["endpoint"] == "/public/graphql"
    assert public["errors"] == ["BAD_USER_INPUT"]
    assert unauthenticated["outcome"] == "rejected"
    assert cli_main(["audit", "verify", "--data-dir", str(hub.data_dir)]) == 0


def _tail(hub: RunningHub, n: int) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "xinlian.hub.cli", "audit", "tail", "-n", str(n), "--json", "--data-dir", str(hub.data_dir)],
        capture_output=True, text=True, check=True,
    )
    return [json.loads(line)["entry"] for line in result.stdout.splitlines() if line.strip()]
