"""The hub as the auth tests serve it: `auth_app(settings)` (the real hub with no departments,
plus `/whoami`, a bearer-protected entry point served by the same gateway), its settings, and
base64url helpers for hand-made tokens. A fixtures module: test files import it instead of
importing each other.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from xinlian.hub.app import ENTRY_POINTS, create_app
from xinlian.hub.config import Settings
from xinlian.hub.gateway.lockout import LockoutRules
from xinlian.hub.gateway.profile import Caller, EntryPoint, Exchange
from xinlian.hub.gateway.refusal import ErrorStyle
from xinlian.hub.guard.rate_limits import RateRules
from xinlian.keys.keyring import RELOAD_INTERVAL

ISSUER = "http://hub.test"
AUDIENCE = "xinlian-hub"
TTL = 300


# --------------------------------------------------------------------------- the test hub


async def whoami(exchange: Exchange) -> Response:
    """Who the bearer token speaks for (the gateway has authenticated it, as for /graphql)."""
    principal = exchange.principal
    assert principal is not None
    return JSONResponse({"client_id": principal.client_id, "kind": principal.kind, "scopes": sorted(principal.scopes)})


WHOAMI = EntryPoint("/whoami", whoami, methods=frozenset({"GET"}), caller=Caller.BEARER, audited=False,
                    style=ErrorStyle.JSON, name="whoami")


def auth_app(settings: Settings, *, key_reload_interval: float = RELOAD_INTERVAL) -> Starlette:
    """The hub (`create_app`, no departments) plus `/whoami`, a bearer-protected entry point.

    `/whoami` is declared like the hub's own entry points and passes the same gateway, so its
    tokens are validated exactly as on `/graphql` (signature, claims, revocation, disabled
    clients). `key_reload_interval` is how often the keyring looks for a rotation. Failed client
    authentications are not locked out here: the attack suites try many on purpose (the lockout
    has its own tests in test_gateway_holes.py).
    """
    settings = dataclasses.replace(
        settings, key_reload_interval=key_reload_interval, auth_lockout=LockoutRules(threshold=0),
        rate_limits=RateRules(oauth_ip="off"),
    )
    return create_app(settings, entry_points=[*ENTRY_POINTS, WHOAMI])


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url or f"sqlite+aiosqlite:///{data_dir / 'hub.db'}",
        issuer=ISSUER,
        audience=AUDIENCE,
        access_token_ttl=TTL,
    )


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
