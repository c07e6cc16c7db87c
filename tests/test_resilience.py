"""The department link: circuit breaker, retries within the deadline, bulkhead and timeouts.

The behaviour under test is the link itself, so most tests drive it with a small in-test
department double on real asyncio and, where time matters, an injected clock. The last tests
put a real `SqlConnector` on a SQLite file behind the link and break and mend the file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any, Sequence

import pytest

from xinlian.connectors.contract import Health, Record, UpstreamInvalid, UpstreamUnavailable
from xinlian.connectors.mapping import ConnectorConfigError, parse_families
from xinlian.connectors.resilience import (
    CallRejected,
    CircuitState,
    DepartmentLink,
    LinkStatus,
    ResiliencePolicy,
    parse_resilience,
)
from xinlian.connectors.sql import SqlConnector

TAX = "新城区税务局"
A = "91150102MA0000001A"


class FakeTime:
    """A monotonic clock the test moves; its `sleep` moves it too (and yields to the loop)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.wall = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def wall_clock(self) -> dt.datetime:
        return self.wall + dt.timedelta(seconds=self.now - 1000.0)


class TaxBureauDouble:
    """A department that answers from a script: records, or an exception to raise, per call."""

    name = "tax"
    department = TAX
    families = frozenset({"tax_credit"})
    batch_size = 50
    timeout = 1.0

    def __init__(self, clock: FakeTime | None = None) -> None:
        self.script: list[Any] = []
        self.down = False  # when True and the script is empty, every call is refused
        self.latency = 0.0  # seconds of the fake clock each call takes
        self.delay = 0.0  # real seconds each call takes
        self.gate: asyncio.Event | None = None  # calls wait here while set
        self.clock = clock
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def provides(self, family: str) -> frozenset[str]:
        return frozenset({"level"})

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> dict[str, list[Record]]:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.clock is not None:
                self.clock.advance(self.latency)
            outcome = self.script.pop(0) if self.script else None
            if outcome is None and self.down:
                outcome = UpstreamUnavailable(TAX, "connection refused")
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome if outcome is not None else {k: [{"level": "A"}] for k in keys}
        finally:
            self.in_flight -= 1

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        return []

    async def health(self) -> Health:
        return Health(not self.down, "down" if self.down else "ok")

    async def close(self) -> None:
        return None


def down() -> UpstreamUnavailable:
    return UpstreamUnavailable(TAX, "connection refused")


def bad_data() -> UpstreamInvalid:
    return UpstreamInvalid(TAX, "tax_credit.level (column xydj): unknown code '9'")


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def tax(clock: FakeTime) -> TaxBureauDouble:
    return TaxBureauDouble(clock)


def link_for(department: Any, clock: FakeTime | None = None, **policy: Any) -> DepartmentLink:
    settings = {"timeout": 1.0, "retries": 0, "failure_threshold": 3, "reset_timeout": 30.0, **policy}
    if clock is None:
        return DepartmentLink(department, ResiliencePolicy(**settings))
    return DepartmentLink(
        department, ResiliencePolicy(**settings),
        clock=clock, wall_clock=clock.wall_clock, sleep=clock.sleep, random=lambda: 0.5,
    )


async def fetch(link: DepartmentLink, deadline: float, **options: Any) -> dict[str, list[Record]]:
    return await link.fetch("tax_credit", [A], ["level"], deadline=deadline, **options)


# ---- circuit breaker ------------------------------------------------------------------------


async def test_circuit_opens_after_consecutive_failures_and_then_fails_fast_without_asking(
    tax: TaxBureauDouble, clock: FakeTime
) -> None:
    link = link_for(tax, clock)
    tax.down = True
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable, match="connection refused"):
            await fetch(link, clock.now + 10)
    assert link.state is CircuitState.OPEN and tax.calls == 3

    started = time.monotonic()
    with pytest.raises(CallRejected, match="circuit open") as caught:
        await fetch(link, clock.now + 10)
    assert time.monotonic() - started < 0.1
    assert tax.calls == 3  # the department was not asked
    assert caught.value.reason == "circuit_open" and caught.value.department == TAX
    assert isinstance(caught.value, UpstreamUnavailable) and caught.value.code == "UPSTREAM_UNAVAILABLE"

    clock.advance(29.9)
    with pytest.raises(CallRejected, match="circuit open"):
        await fetch(link, clock.now + 10)
    assert tax.calls == 3


