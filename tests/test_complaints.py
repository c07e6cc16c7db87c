"""Complaints and reports (投诉举报, issue 12) end to end: anyone files on `/public/graphql` and gets
a tracking code, follows it without learning who handled it or what they noted, the credit office
triages it in the admin API (seeing the filer's contact, which nobody else sees and no audit entry
holds), the assigned department resolves it on `/graphql` citing its own finding of dishonesty —
on a real hub over the demo district. Then the parts at their boundaries: tracking codes, contacts,
deadlines at real dates across 国庆, and concurrent triage on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
from typing import Any, Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from hub_fixture import NO_RATE_LIMITS, RunningHub, running_hub
from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.complaints import (
    ALPHABET,
    ComplaintDesk,
    Contact,
    new_tracking_code,
    normalise_tracking_code,
    tracking_hash,
)
from xinlian.hub.cases.model import Actor, CaseForbidden, CaseInputError
from xinlian.hub.cases.register import CASES, CaseRegister
from xinlian.hub.store import Store
from xinlian.policies.cases import standard_case_rules

CODE = re.compile(r"TS-[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
# what the filer tells the credit office only: none of it may appear anywhere else
CONTACT = {"name": "乌力吉举报人", "phone": "0471-6990017", "email": "whistle.k7q@example.cn"}
SECRETS = tuple(CONTACT.values())
ASSIGN_NOTE = "内部：请市场监管局核查其虚假宣传线索"
ANSWER = "经核查，投诉反映的虚假宣传问题属实，已依法认定为一般失信行为。"

FILE = """
mutation File($input: ComplaintInput!) {
  fileComplaint(input: $input) { trackingCode status category filedOn deadline }
}
"""
FOLLOW = """
query Follow($code: String!) {
  complaint(trackingCode: $code) {
    status category categoryLabel filedOn deadline closedOn resolution outcome history { action status at }
  }
}
"""
COMPLAINT_FIELDS = (
    "id kind status subject subjectName department category categoryLabel description filedByKind deadline "
    "workingDaysLeft overdue resolution outcome findingId records { family key } history { action status by note } "
    "attachments { filename mediaType size }"
)
QUEUE = f"""
query Queue($status: String, $overdue: Boolean! = false) {{
  complaints(status: $status, overdue: $overdue) {{ totalOpen totalOverdue items {{ {COMPLAINT_FIELDS} }} }}
}}
"""
RESOLVE = f"""
mutation Resolve($id: Int!, $outcome: String!, $note: String!, $finding: Int) {{
  resolveComplaint(id: $id, outcome: $outcome, note: $note, findingId: $finding) {{ {COMPLAINT_FIELDS} }}
}}
"""
OFFICE_FIELDS = f"{COMPLAINT_FIELDS} contact {{ name phone email }}"
OFFICE_LIST = f"query List($status: String) {{ complaints(status: $status, first: 500) {{ {OFFICE_FIELDS} }} }}"
OFFICE_ONE = f"query One($id: Int!) {{ complaint(id: $id) {{ {OFFICE_FIELDS} }} }}"
ASSIGN = f"""
mutation Assign($id: Int!, $department: String!, $note: String! = "", $from: String) {{
  assignComplaint(id: $id, department: $department, note: $note, fromDepartment: $from) {{ {OFFICE_FIELDS} }}
}}
"""
REJECT = f"""
mutation Reject($id: Int!, $note: String!, $from: String) {{
  rejectComplaint(id: $id, note: $note, fromDepartment: $from) {{ {OFFICE_FIELDS} }}
}}
"""
OFFICE_RESOLVE = f"""
mutation Resolve($id: Int!, $outcome: String!, $note: String!, $finding: Int) {{
  resolveComplaint(id: $id, outcome: $outcome, note: $note, findingId: $finding) {{ {OFFICE_FIELDS} }}
}}
"""
FINDING = "mutation Record($input: FindingInput!) { recordFinding(input: $input) { finding { id subject department } } }"
GOVERNMENT_MUTATIONS = (
    "recordFinding", "revokeFinding", "addToRedList", "cancelListing", "recordMeasureFeedback", "resolveComplaint",
    "fileObjection", "answerObjection", "withdrawObjection", "assignComplaint", "rejectComplaint", "assignCase",
    "applyForRepair",
)


# ---- helpers ------------------------------------------------------------------------------------


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def codes(response: httpx.Response) -> list[str]:
    body = response.json()
    assert body.get("errors"), body
    return [e["extensions"]["code"] for e in body["errors"]]


def message(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["message"])


def admin(hub: RunningHub, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    return hub.http.post("/admin/graphql", json={"query": query, "variables": variables or {}},
                         headers={"Authorization": f"Bearer {hub.token('admin')}"})


def complaint_input(subject: str | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "category": "dishonest-conduct", "description": "该公司在其门店长期以“全市最低价”进行虚假宣传，实际价格高于周边商户。",
        **({"subject": subject} if subject else {}), **changes,
    }


def file(hub: RunningHub, input: dict[str, Any]) -> dict[str, Any]:
    return dict(data(hub.query(FILE, None, {"input": input}))["fileComplaint"])


def follow(hub: RunningHub, code: str) -> httpx.Response:
    return hub.query(FOLLOW, None, {"code": code})


def case_id_of(hub: RunningHub, code: str) -> int:
    """The case id of a tracking code, as the store knows it (only its hash)."""

    async def find(store: Store) -> int:
        async with store.engine.connect() as conn:
            return int((await conn.execute(select(CASES.c.id).where(CASES.c.tracking_hash == tracking_hash(code)))).scalar_one())

    return int(hub.on_store(find))


def count_cases(hub: RunningHub) -> int:
    async def count(store: Store) -> int:
        async with store.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(CASES))).scalar_one())

    return int(hub.on_store(count))


def entries_of(hub: RunningHub, response: httpx.Response) -> list[AuditEntry]:
    """The request's audit entries, in the order the trail stored them (intent entry first)."""
    request_id = response.headers["x-request-id"]

    async def tail(store: Store) -> list[Any]:
        return await AuditTrail(store).tail(2000)

    return [s.entry for s in hub.on_store(tail) if s.entry is not None and s.entry.request_id == request_id]


