"""`ClusterMembers`: the hub processes sharing one store, counted by heartbeat.

Each hub process joins `cluster_members` at start-up (a random member id, its host and pid),
renews its `seen_at` every `heartbeat` seconds (5 s) and leaves at shutdown. A member not seen
for `3 × heartbeat` seconds (crashed, killed, host lost) no longer counts, and its row is
removed after a day. The live count is what the per-department concurrency budget is divided
by (`Federation.share_between`): with N processes each takes `max_concurrency // N` (at least
one) of a department's slots, so the cluster as a whole keeps a department's budget without a
round trip per call. Counting needs no coordinator: every process reads the same table.

The count changes at most once per heartbeat; while a member is joining or leaving the cluster
may briefly be one process off, which the division's rounding down absorbs except at a budget
smaller than the number of processes (each process keeps one slot: see docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from typing import Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.store import Store
from xinlian.hub.store.models import ClusterMember

log = logging.getLogger("xinlian.cluster")

HEARTBEAT = 5.0  # seconds between two renewals of this process's row
FORGET_AFTER = dt.timedelta(days=1)  # rows of members gone this long are deleted

Listener = Callable[[int], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ClusterMembers:
    """This process's membership of the cluster, and how many members are alive."""

    def __init__(self, store: Store, *, heartbeat: float = HEARTBEAT, host: str | None = None) -> None:
        self.store = store
        self.heartbeat = heartbeat
        self.member = uuid.uuid4().hex
        self.host = (host or socket.gethostname())[:255]
        self.pid = os.getpid()
        self.count = 1  # this process, until the table says otherwise
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._leaving = asyncio.Event()

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(count)` now and whenever the number of live members changes."""
        self._listeners.append(listener)
        listener(self.count)

    async def join(self) -> None:
        """Add this process and start the heartbeat."""
        now = _now()
        async with self.store.session() as session:
            session.add(ClusterMember(member=self.member, host=self.host, pid=self.pid, started_at=now, seen_at=now))
            await session.commit()
        await self.renew()
        if self._task is None:
            self._task = asyncio.create_task(self._beat(), name="xinlian-cluster-heartbeat")

    async def leave(self) -> None:
        """Stop the heartbeat and remove this process (the others see one member fewer)."""
        task, self._task = self._task, None
        self._leaving.set()
        if task is not None:  # the heartbeat ends after its current renewal: never cut inside a query
            await asyncio.wait({task}, timeout=5.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(SQLAlchemyError, OSError):
            async with self.store.session() as session:
                await session.execute(delete(ClusterMember).where(ClusterMember.member == self.member))
                await session.commit()

    async def renew(self) -> int:
        """Renew this process's heartbeat and count the live members (this one included)."""
        now = _now()
        live_since = now - dt.timedelta(seconds=3 * self.heartbeat)
        m = ClusterMember
        async with self.store.session() as session:
            await session.execute(update(m).where(m.member == self.member).values(seen_at=now))
            await session.execute(delete(m).where(m.seen_at < now - FORGET_AFTER))
            await session.commit()
            count = int(await session.scalar(select(func.count()).select_from(m).where(m.seen_at >= live_since)) or 0)
        count = max(1, count)
        if count != self.count:
            log.info("cluster: %d hub process(es) share the store (was %d)", count, self.count)
            self.count = count
            for listener in self._listeners:
                listener(count)
        return count

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat):
                    await self._leaving.wait()
            if self._leaving.is_set():
                return
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unreachable: keep the last count
                if not self._failing:
                    log.warning("cluster: cannot renew the heartbeat: %r", exc)
                self._failing = True
            else:
                self._failing = False
