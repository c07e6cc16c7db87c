"""`ChangeFeed`: how every hub process learns that hub-owned state changed, from one source.

The store announces its own changes (hub/store/change_triggers.py): a trigger on each watched
table (clients, purposes, revoked tokens, policy activations, objections, published keys) bumps
that table's counter in `change_generations` in the same transaction as the change, whoever
made it — a hub process, the CLI, an operator at a SQL prompt. A process that reads a counter
unchanged therefore knows the table is unchanged; one that reads it moved re-reads the table.

The feed replaces the per-cache pollers (policy every second, revocations on a request every
second, client facts per client every second, objections every second):

* **One read.** A background task reads all counters in one query (a few rows) every `interval`
  seconds (1 s), and calls the readers subscribed to the topics that moved. Readers reload in
  the background, never on a request.
* **Woken at once.** On PostgreSQL the trigger also sends `NOTIFY xinlian_changes`, delivered
  at commit; the feed LISTENs on a dedicated connection and reads the counters as soon as a
  notification arrives (milliseconds across the cluster). When Redis is configured
  (`XINLIAN_REDIS_URL`), a process that commits a change to a watched table through its store
  engine (seen by an engine event: `_note_statement`, `_note_commit`) calls `poke()`, which
  reads its own counters at once and publishes on `<prefix>:changes`, and every subscribed
  process reads the counters at once: the fast path for an SQLite store shared by several
  workers. The poll stays underneath both as the guarantee.
* **Known freshness.** `current(within)` says whether the counters were read successfully
  within the last `within` seconds. Consumers that must fail closed (revocations) check it and
  read the store themselves when the feed has fallen behind (the store is unreachable): they
  never serve on a stale view longer than before.
* **Readers fail safely.** A reader that raises keeps its previous view and is called again
  on the next read (its topics are not marked seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.store import Store
from xinlian.hub.store.change_triggers import CHANNEL
from xinlian.hub.store.models import ChangeGeneration

log = logging.getLogger("xinlian.cluster")

INTERVAL = 1.0  # seconds between two reads of the counters when nothing wakes the feed
Reader = Callable[[], Awaitable[object]]


@dataclass
class _Subscription:
    topics: frozenset[str]
    reader: Reader
    seen: dict[str, int] = field(default_factory=dict)  # topic → the generation this reader has read


class ChangeFeed:
    """The change counters of one hub store, followed by one background task per process."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = INTERVAL,
        redis_url: str | None = None,
        redis_prefix: str = "xinlian",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.interval = interval
        self.redis_url = redis_url
        self.channel = f"{redis_prefix}:changes"
        self.clock = clock
        self.generations: dict[str, int] = {}
        self.reads = 0  # successful reads of the counters (for tests and metrics)
        self.listening_postgres = False  # the PostgreSQL LISTEN connection is up
        self.listening_redis = False  # the Redis subscription is up
        self._subscriptions: list[_Subscription] = []
        self._confirmed: float | None = None  # clock() at the start of the last successful read
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False
        self._stopping = False
        self._redis: Any | None = None  # redis.asyncio.Redis, for publishing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pokes: set[asyncio.Task[None]] = set()

    # --- subscribing ------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str], reader: Reader) -> None:
        """Call `await reader()` whenever one of `topics` (watched table names) changed.

        The reader is not called for the counters the feed holds at subscription time: it is
        expected to hold a view at least as new. Subscribed before `start()` (the feed holds no
        counters yet), it is called on the first read for every topic that has ever changed, so
        a change made between building a cache and following the feed is not missed.
        """
        subscription = _Subscription(frozenset(topics), reader)
        subscription.seen = {t: self.generations.get(t, 0) for t in subscription.topics}
        self._subscriptions.append(subscription)

    def age(self) -> float:
        """Seconds since the counters were last read successfully (infinity: never)."""
        return float("inf") if self._confirmed is None else self.clock() - self._confirmed

    def current(self, within: float) -> bool:
        """Whether the counters were read successfully less than `within` seconds ago."""
        return self._confirmed is not None and self.clock() - self._confirmed < within

    # --- running ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the counters once, then follow them (poll, PostgreSQL LISTEN, Redis)."""
        await self.check()
        self._loop = asyncio.get_running_loop()
        engine = self.store.engine.sync_engine
        if not event.contains(engine, "after_cursor_execute", self._note_statement):
            event.listen(engine, "after_cursor_execute", self._note_statement)
            event.listen(engine, "commit", self._note_commit)
            event.listen(engine, "rollback", self._note_rollback)
        self._stopping = False
        self._tasks.append(asyncio.create_task(self._poll(), name="xinlian-change-feed"))
        if self._postgres_dsn() is not None:
            self._tasks.append(asyncio.create_task(self._listen_postgres(), name="xinlian-change-listen"))
        if self.redis_url:
            self._tasks.append(asyncio.create_task(self._listen_redis(), name="xinlian-change-redis"))

    async def stop(self) -> None:
        engine = self.store.engine.sync_engine
        if event.contains(engine, "after_cursor_execute", self._note_statement):
            event.remove(engine, "after_cursor_execute", self._note_statement)
            event.remove(engine, "commit", self._note_commit)
            event.remove(engine, "rollback", self._note_rollback)
        tasks, self._tasks = self._tasks, []
        self._stopping = True
        self.wake()
        if tasks:  # the poll ends after its current read: never cancelled inside a store query
            with contextlib.suppress(TimeoutError):
                await asyncio.wait({tasks[0]}, timeout=5.0)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        redis, self._redis = self._redis, None
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    def wake(self) -> None:
        """Read the counters now instead of at the next tick."""
        self._wake.set()

    async def poke(self) -> None:
        """This process changed something: read the counters now, and tell the other processes
        through Redis when it is configured (PostgreSQL's NOTIFY has told them already)."""
        self.wake()
        if not self.redis_url:
            return
        try:
            if self._redis is None:
                from redis.asyncio import Redis

                self._redis = Redis.from_url(self.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            await self._redis.publish(self.channel, "changed")
        except Exception as exc:  # Redis is only the fast path: the poll still carries the change
            log.debug("change feed: cannot publish on Redis: %r", exc)

    # --- noticing this process's own changes (engine events, run where the statement ran) -----

    def _note_statement(self, conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement[:6].upper() in ("INSERT", "UPDATE", "DELETE") and any(t in statement for t in self.generations):
            conn.info["xinlian_changed"] = True

    def _note_commit(self, conn: Any) -> None:
        if conn.info.pop("xinlian_changed", False) and self._loop is not None:
            self._loop.call_soon_threadsafe(self._poke_soon)

    def _note_rollback(self, conn: Any) -> None:
        conn.info.pop("xinlian_changed", None)

    def _poke_soon(self) -> None:
        task = asyncio.ensure_future(self.poke())
        self._pokes.add(task)
        task.add_done_callback(self._pokes.discard)

    async def check(self) -> set[str]:
        """Read the counters; call the readers of topics that moved. Returns the moved topics."""
        async with self._lock:
            started = self.clock()
            try:
                async with self.store.session() as session:
                    rows = await session.execute(select(ChangeGeneration.topic, ChangeGeneration.generation))
                    generations = {topic: int(generation) for topic, generation in rows}
            except (SQLAlchemyError, OSError) as exc:
                if not self._failing:
                    log.warning("change feed: cannot read the store's change counters: %r", exc)
                self._failing = True
                raise
            if self._failing:
                log.info("change feed: reading the store's change counters again")
            self._failing = False
            moved = {t for t, g in generations.items() if self.generations.get(t) != g}
            self.generations = generations
            self._confirmed = started
            self.reads += 1
            for subscription in self._subscriptions:
                behind = {t: generations.get(t, 0) for t in subscription.topics if subscription.seen.get(t) != generations.get(t, 0)}
                if not behind:
                    continue
                try:
                    await subscription.reader()
                except Exception as exc:  # keep the reader's previous view; try again next time
                    log.warning("change feed: reloading after a change to %s failed: %r", ", ".join(sorted(behind)), exc)
                else:
                    subscription.seen.update(behind)
            return moved

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # logged by check(); the next tick tries again
                pass

    # --- being woken ------------------------------------------------------------------------

    def _postgres_dsn(self) -> str | None:
        url = make_url(self.store.url)
        if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
            return None
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def _listen_postgres(self) -> None:
        """LISTEN on a dedicated connection; reconnect after a loss (polling covers the gap)."""
        import asyncpg  # type: ignore[import-untyped]

        dsn = self._postgres_dsn()
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection: lost.set())
                await connection.add_listener(CHANNEL, lambda *_args: self.wake())
                self.listening_postgres = True
                self.wake()  # changes made while we were not listening
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(30):
                            await lost.wait()
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1")  # a dead socket shows itself here
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("change feed: PostgreSQL LISTEN lost: %r", exc)
            finally:
                self.listening_postgres = False
                if connection is not None and not connection.is_closed():
                    connection.terminate()  # at once: a graceful close could wait on a cancelled query
            await asyncio.sleep(self.interval)

    async def _listen_redis(self) -> None:
        """Subscribe to `<prefix>:changes`; reconnect after a loss (polling covers the gap)."""
        from redis.asyncio import Redis

        while True:
            client = Redis.from_url(self.redis_url or "", socket_connect_timeout=1.0)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.listening_redis = True
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("change feed: Redis subscription lost: %r", exc)
            finally:
                self.listening_redis = False
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(self.interval)
