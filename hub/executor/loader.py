"""`FamilyLoader`: per-request batching of one connector's fetches for one record family.

Loads issued in the same event-loop turn are merged: unique subject keys, the union of the
requested fields, split into chunks of the connector's batch size, fetched concurrently, each
chunk bounded by the connector's timeout. N subjects therefore cost ceil(N / batch size) calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Sequence, TypeVar

from xinlian.connectors.contract import Connector, ConnectorError, Record, UpstreamUnavailable

log = logging.getLogger("xinlian.executor")
T = TypeVar("T")


class FamilyLoader:
    def __init__(self, connector: Connector, family: str) -> None:
        self.connector = connector
        self.family = family
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
        keys = list(dict.fromkeys(key for key, _, _ in pending))
        fields = sorted(frozenset().union(*(f for _, f, _ in pending)) & self.connector.provides(self.family))
        size = max(1, int(self.connector.batch_size))
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        results = await asyncio.gather(*(self._fetch(chunk, fields) for chunk in chunks), return_exceptions=True)
        by_key: dict[str, list[Record] | BaseException] = {}
        for chunk, result in zip(chunks, results):
            for key in chunk:
                by_key[key] = result if isinstance(result, BaseException) else result.get(key, [])
        for key, _, future in pending:
            if future.done():
                continue
            outcome = by_key[key]
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _fetch(self, keys: Sequence[str], fields: Sequence[str]) -> dict[str, list[Record]]:
        return await call_upstream(self.connector, self.connector.fetch(self.family, keys, fields))


async def call_upstream(connector: Connector, call: Awaitable[T]) -> T:
    """Await one connector call within its timeout; every failure becomes a `ConnectorError`."""
    try:
        return await asyncio.wait_for(call, timeout=connector.timeout)
    except ConnectorError:
        raise
    except (asyncio.TimeoutError, TimeoutError):
        raise UpstreamUnavailable(connector.department, f"no answer within {connector.timeout:g} s", "timeout") from None
    except Exception as exc:  # a connector bug must not take the request down
        log.exception("connector %s failed", connector.name)
        raise UpstreamUnavailable(connector.department, f"connector failed ({type(exc).__name__})") from None
