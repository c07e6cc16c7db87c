"""`FamilyLoader`: per-request batching of one department's fetches for one record family.

Loads issued in the same event-loop turn are merged: unique subject keys, the union of the
requested fields, split into chunks of the connector's batch size, fetched concurrently through
the department's `DepartmentLink` (bulkhead, timeout, retries, circuit breaker) within the
request's deadline. N subjects therefore cost ceil(N / batch size) calls.

When the department allows it (`cache_ttl`) and every field asked is PUBLIC, keys found in the
`PublicRecordCache` are not fetched again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from xinlian.connectors.contract import FetchResult, Record, UpstreamUnavailable

from .cache import PublicRecordCache, cache_key
from .federation import Department

log = logging.getLogger("xinlian.executor")


class FamilyLoader:
    def __init__(
        self,
        department: Department,
        family: str,
        deadline: float,
        cache: PublicRecordCache | None = None,
        cacheable: bool = False,
    ) -> None:
        self.department = department
        self.family = family
        self.deadline = deadline
        self.cache = cache if cacheable and department.cache_ttl > 0 else None
        self._pending: list[tuple[str, frozenset[str], asyncio.Future[list[Record]]]] = []
        self._scheduled = False

    def load(self, key: str, fields: frozenset[str]) -> "asyncio.Future[list[Record]]":
        """Records of `family` for `key` with (at least) `fields`; resolved after the batch call."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Record]] = loop.create_future()
        self._pending.append((key, fields, future))
        if not self._scheduled:
            self._scheduled = True
            # Two hops: let every sibling resolver of this turn enqueue its key first.
            loop.call_soon(lambda: loop.create_task(self._dispatch()))
        return future

    async def _dispatch(self) -> None:
        pending, self._pending, self._scheduled = self._pending, [], False
        try:
            await self._resolve(pending)
        except Exception as exc:  # a connector broke the contract: no caller may wait forever
            log.exception("loader for %s/%s failed", self.department.name, self.family)
            failure = UpstreamUnavailable(
                self.department.connector.department, f"connector failed ({type(exc).__name__})", "connector_error"
            )
            for _, _, future in pending:
                if not future.done():
                    future.set_exception(failure)

    async def _resolve(self, pending: list[tuple[str, frozenset[str], "asyncio.Future[list[Record]]"]]) -> None:
        connector = self.department.connector
        fields = tuple(sorted(frozenset().union(*(f for _, f, _ in pending)) & connector.provides(self.family)))
        by_key: dict[str, list[Record] | BaseException] = {}
        keys = list(dict.fromkeys(key for key, _, _ in pending))
        if self.cache is not None:
            for key in keys:
                cached = self.cache.get(cache_key(connector.name, self.family, key, fields))
                if cached is not None:
                    by_key[key] = cached
            keys = [k for k in keys if k not in by_key]
        size = max(1, int(connector.batch_size))
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        results = await asyncio.gather(*(self._fetch(chunk, fields) for chunk in chunks), return_exceptions=True)
        for chunk, result in zip(chunks, results):
            for key in chunk:
                if isinstance(result, BaseException):
                    by_key[key] = result
                    continue
                value = result.get(key, [])
                by_key[key] = value
                if self.cache is not None and not isinstance(value, BaseException):
                    self.cache.put(cache_key(connector.name, self.family, key, fields), value, self.department.cache_ttl)
        for key, _, future in pending:
            if future.done():
                continue
            outcome = by_key[key]
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _fetch(self, keys: Sequence[str], fields: Sequence[str]) -> FetchResult:
        result = await self.department.link.fetch(self.family, keys, fields, deadline=self.deadline)
        if not isinstance(result, dict):
            raise TypeError(f"fetch returned {type(result).__name__}, not a dict")
        return result
