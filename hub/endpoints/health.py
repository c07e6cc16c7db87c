"""`GET /healthz` (the process is up) and `GET /readyz` (the store answers; each department's state).

`/readyz` tells anyone whether the hub is ready (`status`, and 503 when not). The detail — every
department's circuit, the rate limiter, the harvest cap, the policy version — is shown only to
a token with the `admin` scope or to a configured monitoring address
(`XINLIAN_MONITORING_ADDRESSES`): a department's outage is not everyone's business.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from xinlian.connectors.resilience import LinkStatus
from xinlian.hub.admin.endpoint import ADMIN_SCOPE
from xinlian.hub.gateway.addresses import within
from xinlian.hub.gateway.profile import Exchange

log = logging.getLogger("xinlian.health")


async def healthz(exchange: Exchange) -> Response:
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
        "slots": status.slots,  # this process's share of maxConcurrency (the cluster's budget)
        "calls": status.calls,
        "failures": status.failures,
        "invalid": status.invalid,
        "rejected": status.rejected,
        "badInput": status.bad_input,  # calls refused for the caller's input: never counted by the breaker
    }


def may_see_detail(exchange: Exchange) -> bool:
    """An admin token, or a request from a configured monitoring address."""
    if exchange.principal is not None and ADMIN_SCOPE in exchange.principal.scopes:
        return True
    return within(exchange.client_address, exchange.runtime.settings.monitoring_addresses)


async def readyz(exchange: Exchange) -> Response:
    runtime = exchange.runtime
    store_ok = True
    try:
        async with runtime.store.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        log.exception("readiness: the hub store does not answer")
        store_ok = False
    status = 200 if store_ok else 503
    if not may_see_detail(exchange):
        return JSONResponse({"status": "ready" if store_ok else "unready"}, status_code=status)
    departments = [link_document(s) for s in runtime.federation.status()]
    body = {
        "status": "ready" if store_ok else "unready",
        "store": "ok" if store_ok else "unreachable",
        "connectors": departments,
        "rateLimiter": runtime.rate_limiter.status(),  # degraded (Redis away) does not make the hub unready
        "harvestCap": runtime.harvest.status(),
        "policyVersion": runtime.policy.version,
        "cluster": {  # the hub processes sharing the store, and whether this one follows its changes
            "processes": runtime.members.count,
            "changeFeed": {
                "current": runtime.changes.current(2 * runtime.changes.interval),
                "postgresListen": runtime.changes.listening_postgres,
                "redis": runtime.changes.listening_redis,
            },
        },
    }
    return JSONResponse(body, status_code=status)
