"""`GET /metrics`: the hub's Prometheus metrics (hub/observability/metrics.py).

Shown to whom `/readyz` shows its detail: a token with the `admin` scope, or a request from a
configured monitoring address (`XINLIAN_MONITORING_ADDRESSES`, e.g. the Prometheus server's);
anyone else gets 403. The metrics name entry points, outcomes, connectors and rules, never a
client, a subject or an address — but which departments fail, and how often, is not public.
"""

from __future__ import annotations

from starlette.responses import Response

from xinlian.hub.gateway.profile import Exchange
from xinlian.hub.gateway.refusal import Refusal
from xinlian.hub.observability.metrics import CONTENT_TYPE

from .health import may_see_detail


async def metrics(exchange: Exchange) -> Response:
    if not may_see_detail(exchange):
        raise Refusal(403, "FORBIDDEN", "the metrics are for an admin token or a monitoring address")
    return Response(exchange.runtime.metrics.render(), media_type=CONTENT_TYPE)
