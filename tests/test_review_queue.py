"""The review before publication (issue 12): which new PUBLIC records the public sees, at the
boundaries (exactly `after_hours` in the queue, the day before `since`), the queue's decisions on
SQLite and PostgreSQL (all or none, pending only — and automatic approvals rejected —, every
process following them), the policy's `publication-review` rule as the one source of truth for
where the review applies, queueing that never makes a read wait, the view reloaded incrementally,
credit governance leaving out rejected records, and the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
from sqlalchemy import delete, event, insert

from xinlian.hub.cases.model import CaseInputError, CaseNotFound
from xinlian.hub.cases.review import (
    APPROVED,
    AUTOMATIC,
    ID_MARGIN,
    ITEMS,
    PENDING,
    REJECTED,
    ReviewKey,
    ReviewQueue,
    ReviewSighting,
    publishable,
)
from xinlian.hub.cli import main
from xinlian.hub.config import Settings
from xinlian.hub.principal import Principal
from xinlian.hub.store import Store
from xinlian.policies.cases import ReviewRules, ReviewSource, standard_case_rules
from xinlian.policies.model import Policy
from xinlian.policies.review import PublicationReview
from xinlian.schema.catalogue import FAMILIES

USCC = "91110000600037341L"
T0 = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.timezone.utc)
PENALTIES = FAMILIES["penalties"]
DATED = frozenset({"decision_number", "decision_date"})  # what a read asked for: the key and the date
UNDATED = frozenset({"decision_number"})


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


class Facts:
    def __init__(self, publication: Mapping[str, bool] | bool | None) -> None:
        self._publication = publication

    def open_objections(self, family: str) -> set[str] | None:
        return set()

    def repairs(self, family: str) -> dict[str, dt.date] | None:
        return {}

    def publication(self, family: str) -> Mapping[str, bool] | bool | None:
        return self._publication


def test_the_rule_keeps_the_records_the_subjects_facts_find_publishable() -> None:
    rule = PublicationReview(("penalties",), frozenset())
    today = T0.date()
    assert rule.reads(PENALTIES) == ("decision_number", "decision_date")
    shown, waiting = {"decision_number": " 新1号 "}, {"decision_number": "新2号"}
    keep = rule.keeper(PENALTIES, Facts({"新1号": True, "新2号": False}), today)
    assert keep(shown) and not keep(waiting)
    assert not keep({"decision_number": "新3号"}) and not keep({"party_name": "x"})  # not looked up, no key: hidden
    assert not rule.keeper(PENALTIES, Facts(None), today)(shown)  # not known: fails closed
    assert rule.keeper(PENALTIES, Facts(True), today)({"party_name": "x"})  # the review off: every record
    assert not rule.keep(shown, today)  # without the subject's facts: fails closed
    assert "__publishable" not in shown  # nothing is marked on the record
    assert rule.unfit(FAMILIES["registration"]) is not None
    assert standard_case_rules().review.since == dt.date(2026, 12, 1)


def record(number: str, decided: dt.date | None) -> dict[str, Any]:
    return {"decision_number": number, "decision_date": decided, "party_name": "某公司"}


RULES = ReviewRules(
    families=("penalties",), since=dt.date(2026, 12, 1),
    sources={"market": ReviewSource(trusted=True), "tax": ReviewSource(after_hours=24)},
)


class Reads:
    """A request's caches for the review (`RequestCaches.review`) and its sightings, per department."""

    def __init__(self, queue: ReviewQueue, rules: ReviewRules = RULES) -> None:
        self.queue, self.rules, self.seen = queue, rules, {}

    async def read(self, department: str, by_key: dict[str, Any], requested: frozenset[str] = DATED) -> None:
        await ReviewSighting(self.queue, self.rules, PENALTIES, self.seen).apply(department, by_key, requested)

    def verdicts(self, subject: str = USCC) -> dict[str, bool]:
        return self.queue.verdicts(self.rules, "penalties", subject, self.seen[(subject, "penalties")])


