"""`ClientDirectory`: what a request needs to know of its client beyond the token, kept fresh.

A token says who the client is and what scopes it holds; the purposes it is registered for and
the subject a `subject` client speaks for and the department a `department` client speaks for
live in the client registry and may change at any time (admin API, CLI). The directory reads them from the store and keeps each client's facts:

- in a hub (`follow(feed)`), until the store's change feed (hub/cluster/changes.py) says
  `clients` or `purposes` changed, which reaches every hub process within the feed's interval
  (1 s) or milliseconds (PostgreSQL NOTIFY, Redis); while the feed has fallen behind (the store
  is unreachable), for `ttl` seconds as below;
- without a feed, for `ttl` seconds (1 s by default).

A purpose that has been retired is left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from sqlalchemy import select

from xinlian.hub.store import Store
from xinlian.hub.store.models import ClientRecord, PurposeRecord

if TYPE_CHECKING:
    from xinlian.hub.cluster.changes import ChangeFeed

TTL = 1.0


@dataclass(frozen=True)
class ClientFacts:
    client_id: str
    name: str
    allowed_purposes: frozenset[str]
    subject_id: str | None
    department: str | None  # a `department` client's department: its connector's name in the federation


class ClientDirectory:
    def __init__(self, store: Store, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._facts: dict[str, tuple[float, ClientFacts | None]] = {}
        self._feed: ChangeFeed | None = None

    def follow(self, feed: "ChangeFeed") -> None:
        """Keep facts until the store's `clients` or `purposes` change (the change feed says so)."""
        self._feed = feed
        feed.subscribe(["clients", "purposes"], self._forget_all)

    async def _forget_all(self) -> None:
        self._facts.clear()

    async def facts(self, client_id: str) -> ClientFacts | None:
        """The client's facts (None for an unknown client): as of the feed's last read, or at
        most `ttl` seconds old without a (current) feed."""
        now = self.clock()
        cached = self._facts.get(client_id)
        if cached is not None:
            feed = self._feed
            if now - cached[0] < self.ttl or (feed is not None and feed.current(self.ttl + feed.interval)):
                return cached[1]
        found = await self._read(client_id)
        if len(self._facts) > 10_000:
            self._facts.clear()
        self._facts[client_id] = (now, found)
        return found

    def forget(self, client_id: str) -> None:
        """Drop a client's cached facts (after this process changed them)."""
        self._facts.pop(client_id, None)

    async def _read(self, client_id: str) -> ClientFacts | None:
        async with self.store.session() as session:
            record = await session.scalar(select(ClientRecord).where(ClientRecord.client_id == client_id))
            if record is None:
                return None
            declared = (record.purposes or "").split()
            active: set[str] = set()
            if declared:
                active = set(
                    await session.scalars(
                        select(PurposeRecord.code).where(PurposeRecord.code.in_(declared), PurposeRecord.retired.is_(False))
                    )
                )
            return ClientFacts(
                client_id=record.client_id,
                name=record.name,
                allowed_purposes=frozenset(p for p in declared if p in active),
                subject_id=record.subject_id,
                department=record.department,
            )
