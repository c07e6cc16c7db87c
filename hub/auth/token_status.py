"""Token revocation (RFC 7009) and introspection (RFC 7662): authlib endpoints over the hub's JWTs.

Both endpoints take `token` (and an optional `token_type_hint`: `access_token` or
`refresh_token`; the hub issues access tokens only) and require client authentication with any
method the client is registered for (`client_secret_basic`/`_post` or `private_key_jwt`).

`POST /oauth/revoke` — a client may revoke only tokens issued to itself:
- a valid token of the calling client: its `jti` is stored in `revoked_tokens` until it would
  have expired, and the hub refuses it from then on (`revocation.RevocationList`); 200 `{}`;
- an invalid, expired or unknown token: 200 `{}` (RFC 7009 §2.2: nothing to revoke);
- a valid token of another client: 400 `invalid_grant`.

`POST /oauth/introspect` — `{"active": false}` for a token that is invalid, expired, revoked,
signed by a key past its grace period, or that the caller may not see; otherwise `active: true`
and the token's members (`scope`, `client_id`, `token_type`, `exp`, `iat`, `nbf`, `sub`, `aud`,
`iss`, `jti`, `kind`, and `purpose` when the token was issued for one). Any client may introspect tokens issued to itself; a client with the
`admin` scope may introspect any token.

The endpoints run in the authorization server's worker thread (like the token endpoint); store
calls go back to the event loop through `anyio.from_thread.run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from .bearer import BearerValidator, InvalidToken
from .metadata import CLIENT_AUTH_METHODS
from .revocation import RevocationList

ADMIN_SCOPE = "admin"
INTROSPECTION_MEMBERS = ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "kind", "purpose")
NO_STORE = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class UnsupportedTokenType(OAuth2Error):
    """RFC 7009 §2.2.1 `unsupported_token_type`, as a 400 (authlib's own answers 401)."""

    error = "unsupported_token_type"
    status_code = 400


@dataclass(frozen=True)
class IssuedAccessToken:
    """A hub access token whose signature and claims checked out, and whether it is revoked."""

    claims: dict[str, Any]
    revoked: bool

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def exp(self) -> int:
        return int(self.claims["exp"])

    def check_client(self, client: Any) -> bool:
        return self.client_id == client.get_client_id()

    def is_expired(self) -> bool:
        return False  # the validator refused expired tokens already

    def is_revoked(self) -> bool:
        return self.revoked


class _TokenLookup:
    """`query_token` shared by both endpoints: the token if it is one of the hub's valid tokens."""

    CLIENT_AUTH_METHODS = list(CLIENT_AUTH_METHODS)
    SUPPORTED_TOKEN_TYPES = ("access_token", "refresh_token")

    validator: BearerValidator
    revocations: RevocationList

    def check_params(self, request: OAuth2Request, client: Any) -> None:
        """`token` present; a `token_type_hint`, if any, one the hub knows (else 400, RFC 6749 §5.2)."""
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token' parameter.")
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedTokenType(description="token_type_hint is access_token or refresh_token.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedAccessToken | None:
        try:
            claims = self.validator.verified_claims(token_string)
        except InvalidToken:
            return None
        revoked = (
            anyio.from_thread.run(self.revocations.is_revoked, str(claims["jti"]))
            or anyio.from_thread.run(self.revocations.issued_before_cutoff, str(claims["client_id"]), claims["iat"])
        )
        return IssuedAccessToken(claims, revoked)


class HubRevocationEndpoint(_TokenLookup, RevocationEndpoint):
    """`POST /oauth/revoke` (RFC 7009) for the hub's access tokens."""

    def __init__(self, server: Any, validator: BearerValidator, revocations: RevocationList) -> None:
        super().__init__(server)
        self.validator = validator
        self.revocations = revocations

    def authenticate_token(self, request: OAuth2Request, client: Any) -> IssuedAccessToken | None:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and not token.check_client(client):
            raise InvalidGrantError(description="The token was not issued to this client.")
        return token

    def revoke_token(self, token: IssuedAccessToken, request: OAuth2Request) -> None:
        if not token.revoked:
            anyio.from_thread.run(self.revocations.revoke, token.jti, token.client_id, float(token.exp))

    def create_endpoint_response(self, request: OAuth2Request) -> tuple[int, Any, list[tuple[str, str]]]:
        status, body, _ = super().create_endpoint_response(request)
        return status, body, NO_STORE


class HubIntrospectionEndpoint(_TokenLookup, IntrospectionEndpoint):
    """`POST /oauth/introspect` (RFC 7662) for the hub's access tokens."""

    def __init__(self, server: Any, validator: BearerValidator, revocations: RevocationList) -> None:
        super().__init__(server)
        self.validator = validator
        self.revocations = revocations

    def check_permission(self, token: IssuedAccessToken, client: Any, request: OAuth2Request) -> bool:
        return token.check_client(client) or ADMIN_SCOPE in client.scopes

    def create_introspection_payload(self, token: IssuedAccessToken | None) -> dict[str, Any]:
        if token is None or token.is_revoked():
            return {"active": False}
        payload: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        payload.update({name: token.claims[name] for name in INTROSPECTION_MEMBERS if name in token.claims})
        return payload

    def create_endpoint_response(self, request: OAuth2Request) -> tuple[int, Any, list[tuple[str, str]]]:
        status, body, _ = super().create_endpoint_response(request)
        return status, body, NO_STORE
