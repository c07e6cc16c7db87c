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


def test_expired_entries_are_evicted_before_live_ones() -> None:
    """A full cache drops what has expired first, even if it was used more recently."""
    clock = Clock()
    cache = PublicRecordCache(max_entries=2, clock=clock)
    live, short, new = (cache_key("market", "penalties", k, ("x",)) for k in ("live", "short", "new"))
    cache.put(live, [{"x": 1}], ttl=3600)
    cache.put(short, [{"x": 2}], ttl=1)  # another connector's TTL; the most recently used entry
    clock.now = 5
    cache.put(new, [{"x": 3}], ttl=3600)
    assert cache.get(live) == [{"x": 1}] and cache.get(new) == [{"x": 3}] and cache.get(short) is None


def test_each_entry_keeps_its_own_ttl_and_len_counts_live_entries() -> None:
    clock = Clock()
    cache = PublicRecordCache(clock=clock)
    a, b = (cache_key(c, "penalties", "K", ("x",)) for c in ("market", "court"))
    cache.put(a, [], ttl=10)
    cache.put(b, [], ttl=60)
    clock.now = 30
    assert len(cache) == 1 and cache.get(a) is None and cache.get(b) == []
    assert (cache.hits, cache.misses) == (1, 1)


def test_no_ttl_stores_nothing_and_clear_empties() -> None:
    cache = PublicRecordCache(clock=Clock())
    key = cache_key("market", "penalties", "K", ("x",))
    cache.put(key, [], ttl=0)
    assert len(cache) == 0 and cache.get(key) is None
    cache.put(key, [], ttl=60)
    cache.put(key, [], ttl=0)  # a TTL of zero also drops what was there
    assert len(cache) == 0
    cache.put(key, [], ttl=60)
    cache.clear()
    assert len(cache) == 0 and cache.get(key) is None
    assert len(PublicRecordCache(max_entries=0)) == 0
    PublicRecordCache(max_entries=0).put(key, [], ttl=60)  # a cache of no entries holds none