async def test_sightings_note_departments_and_queue_new_records(store_url: str) -> None:
    store = await Store.open(store_url)
    clock = Clock(T0)
    queue = ReviewQueue(store, clock=clock)
    try:
        cached = [record("旧1号", dt.date(2026, 11, 30)), record("新1号", dt.date(2026, 12, 1)), record("新2号", dt.date(2026, 12, 2))]
        copy = [dict(r) for r in cached]
        reads = Reads(queue)
        await reads.read("environment", {USCC: cached, "91350100M000100Y43": RuntimeError("down")})
        assert cached == copy  # records are read, never marked or copied
        assert reads.seen == {(USCC, "penalties"): {
            ("旧1号", "environment"): dt.date(2026, 11, 30), ("新1号", "environment"): dt.date(2026, 12, 1),
            ("新2号", "environment"): dt.date(2026, 12, 2),
        }}
        assert reads.verdicts() == {"旧1号": True, "新1号": False, "新2号": False}  # the day before `since` passes
        await queue.flush()
        pending = await queue.find()
        assert [(i.key.record_key, i.status) for i in pending] == [("新1号", PENDING), ("新2号", PENDING)]
        assert all(i.first_seen_at == T0 for i in pending)
        # seen again: not queued twice (also by another process that has not read the queue yet)
        assert queue.note([ReviewKey("environment", "penalties", USCC, "新1号")]) == 0
        other = ReviewQueue(await Store.open(store_url), clock=Clock(T0 + dt.timedelta(hours=1)))
        try:
            await Reads(other).read("environment", {USCC: cached})
            await other.flush()
            assert len(await queue.find(status=None)) == 2
            await other.fresh()  # the first sighting is the store's, not this process's
            assert other.status(ReviewKey("environment", "penalties", USCC, "新1号")) == (PENDING, T0)
        finally:
            await other.store.close()
        # after_hours: shown once waited
        reads = Reads(queue)
        await reads.read("tax", {USCC: [record("税1号", dt.date(2026, 12, 2))]})
        assert reads.verdicts() == {"税1号": False}
        clock.moment = T0 + dt.timedelta(hours=24)
        assert reads.verdicts() == {"税1号": True}
        # a reviewer decides: approved shows, rejected never does
        first, second = [i.id for i in pending]
        [approved] = await queue.decide([first], "approve", "核对无误", "ops-li")
        assert (approved.status, approved.decided_by, approved.note) == (APPROVED, "ops-li", "核对无误")
        await queue.decide([second], "reject", "决定书编号错误", "ops-li")
        await queue.fresh()
        reads = Reads(queue)
        await reads.read("environment", {USCC: cached})
        assert reads.verdicts() == {"旧1号": True, "新1号": True, "新2号": False}
        assert reads.queue.rejected("penalties", USCC, reads.seen[(USCC, "penalties")]) == {"新2号"}
        # the same key from two departments: shown only if publishable from both
        await reads.read("tax", {USCC: [record("新1号", dt.date(2026, 12, 2))]})
        assert reads.verdicts()["新1号"] is False
        with pytest.raises(CaseInputError, match="only pending"):
            await queue.decide([first], "reject", "x", "ops-li")  # a reviewer's approval is final
        with pytest.raises(CaseNotFound):
            await queue.decide([999999], "approve", "", "ops-li")
        with pytest.raises(CaseInputError):
            await queue.decide([first], "publish", "", "ops-li")
    finally:
        await store.close()


async def test_a_record_whose_date_was_not_read_is_not_queued(store_url: str) -> None:
    """Finding 5: a read that did not fetch the date (an objection's look-up) queued records
    published before the queue as pending; it queues nothing now. A record read with its date
    and without a value cannot be shown old: it is queued."""
    store = await Store.open(store_url)
    queue = ReviewQueue(store, clock=Clock(T0))
    try:
        old = {"decision_number": "旧1号", "party_name": "某公司"}  # decision_date not fetched
        reads = Reads(queue)
        await reads.read("environment", {USCC: [old, {"decision_number": "新1号"}]}, requested=UNDATED)
        await queue.flush()
        assert await queue.find(status=None) == []
        assert reads.verdicts() == {"旧1号": False, "新1号": False}  # unknown: not shown to the public
        await reads.read("environment", {USCC: [record("旧1号", dt.date(2026, 11, 30)), record("无日期", None)]})
        await queue.flush()
        assert [i.key.record_key for i in await queue.find(status=None)] == ["无日期"]
        assert reads.verdicts()["旧1号"] is True  # its date read by another loader of the request
        # without `since`, every record is new: the date is not needed
        await Reads(queue, dataclasses.replace(RULES, since=None)).read("environment", {USCC: [old]}, requested=UNDATED)
        await queue.flush()
        assert {i.key.record_key for i in await queue.find(status=None)} == {"无日期", "旧1号"}
    finally:
        await store.close()


