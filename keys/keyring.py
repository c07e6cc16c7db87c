"""The hub's signing keyring: the ES256 key that signs, the keys that verify, JWKS — kept current.

The files (`<data-dir>/keys/manifest.json` and one `<kid>.pem` per key) are described in
`keys.manifest`; rotation (`xinlian keys rotate`) is `keys.rotation.rotate`.

Key life cycle (the status `xinlian keys list` shows):
- `active`: the one key that signs new tokens (the manifest's "signing" kid); it also verifies.
- `retired-verifying`: retired by a rotation, still inside its grace period (`verify_until` in
  the future): published in the JWKS and accepted on tokens, never used to sign.
- `expired`: past `verify_until`; kept on disk for the record, no longer published or accepted.
- `verifying`: not retired and not signing (only a hand-edited manifest has one): accepted.

A running hub picks up a rotation without restart: every use of the keyring checks, at most
once per `reload_interval` seconds (default `RELOAD_INTERVAL` = 2), whether `manifest.json` was
replaced (inode, mtime, size) and if so reloads it under the directory lock. A rotation
therefore takes effect in every hub process within `reload_interval` seconds. A manifest that
fails to load keeps the previous keys in use (and is logged) until it is fixed.

Anything unexpected on disk (a missing key file, a thumbprint that does not match, a corrupt
manifest) raises `KeyringError` on first load rather than silently replacing keys, because new
keys would invalidate every token in flight.

Several hosts (`keys.published`): given the keys other hosts published in the hub store
(`include_published`), `verification_keys`, `key_status`, `past_signing_key`, `jwks` and
`history_jwks` answer over the union of the local keys and the published ones; a published key
never overrides a local key of the same kid; `signing_pair` stays local.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from joserfc.jwk import ECKey

from .manifest import (
    ACCEPTED,
    ACTIVE,
    ALGORITHM,
    CURVE,
    DIR_MODE,
    EXPIRED,
    MANIFEST,
    RETIRED_VERIFYING,
    VERIFYING,
    KeyEntry,
    KeyringError,
    Manifest,
    iso,
    life_status,
    load_private_key,
    locked,
    manifest_signature,
    new_key_entry,
    read_manifest,
    signed_in_life,
    tighten,
    utcnow,
    write_private,
)
from .published import PublishedKey, PublishedKeySource, public_members

__all__ = [
    "ACTIVE",
    "ALGORITHM",
    "CURVE",
    "EXPIRED",
    "RETIRED_VERIFYING",
    "VERIFYING",
    "KeyDescription",
    "KeyEntry",
    "Keyring",
    "KeyringError",
    "key_directory",
]

log = logging.getLogger("xinlian.keys")

RELOAD_INTERVAL = 2.0  # seconds between checks of manifest.json for a rotation


def _private_data_dir(data_dir: Path) -> None:
    """The data directory holding the keys is the hub user's only (0700), whatever the umask.

    Left alone if another user owns it or it is a shared sticky directory such as /tmp.
    """
    info = data_dir.stat()
    if info.st_uid != os.geteuid() or info.st_mode & stat.S_ISVTX:
        return
    if stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(data_dir, DIR_MODE)


def key_directory(data_dir: Path | str) -> Path:
    """`<data-dir>/keys`, absolute."""
    return Path(data_dir).expanduser().resolve() / "keys"


@dataclass(frozen=True)
class KeyDescription:
    """What `xinlian keys list` shows about a key (never key material)."""

    kid: str
    alg: str
    created: dt.datetime
    retired: dt.datetime | None
    verify_until: dt.datetime | None
    status: str  # active | retired-verifying | expired | verifying
    path: Path


@dataclass(frozen=True)
class _Snapshot:
    """One consistent reading of the key directory (swapped whole on reload)."""

    manifest: Manifest
    private: dict[str, ECKey]  # kid -> private key (kid, alg and use set)
    public: dict[str, ECKey]  # kid -> public key
    signature: tuple[int, int, int] | None

    @classmethod
    def read(cls, directory: Path) -> "_Snapshot":
        signature = manifest_signature(directory)
        manifest = read_manifest(directory)
        private = {e.kid: load_private_key(directory, e) for e in manifest.entries}
        public = {kid: ECKey.import_key(key.as_dict(private=False)) for kid, key in private.items()}
        return cls(manifest, private, public, signature)

    def status(self, entry: KeyEntry, moment: dt.datetime) -> str:
        return life_status(entry.kid == self.manifest.signing, entry.retired, entry.verify_until, moment)


class Keyring:
    """The hub's keys: one signs access tokens, every verifying key is published in the JWKS."""

    algorithm = ALGORITHM

    def __init__(self, directory: Path, snapshot: _Snapshot, *, reload_interval: float = RELOAD_INTERVAL) -> None:
        self.directory = directory
        self.reload_interval = reload_interval
        self._snapshot = snapshot
        self._checked_at = time.monotonic()
        self._reload_lock = threading.Lock()
        self._published: PublishedKeySource | None = None

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, data_dir: Path, *, reload_interval: float = RELOAD_INTERVAL) -> "Keyring":
        """The keyring of `data_dir`, generating its first signing key if there is none yet."""
        directory = key_directory(data_dir)
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _private_data_dir(directory.parent)
        tighten(directory, DIR_MODE)
        with locked(directory):
            if not (directory / MANIFEST).exists():
                cls._create(directory)
            return cls(directory, _Snapshot.read(directory), reload_interval=reload_interval)

    @classmethod
    def load(cls, data_dir: Path, *, reload_interval: float = RELOAD_INTERVAL) -> "Keyring | None":
        """The keyring of `data_dir` if it has one (never creates keys)."""
        directory = key_directory(data_dir)
        if not (directory / MANIFEST).exists():
            return None
        with locked(directory):
            return cls(directory, _Snapshot.read(directory), reload_interval=reload_interval)

    @staticmethod
    def _create(directory: Path) -> None:
        strays = sorted(p.name for p in directory.glob("*.pem"))
        if strays:
            raise KeyringError(
                f"{directory} holds key files ({', '.join(strays)}) but no {MANIFEST}; "
                "refusing to generate new keys over them"
            )
        entry = new_key_entry(directory, utcnow())
        write_private(directory / MANIFEST, Manifest(entry.kid, (entry,)).to_bytes())
        log.info("generated signing key %s in %s", entry.kid, directory)

    def reload_if_changed(self, *, force: bool = False) -> bool:
        """Reload the manifest if it was replaced since the last load; True if keys changed.

        Checks the file at most once per `reload_interval` seconds unless `force`. Never raises:
        a manifest that does not load is logged and the keys in use stay in use.
        """
        now = time.monotonic()
        if not force and now - self._checked_at < self.reload_interval:
            return False
        if not self._reload_lock.acquire(blocking=force):
            return False  # another thread is reloading right now; use the current keys
        try:
            self._checked_at = now
            if manifest_signature(self.directory) == self._snapshot.signature:
                return False
            with locked(self.directory):
                fresh = _Snapshot.read(self.directory)
        except (KeyringError, OSError) as exc:
            log.error("keyring %s not reloaded, keeping the keys in use: %s", self.directory, exc)
            return False
        finally:
            self._reload_lock.release()
        previous, self._snapshot = self._snapshot, fresh
        if previous.manifest.signing != fresh.manifest.signing:
            log.info("keyring reloaded: signing key is now %s", fresh.manifest.signing)
        return True

    def _current(self) -> _Snapshot:
        self.reload_if_changed()
        return self._snapshot

    # -- use ------------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        """The kid of the key that signs new tokens."""
        return self._current().manifest.signing

    @property
    def signing_key(self) -> ECKey:
        """The private key that signs new tokens (kid, alg and use set)."""
        return self.signing_pair()[1]

    def signing_pair(self) -> tuple[str, ECKey]:
        """The signing key's kid and private key, read together (consistent across a reload)."""
        snapshot = self._current()
        return snapshot.manifest.signing, snapshot.private[snapshot.manifest.signing]

    def verification_keys(self, at: dt.datetime | None = None) -> dict[str, ECKey]:
        """Public keys whose signatures are accepted now (or at `at`), by kid: the local keys
        first, then the keys other hosts published (`include_published`)."""
        snapshot = self._current()
        moment = at or utcnow()
        keys = {e.kid: snapshot.public[e.kid] for e in snapshot.manifest.entries if snapshot.status(e, moment) in ACCEPTED}
        for kid, published in self._foreign(snapshot).items():
            if published.status(moment) in ACCEPTED:
                keys[kid] = published.key
        return keys

    def verification_key(self, kid: str, at: dt.datetime | None = None) -> ECKey | None:
        """The public key `kid` if its signatures are accepted now (or at `at`): `verification_keys().get(kid)`
        without building the whole set (the bearer validator's per-request look-up)."""
        snapshot = self._current()
        moment = at or utcnow()
        for entry in snapshot.manifest.entries:
            if entry.kid == kid:
                return snapshot.public[kid] if snapshot.status(entry, moment) in ACCEPTED else None
        published = self._published_key(snapshot, kid)
        return published.key if published is not None and published.status(moment) in ACCEPTED else None

    def past_signing_key(self, kid: str, signed_at: dt.datetime) -> ECKey | None:
        """The public key `kid` if it could have signed at `signed_at`, expired keys included.

        For signatures that must outlive a key's grace period (signed audit checkpoints): the key
        is returned when it exists in the manifest (or, unknown locally, was published by another
        host), was created at or before `signed_at` (one minute of clock skew allowed) and, if
        retired, `signed_at` is not after its `verify_until` (to the second).
        None otherwise (unknown kid, or a signature dated outside the key's life).
        """
        snapshot = self._current()
        for entry in snapshot.manifest.entries:
            if entry.kid == kid:
                alive = signed_in_life(entry.created, entry.retired, entry.verify_until, signed_at)
                return snapshot.public[kid] if alive else None
        published = self._published_key(snapshot, kid)
        if published is not None and published.could_have_signed(signed_at):
            return published.key
        return None

    def key_status(self, kid: str, at: dt.datetime | None = None) -> str | None:
        """The status of key `kid` (`active`, `retired-verifying`, `expired`, ...) or None if unknown."""
        snapshot = self._current()
        for entry in snapshot.manifest.entries:
            if entry.kid == kid:
                return snapshot.status(entry, at or utcnow())
        published = self._published_key(snapshot, kid)
        return published.status(at or utcnow()) if published is not None else None

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set of the verification keys: public members only, with kid, alg, use."""
        keys = self.verification_keys()
        return {"keys": [{**public_members(key), "kid": kid, "alg": ALGORITHM, "use": "sig"} for kid, key in keys.items()]}

    def history_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Every key of the manifest, expired ones included, as a JWKS for a witness.

        Public members only (kty, crv, x, y, kid, alg, use) plus each key's life, which
        `past_signing_key` checks: `created`, `retired` and `verify_until` (ISO 8601, UTC; null
        while not retired). With this document alone, signed audit checkpoints can be checked
        without the keyring (`xinlian audit keys`, `xinlian audit verify-checkpoints`). Keys other
        hosts published follow the local ones, each with the `host` that holds it.
        """
        snapshot = self._current()
        keys: list[dict[str, Any]] = []
        for entry in snapshot.manifest.entries:
            keys.append({
                **public_members(snapshot.public[entry.kid]), "kid": entry.kid, "alg": entry.alg, "use": "sig",
                "created": iso(entry.created), "retired": iso(entry.retired), "verify_until": iso(entry.verify_until),
            })
        for kid, published in self._foreign(snapshot).items():
            keys.append({
                **published.public_jwk(), "kid": kid, "alg": published.alg, "use": "sig",
                "created": iso(published.created), "retired": iso(published.retired),
                "verify_until": iso(published.verify_until), "host": published.host,
            })
        return {"keys": keys}

    def describe(self) -> list[KeyDescription]:
        """Every key in the manifest with its status, newest first (local keys only)."""
        snapshot = self._current()
        now = utcnow()
        described = [
            (
                (e.created, position),
                KeyDescription(
                    e.kid, e.alg, e.created, e.retired, e.verify_until, snapshot.status(e, now), self.directory / e.file
                ),
            )
            for position, e in enumerate(snapshot.manifest.entries)  # later in the manifest = newer on a tie
        ]
        return [d for _, d in sorted(described, key=lambda pair: pair[0], reverse=True)]

    # -- several hosts: the keys others published --------------------------------------------

    def include_published(self, source: PublishedKeySource | None) -> None:
        """Verify with the keys other hosts published too (None: with the local keys only)."""
        self._published = source

    @property
    def published_source(self) -> PublishedKeySource | None:
        """Where the keys other hosts published come from (None: local keys only)."""
        return self._published

    def _foreign(self, snapshot: _Snapshot) -> Mapping[str, PublishedKey]:
        """The published keys whose kid is not a local key's (a local key is never overridden)."""
        if self._published is None:
            return {}
        published = self._published.published()
        if not published:
            return published
        return {kid: key for kid, key in published.items() if kid not in snapshot.public}

    def _published_key(self, snapshot: _Snapshot, kid: str) -> PublishedKey | None:
        """The published key `kid`, unless `kid` is a local key's."""
        if self._published is None or kid in snapshot.public:
            return None
        return self._published.published().get(kid)

    def published_host(self, kid: str) -> str | None:
        """The host that published key `kid`, when it is another host's key (None: local or unknown)."""
        found = self._published_key(self._current(), kid)
        return found.host if found is not None else None

    async def look_for(self, kid: str) -> bool:
        """Whether `kid` is a key of this keyring, re-reading the published keys (rate-limited
        by the source) when it is unknown. Never raises for a store that cannot be read."""
        snapshot = self._current()
        if kid in snapshot.public or self._published_key(snapshot, kid) is not None:
            return True
        if self._published is None:
            return False
        return await self._published.look_for(kid)

    def as_published(self, host: str) -> list[PublishedKey]:
        """Every local key as it is published for the other hosts: public half, life, `host`."""
        snapshot = self._current()
        return [
            PublishedKey(
                kid=e.kid, key=snapshot.public[e.kid], host=host, created=e.created, retired=e.retired,
                verify_until=e.verify_until, signing=e.kid == snapshot.manifest.signing, alg=e.alg,
            )
            for e in snapshot.manifest.entries
        ]
