"""Keys other hosts publish: the public half of each hub host's signing keys, with their lives.

Hub hosts that share one hub store share no filesystem: each keeps its private keys in its own
`<data-dir>/keys/` (they never leave it, and never enter the store). Every keyring publishes the
PUBLIC half of each of its keys in the store's `published_keys` table, with the key's life
(created, retired, verify_until), whether it signs, and the host that holds it
(`hub/auth/published_keys.py` reads and writes the table). A `Keyring` given the published keys
(`Keyring.include_published`) verifies with the union:

- its own keys first: a published key never replaces a local key of the same kid;
- then each published key by the life it was published with, under the same rules as a local
  key (`keys.manifest.life_status`, `keys.manifest.signed_in_life`);
- signing stays local (`Keyring.signing_pair`).

A published key is only what its row says: `parse_public_jwk` accepts an EC P-256 public key
(kty, crv, x, y; never `d`) whose RFC 7638 thumbprint IS its kid, as for a local key.

Endorsement: a row is trusted only when it is endorsed. The hosts share a cluster secret through
their configuration (`XINLIAN_CLUSTER_SECRET_FILE` / `XINLIAN_CLUSTER_SECRET`, never the store);
each row carries `endorsement(secret, key)`, the hex HMAC-SHA256 with that secret over
`statement(key)` — the canonical JSON of everything the row states (kid, public JWK, alg, host,
signing, created, retired, verify_until; times ISO 8601 UTC to the second). Someone who can write
the store but does not hold the secret cannot publish a key the hosts accept, nor change what an
endorsed row says (its life, its host). Without a secret, no host accepts another's published key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from joserfc.jwk import ECKey

from .manifest import ALGORITHM, CURVE, KeyringError, iso, life_status, signed_in_life

__all__ = [
    "PUBLIC_MEMBERS",
    "STATEMENT",
    "PublishedKey",
    "PublishedKeySource",
    "endorsed",
    "endorsement",
    "parse_public_jwk",
    "public_members",
    "statement",
]

PUBLIC_MEMBERS = ("kty", "crv", "x", "y")
STATEMENT = "xinlian.published-key.v1"  # what an endorsement is about (never valid for another use of the secret)


def public_members(key: ECKey) -> dict[str, str]:
    """The public JWK members of an EC key: kty, crv, x, y (never `d`)."""
    document = key.as_dict(private=False)
    return {name: str(document[name]) for name in PUBLIC_MEMBERS}


def parse_public_jwk(kid: str, document: Any) -> ECKey:
    """The public EC P-256 key of a published JWK (a JSON text or an object), checked: exactly
    kty, crv, x and y, and an RFC 7638 thumbprint equal to `kid`. `KeyringError` otherwise."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise KeyringError(f"published key {kid}: its JWK is not JSON") from None
    if not isinstance(document, dict) or set(document) != set(PUBLIC_MEMBERS):
        raise KeyringError(f"published key {kid}: its JWK must hold exactly {', '.join(PUBLIC_MEMBERS)}")
    if document.get("kty") != "EC" or document.get("crv") != CURVE:
        raise KeyringError(f"published key {kid}: not an EC {CURVE} key")
    if not all(isinstance(document[name], str) for name in PUBLIC_MEMBERS):
        raise KeyringError(f"published key {kid}: malformed JWK")
    try:
        key = ECKey.import_key(dict(document))
    except Exception:
        raise KeyringError(f"published key {kid}: not a valid EC public key") from None
    if key.is_private or key.thumbprint() != kid:
        raise KeyringError(f"published key {kid}: its kid is not the key's thumbprint")
    return key


@dataclass(frozen=True)
class PublishedKey:
    """One key as a keyring publishes it: its public half, its life and the host that holds it."""

    kid: str
    key: ECKey  # public only
    host: str
    created: dt.datetime
    retired: dt.datetime | None = None
    verify_until: dt.datetime | None = None
    signing: bool = False  # the host's signing key when it was published
    alg: str = ALGORITHM

    def status(self, moment: dt.datetime) -> str:
        """`active`, `verifying`, `retired-verifying` or `expired` at `moment` (the local rules)."""
        return life_status(self.signing, self.retired, self.verify_until, moment)

    def could_have_signed(self, signed_at: dt.datetime) -> bool:
        """Whether a signature dated `signed_at` falls inside this key's life (`Keyring.past_signing_key`)."""
        return signed_in_life(self.created, self.retired, self.verify_until, signed_at)

    def public_jwk(self) -> dict[str, str]:
        """kty, crv, x, y: what the `jwk` column holds."""
        return public_members(self.key)

    def facts(self) -> tuple[Any, ...]:
        """What a publication states (for an idempotent publish: a row is rewritten only when these differ)."""
        jwk = self.public_jwk()
        return (
            self.kid, self.alg, tuple(jwk[name] for name in PUBLIC_MEMBERS), self.host,
            iso(self.created), iso(self.retired), iso(self.verify_until), self.signing,
        )


def statement(key: PublishedKey) -> bytes:
    """What a published row states, canonically: the bytes an endorsement covers.

    JSON with sorted keys, no whitespace, ASCII only: `{"alg", "created", "host", "jwk" (kty, crv,
    x, y), "kid", "retired", "signing", "statement": STATEMENT, "verify_until"}`, times as ISO 8601
    UTC to the second with a 'Z' (`keys.manifest.iso`; null while not retired).
    """
    document = {
        "statement": STATEMENT,
        "kid": key.kid,
        "jwk": key.public_jwk(),
        "alg": key.alg,
        "host": key.host,
        "signing": bool(key.signing),
        "created": iso(key.created),
        "retired": iso(key.retired),
        "verify_until": iso(key.verify_until),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def endorsement(secret: bytes, key: PublishedKey) -> str:
    """The endorsement of `key`'s row: hex HMAC-SHA256 of `statement(key)` with the cluster secret."""
    return hmac.new(secret, statement(key), hashlib.sha256).hexdigest()


def endorsed(secret: bytes, key: PublishedKey, found: str | None) -> bool:
    """Whether `found` (a row's `endorsement` column) is `key`'s endorsement under `secret`
    (compared in constant time)."""
    expected = endorsement(secret, key).encode("ascii")
    return hmac.compare_digest(expected, (found or "").encode("utf-8", "replace"))


class PublishedKeySource(Protocol):
    """Where a `Keyring` finds the keys other hosts published (`hub.auth.published_keys.PublishedKeys`)."""

    def published(self) -> Mapping[str, PublishedKey]:
        """The published keys by kid, from memory (no I/O: used on the request path)."""
        ...

    async def look_for(self, kid: str) -> bool:
        """Re-read the published keys for an unknown `kid` (rate-limited); whether it is known now."""
        ...
