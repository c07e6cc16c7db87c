"""The two GraphQL endpoints: `/graphql` (bearer token) and `/public/graphql` (anonymous).

Request stages: read a bounded body → authenticate → execute over the endpoint's schema with a
fresh `RequestContext` → format errors (masking anything unexpected) → write the audit entry →
respond. If the audit entry cannot be stored the response is withheld (503).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.auth.bearer import InvalidToken, principal_from_request, unauthorized_response
from xinlian.hub.executor import RequestContext
from xinlian.hub.principal import Principal
from xinlian.hub.runtime import HubRuntime

log = logging.getLogger("xinlian.graphql")
MAX_BODY_BYTES = 64 * 1024


class RequestRejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Unauthenticated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestRejected(413, "PAYLOAD_TOO_LARGE", f"request body over {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise RequestRejected(413, "PAYLOAD_TOO_LARGE", f"request body over {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _parse(request: Request, body: bytes) -> GraphQLRequest:
    if request.method == "GET":
        params = request.query_params
        raw: dict[str, Any] = {"query": params.get("query"), "operationName": params.get("operationName")}
        if params.get("variables"):
            try:
                raw["variables"] = json.loads(params["variables"])
            except json.JSONDecodeError:
                raise RequestRejected(400, "BAD_REQUEST", "variables is not valid JSON") from None
    else:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/graphql":
            raw = {"query": body.decode("utf-8", errors="replace")}
        elif content_type in ("application/json", ""):
            try:
                raw = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise RequestRejected(400, "BAD_REQUEST", "request body is not valid JSON") from None
        else:
            raise RequestRejected(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
    if not isinstance(raw, dict):
        raise RequestRejected(400, "BAD_REQUEST", "request body must be a JSON object")
    query, variables, operation = raw.get("query"), raw.get("variables"), raw.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise RequestRejected(400, "BAD_REQUEST", "query must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise RequestRejected(400, "BAD_REQUEST", "variables must be an object")
    if operation is not None and not isinstance(operation, str):
        raise RequestRejected(400, "BAD_REQUEST", "operationName must be a string")
    return GraphQLRequest(query, variables, operation)


def _format_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        out: dict[str, Any] = {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        if error.path:
            out["path"] = list(error.path)
        return out
    formatted = dict(error.formatted)
    extensions = dict(formatted.get("extensions") or {})
    if "code" not in extensions:
        if error.path is None:
            extensions["code"] = "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
        else:
            extensions["code"] = "INTERNAL_SERVER_ERROR"
    formatted["extensions"] = extensions
    return formatted


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class GraphQLEndpoint:
    """A Starlette endpoint serving one schema to one kind of caller."""

    def __init__(self, public: bool) -> None:
        self.public = public
        self.path = "/public/graphql" if public else "/graphql"

    async def handle(self, request: Request) -> Response:
        runtime: HubRuntime = request.app.state.runtime
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request_id = request_id[:64]
        principal: Principal | None = Principal.public(runtime.policy.public_scope) if self.public else None
        ctx: RequestContext | None = None
        operation: str | None = None
        status, body, headers = 200, {}, {"x-request-id": request_id}
        outcome, error_codes = "ok", []
        early: Response | None = None  # a response decided before execution (401)
        try:
            if request.method not in ("GET", "POST"):
                raise RequestRejected(405, "METHOD_NOT_ALLOWED", "use POST (or GET for queries)")
            if principal is None:
                try:
                    principal = principal_from_request(request, runtime.validator)
                except InvalidToken as exc:
                    raise Unauthenticated(str(exc)) from None
            gql = _parse(request, await _read_body(request))
            operation = gql.operation_name
            ctx = RequestContext(
                principal=principal,
                policy=runtime.policy,
                federation=runtime.federation,
                today=runtime.today(),
                public_endpoint=self.public,
                deadline=time.monotonic() + runtime.settings.request_timeout,
                cache=runtime.cache,
                batch_limit=runtime.settings.batch_limit,
                search_limit=runtime.settings.search_limit,
            )
            schema = runtime.public_schema if self.public else runtime.schema
            try:
                result = await asyncio.wait_for(
                    schema.execute(
                        gql.query, variable_values=gql.variables, context_value=ctx, operation_name=gql.operation_name
                    ),
                    timeout=runtime.settings.request_timeout,
                )
            except (asyncio.TimeoutError, TimeoutError):
                raise RequestRejected(
                    504, "REQUEST_TIMEOUT", f"the request did not complete within {runtime.settings.request_timeout:g} s"
                ) from None
            errors = [_format_error(e) for e in result.errors or []] + ctx.denial_errors()
            error_codes = sorted({e["extensions"]["code"] for e in errors})
            if result.data is None and errors and all("path" not in e for e in errors):
                status, outcome = 400, "rejected"
                body = {"errors": errors}
            else:
                body = {"data": result.data}
                if errors:
                    body["errors"] = errors
                    outcome = "partial" if result.data is not None else "error"
        except Unauthenticated as exc:
            outcome, error_codes = "rejected", ["UNAUTHENTICATED"]
            early = unauthorized_response(exc.reason)
        except RequestRejected as exc:
            status, outcome, error_codes = exc.status, "rejected", [exc.code]
            body = _error_body(exc.code, exc.message)
        except Exception:  # never a stack trace to the caller
            log.exception("request %s failed", request_id)
            status, outcome, error_codes = 500, "error", ["INTERNAL_SERVER_ERROR"]
            body = _error_body("INTERNAL_SERVER_ERROR", "Internal server error")
        try:
            await self._audit(runtime, request, request_id, principal, ctx, outcome, error_codes, operation)
        except AuditUnavailable:
            log.error("audit trail unavailable; response to %s withheld", request_id)
            return JSONResponse(
                _error_body("AUDIT_UNAVAILABLE", "The audit trail is unavailable; the response was withheld."),
                status_code=503,
                headers=headers,
            )
        if early is not None:
            early.headers["x-request-id"] = request_id
            return early
        return JSONResponse(body, status_code=status, headers=headers)

    async def _audit(
        self,
        runtime: HubRuntime,
        request: Request,
        request_id: str,
        principal: Principal | None,
        ctx: RequestContext | None,
        outcome: str,
        error_codes: list[str],
        operation: str | None,
    ) -> int:
        entry = AuditEntry(
            at=dt.datetime.now(dt.timezone.utc),
            request_id=request_id,
            endpoint=self.path,
            client_id=principal.client_id if principal else None,
            client_kind=principal.kind if principal else None,
            purpose=principal.purpose if principal else None,
            subjects=sorted(ctx.subjects) if ctx else [],
            released=sorted(ctx.released) if ctx else [],
            denied=sorted(ctx.denied) if ctx else [],
            outcome=outcome,
            policy_version=runtime.policy.version,
            operation_name=operation,
            errors=sorted(set(error_codes)),
            remote_addr=request.client.host if request.client else None,
        )
        return await runtime.audit.record(entry)