def all_audit_text(hub: RunningHub) -> str:
    async def tail(store: Store) -> list[Any]:
        return await AuditTrail(store).tail(100_000)

    entries = [s.entry for s in hub.on_store(tail) if s.entry is not None]
    assert len(entries) > 20
    return "\n".join(json.dumps(dataclasses.asdict(e), default=str, ensure_ascii=False) for e in entries)


def finding_by(hub: RunningHub, kind: str, subject: str) -> int:
    """A general finding (一般失信) the department of client `kind` records on `subject`; its id."""
    found = data(hub.query(FINDING, kind, {"input": {
        "subject": subject, "basis": "general-dishonesty", "facts": "经投诉线索核查，存在虚假宣传行为",
        "legalBasis": "《中华人民共和国反不正当竞争法》第八条", "decidedOn": hub.runtime.today().isoformat(),
        "records": [], "measures": [],
    }}))["recordFinding"]["finding"]
    return int(found["id"])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("complaints-hub"), legal_persons=60, natural_persons=20,
                     rate_limits=NO_RATE_LIMITS) as running:
        yield running


# ---- the public contract ----------------------------------------------------------------------------


def test_the_public_contract_files_and_follows_complaints_and_changes_nothing_else(hub: RunningHub) -> None:
    public = hub.runtime.public_schema.as_str()
    [mutation] = re.findall(r"type Mutation \{[^}]*\}", public)
    assert re.findall(r"^  (\w+)\(", mutation, re.M) == ["fileComplaint"]
    assert "complaint(trackingCode: String!): PublicComplaint\n" in public
    assert "fileComplaint(input: ComplaintInput!): ComplaintReceipt!" in public
    for name in GOVERNMENT_MUTATIONS:
        assert f"{name}(" not in public, name
    assert not re.search(r"^  complaints\(", public, re.M) and not re.search(r"^type (OfficeComplaint|ComplaintContact|Complaint) ", public, re.M)
    public_type = re.findall(r"type PublicComplaint \{[^}]*\}", public)[0]
    step_type = re.findall(r"type ComplaintStep \{[^}]*\}", public)[0]
    assert not re.search(r"^\s+(by|byKind|note|department|subject|findingId|contact)\b", public_type + step_type, re.M)

    full = hub.runtime.schema.as_str()
    assert re.search(r"^  resolveComplaint\(", full, re.M) and re.search(r"^  complaints\(", full, re.M)
    assert "fileComplaint(" not in full and not re.search(r"^type (OfficeComplaint|ComplaintContact) ", full, re.M)

    refused = hub.query(RESOLVE, None, {"id": 1, "outcome": "unsubstantiated", "note": "x"})
    assert refused.status_code == 400 and "GRAPHQL_VALIDATION_FAILED" in codes(refused)


# ---- the whole flow ----------------------------------------------------------------------------------


