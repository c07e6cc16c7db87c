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

Grant: `client_credentials` only. Client authentication, one method per request:
`client_secret_basic` or `client_secret_post` for clients registered with a secret,
`private_key_jwt` (`client_assertion`, RFC 7523) for clients registered with public keys. An
unknown client, a wrong secret, a disabled client and an unverifiable assertion all get the same
`invalid_client` answer (secret checks after the same amount of work).

Besides the token endpoint, the server answers the revocation (RFC 7009) and introspection
(RFC 7662) endpoints of `token_status` through `create_endpoint_response(name, TokenRequest)`,
with the same form checks and client authentication.
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
from joserfc.jwk import Key, KeySet
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response

from xinlian.hub.store.models import ClientRecord

from .access_token import AccessTokenIssuer
from .bearer import REALM
from .client_assertion import InvalidClientAssertion, PrivateKeyJWTAuthentication
from .client_keys import ClientKeyError, key_for_assertion, parse_client_jwks
from .client_secrets import verify_nothing, verify_secret
from .clients import PRIVATE_KEY_JWT, ClientRegistry
from .metadata import CLIENT_AUTH_METHODS

log = logging.getLogger("xinlian.auth")

SECRET_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = CLIENT_AUTH_METHODS  # every method the server knows; each client may use its own
ENDPOINTS = ("token", "revocation", "introspection")
AUTHENTICATION_FAILED = "Client authentication failed."


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
    def purposes(self) -> list[str]:
        return (self.record.purposes or "").split() if self.record else []

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

    @property
    def auth_method(self) -> str:
        """The client's registered authentication method (`client_secret_basic` or `private_key_jwt`)."""
        return self.record.token_endpoint_auth_method if self.record else ""

    def check_client_secret(self, client_secret: str) -> bool:
        if self.record is None:  # no such client: do the same work, then refuse
            verify_nothing()
            return False
        matches = verify_secret(client_secret, self.record.secret_hash)
        return matches and not self.record.disabled and self.auth_method != PRIVATE_KEY_JWT

    def assertion_key(self, header: dict[str, Any]) -> Key | None:
        """The registered public key that verifies a client assertion with `header`, if any."""
        record = self.record
        if record is None or record.disabled or self.auth_method != PRIVATE_KEY_JWT or not record.jwks:
            return None
        try:
            keys: KeySet = parse_client_jwks(record.jwks)
        except ClientKeyError:
            log.error("client %s has unusable stored keys", record.client_id)
            return None
        return key_for_assertion(keys, header)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint not in ENDPOINTS or self.record is None:
            return False
        if self.auth_method == PRIVATE_KEY_JWT:
            return method == PRIVATE_KEY_JWT
        return method in SECRET_METHODS

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


@dataclass
class TokenRequest:
    """What the token endpoint read from the HTTP request, ready for the (sync) server.

    `authenticated` is filled in by the server: the (client id, kind) its client authentication
    accepted, for the audit entry and the lockout.
    """

    method: str
    url: str
    headers: Headers
    form: list[tuple[str, str]]
    authenticated: tuple[str, str] | None = None


