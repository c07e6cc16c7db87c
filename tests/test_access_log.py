"""A subject's access log: who looked at its data, when, which fields, for what purpose.

Unit tests write entries through the real `AuditTrail` on SQLite and PostgreSQL and read them
back with `SubjectAccessLog`; the end-to-end test asks a running hub about the demo's
judgment debtor as the public and as a department, then reads `myAccessLog` with the
subject's own token.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, AsyncIterator, Iterator

import pytest

from hub_fixture import RunningHub, running_hub
from xinlian.hub.audit import AuditEntry, AuditTrail
from xinlian.hub.audit.access_log import AccessLogItem, SubjectAccessLog, is_data_access
from xinlian.hub.auth.clients import ClientRegistry
from xinlian.hub.store import Store

A = "91150102MA0N8G7Y3C"  # the subject whose log is read (any 18 characters do for the log)
B = "91150102MA0N9K2F4D"
PERSON = "15010219800101002X"
T0 = dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.timezone.utc)


def entry(minutes: int, subjects: list[str], **kw: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "at": T0 + dt.timedelta(minutes=minutes),
        "request_id": f"req-{minutes}",
        "endpoint": "/graphql",
        "client_id": None,
        "client_kind": None,
        "outcome": "ok",
        "policy_version": "default-1",
        "subjects": subjects,
    }
    values.update(kw)
    if values["endpoint"] == "/public/graphql":
        values.update(client_id=None, client_kind="public")  # as the endpoint records it
    return AuditEntry(**values)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    store = await Store.open(store_url)
    registry = ClientRegistry(store)
    await registry.create("新城区市场监督管理局", "department", client_id="dept-market")
    await registry.create("内蒙古银行呼和浩特新城支行", "bank", client_id="bank-1")
    await registry.create("新城区信用平台管理员", "admin", client_id="admin-1")
    try:
        yield store
    finally:
        await store.close()


async def record(store: Store, *entries: AuditEntry) -> list[int]:
    trail = AuditTrail(store)
    await trail.start()
    try:
        return [await trail.record(e) for e in entries]
    finally:
        await trail.stop()


async def test_the_log_lists_who_saw_what_newest_first(store: Store) -> None:
    seqs = await record(
        store,
        entry(0, [A], endpoint="/public/graphql", released=["registration.name", "penalties.decision_number"]),
        entry(1, [A, B], client_id="dept-market", client_kind="department",
              released=["registration.contact_phone", "registration.name"], denied=["tax_credit.tax_paid"]),
        entry(2, [B], client_id="bank-1", client_kind="bank", purpose="loan-review", released=["tax_credit.tax_paid"]),
        entry(3, [A], client_id="bank-1", client_kind="bank", purpose="loan-review",
              released=["tax_credit.tax_paid"], masked=["tax_credit.tax_paid"], outcome="partial",
              errors=["UPSTREAM_UNAVAILABLE"], remote_addr="10.1.2.3", operation_name="LoanCheck"),
    )
    page = await SubjectAccessLog(store).entries(A)
    assert page.next_before is None
    assert [i.seq for i in page.items] == [seqs[3], seqs[1], seqs[0]]  # B's own entry is not in A's log
    bank, department, public = page.items
    assert bank == AccessLogItem(
        seq=seqs[3], at=T0 + dt.timedelta(minutes=3), request_id="req-3",
        client_id="bank-1", client_name="内蒙古银行呼和浩特新城支行", client_kind="bank",
        endpoint="/graphql", purpose="loan-review",
        released=["tax_credit.tax_paid"], masked=["tax_credit.tax_paid"], denied=[],
        outcome="partial", policy_version="default-1",
    )
    assert (department.client_name, department.client_kind) == ("新城区市场监督管理局", "department")
    assert department.released == ["registration.contact_phone", "registration.name"]  # the request's fields
    assert department.denied == ["tax_credit.tax_paid"]
    assert (public.client_id, public.client_name, public.client_kind, public.endpoint) == (
        None, None, "public", "/public/graphql"
    )
    assert public.released == ["penalties.decision_number", "registration.name"]
    document = bank.to_document()
    assert document["at"] == "2026-04-01T08:03:00.000000Z" and document["clientName"] == "内蒙古银行呼和浩特新城支行"
    # what the subject never learns: the request's other subjects, the caller's address, the operation
    assert not {"subjects", "remoteAddr", "remote_addr", "operationName", "errors"} & set(document)


async def test_only_data_accesses_are_listed(store: Store) -> None:
    seqs = await record(
        store,
        entry(0, [A], client_id="admin-1", client_kind="admin", endpoint="/admin/graphql",
              detail={"action": "recordObjection"}),
        entry(1, [A], client_id="admin-1", client_kind="admin", endpoint="/admin/graphql",
              detail={"dryRun": True, "policyVersion": "v7"}, released=["registration.name"]),
        entry(2, [A], client_id="admin-1", client_kind="admin", endpoint="cli", detail={"action": "grantConsent"}),
        entry(3, [A], client_id="bank-1", client_kind="bank", outcome="alert", errors=["HARVEST_CAP_EXCEEDED"],
              detail={"alert": "authorized-subject-cap", "cap": 500, "window": "day"}),
        entry(4, [A], client_id="bank-1", client_kind="bank", outcome="rejected", errors=["REQUEST_TIMEOUT"]),
        entry(5, [], client_id="bank-1", client_kind="bank", outcome="rejected", errors=["RATE_LIMITED"]),
    )
    page = await SubjectAccessLog(store).entries(A)
    assert [(i.seq, i.endpoint, i.outcome) for i in page.items] == [
        (seqs[4], "/graphql", "rejected"),  # a refused or failed request still asked about the subject
        (seqs[1], "/admin/graphql", "ok"),  # a policy dry run over the subject's records
    ]


def test_what_counts_as_a_data_access() -> None:
    assert is_data_access(entry(0, [A], endpoint="/public/graphql"))
    assert is_data_access(entry(0, [A], outcome="error"))
    assert not is_data_access(entry(0, [A], outcome="alert"))
    assert not is_data_access(entry(0, [A], endpoint="/admin/graphql", client_id="admin-1"))
    assert not is_data_access(entry(0, [A], endpoint="/admin/graphql", detail={"dryRun": "yes"}))
    assert is_data_access(entry(0, [A], endpoint="/admin/graphql", detail={"dryRun": True}))
    assert not is_data_access(entry(0, [A], endpoint="cli"))


async def test_pages_follow_one_another_without_gaps_or_repeats(store: Store) -> None:
    entries = [entry(i, [A] if i % 3 else [A, B], client_id="dept-market", client_kind="department") for i in range(7)]
    entries.insert(4, entry(100, [B], client_id="bank-1", client_kind="bank"))
    seqs = await record(store, *entries)
    wanted = [s for s, e in zip(seqs, entries) if A in e.subjects][::-1]
    log = SubjectAccessLog(store)
    pages, before = [], None
    while True:
        page = await log.entries(A, first=3, before_seq=before)
        pages.append([i.seq for i in page.items])
        if page.next_before is None:
            break
        assert page.next_before == page.items[-1].seq
        before = page.next_before
    assert pages == [wanted[0:3], wanted[3:6], wanted[6:7]]
    exact = await log.entries(A, first=7)
    assert [i.seq for i in exact.items] == wanted and exact.next_before is None  # no empty page after it


async def test_a_page_is_filled_past_entries_that_are_not_accesses(store: Store) -> None:
    admin = [entry(10 + i, [A], client_id="admin-1", client_kind="admin", endpoint="/admin/graphql",
                   detail={"action": "note"}) for i in range(230)]
    seqs = await record(store, entry(0, [A], endpoint="/public/graphql"), entry(1, [A], endpoint="/public/graphql"),
                        *admin, entry(500, [A], client_id="bank-1", client_kind="bank"))
    page = await SubjectAccessLog(store).entries(A, first=2)
    assert [i.seq for i in page.items] == [seqs[-1], seqs[1]] and page.next_before == seqs[1]
    last = await SubjectAccessLog(store).entries(A, first=2, before_seq=page.next_before)
    assert [i.seq for i in last.items] == [seqs[0]] and last.next_before is None


async def test_since_bounds_the_log_by_time(store: Store) -> None:
    seqs = await record(store, *(entry(i * 60, [PERSON], endpoint="/public/graphql") for i in range(4)))
    page = await SubjectAccessLog(store).entries(PERSON, since=T0 + dt.timedelta(hours=2))
    assert [i.seq for i in page.items] == [seqs[3], seqs[2]]
    assert (await SubjectAccessLog(store).entries(PERSON, since=T0 + dt.timedelta(hours=9))).items == []


async def test_identifiers_are_matched_as_stored(store: Store) -> None:
    [seq] = await record(store, entry(0, [PERSON], endpoint="/public/graphql"))
    page = await SubjectAccessLog(store).entries(" " + PERSON.lower() + " ")
    assert [i.seq for i in page.items] == [seq]
    assert (await SubjectAccessLog(store).entries("91150102MA0N8G7Y3")).items == []  # no prefix matching


async def test_a_client_no_longer_registered_keeps_its_id_without_a_name(store: Store) -> None:
    await record(store, entry(0, [A], client_id="gone-agency", client_kind="agency"))
    [item] = (await SubjectAccessLog(store).entries(A)).items
    assert (item.client_id, item.client_name, item.client_kind) == ("gone-agency", None, "agency")


async def test_an_empty_log(store: Store) -> None:
    page = await SubjectAccessLog(store).entries(A)
    assert page.items == [] and page.next_before is None


@pytest.mark.parametrize("first", [0, -1, 201, True])
async def test_first_is_bounded(store: Store, first: int) -> None:
    with pytest.raises(ValueError, match="first must be between 1 and 200"):
        await SubjectAccessLog(store).entries(A, first=first)


async def test_naive_times_and_empty_subjects_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await SubjectAccessLog(store).entries(A, since=dt.datetime(2026, 4, 1))
    with pytest.raises(ValueError):
        await SubjectAccessLog(store).entries("  ")


async def test_first_200_is_served(store: Store) -> None:
    seqs = await record(store, *(entry(i, [A], endpoint="/public/graphql") for i in range(205)))
    page = await SubjectAccessLog(store).entries(A, first=200)
    assert len(page.items) == 200 and page.items[0].seq == seqs[-1] and page.next_before == seqs[5]


# ---- end to end: myAccessLog on a running hub ------------------------------------------------
MY_LOG = """
query MyLog($first: Int, $before: Int) {
  myAccessLog(first: $first, before: $before) {
    seq at requestId clientId clientName clientKind endpoint purpose released masked denied outcome policyVersion
  }
}
"""
REGISTRATION = "query R($u: String!) { legalPerson(uscc: $u) { uscc name registration { status } } }"
DEPARTMENT_VIEW = "query D($u: String!) { legalPerson(uscc: $u) { name registration { contactPhone } } }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("access-log-hub")) as running:
        yield running


def test_the_subject_sees_who_accessed_its_data(hub: RunningHub) -> None:
    uscc = hub.samples["judgment_debtor"]
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    public = hub.query(REGISTRATION, None, {"u": uscc})
    assert public.status_code == 200 and public.json()["data"]["legalPerson"]["uscc"] == uscc, public.text
    department = hub.query(DEPARTMENT_VIEW, "department", {"u": uscc})
    assert department.status_code == 200 and department.json()["data"]["legalPerson"]["name"], department.text
    other = hub.query(REGISTRATION, "department", {"u": hub.samples["multi_department_penalties"]})
    assert other.status_code == 200, other.text

    response = hub.query(MY_LOG, "subject", {"first": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    log = body["data"]["myAccessLog"]
    assert len(log) == 2, log  # the other company's request is not in this subject's log
    by_department, by_public = log
    assert by_department["seq"] > by_public["seq"]
    assert by_department["clientId"] == hub.clients["department"]["client_id"] == "demo-department"
    assert by_department["clientName"] == "新城区发展和改革局（社会信用体系建设办公室）"
    assert by_department["clientKind"] == "department" and by_department["endpoint"] == "/graphql"
    assert set(by_department["released"]) == {"registration.name", "registration.contact_phone"}
    assert by_public["clientId"] is None and by_public["clientName"] is None and by_public["clientKind"] == "public"
    assert by_public["endpoint"] == "/public/graphql"
    assert set(by_public["released"]) == {"registration.name", "registration.status"}
    assert public.headers["x-request-id"] == by_public["requestId"]
    assert department.headers["x-request-id"] == by_department["requestId"]
    for item in log:
        at = dt.datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
        assert before <= at <= dt.datetime.now(dt.timezone.utc)
        assert item["outcome"] == "ok" and item["policyVersion"]

    # reading the log does not add to it; the next page starts below the last seq
    again = hub.query(MY_LOG, "subject", {"first": 1}).json()["data"]["myAccessLog"]
    assert [i["seq"] for i in again] == [by_department["seq"]]
    older = hub.query(MY_LOG, "subject", {"first": 1, "before": by_department["seq"]}).json()["data"]["myAccessLog"]
    assert [i["seq"] for i in older] == [by_public["seq"]]


def test_only_the_subject_may_read_its_access_log(hub: RunningHub) -> None:
    for kind in ("department", "bank", "admin"):
        body = hub.query(MY_LOG, kind).json()
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN" and error["path"] == ["myAccessLog"], error


def test_first_out_of_range_is_bad_user_input(hub: RunningHub) -> None:
    body = hub.query(MY_LOG, "subject", {"first": 500}).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_the_public_contract_has_no_access_log(hub: RunningHub) -> None:
    response = hub.query("{ myAccessLog { seq } }")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