def test_a_complaint_from_filing_to_a_finding(hub: RunningHub) -> None:
    subject = hub.samples["judgment_debtor"]  # the demo subject client speaks for it
    calendar: WorkingCalendar = hub.runtime.calendar
    today = hub.runtime.today()
    before = count_cases(hub)

    # 1. anyone files, with a contact for the credit office and a PDF
    attachment = {"filename": "现场照片说明.pdf", "mediaType": "application/pdf", "contentBase64": base64.b64encode(PDF).decode()}
    filing = hub.query(FILE, None, {"input": complaint_input(
        subject, records=[{"family": "penalties", "key": "新市监罚〔2026〕12号"}], contact=CONTACT, attachments=[attachment],
    )})
    receipt = data(filing)["fileComplaint"]
    code = receipt["trackingCode"]
    assert CODE.fullmatch(code), code
    assert receipt == {"trackingCode": code, "status": "filed", "category": "dishonest-conduct",
                       "filedOn": today.isoformat(), "deadline": calendar.add_working_days(today, 3).isoformat()}
    assert count_cases(hub) == before + 1
    intent, own = entries_of(hub, filing)
    assert intent.detail == {"intent": True, "operation": "File", "fields": ["fileComplaint"]}
    assert own.endpoint == "/public/graphql" and own.client_kind == "public" and own.subjects == [subject]
    case_id = case_id_of(hub, code)
    assert own.detail is not None and own.detail["case"] == {"action": "fileComplaint", "case": case_id, "kind": "complaint", "status": "filed"}

    # 2. the filer follows it, however the code is typed
    typed = "  " + code.lower().replace("-", " ").replace("0", "o").replace("1", "l") + " "
    followed = data(follow(hub, typed))["complaint"]
    [filed_step] = followed["history"]
    assert (filed_step["action"], filed_step["status"]) == ("filed", "filed")
    assert followed["status"] == "filed" and followed["categoryLabel"] == "失信行为举报"
    assert (followed["resolution"], followed["outcome"], followed["closedOn"]) == (None, None, None)
    assert data(follow(hub, code.replace("TS-", "")))["complaint"] == followed  # without the prefix too

    # 3. the credit office sees it with the contact, and triages it to market regulation
    [listed] = [c for c in data(admin(hub, OFFICE_LIST, {"status": "filed"}))["complaints"] if c["id"] == case_id]
    assert listed["contact"] == CONTACT and listed["subject"] == subject and listed["filedByKind"] == "public"
    assert listed["attachments"] == [{"filename": "现场照片说明.pdf", "mediaType": "application/pdf", "size": len(PDF)}]
    assigned = admin(hub, ASSIGN, {"id": case_id, "department": "market", "note": ASSIGN_NOTE})
    moved = data(assigned)["assignComplaint"]
    assert moved["status"] == "assigned" and moved["department"] == "market"
    assert moved["deadline"] == calendar.add_working_days(today, 15).isoformat()
    assert moved["workingDaysLeft"] == 15
    [assign_entry] = [e for e in entries_of(hub, assigned) if not (e.detail or {}).get("intent")]
    assert assign_entry.subjects == [subject]
    assert assign_entry.detail is not None and assign_entry.detail["actions"][0]["action"] == "assignComplaint"

    # 4. the public sees the step, not who took it nor the note
    answer = follow(hub, code)
    followed = data(answer)["complaint"]
    assert [(s["action"], s["status"]) for s in followed["history"]] == [("filed", "filed"), ("assign", "assigned")]
    assert followed["deadline"] == moved["deadline"]
    for hidden in (ASSIGN_NOTE, "market", "demo-admin", subject, *SECRETS):
        assert hidden not in answer.text, hidden

    # 5. the department's queue has it (never the contact); the court's does not; the subject sees nothing
    queue = hub.query(QUEUE, "market", {"status": "assigned"})
    [mine] = [c for c in data(queue)["complaints"]["items"] if c["id"] == case_id]
    assert mine["history"][-1]["note"] == ASSIGN_NOTE and mine["categoryLabel"] == "失信行为举报"
    assert mine["records"] == [{"family": "penalties", "key": "新市监罚〔2026〕12号"}]
    every = data(hub.query(QUEUE, "market", {"status": None}))["complaints"]  # the queue's totals: every open one, counted
    still_open = [c for c in every["items"] if c["status"] not in ("resolved", "rejected")]
    assert every["totalOpen"] == len(still_open) >= 1
    assert every["totalOverdue"] == sum(1 for c in still_open if c["overdue"])
    assert not any(s in queue.text for s in SECRETS)
    assert case_id not in [c["id"] for c in data(hub.query(QUEUE, "court"))["complaints"]["items"]]
    by_subject = hub.query(QUEUE, "subject")
    assert codes(by_subject) == ["FORBIDDEN"] and not any(s in by_subject.text for s in (*SECRETS, "虚假宣传"))
    as_case = hub.query("query($id: Int!) { case(id: $id) { id description } }", "subject", {"id": case_id})
    assert codes(as_case) == ["NOT_FOUND"] and "虚假宣传" not in as_case.text
    assert codes(hub.query(RESOLVE, "court", {"id": case_id, "outcome": "unsubstantiated", "note": "不是我们的"})) == ["NOT_FOUND"]

    # 6. resolving: the cited finding must be market's own, on this subject, and fit the outcome
    courts_finding = finding_by(hub, "court", subject)
    other_subject_finding = finding_by(hub, "market", hub.samples["clean"])
    own_finding = finding_by(hub, "market", subject)
    refusals = (
        ({"outcome": "substantiated", "finding": courts_finding}, "FORBIDDEN", "recorded by courts"),
        ({"outcome": "substantiated", "finding": other_subject_finding}, "BAD_USER_INPUT", "is not a finding on"),
        ({"outcome": "unsubstantiated", "finding": own_finding}, "BAD_USER_INPUT", "only a substantiated"),
        ({"outcome": "proven"}, "BAD_USER_INPUT", "outcome"),
        ({"outcome": "substantiated", "finding": 999_999}, "BAD_USER_INPUT", "is not a finding on"),
    )
    for change, error, text in refusals:
        refused = hub.query(RESOLVE, "market", {"id": case_id, "note": ANSWER, **change})
        assert codes(refused) == [error], change
        assert text in message(refused), (change, message(refused))
    assert data(admin(hub, OFFICE_ONE, {"id": case_id}))["complaint"]["status"] == "assigned"

    resolving = hub.query(RESOLVE, "market", {"id": case_id, "outcome": "substantiated", "note": ANSWER, "finding": own_finding})
    resolved = data(resolving)["resolveComplaint"]
    assert (resolved["status"], resolved["outcome"], resolved["findingId"], resolved["resolution"]) == (
        "resolved", "substantiated", own_finding, ANSWER)
    assert resolved["workingDaysLeft"] is None and not resolved["overdue"]
    [resolve_entry] = [e for e in entries_of(hub, resolving) if not (e.detail or {}).get("intent")]
    assert resolve_entry.client_id == "demo-market" and resolve_entry.subjects == [subject]
    assert resolve_entry.detail is not None and resolve_entry.detail["case"] == {
        "action": "resolveComplaint", "case": case_id, "kind": "complaint", "status": "resolved",
        "outcome": "substantiated", "finding": own_finding,
    }
    again = hub.query(RESOLVE, "market", {"id": case_id, "outcome": "unsubstantiated", "note": "改判"})
    assert codes(again) == ["BAD_USER_INPUT"] and "resolved" in message(again)

    # 7. the filer reads the answer and the outcome — not the finding, not who answered
    answer = follow(hub, code)
    followed = data(answer)["complaint"]
    assert (followed["status"], followed["outcome"], followed["resolution"]) == ("resolved", "substantiated", ANSWER)
    assert followed["closedOn"] == today.isoformat()
    assert [s["action"] for s in followed["history"]] == ["filed", "assign", "resolve"]
    for hidden in (ASSIGN_NOTE, "market", "demo-market", "demo-admin", "finding", *SECRETS):
        assert hidden not in answer.text, hidden
    office = data(admin(hub, OFFICE_ONE, {"id": case_id}))["complaint"]
    assert (office["outcome"], office["findingId"], office["contact"]) == ("substantiated", own_finding, CONTACT)

    # 8. the contact is in no audit entry at all
    audit = all_audit_text(hub)
    assert str(case_id) in audit and ANSWER not in audit
    for secret in SECRETS:
        assert secret not in audit, secret


