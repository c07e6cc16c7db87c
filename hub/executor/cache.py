"""`PublicRecordCache`: a short-lived, bounded cache of PUBLIC records, per connector.

Off unless a connector sets `cache_ttl`. Only fetches whose every field is PUBLIC under the
active policy's default classes are cached, so SHARED, AUTHORIZED or CONFIDENTIAL data never
rests in the hub. It is a cache of what departments publish anyway, not a second copy of their
databases: entries expire after the connector's TTL and the cache holds at most `max_entries`.

The store is `cachetools.TLRUCache`: each entry expires at its own time (the TTL given to `put`,
so connectors with different TTLs share one cache), and when the cache is full the expired
entries go first, then the least recently used. The hand-written `OrderedDict` it replaced
evicted the least recently used entry even while expired ones were still held.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from cachetools import TLRUCache

from xinlian.connectors.contract import Record

CacheKey = tuple[str, str, str, tuple[str, ...]]  # connector, family, subject key, fields
_Entry = tuple[float, list[Record]]  # TTL in seconds, records


def _expires(key: CacheKey, entry: _Entry, now: float) -> float:
    return now + entry[0]


class PublicRecordCache:
    def __init__(self, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._entries: TLRUCache[CacheKey, _Entry] = TLRUCache(max_entries, _expires, clock)
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> list[Record] | None:
        found = self._entries.get(key)  # an expired entry is not found; a found one becomes most recent
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        return found[1]

    def put(self, key: CacheKey, records: list[Record], ttl: float) -> None:
        if ttl > 0 and self.max_entries > 0:
            self._entries[key] = (ttl, records)
        else:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        """Entries not expired."""
        return len(self._entries)


def cache_key(connector: str, family: str, key: str, fields: Sequence[str]) -> CacheKey:
    return (connector, family, key, tuple(fields))
