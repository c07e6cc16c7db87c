"""The admin API (`/admin/graphql`) end to end: a real hub, real tokens, real audit entries."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any, Iterator

import httpx
import pytest

from hub_fixture import RunningHub, consents_revoked, objections_closed, running_hub
from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.store import Store

CLIENTS = "{ clients { clientId name kind scopes purposes subjectId disabled authMethod } }"
CREATE = """
mutation Create($name: String!, $kind: String!, $scope: String, $purposes: [String!], $subjectId: String, $clientId: String) {
  createClient(name: $name, kind: $kind, scope: $scope, purposes: $purposes, subjectId: $subjectId, clientId: $clientId) {
    clientSecret client { clientId kind scopes purposes subjectId disabled }
  }
}
"""
TAX = "query Tax($uscc: String!) { legalPerson(uscc: $uscc) { taxCredit { level taxPaid } } }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("admin-hub")) as running:
        yield running


def admin(
    hub: RunningHub, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return hub.http.post(
        "/admin/graphql", json=body, headers={"Authorization": f"Bearer {token or hub.token('admin')}"}
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def audit_entries(hub: RunningHub, request_id: str | None = None, n: int = 200) -> list[AuditEntry]:
    """The latest audit entries (of one request, if given), read from the hub store."""

    async def read() -> list[Any]:
        store = Store(hub.runtime.settings.database_url)
        try:
            return await AuditTrail(store).tail(n)
        finally:
            await store.close()

    entries = [s.entry for s in asyncio.run(read()) if s.entry is not None]
    return [e for e in entries if request_id is None or e.request_id == request_id]


def the_entry(hub: RunningHub, response: httpx.Response) -> AuditEntry:
    found = [
        e for e in audit_entries(hub, response.headers["x-request-id"])
        if not (e.detail or {}).get("dryRun") and not (e.detail or {}).get("intent")
    ]
    assert len(found) == 1, found
    return found[0]


def token_for(hub: RunningHub, client_id: str, secret: str) -> httpx.Response:
    return hub.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))


def create(hub: RunningHub, **variables: Any) -> dict[str, Any]:
    return ok(admin(hub, CREATE, variables))["createClient"]


# ---- who may call it ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bank", "department", "subject"])
def test_a_token_without_the_admin_scope_is_refused(hub: RunningHub, kind: str) -> None:
    response = admin(hub, CLIENTS, token=hub.token(kind))
    assert response.status_code == 403
    assert codes(response.json()) == ["FORBIDDEN"]
    entry = the_entry(hub, response)
    assert entry.endpoint == "/admin/graphql" and entry.outcome == "rejected"
    assert entry.client_id == hub.clients[kind]["client_id"] and entry.errors == ["FORBIDDEN"]


def test_no_token_or_a_narrowed_admin_token_is_refused(hub: RunningHub) -> None:
    response = hub.http.post("/admin/graphql", json={"query": CLIENTS})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    narrowed = hub.token("admin", scope="credit:public")
    response = admin(hub, CLIENTS, token=narrowed)
    assert response.status_code == 403 and codes(response.json()) == ["FORBIDDEN"]


def test_admins_may_introspect_and_answers_are_not_stored(hub: RunningHub) -> None:
    response = admin(hub, "{ __schema { mutationType { fields { name } } } }")
    names = {f["name"] for f in ok(response)["__schema"]["mutationType"]["fields"]}
    assert {"createClient", "rotateClientSecret", "setFieldClass", "activatePolicyVersion"} <= names
    assert response.headers["cache-control"] == "no-store"


def test_a_mutation_cannot_be_sent_with_get(hub: RunningHub) -> None:
    response = hub.http.get(
        "/admin/graphql",
        params={"query": 'mutation { definePurpose(code: "by-get", label: "GET") { code } }'},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )
    assert response.status_code == 405
    purposes = ok(admin(hub, "{ purposes(includeRetired: true) { code } }"))["purposes"]
    assert "by-get" not in {p["code"] for p in purposes}
    response = hub.http.get(
        "/admin/graphql", params={"query": "{ purposes { code } }"},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )
    assert response.status_code == 200 and ok(response)["purposes"]


# ---- clients ------------------------------------------------------------------------------


def test_create_client_returns_the_secret_once_and_the_client_gets_tokens(hub: RunningHub) -> None:
    response = admin(
        hub, CREATE, {"name": "包头银行新城支行", "kind": "bank", "purposes": ["loan-review"], "clientId": "bank-bt"}
    )
    created = ok(response)["createClient"]
    assert created["client"] == {
        "clientId": "bank-bt", "kind": "bank", "scopes": ["credit:public", "credit:authorized"],
        "purposes": ["loan-review"], "subjectId": None, "disabled": False,
    }
    assert token_for(hub, "bank-bt", created["clientSecret"]).status_code == 200
    listed = {c["clientId"]: c for c in ok(admin(hub, CLIENTS))["clients"]}
    assert listed["bank-bt"]["name"] == "包头银行新城支行" and "clientSecret" not in listed["bank-bt"]
    entry = the_entry(hub, response)
    assert entry.outcome == "ok" and entry.client_id == hub.clients["admin"]["client_id"]
    assert entry.detail == {"actions": [{
        "action": "createClient", "client_id": "bank-bt", "kind": "bank",
        "scope": "credit:public credit:authorized", "purposes": ["loan-review"],
    }]}
    assert created["clientSecret"] not in str(entry.to_document())


def test_a_subject_client_is_bound_to_its_subject(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    created = create(hub, name="企业门户", kind="subject", subjectId=uscc)
    assert created["client"]["subjectId"] == uscc and created["client"]["scopes"] == ["credit:public"]
    client_id = created["client"]["clientId"]
    unbound = ok(admin(hub, "mutation($id: String!) { setClientSubject(clientId: $id) { subjectId } }", {"id": client_id}))
    assert unbound["setClientSubject"]["subjectId"] is None


def test_rotating_a_secret_refuses_the_old_one_and_accepts_the_new(hub: RunningHub) -> None:
    created = create(hub, name="新城区农信社", kind="bank", clientId="bank-rotate")
    old = created["clientSecret"]
    response = admin(
        hub, 'mutation { rotateClientSecret(clientId: "bank-rotate") { clientSecret client { clientId } } }'
    )
    new = ok(response)["rotateClientSecret"]["clientSecret"]
    assert new != old
    assert token_for(hub, "bank-rotate", old).status_code == 401
    assert token_for(hub, "bank-rotate", new).status_code == 200
    assert the_entry(hub, response).detail == {"actions": [{"action": "rotateClientSecret", "client_id": "bank-rotate"}]}


def test_a_disabled_client_is_refused_and_an_enabled_one_accepted_again(hub: RunningHub) -> None:
    created = create(hub, name="新城区统计局", kind="department", clientId="dept-off")
    token = token_for(hub, "dept-off", created["clientSecret"]).json()["access_token"]
    query = {"query": "{ catalogue { fieldName } }"}
    headers = {"Authorization": f"Bearer {token}"}
    assert hub.http.post("/graphql", json=query, headers=headers).status_code == 200
    disabled = ok(admin(hub, 'mutation { disableClient(clientId: "dept-off") { disabled } }'))
    assert disabled["disableClient"]["disabled"] is True
    refused = hub.http.post("/graphql", json=query, headers=headers)  # this process knows at once
    assert refused.status_code == 401 and refused.json()["error_description"] == "client disabled"
    assert token_for(hub, "dept-off", created["clientSecret"]).status_code == 401
    ok(admin(hub, 'mutation { enableClient(clientId: "dept-off") { disabled } }'))
    fresh = token_for(hub, "dept-off", created["clientSecret"])
    assert fresh.status_code == 200
    # a token issued before the disable stays dead (issue 9); a new one works
    assert hub.http.post("/graphql", json=query, headers=headers).status_code == 401
    new_headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert hub.http.post("/graphql", json=query, headers=new_headers).status_code == 200


def test_set_client_scope_narrows_the_tokens_it_may_get(hub: RunningHub) -> None:
    created = create(hub, name="征信公司", kind="agency", clientId="agency-scope")
    client = ok(admin(hub, 'mutation { setClientScope(clientId: "agency-scope", scope: "credit:public") { scopes } }'))
    assert client["setClientScope"]["scopes"] == ["credit:public"]
    granted = token_for(hub, "agency-scope", created["clientSecret"]).json()
    assert granted["scope"] == "credit:public"


def test_purposes_set_through_the_api_apply_to_the_next_request(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    created = create(hub, name="呼和浩特农商银行", kind="bank", clientId="bank-purpose")
    token = token_for(hub, "bank-purpose", created["clientSecret"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Xinlian-Purpose": "loan-review"}
    before = hub.http.post("/graphql", json={"query": TAX, "variables": {"uscc": uscc}}, headers=headers).json()
    assert before["data"]["legalPerson"]["taxCredit"] is None or before["data"]["legalPerson"]["taxCredit"]["taxPaid"] is None
    assert "FORBIDDEN" in codes(before)
    response = admin(hub, 'mutation { setClientPurposes(clientId: "bank-purpose", purposes: ["loan-review"]) { purposes } }')
    assert ok(response)["setClientPurposes"]["purposes"] == ["loan-review"]
    after = hub.http.post("/graphql", json={"query": TAX, "variables": {"uscc": uscc}}, headers=headers).json()
    assert "errors" not in after, after
    assert after["data"]["legalPerson"]["taxCredit"]["taxPaid"] is not None
    assert the_entry(hub, response).detail == {
        "actions": [{"action": "setClientPurposes", "client_id": "bank-purpose", "purposes": ["loan-review"]}]
    }


@pytest.mark.parametrize(
    "variables",
    [
        {"name": "X", "kind": "emperor", "clientId": "bad-kind"},
        {"name": "X", "kind": "bank", "purposes": ["no-such-purpose"], "clientId": "bad-purpose"},
        {"name": "X", "kind": "bank", "subjectId": "91110000600037341L", "clientId": "bad-subject-kind"},
        {"name": "X", "kind": "subject", "subjectId": "91110000600037341N", "clientId": "bad-subject"},
        {"name": "X", "kind": "bank", "clientId": "has:colon"},
        {"name": "", "kind": "bank", "clientId": "no-name"},
        {"name": "X", "kind": "bank", "clientId": "demo-bank"},
    ],
)
def test_bad_client_input_is_refused_and_changes_nothing(hub: RunningHub, variables: dict[str, Any]) -> None:
    before = ok(admin(hub, CLIENTS))["clients"]
    response = admin(hub, CREATE, variables)
    assert response.status_code == 200
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert response.json()["data"] is None
    assert ok(admin(hub, CLIENTS))["clients"] == before
    entry = the_entry(hub, response)
    assert entry.outcome == "error" and entry.errors == ["BAD_USER_INPUT"] and entry.detail is None


@pytest.mark.parametrize(
    "mutation",
    [
        'rotateClientSecret(clientId: "nobody") { clientSecret }',
        'disableClient(clientId: "nobody") { disabled }',
        'enableClient(clientId: "nobody") { disabled }',
        'setClientScope(clientId: "demo-bank", scope: "") { scopes }',
        'setClientPurposes(clientId: "demo-bank", purposes: ["not-defined"]) { purposes }',
        'setClientSubject(clientId: "demo-bank", subjectId: "91110000600037341L") { subjectId }',
    ],
)
def test_bad_changes_to_clients_are_refused(hub: RunningHub, mutation: str) -> None:
    before = ok(admin(hub, CLIENTS))["clients"]
    body = admin(hub, "mutation { " + mutation + " }").json()
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert ok(admin(hub, CLIENTS))["clients"] == before


# ---- purposes, consents, objections ---------------------------------------------------------


def test_define_and_retire_a_purpose(hub: RunningHub) -> None:
    response = admin(hub, 'mutation { definePurpose(code: "lease-review", label: "融资租赁审批", description: "Leasing.") { code label retired } }')
    assert ok(response)["definePurpose"] == {"code": "lease-review", "label": "融资租赁审批", "retired": False}
    assert the_entry(hub, response).detail == {"actions": [{"action": "definePurpose", "code": "lease-review", "label": "融资租赁审批"}]}
    assert "lease-review" in {p["code"] for p in ok(admin(hub, "{ purposes { code } }"))["purposes"]}
    again = admin(hub, 'mutation { definePurpose(code: "lease-review", label: "again") { code } }').json()
    assert codes(again) == ["BAD_USER_INPUT"]
    bad = admin(hub, 'mutation { definePurpose(code: "Not A Code", label: "x") { code } }').json()
    assert codes(bad) == ["BAD_USER_INPUT"]
    ok(admin(hub, 'mutation { retirePurpose(code: "lease-review") { retired } }'))
    assert "lease-review" not in {p["code"] for p in ok(admin(hub, "{ purposes { code } }"))["purposes"]}
    retired = ok(admin(hub, "{ purposes(includeRetired: true) { code retired } }"))["purposes"]
    assert {"code": "lease-review", "retired": True} in retired
    # a retired purpose can no longer be given to a client
    refused = admin(hub, 'mutation { setClientPurposes(clientId: "demo-bank", purposes: ["lease-review"]) { purposes } }')
    assert codes(refused.json()) == ["BAD_USER_INPUT"]


CONSENT = """
mutation Grant($subject: String!, $clientId: String!, $purpose: String!, $expiresAt: DateTime!) {
  registerConsent(subject: $subject, clientId: $clientId, purpose: $purpose, expiresAt: $expiresAt, reference: "SQ-2026-0042") {
    id subject clientId purpose reference inForce recordedBy
  }
}
"""


def _expires(days: int = 30) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).isoformat()


def test_register_and_revoke_a_consent(hub: RunningHub) -> None:
    person = hub.samples["natural_penalty"]
    variables = {"subject": person, "clientId": "demo-bank", "purpose": "credit-card-review", "expiresAt": _expires()}
    with consents_revoked(hub):  # the hub is shared by the module: the consent never stays in force
        response = admin(hub, CONSENT, variables)
        consent = ok(response)["registerConsent"]
        assert consent["inForce"] and consent["recordedBy"] == hub.clients["admin"]["client_id"]
        entry = the_entry(hub, response)
        assert entry.subjects == [person]
        assert entry.detail == {"actions": [{
            "action": "registerConsent", "consent_id": consent["id"], "subject": person, "client_id": "demo-bank",
            "purpose": "credit-card-review", "reference": "SQ-2026-0042",
        }]}
        listed = ok(admin(hub, "query($s: String!) { consents(subject: $s) { id inForce } }", {"s": person}))["consents"]
        assert {"id": consent["id"], "inForce": True} in listed
        revoked = ok(admin(hub, "mutation($id: Int!) { revokeConsent(id: $id) { inForce revokedAt } }", {"id": consent["id"]}))
        assert revoked["revokeConsent"]["inForce"] is False and revoked["revokeConsent"]["revokedAt"]
        twice = admin(hub, "mutation($id: Int!) { revokeConsent(id: $id) { id } }", {"id": consent["id"]}).json()
        assert codes(twice) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    "change",
    [
        {"purpose": "supply-chain-finance"},  # defined, but not among demo-bank's purposes
        {"purpose": "no-such-purpose"},
        {"clientId": "nobody"},
        {"subject": "91110000600037341L"},  # a legal person: consents are for natural persons
        {"subject": "36042619910102009X"},  # bad check character
        {"expiresAt": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat()},
    ],
)
def test_bad_consents_are_refused_and_nothing_is_recorded(hub: RunningHub, change: dict[str, Any]) -> None:
    variables = {
        "subject": hub.samples["natural_clean"], "clientId": "demo-bank", "purpose": "loan-review", "expiresAt": _expires(),
        **change,
    }
    before = ok(admin(hub, "{ consents { id } }"))["consents"]
    body = admin(hub, CONSENT, variables).json()
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert ok(admin(hub, "{ consents { id } }"))["consents"] == before


def test_file_and_close_an_objection(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    penalties = hub.query("query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } } }", "department", {"u": uscc})
    number = penalties.json()["data"]["legalPerson"]["penalties"][0]["decisionNumber"]
    with objections_closed(hub):  # the hub is shared by the module: the objection never stays open
        response = admin(
            hub,
            "mutation($s: String!, $r: String!) { fileObjection(subject: $s, family: \"penalties\", recordRef: $r, reason: \"已整改\") { id status filedBy } }",
            {"s": uscc, "r": number},
        )
        filed = ok(response)["fileObjection"]
        assert filed["status"] == "open" and filed["filedBy"] == hub.clients["admin"]["client_id"]
        assert the_entry(hub, response).subjects == [uscc]
        flagged = hub.query(
            "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber underObjection } } }", "department", {"u": uscc}
        ).json()["data"]["legalPerson"]["penalties"]
        assert {p["decisionNumber"]: p["underObjection"] for p in flagged}[number] is True
        listed = ok(admin(hub, 'query($s: String!) { objections(subject: $s, status: "open") { id } }', {"s": uscc}))
        assert {"id": filed["id"]} in listed["objections"]
        closed = admin(hub, 'mutation($id: Int!) { closeObjection(id: $id, outcome: "upheld", note: "核实无误") { status outcome closedBy } }', {"id": filed["id"]})
        assert ok(closed)["closeObjection"] == {"status": "upheld", "outcome": "核实无误", "closedBy": hub.clients["admin"]["client_id"]}
        unflagged = hub.query(  # closed through this hub: the flag goes at once, no refresh interval
            "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber underObjection } } }", "department", {"u": uscc}
        ).json()["data"]["legalPerson"]["penalties"]
        assert {p["decisionNumber"]: p["underObjection"] for p in unflagged}[number] is False
        again = admin(hub, 'mutation($id: Int!) { closeObjection(id: $id, outcome: "corrected", note: "x") { id } }', {"id": filed["id"]}).json()
        assert codes(again) == ["BAD_USER_INPUT"]  # it is closed: "objection N is upheld: it cannot be moved to correct"
        assert "is upheld" in again["errors"][0]["message"]
        bad = admin(hub, 'mutation { fileObjection(subject: "91110000600037341L", family: "nothing", recordRef: "x", reason: "y") { id } }').json()
        assert codes(bad) == ["BAD_USER_INPUT"]


# ---- dry runs -------------------------------------------------------------------------------

DRY_RUN = """
query Dry($client: String!, $subject: String!, $version: String, $purpose: String) {
  dryRun(clientId: $client, subject: $subject, policyVersion: $version, purpose: $purpose) {
    clientId clientKind subject subjectKind policyVersion purpose purposeAllowed consented
    data decisions { family field graphqlName disclosureClass allowed reason mask } errors released denied masked
  }
}
"""


def _decisions(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{d['family']}.{d['field']}": d for d in result["decisions"]}


def _asked(hub: RunningHub, before: dict[str, int]) -> set[tuple[str, str]]:
    return {
        (call.family, f)
        for connector in hub.runtime.federation.connectors
        for call in connector.calls[before[connector.name]:]
        for f in call.fields
    }


def _marks(hub: RunningHub) -> dict[str, int]:
    return {c.name: len(c.calls) for c in hub.runtime.federation.connectors}


def test_dry_run_for_an_insured_person_with_consent(hub: RunningHub) -> None:
    person = hub.samples["insured_person"]
    marks = _marks(hub)
    response = admin(hub, DRY_RUN, {"client": "demo-bank", "subject": person, "purpose": "loan-review"})
    result = ok(response)["dryRun"]
    assert result["subjectKind"] == "natural_person" and result["purposeAllowed"] and result["consented"]
    decisions = _decisions(result)
    assert decisions["social_insurance_contributions.monthly_base"] == {
        "family": "social_insurance_contributions", "field": "monthly_base", "graphqlName": "monthlyBase",
        "disclosureClass": "AUTHORIZED", "allowed": True, "reason": "granted", "mask": "round:100",
    }
    assert decisions["penalties.case_handler"]["allowed"] is False
    assert decisions["penalties.case_handler"]["reason"] == "class not granted by the caller's scopes"
    contributions = result["data"]["naturalPerson"]["socialInsuranceContributions"]
    # a dry run shows AUTHORIZED values outside the admin's own scopes only as their shape (issue 9)
    assert contributions and {c["monthlyBase"] for c in contributions} == {"<decimal>"}
    assert "social_insurance_contributions.monthly_base" in result["masked"]
    assert "penalties.case_handler" in result["denied"]
    asked = _asked(hub, marks)
    assert ("social_insurance_contributions", "monthly_base") in asked
    denied = {(d["family"], d["field"]) for d in result["decisions"] if not d["allowed"]}
    assert not asked & denied, "a denied field was fetched"
    # audited as its own entry, which the subject's access log lists
    entries = audit_entries(hub, response.headers["x-request-id"])
    dry = [e for e in entries if (e.detail or {}).get("dryRun")]
    assert len(dry) == 1 and dry[0].subjects == [person]
    assert dry[0].detail == {
        "action": "dryRun", "dryRun": True, "as_client": "demo-bank",
        "policy_version": result["policyVersion"], "purpose": "loan-review",
        "rules_applied": ["judgment_debtor_records:objection-flag", "judgment_debtor_records:review-gate",
                          "major_tax_violations:objection-flag", "major_tax_violations:publicity-window",
                          "penalties:objection-flag", "penalties:publicity-window", "penalties:review-gate"],
    }
    assert dry[0].released == sorted(result["released"]) and dry[0].client_id == hub.clients["admin"]["client_id"]
    assert dry[0].purpose == "loan-review"
    log = ok(admin(hub, "query($s: String!) { subjectAccessLog(subject: $s) { items { seq endpoint clientId released } nextBefore } }", {"s": person}))
    first = log["subjectAccessLog"]["items"][0]
    assert first["endpoint"] == "/admin/graphql" and first["clientId"] == hub.clients["admin"]["client_id"]


def test_dry_run_without_purpose_fetches_no_authorized_data(hub: RunningHub) -> None:
    person = hub.samples["insured_person"]
    marks = _marks(hub)
    result = ok(admin(hub, DRY_RUN, {"client": "demo-bank", "subject": person}))["dryRun"]
    decisions = _decisions(result)
    assert decisions["social_insurance_contributions.employer_name"]["reason"] == "no purpose declared"
    assert result["data"]["naturalPerson"]["socialInsuranceContributions"] is None
    assert "FORBIDDEN" in {e["extensions"]["code"] for e in result["errors"]}
    assert not any(family == "social_insurance_contributions" for family, _ in _asked(hub, marks))


def test_dry_run_for_a_legal_person_as_a_department(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    marks = _marks(hub)
    result = ok(admin(hub, DRY_RUN, {"client": "demo-department", "subject": uscc}))["dryRun"]
    assert result["subjectKind"] == "legal_person" and result["clientKind"] == "department"
    decisions = _decisions(result)
    assert decisions["registration.contact_phone"]["allowed"] is True
    assert decisions["tax_credit.tax_paid"]["allowed"] is False
    assert decisions["registration.legal_representative_id"]["reason"] == "confidential"
    person = result["data"]["legalPerson"]
    assert person["registration"]["contactPhone"] and person["taxCredit"]["taxPaid"] is None
    forbidden = {e["extensions"].get("field") for e in result["errors"] if e["extensions"]["code"] == "FORBIDDEN"}
    assert {"tax_credit.tax_paid", "registration.legal_representative_id"} <= forbidden
    asked = _asked(hub, marks)
    assert ("registration", "contact_phone") in asked
    assert ("tax_credit", "tax_paid") not in asked and ("registration", "legal_representative_id") not in asked


@pytest.mark.parametrize(
    "variables",
    [
        {"client": "nobody", "subject": "91110000600037341L"},
        {"client": "demo-bank", "subject": "91110000600037341N"},
        {"client": "demo-bank", "subject": "91110000600037341L", "version": "v999"},
    ],
)
def test_a_bad_dry_run_is_refused_and_calls_nothing(hub: RunningHub, variables: dict[str, Any]) -> None:
    marks = _marks(hub)
    response = admin(hub, DRY_RUN, variables)
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert _marks(hub) == marks
    assert not [e for e in audit_entries(hub, response.headers["x-request-id"]) if (e.detail or {}).get("dryRun")]


# ---- policy ----------------------------------------------------------------------------------

PUBLIC_HANDLER = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber caseHandler } } }"
VERSION = "{ version number parent by reason changes active toml document }"


def restore_policy(hub: RunningHub, version: str) -> None:
    """Make `version` the active policy again (going back may widen disclosure: confirmed)."""
    if ok(admin(hub, "{ activePolicy { version } }"))["activePolicy"]["version"] != version:
        ok(admin(hub, "mutation($v: String!) { activatePolicyVersion(version: $v, reason: \"restore\", confirmWidening: true) { version } }",
                 {"v": version}))


def test_a_policy_change_through_the_api_changes_the_public_contract(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    start = ok(admin(hub, "{ activePolicy { version } }"))["activePolicy"]["version"]
    try:
        assert hub.http.post("/public/graphql", json={"query": PUBLIC_HANDLER, "variables": {"u": uscc}}).status_code == 400

        response = admin(
            hub,
            'mutation { setFieldClass(family: "penalties", field: "caseHandler", disclosureClass: "PUBLIC", reason: "公开办案人员 (trial)", '
            "confirmWidening: true) " + VERSION + " }",  # SHARED -> PUBLIC widens: confirmed (issue 9)
        )
        version = ok(response)["setFieldClass"]
        assert version["active"] and version["parent"] == start and version["by"] == hub.clients["admin"]["client_id"]
        assert version["changes"] == ["fields.penalties.case_handler: SHARED -> PUBLIC"]
        assert version["document"]["fields"]["penalties"]["case_handler"] == "PUBLIC"
        assert 'case_handler = "PUBLIC"' in version["toml"]
        assert the_entry(hub, response).detail == {"actions": [{
            "action": "setFieldClass", "family": "penalties", "field": "case_handler", "disclosure_class": "PUBLIC",
            "reason": "公开办案人员 (trial)", "version": version["version"],
            "warning": "widens disclosure: penalties.case_handler: SHARED -> PUBLIC",
        }]}
        public = hub.http.post("/public/graphql", json={"query": PUBLIC_HANDLER, "variables": {"u": uscc}})
        assert public.status_code == 200 and "errors" not in public.json()

        diff = ok(admin(hub, "query($a: String!, $b: String!) { policyDiff(a: $a, b: $b) { changes } }", {"a": start, "b": version["version"]}))
        assert diff["policyDiff"]["changes"] == ["fields.penalties.case_handler: SHARED -> PUBLIC"]
        # a dry run under the earlier version still sees the field as SHARED
        dry = ok(admin(hub, DRY_RUN, {"client": "demo-bank", "subject": uscc, "version": start, "purpose": "loan-review"}))["dryRun"]
        assert dry["policyVersion"] == start and _decisions(dry)["penalties.case_handler"]["disclosureClass"] == "SHARED"

        back = admin(hub, "mutation($v: String!) { activatePolicyVersion(version: $v, reason: \"trial over\") { version active } }", {"v": start})
        assert ok(back)["activatePolicyVersion"] == {"version": start, "active": True}
        assert hub.http.post("/public/graphql", json={"query": PUBLIC_HANDLER, "variables": {"u": uscc}}).status_code == 400
        versions = ok(admin(hub, "{ policyVersions { version active reason } }"))["policyVersions"]
        assert {"version": version["version"], "active": False, "reason": "公开办案人员 (trial)"} in versions
        activations = ok(admin(hub, "{ policyActivations { version by reason } }"))["policyActivations"]
        assert activations[0] == {"version": start, "by": hub.clients["admin"]["client_id"], "reason": "trial over"}
    finally:  # the hub is shared by the module: never leave the trial policy active
        restore_policy(hub, start)


def test_import_a_policy_document_and_masks_and_overrides(hub: RunningHub) -> None:
    active = ok(admin(hub, "{ activePolicy { version toml } }"))["activePolicy"]
    same = admin(hub, "mutation($t: String!) { importPolicy(toml: $t, reason: \"same\") { version } }", {"t": active["toml"]})
    assert codes(same.json()) == ["BAD_USER_INPUT"]  # nothing changes
    edited = active["toml"].replace('[fields.honors]\naward_date = "PUBLIC"', '[fields.honors]\naward_date = "SHARED"')
    assert edited != active["toml"]
    try:
        imported = ok(admin(hub, "mutation($t: String!) { importPolicy(toml: $t, reason: \"年度复核\") { version changes } }", {"t": edited}))
        assert imported["importPolicy"]["changes"] == ["fields.honors.award_date: PUBLIC -> SHARED"]
        masked = ok(admin(hub, 'mutation { setMask(family: "registration", field: "contact_phone", audience: "SHARED", mask: "phone", reason: "最小化") { changes } }'))
        assert masked["setMask"]["changes"] == ["masks.registration.contact_phone.SHARED: (none) -> phone"]
        unconfirmed = admin(hub, 'mutation { clearOverride(family: "tax_credit", field: "level", kind: "bank", reason: "银税互动结束") { changes } }')
        assert codes(unconfirmed.json()) == ["BAD_USER_INPUT"]  # the bank's narrower override goes: it widens
        assert "widens disclosure: tax_credit.level (for bank)" in unconfirmed.json()["errors"][0]["message"]
        cleared = ok(admin(hub, 'mutation { clearOverride(family: "tax_credit", field: "level", kind: "bank", reason: "银税互动结束", confirmWidening: true) { changes } }'))
        assert cleared["clearOverride"]["changes"] == ["overrides.bank.tax_credit.level: AUTHORIZED -> (none)"]
    finally:  # the hub is shared by the module: put the policy back even when an assertion failed
        restore_policy(hub, active["version"])


@pytest.mark.parametrize(
    "mutation",
    [
        'setFieldClass(family: "penalties", field: "case_handler", disclosureClass: "PUBLIC", reason: "  ") { version }',
        'setFieldClass(family: "penalties", field: "nothing", disclosureClass: "PUBLIC", reason: "r") { version }',
        'setFieldClass(family: "nothing", field: "case_handler", disclosureClass: "PUBLIC", reason: "r") { version }',
        'setFieldClass(family: "penalties", field: "case_handler", disclosureClass: "SECRET", reason: "r") { version }',
        'setFieldClass(family: "penalties", field: "case_handler", disclosureClass: "SHARED", reason: "r") { version }',
        'setMask(family: "penalties", field: "case_handler", audience: "PUBLIC", mask: "scramble", reason: "r") { version }',
        'clearOverride(family: "penalties", field: "case_handler", kind: "bank", reason: "r") { version }',
        'activatePolicyVersion(version: "v999", reason: "r") { version }',
        'importPolicy(toml: "not = [toml", reason: "r") { version }',
        'setScopeClasses(scope: "credit:public", classes: ["CONFIDENTIAL"], reason: "r") { version }',
    ],
)
def test_bad_policy_changes_are_refused_and_store_no_version(hub: RunningHub, mutation: str) -> None:
    before = ok(admin(hub, "{ policyVersions { version } activePolicy { version } }"))
    body = admin(hub, "mutation { " + mutation + " }").json()
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert ok(admin(hub, "{ policyVersions { version } activePolicy { version } }")) == before


# ---- audit -------------------------------------------------------------------------------------


def test_reads_are_audited_with_what_they_read(hub: RunningHub) -> None:
    person = hub.samples["insured_person"]
    response = admin(hub, "query($s: String!) { clients { clientId } consents(subject: $s) { id } }", {"s": person})
    entry = the_entry(hub, response)
    assert entry.outcome == "ok" and entry.subjects == [person]
    assert entry.detail == {"actions": [{"action": "clients"}, {"action": "consents", "subject": person}]}


def test_the_answer_is_withheld_when_the_audit_entry_cannot_be_written(hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> None:
    token = hub.token("admin")

    async def unavailable(entry: AuditEntry) -> int:
        raise AuditUnavailable("store down")

    monkeypatch.setattr(hub.runtime.audit, "record", unavailable)
    response = admin(hub, CREATE, {"name": "影子客户", "kind": "bank", "clientId": "bank-shadow"}, token=token)
    monkeypatch.undo()
    assert response.status_code == 503
    assert codes(response.json()) == ["AUDIT_UNAVAILABLE"]
    assert "bank-shadow" not in response.text


CLIENT_SCOPES = "query($c: String!) { client(clientId: $c) { scopes } }"


@contextlib.contextmanager
def scopes_kept(hub: RunningHub, client_id: str) -> Iterator[list[str]]:
    """The client's scopes before the block; put back when it ends if it changed them (even by a failed assertion)."""
    before = ok(admin(hub, CLIENT_SCOPES, {"c": client_id}))["client"]["scopes"]
    try:
        yield before
    finally:  # the hub is shared by the module: never leave a client with other scopes (going back may widen: confirmed)
        if ok(admin(hub, CLIENT_SCOPES, {"c": client_id}))["client"]["scopes"] != before:
            ok(admin(hub, "mutation($c: String!, $s: String!) { setClientScope(clientId: $c, scope: $s, confirmWidening: true) { scopes } }",
                     {"c": client_id, "s": " ".join(before)}))


