"""Bearer token validation (RFC 6750 transport, RFC 9068 tokens): from `Authorization` to `Principal`.

`BearerValidator.validate_async(token)` accepts only the hub's own, unrevoked access tokens and
raises `InvalidToken(reason)` for anything else. Checked, in this order, before trusting any claim:

1. shape: three base64url parts, a JSON object header, at most `MAX_TOKEN_LENGTH` characters;
2. header: `alg` in the allow-list (ES256 only: "none", HS256 and the rest are refused before any
   key is touched), `typ` is `at+jwt` (RFC 9068 §4), no `crit`, a `kid` the keyring verifies with
   (a key retired by rotation verifies until its grace period ends, then "signing key retired");
   the keyring's own keys and those other hosts published in the hub store (keys/published.py).
   A kid it does not know makes `validate_async` re-read the published keys once before refusing
   (`Keyring.look_for`: at most once a second for all unknown kids together), so a token of a
   host that has just started is accepted here even before the change feed reports its keys;
3. the ES256 signature, with that key only;
4. claims: `iss` and `aud` are ours; `exp` not passed, `nbf`/`iat` not in the future (with
   `LEEWAY` seconds of clock skew); `sub`, `client_id`, `jti`, `scope` and `kind` present;
5. (async only) the token's `jti` is not revoked, its client is not disabled, and it was not
   issued before the client's last disable or secret rotation (`revocation.RevocationList`: at
   once in this process, within about a second in other hub processes sharing the store).

`validate(token)` is steps 1–4 only (CPU, no I/O): entry points use `validate_async`, through
the gateway's authentication stage (`hub/gateway/authentication.py`), which answers a refused
token with 401 and `bearer_challenge(...)`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import Request

from xinlian.hub.principal import Principal
from xinlian.keys.keyring import EXPIRED, Keyring

from .access_token import ALGORITHMS, TOKEN_TYPE
from .clients import CLIENT_KINDS
from .revocation import RevocationList, RevocationUnavailable

__all__ = [
    "LEEWAY",
    "BearerValidator",
    "InvalidToken",
    "RevocationUnavailable",
    "bearer_challenge",
    "bearer_token",
    "unverified_claim",
]

MAX_TOKEN_LENGTH = 8 * 1024
MAX_KID_LENGTH = 128  # the published_keys column; our kids are 43-character thumbprints
UNKNOWN_KEY = "unknown key id"
LEEWAY = 30  # seconds of clock skew tolerated on exp, nbf and iat
ACCEPTED_TYPES = frozenset({TOKEN_TYPE, "application/" + TOKEN_TYPE})
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "sub", "client_id", "scope", "kind")
REALM = "xinlian"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*) *", re.IGNORECASE)


class InvalidToken(Exception):
    """The bearer token is missing or not acceptable; `reason` says why (safe to show the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64decode(part: str) -> bytes:
    if not _B64URL.fullmatch(part):
        raise InvalidToken("malformed token")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed token") from None


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise InvalidToken("malformed token")
    for part in parts:
        _b64decode(part)
    try:
        header = json.loads(_b64decode(parts[0]))
    except (UnicodeDecodeError, ValueError):
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


class BearerValidator:
    """Validates the hub's access tokens against the keyring, the issuer and the audience."""

    def __init__(
        self,
        keyring: Keyring,
        issuer: str,
        audience: str,
        *,
        revocations: RevocationList | None = None,
        algorithms: tuple[str, ...] = ALGORITHMS,
        leeway: int = LEEWAY,
    ) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.revocations = revocations
        self.algorithms = algorithms
        self.leeway = leeway

    def _claims_registry(self) -> JWTClaimsRegistry:
        return JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
            scope={"essential": True, "allow_blank": True},
            kind={"essential": True, "values": list(CLIENT_KINDS)},
        )

    def validate(self, token: str) -> Principal:
        """The principal the token speaks for (signature and claims only: revocation NOT checked)."""
        return self._principal(self.verified_claims(token))

    async def validate_async(self, token: str) -> Principal:
        """The principal of a valid, unrevoked hub token; `InvalidToken` otherwise.

        Raises `RevocationUnavailable` when the revocation status cannot be read (fail closed).
        """
        try:
            claims = self.verified_claims(token)
        except InvalidToken as refused:
            if refused.reason != UNKNOWN_KEY:
                raise
            kid = _header(token).get("kid")
            if not isinstance(kid, str) or len(kid) > MAX_KID_LENGTH or not await self.keyring.look_for(kid):
                raise
            claims = self.verified_claims(token)
        principal = self._principal(claims)
        if self.revocations is None:
            raise RuntimeError("BearerValidator needs revocations=revocation_list(store) to check revocation")
        if await self.revocations.is_revoked(principal.token_id or ""):
            raise InvalidToken("token revoked")
        if await self.revocations.is_client_disabled(principal.client_id):
            raise InvalidToken("client disabled")
        if await self.revocations.issued_before_cutoff(principal.client_id, claims["iat"]):
            raise InvalidToken("token issued before the client was disabled or its secret rotated")
        return principal

    def verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a hub token whose signature and claims check out; `InvalidToken` otherwise."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("malformed token")
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("algorithm not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ not in ACCEPTED_TYPES:
            raise InvalidToken("wrong token type (expected at+jwt)")
        if "crit" in header:
            raise InvalidToken("unsupported critical header")
        kid = header.get("kid")
        key = self.keyring.verification_key(kid) if isinstance(kid, str) else None
        if key is None:
            if isinstance(kid, str) and self.keyring.key_status(kid) == EXPIRED:
                raise InvalidToken("signing key retired (past its grace period)")
            raise InvalidToken(UNKNOWN_KEY)
        try:
            decoded = jwt.decode(token, key, algorithms=list(self.algorithms))
        except BadSignatureError:
            raise InvalidToken("bad signature") from None
        except JoseError:
            raise InvalidToken("malformed token") from None
        claims = decoded.claims
        try:
            self._claims_registry().validate(claims)
        except ExpiredTokenError:
            raise InvalidToken("token expired") from None
        except MissingClaimError as exc:
            raise InvalidToken(f"missing claim: {exc.claim}") from None
        except InvalidClaimError as exc:
            raise InvalidToken(_claim_reason(exc)) from None
        if not isinstance(claims.get("exp"), int) or isinstance(claims.get("exp"), bool):
            raise InvalidToken("malformed claims")
        return claims

    @staticmethod
    def _principal(claims: dict[str, Any]) -> Principal:
        client_id, scope, jti, kind = claims["client_id"], claims["scope"], claims["jti"], claims["kind"]
        if not all(isinstance(v, str) for v in (client_id, scope, jti, kind)):
            raise InvalidToken("malformed claims")
        if claims["sub"] != client_id:
            raise InvalidToken("sub does not match client_id")
        purpose = claims.get("purpose")
        if purpose is not None and not isinstance(purpose, str):
            raise InvalidToken("malformed claims")
        return Principal(client_id=client_id, kind=kind, scopes=frozenset(scope.split()), token_id=jti, purpose=purpose)


def _claim_reason(error: InvalidClaimError) -> str:
    name = error.claim
    if name == "iss":
        return "wrong issuer"
    if name == "aud":
        return "wrong audience"
    if name in ("nbf", "iat"):
        return "token not yet valid"
    return f"invalid claim: {name}"


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer <token>` (RFC 6750 §2.1)."""
    authorization = request.headers.get("authorization")
    if not authorization:
        raise InvalidToken("missing bearer token")
    match = _BEARER.fullmatch(authorization)
    if match is None:
        raise InvalidToken("malformed Authorization header (expected: Bearer <token>)")
    return match.group(1)


def unverified_claim(token: str, name: str) -> str | None:
    """A string claim of an UNVERIFIED JWT (an access token's `client_id`, a client assertion's
    `iss`), cleaned for the audit, or None. Never trusted for anything else: the value is only
    recorded (and keys the authentication lockout), marked as claimed.
    """
    parts = token.split(".") if isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH else []
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_b64decode(parts[1]))
    except (InvalidToken, ValueError, UnicodeDecodeError, RecursionError):
        return None
    value = claims.get(name) if isinstance(claims, dict) else None
    if not isinstance(value, str) or not value:
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:64])


def bearer_challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    """A `WWW-Authenticate: Bearer` challenge (RFC 6750 §3); no error code for a request without credentials."""
    parts = [f'realm="{REALM}"']
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        safe = "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in description)[:200]
        parts.append(f'error_description="{safe}"')
    if scope is not None:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)
