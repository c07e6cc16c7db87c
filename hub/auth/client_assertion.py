"""`private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9), with joserfc.

The client sends, instead of a secret:

    client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
    client_assertion=<JWT signed with the client's private key>

Checked, in this order:

1. shape: a compact JWS of at most `MAX_ASSERTION_LENGTH` characters, JSON header and payload;
2. `alg` in `ASSERTION_ALGORITHMS` (ES256, RS256, EdDSA/Ed25519) — "none" and HS* are refused
   before any key is looked at; no `crit` header;
3. the client named by `sub` exists, is enabled, is registered for `private_key_jwt`, and has a
   key that fits the header (`kid`, `alg`); the signature verifies with that key only;
4. claims (signed, so reasons are shown to the key holder only): `iss` = `sub` = the client id;
   `aud` is the token endpoint URL or the issuer (a single value); `exp` present, not passed and
   at most `MAX_ASSERTION_LIFETIME` (300 s) ahead; `nbf`/`iat`, if present, not in the future
   (`LEEWAY` seconds of skew); `jti` present;
5. `jti` is single-use: recorded per client in the hub store until `exp` (+ leeway) — a
   replayed assertion is refused, in every hub process sharing the store.

Failures in 1, 2, 4 and 5 say why; failures in 3 all say "Client authentication failed." so
that answers do not tell which client ids exist.

authlib's own `JWTBearerClientAssertion` is not used: its verification accepts joserfc's
default algorithm set and leaves lifetime limits to the caller; this module keeps the allow-list,
the lifetime cap and the replay ledger in one readable place.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Collection

import anyio.from_thread
from authlib.oauth2.rfc6749 import InvalidClientError
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from xinlian.hub.store import Store
from xinlian.hub.store.models import UsedClientAssertion

from .client_keys import ASSERTION_ALGORITHMS

if TYPE_CHECKING:
    from .server import HubClient

log = logging.getLogger("xinlian.auth")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
METHOD = "private_key_jwt"
MAX_ASSERTION_LENGTH = 8 * 1024
MAX_ASSERTION_LIFETIME = 300  # seconds: exp at most this far ahead
MAX_JTI_LENGTH = 255
LEEWAY = 30  # seconds of clock skew


class InvalidClientAssertion(InvalidClientError):
    """A client assertion that is not acceptable; its description (why) is shown to the caller."""

    status_code = 401


def authentication_failed() -> InvalidClientError:
    """The one answer for an unknown, disabled or unverifiable client."""
    return InvalidClientError(status_code=401, description="Client authentication failed.")


def _json_part(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidClientAssertion(description="The client assertion is malformed.") from None


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = assertion.split(".")
    if len(assertion) > MAX_ASSERTION_LENGTH or len(parts) != 3 or not all(parts[:2]):
        raise InvalidClientAssertion(description="The client assertion is malformed.")
    header, claims = _json_part(parts[0]), _json_part(parts[1])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidClientAssertion(description="The client assertion is malformed.")
    return header, claims


class AssertionLedger:
    """Client assertion ids already used, per client, kept in the hub store until they expire."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def use(self, client_id: str, jti: str, expires_at: float) -> bool:
        """Record `jti` for `client_id`; False if it was recorded before (a replay)."""
        now = self.clock()
        until = dt.datetime.fromtimestamp(expires_at + LEEWAY, dt.timezone.utc)
        async with self.store.session() as session:
            session.add(UsedClientAssertion(client_id=client_id, jti=jti, expires_at=until))
            try:
                await session.commit()
            except IntegrityError:
                return False
            horizon = dt.datetime.fromtimestamp(now, dt.timezone.utc)
            await session.execute(delete(UsedClientAssertion).where(UsedClientAssertion.expires_at < horizon))
            await session.commit()
        return True


class PrivateKeyJWTAuthentication:
    """The `private_key_jwt` method for authlib's client authentication registry.

    Called as `method(query_client, request)` in the server's worker thread; returns the client,
    returns None when the request carries no assertion, raises `InvalidClientError` otherwise.
    """

    def __init__(
        self,
        audiences: Collection[str],
        ledger: AssertionLedger,
        *,
        clock: Callable[[], float] = time.time,
        leeway: int = LEEWAY,
    ) -> None:
        self.audiences = frozenset(audiences)
        self.ledger = ledger
        self.clock = clock
        self.leeway = leeway

    def __call__(self, query_client: Callable[[str], "HubClient"], request: Any) -> "HubClient | None":
        form = request.form
        assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
        if assertion_type is None and assertion is None:
            return None
        if assertion_type != ASSERTION_TYPE or not assertion:
            raise InvalidClientAssertion(
                description=f"client_assertion_type must be {ASSERTION_TYPE} with a client_assertion."
            )
        header, unverified = _unverified(assertion)
        alg = header.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            allowed = ", ".join(ASSERTION_ALGORITHMS)
            raise InvalidClientAssertion(description=f"The client assertion algorithm is not allowed (use {allowed}).")
        if "crit" in header:
            raise InvalidClientAssertion(description="The client assertion has an unsupported critical header.")
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise InvalidClientAssertion(description="The client assertion has no sub (the client id).")
        named = form.get("client_id")
        if named is not None and named != client_id:
            raise InvalidClientAssertion(description="The client_id parameter does not match the assertion's sub.")

        client = query_client(client_id)
        key = client.assertion_key(header)
        if key is None:
            raise authentication_failed()
        try:
            claims = jwt.decode(assertion, key, algorithms=[alg]).claims
        except JoseError:
            raise authentication_failed() from None

        self.check_claims(claims, client_id)
        if not anyio.from_thread.run(self.ledger.use, client_id, claims["jti"], float(claims["exp"])):
            raise InvalidClientAssertion(description="The client assertion was already used (jti replayed).")
        log.debug("client %s authenticated with private_key_jwt", client_id)
        return client

    def check_claims(self, claims: dict[str, Any], client_id: str) -> None:
        """RFC 7523 §3 on the verified claims; `InvalidClientAssertion` with the reason."""
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise InvalidClientAssertion(description="The client assertion's iss and sub must both be the client id.")
        aud = claims.get("aud")
        values = [aud] if isinstance(aud, str) else aud
        if not isinstance(values, list) or len(values) != 1 or values[0] not in self.audiences:
            raise InvalidClientAssertion(
                description="The client assertion's aud must be the token endpoint URL or the issuer (one value)."
            )
        now = self.clock()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise InvalidClientAssertion(description="The client assertion has no exp.")
        if exp < now - self.leeway:
            raise InvalidClientAssertion(description="The client assertion has expired.")
        if exp > now + MAX_ASSERTION_LIFETIME + self.leeway:
            raise InvalidClientAssertion(
                description=f"The client assertion's exp is more than {MAX_ASSERTION_LIFETIME} s ahead."
            )
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InvalidClientAssertion(description=f"The client assertion's {name} is not a number.")
            if value > now + self.leeway:
                raise InvalidClientAssertion(description="The client assertion is not valid yet.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
            raise InvalidClientAssertion(description="The client assertion needs a jti (1 to 255 characters).")
