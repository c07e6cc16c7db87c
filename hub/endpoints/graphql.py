"""The data endpoints' handler: `/graphql` (bearer token) and `/public/graphql` (anonymous).

The gateway (`hub/gateway/pipeline.py`) has already admitted, authenticated and bounded the
request, and opened its audit record. Here: parse the HTTP request → persisted-query safelist
(public) → a mutation (on `/graphql` credit governance and case changes, on `/public/graphql` filing
a complaint) runs only by POST, selects one root field and has its intent audited first
(hub/gateway/mutations.py) → execute (which
resolves the operation: several without `operationName` are refused) over the endpoint's schema
with a fresh `RequestContext` whose findings (subjects, released / denied / masked fields) are the audit
record's own → shape errors → answer in the negotiated media type. A crossed anti-harvesting cap
adds an alert entry to the record. Schema-level limits (tokens, depth, aliases, root fields,
cost) refuse a document before validation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from strawberry.types.graphql import OperationType

from xinlian.hub.audit.record import AccessRecord
from xinlian.hub.gateway.mutations import one_change, record_intent
from xinlian.hub.gateway.profile import Exchange
from xinlian.hub.gateway.refusal import Refusal
from xinlian.hub.guard import PersistedQueryRefused, resolve_document
from xinlian.hub.guard.harvest import alert_entry
from xinlian.hub.principal import Principal

from .graphql_http import (
    ResponseMedia,
    execute_operation,
    format_error,
    parse_request,
    resolve_operation,
    result_body,
)

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

log = logging.getLogger("xinlian.graphql")
UPSTREAM_CODES = frozenset({"UPSTREAM_UNAVAILABLE", "UPSTREAM_INVALID"})


class DataEndpoint:
    """Serves the credit data schema: the full schema to token holders, the public contract to anyone."""

    def __init__(self, public: bool) -> None:
        self.public = public

    async def __call__(self, exchange: Exchange) -> Response:
        runtime, record = exchange.runtime, exchange.record
        media = ResponseMedia.of(exchange.request)
        principal: Principal = exchange.principal or Principal.public(runtime.policy.public_scope)
        if exchange.principal is None:
            record.authenticated(principal)  # the public: audited as client kind "public"
        gql = parse_request(exchange.request, exchange.body)
        record.operation_name = gql.operation_name
        try:
            query = resolve_document(gql.query, gql.persisted_hash, runtime.safelist if self.public else None)
        except PersistedQueryRefused as exc:
            raise Refusal(400, exc.code, exc.message) from None
        options: dict[str, Any] = {}
        if query is not None and "mutation" in query:  # credit governance and case changes; the public's complaints
            options = await self._mutation(exchange, query, gql.operation_name)
        ctx = runtime.request_context(principal, public_endpoint=self.public, access=record)
        schema = runtime.public_schema if self.public else runtime.schema
        timeout = runtime.settings.request_timeout
        result = await execute_operation(exchange.request, timeout, schema, query, gql, ctx, **options)
        errors = [format_error(e) for e in result.errors or []] + ctx.denial_errors()
        status, body, outcome = result_body(result.data, errors, media)
        record.outcome = outcome
        record.errors.update(e["extensions"]["code"] for e in errors)
        failed = sorted({
            d for e in errors if e["extensions"]["code"] in UPSTREAM_CODES for d in e["extensions"].get("departments") or ()
        })
        # which departments this request called, and which failed it: their availability over a
        # period (hub/cases/assessment.py)
        asked = ctx.departments_asked()
        if asked:
            record.detail["asked"] = asked
        if failed:
            record.detail["unavailable"] = failed
        record.policy_version = ctx.policy.version
        if ctx.findings.rules_applied:  # the policy's row rules and annotations that ran ("family:rule")
            record.detail["rules_applied"] = sorted(ctx.findings.rules_applied)
        for alert in ctx.findings.alerts:
            self._alert(runtime, record, alert)
        return media.response(body, status)

    @staticmethod
    async def _mutation(exchange: Exchange, query: str, operation_name: str | None) -> dict[str, Any]:
        """A mutation runs only by POST, selects one root field, and has its intent audited first
        (hub/gateway/mutations.py); queries run as they are. Returns the execution's options."""
        operation = resolve_operation(query, operation_name)
        if exchange.request.method == "GET":  # a mutation sent by GET is refused by execution: 405
            return {"allowed_operation_types": {OperationType.QUERY}, "refused_operation": (405, "METHOD_NOT_ALLOWED")}
        if operation is not None and operation.type == "mutation":
            one_change(operation.root_fields, operation.root_fragments)
            await record_intent(exchange.runtime, exchange.record, operation.name or operation_name, list(operation.root_fields))
        return {}

    @staticmethod
    def _alert(runtime: "HubRuntime", record: AccessRecord, alert: dict[str, Any]) -> None:
        """An alert entry: this request made its client cross the anti-harvesting cap (once per window)."""
        cap = runtime.harvest.cap
        client = record.principal.client_id if record.principal else None
        log.warning("client %s crossed the authorized-subject cap (%s)", client, cap)
        principal = record.principal
        record.extra.append(
            alert_entry(
                client or "", principal.kind if principal else None, cap.limit if cap else 0,
                cap.window if cap else "", record.policy_version, record.request_id,
                purpose=record.purpose, remote_addr=record.remote_addr, endpoint=record.endpoint,
            )
        )
