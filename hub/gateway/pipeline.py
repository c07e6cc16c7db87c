"""`Gateway`: the request pipeline, composed once, that every entry point passes.

For each declared `EntryPoint` the gateway runs, in this order:

1. **request id** — always the hub's own (a caller's `X-Request-Id` is kept in the audit entry as
   `detail.callerRequestId`, never used as the id);
2. **client address** — the peer, or `X-Forwarded-For` from a trusted proxy only (`addresses.py`);
3. **per-IP admission** — the profile's `ip_rate`, before anything else is looked at; refusals
   are counted, not stored one by one (`refusal_tally.py`);
4. **method** — 405 with `Allow`;
5. **authentication** — a bearer token becomes the `Principal` (`authentication.py`), the
   profile's scope is required (403 `insufficient_scope`);
6. **per-client admission** — the profile's `client_rate`; then, for data entry points, the
   request's purpose is declared and the client's registered facts are read;
7. **bounded body** — size and time (`body.py`);
8. **the handler, inside the audit scope** — the request's `AccessRecord` is open from stage 4
   on; whatever the handler returns or raises, the record is written (with any extra entries
   the handler left) *before* the response is sent, and a lost entry turns the response into
   503 `AUDIT_UNAVAILABLE`.

A client that disconnects is recorded as "abandoned", not as an error of ours. Unexpected
exceptions become 500 `INTERNAL_SERVER_ERROR` without detail (the traceback goes to the log).

While OpenTelemetry tracing is on (`XINLIAN_TRACING`, hub/observability/tracing.py) each request
is a server span (a caller's `traceparent` is its parent) with child spans for admission,
authentication, the purpose, the body and the audit write; off, one module-level boolean is
checked per request and no span is made.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from xinlian.hub.audit.record import AccessRecord
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.guard.codes import RATE_LIMITED
from xinlian.hub.observability import tracing
from xinlian.hub.observability.logs import REQUEST_ID
from xinlian.hub.principal import Principal

from .authentication import bearer_principal, declare_purpose, insufficient_scope
from .body import read_body
from .profile import Caller, EntryPoint, Exchange
from .refusal import Refusal, refusal_response

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

log = logging.getLogger("xinlian.gateway")
_CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,64}")
CLIENT_CLOSED_REQUEST = 499  # never seen by the client (it has gone); recorded in the server log


class AdmissionRefused(Refusal):
    """Over a rate limit: answered 429, audited through the refusal tally, not one entry each."""

    def __init__(
        self,
        rule: str,
        key: str,
        retry_after: int,
        message: str,
        *,
        code: str = RATE_LIMITED,
        oauth_error: str = "slow_down",
        audit_detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            429, code, message,
            headers={"Retry-After": str(retry_after)}, extensions={"retryAfter": retry_after},
            oauth_error=oauth_error, audit_detail=audit_detail,
        )
        self.rule, self.key = rule, key


async def admit(runtime: "HubRuntime", rule: str, key: str) -> None:
    """Count one request of `key` under `rule`; `AdmissionRefused` when over the limit."""
    admission = await runtime.rate_limiter.admit(rule, key)
    if not admission.allowed:
        wait = admission.retry_after
        raise AdmissionRefused(rule, key, wait, f"Too many requests ({admission.limit}); retry in {wait} s")


def new_request_id() -> str:
    """32 hex digits: the time in nanoseconds, then 64 random bits. Time-ordered, so the audit
    trail's request-id index grows at its end instead of at a random page (a uuid4 made each
    insert touch a random leaf: SQLite's per-entry cost grew with the trail, bench/store_growth.py)."""
    return f"{time.time_ns():016x}{secrets.randbits(64):016x}"


def _caller_request_id(request: Request) -> str | None:
    value = request.headers.get("x-request-id")
    return value if value is not None and _CALLER_REQUEST_ID.fullmatch(value) else None


