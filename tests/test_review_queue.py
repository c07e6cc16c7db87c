"""The review before publication (issue 12): which new PUBLIC records the public sees, at the
boundaries (exactly `after_hours` in the queue, the day before `since`), the queue's decisions on
SQLite and PostgreSQL (all or none, pending only, every process following them), and the CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from xinlian.hub.cases.model import CaseInputError, CaseNotFound
from xinlian.hub.cases.review import APPROVED, PENDING, REJECTED, ReviewKey, ReviewMarks, ReviewQueue, publishable
from xinlian.hub.cli import main
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.policies.cases import ReviewRules, ReviewSource, standard_case_rules
from xinlian.policies.review import REVIEW_MARK, PublicationReview
from xinlian.schema.catalogue import FAMILIES

USCC = "91110000600037341L"
T0 = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone.utc)
PENALTIES = FAMILIES["penalties"]


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


def test_publishable_at_its_boundaries() -> None:
    manual, trusted, day = ReviewSource(), ReviewSource(trusted=True), ReviewSource(after_hours=24)
    assert not publishable(manual, PENDING, T0, T0 + dt.timedelta(days=365))  # waits for a reviewer, however long
    assert publishable(manual, APPROVED, T0, T0)
    assert publishable(trusted, None, None, T0) and publishable(trusted, PENDING, T0, T0)
    assert not publishable(trusted, REJECTED, T0, T0)  # a rejection wins over trust
    assert not publishable(day, PENDING, T0, T0 + dt.timedelta(hours=24) - dt.timedelta(microseconds=1))
    assert publishable(day, PENDING, T0, T0 + dt.timedelta(hours=24))  # exactly 24 hours: shown
    assert not publishable(day, REJECTED, T0, T0 + dt.timedelta(days=30))
    assert not publishable(day, None, None, T0)  # never seen: not shown


def test_the_rule_keeps_only_records_marked_publishable() -> None:
    rule = PublicationReview(("penalties",), frozenset())
    assert rule.reads(PENALTIES) == ("decision_number", "decision_date")
    assert rule.keep({REVIEW_MARK: True}, T0.date())
    assert not rule.keep({REVIEW_MARK: False}, T0.date())
    assert not rule.keep({"decision_number": "x"}, T0.date())  # not through the queue: fails closed
    assert rule.unfit(FAMILIES["registration"]) is not None
    assert standard_case_rules().review.since == dt.date(2026, 12, 1)


def record(number: str, decided: dt.date) -> dict[str, Any]:
    return {"decision_number": number, "decision_date": decided, "party_name": "某公司"}


async def test_marks_queue_new_records_and_follow_the_decisions(store_url: str) -> None:
    store = await Store.open(store_url)
    clock = Clock(T0)
    queue = ReviewQueue(store, clock=clock)
    rules = ReviewRules(
        families=("penalties",), since=dt.date(2026, 12, 1),
        sources={"market": ReviewSource(trusted=True), "tax": ReviewSource(after_hours=24)},
    )
    marks = ReviewMarks(queue, rules, PENALTIES, mark=True)
    try:
        cached = [record("旧1号", dt.date(2026, 11, 30)), record("新1号", dt.date(2026, 12, 1)), record("新2号", dt.date(2026, 12, 2))]
        by_key: dict[str, Any] = {USCC: cached, "91350100M000100Y43": RuntimeError("down")}
        await marks.apply("environment", by_key)
        assert [r[REVIEW_MARK] for r in by_key[USCC]] == [True, False, False]  # the day before `since` passes
        assert "__publishable" not in cached[0]  # the originals (the cache's) are untouched
        pending = await queue.find()
        assert [(i.key.record_key, i.status) for i in pending] == [("新1号", PENDING), ("新2号", PENDING)]
        assert all(i.first_seen_at == T0 for i in pending)
        # seen again: not queued twice (also by another process that has not read the queue yet)
        await marks.apply("environment", {USCC: cached})
        other = ReviewQueue(await Store.open(store_url), clock=clock)
        try:
            await ReviewMarks(other, rules, PENALTIES, mark=False).apply("environment", {USCC: cached})
            assert len(await queue.find(status=None)) == 2
        finally:
            await other.store.close()
        # a trusted department: shown at once, nothing queued; after_hours: shown once waited
        trusted = {USCC: [record("市1号", dt.date(2026, 12, 2))]}
        await marks.apply("market", trusted)
        taxed = {USCC: [record("税1号", dt.date(2026, 12, 2))]}
        await marks.apply("tax", taxed)
        assert trusted[USCC][0][REVIEW_MARK] is True and taxed[USCC][0][REVIEW_MARK] is False
        assert {i.key.department for i in await queue.find()} == {"environment", "tax"}
        clock.moment = T0 + dt.timedelta(hours=24)
        taxed = {USCC: [record("税1号", dt.date(2026, 12, 2))]}
        await marks.apply("tax", taxed)
        assert taxed[USCC][0][REVIEW_MARK] is True
        # a reviewer decides: approved shows, rejected never does; decided items are not decided again
        first, second = [i.id for i in pending]
        [approved] = await queue.decide([first], "approve", "核对无误", "ops-li")
        assert (approved.status, approved.decided_by, approved.note) == (APPROVED, "ops-li", "核对无误")
        await queue.decide([second], "reject", "决定书编号错误", "ops-li")
        again = {USCC: cached}
        await marks.apply("environment", again)
        assert [r[REVIEW_MARK] for r in again[USCC]] == [True, True, False]
        with pytest.raises(CaseInputError, match="only pending"):
            await queue.decide([first], "reject", "x", "ops-li")
        with pytest.raises(CaseNotFound):
            await queue.decide([999999], "approve", "", "ops-li")
        with pytest.raises(CaseInputError):
            await queue.decide([first], "publish", "", "ops-li")
    finally:
        await store.close()


async def test_decisions_are_all_or_none_and_serialised(store_url: str) -> None:
    store = await Store.open(store_url)
    queue = ReviewQueue(store, clock=Clock(T0))
    try:
        await queue.sight([ReviewKey("environment", "penalties", USCC, f"罚{i}号") for i in range(4)])
        ids = [i.id for i in await queue.find()]
        await queue.decide([ids[0]], "approve", "", "a")
        with pytest.raises(CaseInputError):  # one of them is decided already: nothing changes
            await queue.decide(ids[:2], "reject", "x", "b")
        assert [i.status for i in await queue.find(status=None)] == [APPROVED, PENDING, PENDING, PENDING]
        results = await asyncio.gather(
            queue.decide(ids[1:], "approve", "", "a"), queue.decide(ids[1:], "reject", "no", "b"), return_exceptions=True
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        assert len(won) == 1 and isinstance([r for r in results if isinstance(r, BaseException)][0], CaseInputError)
        assert {i.status for i in await queue.find(status=None) if i.id in ids[1:]} == {won[0][0].status}
    finally:
        await store.close()


def test_the_cli_lists_approves_and_rejects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"

    async def seed() -> None:
        store = await Store.open(Settings.from_env(data_dir).database_url)
        try:
            await ReviewQueue(store).sight([ReviewKey("environment", "penalties", USCC, f"罚{i}号") for i in range(3)])
        finally:
            await store.close()

    asyncio.run(seed())
    run = lambda *argv: main([*argv, "--data-dir", str(data_dir)])  # noqa: E731
    assert run("review", "list", "--json") == 0
    items = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [i["record_key"] for i in items] == ["罚0号", "罚1号", "罚2号"] and {i["status"] for i in items} == {"pending"}
    assert run("review", "approve", str(items[0]["id"]), str(items[1]["id"]), "--note", "核对无误", "--by", "ops-li") == 0
    assert "2 item(s) approved" in capsys.readouterr().out
    assert run("review", "reject", str(items[2]["id"]), "--note", "   ") == 2  # a rejection says why
    assert run("review", "reject", str(items[0]["id"]), "--note", "x") == 2  # decided already
    assert "only pending" in capsys.readouterr().err
    assert run("review", "list", "--status", "approved", "--json") == 0
    approved = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(i["record_key"], i["decided_by"]) for i in approved] == [("罚0号", "ops-li"), ("罚1号", "ops-li")]
    assert run("review", "list", "--department", "market") == 0
    assert "the review queue is empty" in capsys.readouterr().out


# ---- through a running hub: a new environmental penalty waits for a reviewer ------------------------

PUBLIC_PENALTIES = "query P($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } } }"
NEW_NUMBER = "呼新环罚〔2026〕901号"
OLD_NUMBER = "呼新环罚〔2026〕900号"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import sqlite3

    from hub_fixture import NO_RATE_LIMITS, running_hub

    with running_hub(tmp_path_factory.mktemp("review-hub"), legal_persons=30, natural_persons=5, rate_limits=NO_RATE_LIMITS) as running:
        uscc = running.samples["clean"]
        today = running.runtime.today()
        with sqlite3.connect(running.data_dir / "departments" / "environment.db") as db:
            db.executemany(
                "INSERT INTO env_punishment (credit_code, party_name, punish_no, decision_time, credit_level, audit_state, "
                "punish_org, data_source) VALUES (?, '测试公司', ?, ?, 'M', '审核通过', '生态环境局', '生态环境局')",
                [(uscc, NEW_NUMBER, f"{today.isoformat()} 09:00:00"), (uscc, OLD_NUMBER, "2026-11-30 09:00:00")],
            )
        yield running


def _numbers(hub: Any, kind: str | None) -> set[str]:
    response = hub.query(PUBLIC_PENALTIES, kind, {"u": hub.samples["clean"]})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return {p["decisionNumber"] for p in body["data"]["legalPerson"]["penalties"]}


def _admin(hub: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = hub.http.post("/admin/graphql", json={"query": query, "variables": variables or {}},
                             headers={"Authorization": f"Bearer {hub.token('admin')}"})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def test_a_new_record_reaches_the_public_only_once_approved(hub: Any) -> None:
    import time

    assert NEW_NUMBER in _numbers(hub, "department")  # government sees every record; the reading queued it
    public = _numbers(hub, None)
    assert OLD_NUMBER in public and NEW_NUMBER not in public  # decided before `since`: shown; the new one waits
    pending = _admin(hub, '{ reviewItems(department: "environment") { id recordKey status subject } }')["reviewItems"]
    [item] = [i for i in pending if i["recordKey"] == NEW_NUMBER]
    assert item["status"] == "pending" and item["subject"] == hub.samples["clean"]
    assert not [i for i in pending if i["recordKey"] == OLD_NUMBER]
    decided = _admin(hub, "mutation($ids: [Int!]!) { approveReviewItems(ids: $ids, note: \"核对无误\") { id status decidedBy } }",
                     {"ids": [item["id"]]})["approveReviewItems"]
    assert decided == [{"id": item["id"], "status": "approved", "decidedBy": hub.clients["admin"]["client_id"]}]
    deadline = time.monotonic() + 5
    while NEW_NUMBER not in _numbers(hub, None):  # this process invalidated its view: at once, at most a feed tick
        assert time.monotonic() < deadline, "the approval did not reach the public endpoint"
        time.sleep(0.05)


def test_deciding_twice_or_without_a_reason_is_refused(hub: Any) -> None:
    items = _admin(hub, "{ reviewItems(status: null) { id status } }")["reviewItems"]
    decided = [i["id"] for i in items if i["status"] != "pending"]
    response = hub.http.post(
        "/admin/graphql", json={"query": "mutation($ids: [Int!]!) { rejectReviewItems(ids: $ids, note: \"x\") { id } }",
                                "variables": {"ids": decided[:1]}},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    response = hub.http.post(
        "/admin/graphql", json={"query": "mutation { rejectReviewItems(ids: [1], note: \"  \") { id } }"},
        headers={"Authorization": f"Bearer {hub.token('admin')}"},
    )
    assert "say why" in response.json()["errors"][0]["message"]
