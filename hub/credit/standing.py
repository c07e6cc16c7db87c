"""`CreditStanding`: every subject's current listings and in-force findings, in memory.

A credit check of 10,000 subjects must not query the store 10,000 times: the standing holds the
listings whose status is `listed` and the findings `in_force`, indexed by subject, and is
reloaded in the background when the store's change feed (hub/cluster/changes.py) says
`credit_listings` or `credit_findings` changed — within the feed's interval in every hub
process, milliseconds on PostgreSQL or with Redis. A change made through this process's
register is seen at once (`invalidate`). Without a (current) feed the standing compares the two
change counters with the store at most once per `interval` and reloads only when they moved.

Dates are applied when read, not when loaded: a listing whose end date has passed is not
current the next day even if the expiry sweep has not recorded it yet (`Listing.current`).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Callable, Iterable

from sqlalchemy import select

from xinlian.hub.cluster.views import FollowedView
from xinlian.hub.store import Store
from xinlian.hub.store.models import ChangeGeneration

from .model import IN_FORCE, LISTED, Finding, Listing
from .register import FINDINGS, LISTINGS

TOPICS = ("credit_listings", "credit_findings")


class CreditStanding(FollowedView):
    """The current listings and in-force findings of every subject (see the module docstring)."""

    topics = TOPICS

    def __init__(self, store: Store, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(store, interval, clock)
        self._listings: dict[str, tuple[Listing, ...]] = {}
        self._findings: dict[str, tuple[Finding, ...]] = {}
        self._version: tuple[int, ...] | None = None

    def invalidate(self) -> None:
        """A change made here: read again (whatever the counters say) before the next answer."""
        super().invalidate()
        self._version = None

    async def _reload(self) -> None:
        async with self._lock:
            self._version = None
            await self._read()

    async def _revalidate(self) -> None:
        checked = self.clock()
        async with self.store.session() as session:
            rows = await session.execute(
                select(ChangeGeneration.topic, ChangeGeneration.generation).where(ChangeGeneration.topic.in_(TOPICS))
            )
            counters = {topic: generation for topic, generation in rows}
            version = tuple(int(counters.get(t, 0)) for t in TOPICS)
            if version != self._version:
                listings: dict[str, list[Listing]] = {}
                for row in await session.execute(select(LISTINGS).where(LISTINGS.c.status == LISTED)):
                    listing = Listing.of(row)
                    listings.setdefault(listing.subject, []).append(listing)
                findings: dict[str, list[Finding]] = {}
                for row in await session.execute(select(FINDINGS).where(FINDINGS.c.status == IN_FORCE)):
                    finding = Finding.of(row)
                    findings.setdefault(finding.subject, []).append(finding)
                self._listings = {k: tuple(v) for k, v in listings.items()}
                self._findings = {k: tuple(v) for k, v in findings.items()}
                self._version = version
                self.reloads += 1
        self._checked_at(checked)

    def listings(self, subject: str, today: dt.date) -> tuple[Listing, ...]:
        """The subject's current listings on `today`, blacklist first."""
        found = [x for x in self._listings.get(subject, ()) if x.current(today)]
        return tuple(sorted(found, key=lambda x: (x.list != "black", x.listed_on, x.id)))

    def findings(self, subject: str) -> tuple[Finding, ...]:
        """The subject's findings in force (their basis' period is applied by the caller)."""
        return self._findings.get(subject, ())

    def subjects(self) -> Iterable[str]:
        return set(self._listings) | set(self._findings)