def test_unknown_and_malformed_tracking_codes(hub: RunningHub) -> None:
    code = file(hub, complaint_input(subjectName="某某超市（无照经营）"))["trackingCode"]
    unknown = new_tracking_code()  # well formed, never issued
    response = follow(hub, unknown)
    assert data(response) == {"complaint": None}
    for typo in (code[:-1] + ("0" if code[-1] != "0" else "1"), code[:-2], code + "7", "TS-UUUUU-UUUUU-UUUUU-UUUUU", "", "x" * 500):
        refused = follow(hub, typo)
        assert codes(refused) == ["BAD_USER_INPUT"], typo
        assert "not a tracking code" in message(refused)
        assert code not in refused.text
    assert data(follow(hub, code))["complaint"]["status"] == "filed"


def test_a_complaint_without_a_subject_code_and_without_contact(hub: RunningHub) -> None:
    receipt = file(hub, complaint_input(subjectName="新城区某培训机构", category="service"))
    case_id = case_id_of(hub, receipt["trackingCode"])
    office = data(admin(hub, OFFICE_ONE, {"id": case_id}))["complaint"]
    assert (office["subject"], office["subjectName"], office["contact"], office["category"]) == (None, "新城区某培训机构", None, "service")
    data(admin(hub, ASSIGN, {"id": case_id, "department": "market"}))
    refused = hub.query(RESOLVE, "market", {"id": case_id, "outcome": "substantiated", "note": ANSWER,
                                            "finding": finding_by(hub, "market", hub.samples["minor_penalty"])})
    assert codes(refused) == ["BAD_USER_INPUT"] and "names no subject code" in message(refused)
    done = data(hub.query(RESOLVE, "market", {"id": case_id, "outcome": "unsubstantiated", "note": "未发现违法行为。"}))
    assert done["resolveComplaint"]["outcome"] == "unsubstantiated" and done["resolveComplaint"]["findingId"] is None


