"""Credit governance end to end (issue 11): departments record findings and red-list entries on
`/graphql`, a court cancels listings, banks and departments run credit checks, ratings and
supervision plans are read, the public sees the lists — on a real hub over the demo district,
seeded as `xinlian demo` seeds it, with every change checked in the admin API and the audit trail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any, Callable, Iterator

import httpx
import pytest

from hub_fixture import NO_RATE_LIMITS, RunningHub, running_hub, wait_until
from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.cli import main
from xinlian.hub.demo.governance import ensure_demo_credit

CONTEXTS = ("government-procurement", "bidding", "licensing", "land", "subsidies", "lending", "honours", "public-office")
INVALID_USCC = "91110000600037341N"  # bad check character
PENALTY_KEY = "新市监罚〔2026〕88号"

LISTING = "id list subject subjectName basis listedOn endsOn department"
RECORD = f"""
mutation Record($input: FindingInput!) {{
  recordFinding(input: $input) {{
    finding {{ id subject severity basis decidedOn inForceUntil measures status department records {{ family key }} }}
    listing {{ {LISTING} }}
  }}
}}
"""
RED_LIST = f"mutation Red($input: RedListInput!) {{ addToRedList(input: $input) {{ {LISTING} }} }}"
CANCEL = f"mutation Cancel($id: Int!, $reason: String!) {{ cancelListing(id: $id, reason: $reason) {{ {LISTING} }} }}"
REVOKE = "mutation Revoke($id: Int!, $reason: String!) { revokeFinding(id: $id, reason: $reason) { id status } }"
FEEDBACK = "mutation Feedback($input: MeasureFeedbackInput!) { recordMeasureFeedback(input: $input) }"
REASON = "kind id list basis severity department since until"
CHECK = f"""
query Check($subject: String!, $context: String!) {{
  creditCheck(subject: $subject, context: $context) {{
    subject context verdict checkedOn
    measures {{ code effect reasons {{ {REASON} }} }}
    rewards {{ code effect reasons {{ {REASON} }} }}
    reasons {{ {REASON} }}
  }}
}}
"""
CHECKS = """
query Checks($subjects: [String!]!, $context: String!) {
  creditChecks(subjects: $subjects, context: $context) { subject context verdict measures { code } }
}
"""
PAGE = """
query Page($first: Int, $after: String) {
  blacklist(first: $first, after: $after) { totalCount endCursor hasNextPage items { id subject } }
}
"""
BLACKLIST = "{ blacklist(first: 100) { totalCount items { id subject subjectName basis listedOn endsOn department } } }"
RED = "{ redList(first: 100) { totalCount items { id subject basis listedOn endsOn department } } }"
RATING = """
query Rating($subject: String!, $refresh: Boolean) {
  rating(subject: $subject, refresh: $refresh) {
    subject subjectName level score supervisionClass modelVersion policyVersion ratedOn trigger
    indicators { name kind points weight evidence detail }
  }
}
"""
PLAN = """
query Plan($department: String, $period: String) {
  supervisionPlan(department: $department, period: $period) {
    department period startsOn endsOn classA classB classC
    entries { subject level score supervisionClass inspectionsDue industry }
  }
}
"""
LISTING_HISTORY = f"""
query Listing($id: Int!) {{
  creditListing(id: $id) {{ status listing {{ {LISTING} }} transitions {{ action by reason at }} }}
}}
"""
ADMIN_FINDINGS = """
query Findings($subject: String) {
  creditFindings(subject: $subject) { id subject severity basis department status decidedOn inForceUntil }
}
"""
RATING_HISTORY = "query History($subject: String!) { creditRatingHistory(subject: $subject, limit: 200) { trigger level ratedOn } }"


# ---- the hub, seeded as `xinlian demo` seeds it ------------------------------------------------


def verdict(hub: RunningHub, subject: str, context: str, kind: str = "department") -> str:
    return str(data(hub.query(CHECK, kind, {"subject": subject, "context": context}))["creditCheck"]["verdict"])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("credit-hub"), rate_limits=NO_RATE_LIMITS) as running:
        done = asyncio.run(ensure_demo_credit(running.runtime.settings, running.samples))
        assert done["findings"] == 2 and done["redListed"] == 1 and done["rated"] == 150, done
        # seeded by another runtime: the serving hub learns of it through the change feed
        wait_until(
            lambda: verdict(running, running.samples["severe_penalty"], "government-procurement") == "PROHIBITED",
            10, "the seeded listings reaching the serving hub",
        )
        yield running


@pytest.fixture(scope="module")
def fresh(hub: RunningHub) -> Callable[[], str]:
    """Hands out registered subjects of the district that are on no list, have no finding and
    are no named sample — each once, so tests that list or find them do not meet."""
    plan = data(hub.query(PLAN, "department", {"period": "2026"}))["supervisionPlan"]
    listed = {i["subject"] for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"]}
    listed |= {i["subject"] for i in data(hub.query(RED, None))["redList"]["items"]}
    findings = {f["subject"] for f in admin_data(hub, ADMIN_FINDINGS, {})["creditFindings"]}
    pool = [e["subject"] for e in plan["entries"]
            if e["subject"] not in listed | findings | set(hub.samples.values()) and e["supervisionClass"] == "A"]
    assert len(pool) > 30, "the demo district should have plenty of unremarkable subjects"
    pool.reverse()

    def take() -> str:
        return pool.pop()

    return take


# ---- helpers ----------------------------------------------------------------------------------


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body.get("errors"), body
    return list(body["errors"])


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in errors(response)]


def admin(hub: RunningHub, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    return hub.http.post(
        "/admin/graphql", json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )


def admin_data(hub: RunningHub, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return data(admin(hub, query, variables))


def stored_entries(hub: RunningHub, request_id: str) -> list[tuple[int, AuditEntry]]:
    """(seq, entry) of one request's audit entries, in the order the trail stored them."""

    async def tail(store: Any) -> list[Any]:
        return await AuditTrail(store).tail(400)

    return [(s.seq, s.entry) for s in hub.on_store(tail) if s.entry is not None and s.entry.request_id == request_id]


def request_entry(hub: RunningHub, response: httpx.Response) -> AuditEntry:
    """The request's own audit entry (not its intent entry)."""
    found = [e for _, e in stored_entries(hub, response.headers["x-request-id"]) if not (e.detail or {}).get("intent")]
    assert len(found) == 1, found
    return found[0]


def decision_day(hub: RunningHub, days_ago: int) -> dt.date:
    """A decision date `days_ago` days back, never on a 29th-31st (so that N years later is plain)."""
    day = hub.runtime.today() - dt.timedelta(days=days_ago)
    return day.replace(day=min(day.day, 28))


