"""Objections as cases (issue 12): a subject client disputes its own record on `/graphql`, the
record is flagged on every endpoint, the providing department sees it in its queue and answers
within its deadline in working days; the credit office sees everything in the admin API. The
register's deadlines, ordering and serialisation are checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any, Iterator

import httpx
import pytest

from hub_fixture import NO_RATE_LIMITS, RunningHub, running_hub
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.model import Actor, Case, CaseForbidden, CaseInputError, CaseRef
from xinlian.hub.cases.register import CaseRegister
from xinlian.hub.governance.objections import ObjectionRegister
from xinlian.hub.store import Store
from xinlian.policies.cases import standard_case_rules

USCC = "91110000600037341L"
DEBTOR_RECORDS = "query D($u: String!) { legalPerson(uscc: $u) { judgmentDebtorRecords { caseNumber underObjection } } }"
CASE = "id kind status subject department category deadline workingDaysLeft overdue records { family key } history { action status byKind note deadline }"
FILE = f"mutation F($input: ObjectionInput!) {{ fileObjection(input: $input) {{ {CASE} }} }}"
LIST = f"query L($status: String) {{ objections(status: $status) {{ totalOpen totalOverdue items {{ {CASE} }} }} }}"
ANSWER = f"mutation A($id: Int!, $outcome: String!, $note: String!) {{ answerObjection(id: $id, outcome: $outcome, note: $note) {{ {CASE} }} }}"
WITHDRAW = f"mutation W($id: Int!) {{ withdrawObjection(id: $id, note: \"settled\") {{ {CASE} }} }}"


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def codes(response: httpx.Response) -> list[str]:
    body = response.json()
    assert body.get("errors"), body
    return [e["extensions"]["code"] for e in body["errors"]]


def admin(hub: RunningHub, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return data(hub.http.post("/admin/graphql", json={"query": query, "variables": variables or {}},
                              headers={"Authorization": f"Bearer {hub.token('admin')}"}))


def count_cases(hub: RunningHub) -> int:
    return len(admin(hub, "{ cases(first: 500) { id } }")["cases"])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("objections-hub"), rate_limits=NO_RATE_LIMITS) as running:
        yield running


def debtor_record(hub: RunningHub) -> tuple[str, str]:
    subject = hub.samples["judgment_debtor"]
    [record] = data(hub.query(DEBTOR_RECORDS, "department", {"u": subject}))["legalPerson"]["judgmentDebtorRecords"]
    return subject, record["caseNumber"]


def flagged(hub: RunningHub, subject: str, kind: str | None) -> bool:
    [record] = data(hub.query(DEBTOR_RECORDS, kind, {"u": subject}))["legalPerson"]["judgmentDebtorRecords"]
    return bool(record["underObjection"])


def test_a_subject_disputes_its_record_and_the_court_answers_it(hub: RunningHub) -> None:
    subject, case_number = debtor_record(hub)
    before = count_cases(hub)
    filed = hub.query(FILE, "subject", {"input": {
        "family": "judgment_debtor_records", "recordKey": case_number, "grounds": "inconsistent-with-decision",
        "reason": "判决已履行完毕，法院已出具结案通知书",
    }})
    case = data(filed)["fileObjection"]
    today = hub.runtime.today()
    assert (case["status"], case["subject"], case["department"], case["category"]) == ("open", subject, "courts", "inconsistent-with-decision")
    assert dt.date.fromisoformat(case["deadline"]) == hub.runtime.calendar.add_working_days(today, 10)
    assert case["workingDaysLeft"] == 10 and case["overdue"] is False
    assert [(s["action"], s["status"], s["byKind"]) for s in case["history"]] == [("filed", "open", "subject")]
    assert count_cases(hub) == before + 1
    # the record is disputed on every endpoint at once (filed through this hub)
    assert flagged(hub, subject, None) and flagged(hub, subject, "department") and flagged(hub, subject, "subject")
    # the audit entry names the subject and the case
    [entry] = [e for e in hub.audit_entries(filed.headers["x-request-id"]) if not (e.detail or {}).get("intent")]
    assert entry.subjects == [subject] and entry.detail["case"]["case"] == case["id"]

    # the court's queue has it; the market's does not; the market cannot answer it
    court_queue = data(hub.query(LIST, "court", {"status": "open"}))["objections"]
    assert case["id"] in [c["id"] for c in court_queue["items"]] and court_queue["totalOpen"] >= 1
    assert case["id"] not in [c["id"] for c in data(hub.query(LIST, "market"))["objections"]["items"]]
    refused = hub.query(ANSWER, "market", {"id": case["id"], "outcome": "corrected", "note": "x"})
    assert codes(refused) == ["NOT_FOUND"]
    assert codes(hub.query(ANSWER, "court", {"id": case["id"], "outcome": "withdrawn", "note": "x"})) == ["BAD_USER_INPUT"]

    answered = data(hub.query(ANSWER, "court", {"id": case["id"], "outcome": "upheld", "note": "经核实，该案尚未结案"}))["answerObjection"]
    assert answered["status"] == "upheld" and answered["workingDaysLeft"] is None
    assert [s["action"] for s in answered["history"]] == ["filed", "uphold"]
    assert not flagged(hub, subject, None)
    # a second answer is told what the first did; the subject sees the outcome
    again = hub.query(ANSWER, "court", {"id": case["id"], "outcome": "corrected", "note": "x"})
    assert codes(again) == ["BAD_USER_INPUT"] and "is upheld" in again.json()["errors"][0]["message"]
    mine = data(hub.query(LIST, "subject"))["objections"]["items"]
    assert {c["id"]: c["status"] for c in mine}[case["id"]] == "upheld"
    # the credit office sees it with its whole history
    seen = admin(hub, "query($id: Int!) { case(id: $id) { status history { action byKind } } }", {"id": case["id"]})["case"]
    assert seen == {"status": "upheld", "history": [{"action": "filed", "byKind": "subject"}, {"action": "uphold", "byKind": "department"}]}


def test_the_filer_withdraws_and_others_may_not(hub: RunningHub) -> None:
    subject, case_number = debtor_record(hub)
    case = data(hub.query(FILE, "subject", {"input": {
        "family": "judgment_debtor_records", "recordKey": case_number, "grounds": "wrong", "reason": "金额有误",
    }}))["fileObjection"]
    assert codes(hub.query(WITHDRAW, "court", {"id": case["id"]})) == ["FORBIDDEN"]  # the court answers, it does not withdraw
    withdrawn = data(hub.query(WITHDRAW, "subject", {"id": case["id"]}))["withdrawObjection"]
    assert withdrawn["status"] == "withdrawn" and not flagged(hub, subject, None)


def test_bad_objections_are_refused_and_nothing_is_stored(hub: RunningHub) -> None:
    subject, case_number = debtor_record(hub)
    before = count_cases(hub)
    base = {"family": "judgment_debtor_records", "recordKey": case_number, "grounds": "wrong", "reason": "x"}
    cases = [
        ("subject", {**base, "grounds": "i-dont-like-it"}, "BAD_USER_INPUT"),
        ("subject", {**base, "recordKey": "（2020）内0102执99999号"}, "BAD_USER_INPUT"),  # no such record at the court
        ("subject", {**base, "family": "registration"}, "BAD_USER_INPUT"),  # not a keyed family
        ("subject", {**base, "reason": "   "}, "BAD_USER_INPUT"),
        ("subject", {**base, "reason": "a\u202eb"}, "BAD_USER_INPUT"),  # a bidi control
        ("subject", {**base, "subject": USCC}, "FORBIDDEN"),  # another subject's record
        ("subject", {**base, "subject": "91110000600037341N"}, "BAD_USER_INPUT"),  # a bad check character
        ("bank", base, "FORBIDDEN"),  # a bank does not file objections
        ("court", base, "BAD_USER_INPUT"),  # a department names the subject
        ("subject", {**base, "attachments": [{"filename": "a.pdf", "mediaType": "application/pdf", "contentBase64": "not base64!"}]}, "BAD_USER_INPUT"),
        ("subject", {**base, "attachments": [{"filename": "a.pdf", "mediaType": "application/pdf", "contentBase64": "aGVsbG8="}]}, "BAD_USER_INPUT"),  # not a PDF
    ]
    for kind, given, expected in cases:
        assert codes(hub.query(FILE, kind, {"input": given})) == [expected], given
    assert count_cases(hub) == before
    assert subject and not flagged(hub, subject, None)
    # the public endpoint has no objection mutation at all
    public = hub.http.post("/public/graphql", json={"query": FILE, "variables": {"input": base}})
    assert public.status_code == 400 and {e["extensions"]["code"] for e in public.json()["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}


def test_a_department_files_on_a_subject_s_record_with_an_attachment(hub: RunningHub) -> None:
    subject, case_number = debtor_record(hub)
    pdf = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"  # a tiny PDF
    case = data(hub.query(FILE, "market", {"input": {
        "subject": subject, "family": "judgment_debtor_records", "recordKey": case_number, "grounds": "duplicate",
        "reason": "与本局登记信息重复", "attachments": [{"filename": "../../说明.pdf", "mediaType": "application/pdf", "contentBase64": pdf}],
    }}))["fileObjection"]
    assert case["department"] == "courts" and case["history"][0]["byKind"] == "department"
    seen = admin(hub, "query($id: Int!) { case(id: $id) { attachments { filename mediaType size sha256 } } }", {"id": case["id"]})["case"]
    [attachment] = seen["attachments"]
    assert attachment["filename"] == "说明.pdf" and attachment["mediaType"] == "application/pdf" and attachment["size"] > 0
    stored = hub.data_dir / "attachments" / attachment["sha256"][:2] / attachment["sha256"]
    assert stored.exists()
    # the market filed it: it sees it in its queue, may withdraw it, may not answer it
    assert case["id"] in [c["id"] for c in data(hub.query(LIST, "market"))["objections"]["items"]]
    assert codes(hub.query(ANSWER, "market", {"id": case["id"], "outcome": "corrected", "note": "x"})) == ["FORBIDDEN"]
    assert data(hub.query(WITHDRAW, "market", {"id": case["id"]}))["withdrawObjection"]["status"] == "withdrawn"


# ---- the register: deadlines, overdue first, serialised steps -------------------------------------


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


def hohhot(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone(dt.timedelta(hours=8)))


async def test_deadlines_count_working_days_across_holidays_and_adjusted_weekends(store_url: str) -> None:
    store = await Store.open(store_url)
    clock = Clock(hohhot(dt.date(2026, 9, 28)))
    cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules, clock=clock)
    objections = ObjectionRegister(cases)
    try:
        # Mon 28 Sep 2026: 29-30 Sep, 国庆 1-7 Oct off, Sat 10 Oct worked -> the 10th working day is Fri 16 Oct
        first = await objections.file(USCC, "penalties", "罚1号", "wrong", "office")
        assert (first.filed_on, first.deadline) == (dt.date(2026, 9, 28), dt.date(2026, 10, 16))
        # filed at 23:30 UTC on 8 Oct = 9 Oct in Hohhot: Sat 10 Oct (worked) is the first day -> Thu 22 Oct
        clock.moment = dt.datetime(2026, 10, 8, 23, 30, tzinfo=dt.timezone.utc)
        second = await objections.file(USCC, "penalties", "罚2号", "wrong", "office")
        assert (second.filed_on, second.deadline) == (dt.date(2026, 10, 9), dt.date(2026, 10, 22))
        # on its deadline it is not overdue; the day after it is, and it comes first
        assert not first.overdue(dt.date(2026, 10, 16)) and first.overdue(dt.date(2026, 10, 17))
        listed = await cases.find(kind="objection", today=dt.date(2026, 10, 17))
        assert [c.id for c in listed] == [first.id, second.id]
        assert [c.id for c in await cases.find(kind="objection", today=dt.date(2026, 10, 17), overdue_only=True)] == [first.id]
        assert [c.id for c in await cases.find(kind="objection", today=dt.date(2026, 10, 16), overdue_only=True)] == []
        # closed cases go after open ones, and are never overdue
        closed = await objections.close(first.id, "corrected", "fixed at the source", "office")
        assert not closed.overdue(dt.date(2027, 1, 1)) and closed.closed_at is not None
        assert [c.id for c in await cases.find(kind="objection", today=dt.date(2026, 10, 30))] == [second.id, first.id]
        counts = await cases.counts(dt.date(2026, 10, 23))
        assert counts["objection"] == {"open": 1, "overdue": 1, "closed": 1}
    finally:
        await store.close()


async def test_two_answers_at_once_are_serialised_and_one_wins(store_url: str) -> None:
    store = await Store.open(store_url)
    cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules)
    objections = ObjectionRegister(cases)
    courts = Actor("department", "demo-court", department="courts")
    try:
        case = await objections.file(USCC, "judgment_debtor_records", "（2025）内0102执1号", "paid", "office", department="courts")
        for _ in range(3):  # several rounds: the race is real, not lucky
            results = await asyncio.gather(
                objections.close(case.id, "corrected", "corrected at the court", courts),
                objections.close(case.id, "upheld", "the record stands", courts),
                return_exceptions=True,
            )
            won = [r for r in results if not isinstance(r, BaseException)]
            lost = [r for r in results if isinstance(r, BaseException)]
            if won:
                assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], CaseInputError)
                assert "cannot be moved" in str(lost[0])
                final = await cases.get(case.id)
                assert final.status == won[0].status and [s.action for s in final.history][-1] in ("correct", "uphold")
                assert len(final.history) == 2  # exactly one closing step was written
                break
            case = await objections.file(USCC, "judgment_debtor_records", "（2025）内0102执1号", "paid", "office", department="courts")
        else:
            pytest.fail("no answer won")
        # a department the case is not with may not answer it
        other = await objections.file(USCC, "penalties", "罚9号", "wrong", "office", department="market")
        with pytest.raises(CaseForbidden):
            await objections.close(other.id, "corrected", "x", courts)
    finally:
        await store.close()


async def test_two_filings_on_one_record_at_once_file_one(store_url: str) -> None:
    """Two hub processes (two stores on one database) file against the same record at the same
    moment: one is filed, the other refused naming it — on PostgreSQL the check and the insert
    run under one lock per subject."""
    first, second = await Store.open(store_url), await Store.open(store_url)
    registers = [ObjectionRegister(CaseRegister(s, WorkingCalendar.load(), standard_case_rules)) for s in (first, second)]
    try:
        for round_ in range(3):
            ref = f"罚{100 + round_}号"
            results = await asyncio.gather(
                *(r.file(USCC, "penalties", ref, f"不实 {i}", "office", department="market") for i, r in enumerate(registers)),
                return_exceptions=True,
            )
            filed = [r for r in results if isinstance(r, Case)]
            refused = [r for r in results if isinstance(r, BaseException)]
            assert len(filed) == 1 and len(refused) == 1, results
            assert isinstance(refused[0], CaseInputError) and f"objection {filed[0].id} against this record is open" in str(refused[0])
            open_ = [c for c in await registers[0].list(subject=USCC) if c.records[0].key == ref]
            assert [c.id for c in open_] == [filed[0].id]
    finally:
        await first.close()
        await second.close()


async def test_a_filing_that_fails_leaves_nothing(store_url: str) -> None:
    store = await Store.open(store_url)
    cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules)
    try:
        with pytest.raises(CaseInputError):
            await cases.file("objection", Actor.credit_office("office"), category="wrong", description="x", subject=USCC,
                             records=[CaseRef("registration", "x")])
        with pytest.raises(CaseInputError):
            await cases.file("objection", Actor.credit_office("office"), category="wrong", description="", subject=USCC)
        assert await cases.find() == []
    finally:
        await store.close()


# ---- after review: who is the filer, duplicates, days left, provisional deadlines, attachments -----


def test_a_subject_client_is_the_filer_only_of_its_subject_s_cases(hub: RunningHub) -> None:
    subject, case_number = debtor_record(hub)
    case = data(hub.query(FILE, "subject", {"input": {
        "family": "judgment_debtor_records", "recordKey": case_number, "grounds": "wrong", "reason": "金额有误",
    }}))["fileObjection"]
    # the same record again while it is open: refused, naming the open one, nothing stored
    before = count_cases(hub)
    again = hub.query(FILE, "subject", {"input": {
        "family": "judgment_debtor_records", "recordKey": case_number, "grounds": "duplicate", "reason": "再次提出",
    }})
    assert codes(again) == ["BAD_USER_INPUT"] and f"objection {case['id']} against this record is open" in again.json()["errors"][0]["message"]
    assert count_cases(hub) == before
    # a department client without a department (or without the cases scope) is no department here
    assert codes(hub.query(FILE, "department", {"input": {
        "subject": subject, "family": "judgment_debtor_records", "recordKey": case_number, "grounds": "wrong", "reason": "x",
    }})) == ["FORBIDDEN"]
    assert codes(hub.query(LIST, "department")) == ["FORBIDDEN"]
    # the register: the client id that filed is no filer once it speaks for another subject
    rebound = Actor("subject", "demo-subject", subject=USCC)
    same = Actor("subject", "demo-subject", subject=subject)

    async def roles() -> tuple[Any, Any]:
        store = await Store.open(hub.runtime.settings.database_url)
        try:
            register = CaseRegister(store, WorkingCalendar.load(), standard_case_rules)
            found = await register.get(case["id"])
            return register.roles(found, rebound), (register.roles(found, same), register.may_see(found, rebound))
        finally:
            await store.close()

    other, (own, seen) = asyncio.run(roles())
    assert other == frozenset() and not seen and own
    assert data(hub.query(WITHDRAW, "subject", {"id": case["id"]}))["withdrawObjection"]["status"] == "withdrawn"


def test_days_left_after_the_deadline_and_provisional_deadlines() -> None:
    from xinlian.hub.executor.case_fields import case_view

    calendar = WorkingCalendar.load()
    moment = hohhot(dt.date(2026, 9, 28))
    case = Case(
        id=1, kind="objection", subject=USCC, subject_name="", status="open", department="market", filer_kind="subject",
        filer="c", category="wrong", records=(), description="x", detail={}, filed_at=moment, filed_on=dt.date(2026, 9, 28),
        deadline=dt.date(2026, 10, 16), closed_at=None, resolution="",
    )
    assert case.working_days_left(dt.date(2026, 10, 16), calendar) == 0  # due today
    assert case.working_days_left(dt.date(2026, 10, 15), calendar) == 1
    saturday = case_view(case, dt.date(2026, 10, 17), calendar, 2)  # the day after a Friday deadline: a Saturday
    assert (saturday.working_days_left, saturday.overdue, saturday.due_soon) == (-1, True, False)
    assert case_view(case, dt.date(2026, 10, 20), calendar, 2).working_days_left == -2
    assert case_view(case, dt.date(2026, 10, 14), calendar, 2).due_soon and not case_view(case, dt.date(2026, 10, 13), calendar, 2).due_soon
    assert not saturday.deadline_provisional
    # filed 18 Dec 2026: the 10th working day is in 2027, counted weekends only until its notice is loaded
    late = dataclasses.replace(case, filed_on=dt.date(2026, 12, 18), deadline=calendar.add_working_days(dt.date(2026, 12, 18), 10))
    assert late.deadline == dt.date(2027, 1, 1) and case_view(late, dt.date(2026, 12, 18), calendar, 2).deadline_provisional


async def test_attachments_follow_the_policy_in_force_and_a_refused_one_writes_nothing(tmp_path: Any, store_url: str) -> None:
    from xinlian.hub.cases.attachments import AttachmentPolicy, LocalAttachments
    from xinlian.hub.cases.register import Upload
    from xinlian.policies.cases import AttachmentRules, CaseRules

    store = await Store.open(store_url)
    rules = CaseRules(attachments=AttachmentRules(max_mb=20, max_per_case=3, media_types=("application/pdf",)))
    files = LocalAttachments.in_data_dir(tmp_path, AttachmentPolicy.widest())
    cases = CaseRegister(store, WorkingCalendar.load(), lambda: rules, attachments=files)
    pdf, png = b"%PDF-1.4\n" + b"x" * (11 * 1024 * 1024), b"\x89PNG\r\n\x1a\n" + b"x" * 100
    try:
        with pytest.raises(CaseInputError, match="only PDF"):  # the policy takes PDF only; the PNG comes second
            await cases.file("objection", Actor.credit_office("o"), category="wrong", description="x", subject=USCC,
                             uploads=[Upload("a.pdf", "application/pdf", b"%PDF-1.4\nsmall"), Upload("b.png", "image/png", png)])
        assert not (tmp_path / "attachments").exists() or not any((tmp_path / "attachments").rglob("*"))
        filed = await cases.file("objection", Actor.credit_office("o"), category="wrong", description="x", subject=USCC,
                                 uploads=[Upload("big.pdf", "application/pdf", pdf)])  # 11 MB: within the policy's 20
        assert filed.attachments[0].size == len(pdf)
        with pytest.raises(CaseInputError, match="at most 3"):
            await cases.file("objection", Actor.credit_office("o"), category="wrong", description="x", subject=USCC,
                             uploads=[Upload(f"{i}.pdf", None, b"%PDF-1.4\n") for i in range(4)])
    finally:
        await store.close()


def test_a_subject_client_bound_to_no_subject_sees_no_queue_and_no_totals(hub: RunningHub) -> None:
    """Review: an unbound subject client's scope named no subject, and the totals counted every
    open objection and repair application of the district."""
    admin = {"Authorization": f"Bearer {hub.token('admin')}"}
    created = hub.http.post("/admin/graphql", headers=admin, json={"query": """mutation {
        createClient(name: "未绑定门户", kind: "subject", clientId: "subject-unbound") { clientSecret } }"""}).json()
    secret = created["data"]["createClient"]["clientSecret"]
    token = hub.http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=("subject-unbound", secret)).json()
    for query in (LIST, "{ repairs { totalOpen items { id } } }"):
        response = hub.http.post("/graphql", json={"query": query},
                                 headers={"Authorization": f"Bearer {token['access_token']}"})
        body = response.json()
        assert body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], body
        assert "bound to no subject" in body["errors"][0]["message"]


async def test_queue_totals_count_every_open_case_not_the_page(store_url: str) -> None:
    store = await Store.open(store_url)
    cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules)
    try:
        for i in range(4):
            await cases.file("objection", Actor("subject", "c", subject=USCC), category="wrong", description="x",
                             subject=USCC, department="market", records=[CaseRef("penalties", f"罚{i}号")])
        today = hohhot(dt.date.today()).date()
        assert await cases.tally("objection", today, [{"subject": USCC}]) == (4, 0)
        assert await cases.tally("objection", today + dt.timedelta(days=60), [{"department": "market"}, {"filer": ("subject", "c")}]) == (4, 4)
        assert await cases.tally("objection", today, [{"department": "courts"}]) == (0, 0)
        assert await cases.tally("objection", today, [{"subject": None}]) == (0, 0)  # a scope naming nothing: nothing
    finally:
        await store.close()
