"""The hub's OAuth2 HTTP handlers, served through the gateway like every entry point:

| route | what |
|---|---|
| `POST /oauth/token` | client_credentials tokens (RFC 6749 §4.4) |
| `POST /oauth/revoke` | token revocation (RFC 7009) |
| `POST /oauth/introspect` | token introspection (RFC 7662) |
| `GET /.well-known/jwks.json` | the keys that verify the hub's tokens (RFC 7517) |
| `GET /.well-known/oauth-authorization-server` | authorization server metadata (RFC 8414) |

The gateway admits the form endpoints per IP (`oauth-ip`), bounds their body (`MAX_FORM_BYTES`)
and audits every request (who the client was or claimed to be, the outcome, the OAuth2 error;
never a secret or a token). Here: the form is parsed, the authentication lockout is asked
*before* any secret is checked (`hub/gateway/lockout.py`), and `HubAuthorizationServer` answers
in a worker thread (at most `CONCURRENT_TOKEN_REQUESTS` at once). Whatever goes wrong, the
caller gets a standard OAuth2 JSON error (RFC 6749 §5.2), never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qsl, unquote

import anyio
import anyio.to_thread
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from xinlian.hub.auth.bearer import REALM, unverified_claim
from xinlian.hub.config import Settings
from xinlian.hub.gateway.pipeline import AdmissionRefused
from xinlian.hub.gateway.profile import Exchange
from xinlian.hub.gateway.refusal import Refusal
from xinlian.hub.principal import Principal
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring

from .access_token import AccessTokenIssuer
from .bearer import BearerValidator
from .client_assertion import AssertionLedger, PrivateKeyJWTAuthentication
from .clients import ClientRegistry
from .metadata import TOKEN_PATH, authorization_server_metadata, endpoint_url
from .revocation import revocation_list
from .server import HubAuthorizationServer, TokenRequest
from .token_status import HubIntrospectionEndpoint, HubRevocationEndpoint

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

log = logging.getLogger("xinlian.auth")

MAX_FORM_BYTES = 8 * 1024
MAX_FORM_FIELDS = 32
CONCURRENT_TOKEN_REQUESTS = 8  # each secret check holds 16 MiB of scrypt memory for ~50 ms
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BASIC_CHALLENGE = f'Basic realm="{REALM}"'


def _form(headers: Headers, body: bytes) -> list[tuple[str, str]]:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Refusal(400, "invalid_request", "Send the request as application/x-www-form-urlencoded.")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=False, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "invalid_request", "The request body is not a valid form.") from None


def _basic_username(header: str | None) -> tuple[bool, str | None]:
    """(readable, client id) of a Basic `Authorization` header; readable is False for one that is
    not base64 of UTF-8 `id:secret` (authlib would crash on it).

    The header is recognised and the id decoded exactly as authlib's `extract_basic_authorization`
    will (any white space after the scheme, the id percent-decoded, RFC 6749 §2.3.1), so the
    lockout and the audit key on the client whose secret is about to be checked: `%64emo-bank` or
    `Basic<TAB>...` cannot name a fresh lockout pair for `demo-bank`.
    """
    if not header or " " not in header:
        return True, None  # authlib does not read it as Basic either
    parts = header.split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "basic":
        return True, None
    try:
        decoded = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False, None
    if ":" not in decoded:
        return False, None
    return True, unquote(decoded.split(":", 1)[0])


def claimed_client(headers: Headers, form: list[tuple[str, str]]) -> str:
    """The client id a request claims (Basic user, `client_id`, or an assertion's `iss`), not verified."""
    _, user = _basic_username(headers.get("authorization"))
    fields = dict(form)
    claimed = user or fields.get("client_id") or unverified_claim(fields.get("client_assertion", ""), "iss") or ""
    return "".join(c if c.isprintable() else "?" for c in claimed[:64])


def _error_code(response: Response) -> str:
    try:
        body = json.loads(bytes(response.body))
    except (ValueError, TypeError):
        return "server_error"
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else "server_error"


class FormEndpoint:
    """A form-posting OAuth2 endpoint answered by the authorization server in a worker thread."""

    def __init__(self, answer: Callable[["HubRuntime", TokenRequest], Response]) -> None:
        self.answer = answer

    async def __call__(self, exchange: Exchange) -> Response:
        request, runtime = exchange.request, exchange.runtime
        readable, _ = _basic_username(request.headers.get("authorization"))
        if not readable:
            raise Refusal(401, "invalid_client", "Client authentication failed.",
                          headers={"WWW-Authenticate": BASIC_CHALLENGE}, oauth_error="invalid_client")
        form = _form(request.headers, exchange.body)
        claimed = claimed_client(request.headers, form)
        where = runtime.client_address.budget_key(exchange.client_address)
        wait = runtime.lockout.attempt(claimed, where)
        if wait:  # counted like any admission refusal: a locked-out flood writes no flood of entries
            raise AdmissionRefused(
                "auth-lockout", where, wait, f"Too many failed client authentications; retry in {wait} s.",
                code="AUTHENTICATION_LOCKED", oauth_error="temporarily_unavailable",
                audit_detail={"claimedClient": claimed},
            )
        url = str(request.url.replace(scheme=exchange.scheme))
        token_request = TokenRequest(request.method, url, request.headers, form)
        response: Response | None = None
        try:
            response = await anyio.to_thread.run_sync(self.answer, runtime, token_request, limiter=runtime.token_workers)
        finally:
            succeeded: bool | None = None  # refused before any credential was checked: decides nothing
            if response is None or _error_code(response) == "invalid_client":
                succeeded = False
            elif token_request.authenticated is not None:
                succeeded = True  # only a client that did authenticate clears its failures
            runtime.lockout.finished(claimed, where, succeeded)
        self._account(exchange, token_request, response, claimed)
        return response

    @staticmethod
    def _account(exchange: Exchange, token_request: TokenRequest, response: Response, claimed: str) -> None:
        """The outcome into the audit record (never the secret or the token)."""
        record = exchange.record
        if token_request.authenticated is not None:
            client_id, kind = token_request.authenticated
            record.authenticated(Principal(client_id=client_id, kind=kind))
        if response.status_code >= 400:
            code = _error_code(response)
            record.refused(code, "error" if response.status_code >= 500 else "rejected")
            if code == "invalid_client" and claimed:
                record.detail["claimedClient"] = claimed


async def jwks(exchange: Exchange) -> Response:
    """`GET /.well-known/jwks.json`: the public keys that verify the hub's tokens."""
    return JSONResponse(exchange.runtime.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})