async def test_a_success_resets_the_count_of_consecutive_failures(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    tax.script = [down(), down(), None, down(), down()]
    outcomes = []
    for _ in range(5):
        try:
            await fetch(link, clock.now + 10)
            outcomes.append("ok")
        except UpstreamUnavailable:
            outcomes.append("down")
    assert outcomes == ["down", "down", "ok", "down", "down"]
    assert link.state is CircuitState.CLOSED and link.status().consecutive_failures == 2


async def test_after_the_reset_timeout_one_probe_goes_through_and_a_success_closes_the_circuit(
    tax: TaxBureauDouble, clock: FakeTime
) -> None:
    link = link_for(tax, clock)
    tax.down = True
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await fetch(link, clock.now + 10)
    clock.advance(30)
    assert link.state is CircuitState.HALF_OPEN

    tax.down = False
    assert await fetch(link, clock.now + 10) == {A: [{"level": "A"}]}
    status = link.status()
    assert status.state is CircuitState.CLOSED and status.consecutive_failures == 0
    assert status.opened_at is None and tax.calls == 4
    assert await fetch(link, clock.now + 10)  # and calls flow again
    assert tax.calls == 5


async def test_a_failed_probe_opens_the_circuit_for_another_reset_timeout(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    tax.down = True
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await fetch(link, clock.now + 10)
    first_opened = link.status().opened_at
    clock.advance(31)

    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        await fetch(link, clock.now + 10)  # the probe: asked, and still down
    assert tax.calls == 4
    status = link.status()
    assert status.state is CircuitState.OPEN and status.opened_at is not None and first_opened is not None
    assert status.opened_at > first_opened
    clock.advance(29)
    with pytest.raises(CallRejected, match="circuit open"):
        await fetch(link, clock.now + 10)
    assert tax.calls == 4
    clock.advance(1)
    tax.down = False
    assert await fetch(link, clock.now + 10)
    assert link.state is CircuitState.CLOSED


async def test_half_open_lets_exactly_one_probe_through(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    tax.down = True
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await fetch(link, clock.now + 10)
    clock.advance(30)
    tax.down, tax.gate = False, asyncio.Event()

    probe = asyncio.create_task(fetch(link, clock.now + 10))
    await asyncio.sleep(0.01)
    assert tax.calls == 4 and tax.in_flight == 1
    for _ in range(3):
        with pytest.raises(CallRejected, match="probe"):
            await fetch(link, clock.now + 10)
    assert tax.calls == 4
    tax.gate.set()
    assert await probe == {A: [{"level": "A"}]}
    assert link.state is CircuitState.CLOSED


async def test_a_cancelled_probe_lets_the_next_call_probe(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    tax.down = True
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await fetch(link, clock.now + 10)
    clock.advance(30)
    tax.down, tax.gate = False, asyncio.Event()
    probe = asyncio.create_task(fetch(link, clock.now + 10))
    await asyncio.sleep(0.01)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    tax.gate = None
    assert await fetch(link, clock.now + 10)
    assert link.state is CircuitState.CLOSED and link.status().in_flight == 0


async def test_bad_data_is_recorded_but_neither_retried_nor_counted_against_the_department(
    tax: TaxBureauDouble, clock: FakeTime
) -> None:
    link = link_for(tax, clock, retries=2)
    tax.script = [bad_data() for _ in range(6)]
    for _ in range(6):
        with pytest.raises(UpstreamInvalid) as caught:
            await fetch(link, clock.now + 10)
        assert caught.value.code == "UPSTREAM_INVALID"
    status = link.status()
    assert tax.calls == 6  # one attempt per call: asking again does not mend data
    assert status.state is CircuitState.CLOSED and status.consecutive_failures == 0
    assert status.invalid == 6 and status.failures == 0 and status.retries == 0
    assert status.last_error == "tax_credit.level (column xydj): unknown code '9'"
    assert status.condition == "degraded"
    await fetch(link, clock.now + 10)
    assert link.status().condition == "healthy"


async def test_an_answer_with_bad_data_closes_a_half_open_circuit(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    tax.script = [down(), down(), down(), bad_data()]
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await fetch(link, clock.now + 10)
    clock.advance(30)
    with pytest.raises(UpstreamInvalid):
        await fetch(link, clock.now + 10)
    assert link.state is CircuitState.CLOSED  # it answered: it is up


# ---- retries --------------------------------------------------------------------------------


async def test_unavailable_is_retried_after_an_exponential_backoff_with_jitter(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, retries=2, backoff_base=0.1, backoff_max=2.0)
    tax.script = [down(), down(), None]
    assert await fetch(link, clock.now + 10) == {A: [{"level": "A"}]}
    assert tax.calls == 3
    assert clock.slept == pytest.approx([0.075, 0.15])  # 0.1·2^n, "equal jitter" at draw 0.5
    status = link.status()
    assert (status.calls, status.attempts, status.retries, status.failures) == (1, 3, 2, 2)
    assert status.consecutive_failures == 0 and status.state is CircuitState.CLOSED


def test_backoff_doubles_is_capped_and_jitter_keeps_at_least_half() -> None:
    policy = ResiliencePolicy(backoff_base=0.1, backoff_max=0.3)
    assert policy.backoff(0, 0.0) == pytest.approx(0.05)
    assert policy.backoff(0, 0.999999) == pytest.approx(0.1)
    assert policy.backoff(1, 0.0) == pytest.approx(0.1)
    assert policy.backoff(5, 0.999999) == pytest.approx(0.3)
    assert policy.backoff(5, 0.0) == pytest.approx(0.15)


async def test_a_retry_happens_only_when_backoff_and_a_full_attempt_fit_before_the_deadline(
    tax: TaxBureauDouble, clock: FakeTime
) -> None:
    link = link_for(tax, clock, retries=3, backoff_base=0.1)
    tax.latency = 0.5  # each answer takes half a second
    tax.down = True
    start = clock.now
    # 0.5 s for the first attempt + 0.075 s backoff + 1.0 s timeout = 1.575 s: 1.5 s is too short
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        await fetch(link, start + 1.5)
    assert tax.calls == 1 and clock.slept == []

    tax.calls, start = 0, clock.now
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        await fetch(link, start + 1.6)
    assert tax.calls == 2 and clock.slept == pytest.approx([0.075])
    assert clock.now <= start + 1.6


async def test_retries_are_opt_out_per_call(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, retries=3)
    tax.down = True
    with pytest.raises(UpstreamUnavailable):
        await fetch(link, clock.now + 10, retry=False)
    assert tax.calls == 1 and clock.slept == []


async def test_retries_stop_when_the_circuit_opens(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, retries=5, failure_threshold=2)
    tax.down = True
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        await fetch(link, clock.now + 60)
    assert tax.calls == 2 and link.state is CircuitState.OPEN


async def test_a_connector_bug_is_unavailable_without_internals_and_not_retried(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, retries=3)
    tax.script = [KeyError("SELECT password FROM internal_table")]
    with pytest.raises(UpstreamUnavailable) as caught:
        await fetch(link, clock.now + 10)
    assert caught.value.message == "connector failed (KeyError)" and caught.value.department == TAX
    assert "SELECT" not in str(caught.value) and caught.value.__cause__ is None
    assert tax.calls == 1 and link.status().failures == 1


# ---- timeouts and the deadline -------------------------------------------------------------


async def test_a_slow_department_times_out_and_counts_as_a_failure() -> None:
    slow = TaxBureauDouble()
    slow.delay = 5.0
    link = link_for(slow, timeout=0.05)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match=r"no answer within 0\.05 s") as caught:
        await fetch(link, time.monotonic() + 10)
    assert time.monotonic() - started < 1.0
    assert not isinstance(caught.value, CallRejected)
    status = link.status()
    assert status.failures == 1 and status.consecutive_failures == 1 and status.in_flight == 0
    assert slow.in_flight == 0  # the department call was cancelled, not left running


async def test_the_request_deadline_cuts_an_attempt_short_without_blaming_the_department() -> None:
    slow = TaxBureauDouble()
    slow.delay = 5.0
    link = link_for(slow, timeout=3.0, retries=2)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="deadline"):
        await fetch(link, time.monotonic() + 0.05)
    elapsed = time.monotonic() - started
    assert 0.04 <= elapsed < 1.0
    assert slow.calls == 1 and link.status().consecutive_failures == 0


async def test_a_deadline_already_passed_asks_nobody(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    with pytest.raises(CallRejected) as caught:
        await fetch(link, clock.now - 0.001)
    assert caught.value.reason == "deadline" and tax.calls == 0 and link.status().rejected == 1


# ---- bulkhead -------------------------------------------------------------------------------


async def test_the_bulkhead_never_lets_more_than_max_concurrency_calls_in_flight() -> None:
    tax = TaxBureauDouble()
    tax.delay = 0.02
    link = link_for(tax, max_concurrency=3)
    deadline = time.monotonic() + 10
    results = await asyncio.gather(*(fetch(link, deadline) for _ in range(20)))
    assert len(results) == 20 and all(r == {A: [{"level": "A"}]} for r in results)
    assert tax.calls == 20 and tax.most_in_flight == 3
    assert link.status().in_flight == 0


async def test_waiting_for_a_slot_past_the_deadline_is_busy() -> None:
    tax = TaxBureauDouble()
    tax.gate = asyncio.Event()
    link = link_for(tax, max_concurrency=1)
    holder = asyncio.create_task(fetch(link, time.monotonic() + 10))
    await asyncio.sleep(0.01)
    assert link.status().in_flight == 1

    started = time.monotonic()
    with pytest.raises(CallRejected, match="busy") as caught:
        await fetch(link, time.monotonic() + 0.05)
    assert 0.04 <= time.monotonic() - started < 1.0
    assert caught.value.reason == "busy" and tax.calls == 1
    assert link.status().consecutive_failures == 0  # our own queue, not the department's fault

    tax.gate.set()
    assert await holder
    assert await fetch(link, time.monotonic() + 1)  # the slot came back


async def test_an_open_circuit_fails_fast_even_when_every_slot_is_taken(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, max_concurrency=1, failure_threshold=1)
    tax.script = [down()]
    with pytest.raises(UpstreamUnavailable):
        await fetch(link, clock.now + 10)
    started = time.monotonic()
    with pytest.raises(CallRejected, match="circuit open"):
        await fetch(link, clock.now + 10)
    assert time.monotonic() - started < 0.1


# ---- status ---------------------------------------------------------------------------------


async def test_status_is_a_frozen_snapshot_of_what_happened(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, failure_threshold=2)
    fresh = link.status()
    assert fresh == LinkStatus(
        connector="tax", department=TAX, state=CircuitState.CLOSED, consecutive_failures=0, last_error=None,
        last_error_at=None, last_success_at=None, opened_at=None, calls=0, attempts=0, failures=0, invalid=0,
        rejected=0, retries=0, in_flight=0, max_concurrency=8, slots=8,
    )
    assert fresh.condition == "healthy"

    await fetch(link, clock.now + 10)
    succeeded_at = clock.wall_clock()
    clock.advance(5)
    tax.down = True
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await fetch(link, clock.now + 10)
    failed_at = clock.wall_clock()
    with pytest.raises(CallRejected):
        await fetch(link, clock.now + 10)

    status = link.status()
    assert status.state is CircuitState.OPEN and status.condition == "open"
    assert status.consecutive_failures == 2
    assert status.last_error == "connection refused" and status.last_error_at == failed_at
    assert status.last_success_at == succeeded_at and status.opened_at == failed_at
    assert (status.calls, status.attempts, status.failures, status.rejected) == (4, 3, 2, 1)
    assert status.state.value == "open"
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.state = CircuitState.CLOSED  # type: ignore[misc]
    assert fresh.calls == 0  # earlier snapshots do not change

    clock.advance(30)
    assert link.status().state is CircuitState.HALF_OPEN and link.status().condition == "degraded"


async def test_check_probes_health_through_the_link_and_never_raises(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock, failure_threshold=1)
    assert (await link.check(deadline=clock.now + 5)).healthy
    tax.down = True
    health = await link.check(deadline=clock.now + 5)
    assert not health.healthy and health.detail == "down"
    assert link.state is CircuitState.OPEN
    health = await link.check(deadline=clock.now + 5)
    assert not health.healthy and "circuit open" in health.detail


async def test_the_call_takes_a_function_so_retries_get_a_fresh_awaitable(tax: TaxBureauDouble, clock: FakeTime) -> None:
    link = link_for(tax, clock)
    coroutine = tax.fetch("tax_credit", [A], ["level"])
    with pytest.raises(TypeError, match="function"):
        await link.call(coroutine, deadline=clock.now + 1)  # type: ignore[arg-type]
    coroutine.close()


# ---- configuration --------------------------------------------------------------------------


def test_policy_defaults_and_the_connector_timeout() -> None:
    assert parse_resilience(None, "c.resilience") == ResiliencePolicy()
    policy = parse_resilience(
        {"max_concurrency": 4, "retries": 0, "backoff_base": 0.2, "backoff_max": 1, "failure_threshold": 3,
         "reset_timeout": 10},
        "c.resilience", timeout=2.5,
    )
    assert policy == ResiliencePolicy(timeout=2.5, max_concurrency=4, retries=0, backoff_base=0.2, backoff_max=1.0,
                                      failure_threshold=3, reset_timeout=10.0)
    assert isinstance(policy.backoff_max, float) and isinstance(policy.max_concurrency, int)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("fast", "resilience is a table"),
        ({"max_concurency": 3}, "unknown option 'max_concurency'"),
        ({"timeout": 2}, "set the timeout on the connector itself"),
        ({"max_concurrency": 0}, r"max_concurrency: must be a whole number at least 1"),
        ({"max_concurrency": 2.5}, "max_concurrency"),
        ({"retries": -1}, "retries"),
        ({"retries": True}, "retries"),
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"reset_timeout": 0}, r"reset_timeout: must be a number of seconds greater than 0"),
        ({"backoff_base": "0.1"}, "backoff_base"),
        ({"backoff_max": float("inf")}, "backoff_max"),
        ({"backoff_base": 1.0, "backoff_max": 0.5}, "backoff_max: must be at least backoff_base"),
    ],
)
def test_bad_policy_values_are_configuration_errors_naming_the_item(raw: Any, message: str) -> None:
    with pytest.raises(ConnectorConfigError, match=message) as caught:
        parse_resilience(raw, "connectors.toml: connector[0] (tax).resilience")
    assert str(caught.value).startswith("connectors.toml: connector[0] (tax).resilience")


