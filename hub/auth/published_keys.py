"""`PublishedKeys`: the hub store's `published_keys` table, read into memory, written by each keyring.

Several hub hosts behind one proxy share the hub store but not a disk: each host's private keys
stay in its own `<data-dir>/keys/`. So that a token, a head seal or an audit checkpoint signed on
one host verifies on every other, each keyring publishes the public half of every one of its
keys, with the key's life and the host that holds it (`publish`), and every hub process verifies
with the union of its local keys and the published ones (`Keyring.include_published`,
keys/published.py).

- `publish(keyring, host)`: upsert the local keyring's keys; idempotent (a row is written only
  when what it states changed, so a restart does not wake the cluster); at start-up and after a
  rotation (`xinlian keys rotate`, `xinlian keys publish`).
- `refresh()`: re-read the whole table into an in-memory snapshot, swapped whole; the change feed
  calls it when the table changes (hub/cluster/changes.py, topic `published_keys`).
- `published()`, `get(kid)`, `past_signing_key(...)`: sync, from memory (the request path).
- `look_for(kid)`: an unknown kid on a token re-reads the table at once, at most once per
  `look_interval` seconds (1 s) for all unknown kids together, so a freshly started host's tokens
  are accepted everywhere even if the change notification is late, and junk kids cannot hammer
  the store.

Trust: a row counts only when it is ENDORSED (keys/published.py): its `endorsement` column is
the HMAC-SHA256, with the hosts' shared cluster secret (`Settings.cluster_secret`, from
`XINLIAN_CLUSTER_SECRET_FILE` or `XINLIAN_CLUSTER_SECRET`: configuration, never the store), of
the canonical statement of the row (`keys.published.statement`). So someone who can write the
store — whom the audit head seal exists to catch — cannot add a key the hosts accept, nor extend
or move an endorsed key's life. `PublishedKeys(store, endorsement_key)`:

- with no endorsement key (no cluster secret: one host), no published row is accepted: each host
  verifies with its local keys only, as a single host always did; if rows of other hosts exist,
  that is logged once (info);
- with one, a row whose endorsement does not verify is skipped and logged once (warning, naming
  the kid and the host; never the secret);
- `publish` endorses this host's rows, and rewrites a row whose statement is unchanged but whose
  endorsement is missing or wrong (so setting the secret later endorses existing rows at the next
  start or `xinlian keys publish`). Without a secret it writes rows unendorsed, and leaves a row
  that already states the same alone (an endorsement written by a configured process stays).

A row that does not hold a valid public key whose thumbprint is its kid is skipped (and logged
once). Rows are never deleted: a key stays known for its life (checkpoints outlive grace periods).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import time
from typing import Any, Callable, Mapping

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.store import Store, as_utc
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import PublishedKeyRecord
from xinlian.keys.keyring import Keyring
from xinlian.keys.manifest import ALGORITHM, KeyringError
from xinlian.keys.published import PublishedKey, endorsed, endorsement, parse_public_jwk, statement

__all__ = ["LOOK_INTERVAL", "PublishedKeys", "TOPIC", "include_published_keys", "this_host"]

log = logging.getLogger("xinlian.keys")

TOPIC = "published_keys"  # the change feed's topic (the table's name)
LOOK_INTERVAL = 1.0  # seconds: at most one re-read of the table for unknown kids per interval
TABLE = table_of(PublishedKeyRecord)
NO_SECRET = "no cluster secret is configured (XINLIAN_CLUSTER_SECRET)"
NOT_ENDORSED = (
    "its endorsement does not verify with the cluster secret (written by someone without "
    "XINLIAN_CLUSTER_SECRET, with another secret, or altered since)"
)


def this_host() -> str:
    """The name this host publishes its keys under (its host name, as `cluster_members` records it)."""
    return socket.gethostname()[:255]


async def include_published_keys(
    keyring: Keyring, store: Store, endorsement_key: bytes | None
) -> PublishedKeys | None:
    """Let `keyring` verify with the keys other hosts published in `store` too — only rows endorsed
    with `endorsement_key` (`Settings.cluster_secret`; None: none at all) — read once, not
    followed: for a CLI command. None, and the keyring left as it was, when the table cannot be
    read (a store older than migration 0007, or unreachable): the error is logged."""
    published = PublishedKeys(store, endorsement_key)
    try:
        await published.refresh()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("published keys not read (only this host's keys are used): %r", exc)
        return None
    keyring.include_published(published)
    return published


def _row(key: PublishedKey, endorsement: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "jwk": json.dumps(key.public_jwk(), sort_keys=True, separators=(",", ":")),
        "alg": key.alg,
        "host": key.host[:255],
        "signing": key.signing,
        "created": key.created,
        "retired": key.retired,
        "verify_until": key.verify_until,
        "endorsement": endorsement,
        "published_at": now,
    }


def _second(moment: dt.datetime) -> dt.datetime:
    """A stored time in UTC, to the second: what a statement (and so an endorsement) covers."""
    return as_utc(moment).replace(microsecond=0)


def _optional(moment: dt.datetime | None) -> dt.datetime | None:
    return _second(moment) if moment is not None else None


def _key_of(row: Any) -> PublishedKey:
    """The key a row states, exactly as its statement says (times to the second). `KeyringError`
    when the row does not hold a valid ES256 public key whose thumbprint is its kid."""
    if row.alg != ALGORITHM:
        raise KeyringError(f"published key {row.kid}: algorithm {row.alg} is not {ALGORITHM}")
    return PublishedKey(
        kid=row.kid, key=parse_public_jwk(row.kid, row.jwk), host=row.host, created=_second(row.created),
        retired=_optional(row.retired), verify_until=_optional(row.verify_until), signing=bool(row.signing),
        alg=row.alg,
    )


class PublishedKeys:
    """The endorsed keys every host published, in memory; `publish` adds this host's, `refresh` re-reads all."""

    def __init__(
        self,
        store: Store,
        endorsement_key: bytes | None = None,
        *,
        look_interval: float = LOOK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._endorsement_key = endorsement_key or None  # the cluster secret (b"": none)
        self.look_interval = look_interval
        self.clock = clock
        self.host: str | None = None  # the host this process publishes as (set by `publish`)
        self.refreshes = 0  # successful reads of the table (for tests and metrics)
        self.lookups = 0  # re-reads caused by an unknown kid
        self._keys: Mapping[str, PublishedKey] = {}
        self._published_at: dict[str, dt.datetime] = {}
        self._ignored: Mapping[str, tuple[str, str]] = {}
        self._refused: set[tuple[str, str, str]] = set()  # (kid, host, why) of rows skipped, logged once
        self._told_unendorsed = False  # "other hosts' keys are ignored without a secret", logged once
        self._looked_at: float | None = None  # clock() of the last re-read for an unknown kid
        self._look_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:  # never the secret
        return f"PublishedKeys({self.store.dialect}, endorsed={self.endorses}, keys={len(self._keys)})"

    @property
    def endorses(self) -> bool:
        """Whether a cluster secret is configured (published keys of other hosts can be accepted)."""
        return self._endorsement_key is not None

    # -- reading (no I/O) -------------------------------------------------------------------

    def published(self) -> Mapping[str, PublishedKey]:
        """Every valid, endorsed published key by kid, as of the last `refresh` (no I/O)."""
        return self._keys

    def get(self, kid: str) -> PublishedKey | None:
        return self._keys.get(kid)

    def ignored(self) -> Mapping[str, tuple[str, str]]:
        """The rows not accepted at the last `refresh`, by kid: (host, why)."""
        return self._ignored

    def published_at(self, kid: str) -> dt.datetime | None:
        """When the row of `kid` was last written."""
        return self._published_at.get(kid)

    def past_signing_key(self, kid: str, signed_at: dt.datetime) -> ECKey | None:
        """A published key that could have signed at `signed_at` (the `SigningKeys` protocol of
        hub/audit/checkpoint.py), for a verifier without a keyring of its own."""
        found = self._keys.get(kid)
        return found.key if found is not None and found.could_have_signed(signed_at) else None

    # -- reading the table ------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the table into a new snapshot of the endorsed keys. Raises `SQLAlchemyError`/
        `OSError` when the store cannot be read (the previous snapshot stays in use)."""
        async with self.store.session() as session:
            rows = (await session.execute(select(TABLE))).all()
        keys: dict[str, PublishedKey] = {}
        published_at: dict[str, dt.datetime] = {}
        ignored: dict[str, tuple[str, str]] = {}
        secret = self._endorsement_key
        for row in rows:
            try:
                key = _key_of(row)
            except KeyringError as exc:
                ignored[row.kid] = (row.host, str(exc))
                self._refuse(row.kid, row.host, str(exc))
                continue
            if secret is None:
                ignored[row.kid] = (row.host, NO_SECRET)
                continue
            if not endorsed(secret, key, row.endorsement):
                ignored[row.kid] = (row.host, NOT_ENDORSED)
                self._refuse(row.kid, row.host, NOT_ENDORSED)
                continue
            keys[row.kid] = key
            published_at[row.kid] = as_utc(row.published_at)
        self._keys, self._published_at, self._ignored = keys, published_at, ignored
        self.refreshes += 1
        if secret is None and not self._told_unendorsed:
            own = self.host or this_host()
            others = sorted({str(row.host)[:255] for row in rows if row.host != own})
            if others:
                self._told_unendorsed = True
                log.info(
                    "keys published by other hosts (%s) are ignored until XINLIAN_CLUSTER_SECRET "
                    "(or XINLIAN_CLUSTER_SECRET_FILE) is set, the same on every host: this host verifies "
                    "with its own keys only", ", ".join(map(repr, others)),
                )

    def _refuse(self, kid: str, host: str, why: str) -> None:
        if (kid, host, why) not in self._refused:
            self._refused.add((kid, host, why))
            log.warning("published key %.128r of host %.255r ignored: %s", kid, host, why)

    async def look_for(self, kid: str) -> bool:
        """Whether `kid` is published (and endorsed), re-reading the table first when it is not
        known yet — at most once per `look_interval` seconds whatever the kid (callers meanwhile
        get False, or wait for the re-read under way). Never raises: a store that cannot be read
        is logged. Without a cluster secret nothing published is accepted: False, no re-read."""
        if kid in self._keys:
            return True
        if self._endorsement_key is None:
            return False
        if self._look_lock is None:
            self._look_lock = asyncio.Lock()
        async with self._look_lock:
            if kid in self._keys:  # the re-read this caller waited for brought it
                return True
            now = self.clock()
            if self._looked_at is not None and now - self._looked_at < self.look_interval:
                return False
            self._looked_at = now
            self.lookups += 1
            try:
                await self.refresh()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("published keys: cannot re-read them for unknown key %.64r: %r", kid, exc)
                return False
            return kid in self._keys

    # -- writing ----------------------------------------------------------------------------

    async def publish(self, keyring: Keyring, host: str) -> int:
        """Publish every key of `keyring` (public half, life, `host`), endorsed with the cluster
        secret when one is configured, then `refresh`.

        Idempotent: only rows whose statement differs — or, with a secret, whose endorsement is
        missing or wrong — are written (insert or update by kid), so processes of one host
        starting together, or a restart, write nothing new. Returns how many rows were written.
        Raises `SQLAlchemyError`/`OSError` when the store cannot be used.
        """
        self.host = host[:255]
        keyring.reload_if_changed(force=True)  # publish what the manifest says now, not a stale view
        mine = keyring.as_published(self.host)
        async with self.store.session() as session:
            stored = (await session.execute(select(TABLE).where(TABLE.c.kid.in_([k.kid for k in mine])))).all()
        present = {row.kid: row for row in stored}
        now = dt.datetime.now(dt.timezone.utc)
        changed = [key for key in mine if not self._states(present.get(key.kid), key)]
        if changed:
            secret = self._endorsement_key
            async with self.store.engine.begin() as conn:
                for key in changed:
                    signed = endorsement(secret, key) if secret is not None else ""
                    await conn.execute(self._upsert(_row(key, signed, now)))
            log.info(
                "published %d key(s) of host %s%s: %s", len(changed), host,
                "" if secret is not None else " (not endorsed: no cluster secret, other hosts will not accept them)",
                ", ".join(k.kid for k in changed),
            )
        await self.refresh()
        return len(changed)

    def _states(self, row: Any | None, key: PublishedKey) -> bool:
        """Whether the stored `row` states exactly what publishing `key` would — and, with a cluster
        secret, carries its valid endorsement (without one, an endorsement is left as it is)."""
        if row is None:
            return False
        try:
            stored = _key_of(row)
        except KeyringError:
            return False  # a broken row: rewrite it from the key itself
        if statement(stored) != statement(key):
            return False
        return self._endorsement_key is None or endorsed(self._endorsement_key, key, row.endorsement)

    def _upsert(self, values: dict[str, Any]) -> Any:
        update = {name: value for name, value in values.items() if name != "kid"}
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(TABLE).values(**values).on_conflict_do_update(index_elements=[TABLE.c.kid], set_=update)
        if self.store.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(TABLE).values(**values).on_conflict_do_update(index_elements=[TABLE.c.kid], set_=update)
        raise NotImplementedError(f"the hub store does not run on {self.store.dialect}")