def test_a_mutation_is_not_executed_when_its_intent_entry_is_lost(hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> None:
    token = hub.token("admin")
    client = hub.clients["bank"]["client_id"]

    async def unavailable(entry: AuditEntry) -> int:
        raise AuditUnavailable("store down")

    with scopes_kept(hub, client) as before:
        monkeypatch.setattr(hub.runtime.audit, "record", unavailable)
        try:
            response = admin(
                hub,
                'mutation($c: String!) { setClientScope(clientId: $c, scope: "credit:public credit:authorized credit:shared") { scopes } }',
                {"c": client},
                token=token,
            )
        finally:
            monkeypatch.undo()  # before the scopes are put back: that change is audited
        assert response.status_code == 503
        assert codes(response.json()) == ["AUDIT_UNAVAILABLE"]
        after = ok(admin(hub, CLIENT_SCOPES, {"c": client}))["client"]["scopes"]
        assert "credit:shared" not in after, "an admin change took effect without any audit entry"
        assert after == before


def test_a_mutation_is_audited_as_an_intent_before_it_runs(hub: RunningHub) -> None:
    response = admin(hub, 'mutation Define { definePurpose(code: "intent-audited", label: "意图") { code } }')
    ok(response)
    entries = audit_entries(hub, response.headers["x-request-id"])
    intent = [e for e in entries if (e.detail or {}).get("intent")]
    assert len(intent) == 1
    assert intent[0].detail == {"intent": True, "operation": "Define", "fields": ["definePurpose"]}
    assert intent[0].outcome == "ok" and intent[0].endpoint == "/admin/graphql"
    assert intent[0].client_id == hub.clients["admin"]["client_id"]
    assert the_entry(hub, response).detail["actions"][0]["action"] == "definePurpose"


@pytest.mark.parametrize(
    "document",
    [
        """mutation {
          a: definePurpose(code: "probe-partial", label: "半途") { code }
          b: setClientPurposes(clientId: "no-such-client", purposes: ["probe-partial"]) { clientId }
        }""",
        """mutation { ...Both }
        fragment Both on Mutation { definePurpose(code: "probe-partial", label: "半途") { code } }""",
    ],
    ids=["two-root-fields", "root-fragment"],
)
def test_a_mutation_with_more_than_one_root_field_is_refused_and_changes_nothing(hub: RunningHub, document: str) -> None:
    """docs/operations.md: one change per request; bad input is BAD_USER_INPUT and nothing is changed."""
    response = admin(hub, document)
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    purposes = ok(admin(hub, "{ purposes(includeRetired: true) { code } }"))["purposes"]
    assert "probe-partial" not in [p["code"] for p in purposes], "part of a refused admin request was applied"
    entry = the_entry(hub, response)
    assert entry.outcome == "rejected" and entry.errors == ["BAD_USER_INPUT"]
    assert not [e for e in audit_entries(hub, response.headers["x-request-id"]) if (e.detail or {}).get("intent")]