# ---- refused input --------------------------------------------------------------------------------


def test_malformed_complaints_are_refused_with_nothing_stored(hub: RunningHub) -> None:
    subject = hub.samples["clean"]
    wrong_check = subject[:-1] + ("0" if subject[-1] != "0" else "1")
    cases: list[tuple[dict[str, Any], str]] = [
        (complaint_input(subject, category="gossip"), "category"),
        (complaint_input(wrong_check), "subject"),
        (complaint_input(None), "subjectName"),
        (complaint_input(None, subjectName="   "), "subjectName"),
        (complaint_input(subject, description="  "), "description"),
        (complaint_input(subject, description="x" * 4001), "description"),
        (complaint_input(subject, description="举报\u202e内容"), "description"),
        (complaint_input(subject, subjectName="名\x00字"), "subjectName"),
        (complaint_input(subject, contact={}), "contact"),
        (complaint_input(subject, contact={**CONTACT, "email": "not-an-address"}), "contact.email"),
        (complaint_input(subject, contact={**CONTACT, "phone": "call me maybe"}), "contact.phone"),
        (complaint_input(subject, contact={**CONTACT, "name": "乌力吉\n举报人"}), "contact.name"),
        (complaint_input(subject, contact={**CONTACT, "name": "名" * 51}), "contact.name"),
        (complaint_input(subject, records=[{"family": "nonsense", "key": "1"}]), "records"),
        (complaint_input(subject, records=[{"family": "penalties", "key": str(n)} for n in range(21)]), "records"),
        (complaint_input(subject, attachments=[{"filename": "a.pdf", "mediaType": "application/pdf",
                                                "contentBase64": base64.b64encode(b"MZ\x90\x00 not a pdf").decode()}]), "attachments"),
        (complaint_input(subject, attachments=[{"filename": "a.pdf", "mediaType": "application/pdf", "contentBase64": "%%%"}]), "attachments"),
    ]
    before = count_cases(hub)
    for input, field in cases:
        response = hub.query(FILE, None, {"input": input})
        assert codes(response) == ["BAD_USER_INPUT"], (field, response.text)
        assert field in message(response), (field, message(response))
        assert response.json()["data"] is None
        for entry in entries_of(hub, response):
            assert not any(s in json.dumps(dataclasses.asdict(entry), default=str, ensure_ascii=False) for s in SECRETS)
    missing = hub.query(FILE, None, {"input": {"category": "other"}})
    assert missing.status_code == 400 and codes(missing) == ["GRAPHQL_VALIDATION_FAILED"] and "description" in message(missing)
    assert count_cases(hub) == before


def test_a_mutation_is_post_only_and_one_root_field(hub: RunningHub) -> None:
    before = count_cases(hub)
    inline = 'mutation { fileComplaint(input: {category: "other", description: "d", subjectName: "n"}) { trackingCode } }'
    by_get = hub.http.get("/public/graphql", params={"query": inline})
    assert by_get.status_code == 405 and codes(by_get) == ["METHOD_NOT_ALLOWED"]
    two = (
        "mutation Two($a: ComplaintInput!, $b: ComplaintInput!) {"
        " a: fileComplaint(input: $a) { trackingCode } b: fileComplaint(input: $b) { trackingCode } }"
    )
    both = hub.query(two, None, {"a": complaint_input(subjectName="甲"), "b": complaint_input(subjectName="乙")})
    assert both.status_code == 400 and codes(both) == ["BAD_USER_INPUT"] and "Nothing was changed" in message(both)
    assert not [e for e in entries_of(hub, both) if (e.detail or {}).get("intent")]
    assert count_cases(hub) == before


