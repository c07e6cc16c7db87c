"""The hub's OAuth2 HTTP endpoints: `POST /oauth/token` and `GET /.well-known/jwks.json`.

The token endpoint reads at most `MAX_FORM_BYTES` of `application/x-www-form-urlencoded` body,
then lets `HubAuthorizationServer` answer in a worker thread. Whatever goes wrong, the caller
gets a standard OAuth2 JSON error (RFC 6749 §5.2), never a stack trace.
"""

from __future__ import annotations

import base64
import binascii

import logging
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
from .clients import ClientRegistry
from .server import HubAuthorizationServer, TokenRequest

log = logging.getLogger("xinlian.auth")

TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/.well-known/jwks.json"
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
        raise FormRejected(400, "Send the token request as application/x-www-form-urlencoded.")
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


class TokenEndpoint:
    """`POST /oauth/token` (client_credentials)."""

    def __init__(self, server: HubAuthorizationServer) -> None:
        self.server = server
        self._limiter: anyio.CapacityLimiter | None = None

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return oauth_error(405, "invalid_request", "The token endpoint accepts POST only.", {"Allow": "POST"})
        if not _basic_credentials_readable(request.headers.get("authorization")):
            return oauth_error(
                401, "invalid_client", "Client authentication failed.", {"WWW-Authenticate": 'Basic realm="xinlian"'}
            )
        try:
            form = await _read_form(request)
            if self._limiter is None:
                self._limiter = anyio.CapacityLimiter(CONCURRENT_TOKEN_REQUESTS)
            token_request = TokenRequest(request.method, str(request.url), request.headers, form)
            return await anyio.to_thread.run_sync(
                self.server.create_token_response, token_request, limiter=self._limiter
            )
        except FormRejected as exc:
            return oauth_error(exc.status, "invalid_request", exc.description)
        except Exception:  # never a stack trace to the caller
            log.exception("token request failed")
            return oauth_error(500, "server_error", "The token could not be issued.")


class JWKSEndpoint:
    """`GET /.well-known/jwks.json`: the public keys that verify the hub's tokens."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def handle(self, request: Request) -> Response:
        return JSONResponse(self.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})


def authorization_server(settings: Settings, store: Store, keyring: Keyring) -> HubAuthorizationServer:
    """The hub's authorization server for these settings, store and keyring."""
    issuer = AccessTokenIssuer(keyring, settings.issuer, settings.audience, settings.access_token_ttl)
    return HubAuthorizationServer(ClientRegistry(store), issuer)


def auth_routes(settings: Settings, store: Store, keyring: Keyring) -> list[Route]:
    """The routes to mount: `POST /oauth/token` and `GET /.well-known/jwks.json`."""
    token = TokenEndpoint(authorization_server(settings, store, keyring))
    jwks = JWKSEndpoint(keyring)
    return [
        Route(TOKEN_PATH, token.handle, methods=["POST", "GET", "PUT", "PATCH", "DELETE"], name="oauth_token"),
        Route(JWKS_PATH, jwks.handle, methods=["GET"], name="jwks"),
    ]