def last_day(decided: dt.date, months: int) -> dt.date:
    """The listing's last day: the corresponding day `months` later (day <= 28), as the publicity window's."""
    month = decided.month - 1 + months
    return dt.date(decided.year + month // 12, month % 12 + 1, decided.day)


def a_penalty_of(hub: RunningHub, person: str) -> dict[str, str]:
    """A penalty record the person has (a decision about a natural person names its records)."""
    found = data(hub.query("query($p: String!) { naturalPerson(idNumber: $p) { penalties { decisionNumber } } }",
                           "market", {"p": person}))["naturalPerson"]["penalties"]
    assert found, f"{person} has no penalty in the demo"
    return {"family": "penalties", "key": found[0]["decisionNumber"]}


def finding_input(subject: str, decided: dt.date, **changes: Any) -> dict[str, Any]:
    return {
        "subject": subject, "basis": "market-serious", "facts": "发布虚假广告，情节严重，拒不改正",
        "legalBasis": "《中华人民共和国广告法》第五十五条", "decidedOn": decided.isoformat(),
        "records": [], "measures": ["S01"], **changes,
    }


def record_serious(hub: RunningHub, subject: str, days_ago: int = 20, **changes: Any) -> dict[str, Any]:
    """demo-market records a serious finding on `subject`; returns {finding, listing}."""
    return data(hub.query(RECORD, "market", {"input": finding_input(subject, decision_day(hub, days_ago), **changes)}))["recordFinding"]


def findings_of(hub: RunningHub, subject: str) -> list[dict[str, Any]]:
    return list(admin_data(hub, ADMIN_FINDINGS, {"subject": subject})["creditFindings"])


def blacklisted(hub: RunningHub) -> dict[str, dict[str, Any]]:
    return {i["subject"]: i for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"]}


def red_listed(hub: RunningHub) -> dict[str, dict[str, Any]]:
    return {i["subject"]: i for i in data(hub.query(RED, None))["redList"]["items"]}


def check(hub: RunningHub, subject: str, context: str, kind: str = "lender", purpose: str | None = "loan-review") -> dict[str, Any]:
    return dict(data(hub.query(CHECK, kind, {"subject": subject, "context": context}, purpose=purpose))["creditCheck"])


def history(hub: RunningHub, listing_id: int) -> dict[str, Any]:
    return dict(admin_data(hub, LISTING_HISTORY, {"id": listing_id})["creditListing"])


def ratings_of(hub: RunningHub, subject: str) -> list[dict[str, Any]]:
    return list(admin_data(hub, RATING_HISTORY, {"subject": subject})["creditRatingHistory"])


# ---- 1. a serious finding and its listing -------------------------------------------------------


def test_a_serious_finding_puts_the_subject_on_the_public_blacklist(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    decided = decision_day(hub, 20)
    total = data(hub.query(BLACKLIST, None))["blacklist"]["totalCount"]
    response = hub.query(RECORD, "market", {"input": finding_input(subject, decided)})
    outcome = data(response)["recordFinding"]
    ends = last_day(decided, 36)
    finding, listing = outcome["finding"], outcome["listing"]
    assert {k: v for k, v in finding.items() if k != "id"} == {
        "subject": subject, "severity": "serious", "basis": "market-serious", "decidedOn": decided.isoformat(),
        "inForceUntil": ends.isoformat(), "measures": ["S01"], "status": "in_force", "department": "market",
        "records": [],
    }
    name = data(hub.query("query($u: String!) { legalPerson(uscc: $u) { name } }", None, {"u": subject}))["legalPerson"]["name"]
    assert name
    assert listing == {
        "id": listing["id"], "list": "black", "subject": subject, "subjectName": name, "basis": "market-serious",
        "listedOn": decided.isoformat(), "endsOn": ends.isoformat(), "department": "market",
    }

    page = data(hub.query(BLACKLIST, None))["blacklist"]
    assert page["totalCount"] == total + 1
    [public] = [i for i in page["items"] if i["subject"] == subject]
    assert public == {k: v for k, v in listing.items() if k != "list"}
    person = data(hub.query(
        "query($u: String!) { legalPerson(uscc: $u) { uscc listings { list basis endsOn department } } }", None, {"u": subject}
    ))["legalPerson"]
    assert person["listings"] == [{"list": "black", "basis": "market-serious", "endsOn": ends.isoformat(), "department": "market"}]

    # the intent entry first, then the request's own entry naming the subject
    entries = stored_entries(hub, response.headers["x-request-id"])
    assert len(entries) == 2, entries
    (intent_seq, intent), (own_seq, own) = entries
    assert intent_seq < own_seq
    assert intent.detail == {"intent": True, "operation": "Record", "fields": ["recordFinding"]}
    assert intent.client_id == own.client_id == "demo-market" and intent.endpoint == own.endpoint == "/graphql"
    assert own.subjects == [subject] and own.outcome == "ok"
    assert own.detail["credit"] == {"action": "recordFinding", "finding": finding["id"], "listing": listing["id"]}


def test_the_records_a_finding_names_are_checked_at_their_source(hub: RunningHub, fresh: Callable[[], str]) -> None:
    person = hub.samples["natural_penalty"]
    real = a_penalty_of(hub, person)
    fake = {"family": "penalties", "key": "新市监罚〔2026〕0000号"}
    other = {"family": "wage_arrears", "key": "x"}  # not a family market regulation serves
    before = len(findings_of(hub, person))
    refused = hub.query(RECORD, "market", {"input": finding_input(person, decision_day(hub, 5), records=[fake])})
    assert codes(refused) == ["BAD_USER_INPUT"] and "is not a record of" in errors(refused)[0]["message"]
    assert codes(hub.query(RECORD, "market", {"input": finding_input(person, decision_day(hub, 5), records=[other])})) == ["FORBIDDEN"]
    nobody = hub.query(RECORD, "market", {"input": finding_input("91150102999999998L", decision_day(hub, 5))})
    assert codes(nobody) in (["BAD_USER_INPUT"],)  # an unknown subject is never blacklisted
    registered = fresh()
    renamed = hub.query(RECORD, "market", {"input": finding_input(registered, decision_day(hub, 5), subjectName="假名字")})
    assert codes(renamed) == ["BAD_USER_INPUT"] and "the registry names" in errors(renamed)[0]["message"]
    assert len(findings_of(hub, person)) == before and findings_of(hub, registered) == []
    recorded = data(hub.query(RECORD, "market", {"input": finding_input(person, decision_day(hub, 5), records=[real],
                                                                          subjectName="王某")}))["recordFinding"]
    assert recorded["finding"]["records"] == [real]


def test_a_natural_persons_listing_is_masked_for_the_public(hub: RunningHub) -> None:
    person = hub.samples["natural_penalty"]
    outcome = record_serious(hub, person, records=[a_penalty_of(hub, person)], subjectName="乌兰图雅·巴特尔")
    assert outcome["listing"]["subject"] == person  # the deciding department sees whom it listed
    [shown] = [i for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"] if i["id"] == outcome["listing"]["id"]]
    assert shown["subject"] != person and person not in hub.query(BLACKLIST, None).text
    assert shown["subject"] == person[:4] + "*" * 10 + person[-4:]
    assert shown["subjectName"] == "" or shown["subjectName"][1:] == "*" * (len(shown["subjectName"]) - 1)
    for_government = data(hub.query(BLACKLIST, "department"))["blacklist"]["items"]
    assert person in {i["subject"] for i in for_government}
    # masked for every caller outside government, on /graphql too (a bank, a subject's own client)
    for kind, purpose in (("lender", "loan-review"), ("subject", None)):
        seen = hub.query(BLACKLIST, kind, purpose=purpose)
        assert person not in seen.text and "乌兰图雅" not in seen.text, kind


# ---- 2. credit checks ----------------------------------------------------------------------------


def test_credit_checks_by_a_lender_in_each_context(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    outcome = record_serious(hub, subject)
    listing_id, finding_id = outcome["listing"]["id"], outcome["finding"]["id"]
    today = hub.runtime.today().isoformat()

    procurement = check(hub, subject, "government-procurement")
    assert (procurement["subject"], procurement["context"], procurement["verdict"]) == (subject, "government-procurement", "PROHIBITED")
    assert procurement["checkedOn"] == today
    [measure] = procurement["measures"]
    assert (measure["code"], measure["effect"]) == ("S01", "PROHIBITED")
    [reason] = measure["reasons"]
    assert (reason["kind"], reason["id"], reason["list"], reason["basis"], reason["department"]) == (
        "listing", listing_id, "black", "market-serious", "market")
    assert procurement["rewards"] == [] and [r["id"] for r in procurement["reasons"]] == [listing_id]

    lending = check(hub, subject, "lending")
    assert lending["verdict"] == "RESTRICTED"
    by_code = {m["code"]: m for m in lending["measures"]}
    assert sorted(by_code) == ["S06", "S10"] and {m["effect"] for m in by_code.values()} == {"RESTRICTED"}
    assert [(r["kind"], r["id"]) for r in by_code["S06"]["reasons"]] == [("listing", listing_id)]
    assert [(r["kind"], r["id"], r["severity"]) for r in by_code["S10"]["reasons"]] == [("finding", finding_id, "serious")]

    clean = check(hub, hub.samples["clean"], "government-procurement")
    assert (clean["verdict"], clean["measures"], clean["rewards"], clean["reasons"]) == ("ALLOWED", [], [], [])

    honoured = check(hub, hub.samples["honored"], "licensing")
    assert honoured["verdict"] == "ALLOWED" and honoured["measures"] == []
    assert [r["code"] for r in honoured["rewards"]] == ["R01", "R02"]
    assert {r["effect"] for r in honoured["rewards"]} == {"REWARD"}
    assert honoured["reasons"] and {(r["kind"], r["list"]) for r in honoured["reasons"]} == {("listing", "red")}
    assert "honour-red-list" in {r["basis"] for r in honoured["reasons"]}  # the seeded red-list entry


def test_who_may_run_a_credit_check(hub: RunningHub) -> None:
    subject = hub.samples["severe_penalty"]
    variables = {"subject": subject, "context": "lending"}
    no_purpose = hub.query(CHECK, "lender", variables)
    [error] = errors(no_purpose)
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "purpose"} and "Xinlian-Purpose" in error["message"]
    assert no_purpose.json()["data"] is None
    assert request_entry(hub, no_purpose).released == []

    no_scope = hub.query(CHECK, "bank", variables, purpose="loan-review")  # credit:authorized, not credit:check
    assert codes(no_scope) == ["FORBIDDEN"]
    assert errors(no_scope)[0]["extensions"]["requiredScopes"] == ["credit:check", "credit:shared"]

    public = hub.query(CHECK, None, variables)
    assert public.status_code == 400 and codes(public) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "creditCheck" in errors(public)[0]["message"]

    assert check(hub, subject, "lending", kind="department", purpose=None)["verdict"] == "RESTRICTED"  # credit:shared


def test_the_subject_sees_a_check_of_it_in_its_access_log(hub: RunningHub) -> None:
    own = hub.samples["judgment_debtor"]  # the demo subject client is bound to it
    response = hub.query(CHECK, "lender", {"subject": own, "context": "public-office"}, purpose="loan-review")
    result = data(response)["creditCheck"]
    assert result["verdict"] == "PROHIBITED" and [m["code"] for m in result["measures"]] == ["S08"]
    assert result["reasons"][0]["basis"] == "judgment-debtor"  # the court's list rule
    log = data(hub.query("{ myAccessLog(first: 50) { requestId clientId clientKind purpose released endpoint } }", "subject"))
    [seen] = [e for e in log["myAccessLog"] if e["requestId"] == response.headers["x-request-id"]]
    assert seen == {
        "requestId": response.headers["x-request-id"], "clientId": "demo-lender", "clientKind": "bank",
        "purpose": "loan-review", "released": ["creditCheck.public-office"], "endpoint": "/graphql",
    }


# ---- 3. batches of checks ------------------------------------------------------------------------


def test_credit_checks_of_several_subjects_answer_in_the_order_asked(hub: RunningHub) -> None:
    s = hub.samples
    asked = [s["clean"], s["severe_penalty"], s["honored"]]
    for subjects in (asked, asked[::-1]):
        answers = data(hub.query(CHECKS, "lender", {"subjects": subjects, "context": "bidding"}, purpose="loan-review"))["creditChecks"]
        assert [a["subject"] for a in answers] == subjects
        verdicts = {a["subject"]: a["verdict"] for a in answers}
        assert verdicts == {s["clean"]: "ALLOWED", s["severe_penalty"]: "PROHIBITED", s["honored"]: "ALLOWED"}
        assert {a["context"] for a in answers} == {"bidding"}


def test_a_batch_with_an_invalid_code_or_context_is_refused_whole(hub: RunningHub) -> None:
    s = hub.samples
    response = hub.query(CHECKS, "lender", {"subjects": [s["clean"], INVALID_USCC], "context": "lending"}, purpose="loan-review")
    assert response.json()["data"] is None
    [error] = errors(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and INVALID_USCC in error["message"]
    entry = request_entry(hub, response)
    assert entry.released == [] and entry.subjects == [], "nothing was released, nobody was checked"

    response = hub.query(CHECKS, "lender", {"subjects": [s["clean"]], "context": "mining"}, purpose="loan-review")
    [error] = errors(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "'mining'" in error["message"]
    assert all(context in error["message"] for context in CONTEXTS)
    assert request_entry(hub, response).released == []

    empty = hub.query(CHECKS, "lender", {"subjects": [], "context": "lending"}, purpose="loan-review")
    assert codes(empty) == ["BAD_USER_INPUT"]


def test_a_batch_is_at_most_10000_subjects(hub: RunningHub) -> None:
    """10,000 codes make a body of ~220 kB: within the /graphql batch body limit (512 KiB by
    default), so the resolver's own limit is what refuses the 10,001st."""
    s = hub.samples
    subjects = [s["clean"], s["severe_penalty"]] * 5_000
    answers = data(hub.query(CHECKS, "lender", {"subjects": subjects, "context": "land"}, purpose="loan-review"))["creditChecks"]
    assert [a["subject"] for a in answers] == subjects
    assert [a["verdict"] for a in answers[:2]] == ["ALLOWED", "PROHIBITED"] and answers[1]["measures"] == [{"code": "S05"}]

    over = hub.query(CHECKS, "lender", {"subjects": [*subjects, s["clean"]], "context": "land"}, purpose="loan-review")
    assert over.status_code == 200 and over.json()["data"] is None
    [error] = errors(over)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "10000" in error["message"]
    entry = request_entry(hub, over)
    assert entry.released == [] and entry.subjects == []


# ---- 4. who may record what ----------------------------------------------------------------------


def test_a_client_without_a_department_cannot_record_a_finding(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    response = hub.query(RECORD, "department", {"input": finding_input(subject, decision_day(hub, 5))})
    assert response.json()["data"] is None and codes(response) == ["FORBIDDEN"]
    assert findings_of(hub, subject) == [] and subject not in blacklisted(hub)


def test_a_department_records_only_on_its_own_bases_and_not_in_the_future(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    tax_basis = hub.query(RECORD, "market", {"input": finding_input(subject, decision_day(hub, 5), basis="tax-major-violation")})
    [error] = errors(tax_basis)
    assert error["extensions"]["code"] == "FORBIDDEN" and "tax" in error["message"]
    tomorrow = hub.runtime.today() + dt.timedelta(days=1)
    future = hub.query(RECORD, "market", {"input": finding_input(subject, tomorrow)})
    [error] = errors(future)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "future" in error["message"]
    red_basis = hub.query(RECORD, "market", {"input": finding_input(subject, decision_day(hub, 5), basis="honour-red-list")})
    assert codes(red_basis) == ["BAD_USER_INPUT"]
    unknown_measure = hub.query(RECORD, "market", {"input": finding_input(subject, decision_day(hub, 5), measures=["S99"])})
    assert codes(unknown_measure) == ["BAD_USER_INPUT"]
    assert findings_of(hub, subject) == [] and subject not in blacklisted(hub)


def test_a_department_revokes_only_its_own_findings(hub: RunningHub) -> None:
    [environmental] = [f for f in findings_of(hub, hub.samples["severe_penalty"]) if f["department"] == "environment"]
    response = hub.query(REVOKE, "market", {"id": environmental["id"], "reason": "不是我们的决定"})
    assert codes(response) == ["FORBIDDEN"]
    assert [f["status"] for f in findings_of(hub, hub.samples["severe_penalty"])] == ["in_force"]
    assert hub.samples["severe_penalty"] in blacklisted(hub)


def test_mutations_need_post_one_root_field_and_the_token_endpoint(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject, other = fresh(), fresh()
    one = finding_input(subject, decision_day(hub, 5))
    headers = {"Authorization": f"Bearer {hub.token('market')}"}
    inline = (
        'mutation {{ recordFinding(input: {{subject: "{s}", basis: "market-serious", facts: "f", legalBasis: "l", '
        'decidedOn: "{d}"}}) {{ finding {{ id }} }} }}'
    )
    by_get = hub.http.get("/graphql", params={"query": inline.format(s=subject, d=one["decidedOn"])}, headers=headers)
    assert by_get.status_code == 405 and codes(by_get) == ["METHOD_NOT_ALLOWED"]

    two = (
        "mutation Two($a: FindingInput!, $b: FindingInput!) {"
        " a: recordFinding(input: $a) { finding { id } } b: recordFinding(input: $b) { finding { id } } }"
    )
    both = hub.query(two, "market", {"a": one, "b": finding_input(other, decision_day(hub, 5))})
    assert both.status_code == 400 and codes(both) == ["BAD_USER_INPUT"]
    assert "Nothing was changed" in errors(both)[0]["message"]
    assert not [e for _, e in stored_entries(hub, both.headers["x-request-id"]) if (e.detail or {}).get("intent")]

    public = hub.query(RECORD, None, {"input": one})
    assert public.status_code == 400 and "GRAPHQL_VALIDATION_FAILED" in codes(public)

    for s in (subject, other):
        assert findings_of(hub, s) == []
    assert not {subject, other} & set(blacklisted(hub))


def test_a_second_serious_finding_on_the_same_basis_extends_the_listing(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    first = record_serious(hub, subject, days_ago=200)
    second = record_serious(hub, subject, days_ago=20)
    assert second["listing"]["id"] == first["listing"]["id"], "one listing per subject, list and basis"
    later = last_day(decision_day(hub, 20), 36)
    assert second["listing"]["listedOn"] == first["listing"]["listedOn"] and second["listing"]["endsOn"] == later.isoformat()
    assert [i["id"] for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"] if i["subject"] == subject] == [first["listing"]["id"]]
    listing = history(hub, first["listing"]["id"])
    assert [t["action"] for t in listing["transitions"]] == ["listed", "extended"]
    assert later.isoformat() in listing["transitions"][1]["reason"]
    assert [f["id"] for f in findings_of(hub, subject)] == [second["finding"]["id"], first["finding"]["id"]]


def test_revoking_one_of_two_serious_findings_keeps_the_subject_blacklisted(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    first = record_serious(hub, subject, days_ago=200)
    second = record_serious(hub, subject, days_ago=20)
    assert data(hub.query(REVOKE, "market", {"id": first["finding"]["id"], "reason": "复议撤销"}))["revokeFinding"]["status"] == "revoked"
    assert [f["status"] for f in findings_of(hub, subject)] == ["in_force", "revoked"]
    assert subject in blacklisted(hub), f"finding {second['finding']['id']} (serious, in force) still lists the subject"
    assert check(hub, subject, "government-procurement")["verdict"] == "PROHIBITED"


def test_revoking_the_finding_that_extended_a_listing_takes_the_extension_back(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    first = record_serious(hub, subject, days_ago=200)
    second = record_serious(hub, subject, days_ago=20)
    assert data(hub.query(REVOKE, "market", {"id": second["finding"]["id"], "reason": "复议撤销"}))["revokeFinding"]["status"] == "revoked"
    assert blacklisted(hub)[subject]["endsOn"] == first["listing"]["endsOn"], "the revoked finding no longer sets the end"


def test_government_reads_findings_and_the_measures_catalogue(hub: RunningHub) -> None:
    subject = hub.samples["severe_penalty"]
    query = "query($s: String!) { findings(subject: $s) { subject severity basis department facts legalBasis inForceUntil status } }"
    [found] = data(hub.query(query, "department", {"s": subject}))["findings"]
    assert (found["subject"], found["severity"], found["basis"], found["department"], found["status"]) == (
        subject, "serious", "environment-serious", "environment", "in_force")
    assert codes(hub.query(query, "lender", {"s": subject}, purpose="loan-review")) == ["FORBIDDEN"]
    assert codes(hub.query(query, "department", {"s": INVALID_USCC})) == ["BAD_USER_INPUT"]

    catalogue = "query($c: String) { measuresCatalogue(context: $c) { code effect contexts triggers } }"
    bidding = data(hub.query(catalogue, "lender", {"c": "bidding"}, purpose="loan-review"))["measuresCatalogue"]
    assert [m["code"] for m in bidding] == ["S02", "S09", "R02", "R03"]
    assert all("bidding" in m["contexts"] for m in bidding)
    every = data(hub.query(catalogue, "department", {}))["measuresCatalogue"]
    assert len(every) == 15 and {m["effect"] for m in every} == {"PROHIBITED", "RESTRICTED", "REWARD"}
    assert {m["code"]: m["triggers"] for m in every}["S08"] == ["blacklist:judgment-debtor"]
    assert codes(hub.query(catalogue, "department", {"c": "mining"})) == ["BAD_USER_INPUT"]


# ---- 5. a court's cancellation ----------------------------------------------------------------------


def test_a_court_cancels_a_listing(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    listing_id = record_serious(hub, subject)["listing"]["id"]
    assert check(hub, subject, "government-procurement")["verdict"] == "PROHIBITED"

    by_market = hub.query(CANCEL, "market", {"id": listing_id, "reason": "我们想撤销"})
    assert by_market.json()["data"] is None and codes(by_market) == ["FORBIDDEN"]
    assert subject in blacklisted(hub)

    ruling = "（2026）内0102执异12号 裁定撤销失信认定"
    cancelled = data(hub.query(CANCEL, "court", {"id": listing_id, "reason": ruling}))["cancelListing"]
    assert (cancelled["id"], cancelled["subject"]) == (listing_id, subject)
    assert subject not in blacklisted(hub), "off the public blacklist at once"
    assert check(hub, subject, "government-procurement")["verdict"] == "ALLOWED"
    lending = check(hub, subject, "lending")  # the finding itself stands: credit reviews still see it
    assert lending["verdict"] == "RESTRICTED" and [m["code"] for m in lending["measures"]] == ["S10"]

    listing = history(hub, listing_id)
    assert listing["status"] == "cancelled"
    assert [(t["action"], t["by"]) for t in listing["transitions"]] == [("listed", "demo-market"), ("cancelled", "demo-court")]
    assert listing["transitions"][1]["reason"] == ruling

    again = hub.query(CANCEL, "court", {"id": listing_id, "reason": ruling})
    assert codes(again) == ["BAD_USER_INPUT"]
    assert len(history(hub, listing_id)["transitions"]) == 2


def test_a_cancellation_from_the_cli_reaches_the_serving_hub(
    hub: RunningHub, fresh: Callable[[], str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another process changes the store; the serving hub's checks follow within about a second."""
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    subject = fresh()
    listing_id = record_serious(hub, subject)["listing"]["id"]
    assert check(hub, subject, "bidding")["verdict"] == "PROHIBITED"
    argv = ["lists", "cancel", str(listing_id), "--reason", "（2026）内0102执异13号", "--data-dir", str(hub.data_dir), "--by", "ops-wu"]
    assert main(argv) == 0, capsys.readouterr().err
    waited = wait_until(lambda: check(hub, subject, "bidding")["verdict"] == "ALLOWED", 5, "the CLI's cancellation reaching the hub")
    assert waited < 5
    assert [t["by"] for t in history(hub, listing_id)["transitions"]] == ["demo-market", "ops-wu"]


# ---- 6. the red list -----------------------------------------------------------------------------------


def red_input(hub: RunningHub, subject: str, days_ago: int = 3) -> dict[str, Any]:
    listed = decision_day(hub, days_ago)
    return {"subject": subject, "basis": "honour-red-list", "reason": "2026年度守合同重信用企业", "listedOn": listed.isoformat()}


def test_red_listing_and_the_blacklist_exclude_each_other(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    entry = red_input(hub, subject)
    red = data(hub.query(RED_LIST, "market", {"input": entry}))["addToRedList"]
    listed = dt.date.fromisoformat(entry["listedOn"])
    assert (red["list"], red["subject"], red["basis"], red["department"]) == ("red", subject, "honour-red-list", "market")
    assert (red["listedOn"], red["endsOn"]) == (listed.isoformat(), last_day(listed, 24).isoformat())
    assert red_listed(hub)[subject]["id"] == red["id"]
    assert [r["code"] for r in check(hub, subject, "licensing")["rewards"]] == ["R01", "R02"]

    refused = hub.query(RED_LIST, "market", {"input": red_input(hub, hub.samples["severe_penalty"])})
    [error] = errors(refused)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "blacklist" in error["message"]
    assert hub.samples["severe_penalty"] not in red_listed(hub)

    listing_id = record_serious(hub, subject)["listing"]["id"]
    assert subject not in red_listed(hub) and blacklisted(hub)[subject]["id"] == listing_id
    ended = history(hub, red["id"])
    assert ended["status"] == "delisted" and [t["action"] for t in ended["transitions"]] == ["listed", "delisted"]
    licensing = check(hub, subject, "licensing")
    assert licensing["rewards"] == [] and licensing["verdict"] == "RESTRICTED"  # S04


def test_a_serious_finding_whose_period_is_over_leaves_the_red_listing(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    red = data(hub.query(RED_LIST, "market", {"input": red_input(hub, subject)}))["addToRedList"]
    old = record_serious(hub, subject, days_ago=40 * 31)  # decided ~40 months ago: its 36 months are over
    assert dt.date.fromisoformat(old["listing"]["endsOn"]) < hub.runtime.today()
    assert subject not in blacklisted(hub), "the subject was never on the blacklist at the same time"
    assert red_listed(hub).get(subject, {}).get("id") == red["id"], "so its current red listing stands"


# ---- 7. paging the blacklist -----------------------------------------------------------------------------


def test_paging_through_the_blacklist(hub: RunningHub) -> None:
    everything = [i["id"] for i in data(hub.query(PAGE, None, {"first": 100}))["blacklist"]["items"]]
    total = len(everything)
    assert 3 <= total < 100
    pages: list[list[int]] = []
    after = None
    while True:
        page = data(hub.query(PAGE, None, {"first": 2, "after": after}))["blacklist"]
        assert page["totalCount"] == total
        pages.append([i["id"] for i in page["items"]])
        assert page["endCursor"] is not None and len(pages[-1]) in (1, 2)
        after = page["endCursor"]
        if not page["hasNextPage"]:
            break
        assert len(pages[-1]) == 2
    assert len(pages) == math.ceil(total / 2)
    flat = [i for p in pages for i in p]
    assert flat == everything and len(set(flat)) == total, "no overlap, nothing skipped, oldest first"
    assert flat == sorted(flat)
    tail = data(hub.query(PAGE, None, {"first": 2, "after": after}))["blacklist"]
    assert tail == {"totalCount": total, "endCursor": None, "hasNextPage": False, "items": []}

    for variables, argument in (({"first": 2, "after": "not-a-cursor"}, "after"), ({"first": 0}, "first"), ({"first": 101}, "first")):
        refused = hub.query(PAGE, None, variables)
        [error] = errors(refused)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}, variables


# ---- 8. ratings and supervision plans -------------------------------------------------------------------------


def test_the_rating_of_a_blacklisted_subject_is_explained(hub: RunningHub) -> None:
    subject = hub.samples["severe_penalty"]
    [listing] = [i for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"] if i["subject"] == subject]
    assert listing["basis"] == "environment-serious"
    rating = data(hub.query(RATING, "department", {"subject": subject}))["rating"]
    assert rating["level"] in ("CCC", "CC", "C") and rating["supervisionClass"] == "C"
    assert rating["modelVersion"] == "xc-2026.1" and rating["subject"] == subject and rating["subjectName"] == listing["subjectName"]
    indicators = {i["name"]: i for i in rating["indicators"]}
    assert (indicators["blacklisted"]["points"], indicators["blacklisted"]["evidence"]) == (-35.0, [f"listing:{listing['id']}"])
    assert indicators["red-listed"]["points"] == 0.0
    assert rating["score"] == pytest.approx(max(0.0, 85 + sum(i["points"] for i in rating["indicators"])))

    before = ratings_of(hub, subject)
    refreshed = data(hub.query(RATING, "department", {"subject": subject, "refresh": True}))["rating"]
    after = ratings_of(hub, subject)
    assert len(after) == len(before) + 1 and after[0]["trigger"] == "on-demand" == refreshed["trigger"]
    assert refreshed["ratedOn"] == hub.runtime.today().isoformat() and refreshed["level"] == rating["level"]


def test_who_may_read_a_rating(hub: RunningHub) -> None:
    own, other = hub.samples["judgment_debtor"], hub.samples["severe_penalty"]
    for kind, purpose in (("bank", "loan-review"), ("lender", "loan-review")):
        refused = hub.query(RATING, kind, {"subject": other}, purpose=purpose)
        assert codes(refused) == ["FORBIDDEN"] and refused.json()["data"] == {"rating": None}
    mine = data(hub.query(RATING, "subject", {"subject": own}))["rating"]
    assert mine["subject"] == own and mine["level"] and mine["indicators"] == []  # the explanation is for government
    explained = data(hub.query(RATING, "department", {"subject": own}))["rating"]
    assert {"judgment-debtor", "blacklisted"} <= {i["name"] for i in explained["indicators"] if i["points"] < 0}
    assert codes(hub.query(RATING, "subject", {"subject": own, "refresh": True})) == ["FORBIDDEN"]  # refresh: government only
    not_mine = hub.query(RATING, "subject", {"subject": other})
    assert codes(not_mine) == ["FORBIDDEN"] and not_mine.json()["data"] == {"rating": None}
    assert other not in request_entry(hub, not_mine).subjects


def test_a_supervision_plan(hub: RunningHub) -> None:
    plan = data(hub.query(PLAN, "department", {"period": "2026-Q4"}))["supervisionPlan"]
    assert (plan["department"], plan["period"], plan["startsOn"], plan["endsOn"]) == (None, "2026-Q4", "2026-10-01", "2026-12-31")
    classes = [e["supervisionClass"] for e in plan["entries"]]
    assert (plan["classA"], plan["classB"], plan["classC"]) == (classes.count("A"), classes.count("B"), classes.count("C"))
    assert plan["classC"] > 0 and classes == sorted(classes, reverse=True), "class C first, then B, then A"
    enterprises = [e for e in plan["entries"] if e["subject"][0] == "9"]
    assert len(enterprises) == 150 and {e["inspectionsDue"] for e in plan["entries"]} == {1}  # a quarter of 4, 2 or 1
    assert hub.samples["severe_penalty"] in {e["subject"] for e in plan["entries"] if e["supervisionClass"] == "C"}
    c_scores = [e["score"] for e in plan["entries"] if e["supervisionClass"] == "C"]
    assert c_scores == sorted(c_scores), "lowest score first within a class"

    year = data(hub.query(PLAN, "department", {"period": "2026"}))["supervisionPlan"]
    assert {(e["supervisionClass"], e["inspectionsDue"]) for e in year["entries"]} <= {("A", 1), ("B", 2), ("C", 4)}

    own = data(hub.query(PLAN, "market", {}))["supervisionPlan"]
    assert own["department"] == "market"
    environment = data(hub.query(PLAN, "department", {"department": "environment", "period": "2026-Q4"}))["supervisionPlan"]
    supervised = {"食品制造业", "房屋建筑业", "机动车、电子产品和日用产品修理业", "畜牧业"}
    assert environment["entries"] and {e["industry"] for e in environment["entries"]} <= supervised

    others = hub.query(PLAN, "market", {"department": "environment"})
    assert codes(others) == ["FORBIDDEN"]
    bad = hub.query(PLAN, "department", {"period": "2026-Q5"})
    assert codes(bad) == ["BAD_USER_INPUT"]
    lender = hub.query(PLAN, "lender", {}, purpose="loan-review")
    assert codes(lender) == ["FORBIDDEN"]


def test_a_finding_on_a_resident_does_not_put_the_resident_in_a_supervision_plan(hub: RunningHub) -> None:
    person = hub.samples["natural_penalty"]
    general = finding_input(person, decision_day(hub, 10), basis="general-dishonesty", records=[a_penalty_of(hub, person)], measures=[])
    assert data(hub.query(RECORD, "market", {"input": general}))["recordFinding"]["listing"] is None
    plan = data(hub.query(PLAN, "market", {"period": "2026"}))["supervisionPlan"]
    assert person not in {e["subject"] for e in plan["entries"]}, "supervision plans list market entities"


# ---- 9. measure feedback ------------------------------------------------------------------------------------


def test_a_lender_reports_the_measure_it_applied(hub: RunningHub) -> None:
    subject = hub.samples["severe_penalty"]
    check_response = hub.query(CHECK, "lender", {"subject": subject, "context": "lending"}, purpose="loan-review")
    assert "S06" in {m["code"] for m in data(check_response)["creditCheck"]["measures"]}
    today = hub.runtime.today().isoformat()
    applied = {"measure": "S06", "subject": subject, "context": "lending", "appliedOn": today,
               "checkRequestId": check_response.headers["x-request-id"], "note": "提高利率并追加担保"}
    feedback_id = data(hub.query(FEEDBACK, "lender", {"input": applied}, purpose="loan-review"))["recordMeasureFeedback"]
    assert isinstance(feedback_id, int) and feedback_id > 0

    elsewhere = hub.query(FEEDBACK, "lender", {"input": {**applied, "measure": "S01"}}, purpose="loan-review")
    [error] = errors(elsewhere)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "does not apply" in error["message"]
    tomorrow = (hub.runtime.today() + dt.timedelta(days=1)).isoformat()
    assert codes(hub.query(FEEDBACK, "lender", {"input": {**applied, "appliedOn": tomorrow}}, purpose="loan-review")) == ["BAD_USER_INPUT"]
    assert codes(hub.query(FEEDBACK, "bank", {"input": applied}, purpose="loan-review")) == ["FORBIDDEN"]

    totals = admin_data(hub, "{ measureFeedback { department measure measureName applied lastAppliedOn } }")["measureFeedback"]
    assert [t for t in totals if t["department"] == "demo-lender"] == [
        {"department": "demo-lender", "measure": "S06", "measureName": "作为融资授信的重要参考，从严审核或提高利率、增加担保",
         "applied": 1, "lastAppliedOn": today},
    ]


# ---- 10. the credit office in the admin API ------------------------------------------------------------------


def test_the_credit_office_revokes_a_finding(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    outcome = record_serious(hub, subject)
    finding_id, listing_id = outcome["finding"]["id"], outcome["listing"]["id"]
    [found] = findings_of(hub, subject)
    assert (found["id"], found["severity"], found["basis"], found["department"], found["status"]) == (
        finding_id, "serious", "market-serious", "market", "in_force")
    penalised = hub.samples["multi_department_penalties"]
    assert [(f["subject"], f["severity"]) for f in findings_of(hub, penalised)] == [(penalised, "general")]

    reason = "经复核，认定事实不清"
    response = admin(hub, "mutation($id: Int!, $reason: String!) { revokeCreditFinding(id: $id, reason: $reason) { id status } }",
                     {"id": finding_id, "reason": reason})
    assert data(response)["revokeCreditFinding"] == {"id": finding_id, "status": "revoked"}
    listing = history(hub, listing_id)
    assert listing["status"] == "cancelled"
    assert [(t["action"], t["by"]) for t in listing["transitions"]] == [("listed", "demo-market"), ("cancelled", "demo-admin")]
    assert reason in listing["transitions"][1]["reason"]
    assert subject not in blacklisted(hub)
    assert check(hub, subject, "lending")["verdict"] == "ALLOWED"
    assert [f["status"] for f in findings_of(hub, subject)] == ["revoked"]

    again = admin(hub, "mutation($id: Int!) { revokeCreditFinding(id: $id, reason: \"再次\") { id } }", {"id": finding_id})
    assert codes(again) == ["BAD_USER_INPUT"]
    entries = [e for _, e in stored_entries(hub, response.headers["x-request-id"]) if not (e.detail or {}).get("intent")]
    [entry] = entries
    assert entry.endpoint == "/admin/graphql" and subject in entry.subjects
    assert {"action": "revokeCreditFinding", "subject": subject, "finding": finding_id, "reason": reason} in entry.detail["actions"]


def test_the_credit_office_records_expiries(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    old = record_serious(hub, subject, days_ago=38 * 31)  # its 36 months have run out
    listing_id = old["listing"]["id"]
    assert dt.date.fromisoformat(old["listing"]["endsOn"]) < hub.runtime.today()
    assert subject not in blacklisted(hub), "a listing past its end date is over before the sweep records it"
    assert history(hub, listing_id)["status"] == "listed"

    assert admin_data(hub, "mutation { expireCreditListings }")["expireCreditListings"] >= 1
    expired = history(hub, listing_id)
    assert expired["status"] == "expired" and [t["action"] for t in expired["transitions"]] == ["listed", "expired"]
    assert admin_data(hub, "mutation { expireCreditListings }")["expireCreditListings"] == 0


def test_the_credit_office_rates_a_subject_and_the_district(hub: RunningHub) -> None:
    subject = hub.samples["multi_department_penalties"]
    before = ratings_of(hub, subject)
    rate = "mutation($s: String!) { rateSubject(subject: $s) { subject level trigger indicators { name points evidence } } }"
    rated = admin_data(hub, rate, {"s": subject})["rateSubject"]
    assert rated["subject"] == subject and rated["trigger"] == "on-demand"
    general = {i["name"]: i for i in rated["indicators"]}["general-findings"]
    assert general["points"] == -6.0 and len(general["evidence"]) == 1 and general["evidence"][0].startswith("finding:")
    assert len(ratings_of(hub, subject)) == len(before) + 1
    assert codes(admin(hub, 'mutation { rateSubject(subject: "%s") { level } }' % INVALID_USCC)) == ["BAD_USER_INPUT"]

    started = admin_data(hub, "mutation { runCreditRatings { id status by } }")["runCreditRatings"]
    assert started["status"] == "running" and started["by"] == "demo-admin"
    jobs = "{ creditRatingJobs(limit: 5) { id status rated failed by note } }"

    def newest() -> dict[str, Any]:
        return dict(admin_data(hub, jobs)["creditRatingJobs"][0])

    wait_until(lambda: newest()["status"] != "running", 60, "the district run to finish")
    job = newest()
    assert (job["id"], job["status"], job["rated"], job["failed"], job["note"]) == (started["id"], "done", 150, 0, "")
    assert ratings_of(hub, subject)[0]["trigger"] == "bulk"


def test_the_district_run_is_refused_while_another_is_running(hub: RunningHub) -> None:
    from sqlalchemy import update

    from xinlian.hub.credit.district import JOBS, DistrictRun

    async def start_elsewhere(store: Any) -> int:  # a run in another hub process, moving right now
        run = DistrictRun(store, None, None, None, None)  # type: ignore[arg-type]
        return (await run.start_job(hub.runtime.policy.credit, "schedule", resume=False)).id

    async def settle(store: Any) -> None:
        async with store.session() as session:
            await session.execute(update(JOBS).where(JOBS.c.status == "running").values(status="interrupted"))
            await session.commit()

    running = hub.on_store(start_elsewhere)
    try:
        response = admin(hub, "mutation { runCreditRatings { id status } }")
    finally:
        hub.on_store(settle)
    [error] = errors(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and f"district job {running} is running" in error["message"]


# ---- 11. a department that is down ---------------------------------------------------------------------------


def test_no_rating_while_a_department_is_down(hub: RunningHub) -> None:
    subject = hub.samples["judgment_debtor"]
    court = hub.connector("courts").department
    before = ratings_of(hub, subject)
    hub.services.court.state.faults.inject("error", times=10_000)
    try:
        response = hub.query(RATING, "department", {"subject": subject, "refresh": True})
        assert response.json()["data"] == {"rating": None}
        [error] = errors(response)
        assert error["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "departments": [court]}
        assert court in error["message"]
        assert ratings_of(hub, subject) == before, "no snapshot from partial records"
        admin_rate = admin(hub, "mutation($s: String!) { rateSubject(subject: $s) { level } }", {"s": subject})
        assert court in errors(admin_rate)[0]["message"]
        assert ratings_of(hub, subject) == before
        current = data(hub.query(RATING, "department", {"subject": subject}))["rating"]  # the last snapshot is still there
        assert current["subject"] == subject
    finally:
        hub.services.court.state.faults.clear()
    wait_until(lambda: "errors" not in hub.query(RATING, "department", {"subject": subject, "refresh": True}).json(),
               30, "ratings once the court answers again")
    assert len(ratings_of(hub, subject)) == len(before) + 1


def test_a_failed_rating_releases_nothing(hub: RunningHub) -> None:
    subject = hub.samples["judgment_debtor"]
    hub.services.court.state.faults.inject("error", times=10_000)
    try:
        response = hub.query(RATING, "department", {"subject": subject, "refresh": True})
    finally:
        hub.services.court.state.faults.clear()
    assert codes(response) == ["UPSTREAM_UNAVAILABLE"]
    wait_until(lambda: "errors" not in hub.query(RATING, "department", {"subject": subject, "refresh": True}).json(),
               30, "ratings once the court answers again")
    entry = request_entry(hub, response)
    assert entry.subjects == [subject]
    assert entry.released == [], "no rating was released"


def test_the_admin_api_says_a_department_is_down_not_that_the_input_was_bad(hub: RunningHub) -> None:
    subject = hub.samples["judgment_debtor"]
    hub.services.court.state.faults.inject("error", times=10_000)
    try:
        response = admin(hub, "mutation($s: String!) { rateSubject(subject: $s) { level } }", {"s": subject})
    finally:
        hub.services.court.state.faults.clear()
    wait_until(lambda: "errors" not in hub.query(RATING, "department", {"subject": subject, "refresh": True}).json(),
               30, "ratings once the court answers again")
    assert codes(response) == ["UPSTREAM_UNAVAILABLE"]


def test_a_rating_never_rests_on_a_record_awaiting_review(hub: RunningHub) -> None:
    subject = hub.samples["awaiting_review"]
    penalties = data(hub.query("query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber reviewStatus } } }",
                               "department", {"u": subject}))["legalPerson"]["penalties"]
    waiting = {f"penalties:{p['decisionNumber']}" for p in penalties if p["reviewStatus"] != "已审核"}
    assert waiting, "the demo's awaiting_review sample has a penalty not yet reviewed"
    rating = data(hub.query(RATING, "department", {"subject": subject, "refresh": True}))["rating"]
    evidence = {e for i in rating["indicators"] for e in i["evidence"]}
    assert not evidence & waiting


def test_list_rules_reach_the_natural_persons_of_an_enumerable_source(hub: RunningHub) -> None:
    """The tax bureau's system can page through its cases' subjects: a district run lists a
    resident with a published major tax violation, not one whose case is past its 36 months."""
    query = "query($p: String!) { naturalPerson(idNumber: $p) { listings { list basis } } }"
    person = hub.samples["natural_tax_violation"]
    listings = data(hub.query(query, "department", {"p": person}))["naturalPerson"]["listings"]
    assert {"list": "black", "basis": "major-tax-violation-list"} in listings
    verdict = data(hub.query(CHECK, "department", {"subject": person, "context": "government-procurement"}))["creditCheck"]
    assert verdict["verdict"] == "PROHIBITED"
    company = hub.samples["major_tax_violation"]
    assert "major-tax-violation-list" in {x["basis"] for x in data(hub.query(
        "query($u: String!) { legalPerson(uscc: $u) { listings { basis } } }", None, {"u": company}))["legalPerson"]["listings"]}
    expired = hub.samples["major_tax_violation_expired"]
    assert "major-tax-violation-list" not in {x["basis"] for x in data(hub.query(
        "query($u: String!) { legalPerson(uscc: $u) { listings { basis } } }", None, {"u": expired}))["legalPerson"]["listings"]}


def test_the_credit_office_records_checks_and_plans_through_the_admin_api(hub: RunningHub, fresh: Callable[[], str]) -> None:
    subject = fresh()
    recorded = admin(hub, """mutation($d: String!, $i: FindingInput!) {
      recordCreditFinding(department: $d, input: $i) { finding { id department } listing { id list } } }""",
                     {"d": "market", "i": finding_input(subject, decision_day(hub, 3))})
    outcome = data(recorded)["recordCreditFinding"]
    assert outcome["finding"]["department"] == "market" and outcome["listing"]["list"] == "black"
    wrong = admin(hub, """mutation($d: String!, $i: FindingInput!) { recordCreditFinding(department: $d, input: $i) { finding { id } } }""",
                  {"d": "tax", "i": finding_input(fresh(), decision_day(hub, 3))})
    assert codes(wrong) == ["BAD_USER_INPUT"] and "not for department 'tax'" in errors(wrong)[0]["message"]
    checked = admin_data(hub, """query($s: String!) { creditCheck(subject: $s, context: "bidding") { verdict measures { code } } }""",
                         {"s": subject})["creditCheck"]
    assert checked["verdict"] == "PROHIBITED" and [m["code"] for m in checked["measures"]] == ["S02"]
    red = admin(hub, """mutation($d: String!, $i: RedListInput!) { addCreditRedListing(department: $d, input: $i) { list } }""",
                {"d": "market", "i": {"subject": fresh(), "basis": "honour-red-list", "reason": "示范",
                                      "listedOn": hub.runtime.today().isoformat()}})
    assert data(red)["addCreditRedListing"]["list"] == "red"
    plan = admin_data(hub, '{ creditSupervisionPlan(period: "2026") { period classC entries { subject } csv } }')["creditSupervisionPlan"]
    assert plan["period"] == "2026" and plan["entries"] and plan["csv"].startswith("统一社会信用代码")
    assert {m["code"] for m in admin_data(hub, '{ creditMeasures(context: "lending") { code } }')["creditMeasures"]} >= {"S06", "R04"}
    actions = [a["action"] for e in hub.audit_entries(recorded.headers["x-request-id"]) for a in (e.detail or {}).get("actions", [])]
    assert actions == ["recordCreditFinding"]


def test_a_natural_person_judgment_debtor_is_listed_while_the_courts_record_stands(hub: RunningHub) -> None:
    """The court's API pages through its debtors (`rest.judgment_debtor_records.keys`): the district
    run lists a resident judgment debtor, as the registry's companies."""
    person = hub.samples["natural_debtor"]
    query = "query($p: String!) { naturalPerson(idNumber: $p) { listings { list basis } } }"
    assert {"list": "black", "basis": "judgment-debtor"} in data(hub.query(query, "department", {"p": person}))["naturalPerson"]["listings"]
    lending = data(hub.query(CHECK, "lender", {"subject": person, "context": "lending"}, purpose="loan-review"))["creditCheck"]
    assert lending["verdict"] == "RESTRICTED"
    # named by the court's record (the registry does not know a person): in clear for government, masked for others
    named = "query($p: String!) { naturalPerson(idNumber: $p) { listings { basis subjectName } } }"
    [debtor] = [x for x in data(hub.query(named, "department", {"p": person}))["naturalPerson"]["listings"]
                if x["basis"] == "judgment-debtor"]
    assert debtor["subjectName"] and "*" not in debtor["subjectName"]
    [public] = [x for x in data(hub.query(named, None, {"p": person}))["naturalPerson"]["listings"]
                if x["basis"] == "judgment-debtor"]
    assert public["subjectName"][1:] == "*" * (len(public["subjectName"]) - 1)