# ---- triage ------------------------------------------------------------------------------------------


def test_triage_acts_on_what_the_office_saw(hub: RunningHub) -> None:
    code = file(hub, complaint_input(hub.samples["severe_penalty"]))["trackingCode"]
    case_id = case_id_of(hub, code)
    refused = hub.query(RESOLVE, "market", {"id": case_id, "outcome": "unsubstantiated", "note": "x"})
    assert codes(refused) == ["NOT_FOUND"]  # not assigned to market: not its case
    unknown = admin(hub, ASSIGN, {"id": case_id, "department": "nowhere"})
    assert codes(unknown) == ["BAD_USER_INPUT"] and "department" in message(unknown)

    data(admin(hub, ASSIGN, {"id": case_id, "department": "market"}))
    stale = admin(hub, ASSIGN, {"id": case_id, "department": "courts"})  # as if it were still filed
    assert codes(stale) == ["BAD_USER_INPUT"] and "no longer with the credit office" in message(stale)
    wrong = admin(hub, REJECT, {"id": case_id, "note": "重复投诉", "from": "tax"})
    assert codes(wrong) == ["BAD_USER_INPUT"] and "with market, not with tax" in message(wrong)
    same = admin(hub, ASSIGN, {"id": case_id, "department": "market", "from": "market"})
    assert codes(same) == ["BAD_USER_INPUT"] and "already with market" in message(same)

    moved = data(admin(hub, ASSIGN, {"id": case_id, "department": "environment", "from": "market", "note": "属生态环境局职责"}))
    assert moved["assignComplaint"]["department"] == "environment"
    assert case_id not in [c["id"] for c in data(hub.query(QUEUE, "market"))["complaints"]["items"]]

    rejected = data(admin(hub, REJECT, {"id": case_id, "note": "与第12号投诉重复，已合并处理。", "from": "environment"}))
    assert rejected["rejectComplaint"]["status"] == "rejected"
    followed = data(follow(hub, code))["complaint"]
    assert followed["status"] == "rejected" and followed["resolution"] == "与第12号投诉重复，已合并处理。"
    assert followed["outcome"] is None
    assert [s["action"] for s in followed["history"]] == ["filed", "assign", "assign", "reject"]
    assert "属生态环境局职责" not in follow(hub, code).text
    after = admin(hub, ASSIGN, {"id": case_id, "department": "market", "from": "environment"})
    assert codes(after) == ["BAD_USER_INPUT"] and "rejected" in message(after)
    no_reason = admin(hub, REJECT, {"id": case_id_of(hub, file(hub, complaint_input(subjectName="丙"))["trackingCode"]), "note": " "})
    assert codes(no_reason) == ["BAD_USER_INPUT"] and "note" in message(no_reason)


def test_the_office_resolves_and_sees_everything_overdue_first(hub: RunningHub) -> None:
    code = file(hub, complaint_input(hub.samples["minor_penalty"], contact={"phone": "+86 138 0471 0000"}))["trackingCode"]
    case_id = case_id_of(hub, code)
    data(admin(hub, ASSIGN, {"id": case_id, "department": "market"}))
    market_finding = finding_by(hub, "market", hub.samples["minor_penalty"])
    done = data(admin(hub, OFFICE_RESOLVE, {"id": case_id, "outcome": "substantiated", "note": ANSWER, "finding": market_finding}))
    assert done["resolveComplaint"]["findingId"] == market_finding
    assert done["resolveComplaint"]["contact"] == {"name": "", "phone": "+86 138 0471 0000", "email": ""}
    listed = data(admin(hub, OFFICE_LIST, {}))["complaints"]
    assert case_id in [c["id"] for c in listed]
    ranks = [(not c["overdue"], c["status"] not in ("filed", "assigned")) for c in listed]
    assert ranks == sorted(ranks)
    bad = admin(hub, OFFICE_LIST, {"status": "closed"})
    assert codes(bad) == ["BAD_USER_INPUT"]


# ---- tracking codes and contacts -------------------------------------------------------------------