def _audit_unavailable(entry_point: EntryPoint, headers: dict[str, str], changed: bool = False) -> Response:
    message = (
        "The audit trail is unavailable; the change was not made." if changed
        else "The audit trail is unavailable; the response was withheld."
    )
    return refusal_response(
        entry_point.style, Refusal(503, "AUDIT_UNAVAILABLE", message, oauth_error="temporarily_unavailable"), headers
    )


class Gateway:
    """Serves declared entry points through the pipeline (see the module docstring)."""

    def __init__(self, entry_points: list[EntryPoint]) -> None:
        paths = [e.path for e in entry_points]
        if len(set(paths)) != len(paths):
            raise ValueError("two entry points declare the same path")
        self.entry_points = list(entry_points)

    def routes(self) -> list[Route]:
        """One Starlette route per entry point; every method reaches the pipeline (which answers 405).

        Every method, not a list of them: Starlette answers a method outside a route's list itself
        (TRACE, PROPFIND, any token), before admission, without a request id and unaudited.
        """
        routes = []
        for entry_point in self.entry_points:
            # a partial of `serve`: Starlette unwraps it to a method and calls it per request
            route = Route(entry_point.path, functools.partial(self.serve, entry_point), name=entry_point.name or None)
            route.methods = None  # None: Starlette matches and hands on every method
            routes.append(route)
        return routes

    @staticmethod
    def served_by(route: Route) -> EntryPoint | None:
        """The entry point a route serves through a gateway, or None for a route that bypasses it."""
        endpoint = route.endpoint
        if isinstance(endpoint, functools.partial) and isinstance(getattr(endpoint.func, "__self__", None), Gateway):
            entry_point = endpoint.args[0] if endpoint.args else None
            return entry_point if isinstance(entry_point, EntryPoint) else None
        return None

    async def serve(self, entry_point: EntryPoint, request: Request) -> Response:
        runtime: HubRuntime = request.app.state.runtime
        started = time.perf_counter()
        outcome = "error"
        traced = tracing.begin_request(request, entry_point) if tracing.ENABLED else None
        try:
            response, outcome = await self._serve(entry_point, request, runtime, traced)
            if traced is not None:
                traced.status = response.status_code
            return response
        finally:  # every request, whatever became of it, in the latency histogram (and its trace)
            runtime.metrics.request(entry_point.name or entry_point.path, outcome, time.perf_counter() - started)
            if traced is not None:
                traced.end(outcome)

    async def _serve(
        self, entry_point: EntryPoint, request: Request, runtime: "HubRuntime", traced: tracing.RequestTrace | None
    ) -> tuple[Response, str]:
        """The pipeline; (response, outcome as recorded)."""
        request_id = new_request_id()
        REQUEST_ID.set(request_id)  # for the logs of this request's task (hub/observability/logs.py)
        address, scheme = runtime.client_address.of(request)
        record = AccessRecord(
            endpoint=entry_point.audit_name, request_id=request_id, remote_addr=address,
            policy_version=runtime.policy.version,
        )
        if traced is not None:
            traced.record = record
        caller_request_id = _caller_request_id(request)
        if caller_request_id is not None:
            record.detail["callerRequestId"] = caller_request_id
        headers = {**entry_point.headers, "x-request-id": request_id}
        try:
            if entry_point.ip_rate is not None:
                with tracing.stage("admission", {"xinlian.rule": entry_point.ip_rate}):
                    await admit(runtime, entry_point.ip_rate, runtime.client_address.budget_key(address))
            response = await self._stages(entry_point, request, runtime, record, address, scheme, headers)
        except AdmissionRefused as refusal:
            runtime.metrics.refusal(entry_point.name or entry_point.path, refusal.rule)
            return await self._refused_by_admission(runtime, entry_point, record, refusal, headers), "refused"
        except AuditUnavailable:  # an entry the handler had to store first (a mutation's intent) was lost
            log.error("audit trail unavailable; %s request %s not executed", entry_point.path, request_id)
            return _audit_unavailable(entry_point, headers, changed=True), "audit_unavailable"
        if entry_point.audited:
            try:
                with tracing.stage("audit write"):
                    await runtime.audit.record_all(record.entries())
            except AuditUnavailable:
                log.error("audit trail unavailable; response to %s withheld", request_id)
                return _audit_unavailable(entry_point, headers), "audit_unavailable"
        for name, value in headers.items():
            if name not in response.headers:
                response.headers[name] = value
        return response, record.outcome

    async def _stages(
        self,
        entry_point: EntryPoint,
        request: Request,
        runtime: "HubRuntime",
        record: AccessRecord,
        address: str,
        scheme: str,
        headers: dict[str, str],
    ) -> Response:
        """Stages 4–8; every outcome is recorded in `record` and becomes a response."""
        try:
            if request.method not in entry_point.methods:
                allowed = ", ".join(sorted(entry_point.methods))
                raise Refusal(405, "METHOD_NOT_ALLOWED", f"use {allowed}", headers={"Allow": allowed})
            principal = await self._authenticate(entry_point, request, runtime, record)
            limit = entry_point.max_body
            if limit is None:
                settings = runtime.settings
                limit = settings.max_batch_body_bytes if entry_point.batch_body else settings.max_body_bytes
            body = b""
            if limit and request.method not in ("GET", "HEAD"):
                with tracing.stage("read body"):
                    body = await read_body(request, limit, runtime.settings.body_timeout)
            exchange = Exchange(request, runtime, entry_point, record, principal, body, address, scheme)
            return await entry_point.handler(exchange)
        except (AdmissionRefused, AuditUnavailable):
            raise
        except Refusal as refusal:
            record.refused(refusal.code, "error" if refusal.status >= 500 else "rejected")
            record.detail.update(refusal.audit_detail)
            return refusal_response(entry_point.style, refusal, headers)
        except ClientDisconnect:
            record.outcome = "abandoned"
            log.info("%s request %s: the client went away", entry_point.path, record.request_id)
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        except Exception:  # never a stack trace to the caller
            log.exception("%s request %s failed", entry_point.path, record.request_id)
            record.refused("INTERNAL_SERVER_ERROR", "error")
            return refusal_response(
                entry_point.style, Refusal(500, "INTERNAL_SERVER_ERROR", "Internal server error"), headers
            )

    async def _authenticate(
        self, entry_point: EntryPoint, request: Request, runtime: "HubRuntime", record: AccessRecord
    ) -> Principal | None:
        """Stages 5 and 6: the caller and its scope, per-client admission, then the purpose."""
        wants_token = entry_point.caller is Caller.BEARER or (
            entry_point.caller is Caller.OPTIONAL_BEARER and request.headers.get("authorization")
        )
        if not wants_token:
            return None
        with tracing.stage("authentication"):
            principal = await bearer_principal(request, runtime, record)
            if entry_point.scope is not None and entry_point.scope not in principal.scopes:
                raise insufficient_scope(
                    entry_point.scope, f"{entry_point.path} needs a token with scope '{entry_point.scope}'"
                )
        if entry_point.client_rate is not None:
            with tracing.stage("admission", {"xinlian.rule": entry_point.client_rate}):
                await admit(runtime, entry_point.client_rate, principal.client_id or "")
        if entry_point.caller is Caller.OPTIONAL_BEARER:
            return principal  # not a data entry point (/readyz): no purpose, no client facts
        with tracing.stage("purpose"):
            return await declare_purpose(request, runtime, principal, record)

    async def _refused_by_admission(
        self,
        runtime: "HubRuntime",
        entry_point: EntryPoint,
        record: AccessRecord,
        refusal: AdmissionRefused,
        headers: dict[str, str],
    ) -> Response:
        record.refused(refusal.code)
        record.detail.update(refusal.audit_detail)
        record.detail["rule"] = refusal.rule
        if entry_point.audited:
            try:
                with tracing.stage("audit write"):
                    await runtime.refusals.refused((entry_point.audit_name, refusal.rule, refusal.key), record.entry())
            except AuditUnavailable:
                return _audit_unavailable(entry_point, headers)
        return refusal_response(entry_point.style, refusal, headers)
