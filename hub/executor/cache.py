"""`PublicRecordCache`: a short-lived, bounded cache of PUBLIC records, per connector.

Off unless a connector sets `cache_ttl`. Only fetches whose every field is PUBLIC under the
active policy's default classes are cached, so SHARED, AUTHORIZED or CONFIDENTIAL data never
rests in the hub. It is a cache of what departments publish anyway, not a second copy of their
databases: entries expire after the connector's TTL and the cache holds at most `max_entries`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Sequence

from xinlian.connectors.contract import Record

CacheKey = tuple[str, str, str, tuple[str, ...]]  # connector, family, subject key, fields


class PublicRecordCache:
    def __init__(self, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[CacheKey, tuple[float, list[Record]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> list[Record] | None:
        found = self._entries.get(key)
        if found is None or found[0] < self._clock():
            if found is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)  # least recently used goes first
        self.hits += 1
        return found[1]

    def put(self, key: CacheKey, records: list[Record], ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, records)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cache_key(connector: str, family: str, key: str, fields: Sequence[str]) -> CacheKey:
    return (connector, family, key, tuple(fields))
