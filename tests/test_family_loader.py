"""`FamilyLoader` on its own: batching, concurrency, the PUBLIC cache, and connectors that fail.

A fake connector behind a real `DepartmentLink` (no retries) records every call; nothing else
is running, so the figures are exact.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Sequence

import pytest

from xinlian.connectors.contract import ConnectorError, UpstreamUnavailable
from xinlian.connectors.resilience import DepartmentLink, ResiliencePolicy
from xinlian.hub.executor.cache import PublicRecordCache, cache_key
from xinlian.hub.executor.federation import Department
from xinlian.hub.executor.loader import FamilyLoader

FIELDS = frozenset({"name", "status"})


class FakeConnector:
    name = "market"
    department = "Market bureau"
    families = ("registration",)
    timeout = 5.0

    def __init__(self, batch_size: int = 3, answer: Any = None) -> None:
        self.batch_size = batch_size
        self.answer = answer  # a callable (keys) -> result, or None for one record per key
        self.calls: list[tuple[list[str], tuple[str, ...]]] = []
        self.in_flight = self.most_in_flight = 0

    def provides(self, family: str) -> frozenset[str]:
        return frozenset({"name", "status"})

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> Any:
        self.calls.append((list(keys), tuple(fields)))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        if self.answer is not None:
            return self.answer(list(keys))
        return {k: [{"name": f"name of {k}"}] for k in keys}

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        return []

    async def close(self) -> None:
        pass


def department(connector: FakeConnector, cache_ttl: float = 0.0) -> Department:
    link = DepartmentLink(connector, ResiliencePolicy(timeout=5.0, retries=0, max_concurrency=16))  # type: ignore[arg-type]
    return Department(connector, link, cache_ttl)  # type: ignore[arg-type]


def loader(connector: FakeConnector, **options: Any) -> FamilyLoader:
    cache_ttl = options.pop("cache_ttl", 0.0)
    return FamilyLoader(department(connector, cache_ttl), "registration", time.monotonic() + 30, **options)


async def settle(awaitables: list[Any]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*awaitables, return_exceptions=True), 5)


@pytest.mark.parametrize("subjects, batch_size", [(1, 3), (3, 3), (7, 3), (100, 7), (250, 100)])
async def test_n_subjects_cost_ceil_n_over_batch_size_concurrent_calls(subjects: int, batch_size: int) -> None:
    connector = FakeConnector(batch_size)
    family = loader(connector)
    keys = [f"K{i}" for i in range(subjects)]
    results = await settle([family.load(k, FIELDS) for k in keys])
    calls = math.ceil(subjects / batch_size)
    assert len(connector.calls) == calls
    assert connector.most_in_flight == calls  # every chunk in flight at once, not one after another
    assert sorted(k for keys_, _ in connector.calls for k in keys_) == sorted(keys)
    assert all(len(keys_) <= batch_size for keys_, _ in connector.calls)
    assert {fields for _, fields in connector.calls} == {("name", "status")}
    assert results == [[{"name": f"name of {k}"}] for k in keys]


async def test_a_key_asked_twice_in_one_turn_is_fetched_once() -> None:
    connector = FakeConnector(batch_size=2)
    family = loader(connector)
    results = await settle([family.load(k, FIELDS) for k in ("A", "B", "A", "C", "B")])
    assert sorted(k for keys, _ in connector.calls for k in keys) == ["A", "B", "C"]
    assert len(connector.calls) == 2
    assert results[0] == results[2] == [{"name": "name of A"}]


async def test_only_the_fields_the_connector_provides_are_asked() -> None:
    connector = FakeConnector()
    await settle([loader(connector).load("A", frozenset({"status", "not_mapped"}))])
    assert connector.calls == [(["A"], ("status",))]


async def test_public_cache_hits_are_not_fetched_and_do_not_take_a_place_in_a_batch() -> None:
    connector = FakeConnector(batch_size=3)
    cache = PublicRecordCache()
    fields = ("name", "status")
    cached = [f"K{i}" for i in range(0, 10, 2)]  # 5 of 10 subjects
    for key in cached:
        cache.put(cache_key("market", "registration", key, fields), [{"name": "cached"}], ttl=60)
    family = loader(connector, cache=cache, cacheable=True, cache_ttl=60)
    keys = [f"K{i}" for i in range(10)]
    results = await settle([family.load(k, FIELDS) for k in keys])
    assert len(connector.calls) == math.ceil(5 / 3)  # the 5 keys not cached, not ceil(10 / 3)
    assert sorted(k for ks, _ in connector.calls for k in ks) == sorted(set(keys) - set(cached))
    assert [r == [{"name": "cached"}] for r in results] == [k in cached for k in keys]
    assert (cache.hits, cache.misses) == (5, 5)
    assert len(cache) == 10  # what was fetched is cached now
    assert cache.get(cache_key("market", "registration", "K1", fields)) == [{"name": "name of K1"}]


async def test_the_cache_is_not_used_unless_the_fields_are_public_and_the_department_allows_it() -> None:
    cache = PublicRecordCache()
    for options in ({"cacheable": False, "cache_ttl": 60}, {"cacheable": True, "cache_ttl": 0.0}):
        connector = FakeConnector()
        await settle([loader(connector, cache=cache, **options).load("A", FIELDS)])
        assert len(connector.calls) == 1
    assert len(cache) == 0 and cache.hits == cache.misses == 0


async def test_a_failed_chunk_fails_only_its_own_keys() -> None:
    def answer(keys: list[str]) -> Any:
        if "K0" in keys:
            raise UpstreamUnavailable("Market bureau", "down for this chunk", "timeout")
        return {k: [{"name": k}] for k in keys}

    connector = FakeConnector(batch_size=2, answer=answer)
    family = loader(connector)
    results = await settle([family.load(f"K{i}", FIELDS) for i in range(4)])
    assert [type(r).__name__ for r in results] == ["UpstreamUnavailable", "UpstreamUnavailable", "list", "list"]


@pytest.mark.parametrize("broken", [["not", "a", "dict"], None, "text"])
async def test_a_connector_answering_something_else_than_a_dict_fails_every_waiter_as_unavailable(
    broken: Any, caplog: pytest.LogCaptureFixture
) -> None:
    connector = FakeConnector(batch_size=2, answer=lambda keys: broken)
    family = loader(connector)
    results = await settle([family.load(f"K{i}", FIELDS) for i in range(5)])
    assert all(isinstance(r, UpstreamUnavailable) for r in results), results
    assert {r.reason for r in results} == {"connector_error"}
    assert {r.department for r in results} == {"Market bureau"}
    assert "loader for market/registration failed" in caplog.text and "not a dict" in caplog.text


async def test_a_key_answered_with_something_else_than_records_fails_that_key_only() -> None:
    connector = FakeConnector(answer=lambda keys: {"A": [{"name": "a"}], "B": "not a list", "C": ValueError("x")})
    family = loader(connector)
    a, b, c, d = await settle([family.load(k, FIELDS) for k in "ABCD"])
    assert a == [{"name": "a"}] and d == []  # a key without records may be absent
    for failed in (b, c):
        assert isinstance(failed, UpstreamUnavailable) and failed.reason == "connector_error"


async def test_a_per_key_connector_error_reaches_that_key() -> None:
    error = ConnectorError("Market bureau", "one bad row", "invalid_data")
    connector = FakeConnector(answer=lambda keys: {"A": error, "B": [{"name": "b"}]})
    a, b = await settle([loader(connector).load(k, FIELDS) for k in "AB"])
    assert a is error and b == [{"name": "b"}]


async def test_a_loader_that_fails_outside_the_fetch_still_answers_every_waiter() -> None:
    class Broken(FakeConnector):
        def provides(self, family: str) -> frozenset[str]:
            raise RuntimeError("mapping lost")

    connector = Broken()
    results = await settle([loader(connector).load(k, FIELDS) for k in "ABC"])
    assert all(isinstance(r, UpstreamUnavailable) and r.reason == "connector_error" for r in results)
    assert connector.calls == []


async def test_the_request_deadline_bounds_the_call() -> None:
    connector = FakeConnector()
    family = FamilyLoader(department(connector), "registration", time.monotonic() - 1)
    [result] = await settle([family.load("A", FIELDS)])
    assert isinstance(result, ConnectorError) and result.reason == "deadline"
    assert connector.calls == []


async def test_loads_of_a_later_turn_are_a_new_batch() -> None:
    connector = FakeConnector(batch_size=10)
    family = loader(connector)
    first = await settle([family.load("A", FIELDS)])
    second = await settle([family.load("B", FIELDS), family.load("C", FIELDS)])
    assert first == [[{"name": "name of A"}]] and len(second) == 2
    assert [keys for keys, _ in connector.calls] == [["A"], ["B", "C"]]
