"""`/admin/graphql`: the admin API, for tokens carrying the `admin` scope only.

Request stages, as on `/graphql` (`hub/endpoints/graphql.py`, whose request parsing and error
formatting it shares): method (GET for queries, POST) → rate limit per IP → bearer token
(signature, claims, revocation) → the `admin` scope (else 403 FORBIDDEN) → rate limit per
client → bounded body → execute over the admin schema → audit → respond.

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

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType as NodeOperationType, parse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.types.graphql import OperationType

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.auth.bearer import unauthorized_response
from xinlian.hub.endpoints.graphql import (
    RequestRejected,
    Unauthenticated,
    _error_body,
    _format_error,
    _parse,
    _read_body,
    admit,
    audited_response,
    authenticate,
    client_ip,
    execute_operation,
)
from xinlian.hub.guard.query_limits import AUTHENTICATED_LIMITS
from xinlian.hub.guard.rate_limits import CLIENT, GRAPHQL_IP
from xinlian.hub.principal import Principal

from .context import AdminContext
from .schema import ADMIN_SCHEMA, bad_user_input

log = logging.getLogger("xinlian.admin")
PATH = "/admin/graphql"
ADMIN_SCOPE = "admin"
NO_STORE = {"Cache-Control": "no-store"}


def _formatted(error: Any) -> dict[str, Any]:
    return bad_user_input(error) or _format_error(error)


async def _execute(request: Request, runtime: Any, ctx: AdminContext) -> tuple[int, dict[str, Any], str | None]:
    """Run the request's operation; (status, body, operation name)."""
    gql = _parse(request, await _read_body(request, runtime.settings.max_body_bytes))
    if gql.query is None:
        raise RequestRejected(400, "PERSISTED_QUERY_NOT_SUPPORTED", "the admin API takes the query text")
    allowed = {OperationType.QUERY} if request.method == "GET" else {OperationType.QUERY, OperationType.MUTATION}
    if request.method == "POST":
        mutation = _mutation_root_fields(gql.query, gql.operation_name)
        if mutation is not None:
            await _record_intent(runtime, request, ctx, *mutation)
    result = await execute_operation(
        request, runtime, ADMIN_SCHEMA, gql.query, gql, ctx,
        allowed_operation_types=allowed, refused_operation=(405, "METHOD_NOT_ALLOWED"),
    )
    errors = [_formatted(e) for e in result.errors or []]
    if result.data is None and errors and all("path" not in e for e in errors):
        return 400, {"errors": errors}, gql.operation_name
    body: dict[str, Any] = {"data": result.data}
    if errors:
        body["errors"] = errors
    return 200, body, gql.operation_name


def _mutation_root_fields(query: str, operation_name: str | None) -> tuple[str | None, list[str]] | None:
    """(operation name, root field names) of the request's operation if it is a mutation, else None.

    A mutation selects exactly one root field (one change per request): with two, an error in
    the second would leave the first applied. Fragments at the root of a mutation are refused
    too. A document that does not parse, or names no single operation, is left to execution,
    which reports it as for any query.
    """
    try:
        document = parse(query, max_tokens=AUTHENTICATED_LIMITS.max_tokens)
    except (GraphQLError, RecursionError):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != NodeOperationType.MUTATION:
        return None
    selections = operations[0].selection_set.selections
    if any(not isinstance(s, FieldNode) for s in selections):
        raise RequestRejected(
            400, "BAD_USER_INPUT", "a mutation must select its one root field directly, not through a fragment"
        )
    fields = [s.name.value for s in selections if isinstance(s, FieldNode) and not s.name.value.startswith("__")]
    if len(fields) > 1:
        raise RequestRejected(
            400, "BAD_USER_INPUT",
            f"one change per request: this mutation selects {len(fields)} root fields ({', '.join(fields)}); "
            "send each as its own request. Nothing was changed.",
        )
    name = operations[0].name
    return (name.value if name is not None else operation_name), fields