def test_tracking_codes_are_random_typable_and_checked() -> None:
    codes_made = {new_tracking_code() for _ in range(2000)}
    assert len(codes_made) == 2000 and all(CODE.fullmatch(c) for c in codes_made)
    body = "".join(next(iter(codes_made)).split("-")[1:])
    # every character position takes every symbol (randomness not fixed anywhere but the check)
    for position in range(19):
        assert len({c.replace("-", "")[2 + position] for c in codes_made}) == 32, position
    code = next(iter(codes_made))
    for typed in (code.lower(), code.replace("-", ""), " ".join(body), body, "ＴＳ－" + "－".join(code.split("-")[1:]),
                  code.replace("-", " — "), code.replace("0", "O").replace("1", "I")):
        assert normalise_tracking_code(typed) == code, typed
    # any single mistyped character and any swap of two neighbours is caught
    for i, ch in enumerate(body):
        for other in ALPHABET:
            if other != ch:
                assert normalise_tracking_code(body[:i] + other + body[i + 1:]) is None, (i, other)
    # and every swap of two neighbours but 0↔Z (the one pair Luhn mod 32 cannot see)
    for made in list(codes_made)[:300]:
        chars = made.replace("-", "")[2:]
        for i in range(19):
            a, b = chars[i], chars[i + 1]
            if a != b and {a, b} != {"0", "Z"}:
                assert normalise_tracking_code(chars[:i] + b + a + chars[i + 2:]) is None, (made, i)
    for wrong in ("", "TS", "TS-" + body[:19], body + "0", body.replace(body[3], "U"), "TSX" + body, 5, None):
        assert normalise_tracking_code(wrong) is None, wrong  # type: ignore[arg-type]
    assert tracking_hash(code) == hashlib.sha256(code.encode()).hexdigest()


def test_contacts() -> None:
    assert Contact.checked(" 王女士 ", None, None) == Contact("王女士", "", "")
    assert Contact.checked(None, "0471-6123456转801", "a.b+c@mail.example.cn").detail() == {
        "phone": "0471-6123456转801", "email": "a.b+c@mail.example.cn"}
    for name, phone, email in ((None, None, None), ("", " ", ""), (None, "1234", None), (None, "123456789012345678901", None),
                               (None, "phone: 123456", None), (None, None, "a@b"), (None, None, "a b@c.cn"),
                               ("x\u202ey", None, None), ("x\ty", None, None)):
        with pytest.raises(CaseInputError):
            Contact.checked(name, phone, email)


# ---- deadlines at real dates, with a fixed clock ------------------------------------------------------


class Clock:
    """A settable clock for the register."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


CST = dt.timezone(dt.timedelta(hours=8))


def at(text: str) -> dt.datetime:
    """A time in Hohhot, as the register's clock gives it: in UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=CST).astimezone(dt.timezone.utc)


async def _desk(url: str, clock: Callable[[], dt.datetime]) -> tuple[Store, ComplaintDesk]:
    store = await Store.open(url)
    return store, ComplaintDesk(CaseRegister(store, WorkingCalendar.load(), standard_case_rules, clock=clock))


async def _file(desk: ComplaintDesk, subject_name: str = "某商户") -> int:
    filed = await desk.file(category="other", categories=standard_case_rules().complaint_categories,
                            description="线索", subject=None, subject_name=subject_name)
    return filed.case.id


async def test_deadlines_count_working_days_across_national_day(store_url: str) -> None:
    clock = Clock(at("2026-09-28T10:00:00"))  # a Monday
    store, desk = await _desk(store_url, clock)
    office = Actor.credit_office("admin")
    try:
        early = await _file(desk)
        # triage: 29, 30 September, then 国庆 1–7 October off: due Thursday 8 October
        assert (await desk.cases.get(early)).deadline == dt.date(2026, 10, 8)
        clock.at = dt.datetime(2026, 9, 30, 16, 30, tzinfo=dt.timezone.utc)  # 00:30 on 1 October in Hohhot
        holiday = await _file(desk)
        filed = await desk.cases.get(holiday)
        # filed on a holiday: 8, 9 and Saturday 10 October (worked, 调休) count
        assert (filed.filed_on, filed.deadline) == (dt.date(2026, 10, 1), dt.date(2026, 10, 10))

        clock.at = at("2026-10-08T17:00:00")
        on_time = await desk.cases.find(kind="complaint", today=dt.date(2026, 10, 8))
        assert [c.overdue(dt.date(2026, 10, 8)) for c in on_time] == [False, False]  # due today is not late
        clock.at = at("2026-10-09T09:00:00")  # Friday: the first is a day late, and listed first
        late = await desk.cases.find(kind="complaint", today=dt.date(2026, 10, 9))
        assert [(c.id, c.overdue(dt.date(2026, 10, 9))) for c in late] == [(early, True), (holiday, False)]
        assert [c.id for c in await desk.cases.find(kind="complaint", today=dt.date(2026, 10, 9), overdue_only=True)] == [early]

        # the department's 15 working days run from the assignment: Sat 10 Oct, 12–16, 19–23, 26–29 October
        moved = await desk.assign(early, "market", "", office)
        assert moved.deadline == dt.date(2026, 10, 29) and not moved.overdue(dt.date(2026, 10, 9))
        assert moved.history[-1].deadline == dt.date(2026, 10, 29)
        assert desk.cases.calendar.working_days_between(dt.date(2026, 10, 9), moved.deadline) == 15
        clock.at = at("2026-10-30T09:00:00")
        assert moved.overdue(dt.date(2026, 10, 30)) and not moved.overdue(dt.date(2026, 10, 29))
        resolved = await desk.resolve(early, "unsubstantiated", "未发现问题", Actor("department", "demo-market", department="market"))
        assert resolved.closed_at == clock.at and not resolved.overdue(dt.date(2026, 11, 30))
    finally:
        await store.close()