class StarletteOAuth2Request(OAuth2Request):
    def __init__(self, request: TokenRequest) -> None:
        super().__init__(method=request.method, uri=request.url, headers=request.headers)
        self.payload = FormPayload(request.form)
        self.source = request

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
        try:
            super().validate_token_request()
        except InvalidClientError as error:  # one answer for unknown client, wrong secret, disabled
            _uniform(error)
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

    def validate_purpose(self) -> str | None:
        """The optional `purpose` parameter: bound into the token, if the client is registered for it."""
        purpose = self.request.payload.data.get("purpose")
        if purpose is None or purpose == "":
            return None
        if purpose not in self.client.purposes:
            raise InvalidRequestError("The purpose is not among the purposes registered for this client.")
        return purpose

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.server.issue_access_token(self.client, self.request.scope, self.validate_purpose())
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class HubAuthorizationServer(AuthorizationServer):
    """authlib's authorization server wired to the hub's client registry and token issuer.

    `create_token_response(TokenRequest)` is synchronous: call it from a worker thread started by
    anyio (the client lookup calls back into the event loop).
    """

    def __init__(
        self,
        registry: ClientRegistry,
        issuer: AccessTokenIssuer,
        private_key_jwt: PrivateKeyJWTAuthentication | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.issuer = issuer
        self.register_grant(HubClientCredentialsGrant)
        self.register_token_generator("default", self.generate_access_token)
        if private_key_jwt is not None:
            self.register_client_auth_method(PRIVATE_KEY_JWT, private_key_jwt)
        else:  # a method named in AUTH_METHODS must exist; without assertions it never authenticates
            self.register_client_auth_method(PRIVATE_KEY_JWT, lambda query_client, request: None)

    # -- the framework-integration surface authlib asks for ---------------------------------

    def query_client(self, client_id: str) -> HubClient:
        record = anyio.from_thread.run(self.registry.get, client_id)
        return HubClient(record)  # an empty HubClient for an unknown id: refused after equal work

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        """authlib's client authentication, noting the accepted client on the `TokenRequest`."""
        client = super().authenticate_client(request, methods, endpoint)
        if isinstance(request, StarletteOAuth2Request) and isinstance(client, HubClient) and client.record is not None:
            request.source.authenticated = (client.client_id, client.kind)
        return client

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
        """Every answer of the server: authlib's headers, with the hub's realm on a Basic challenge."""
        extra = {k: v for k, v in headers if k.lower() != "content-type"}
        for name, value in extra.items():
            if name.lower() == "www-authenticate" and value.startswith("Basic ") and "realm=" not in value:
                extra[name] = f'Basic realm="{REALM}", {value[6:]}'
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
        return self.issue_access_token(client, scope)

    def issue_access_token(self, client: HubClient, scope: str | None, purpose: str | None = None) -> dict[str, Any]:
        """Sign an access token for `client` (bound to `purpose` when the request named one)."""
        issued = self.issuer.issue(client.client_id, client.kind, scope or "", purpose=purpose)
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
            _check_form(oauth2_request)
            grant = self.get_token_grant(oauth2_request)
            grant.validate_token_request()
            return self.handle_response(*grant.create_token_response())
        except OAuth2Error as error:
            return self.handle_error_response(request, error)

    def create_endpoint_response(self, name: str, request: Any = None) -> Response:
        """Answer a revocation or introspection request (`name`: "revocation" or "introspection")."""
        assert isinstance(request, TokenRequest)
        try:
            oauth2_request = self.create_oauth2_request(request)
            _check_form(oauth2_request)
            endpoint = self._endpoints[name][0]
            try:
                return self.handle_response(*endpoint.create_endpoint_response(oauth2_request))
            except InvalidClientError as error:
                _uniform(error)
                raise
        except OAuth2Error as error:
            return self.handle_error_response(request, error)


def _check_form(request: OAuth2Request) -> None:
    """Each parameter once; one client authentication method per request."""
    for name, values in request.payload.datalist.items():
        if len(values) > 1:
            shown = re.sub(r"[^A-Za-z0-9_.-]", "?", name[:40])
            raise InvalidRequestError(f"Parameter '{shown}' is repeated.")
    form = request.payload.data
    used = [
        request.headers.get("Authorization", "").lower().startswith("basic "),
        "client_secret" in form,
        "client_assertion" in form or "client_assertion_type" in form,
    ]
    if sum(used) > 1:
        raise InvalidRequestError("Use one client authentication method per request.")


def _uniform(error: InvalidClientError) -> None:
    """One description for every failed authentication, except an assertion's own (signed) reasons."""
    if not isinstance(error, InvalidClientAssertion):
        error.description = AUTHENTICATION_FAILED
