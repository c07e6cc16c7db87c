"""Authentication: the OAuth2 authorization server, signed JWT access tokens, JWKS, bearer validation, clients.

Modules (one idea each):
- `clients`: `ClientRegistry` (the hub store's clients), client kinds and their default scopes;
- `client_secrets`: generating secrets and their salted scrypt hashes;
- `client_keys`: clients' public JWK Sets for `private_key_jwt`;
- `client_assertion`: `private_key_jwt` client authentication (RFC 7523) and its replay ledger;
- `access_token`: `AccessTokenIssuer`, RFC 9068 access tokens signed ES256 with the keyring;
- `server`: authlib's `AuthorizationServer` adapted to Starlette (client_credentials grant);
- `token_status`: the revocation (RFC 7009) and introspection (RFC 7662) endpoints;
- `revocation`: `RevocationList`, the revoked token ids in the hub store, cached per process;
- `metadata`: the authorization server metadata document (RFC 8414);
- `routes`: the HTTP handlers of the OAuth2 entry points (declared in `hub/app.py`, served by the gateway);
- `bearer`: `BearerValidator` (the hub's access tokens), `bearer_challenge` (RFC 6750), `unverified_claim`.
"""

from .access_token import AccessTokenIssuer, IssuedToken
from .bearer import BearerValidator, InvalidToken, bearer_challenge, unverified_claim
from .clients import CLIENT_KINDS, DEFAULT_SCOPES, ClientError, ClientRegistry, default_scope
from .metadata import INTROSPECTION_PATH, JWKS_PATH, METADATA_PATH, REVOCATION_PATH, TOKEN_PATH
from .revocation import RevocationList, RevocationUnavailable, revocation_list
from .routes import authorization_server
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
    "INTROSPECTION_PATH",
    "InvalidToken",
    "IssuedToken",
    "JWKS_PATH",
    "METADATA_PATH",
    "REVOCATION_PATH",
    "RevocationList",
    "RevocationUnavailable",
    "TOKEN_PATH",
    "authorization_server",
    "bearer_challenge",
    "default_scope",
    "revocation_list",
    "unverified_claim",
]