async def test_a_trusted_departments_records_are_queued_approved_and_may_be_rejected(store_url: str) -> None:
    """Finding 4: a trusted department's records were never queued, so no reviewer could reject one."""
    store = await Store.open(store_url)
    queue = ReviewQueue(store, clock=Clock(T0))
    try:
        reads = Reads(queue)
        await reads.read("market", {USCC: [record("市1号", dt.date(2026, 12, 2)), record("市2号", dt.date(2026, 12, 2))]})
        assert reads.verdicts() == {"市1号": True, "市2号": True}
        await queue.flush()
        assert await queue.find() == []  # nothing pending: approved on sight
        one, two = await queue.find(status=APPROVED)
        assert (one.key.department, one.decided_by, one.decided_at, one.note) == ("market", AUTOMATIC, T0, "")
        with pytest.raises(CaseInputError, match="only pending"):
            await queue.decide([one.id], "approve", "", "ops-li")  # approved already
        with pytest.raises(CaseInputError, match="own name"):
            await queue.decide([one.id], "reject", "x", AUTOMATIC)
        [rejected] = await queue.decide([one.id], "reject", "决定书编号错误", "ops-li")
        assert (rejected.status, rejected.decided_by) == (REJECTED, "ops-li")
        await queue.fresh()
        assert reads.verdicts() == {"市1号": False, "市2号": True}  # a rejection wins over trust
        with pytest.raises(CaseInputError, match="only pending"):
            await queue.decide([one.id], "reject", "again", "ops-li")  # decided by a reviewer: final
    finally:
        await store.close()


async def test_a_full_reload_never_shows_an_empty_queue(store_url: str) -> None:
    """Review of the review: a full reload emptied the view and then waited for the store, so a
    request answered meanwhile (requests read the view without its lock) showed a trusted
    department's rejected record and forgot every rejection."""
    store = await Store.open(store_url)
    queue = ReviewQueue(store, clock=Clock(T0))
    try:
        reads = Reads(queue)
        await reads.read("market", {USCC: [record("市1号", dt.date(2026, 12, 2))]})
        await queue.flush()
        [item] = await queue.find(status=APPROVED)
        await queue.decide([item.id], "reject", "决定书编号错误", "ops-li")
        await queue.fresh()
        seen = reads.seen[(USCC, "penalties")]
        assert reads.verdicts() == {"市1号": False} and queue.rejected("penalties", USCC, seen) == {"市1号"}

        class Slow:  # a connection whose statement answers once the test has looked
            def __init__(self, conn: Any) -> None:
                self.conn, self.started, self.go = conn, asyncio.Event(), asyncio.Event()

            async def execute(self, statement: Any) -> Any:
                result = await self.conn.execute(statement)
                self.started.set()
                await self.go.wait()
                return result

        async with store.engine.connect() as conn:
            slow = Slow(conn)
            reload = asyncio.ensure_future(queue.state._load_all(slow))
            await slow.started.wait()
            during = reads.verdicts(), queue.rejected("penalties", USCC, seen)
            slow.go.set()
            await reload
        assert during == ({"市1号": False}, {"市1号"})
        assert reads.verdicts() == {"市1号": False} and queue.state.full_reloads >= 1
    finally:
        await store.close()


async def test_a_read_never_waits_for_the_queue_to_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 3: the loader inserted each new record before its callers were answered."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    queue = ReviewQueue(store, clock=Clock(T0))
    written = asyncio.Event()
    release = asyncio.Event()
    insert_rows = queue._insert

    async def slow_insert(batch: Any) -> None:
        await release.wait()  # the store does not answer until released
        await insert_rows(batch)
        written.set()

    monkeypatch.setattr(queue, "_insert", slow_insert)
    try:
        reads = Reads(queue)
        await asyncio.wait_for(reads.read("environment", {USCC: [record("新1号", dt.date(2026, 12, 2))]}), 1.0)
        assert queue.status(ReviewKey("environment", "penalties", USCC, "新1号")) == (PENDING, T0)  # known here at once
        assert reads.verdicts() == {"新1号": False} and not written.is_set()
        release.set()
        await queue.flush()
        assert written.is_set() and [i.key.record_key for i in await queue.find()] == ["新1号"]
    finally:
        await store.close()


