"""The two GraphQL endpoints: `/graphql` (bearer token) and `/public/graphql` (anonymous).

Request stages: method → rate limit per IP → authenticate → rate limit per client → read a
bounded body → parse the HTTP request → persisted-query safelist (public) → execute over the
endpoint's schema with a fresh `RequestContext` (the schema's extensions refuse over-limit
documents before validation: tokens, depth, aliases, root fields, cost) → format errors (masking
anything unexpected) → write the audit entry → respond. Every refusal is a GraphQL-shaped error
with an `extensions.code` (docs/hardening.md) and is audited as "rejected". If the audit entry
cannot be stored the response is withheld (503).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.auth.bearer import InvalidToken, RevocationUnavailable, principal_from_request_async, unauthorized_response
from xinlian.hub.executor import RequestContext
from xinlian.hub.guard import (
    BATCHING_NOT_SUPPORTED,
    QUERY_TOO_DEEP,
    RATE_LIMITED,
    PersistedQueryRefused,
    code_for_parse_error,
    resolve_document,
)
from xinlian.hub.guard.harvest import alert_entry
from xinlian.hub.guard.rate_limits import CLIENT, GRAPHQL_IP, PUBLIC_IP
from xinlian.hub.principal import Principal
from xinlian.hub.runtime import HubRuntime

log = logging.getLogger("xinlian.graphql")
MAX_BODY_BYTES = 64 * 1024  # the default of Settings.max_body_bytes


class RequestRejected(Exception):
    """A request refused before execution: HTTP status, `extensions.code`, message (and headers)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extensions = extensions or {}


