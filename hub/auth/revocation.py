"""Revoked access tokens (RFC 7009): the `revoked_tokens` table and the hub's cached view of it.

The hub store is the source of truth: `revoke()` inserts `(jti, client_id, expires_at)`.
`RevocationList.is_revoked(jti)` answers from an in-process set, re-read from the store:

- in a hub (`follow(feed)`), whenever the store's change feed (hub/cluster/changes.py) says
  `revoked_tokens` or `clients` changed — in the background, not on a request: within the
  feed's interval (1 s) in every process sharing the store, milliseconds on PostgreSQL (NOTIFY)
  or with Redis. If the feed has not read the store for `refresh_interval` plus its interval
  (2 s) or the last re-read failed, a request re-reads the set itself first, so the bound holds;
- without a feed (the CLI, a bare validator), when the set is older than `refresh_interval`
  seconds (default 1 s), by the request that finds it stale;
- in the process that took the revocation, at once (the set is updated before `revoke()` returns).

If the store cannot be read when the set must be re-read, `is_revoked` raises
`RevocationUnavailable` (fail closed: no request is served on an unknown revocation status).

A client's `tokens_valid_after` (set when it is disabled or its secret rotated) refuses every
token of that client issued (`iat`) before it, with the same freshness: enabling the client
again does not revive them (`issued_before_cutoff`).

Rows are kept until the token would have expired plus `RETENTION_MARGIN` (longer than the
validator's clock-skew leeway) and purged opportunistically whenever a token is revoked.
Use one `RevocationList` per store and process — `revocation_list(store)` hands out that one —
so the revocation endpoint and the bearer validator see the same set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import weakref
from typing import TYPE_CHECKING, Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from xinlian.hub.store import Store
from xinlian.hub.store.models import ClientRecord, RevokedToken

if TYPE_CHECKING:
    from xinlian.hub.cluster.changes import ChangeFeed

log = logging.getLogger("xinlian.auth")

REFRESH_INTERVAL = 1.0  # seconds: how stale another process's revocations may be
RETENTION_MARGIN = 120  # seconds kept past `exp` (more than the validator's leeway)


class RevocationUnavailable(Exception):
    """The revocation status cannot be established (the hub store is unreachable): refuse to serve."""


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


class RevocationList:
    """The revoked token ids (jti) of one hub store, cached in process for `refresh_interval` seconds."""

    def __init__(
        self,
        store: Store,
        *,
        refresh_interval: float = REFRESH_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.refresh_interval = refresh_interval
        self.clock = clock
        self._revoked: dict[str, float] = {}  # jti -> expiry (epoch seconds), as last read from the store
        self._local: dict[str, float] = {}  # revoked by this process: survives a read that raced the insert
        self._disabled: frozenset[str] = frozenset()  # disabled clients: their tokens stop working too
        self._cutoffs: dict[str, float] = {}  # client_id -> tokens_valid_after (epoch seconds), from the store
        self._local_cutoffs: dict[str, float] = {}  # set by this process: survive a read that raced the update
        self._loaded_at: float | None = None  # time.monotonic() of the last successful read
        self._reload_failed = False  # the last re-read failed: re-read before answering
        self._feed: ChangeFeed | None = None  # re-read on the store's change feed (`follow`)
        self._lock: asyncio.Lock | None = None

    def follow(self, feed: "ChangeFeed") -> None:
        """Re-read the set whenever the store's `revoked_tokens` or `clients` change, in the
        background; requests then re-read only when the feed has fallen behind."""
        self._feed = feed
        feed.subscribe(["revoked_tokens", "clients"], self.refresh)

    async def revoke(self, jti: str, client_id: str, expires_at: float) -> None:
        """Record token `jti` of `client_id`, expiring at `expires_at` (epoch seconds), as revoked."""
        now = self.clock()
        self._local[jti] = expires_at  # refused in this process from now on
        async with self.store.session() as session:
            session.add(RevokedToken(jti=jti, client_id=client_id, expires_at=_utc(expires_at), revoked_at=_utc(now)))
            try:
                await session.commit()
            except IntegrityError:  # revoked before: nothing more to do
                await session.rollback()
            await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < _utc(now - RETENTION_MARGIN)))
            await session.commit()
        log.info("revoked token %s of %s", jti, client_id)

    async def is_revoked(self, jti: str) -> bool:
        """Whether `jti` is revoked (as of at most `refresh_interval` seconds ago in other processes)."""
        await self._fresh()
        return jti in self._revoked or jti in self._local

    async def is_client_disabled(self, client_id: str | None) -> bool:
        """Whether the client was disabled (`xinlian clients disable`): its tokens are refused at once."""
        await self._fresh()
        return client_id is not None and client_id in self._disabled

    async def issued_before_cutoff(self, client_id: str | None, issued_at: object) -> bool:
        """Whether a token of `client_id` issued at `issued_at` (`iat`, epoch seconds) predates the
        client's `tokens_valid_after` (its last disable or secret rotation). A missing or
        unreadable `iat` counts as before."""
        await self._fresh()
        if client_id is None:
            return True
        cutoff = max(self._cutoffs.get(client_id, 0.0), self._local_cutoffs.get(client_id, 0.0))
        if cutoff <= 0.0:
            return False
        if isinstance(issued_at, bool) or not isinstance(issued_at, (int, float)):
            return True
        return float(issued_at) < cutoff

    def note_cutoff(self, client_id: str, cutoff: float) -> None:
        """This process changed the client (`ClientRegistry.disable`/`rotate_secret`): apply it at once."""
        self._local_cutoffs[client_id] = max(cutoff, self._local_cutoffs.get(client_id, 0.0))

    async def _fresh(self) -> None:
        if self._stale():
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._stale():  # not refreshed by the request we waited for
                    await self.refresh()

    def _stale(self) -> bool:
        if self._loaded_at is None or self._reload_failed:
            return True
        feed = self._feed
        if feed is not None and feed.current(self.refresh_interval + feed.interval):
            return False  # the feed re-reads the set on every change it sees
        return time.monotonic() - self._loaded_at >= self.refresh_interval

    async def refresh(self) -> None:
        """Re-read the revoked tokens that have not expired yet from the store."""
        started = time.monotonic()
        horizon = _utc(self.clock() - RETENTION_MARGIN)
        try:
            async with self.store.session() as session:
                rows = await session.execute(
                    select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at >= horizon)
                )
                fresh = {jti: _epoch(expires_at) for jti, expires_at in rows}
                disabled = frozenset(
                    (await session.execute(select(ClientRecord.client_id).where(ClientRecord.disabled.is_(True)))).scalars()
                )
                cutoffs = {
                    client_id: _epoch(after)
                    for client_id, after in await session.execute(
                        select(ClientRecord.client_id, ClientRecord.tokens_valid_after).where(
                            ClientRecord.tokens_valid_after.is_not(None)
                        )
                    )
                    if after is not None
                }
        except (SQLAlchemyError, OSError) as exc:
            self._reload_failed = True
            log.error("cannot read revoked tokens: %s", exc)
            raise RevocationUnavailable("the token revocation status is unavailable") from None
        self._local = {jti: expiry for jti, expiry in self._local.items() if expiry >= horizon.timestamp()}
        self._revoked = fresh
        self._disabled = disabled
        self._cutoffs = cutoffs
        # the store has caught up with what this process set once it shows that cut-off (or a later one)
        self._local_cutoffs = {c: t for c, t in self._local_cutoffs.items() if cutoffs.get(c, 0.0) < t}
        self._loaded_at = started  # measured from before the read: never fresher than it is
        self._reload_failed = False


def _epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


_shared: "weakref.WeakKeyDictionary[Store, RevocationList]" = weakref.WeakKeyDictionary()


def revocation_list(store: Store) -> RevocationList:
    """The process's one `RevocationList` for `store` (created on first use)."""
    existing = _shared.get(store)
    if existing is None:
        existing = _shared[store] = RevocationList(store)
    return existing
