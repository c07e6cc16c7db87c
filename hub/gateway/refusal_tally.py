"""`RefusalTally`: requests refused by admission are counted, not stored one by one.

A flood of requests over a rate limit must not become a flood of audit entries (that would let
anyone write to the trail without limit). The first refusal of a key (an address or a client)
at an entry point in each interval is written as a normal "rejected" entry before its 429 is
sent; the rest are counted in memory and written as one summary entry per key and interval
(`detail.refusals`: how many, `detail.first` / `detail.last`: when), by a background flush and at
shutdown. A crash loses at most one interval's counts, never a first refusal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass, field

from xinlian.hub.audit.entry import AuditEntry, format_time
from xinlian.hub.audit.trail import AuditTrail, AuditUnavailable

log = logging.getLogger("xinlian.gateway")


@dataclass
class _Count:
    refusals: int = 0
    first: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    last: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    template: AuditEntry | None = None


class RefusalTally:
    """Counts admission refusals per (endpoint, rule, key); see the module docstring."""

    def __init__(self, trail: AuditTrail, interval: float = 10.0) -> None:
        self.trail = trail
        self.interval = interval
        self._seen: set[tuple[str, str, str]] = set()
        self._counts: dict[tuple[str, str, str], _Count] = {}
        self._task: asyncio.Task[None] | None = None

    async def refused(self, key: tuple[str, str, str], entry: AuditEntry) -> None:
        """A refusal: the first of its key in this interval is stored now (`AuditUnavailable` if not)."""
        if key not in self._seen:
            self._seen.add(key)
            await self.trail.record(entry)
            return
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count(template=entry)
        count.refusals += 1
        count.last = dt.datetime.now(dt.timezone.utc)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="xinlian-refusal-tally")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write one summary entry per key counted since the last flush; start a new interval."""
        counts, self._counts = self._counts, {}
        self._seen.clear()
        entries = []
        for count in counts.values():
            template = count.template
            if template is None or count.refusals == 0:
                continue
            summary = {**(template.detail or {}), "refusals": count.refusals,
                       "first": format_time(count.first), "last": format_time(count.last)}
            entries.append(dataclasses.replace(template, at=count.last, detail=summary))
        if entries:
            try:
                await self.trail.record_all(entries)
            except AuditUnavailable:
                log.error("refusal counts of %d keys could not be stored", len(entries))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