# ---- concurrent triage ---------------------------------------------------------------------------------


async def test_concurrent_triage_of_one_complaint_has_one_winner(store_url: str) -> None:
    """Two administrators (two hub processes: two engines) triage the same filed complaint at once."""
    now = Clock(dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.timezone.utc))
    store_a, desk_a = await _desk(store_url, now)
    store_b, desk_b = await _desk(store_url, now)
    office_a, office_b = Actor.credit_office("admin-a"), Actor.credit_office("admin-b")
    try:
        pairs: list[tuple[Any, Any]] = [
            (lambda i: desk_a.assign(i, "market", "", office_a), lambda i: desk_b.assign(i, "courts", "", office_b)),
            (lambda i: desk_a.assign(i, "market", "", office_a), lambda i: desk_b.reject(i, "重复", office_b)),
            (lambda i: desk_a.reject(i, "不属于受理范围", office_a), lambda i: desk_b.reject(i, "重复", office_b)),
        ]
        for first, second in pairs * 3:
            case_id = await _file(desk_a)
            outcomes = await asyncio.gather(first(case_id), second(case_id), return_exceptions=True)
            won = [o for o in outcomes if not isinstance(o, BaseException)]
            lost = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(won) == 1 and len(lost) == 1, outcomes
            assert isinstance(lost[0], CaseInputError) and not isinstance(lost[0], CaseForbidden), lost
            stored = await desk_a.cases.get(case_id)
            assert [s.action for s in stored.history] == ["filed", won[0].history[-1].action]
            assert (stored.status, stored.department) == (won[0].status, won[0].department)
    finally:
        await store_a.close()
        await store_b.close()



def test_the_subject_reported_does_not_see_the_complaint_in_its_access_log(hub: RunningHub) -> None:
    """A complaint's filing and handling name the subject in the audit trail, but its access log
    does not show them: when they happened would tell it that someone reported it."""
    subject = hub.samples["judgment_debtor"]  # the demo subject client speaks for it
    filed = hub.query(FILE, None, {"input": complaint_input(subject)})
    assert filed.status_code == 200 and "errors" not in filed.json()
    looked = hub.query("query($u: String!) { legalPerson(uscc: $u) { name } }", None, {"u": subject})
    log_query = "{ myAccessLog(first: 200) { requestId } }"
    seen = {e["requestId"] for e in data(hub.query(log_query, "subject"))["myAccessLog"]}
    assert looked.headers["x-request-id"] in seen  # an ordinary look at its data is shown
    assert filed.headers["x-request-id"] not in seen
    [entry] = [e for e in entries_of(hub, filed) if not (e.detail or {}).get("intent")]
    assert entry.subjects == [subject]  # the trail itself still names it


def test_a_code_cut_short_or_lengthened_is_never_taken_for_another() -> None:
    """No code begins with its own prefix, so a prefixed code cut short is never read as an
    unprefixed one (it was, once in 32: the check character alone cannot tell)."""
    for _ in range(5000):
        code = new_tracking_code()
        assert not code[3:].startswith("TS")
        assert normalise_tracking_code(code) == code == normalise_tracking_code(code[3:].lower())
        for cut in (code[:-1], code[:-2], code[:-6], code + "7", code[:-1] + ("0" if code[-1] != "0" else "1")):
            assert normalise_tracking_code(cut) is None, (code, cut)
