"""The store's change feed and the cluster's members (hub/cluster/, migration 0006).

Real stores (SQLite file and PostgreSQL), each "process" with its own engine and connections;
real Redis for the fast path. What is proved: the triggers bump a table's counter for every
writer (the ORM, plain SQL, the CLI's kind of session); a feed calls exactly the readers of the
topics that moved; PostgreSQL's NOTIFY and Redis wake another process at once (well before its
poll); caches of hub-owned state follow the feed without store reads on the request path and
fall back to reading themselves when the feed has fallen behind; the live members divide the
departments' concurrency budget.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any, Callable

import pytest
from sqlalchemy import event, select, text, update

from xinlian.connectors.resilience import DepartmentLink, ResiliencePolicy
from xinlian.hub.auth.revocation import RevocationList
from xinlian.hub.cluster.changes import ChangeFeed
from xinlian.hub.cluster.members import ClusterMembers
from xinlian.hub.governance.client_directory import ClientDirectory
from xinlian.hub.governance.objections import ObjectionRegister
from xinlian.hub.store import Store
from xinlian.hub.store.models import ChangeGeneration, ClientRecord, ClusterMember

pytestmark = pytest.mark.asyncio

WATCHED = {"clients", "purposes", "revoked_tokens", "policy_activations", "cases"}
USCC = "91350100M000100Y43"


async def _eventually(check: Callable[[], Any], seconds: float = 3.0) -> float:
    started = time.monotonic()
    while not (await check() if asyncio.iscoroutinefunction(check) else check()):
        assert time.monotonic() - started < seconds, "not within the time allowed"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _generations(store: Store) -> dict[str, int]:
    async with store.session() as session:
        return {t: int(g) for t, g in await session.execute(select(ChangeGeneration.topic, ChangeGeneration.generation))}


async def _add_client(store: Store, client_id: str, *, purposes: str = "") -> None:
    async with store.session() as session:
        session.add(ClientRecord(
            client_id=client_id, name=client_id, kind="bank", secret_hash="x", scope="read",
            created_at=dt.datetime.now(dt.timezone.utc), purposes=purposes,
        ))
        await session.commit()


async def _revoke_elsewhere(store: Store, jti: str) -> None:
    """A revocation as another process writes it: plain SQL on its own connection."""
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(tzinfo=None)
    async with store.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (:j, 'c', :e, :e)"),
            {"j": jti, "e": expires},
        )


# --- the triggers ------------------------------------------------------------------------------


async def test_every_watched_table_has_a_counter_that_its_changes_bump(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        before = await _generations(store)
        assert set(before) >= WATCHED and all(g == 0 for g in before.values())
        await _add_client(store, "bank-1")  # the ORM
        async with store.engine.begin() as conn:  # plain SQL, as an operator or the CLI would
            await conn.execute(text("UPDATE clients SET name = 'renamed' WHERE client_id = 'bank-1'"))
        await _revoke_elsewhere(store, "jti-1")
        after = await _generations(store)
        assert after["clients"] == 2 and after["revoked_tokens"] == 1
        assert after["purposes"] == after["cases"] == after["policy_activations"] == 0
        async with store.engine.begin() as conn:  # a rolled-back change bumps nothing
            await conn.execute(text("UPDATE clients SET name = 'again' WHERE client_id = 'bank-1'"))
            await conn.rollback()
        assert (await _generations(store))["clients"] == 2
    finally:
        await store.close()


# --- the feed ----------------------------------------------------------------------------------


async def test_the_feed_calls_the_readers_of_the_topics_that_moved_and_retries_a_failed_reader(store_url: str) -> None:
    hub, other = await Store.open(store_url), await Store.open(store_url)
    feed = ChangeFeed(hub, interval=0.05)
    calls: dict[str, int] = {"clients": 0, "cases": 0, "flaky": 0}
    failures = [1]

    async def on_clients() -> None:
        calls["clients"] += 1

    async def on_cases() -> None:
        calls["cases"] += 1

    async def flaky() -> None:
        calls["flaky"] += 1
        if failures:
            failures.pop()
            raise RuntimeError("the store blinked")

    feed.subscribe(["clients", "purposes"], on_clients)
    feed.subscribe(["cases"], on_cases)
    feed.subscribe(["clients"], flaky)
    await feed.start()
    try:
        await asyncio.sleep(0.2)
        assert calls == {"clients": 0, "cases": 0, "flaky": 0}  # nothing changed: no reader called
        await _add_client(other, "bank-2")
        await _eventually(lambda: calls["clients"] == 1 and calls["flaky"] == 2)  # failed once, called again
        await asyncio.sleep(0.2)
        assert calls == {"clients": 1, "cases": 0, "flaky": 2}  # once per change, not per tick
        assert feed.current(1.0) and feed.reads > 3
    finally:
        await feed.stop()
        await hub.close()
        await other.close()


async def test_postgres_notify_wakes_another_process_long_before_its_poll(postgres_url: str) -> None:
    hub, other = await Store.open(postgres_url), await Store.open(postgres_url)
    feed = ChangeFeed(hub, interval=30.0)  # the poll would take half a minute
    seen = asyncio.Event()

    async def on_revocation() -> None:
        seen.set()

    feed.subscribe(["revoked_tokens"], on_revocation)
    await feed.start()
    try:
        await _eventually(lambda: feed.listening_postgres)
        started = time.monotonic()
        await _revoke_elsewhere(other, "jti-notify")
        await asyncio.wait_for(seen.wait(), 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        await feed.stop()
        await hub.close()
        await other.close()


async def test_redis_wakes_the_other_workers_of_an_sqlite_store(sqlite_url: str, redis_url: str, redis_key_prefix: str) -> None:
    first_store, second_store = await Store.open(sqlite_url), await Store.open(sqlite_url)
    first = ChangeFeed(first_store, interval=30.0, redis_url=redis_url, redis_prefix=redis_key_prefix)
    second = ChangeFeed(second_store, interval=30.0, redis_url=redis_url, redis_prefix=redis_key_prefix)
    seen = asyncio.Event()

    async def on_clients() -> None:
        seen.set()

    second.subscribe(["clients"], on_clients)
    await first.start()
    await second.start()
    try:
        await _eventually(lambda: second.listening_redis)
        started = time.monotonic()
        await _add_client(first_store, "bank-redis")  # committed through the first worker's engine
        await asyncio.wait_for(seen.wait(), 2.0)
        assert time.monotonic() - started < 1.0
    finally:
        await first.stop()
        await second.stop()
        await first_store.close()
        await second_store.close()


# --- caches that follow the feed ---------------------------------------------------------------


async def test_revocations_follow_the_feed_without_reading_the_store_on_a_request(store_url: str) -> None:
    hub, other = await Store.open(store_url), await Store.open(store_url)
    feed = ChangeFeed(hub, interval=0.05)
    revocations = RevocationList(hub, refresh_interval=0.3)
    revocations.follow(feed)
    await feed.start()
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "revoked_tokens" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(hub.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert not await revocations.is_revoked("jti-x")  # the first answer reads the set
        reads.clear()
        for _ in range(50):
            assert not await revocations.is_revoked("jti-x")
        await asyncio.sleep(0.3)  # several ticks of the feed, nothing changed
        assert reads == []  # no re-read on requests nor on quiet ticks
        await _revoke_elsewhere(other, "jti-x")

        async def revoked() -> bool:
            return await revocations.is_revoked("jti-x")

        assert await _eventually(revoked) < 1.0
        assert len(reads) == 1  # re-read once, for the change
        # the feed falls behind (stalled): once the set is older than its refresh interval plus
        # the feed's, a request reads the set itself
        await feed.stop()
        await asyncio.sleep(0.4)
        reads.clear()
        assert await revocations.is_revoked("jti-x")
        assert len(reads) == 1
    finally:
        event.remove(hub.engine.sync_engine, "before_cursor_execute", count)
        await feed.stop()
        await hub.close()
        await other.close()


async def test_revocations_fail_closed_when_the_feed_is_behind_and_the_store_is_gone(tmp_path: Any) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    feed = ChangeFeed(store, interval=0.05)
    revocations = RevocationList(store, refresh_interval=0.1)
    revocations.follow(feed)
    await feed.start()
    await feed.stop()  # the feed stalls
    assert not await revocations.is_revoked("jti")
    async with store.engine.begin() as conn:
        await conn.execute(text("DROP TABLE revoked_tokens"))  # the store can no longer answer
    await asyncio.sleep(0.2)  # longer than the set's refresh interval plus the feed's
    from xinlian.hub.auth.revocation import RevocationUnavailable

    with pytest.raises(RevocationUnavailable):
        await revocations.is_revoked("jti")
    await store.close()


async def test_client_facts_and_objections_follow_the_feed(store_url: str) -> None:
    hub, other = await Store.open(store_url), await Store.open(store_url)
    feed = ChangeFeed(hub, interval=0.05)
    clients = ClientDirectory(hub, ttl=0.01)
    clients.follow(feed)
    objections = ObjectionRegister(hub)
    objections.open_objections.follow(feed)
    await feed.start()
    try:
        await _add_client(other, "bank-3", purposes="")
        await _eventually(lambda: "clients" in feed.generations and feed.generations["clients"] >= 1)
        facts = await clients.facts("bank-3")
        assert facts is not None and facts.name == "bank-3"
        await asyncio.sleep(0.1)  # far past the ttl: kept, since the feed says nothing changed
        assert await clients.facts("bank-3") is facts
        async with other.session() as session:
            await session.execute(update(ClientRecord).where(ClientRecord.client_id == "bank-3").values(name="renamed"))
            await session.commit()

        async def renamed() -> bool:
            found = await clients.facts("bank-3")
            return found is not None and found.name == "renamed"

        await _eventually(renamed, 1.5)

        assert await objections.open_objections.refs([USCC]) == {}
        await ObjectionRegister(other).file(USCC, "penalties", "呼新市监罚〔2026〕1号", "wrong amount", "admin")

        async def flagged() -> bool:
            return bool(await objections.open_objections.refs([USCC]))

        await _eventually(flagged, 1.5)
    finally:
        await feed.stop()
        await hub.close()
        await other.close()


# --- the cluster's members and the departments' budget -----------------------------------------


async def test_members_divide_a_departments_budget(store_url: str) -> None:
    stores = [await Store.open(store_url) for _ in range(3)]
    members = [ClusterMembers(s, heartbeat=0.2, host=f"host-{i}") for i, s in enumerate(stores)]

    class Idle:
        name, department, families = "court", "court", frozenset[str]()

    link = DepartmentLink(Idle(), ResiliencePolicy(max_concurrency=8))  # type: ignore[arg-type]
    shares: list[int] = []
    members[0].subscribe(lambda count: shares.append(link.share_between(count)))
    try:
        for m in members:
            await m.join()
        await members[0].renew()
        assert members[0].count == 3 and link.status().slots == 2 and link.status().max_concurrency == 8
        await members[2].leave()
        await members[1].leave()
        await members[0].renew()
        assert members[0].count == 1 and link.status().slots == 8
        assert shares[0] == 8 and 2 in shares
        # a member that stopped beating (a crashed process) stops counting after three heartbeats
        async with stores[1].session() as session:
            session.add(ClusterMember(member="gone", host="h", pid=1, started_at=dt.datetime.now(dt.timezone.utc),
                                      seen_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
            await session.commit()
        assert await members[0].renew() == 1
    finally:
        for m in members:
            await m.leave()
        for s in stores:
            await s.close()


async def test_a_share_bounds_the_calls_in_flight() -> None:
    class Slow:
        name, department, families = "court", "court", frozenset[str]()

    link = DepartmentLink(Slow(), ResiliencePolicy(max_concurrency=6, timeout=0.3, retries=0))  # type: ignore[arg-type]
    assert link.share_between(3) == 2 and link.share_between(100) == 1 and link.share_between(2) == 3
    in_flight, peak = [0], [0]

    async def call() -> None:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await asyncio.sleep(0.05)
        in_flight[0] -= 1

    deadline = link.deadline_in(5.0)
    await asyncio.gather(*(link.call(call, deadline=deadline) for _ in range(12)))
    assert peak[0] == 3
