"""Authentication: the OAuth2 token endpoint, signed JWT access tokens, JWKS, bearer validation, clients.

Modules (one idea each):
- `clients`: `ClientRegistry` (the hub store's clients), client kinds and their default scopes;
- `client_secrets`: generating secrets and their salted scrypt hashes;
- `access_token`: `AccessTokenIssuer`, RFC 9068 access tokens signed ES256 with the keyring;
- `server`: authlib's `AuthorizationServer` adapted to Starlette (client_credentials grant);
- `routes`: `POST /oauth/token`, `GET /.well-known/jwks.json`, and `auth_routes()` to mount them;
- `bearer`: `BearerValidator`, `principal_from_request`, `unauthorized_response`.
"""

from .access_token import AccessTokenIssuer, IssuedToken
from .bearer import BearerValidator, InvalidToken, principal_from_request, unauthorized_response
from .clients import CLIENT_KINDS, DEFAULT_SCOPES, ClientError, ClientRegistry, default_scope
from .routes import JWKS_PATH, TOKEN_PATH, auth_routes, authorization_server
from .server import HubAuthorizationServer, HubClient

__all__ = [
    "AccessTokenIssuer",
    "BearerValidator",
    "CLIENT_KINDS",
    "ClientError",
    "ClientRegistry",
    "DEFAULT_SCOPES",
    "HubAuthorizationServer",
    "HubClient",
    "InvalidToken",
    "IssuedToken",
    "JWKS_PATH",
    "TOKEN_PATH",
    "auth_routes",
    "authorization_server",
    "default_scope",
    "principal_from_request",
    "unauthorized_response",
]