# ---- through a real SQL connector --------------------------------------------------------------


def _tax_db(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE nsxy (nsrsbh TEXT, xydj TEXT, pdnd TEXT);")
    conn.execute("INSERT INTO nsxy VALUES (?, ?, ?)", (A, "A", "2025"))
    conn.commit()
    conn.close()
    return path.read_bytes()


async def test_a_corrupted_department_database_opens_the_circuit_and_its_repair_closes_it(
    tmp_path: Path, clock: FakeTime
) -> None:
    path = tmp_path / "tax.db"
    good = _tax_db(path)
    families = parse_families(
        {"tax_credit": {"table": "nsxy", "key": "nsrsbh", "fields": {"level": "xydj", "year": "pdnd"}}}, "tax.families"
    )
    connector = SqlConnector("tax", TAX, f"sqlite+aiosqlite:///{path}", families)
    link = link_for(connector, clock, failure_threshold=2, retries=1, timeout=3.0)
    try:
        assert await link.fetch("tax_credit", [A], ["level"], deadline=clock.now + 10) == {A: [{"level": "A"}]}

        path.write_bytes(b"\x00garbage, not a database\xff" * 512)
        with pytest.raises(UpstreamUnavailable) as caught:
            await link.fetch("tax_credit", [A], ["level"], deadline=clock.now + 10)  # one try + one retry
        assert "not a database" in caught.value.message and caught.value.department == TAX
        assert len(connector.calls) == 3 and link.state is CircuitState.OPEN

        with pytest.raises(CallRejected, match="circuit open"):
            await link.fetch("tax_credit", [A], ["level"], deadline=clock.now + 10)
        assert len(connector.calls) == 3  # failing fast: the database was not touched
        assert link.status().condition == "open"

        path.write_bytes(good)
        clock.advance(30)
        assert await link.fetch("tax_credit", [A], ["year"], deadline=clock.now + 10) == {A: [{"year": 2025}]}
        status = link.status()
        assert status.state is CircuitState.CLOSED and status.condition == "healthy" and len(connector.calls) == 4
    finally:
        await connector.close()


async def test_waiting_for_a_slot_is_bounded_by_one_call_not_by_the_request() -> None:
    """A slow department answers "busy" after one call's timeout, long before the request's deadline."""
    tax = TaxBureauDouble()
    tax.gate = asyncio.Event()  # the first call holds the only slot
    link = link_for(tax, timeout=0.2, max_concurrency=1)
    first = asyncio.create_task(fetch(link, time.monotonic() + 30))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as caught:  # "busy", or its own timeout once it got the slot
        await fetch(link, time.monotonic() + 30)
    assert caught.value.reason in {"busy", "timeout"}
    assert time.monotonic() - started < 1.0, "bounded by the department's timeout, not the request's 30 s"
    tax.gate.set()
    with pytest.raises(UpstreamUnavailable):  # the held call itself timed out after 0.2 s
        await first