class Unauthenticated(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class GraphQLRequest:
    query: str | None  # None only when the request names a persisted query by hash
    variables: dict[str, Any] | None
    operation_name: str | None
    persisted_hash: str | None = None  # extensions.persistedQuery.sha256Hash


async def _read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestRejected(413, "PAYLOAD_TOO_LARGE", f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise RequestRejected(413, "PAYLOAD_TOO_LARGE", f"request body over {limit} bytes")
    return bytes(body)


def _json_parameter(name: str, text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer too long to convert
        raise RequestRejected(400, "BAD_REQUEST", f"{name} is not valid JSON") from None


def _persisted_hash(extensions: Any) -> str | None:
    """`extensions.persistedQuery.sha256Hash` (Apollo's persisted queries), if the request has one."""
    if extensions is None:
        return None
    if not isinstance(extensions, dict):
        raise RequestRejected(400, "BAD_REQUEST", "extensions must be an object")
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(digest, str) or not digest:
        raise RequestRejected(400, "BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be a string")
    return digest.lower()


def _parse(request: Request, body: bytes) -> GraphQLRequest:
    if request.method == "GET":
        params = request.query_params
        raw: Any = {"query": params.get("query"), "operationName": params.get("operationName")}
        for name in ("variables", "extensions"):
            if params.get(name):
                raw[name] = _json_parameter(name, params[name])
    else:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/graphql":
            try:
                raw = {"query": body.decode("utf-8")}
            except UnicodeDecodeError:
                raise RequestRejected(400, "BAD_REQUEST", "request body is not valid UTF-8") from None
        elif content_type in ("application/json", ""):
            raw = _json_parameter("request body", body)
        else:
            raise RequestRejected(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
    if isinstance(raw, list):
        raise RequestRejected(
            400, BATCHING_NOT_SUPPORTED, "batched requests (a JSON array) are not supported; send one operation"
        )
    if not isinstance(raw, dict):
        raise RequestRejected(400, "BAD_REQUEST", "request body must be a JSON object")
    query, variables, operation = raw.get("query"), raw.get("variables"), raw.get("operationName")
    persisted = _persisted_hash(raw.get("extensions"))
    if not (query is None and persisted) and (not isinstance(query, str) or not query.strip()):
        raise RequestRejected(400, "BAD_REQUEST", "query must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise RequestRejected(400, "BAD_REQUEST", "variables must be an object")
    if operation is not None and not isinstance(operation, str):
        raise RequestRejected(400, "BAD_REQUEST", "operationName must be a string")
    return GraphQLRequest(query, variables, operation, persisted)


def _format_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    limit_code = code_for_parse_error(error)
    if limit_code == QUERY_TOO_DEEP and isinstance(original, RecursionError):
        return {"message": "The document is nested too deeply", "extensions": {"code": limit_code}}
    if limit_code is not None:
        formatted = dict(error.formatted)
        formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": limit_code}
        return formatted
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


def _error_body(code: str, message: str, extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]}


PURPOSE_HEADER = "xinlian-purpose"
MAX_PURPOSE_LENGTH = 64


async def declared_principal(request: Request, runtime: HubRuntime, principal: Principal) -> Principal:
    """The token's principal with its request's purpose and the client's registered facts.

    The purpose is the `Xinlian-Purpose` header, else the token's `purpose` claim. A token bound
    to a purpose cannot be used for another (400 PURPOSE_CONFLICT). The client's allowed purposes
    and the subject it speaks for come from the client registry (at most about a second old).
    """
    header = request.headers.get(PURPOSE_HEADER)
    purpose = principal.purpose
    if header is not None and header.strip():
        declared = header.strip()
        if len(declared) > MAX_PURPOSE_LENGTH:
            raise RequestRejected(400, "BAD_REQUEST", f"Xinlian-Purpose is at most {MAX_PURPOSE_LENGTH} characters")
        if purpose is not None and declared != purpose:
            raise RequestRejected(
                400, "PURPOSE_CONFLICT", f"this token is bound to purpose {purpose!r}; Xinlian-Purpose names another"
            )
        purpose = declared
    facts = await runtime.clients.facts(principal.client_id) if principal.client_id else None
    return dataclasses.replace(
        principal,
        purpose=purpose,
        allowed_purposes=facts.allowed_purposes if facts else frozenset(),
        subject_id=facts.subject_id if facts else None,
    )


async def audited_response(
    write: Awaitable[Any],
    request_id: str,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    early: Response | None = None,
) -> Response:
    """The response, once `write` has stored the request's audit entries; 503 if it could not."""
    try:
        await write
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


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy, run uvicorn with --proxy-headers and --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


async def admit(runtime: HubRuntime, scope: str, key: str) -> None:
    """Count this request against `scope`'s rate for `key`; over the limit → 429 with Retry-After."""
    admission = await runtime.rate_limiter.admit(scope, key)
    if not admission.allowed:
        wait = admission.retry_after
        raise RequestRejected(
            429,
            RATE_LIMITED,
            f"Too many requests ({admission.limit}); retry in {wait} s",
            headers={"Retry-After": str(wait)},
            extensions={"retryAfter": wait},
        )


async def authenticate(request: Request, runtime: HubRuntime) -> Principal:
    """The caller of a bearer endpoint, from its token: the one place a token is checked.

    Signature, claims and revocation, then the request's purpose and the client's registered
    facts (`declared_principal`). `Unauthenticated` for a bad token; 503 if revocations cannot
    be read.
    """
    try:
        principal = await principal_from_request_async(request, runtime.validator)
    except InvalidToken as exc:
        raise Unauthenticated(str(exc)) from None
    except RevocationUnavailable:
        raise RequestRejected(503, "REVOCATION_UNAVAILABLE", "token revocations cannot be checked right now") from None
    return await declared_principal(request, runtime, principal)


async def execute_operation(
    request: Request,
    runtime: HubRuntime,
    schema: Any,
    query: str,
    gql: GraphQLRequest,
    context: Any,
    *,
    allowed_operation_types: Any = None,
    refused_operation: tuple[int, str] = (400, "OPERATION_RESOLUTION_FAILURE"),
) -> Any:
    """Execute one operation within the request timeout; refusals become `RequestRejected`.

    `refused_operation` is the status and code for an operation type the endpoint does not run
    (e.g. a mutation sent with GET to the admin API: 405 METHOD_NOT_ALLOWED).
    """
    timeout = runtime.settings.request_timeout
    options: dict[str, Any] = {}
    if allowed_operation_types is not None:
        options["allowed_operation_types"] = allowed_operation_types
    try:
        return await asyncio.wait_for(
            schema.execute(
                query, variable_values=gql.variables, context_value=context, operation_name=gql.operation_name, **options
            ),
            timeout=timeout,
        )
    except (asyncio.TimeoutError, TimeoutError):
        raise RequestRejected(504, "REQUEST_TIMEOUT", f"the request did not complete within {timeout:g} s") from None
    except CannotGetOperationTypeError as exc:
        raise RequestRejected(400, "OPERATION_RESOLUTION_FAILURE", exc.as_http_error_reason()) from None
    except InvalidOperationTypeError as exc:
        status, code = refused_operation
        raise RequestRejected(status, code, exc.as_http_error_reason(request.method)) from None
    except MissingQueryError:
        raise RequestRejected(400, "BAD_REQUEST", "query must be a non-empty string") from None


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
            await admit(runtime, PUBLIC_IP if self.public else GRAPHQL_IP, client_ip(request))
            if principal is None:
                principal = await authenticate(request, runtime)
                await admit(runtime, CLIENT, principal.client_id or "")
            gql = _parse(request, await _read_body(request, runtime.settings.max_body_bytes))
            operation = gql.operation_name
            try:
                query = resolve_document(gql.query, gql.persisted_hash, runtime.safelist if self.public else None)
            except PersistedQueryRefused as exc:
                raise RequestRejected(400, exc.code, exc.message) from None
            ctx = runtime.request_context(principal, public_endpoint=self.public)
            schema = runtime.public_schema if self.public else runtime.schema
            result = await execute_operation(request, runtime, schema, query, gql, ctx)
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
            body = _error_body(exc.code, exc.message, exc.extensions)
            headers.update(exc.headers)
        except Exception:  # never a stack trace to the caller
            log.exception("request %s failed", request_id)
            status, outcome, error_codes = 500, "error", ["INTERNAL_SERVER_ERROR"]
            body = _error_body("INTERNAL_SERVER_ERROR", "Internal server error")
        async def write_audit() -> None:
            await self._audit(runtime, request, request_id, principal, ctx, outcome, error_codes, operation)
            if ctx is not None and ctx.alerts:
                await self._alert(runtime, request, request_id, ctx)

        return await audited_response(write_audit(), request_id, status, body, headers, early)

    async def _alert(self, runtime: HubRuntime, request: Request, request_id: str, ctx: RequestContext) -> None:
        """An alert entry: this request made its client cross the anti-harvesting cap (once per window)."""
        cap = runtime.harvest.cap if runtime.harvest is not None else None
        principal = ctx.principal
        log.warning("client %s crossed the authorized-subject cap (%s)", principal.client_id, cap)
        await runtime.audit.record(
            alert_entry(
                principal.client_id or "",
                principal.kind,
                cap.limit if cap else 0,
                cap.window if cap else "",
                ctx.policy.version,
                request_id,
                purpose=principal.purpose,
                remote_addr=client_ip(request),
            )
        )

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
            policy_version=(ctx.policy if ctx else runtime.policy).version,
            masked=sorted(ctx.masked) if ctx else [],
            operation_name=operation,
            errors=sorted(set(error_codes)),
            remote_addr=request.client.host if request.client else None,
        )
        return await runtime.audit.record(entry)
