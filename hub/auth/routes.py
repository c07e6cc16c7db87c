"""The hub's OAuth2 HTTP endpoints, and `auth_routes()` to mount them:

| route | what |
|---|---|
| `POST /oauth/token` | client_credentials tokens (RFC 6749 §4.4) |
| `POST /oauth/revoke` | token revocation (RFC 7009) |
| `POST /oauth/introspect` | token introspection (RFC 7662) |
| `GET /.well-known/jwks.json` | the keys that verify the hub's tokens (RFC 7517) |
| `GET /.well-known/oauth-authorization-server` | authorization server metadata (RFC 8414) |

The form endpoints read at most `MAX_FORM_BYTES` of `application/x-www-form-urlencoded` body,
then let `HubAuthorizationServer` answer in a worker thread (at most
`CONCURRENT_TOKEN_REQUESTS` at once, all form endpoints together). Whatever goes wrong, the
caller gets a standard OAuth2 JSON error (RFC 6749 §5.2), never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Callable
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring

from .access_token import AccessTokenIssuer
from .bearer import BearerValidator
from .client_assertion import AssertionLedger, PrivateKeyJWTAuthentication
from .clients import ClientRegistry
from .metadata import (
    INTROSPECTION_PATH,
    JWKS_PATH,
    METADATA_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
    endpoint_url,
)
from .revocation import revocation_list
from .server import HubAuthorizationServer, TokenRequest
from .token_status import HubIntrospectionEndpoint, HubRevocationEndpoint

log = logging.getLogger("xinlian.auth")

FORM_METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE"]  # all reach the handler, which answers 405
MAX_FORM_BYTES = 8 * 1024
MAX_FORM_FIELDS = 32
CONCURRENT_TOKEN_REQUESTS = 8  # each secret check holds 16 MiB of scrypt memory for ~50 ms
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class FormRejected(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    """A standard OAuth2 error response."""
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers={**NO_STORE, **(headers or {})}
    )


async def _read_form(request: Request) -> list[tuple[str, str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormRejected(400, "Send the request as application/x-www-form-urlencoded.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormRejected(413, f"The request body is over {MAX_FORM_BYTES} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise FormRejected(413, f"The request body is over {MAX_FORM_BYTES} bytes.")
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=False, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRejected(400, "The request body is not a valid form.") from None


def _basic_credentials_readable(header: str | None) -> bool:
    """False for a Basic header that is not base64 of UTF-8 `id:secret` (authlib would crash on it)."""
    if not header or not header[:6].lower() == "basic ":
        return True
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in decoded


class FormEndpoint:
    """A form-posting OAuth2 endpoint answered by the authorization server in a worker thread."""

    def __init__(self, name: str, answer: Callable[[TokenRequest], Response], limiter: "_SharedLimiter") -> None:
        self.name = name  # "token", "revocation" or "introspection"
        self.answer = answer
        self.limiter = limiter

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            allow = {"Allow": "POST"}
            return oauth_error(405, "invalid_request", f"The {self.name} endpoint accepts POST only.", allow)
        if not _basic_credentials_readable(request.headers.get("authorization")):
            return oauth_error(
                401, "invalid_client", "Client authentication failed.", {"WWW-Authenticate": 'Basic realm="xinlian"'}
            )
        try:
            form = await _read_form(request)
            token_request = TokenRequest(request.method, str(request.url), request.headers, form)
            return await anyio.to_thread.run_sync(self.answer, token_request, limiter=self.limiter.get())
        except FormRejected as exc:
            return oauth_error(exc.status, "invalid_request", exc.description)
        except Exception:  # never a stack trace to the caller
            log.exception("%s request failed", self.name)
            return oauth_error(500, "server_error", f"The {self.name} request could not be answered.")


class _SharedLimiter:
    """One `anyio.CapacityLimiter` for all form endpoints, made on first use (inside the event loop)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._limiter: anyio.CapacityLimiter | None = None

    def get(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.capacity)
        return self._limiter


class JWKSEndpoint:
    """`GET /.well-known/jwks.json`: the public keys that verify the hub's tokens."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def handle(self, request: Request) -> Response:
        return JSONResponse(self.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})


class MetadataEndpoint:
    """`GET /.well-known/oauth-authorization-server`: the RFC 8414 document."""

    def __init__(self, issuer: str) -> None:
        self.document = authorization_server_metadata(issuer)

    async def handle(self, request: Request) -> Response:
        return JSONResponse(self.document, headers={"Cache-Control": "public, max-age=3600"})


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


def auth_routes(settings: Settings, store: Store, keyring: Keyring) -> list[Route]:
    """The routes to mount: token, revocation, introspection, JWKS and metadata (see the module docstring)."""
    server = authorization_server(settings, store, keyring)
    limiter = _SharedLimiter(CONCURRENT_TOKEN_REQUESTS)
    token = FormEndpoint("token", server.create_token_response, limiter)
    revoke = FormEndpoint("revocation", lambda r: server.create_endpoint_response("revocation", r), limiter)
    introspect = FormEndpoint("introspection", lambda r: server.create_endpoint_response("introspection", r), limiter)
    return [
        Route(TOKEN_PATH, token.handle, methods=FORM_METHODS, name="oauth_token"),
        Route(REVOCATION_PATH, revoke.handle, methods=FORM_METHODS, name="oauth_revoke"),
        Route(INTROSPECTION_PATH, introspect.handle, methods=FORM_METHODS, name="oauth_introspect"),
        Route(JWKS_PATH, JWKSEndpoint(keyring).handle, methods=["GET"], name="jwks"),
        Route(METADATA_PATH, MetadataEndpoint(settings.issuer).handle, methods=["GET"], name="oauth_metadata"),
    ]
