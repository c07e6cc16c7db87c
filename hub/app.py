"""`create_app(settings)`: the hub's Starlette application and its routes."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .admin.endpoint import admin_graphql
from .auth import auth_routes
from .config import Settings
from .endpoints.graphql import GraphQLEndpoint
from .endpoints.health import healthz, readyz
from .runtime import HubRuntime


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def index(request: Request) -> Response:
    runtime: HubRuntime = request.app.state.runtime
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


def create_app(settings: Settings) -> Starlette:
    """The hub application; the runtime (store, keys, connectors, audit) opens in its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await HubRuntime.open(settings)
        app.state.runtime = runtime
        for route in auth_routes(settings, runtime.store, runtime.keyring):
            app.router.routes.append(route)
        try:
            yield
        finally:
            await runtime.close()

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        # every method reaches the handler, which refuses all but GET/POST itself, audited
        Route("/graphql", GraphQLEndpoint(public=False).handle, methods=ALL_METHODS),
        Route("/public/graphql", GraphQLEndpoint(public=True).handle, methods=ALL_METHODS),
        Route("/admin/graphql", admin_graphql, methods=ALL_METHODS),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
