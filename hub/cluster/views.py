"""`FollowedView`: hub-owned state a process holds in memory and keeps as new as the store.

The view reloads in the background whenever the store's change feed (changes.py) says one of
its `topics` (watched tables) changed — within the feed's interval in every hub process,
milliseconds on PostgreSQL (NOTIFY) or with Redis. A change made through this process is seen at
once (`invalidate`). Without a (current) feed — the CLI, a store that stopped answering — a
reader's `fresh()` revalidates against the store at most once per `interval`. Subclasses say what
they hold and how to read it (`_revalidate`); readers call `await view.fresh()` once per request
and then read the view without touching the store.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar

from xinlian.hub.store import Store

if TYPE_CHECKING:
    from .changes import ChangeFeed


class FollowedView(ABC):
    """In-memory state of some watched tables (see the module docstring)."""

    topics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, store: Store, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self.reloads = 0  # reads that changed the view (for tests and metrics)
        self._checked = float("-inf")
        self._epoch = 0  # moved by every invalidation: a read begun before it does not count as fresh
        self._reading = 0  # the epoch the running read began in
        self._lock = asyncio.Lock()
        self._feed: ChangeFeed | None = None

    def follow(self, feed: "ChangeFeed") -> None:
        """Reload in the background whenever one of the view's tables changes in the store."""
        self._feed = feed
        feed.subscribe(self.topics, self._reload)

    async def _reload(self) -> None:
        async with self._lock:
            await self._read()

    async def _read(self) -> None:
        self._reading = self._epoch
        await self._revalidate()

    def invalidate(self) -> None:
        """A change made here: look again before the next answer (also when a read is under way:
        it may have read the store before the change)."""
        self._epoch += 1
        self._checked = float("-inf")

    def _due(self) -> bool:
        if self._checked == float("-inf"):
            return True  # never read, or changed here
        feed = self._feed
        if feed is not None and feed.current(self.interval + feed.interval):
            return False  # the feed reloads on every change it sees
        return self.clock() - self._checked >= self.interval

    async def fresh(self) -> None:
        """Make the view as new as the rules above promise (once per request)."""
        if self._due():
            async with self._lock:
                if self._due():
                    await self._read()

    def _checked_at(self, moment: float) -> None:
        """The read that began at `moment` is done: fresh until `interval` later — unless the view
        was invalidated while it ran."""
        if self._reading == self._epoch:
            self._checked = moment

    @abstractmethod
    async def _revalidate(self) -> None:
        """Read the store (cheaply first: reload only what moved); call `_checked_at(start)`."""
