"""Authorization server metadata (RFC 8414) at `GET /.well-known/oauth-authorization-server`.

One JSON document tells a client everything it needs to talk to the hub: the issuer, where to
get, revoke and introspect tokens, where the verification keys are, and which grant, client
authentication methods and assertion algorithms are accepted. Member names are RFC 8414 §2's
(they are the keys of authlib's `rfc8414.AuthorizationServerMetadata`). The issuer is used
as configured (`XINLIAN_ISSUER`); RFC 8414 wants https in production, see docs/auth.md on TLS.
"""

from __future__ import annotations

from typing import Any

from .client_assertion import METHOD as PRIVATE_KEY_JWT
from .client_keys import ASSERTION_ALGORITHMS
from .clients import DEFAULT_SCOPES

METADATA_PATH = "/.well-known/oauth-authorization-server"
TOKEN_PATH = "/oauth/token"
REVOCATION_PATH = "/oauth/revoke"
INTROSPECTION_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"
CLIENT_AUTH_METHODS: tuple[str, ...] = ("client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT)


def endpoint_url(issuer: str, path: str) -> str:
    """The absolute URL of one of the hub's endpoints under `issuer`."""
    return issuer.rstrip("/") + path


def known_scopes() -> list[str]:
    """Every scope the hub gives its client kinds by default, sorted."""
    return sorted({scope for scopes in DEFAULT_SCOPES.values() for scope in scopes.split()})


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """The RFC 8414 document for a hub whose issuer identifier is `issuer`."""
    methods = list(CLIENT_AUTH_METHODS)
    algorithms = list(ASSERTION_ALGORITHMS)
    return {
        "issuer": issuer,
        "token_endpoint": endpoint_url(issuer, TOKEN_PATH),
        "jwks_uri": endpoint_url(issuer, JWKS_PATH),
        "revocation_endpoint": endpoint_url(issuer, REVOCATION_PATH),
        "introspection_endpoint": endpoint_url(issuer, INTROSPECTION_PATH),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "scopes_supported": known_scopes(),
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
    }
