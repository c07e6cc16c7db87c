"""The anti-harvesting cap: distinct subjects per client and window, in memory and in real Redis."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from typing import Any, AsyncIterator, Callable

import pytest

from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.config import Settings
from xinlian.hub.guard.harvest import (
    ALERT_CODE,
    WINDOW_OFFSET,
    HarvestAdmission,
    HarvestCap,
    HarvestGuard,
    alert_entry,
    parse_cap,
)
from xinlian.hub.store import Store

DAY = 86400
# 2026-04-01 00:00 in Hohhot (UTC+8) = 2026-03-31T16:00Z, the start of a "day" window
MIDNIGHT_CST = 1774972800.0


class Clock:
    def __init__(self, now: float = MIDNIGHT_CST + 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


GuardFactory = Callable[..., HarvestGuard]


@pytest.fixture(params=["memory", "redis"])
async def make_guard(request: pytest.FixtureRequest, redis_key_prefix: str) -> AsyncIterator[GuardFactory]:
    """Guards on one backend; on Redis every guard made in a test shares the test's key prefix."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[HarvestGuard] = []

    def make(cap: str | HarvestCap | None, clock: Callable[[], float] | None = None) -> HarvestGuard:
        guard = HarvestGuard(cap, url, redis_key_prefix, clock=clock or Clock())
        made.append(guard)
        return guard

    yield make
    for guard in made:
        await guard.close()


# ---- the configured cap ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, cap",
    [
        ("500/day", HarvestCap(500, "day")),
        ("10/second", HarvestCap(10, "second")),
        (" 20 / minute ", HarvestCap(20, "minute")),
        ("3 per hour", HarvestCap(3, "hour")),
        ("7/Days", HarvestCap(7, "day")),
        ("0", None),
        ("off", None),
        ("OFF", None),
        ("0/day", None),
        ("", None),
    ],
)
def test_a_cap_is_read_from_its_text(text: str, cap: HarvestCap | None) -> None:
    assert parse_cap(text) == cap


@pytest.mark.parametrize("text", ["500", "500/week", "-1/day", "many/day", "1.5/day", "500/day;10/hour"])
def test_a_malformed_cap_is_refused_with_the_variable_named(text: str) -> None:
    with pytest.raises(ValueError, match=r"XINLIAN_AUTHORIZED_SUBJECT_CAP.*N/day"):
        parse_cap(text)


