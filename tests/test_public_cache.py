"""The PUBLIC record cache: expiry, least-recently-used eviction, keys that include the fields."""

from xinlian.hub.executor.cache import PublicRecordCache, cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache = PublicRecordCache(clock=clock)
    key = cache_key("market", "penalties", "K", ("decision_number",))
    cache.put(key, [{"decision_number": "1"}], ttl=10)
    clock.now = 9.9
    assert cache.get(key) == [{"decision_number": "1"}]
    clock.now = 10.1
    assert cache.get(key) is None and len(cache) == 0


def test_least_recently_used_is_evicted_first() -> None:
    cache = PublicRecordCache(max_entries=2, clock=Clock())
    a, b, c = (cache_key("market", "penalties", k, ("x",)) for k in "abc")
    cache.put(a, [], ttl=60)
    cache.put(b, [], ttl=60)
    assert cache.get(a) == []  # a is now more recent than b
    cache.put(c, [], ttl=60)
    assert cache.get(b) is None and cache.get(a) == [] and cache.get(c) == []


def test_other_fields_are_another_entry() -> None:
    cache = PublicRecordCache(clock=Clock())
    cache.put(cache_key("market", "penalties", "K", ("a",)), [{"a": 1}], ttl=60)
    assert cache.get(cache_key("market", "penalties", "K", ("a", "b"))) is None
