"""The OAuth2 authorization server (RFC 6749) on Starlette: authlib's `AuthorizationServer`, adapted.

authlib's server is synchronous and framework-neutral; a framework integration supplies
`create_oauth2_request`, `handle_response`, `query_client`, `save_token` and `send_signal`
(as `authlib.integrations.flask_oauth2` does for Flask). Here:

- the endpoint reads and parses the form body asynchronously (bounded), then hands a
  `TokenRequest` to `HubAuthorizationServer.create_token_response` in a worker thread, so the
  scrypt secret check and the ES256 signature never block the event loop;
- `query_client` runs in that worker thread and fetches the client from the async store on the
  event loop (`anyio.from_thread.run`);
- tokens are self-contained JWTs (`access_token.AccessTokenIssuer`): `save_token` stores nothing.

Grant: `client_credentials` only. Client authentication: `client_secret_basic` or
`client_secret_post` (one of them per request). An unknown client, a wrong secret and a disabled
client all get the same `invalid_client` answer after the same amount of work.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientCredentialsGrant,
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    UnsupportedGrantTypeError,
)
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from xinlian.hub.store.models import ClientRecord

from .access_token import AccessTokenIssuer
from .client_secrets import verify_nothing, verify_secret
from .clients import ClientRegistry

log = logging.getLogger("xinlian.auth")

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class HubClient(ClientMixin):
    """A registered client as authlib sees it (a snapshot of its `ClientRecord`)."""

    def __init__(self, record: ClientRecord | None) -> None:
        self.record = record

    @property
    def client_id(self) -> str:
        return self.record.client_id if self.record else ""

    @property
    def kind(self) -> str:
        return self.record.kind if self.record else ""

    @property
    def scopes(self) -> list[str]:
        return self.record.scope.split() if self.record else []

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.scopes
        if not scope:
            return " ".join(allowed)
        return " ".join(s for s in allowed if s in set(scope.split()))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        if self.record is None:  # no such client: do the same work, then refuse
            verify_nothing()
            return False
        matches = verify_secret(client_secret, self.record.secret_hash)
        return matches and not self.record.disabled

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class FormPayload(OAuth2Payload):
    """The token request's form parameters (the body only; never the query string)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


@dataclass(frozen=True)
class TokenRequest:
    """What the token endpoint read from the HTTP request, ready for the (sync) server."""

    method: str
    url: str
    headers: Headers
    form: list[tuple[str, str]]


class StarletteOAuth2Request(OAuth2Request):
    def __init__(self, request: TokenRequest) -> None:
        super().__init__(method=request.method, uri=request.url, headers=request.headers)
        self.payload = FormPayload(request.form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


class HubClientCredentialsGrant(ClientCredentialsGrant):
    """client_credentials with the client's own scopes as the ceiling of what it may ask for."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self) -> None:
        uses_basic = self.request.headers.get("Authorization", "").lower().startswith("basic ")
        if uses_basic and "client_secret" in self.request.payload.data:
            raise InvalidRequestError("Use one client authentication method per request.")
        try:
            super().validate_token_request()
        except InvalidClientError as error:  # one answer for unknown client, wrong secret, disabled
            error.description = "Client authentication failed."
            raise
        named = self.request.payload.client_id
        if named is not None and named != self.client.get_client_id():
            raise InvalidRequestError("The client_id parameter does not match the authenticated client.")

    def validate_requested_scope(self) -> None:
        client: HubClient = self.client
        requested = (self.request.payload.scope or "").split()
        if not requested:
            self.request.scope = " ".join(client.scopes)
            return
        unknown = [s for s in dict.fromkeys(requested) if s not in client.scopes]
        if unknown:
            raise InvalidScopeError("The requested scope exceeds the scope registered for this client.")
        self.request.scope = " ".join(s for s in client.scopes if s in requested)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class HubAuthorizationServer(AuthorizationServer):
    """authlib's authorization server wired to the hub's client registry and token issuer.

    `create_token_response(TokenRequest)` is synchronous: call it from a worker thread started by
    anyio (the client lookup calls back into the event loop).
    """

    def __init__(self, registry: ClientRegistry, issuer: AccessTokenIssuer) -> None:
        super().__init__()
        self.registry = registry
        self.issuer = issuer
        self.register_grant(HubClientCredentialsGrant)
        self.register_token_generator("default", self.generate_access_token)

    # -- the framework-integration surface authlib asks for ---------------------------------

    def query_client(self, client_id: str) -> HubClient:
        record = anyio.from_thread.run(self.registry.get, client_id)
        return HubClient(record)  # an empty HubClient for an unknown id: refused after equal work

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs; nothing is stored."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_authenticate_client":
            client = kwargs.get("client")
            log.debug("client %s authenticated", client.get_client_id() if client else None)

    def create_oauth2_request(self, request: TokenRequest) -> StarletteOAuth2Request:
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: TokenRequest) -> Any:
        raise NotImplementedError("the hub has no JSON-bodied OAuth2 endpoints")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        extra = {k: v for k, v in headers if k.lower() != "content-type"}
        return JSONResponse(body, status_code=status, headers=extra)

    # -- tokens -------------------------------------------------------------------------------

    def generate_access_token(
        self,
        grant_type: str,
        client: HubClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        issued = self.issuer.issue(client.client_id, client.kind, scope or "")
        log.info("issued token %s to %s (scope %s)", issued.token_id, client.client_id, issued.scope)
        return issued.response()

    def get_token_grant(self, request: OAuth2Request) -> HubClientCredentialsGrant:
        if not request.payload.grant_type:
            raise InvalidRequestError("Missing 'grant_type' parameter.")
        try:
            return super().get_token_grant(request)
        except UnsupportedGrantTypeError as error:
            error.description = "Only grant_type=client_credentials is supported."
            raise

    def create_token_response(self, request: TokenRequest | None = None) -> Response:
        """Validate a token request and answer it: a token, or a standard OAuth2 error."""
        assert request is not None
        try:
            oauth2_request = self.create_oauth2_request(request)
            for name, values in oauth2_request.payload.datalist.items():
                if len(values) > 1:
                    shown = re.sub(r"[^A-Za-z0-9_.-]", "?", name[:40])
                    raise InvalidRequestError(f"Parameter '{shown}' is repeated.")
            grant = self.get_token_grant(oauth2_request)
            grant.validate_token_request()
            return self.handle_response(*grant.create_token_response())
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