def test_settings_read_the_cap_and_refuse_a_bad_one(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XINLIAN_AUTHORIZED_SUBJECT_CAP", raising=False)
    assert Settings.from_env(tmp_path).authorized_subject_cap == "500/day"
    monkeypatch.setenv("XINLIAN_AUTHORIZED_SUBJECT_CAP", "40/hour")
    settings = Settings.from_env(tmp_path)
    assert settings.authorized_subject_cap == "40/hour"
    assert HarvestGuard.from_settings(settings).cap == HarvestCap(40, "hour")
    monkeypatch.setenv("XINLIAN_AUTHORIZED_SUBJECT_CAP", "40 a week")
    with pytest.raises(ValueError, match="XINLIAN_AUTHORIZED_SUBJECT_CAP"):
        Settings.from_env(tmp_path)


async def test_no_cap_admits_everything(make_guard: GuardFactory) -> None:
    guard = make_guard("off")
    assert not guard.enabled
    for i in range(50):
        assert await guard.admit("bank", f"S{i}") == HarvestAdmission(True, 0, 0, False)


# ---- counting -------------------------------------------------------------------------------
async def test_the_cap_admits_n_distinct_subjects_and_refuses_the_next(make_guard: GuardFactory) -> None:
    guard = make_guard("3/day")
    assert [await guard.admit("bank", s) for s in ("A", "B", "C")] == [
        HarvestAdmission(True, 1, 3, False),
        HarvestAdmission(True, 2, 3, False),
        HarvestAdmission(True, 3, 3, False),
    ]
    assert await guard.admit("bank", "D") == HarvestAdmission(False, 3, 3, True)


async def test_a_subject_already_counted_is_always_admitted_again(make_guard: GuardFactory) -> None:
    guard = make_guard("2/day")
    assert (await guard.admit("bank", "A")).allowed
    assert (await guard.admit("bank", "A")) == HarvestAdmission(True, 1, 2, False)  # not counted twice
    assert (await guard.admit("bank", "B")).allowed
    assert not (await guard.admit("bank", "C")).allowed
    for _ in range(3):  # after the cap is crossed, too
        assert await guard.admit("bank", "A") == HarvestAdmission(True, 2, 2, False)
        assert (await guard.admit("bank", "B")).allowed


async def test_crossed_is_reported_once_per_client_and_window(make_guard: GuardFactory) -> None:
    guard = make_guard("2/day")
    for s in ("A", "B"):
        await guard.admit("bank", s)
    refusals = [await guard.admit("bank", f"X{i}") for i in range(10)]
    assert all(not r.allowed for r in refusals)
    assert [r.crossed for r in refusals] == [True] + [False] * 9
    assert all(r.count == 2 for r in refusals)


async def test_clients_are_counted_separately(make_guard: GuardFactory) -> None:
    guard = make_guard("2/day")
    for s in ("A", "B"):
        assert (await guard.admit("bank", s)).allowed
    assert (await guard.admit("bank", "C")).crossed
    for s in ("A", "B"):
        assert (await guard.admit("agency", s)).allowed
    refused = await guard.admit("agency", "C")
    assert not refused.allowed and refused.crossed  # the agency's own first refusal


async def test_a_new_window_starts_counting_afresh(make_guard: GuardFactory) -> None:
    clock = Clock(MIDNIGHT_CST + DAY - 5)  # 23:59:55 in Hohhot
    guard = make_guard("2/day", clock)
    for s in ("A", "B"):
        assert (await guard.admit("bank", s)).allowed
    assert (await guard.admit("bank", "C")).crossed
    clock.now = MIDNIGHT_CST + DAY - 0.001  # still the same day
    assert await guard.admit("bank", "D") == HarvestAdmission(False, 2, 2, False)
    clock.now = MIDNIGHT_CST + DAY  # midnight in Hohhot: a new window
    assert await guard.admit("bank", "C") == HarvestAdmission(True, 1, 2, False)
    assert await guard.admit("bank", "D") == HarvestAdmission(True, 2, 2, False)
    assert await guard.admit("bank", "A") == HarvestAdmission(False, 2, 2, True)  # crossed again, once
    assert await guard.admit("bank", "B") == HarvestAdmission(False, 2, 2, False)


async def test_windows_follow_china_standard_time(make_guard: GuardFactory) -> None:
    clock = Clock(MIDNIGHT_CST + 15 * 3600)  # 15:00 in Hohhot = 07:00 UTC
    guard = make_guard("1/day", clock)
    assert (await guard.admit("bank", "A")).allowed
    clock.now += 2 * 3600  # 17:00 in Hohhot, a new UTC day but the same day in Hohhot
    assert not (await guard.admit("bank", "B")).allowed
    assert WINDOW_OFFSET == 8 * 3600


async def test_short_windows_roll_over(make_guard: GuardFactory) -> None:
    clock = Clock(MIDNIGHT_CST)
    guard = make_guard("1/minute", clock)
    assert (await guard.admit("bank", "A")).allowed
    assert (await guard.admit("bank", "B")).crossed
    clock.now += 60
    assert (await guard.admit("bank", "B")).allowed
    assert (await guard.admit("bank", "A")).crossed


async def test_concurrent_admits_never_exceed_the_cap(make_guard: GuardFactory) -> None:
    guard = make_guard("25/day")
    results = await asyncio.gather(*(guard.admit("bank", f"S{i:03d}") for i in range(200)))
    assert sum(r.allowed for r in results) == 25
    assert sum(r.crossed for r in results) == 1


# ---- Redis: shared by every hub process -----------------------------------------------------
async def test_two_guards_sharing_redis_admit_no_more_than_the_cap_together(
    redis_url: str, redis_key_prefix: str
) -> None:
    clock = Clock()
    one = HarvestGuard("30/day", redis_url, redis_key_prefix, clock=clock)
    two = HarvestGuard("30/day", redis_url, redis_key_prefix, clock=clock)  # another process's pool
    try:
        subjects = [f"91150102MA{i:07d}X" for i in range(150)]
        calls = [(one if i % 2 else two).admit("bank", s) for i, s in enumerate(subjects)]
        calls += [(two if i % 2 else one).admit("bank", s) for i, s in enumerate(subjects)]  # each asked twice
        results = await asyncio.gather(*calls)
        admitted = {s for s, r in zip(subjects + subjects, results) if r.allowed}
        assert len(admitted) == 30
        assert sum(r.crossed for r in results) == 1
        assert all(r.count <= 30 for r in results)
        # the same subjects stay admitted by both, the others refused by both
        for s in subjects[:20]:
            assert (await one.admit("bank", s)).allowed == (s in admitted) == (await two.admit("bank", s)).allowed
        assert one.status()["storage"] == "redis" and one.status()["state"] == "ok"
    finally:
        await one.close()
        await two.close()


_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from xinlian.hub.guard.harvest import HarvestGuard

    async def main(url, prefix, start):
        guard = HarvestGuard("40/day", url, prefix)
        try:
            subjects = [f"S{i:04d}" for i in range(start, start + 120)]
            results = await asyncio.gather(*(guard.admit("bank", s) for s in subjects))
            print(json.dumps([[s, r.allowed, r.crossed] for s, r in zip(subjects, results)]))
        finally:
            await guard.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_two_hub_processes_admit_no_more_than_the_cap_together(redis_url: str, redis_key_prefix: str) -> None:
    async def worker(start: int) -> list[list[Any]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WORKER, redis_url, redis_key_prefix, str(start),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return json.loads(out)

    first, second = await asyncio.gather(worker(0), worker(60))  # 60 subjects asked by both
    rows = first + second
    admitted = {s for s, allowed, _ in rows if allowed}
    assert len(admitted) == 40
    assert sum(crossed for _, _, crossed in rows) == 1


async def test_redis_keys_expire_with_their_window(redis_url: str, redis_key_prefix: str) -> None:
    import redis.asyncio

    clock = Clock(MIDNIGHT_CST + DAY - 100)  # 100 s before the window ends
    guard = HarvestGuard("1/day", redis_url, redis_key_prefix, clock=clock)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await guard.admit("bank", "A")
        await guard.admit("bank", "B")
        keys = [k async for k in client.scan_iter(match=f"{redis_key_prefix}:harvest:*")]
        assert len(keys) == 2
        for key in keys:
            assert 100 <= await client.ttl(key) <= 100 + 60
    finally:
        await client.aclose()
        await guard.close()


async def test_redis_down_fails_open_to_memory(caplog: pytest.LogCaptureFixture) -> None:
    guard = HarvestGuard("2/day", "redis://127.0.0.1:1/0", "xinlian-test-nowhere")
    try:
        await guard.start()
        assert guard.status()["state"] == "degraded"
        assert [(await guard.admit("bank", s)).allowed for s in ("A", "B", "C")] == [True, True, False]
        assert "Redis is unavailable" in caplog.text
        assert guard.status()["storage"] == "redis" and guard.redis_failures >= 1
    finally:
        await guard.close()


# ---- the alert ------------------------------------------------------------------------------
def test_the_alert_entry_names_the_client_the_cap_and_the_window() -> None:
    entry = alert_entry("demo-bank", "bank", 500, "day", "v3", "req-1")
    assert isinstance(entry, AuditEntry)
    assert (entry.endpoint, entry.outcome, entry.errors) == ("/graphql", "alert", [ALERT_CODE])
    assert (entry.client_id, entry.client_kind, entry.policy_version, entry.request_id) == ("demo-bank", "bank", "v3", "req-1")
    assert entry.detail == {"alert": "authorized-subject-cap", "cap": 500, "window": "day"}
    assert entry.subjects == [] and entry.released == []


async def test_the_alert_entry_is_stored_in_the_audit_chain(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    trail = AuditTrail(store)
    try:
        await trail.start()
        seq = await trail.record(alert_entry("demo-bank", "bank", 2, "day", "v1", "req-9"))
        (stored,) = await trail.tail(1)
        assert stored.seq == seq and stored.entry == alert_entry(
            "demo-bank", "bank", 2, "day", "v1", "req-9", at=stored.entry.at
        )
        assert '"outcome":"alert"' in stored.content and '"HARVEST_CAP_EXCEEDED"' in stored.content
    finally:
        await trail.stop()
        await store.close()
