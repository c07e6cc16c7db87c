"""Access tokens in the shape of RFC 9068 (JWT profile for OAuth 2.0 access tokens), signed ES256.

Header: `{"typ": "at+jwt", "alg": "ES256", "kid": <signing key's kid>}`.
Claims: `iss`, `aud`, `sub` (= `client_id` under client credentials), `client_id`, `iat`, `nbf`,
`exp`, `jti`, `scope` (space separated) and `kind` (the client kind, which policies key on);
`purpose` when the token request named one (the client must be registered for it).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from joserfc import jwt

from xinlian.keys.keyring import Keyring

TOKEN_TYPE = "at+jwt"
ALGORITHMS: tuple[str, ...] = ("ES256",)


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_id: str

    def response(self) -> dict[str, Any]:
        """The token endpoint's JSON answer (RFC 6749 §5.1)."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


class AccessTokenIssuer:
    """Signs access tokens for authenticated clients with the keyring's signing key."""

    def __init__(
        self,
        keyring: Keyring,
        issuer: str,
        audience: str,
        ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0:
            raise ValueError("access token lifetime must be positive")
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.clock = clock

    def issue(self, client_id: str, kind: str, scope: str, purpose: str | None = None) -> IssuedToken:
        now = int(self.clock())
        token_id = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "client_id": client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": token_id,
            "scope": scope,
            "kind": kind,
        }
        if purpose is not None:
            claims["purpose"] = purpose
        kid, key = self.keyring.signing_pair()  # read together: a rotation may land at any moment
        header = {"typ": TOKEN_TYPE, "alg": ALGORITHMS[0], "kid": kid}
        token = jwt.encode(header, claims, key, algorithms=list(ALGORITHMS))
        return IssuedToken(access_token=token, expires_in=self.ttl, scope=scope, token_id=token_id)
