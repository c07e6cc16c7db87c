"""`ClientDirectory`: what a request needs to know of its client beyond the token, kept fresh.

A token says who the client is and what scopes it holds; the purposes it is registered for and
the subject a `subject` client speaks for live in the client registry and may change at any
time (admin API, CLI). The directory reads them from the store and keeps each client's facts
for `ttl` seconds (1 s by default), so a change reaches every hub process within about a second.
A purpose that has been retired is left out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select

from xinlian.hub.store import Store
from xinlian.hub.store.models import ClientRecord, PurposeRecord

TTL = 1.0


@dataclass(frozen=True)
class ClientFacts:
    client_id: str
    name: str
    allowed_purposes: frozenset[str]
    subject_id: str | None


class ClientDirectory:
    def __init__(self, store: Store, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._facts: dict[str, tuple[float, ClientFacts | None]] = {}

    async def facts(self, client_id: str) -> ClientFacts | None:
        """The client's facts (None for an unknown client), at most `ttl` seconds old."""
        now = self.clock()
        cached = self._facts.get(client_id)
        if cached is not None and now - cached[0] < self.ttl:
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
            )