async def test_a_failed_write_is_logged_and_queued_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    queue = ReviewQueue(store, clock=Clock(T0))
    insert_rows = queue._insert

    async def down(batch: Any) -> None:
        raise OSError("the store blinked")

    key = ReviewKey("environment", "penalties", USCC, "新1号")
    try:
        monkeypatch.setattr(queue, "_insert", down)
        with caplog.at_level(logging.ERROR, "xinlian.cases"):
            assert queue.note([key]) == 1
            await queue.flush()
        assert "writing 1 record(s) failed" in caplog.text
        assert queue.status(key) is None  # forgotten here: noted again when met again
        monkeypatch.setattr(queue, "_insert", insert_rows)
        assert await queue.sight([key]) == 1
        assert [i.key for i in await queue.find()] == [key]
    finally:
        await store.close()


async def test_the_view_reloads_only_what_moved(store_url: str) -> None:
    """Finding 3: every sighting invalidated the view and the next request read the whole table."""
    store = await Store.open(store_url)
    queue = ReviewQueue(store, clock=Clock(T0))
    try:
        keys = [ReviewKey("environment", "penalties", USCC, f"罚{i}号") for i in range(ID_MARGIN + 500)]
        await queue.sight(keys)
        view = ReviewQueue(store, clock=Clock(T0))  # another process
        await view.fresh()
        assert view.state.full_reloads == 1 and len(view.state.items) == len(keys)
        # a new record and a decision: read as changes
        await queue.sight([ReviewKey("tax", "penalties", USCC, "税1号")])
        first = (await queue.find(limit=1))[0]
        await queue.decide([first.id], "reject", "编号错误", "ops-li")
        view.state.invalidate()
        await view.fresh()
        assert view.state.full_reloads == 1
        assert view.status(ReviewKey("tax", "penalties", USCC, "税1号")) == (PENDING, T0)
        assert view.status(first.key) == (REJECTED, T0)
        # an automatic approval, then a reviewer rejecting it: both read as changes
        trusted = ReviewKey("market", "penalties", USCC, "市1号")
        await queue.sight([trusted], trusted=True)
        view.state.invalidate()
        await view.fresh()
        assert view.status(trusted) == (APPROVED, T0)
        [item] = await queue.find(status=APPROVED, department="market")
        await queue.decide([item.id], "reject", "编号错误", "ops-li")
        view.state.invalidate()
        await view.fresh()
        assert view.status(trusted) == (REJECTED, T0) and view.state.full_reloads == 1
        # a row committed late below the ids read (simulated: one put back into a gap): the store's
        # counts show the view is behind, and it is read whole
        async with store.engine.begin() as conn:
            await conn.execute(delete(ITEMS).where(ITEMS.c.id == 2))
        late = ReviewQueue(store, clock=Clock(T0))
        await late.fresh()
        async with store.engine.begin() as conn:
            await conn.execute(insert(ITEMS).values(
                id=2, department="environment", family="penalties", subject=USCC, record_key="迟1号",
                status=PENDING, first_seen_at=T0, note="",
            ))
        late.state.invalidate()
        await late.fresh()
        assert late.state.full_reloads == 2 and late.status(ReviewKey("environment", "penalties", USCC, "迟1号"))
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


# ---- in process: the executor, the policy's rule, credit governance -------------------------------

PUBLIC_PENALTIES = "query P($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } } }"
SUBJECTS = ("clean", "honored", "a_level_taxpayer", "wage_arrears_paid", "revoked")


def _insert_penalties(data_dir: Path, subjects: dict[str, str], today: dt.date) -> None:
    """A new (today) and an old (before `since`) environmental penalty for each subject."""
    with sqlite3.connect(data_dir / "departments" / "environment.db") as db:
        db.executemany(
            "INSERT INTO env_punishment (credit_code, party_name, punish_no, decision_time, credit_level, audit_state, "
            "punish_org, data_source) VALUES (?, '测试公司', ?, ?, 'M', '审核通过', '生态环境局', '生态环境局')",
            [row for name, uscc in subjects.items() for row in (
                (uscc, f"新环罚{name}", f"{today.isoformat()} 09:00:00"), (uscc, f"旧环罚{name}", "2026-11-30 09:00:00"),
            )],
        )


