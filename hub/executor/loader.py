"""`FamilyLoader`: per-request batching of one department's fetches for one record family.

Loads issued in the same event-loop turn are merged: unique subject keys, the union of the
requested fields, split into chunks of the connector's batch size, fetched concurrently through
the department's `DepartmentLink` (bulkhead, timeout, retries, circuit breaker) within the
request's deadline. N subjects therefore cost ceil(N / batch size) calls.

When the department allows it (`cache_ttl`) and every field asked is PUBLIC, keys found in the
`PublicRecordCache` are not fetched again, and take no place in a chunk: ceil(keys not cached /
batch size) calls.

A department that fails (`ConnectorError`) fails the keys of its chunk. A connector that breaks
the contract (an answer that is not a dict, a key answered with neither records nor a
`ConnectorError`, or any other error in the loader) gives every key concerned
`UpstreamUnavailable` ("connector_error"), logged: no caller receives a raw error or waits forever.

Why not `strawberry.dataloader.DataLoader`: it batches the same way (loads of one turn, one task
per `max_batch_size` batch, so batches run concurrently), but it splits batches as keys are
loaded, so the PUBLIC cache would have to be looked up in `load` to keep cached keys out of
them; and it costs more CPU: a `LoaderTask`, a memo entry and a done-callback per load. Measured
on `bench/batch_cpu.py` (1,000 subjects, 6,000 loads per request), runs interleaved on one tree:
+75 to +295 ms per request over this loader's 840-1,010 ms, most of it in garbage collection, with
or without its memo.

`load_many(keys, fields)` is `load` for many keys as one pending entry: one future for all of
them (each key's outcome its records or its `ConnectorError`), resolved at the same moment and in
the same order as their `load` futures would be. `load_records(ctx, family, keys, fields)` loads a
family for many subjects from every source department through the request's loaders, one
`load_many` per source: the one way the executor reads records (the planned executor,
`planned.py`, issues the same entries itself). `combine` joins one key's outcomes from its sources.

For a family under the review before publication (the policy's `publication-review` rule), the
request gives the loader a `ReviewSighting` (hub/cases/review.py): once the department answered,
it notes each record's key and department in the request's caches — the facts the row rule reads
through `SubjectFacts.publication` — and queues records met for the first time (in memory; written
in the background). The records themselves are neither copied nor changed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from xinlian.connectors.contract import ConnectorError, FetchResult, Record, UpstreamUnavailable
from xinlian.schema.catalogue import RecordFamily

from .cache import PublicRecordCache, cache_key
from .federation import Department

if TYPE_CHECKING:
    from xinlian.hub.cases.review import ReviewSighting

    from .request import RequestContext

log = logging.getLogger("xinlian.executor")

Outcome = list[Record] | ConnectorError  # one key's answer from one department
# a pending load: its keys, the fields asked, its future, and whether it is one key (`load`) or many
_Pending = tuple[tuple[str, ...], frozenset[str], "asyncio.Future[Any]", bool]


class FamilyLoader:
    def __init__(
        self,
        department: Department,
        family: str,
        deadline: float,
        cache: PublicRecordCache | None = None,
        cacheable: bool = False,
        review: "ReviewSighting | None" = None,
    ) -> None:
        self.department = department
        self.family = family
        self.deadline = deadline
        self.cache = cache if cacheable and department.cache_ttl > 0 else None
        self.review = review  # the review before publication, for a reviewed family (hub/cases/review.py)
        self.asked = False  # the department was called (not only the cache read): its availability was tried
        self._pending: list[_Pending] = []
        self._scheduled = False

    def load(self, key: str, fields: frozenset[str]) -> "asyncio.Future[list[Record]]":
        """Records of `family` for `key` with (at least) `fields`; resolved after the batch call."""
        return self._enqueue((key,), fields, True)

    def load_many(self, keys: Sequence[str], fields: frozenset[str]) -> "asyncio.Future[list[Outcome]]":
        """Each key's records (or its department's `ConnectorError`), in the order of `keys`: one
        pending entry, batched with every other load of this turn exactly as `load` is."""
        return self._enqueue(tuple(keys), fields, False)

    def _enqueue(self, keys: tuple[str, ...], fields: frozenset[str], single: bool) -> "asyncio.Future[Any]":
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, fields, future, single))
        if not self._scheduled:
            self._scheduled = True
            # Two hops: let every sibling resolver of this turn enqueue its key first.
            loop.call_soon(lambda: loop.create_task(self._dispatch()))
        return future

    async def _dispatch(self) -> None:
        pending, self._pending, self._scheduled = self._pending, [], False
        try:
            await self._resolve(pending)
        except BaseException as exc:  # a connector broke the contract: no caller may wait forever
            cancelled = not isinstance(exc, Exception)
            failure = (
                UpstreamUnavailable(self.department.connector.department, "loader cancelled") if cancelled
                else self._broken(exc)
            )
            for _, _, future, _ in pending:
                if not future.done():
                    future.set_exception(failure)
            if cancelled:
                raise  # the waiters are answered; the cancellation goes on

    def _broken(self, exc: BaseException) -> UpstreamUnavailable:
        """The error callers get when the connector broke the contract (logged with its cause)."""
        log.error("loader for %s/%s failed", self.department.name, self.family, exc_info=exc)
        return UpstreamUnavailable(
            self.department.connector.department, f"connector failed ({type(exc).__name__})", "connector_error"
        )

    async def _resolve(self, pending: list[_Pending]) -> None:
        connector = self.department.connector
        requested: frozenset[str] = frozenset().union(*(f for _, f, _, _ in pending))
        fields = tuple(sorted(requested & connector.provides(self.family)))
        by_key: dict[str, list[Record] | BaseException] = {}
        keys = list(dict.fromkeys(key for entry_keys, _, _, _ in pending for key in entry_keys))
        if self.cache is not None:
            for key in keys:
                cached = self.cache.get(cache_key(connector.name, self.family, key, fields))
                if cached is not None:
                    by_key[key] = cached
            keys = [k for k in keys if k not in by_key]
        size = max(1, int(connector.batch_size))
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        self.asked = self.asked or bool(chunks)
        results = await asyncio.gather(*(self._fetch(chunk, fields) for chunk in chunks), return_exceptions=True)
        for chunk, result in zip(chunks, results):
            if isinstance(result, BaseException) and not isinstance(result, ConnectorError):
                result = self._broken(result)
            not_records: UpstreamUnavailable | None = None
            for key in chunk:
                if isinstance(result, BaseException):
                    by_key[key] = result
                    continue
                value = result.get(key, [])
                if not isinstance(value, (list, ConnectorError)):
                    not_records = not_records or self._broken(TypeError(f"a key answered with {type(value).__name__}"))
                    value = not_records  # logged once per chunk
                by_key[key] = value
                if self.cache is not None and isinstance(value, list):
                    self.cache.put(cache_key(connector.name, self.family, key, fields), value, self.department.cache_ttl)
        if self.review is not None:  # each record's department noted for the review, new ones queued
            await self.review.apply(self.department.name, by_key, requested)
        for entry_keys, _, future, single in pending:
            if future.done():
                continue
            if not single:
                future.set_result([by_key[key] for key in entry_keys])
                continue
            outcome = by_key[entry_keys[0]]
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _fetch(self, keys: Sequence[str], fields: Sequence[str]) -> FetchResult:
        result = await self.department.link.fetch(self.family, keys, fields, deadline=self.deadline)
        if not isinstance(result, dict):
            raise TypeError(f"fetch returned {type(result).__name__}, not a dict")
        return result


async def load_records(
    ctx: "RequestContext",
    family: RecordFamily,
    keys: list[str],
    fields: frozenset[str],
    sources: "list[Department] | None" = None,
) -> dict[str, list[Record] | list[ConnectorError]]:
    """Records per key from every source (or from `sources`, some of them); a key maps to its
    failures if any source failed."""
    if sources is None:
        sources = ctx.federation.sources(family.name)
    loaders = [ctx.loader(d, family.name, fields) for d in sources]  # one look-up per source, not per key
    # one entry per source for all the keys: the same batches, resolved when `load` would be
    answers = await asyncio.gather(*(loader.load_many(keys, fields) for loader in loaders), return_exceptions=True)
    per_source = [a if isinstance(a, list) else [a] * len(keys) for a in answers]
    return {key: combine(outcomes[i] for outcomes in per_source) for i, key in enumerate(keys)}


def combine(outcomes: Iterable[list[Record] | BaseException]) -> list[Record] | list[ConnectorError]:
    """One key's outcomes from its sources, in source order: the records of all of them, or the
    failures if any failed. Any other exception (not a department's failure) is raised."""
    records: list[Record] = []
    failures: list[ConnectorError] = []
    for result in outcomes:
        if isinstance(result, ConnectorError):
            failures.append(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            records.extend(result)
    return failures if failures else records
