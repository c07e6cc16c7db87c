"""`GET /healthz` (the process is up) and `GET /readyz` (the store answers; each department's state)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xinlian.connectors.resilience import LinkStatus

log = logging.getLogger("xinlian.health")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def link_document(status: LinkStatus) -> dict[str, Any]:
    """What /readyz says of one department (no error messages: those are in the server log)."""
    return {
        "connector": status.connector,
        "department": status.department,
        "condition": status.condition,
        "circuit": status.state.value,
        "consecutiveFailures": status.consecutive_failures,
        "lastErrorAt": _time(status.last_error_at),
        "lastSuccessAt": _time(status.last_success_at),
        "openedAt": _time(status.opened_at),
        "inFlight": status.in_flight,
        "maxConcurrency": status.max_concurrency,
        "calls": status.calls,
        "failures": status.failures,
        "invalid": status.invalid,
        "rejected": status.rejected,
    }


async def readyz(request: Request) -> Response:
    runtime = request.app.state.runtime
    store_ok = True
    try:
        async with runtime.store.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        log.exception("readiness: the hub store does not answer")
        store_ok = False
    departments = [link_document(s) for s in runtime.federation.status()]
    body = {
        "status": "ready" if store_ok else "unready",
        "store": "ok" if store_ok else "unreachable",
        "connectors": departments,
        "rateLimiter": runtime.rate_limiter.status(),  # degraded (Redis away) does not make the hub unready
        "harvestCap": runtime.harvest.status() if runtime.harvest is not None else {"cap": "off"},
        "policyVersion": runtime.policy.version,
    }
    return JSONResponse(body, status_code=200 if store_ok else 503)
