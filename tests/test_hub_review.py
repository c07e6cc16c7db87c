"""Regressions from the review of the first cut: each test is a hole that was found and closed."""

from __future__ import annotations

import base64
import sqlite3
from typing import Any, Iterator

import pytest

from hub_fixture import RunningHub, running_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("review"), legal_persons=80, natural_persons=20) as running:
        yield running


def _post(hub: RunningHub, query: str, token: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return hub.http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers={"Authorization": f"Bearer {token}"}
    ).json()


def test_a_public_only_token_gets_the_publicity_window_on_graphql_too(hub: RunningHub) -> None:
    token = hub.token("department", scope="credit:public")
    query = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber severity } } }"
    for sample in ("expired_penalty", "minor_penalty"):
        uscc = hub.samples[sample]
        narrowed = _post(hub, query, token, {"u": uscc})["data"]["legalPerson"]["penalties"]
        public = hub.query(query, None, {"u": uscc}).json()["data"]["legalPerson"]["penalties"]
        full = hub.query(query, "department", {"u": uscc}).json()["data"]["legalPerson"]["penalties"]
        assert narrowed == public
        assert len(full) > len(narrowed)


def test_banks_do_not_see_penalties_past_their_window(hub: RunningHub) -> None:
    query = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } } }"
    uscc = hub.samples["expired_penalty"]
    bank = hub.query(query, "bank", {"u": uscc}, purpose="loan-review").json()["data"]["legalPerson"]["penalties"]
    public = hub.query(query, None, {"u": uscc}).json()["data"]["legalPerson"]["penalties"]
    assert bank == public


@pytest.mark.parametrize("show", [True, False])
def test_directives_with_variables(hub: RunningHub, show: bool) -> None:
    query = """
    query($u: String!, $x: Boolean!) {
      legalPerson(uscc: $u) {
        name
        penalties { decisionNumber @include(if: $x) severity }
        ...Tax @skip(if: $x)
      }
    }
    fragment Tax on LegalPerson { taxCredit { level } }
    """
    body = hub.query(query, "department", {"u": hub.samples["multi_department_penalties"], "x": show}).json()
    assert "errors" not in body, body.get("errors")
    person = body["data"]["legalPerson"]
    assert all(("decisionNumber" in p) == show for p in person["penalties"])
    assert ("taxCredit" in person) == (not show)


def test_aliases_cannot_multiply_the_subject_budget(hub: RunningHub) -> None:
    import sqlite3 as _sqlite

    with _sqlite.connect(hub.data_dir / "departments" / "market.db") as db:
        codes = [r[0] for r in db.execute("SELECT tyshxydm FROM qy_jbxx")]
    limit = hub.runtime.settings.batch_limit
    codes = (codes * (limit // len(codes) + 1))[: limit // 2 + 1]
    aliases = " ".join(f"a{i}: legalPersons(usccs: $c) {{ uscc }}" for i in range(3))
    body = hub.query(f"query($c: [String!]!) {{ {aliases} }}", None, {"c": codes}).json()
    codes_refused = [e for e in body["errors"] if e["extensions"]["code"] == "BAD_USER_INPUT"]
    assert codes_refused and all(str(limit) in e["message"] for e in codes_refused)


def test_typename_alone_does_not_reveal_a_denied_family(hub: RunningHub) -> None:
    tax = hub.connector("tax")
    tax.calls.clear()
    token = hub.token("department", scope="credit:public")
    body = _post(hub, "query($u: String!) { legalPerson(uscc: $u) { taxCredit { __typename } } }", token,
                 {"u": hub.samples["a_level_taxpayer"]})
    assert body["data"]["legalPerson"]["taxCredit"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert [c for c in tax.calls if c.family == "tax_credit"] == []


def test_upstream_errors_do_not_quote_department_data(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    db = hub.data_dir / "departments" / "market.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE xzcf RENAME TO xzcf_away")
    try:
        body = hub.query("query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } } }",
                         "department", {"u": uscc}).json()
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE xzcf_away RENAME TO xzcf")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["department"] == hub.connector("market").department
    assert "xzcf" not in error["message"] and "table" not in error["message"].lower()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused_and_audited(hub: RunningHub, method: str) -> None:
    with sqlite3.connect(hub.data_dir / "hub.db") as conn:
        before = conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0]
    response = hub.http.request(method, "/public/graphql", json={"query": "{ catalogue { family } }"})
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    with sqlite3.connect(hub.data_dir / "hub.db") as conn:
        assert conn.execute("SELECT count(*) FROM audit_entries").fetchone()[0] == before + 1


def test_deeply_nested_json_is_a_bad_request(hub: RunningHub) -> None:
    response = hub.http.post("/public/graphql", content=b"[" * 30000, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_token_endpoint_with_undecodable_basic_credentials(hub: RunningHub) -> None:
    garbage = base64.b64encode(b"\xff\xfe:\xff").decode()
    response = hub.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {garbage}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_one_bad_row_fails_only_its_subject_and_quotes_no_data(hub: RunningHub) -> None:
    db = hub.data_dir / "departments" / "market.db"
    bad_subject, good_subject = hub.samples["expired_penalty"], hub.samples["multi_department_penalties"]
    with sqlite3.connect(db) as conn:
        rowid, fine = conn.execute("SELECT id, fkje FROM xzcf WHERE dsr_zjhm = ? LIMIT 1", (bad_subject,)).fetchone()
        conn.execute("UPDATE xzcf SET fkje = ? WHERE id = ?", ("内部编号 HX-2023-0007 张三 13800000000", rowid))
    try:
        body = hub.query(
            "query($c: [String!]!) { legalPersons(usccs: $c) { uscc penalties { decisionNumber fineAmount } } }",
            "department", {"c": [bad_subject, good_subject]},
        ).json()
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE xzcf SET fkje = ? WHERE id = ?", (fine, rowid))
    bad, good = body["data"]["legalPersons"]
    assert bad["penalties"] is None and good["penalties"], "the other subject is still served"
    [error] = body["errors"]
    assert error["path"] == ["legalPersons", 0, "penalties"]
    assert error["extensions"]["code"] == "UPSTREAM_INVALID"
    assert "张三" not in str(body) and "HX-2023" not in str(body) and "fkje" not in str(body)
