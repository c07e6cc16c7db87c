"""`/admin/graphql`: the admin API, for tokens carrying the `admin` scope only.

The gateway runs the stages (`hub/gateway/pipeline.py`; this entry point's profile is in
`hub/app.py`): rate limit per IP → method (GET for queries, POST) → bearer token (signature,
claims, revocation) → the `admin` scope (else 403 `insufficient_scope`) → rate limit per client
→ bounded body → this handler inside the audit scope. The handler resolves the operation
exactly as execution will (several operations without `operationName`: 400, nothing run),
then executes it over the admin schema.

Every request is audited as one entry (`endpoint` "/admin/graphql", `detail.actions`: what it
read and changed — action, targets, reason), and every dry run as one more entry of its own. If
an entry cannot be stored, the response is withheld (503 AUDIT_UNAVAILABLE). A mutation is
audited twice: an intent entry (`detail.intent`, its root field) is written before it runs, and
if that entry cannot be stored the mutation is not executed (503 AUDIT_UNAVAILABLE). A mutation
selects exactly one root field (else 400 BAD_USER_INPUT, nothing changed), so a failing second
change can never leave a first one applied. Answers carry
`Cache-Control: no-store`: some hold a client secret shown once.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response
from strawberry.types.graphql import OperationType

from xinlian.hub.audit.record import AccessRecord
from xinlian.hub.endpoints.graphql_http import (
    ResponseMedia,
    execute_operation,
    format_error,
    parse_request,
    resolve_operation,
    result_body,
)
from xinlian.hub.gateway.mutations import one_change, record_intent
from xinlian.hub.gateway.profile import Exchange
from xinlian.hub.gateway.refusal import Refusal

from .context import AdminContext
from .schema import ADMIN_SCHEMA, bad_user_input

log = logging.getLogger("xinlian.admin")
PATH = "/admin/graphql"
ADMIN_SCOPE = "admin"


def _formatted(error: Any) -> dict[str, Any]:
    return bad_user_input(error) or format_error(error)


async def admin_graphql(exchange: Exchange) -> Response:
    """The handler of `/admin/graphql`: run the request's operation; its actions go into the audit record."""
    runtime, record, request = exchange.runtime, exchange.record, exchange.request
    assert exchange.principal is not None  # the profile requires a bearer token
    media = ResponseMedia.of(request)
    ctx = AdminContext(runtime, exchange.principal, exchange.request_id, exchange.client_address)
    try:
        gql = parse_request(request, exchange.body)
        record.operation_name = gql.operation_name
        if gql.query is None:
            raise Refusal(400, "PERSISTED_QUERY_NOT_SUPPORTED", "the admin API takes the query text")
        operation = resolve_operation(gql.query, gql.operation_name)
        allowed = {OperationType.QUERY} if request.method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
        if request.method == "POST" and operation is not None and operation.type == "mutation":
            one_change(operation.root_fields, operation.root_fragments)
            await record_intent(runtime, record, operation.name or gql.operation_name, list(operation.root_fields))
        result = await execute_operation(
            request, runtime.settings.request_timeout, ADMIN_SCHEMA, gql.query, gql, ctx,
            allowed_operation_types=allowed, refused_operation=(405, "METHOD_NOT_ALLOWED"),
        )
        errors = [_formatted(e) for e in result.errors or []]
        status, body, outcome = result_body(result.data, errors, media)
        record.outcome = outcome
        record.errors.update(e.get("extensions", {}).get("code", "") for e in errors)
        record.errors.discard("")
        return media.response(body, status)
    finally:
        _collect(ctx, record)


def _collect(ctx: AdminContext, record: AccessRecord) -> None:
    """What the request did, into its audit record: actions, subjects, dry-run entries."""
    actions = list(ctx.actions)
    record.subjects.update(ctx.subjects)
    record.subjects.update(a["subject"] for a in actions if isinstance(a.get("subject"), str))
    if actions:
        record.detail["actions"] = actions
    record.extra.extend(ctx.entries)