async def server_metadata(exchange: Exchange) -> Response:
    """`GET /.well-known/oauth-authorization-server`: the RFC 8414 document."""
    document = authorization_server_metadata(exchange.runtime.settings.issuer)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=3600"})


def authorization_server(settings: Settings, store: Store, keyring: Keyring) -> HubAuthorizationServer:
    """The hub's authorization server for these settings, store and keyring (all endpoints registered)."""
    issuer = AccessTokenIssuer(keyring, settings.issuer, settings.audience, settings.access_token_ttl)
    audiences = (settings.issuer, endpoint_url(settings.issuer, TOKEN_PATH))
    private_key_jwt = PrivateKeyJWTAuthentication(audiences, AssertionLedger(store))
    server = HubAuthorizationServer(ClientRegistry(store), issuer, private_key_jwt)
    revocations = revocation_list(store)
    validator = BearerValidator(keyring, settings.issuer, settings.audience, revocations=revocations)
    server.register_endpoint(HubRevocationEndpoint(server, validator, revocations))
    server.register_endpoint(HubIntrospectionEndpoint(server, validator, revocations))
    return server


token_endpoint = FormEndpoint(lambda runtime, r: runtime.oauth.create_token_response(r))
revocation_endpoint = FormEndpoint(
    lambda runtime, r: runtime.oauth.create_endpoint_response("revocation", r)
)
introspection_endpoint = FormEndpoint(
    lambda runtime, r: runtime.oauth.create_endpoint_response("introspection", r)
)


def token_workers() -> anyio.CapacityLimiter:
    """The worker threads all form endpoints share (made inside the event loop)."""
    return anyio.CapacityLimiter(CONCURRENT_TOKEN_REQUESTS)