async def _record_intent(
    runtime: Any, request: Request, ctx: AdminContext, operation: str | None, fields: list[str]
) -> None:
    """Write the mutation's intent entry before it runs; `AuditUnavailable` if it is lost."""
    principal = ctx.principal
    entry = AuditEntry(
        at=dt.datetime.now(dt.timezone.utc),
        request_id=ctx.request_id,
        endpoint=PATH,
        client_id=principal.client_id,
        client_kind=principal.kind,
        outcome="ok",
        policy_version=runtime.policy.version,
        subjects=[],
        operation_name=operation,
        errors=[],
        remote_addr=request.client.host if request.client else None,
        detail={"intent": True, "operation": operation, "fields": fields},
    )
    try:
        await runtime.audit.record(entry)
    except AuditUnavailable:
        raise
    except Exception as exc:
        raise AuditUnavailable(f"audit entry not stored: {type(exc).__name__}") from exc


async def admin_graphql(request: Request) -> Response:
    """The Starlette handler of `/admin/graphql`."""
    runtime = request.app.state.runtime
    request_id = (request.headers.get("x-request-id") or uuid.uuid4().hex)[:64]
    headers = {"x-request-id": request_id, **NO_STORE}
    principal: Principal | None = None
    ctx: AdminContext | None = None
    operation: str | None = None
    status, body = 200, {}
    early: Response | None = None
    try:
        if request.method not in ("GET", "POST"):
            raise RequestRejected(405, "METHOD_NOT_ALLOWED", "use POST (or GET for queries)")
        await admit(runtime, GRAPHQL_IP, client_ip(request))
        principal = await authenticate(request, runtime)
        if ADMIN_SCOPE not in principal.scopes:
            raise RequestRejected(403, "FORBIDDEN", "the admin API needs a token with scope 'admin'")
        await admit(runtime, CLIENT, principal.client_id or "")
        ctx = AdminContext(runtime, principal, request_id, request.client.host if request.client else None)
        status, body, operation = await _execute(request, runtime, ctx)
    except AuditUnavailable:  # the intent entry of a mutation was lost: nothing was executed
        log.error("audit trail unavailable; admin mutation %s not executed", request_id)
        return JSONResponse(
            _error_body("AUDIT_UNAVAILABLE", "The audit trail is unavailable; the change was not made."),
            status_code=503,
            headers=headers,
        )
    except Unauthenticated as exc:
        status, body = 401, _error_body("UNAUTHENTICATED", exc.reason)
        early = unauthorized_response(exc.reason)
    except RequestRejected as exc:
        status, body = exc.status, _error_body(exc.code, exc.message, exc.extensions)
        headers.update(exc.headers)
    except Exception:  # never a stack trace to the caller
        log.exception("admin request %s failed", request_id)
        status, body = 500, _error_body("INTERNAL_SERVER_ERROR", "Internal server error")
    write = _audit(runtime, request, request_id, principal, ctx, status, body, operation)
    return await audited_response(write, request_id, status, body, headers, early)


def _outcome(status: int, body: dict[str, Any]) -> tuple[str, list[str]]:
    codes = sorted({e.get("extensions", {}).get("code", "") for e in body.get("errors", [])} - {""})
    if status >= 500:
        return "error", codes
    if status != 200:
        return "rejected", codes
    if codes:
        return ("partial" if body.get("data") is not None else "error"), codes
    return "ok", codes


async def _audit(
    runtime: Any,
    request: Request,
    request_id: str,
    principal: Principal | None,
    ctx: AdminContext | None,
    status: int,
    body: dict[str, Any],
    operation: str | None,
) -> None:
    """Write the request's entry and its dry runs' entries; `AuditUnavailable` if any is lost."""
    outcome, codes = _outcome(status, body)
    actions = list(ctx.actions) if ctx else []
    subjects = set(ctx.subjects) if ctx else set()
    subjects.update(a["subject"] for a in actions if isinstance(a.get("subject"), str))
    entry = AuditEntry(
        at=dt.datetime.now(dt.timezone.utc),
        request_id=request_id,
        endpoint=PATH,
        client_id=principal.client_id if principal else None,
        client_kind=principal.kind if principal else None,
        outcome=outcome,
        policy_version=runtime.policy.version,
        subjects=sorted(subjects),
        operation_name=operation,
        errors=codes,
        remote_addr=request.client.host if request.client else None,
        detail={"actions": actions} if actions else None,
    )
    entries = (list(ctx.entries) if ctx else []) + [entry]
    results = await asyncio.gather(*(runtime.audit.record(e) for e in entries), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            if isinstance(result, AuditUnavailable):
                raise result
            raise AuditUnavailable(f"audit entry not stored: {type(result).__name__}") from result