@dataclasses.dataclass
class Local:
    loop: asyncio.AbstractEventLoop
    runtime: Any
    subjects: dict[str, str]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def public(self, name: str, policy: Policy | None = None) -> tuple[set[str], Any]:
        """The subject's penalties the public sees under `policy` (the active one by default), and the request."""
        runtime = self.runtime
        runtime.cache.clear()
        ctx = runtime.request_context(Principal.public(), public_endpoint=True, policy=policy)
        result = self.run(runtime.public_schema.execute(PUBLIC_PENALTIES, variable_values={"u": self.subjects[name]}, context_value=ctx))
        assert not result.errors, result.errors
        return {p["decisionNumber"] for p in result.data["legalPerson"]["penalties"]}, ctx

    def queued(self, name: str) -> dict[str, str]:
        """Record key → status of the subject's queued environmental penalties (after the writes)."""
        self.run(self.runtime.review.flush())
        items = self.run(self.runtime.review.find(status=None, department="environment", limit=10_000))
        return {i.key.record_key: i.status for i in items if i.key.subject == self.subjects[name]}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    from xinlian.hub.cli.demo import ensure_demo_clients
    from xinlian.hub.demo.generator import build_demo_district
    from xinlian.hub.demo.services import start_demo_services
    from xinlian.hub.runtime import HubRuntime

    data_dir: Path = tmp_path_factory.mktemp("review-local")
    district = build_demo_district(data_dir, legal_persons=20, natural_persons=5)
    settings = Settings.from_env(data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    asyncio.run(ensure_demo_clients(settings, dict(district.samples)))
    subjects = {name: district.samples[name] for name in SUBJECTS}
    services = start_demo_services(data_dir)
    loop = asyncio.new_event_loop()
    try:
        runtime = loop.run_until_complete(HubRuntime.open(settings, schedule=False))
        _insert_penalties(data_dir, subjects, runtime.today())
        try:
            yield Local(loop, runtime, subjects)
        finally:
            loop.run_until_complete(runtime.close())
    finally:
        loop.close()
        services.stop()


def test_closing_the_hub_writes_what_its_reads_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of the review: every test flushed the queue itself, so none would fail if the
    hub's close stopped writing the sightings still waiting."""
    from xinlian.hub.runtime import HubRuntime

    insert = ReviewQueue._insert

    async def slow(self: ReviewQueue, batch: Any) -> None:  # the store is slow: the write outlasts close's other steps
        await asyncio.sleep(0.5)
        await insert(self, batch)

    monkeypatch.setattr(ReviewQueue, "_insert", slow)

    settings = Settings.from_env(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    key = ReviewKey("environment", "penalties", "91150102MA41D0QL3A", "呼环新罚〔2026〕41号")

    async def run() -> list[Any]:
        runtime = await HubRuntime.open(settings, schedule=False)
        try:
            assert runtime.review.note([key]) == 1  # noted, written in the background
        finally:
            await runtime.close()
        store = await Store.open(settings.database_url)
        try:
            return await ReviewQueue(store).find()
        finally:
            await store.close()

    [item] = asyncio.run(run())
    assert (item.key, item.status) == (key, PENDING)


def test_the_policys_rule_alone_decides_where_the_review_applies(local: Local) -> None:
    """Finding 1 (and 5): a policy without the rule queued records and never filtered them;
    `[cases.review] enabled = false` (or families other than the rule's) hid every record."""
    policy = local.runtime.policy
    shown, _ = local.public("clean")
    assert shown >= {"旧环罚clean"} and "新环罚clean" not in shown  # the standard policy: the new one waits
    assert local.queued("clean") == {"新环罚clean": PENDING}
    # a stored version without the rule: no review at all — shown, nothing queued
    unreviewed = dataclasses.replace(policy, rows=tuple(r for r in policy.rows if r.kind != "publication-review"))
    shown, _ = local.public("honored", unreviewed)
    assert {"旧环罚honored", "新环罚honored"} <= shown and local.queued("honored") == {}
    # the review switched off: every record shown, nothing queued
    off = dataclasses.replace(policy, cases=dataclasses.replace(
        policy.cases, review=dataclasses.replace(policy.cases.review, enabled=False)))
    shown, _ = local.public("a_level_taxpayer", off)
    assert {"旧环罚a_level_taxpayer", "新环罚a_level_taxpayer"} <= shown and local.queued("a_level_taxpayer") == {}
    # `[cases.review] families` is not where the review applies: the rule's families are
    elsewhere = dataclasses.replace(policy, cases=dataclasses.replace(
        policy.cases, review=dataclasses.replace(policy.cases.review, families=("licenses",))))
    shown, _ = local.public("wage_arrears_paid", elsewhere)
    assert "旧环罚wage_arrears_paid" in shown and "新环罚wage_arrears_paid" not in shown
    assert local.queued("wage_arrears_paid") == {"新环罚wage_arrears_paid": PENDING}


def test_a_public_read_notes_departments_and_asks_no_store_in_steady_state(local: Local) -> None:
    """Finding 2: records of reviewed families were copied with a magic key for the rule."""
    subject = local.subjects["revoked"]
    local.public("revoked")
    local.run(local.runtime.review.flush())
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = local.runtime.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        local.run(local.runtime.changes.check())  # the change feed has seen the write: the view read it back
        local.run(local.runtime.review.fresh())
        statements.clear()
        shown, ctx = local.public("revoked")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "review_items" in s]  # answered from memory
    assert "新环罚revoked" not in shown and "旧环罚revoked" in shown
    noted = ctx.caches.review[(subject, "penalties")]
    assert noted[("新环罚revoked", "environment")] == local.runtime.today()
    assert ctx.facts(subject).publication("penalties")["新环罚revoked"] is False
    assert ctx.facts(subject).publication("licenses") is None  # not read in this request: not known


def test_writing_a_new_sighting_does_not_send_the_next_request_to_the_store(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of the review: each background write made the view due, so the request after it
    read the queue back from the store (three statements), batch after batch."""
    runtime, subject = local.runtime, local.subjects["revoked"]
    monkeypatch.setattr(runtime.review.state, "interval", 3600.0)  # only a change could make the view due (no feed runs here)
    local.public("revoked")
    local.run(runtime.review.flush())
    local.run(runtime.changes.check())
    local.run(runtime.review.fresh())  # the view as new as the store
    extra = "再环罚revoked"
    with sqlite3.connect(runtime.settings.data_dir / "departments" / "environment.db") as db:
        db.execute(
            "INSERT INTO env_punishment (credit_code, party_name, punish_no, decision_time, credit_level, audit_state, "
            "punish_org, data_source) VALUES (?, '测试公司', ?, ?, 'M', '审核通过', '生态环境局', '生态环境局')",
            (subject, extra, f"{runtime.today().isoformat()} 11:00:00"),
        )
    runtime.cache.clear()
    shown, _ = local.public("revoked")  # met for the first time: noted, written in the background
    assert extra not in shown
    local.run(runtime.review.flush())
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = runtime.store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        runtime.cache.clear()
        shown, _ = local.public("revoked")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "review_items" in s]  # the write did not make the view due
    assert extra not in shown and local.queued("revoked")[extra] == PENDING


def test_find_record_reads_the_date_and_queues_only_new_records(local: Local) -> None:
    """Finding 5 through the federation: an objection's look-up of an old record queued it."""
    records = local.runtime.credit.records
    subject = local.subjects["a_level_taxpayer"]
    found = local.run(records.find_record(subject, "penalties", "旧环罚a_level_taxpayer"))
    assert found.departments == ["environment"] and found.records[0]["decision_date"] is not None
    local.run(records.find_record(subject, "penalties", "新环罚a_level_taxpayer"))
    assert local.queued("a_level_taxpayer") == {"新环罚a_level_taxpayer": PENDING}  # not the old one


def test_credit_governance_leaves_out_rejected_records_not_pending_ones(local: Local) -> None:
    """Finding 6: a record a reviewer rejected still drove ratings and list rules."""
    records, review = local.runtime.credit.records, local.runtime.review
    subject = local.subjects["honored"]
    extra = "另环罚honored"
    with sqlite3.connect(local.runtime.settings.data_dir / "departments" / "environment.db") as db:
        db.execute(
            "INSERT INTO env_punishment (credit_code, party_name, punish_no, decision_time, credit_level, audit_state, "
            "punish_org, data_source) VALUES (?, '测试公司', ?, ?, 'M', '审核通过', '生态环境局', '生态环境局')",
            (subject, extra, f"{local.runtime.today().isoformat()} 10:00:00"),
        )
    local.runtime.cache.clear()
    numbers = lambda: {str(r["decision_number"]) for r in local.run(records.read([subject], {"penalties": {"decision_number", "decision_date"}})).found[subject].records["penalties"]}  # noqa: E731
    assert {"新环罚honored", extra} <= numbers()  # read by the credit office: queued, pending ones counted
    local.run(review.flush())
    items = {i.key.record_key: i.id for i in local.run(review.find(department="environment", limit=10_000))}
    local.run(review.decide([items[extra]], "reject", "决定书编号错误", "ops-li"))
    local.runtime.cache.clear()
    assert extra not in numbers() and "新环罚honored" in numbers()


# ---- through a running hub: a new environmental penalty waits for a reviewer ------------------------

NEW_NUMBER = "呼新环罚〔2026〕901号"
OLD_NUMBER = "呼新环罚〔2026〕900号"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
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
    from hub_fixture import wait_until

    assert NEW_NUMBER in _numbers(hub, "department")  # government sees every record; the reading queued it
    public = _numbers(hub, None)
    assert OLD_NUMBER in public and NEW_NUMBER not in public  # decided before `since`: shown; the new one waits
    query = '{ reviewItems(department: "environment") { id recordKey status subject } }'
    wait_until(lambda: any(i["recordKey"] == NEW_NUMBER for i in _admin(hub, query)["reviewItems"]),
               what="the queue's background write")
    pending = _admin(hub, query)["reviewItems"]
    [item] = [i for i in pending if i["recordKey"] == NEW_NUMBER]
    assert item["status"] == "pending" and item["subject"] == hub.samples["clean"]
    assert not [i for i in pending if i["recordKey"] == OLD_NUMBER]
    decided = _admin(hub, "mutation($ids: [Int!]!) { approveReviewItems(ids: $ids, note: \"核对无误\") { id status decidedBy } }",
                     {"ids": [item["id"]]})["approveReviewItems"]
    assert decided == [{"id": item["id"], "status": "approved", "decidedBy": hub.clients["admin"]["client_id"]}]
    # this process invalidated its view: at once, at most a feed tick
    wait_until(lambda: NEW_NUMBER in _numbers(hub, None), what="the approval reaching the public endpoint")


def test_the_demo_ships_new_records_for_each_way_to_publication(hub: Any) -> None:
    """The walkthrough of docs/cases.md: the demo's `new_penalties` sample has one penalty from
    each department decided after `since` — market's (trusted) shown at once, environment's
    waiting for a reviewer, tax's waiting its 24 hours."""
    from hub_fixture import wait_until

    query = "query P($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber decisionDate } } }"
    uscc = hub.samples["new_penalties"]

    def december(kind: str | None) -> dict[str, str]:
        response = hub.query(query, kind, {"u": uscc})
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return {p["decisionNumber"]: p["decisionDate"] for p in body["data"]["legalPerson"]["penalties"]
                if p["decisionDate"] and p["decisionDate"] >= "2026-12-01"}

    government = december("department")
    assert sorted(n[:2] for n in government) == ["呼新", "呼环", "新市"] and len(government) == 3, government
    [market] = [n for n in government if n.startswith("新市监处罚")]
    items = '{ reviewItems(status: null, family: "penalties") { recordKey subject department status decidedBy } }'
    wait_until(lambda: len([i for i in _admin(hub, items)["reviewItems"] if i["subject"] == uscc]) == 3,
               what="the queue's background write")
    queued = {i["department"]: (i["status"], i["decidedBy"]) for i in _admin(hub, items)["reviewItems"] if i["subject"] == uscc}
    assert queued == {"market": ("approved", AUTOMATIC), "environment": ("pending", None), "tax": ("pending", None)}
    assert list(december(None)) == [market]


def test_deciding_twice_or_without_a_reason_is_refused(hub: Any) -> None:
    items = _admin(hub, "{ reviewItems(status: null) { id status decidedBy } }")["reviewItems"]
    decided = [i["id"] for i in items if i["status"] != "pending" and i["decidedBy"] != AUTOMATIC]
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
