"""`create_app(settings)`: the hub's Starlette application, and every entry point it serves.

Each entry point is *declared* here as an `EntryPoint` profile — path, methods, who may call,
which rate rules admit it, body limit, whether it is audited, the style of its errors — and
served by the one `Gateway` (`hub/gateway/pipeline.py`), which runs the same stages for all of
them. Adding an entry point means adding a profile to `ENTRY_POINTS`; its handler only answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from .admin.endpoint import ADMIN_SCOPE, admin_graphql
from .auth.metadata import INTROSPECTION_PATH, JWKS_PATH, METADATA_PATH, REVOCATION_PATH, TOKEN_PATH
from .auth.routes import (
    MAX_FORM_BYTES,
    introspection_endpoint,
    jwks,
    revocation_endpoint,
    server_metadata,
    token_endpoint,
)
from .auth.routes import (
    NO_STORE as OAUTH_NO_STORE,
)
from .config import Settings
from .endpoints.graphql import DataEndpoint
from .endpoints.health import healthz, readyz
from .endpoints.metrics import metrics
from .gateway.pipeline import Gateway
from .gateway.profile import NO_STORE, Caller, EntryPoint, Exchange, Handler
from .gateway.refusal import ErrorStyle
from .guard.rate_limits import CLIENT, GRAPHQL_IP, META_IP, OAUTH_IP, PUBLIC_IP
from .runtime import HubRuntime
from .serving import redact_access_log


async def index(exchange: Exchange) -> Response:
    runtime = exchange.runtime
    base = runtime.settings.issuer
    return JSONResponse(
        {
            "name": "Xinlian (信联) credit information hub",
            "graphql": f"{base}/graphql",
            "public_graphql": f"{base}/public/graphql",
            "token_endpoint": f"{base}/oauth/token",
            "jwks": f"{base}/.well-known/jwks.json",
            "policy_version": runtime.policy.version,
        }
    )


GET = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})
QUERY = frozenset({"GET", "POST"})


def oauth_form(path: str, handler: Handler, name: str) -> EntryPoint:
    """An OAuth2 form endpoint: POST, clients authenticate in the handler, admitted per IP, audited."""
    return EntryPoint(
        path, handler, methods=POST, caller=Caller.ANYONE, ip_rate=OAUTH_IP, max_body=MAX_FORM_BYTES,
        style=ErrorStyle.OAUTH, headers=OAUTH_NO_STORE, name=name,
    )


def meta(path: str, handler: Handler, name: str, *, caller: Caller = Caller.ANYONE,
         headers: dict[str, str] | None = None) -> EntryPoint:
    """A GET endpoint about the hub itself (no credit data): admitted per IP, not audited."""
    return EntryPoint(
        path, handler, methods=GET, caller=caller, ip_rate=META_IP, max_body=0, audited=False,
        style=ErrorStyle.JSON, headers=headers or {}, name=name,
    )


ENTRY_POINTS: list[EntryPoint] = [
    EntryPoint("/graphql", DataEndpoint(public=False), methods=QUERY, caller=Caller.BEARER,
               ip_rate=GRAPHQL_IP, client_rate=CLIENT, batch_body=True, name="graphql"),
    EntryPoint("/public/graphql", DataEndpoint(public=True), methods=QUERY, caller=Caller.ANYONE,
               ip_rate=PUBLIC_IP, name="public_graphql"),
    EntryPoint("/admin/graphql", admin_graphql, methods=QUERY, caller=Caller.BEARER, scope=ADMIN_SCOPE,
               ip_rate=GRAPHQL_IP, client_rate=CLIENT, name="admin_graphql"),
    oauth_form(TOKEN_PATH, token_endpoint, "oauth_token"),
    oauth_form(REVOCATION_PATH, revocation_endpoint, "oauth_revoke"),
    oauth_form(INTROSPECTION_PATH, introspection_endpoint, "oauth_introspect"),
    meta("/", index, "index"),
    meta("/healthz", healthz, "healthz", headers=dict(NO_STORE)),
    meta("/readyz", readyz, "readyz", caller=Caller.OPTIONAL_BEARER, headers=dict(NO_STORE)),
    meta("/metrics", metrics, "metrics", caller=Caller.OPTIONAL_BEARER, headers=dict(NO_STORE)),
    meta(JWKS_PATH, jwks, "jwks"),
    meta(METADATA_PATH, server_metadata, "oauth_metadata"),
]


def create_app(settings: Settings, entry_points: list[EntryPoint] | None = None) -> Starlette:
    """The hub application; the runtime (store, keys, connectors, audit) opens in its lifespan.

    `entry_points` defaults to `ENTRY_POINTS`; tests may add their own, served by the same gateway.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await HubRuntime.open(settings)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    redact_access_log()
    gateway = Gateway(entry_points if entry_points is not None else ENTRY_POINTS)
    return Starlette(routes=gateway.routes(), lifespan=lifespan)


SERVE_OPTIONS_ENV = "XINLIAN_SERVE_OPTIONS"


def app_from_serve_options() -> Starlette:
    """The app of one worker process of `xinlian serve --workers N` (a uvicorn app factory).

    uvicorn starts each worker in a fresh interpreter, so the command's own options (data
    directory, host, port, trusted proxies) travel as JSON in `XINLIAN_SERVE_OPTIONS`; the rest of
    the settings come from the environment as for one process. The worker's slow-client bound
    is set on `BoundedH11Protocol` here, before it serves a connection.
    """
    import json
    import os

    from .gateway.addresses import parse_networks
    from .serving import BoundedH11Protocol

    options = json.loads(os.environ[SERVE_OPTIONS_ENV])
    settings = Settings.from_env(options["data_dir"], host=options["host"], port=int(options["port"]))
    if options.get("trusted_proxies"):
        settings = dataclasses.replace(settings, trusted_proxies=parse_networks(options["trusted_proxies"]))
    BoundedH11Protocol.header_timeout = settings.header_timeout
    return create_app(settings)
