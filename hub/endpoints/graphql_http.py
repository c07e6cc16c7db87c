"""GraphQL over HTTP, shared by every GraphQL entry point (data endpoints and the admin API).

- `parse_request`: a GET query string or a POST body (application/json or application/graphql)
  into a `GraphQLRequest`; anything else is a `Refusal` (400/415), batches (a JSON array) too.
- `resolve_operation`: the operation execution will run (several without `operationName`: 400).
- `execute_operation`: one operation within the request timeout (504 after it).
- `format_error`: a GraphQL error as the caller sees it (unexpected ones masked).
- `ResponseMedia`: the response's media type and status per the GraphQL-over-HTTP spec: a client
  that accepts `application/graphql-response+json` gets it, with 4xx for documents that fail to
  parse or validate; a client that accepts only `application/json` (or sends no `Accept`) gets
  200 for those, as the spec recommends; `*/*` keeps this hub's earlier answer (application/json,
  400).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from xinlian.hub.gateway.refusal import Refusal
from xinlian.hub.guard import BATCHING_NOT_SUPPORTED, QUERY_TOO_DEEP, code_for_parse_error
from xinlian.hub.guard.operations import OperationOutline, OperationUnresolved, select_operation

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
MAX_OPERATION_NAME = 128  # an operationName is written to the audit entry: a name, not a payload
OPERATION_NAME = re.compile(rf"[_A-Za-z][_0-9A-Za-z]{{0,{MAX_OPERATION_NAME - 1}}}")
APPLICATION_JSON = "application/json"


@dataclass(frozen=True)
class GraphQLRequest:
    query: str | None  # None only when the request names a persisted query by hash
    variables: dict[str, Any] | None
    operation_name: str | None
    persisted_hash: str | None = None  # extensions.persistedQuery.sha256Hash


def _json_parameter(name: str, text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer too long to convert
        raise Refusal(400, "BAD_REQUEST", f"{name} is not valid JSON") from None


def _persisted_hash(extensions: Any) -> str | None:
    """`extensions.persistedQuery.sha256Hash` (Apollo's persisted queries), if the request has one."""
    if extensions is None:
        return None
    if not isinstance(extensions, dict):
        raise Refusal(400, "BAD_REQUEST", "extensions must be an object")
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(digest, str) or not digest:
        raise Refusal(400, "BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be a string")
    return digest.lower()


def parse_request(request: Request, body: bytes) -> GraphQLRequest:
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
                raise Refusal(400, "BAD_REQUEST", "request body is not valid UTF-8") from None
        elif content_type in ("application/json", ""):
            raw = _json_parameter("request body", body)
        else:
            raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
    if isinstance(raw, list):
        raise Refusal(
            400, BATCHING_NOT_SUPPORTED, "batched requests (a JSON array) are not supported; send one operation"
        )
    if not isinstance(raw, dict):
        raise Refusal(400, "BAD_REQUEST", "request body must be a JSON object")
    query, variables, operation = raw.get("query"), raw.get("variables"), raw.get("operationName")
    persisted = _persisted_hash(raw.get("extensions"))
    if not (query is None and persisted) and (not isinstance(query, str) or not query.strip()):
        raise Refusal(400, "BAD_REQUEST", "query must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise Refusal(400, "BAD_REQUEST", "variables must be an object")
    if operation is not None and not isinstance(operation, str):
        raise Refusal(400, "BAD_REQUEST", "operationName must be a string")
    if operation is not None and not OPERATION_NAME.fullmatch(operation):
        # it could name no operation anyway; refused here, it never reaches the audit entry
        raise Refusal(
            400, "BAD_REQUEST", f"operationName must be a GraphQL name of at most {MAX_OPERATION_NAME} characters"
        )
    return GraphQLRequest(query, variables, operation, persisted)


def format_error(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    limit_code = code_for_parse_error(error)
    if limit_code == QUERY_TOO_DEEP and isinstance(original, RecursionError):
        return {"message": "The document is nested too deeply", "extensions": {"code": limit_code}}
    if limit_code is not None:
        formatted: dict[str, Any] = dict(error.formatted)
        formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": limit_code}
        return formatted
    if original is not None and not isinstance(original, GraphQLError):
        out: dict[str, Any] = {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        if error.path:
            out["path"] = list(error.path)
        return out
    formatted = dict(error.formatted)
    extensions: dict[str, Any] = dict(formatted.get("extensions") or {})
    if "code" not in extensions:
        if error.path is None:
            extensions["code"] = "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
        else:
            extensions["code"] = "INTERNAL_SERVER_ERROR"
    formatted["extensions"] = extensions
    return formatted



async def execute_operation(
    request: Request,
    timeout: float,
    schema: Any,
    query: str,
    gql: GraphQLRequest,
    context: Any,
    *,
    allowed_operation_types: Any = None,
    refused_operation: tuple[int, str] = (400, "OPERATION_RESOLUTION_FAILURE"),
) -> Any:
    """Execute one operation within the request timeout; refusals become `Refusal`.

    `refused_operation` is the status and code for an operation type the endpoint does not run
    (e.g. a mutation sent with GET to the admin API: 405 METHOD_NOT_ALLOWED).
    """
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
        raise Refusal(504, "REQUEST_TIMEOUT", f"the request did not complete within {timeout:g} s") from None
    except CannotGetOperationTypeError as exc:
        raise Refusal(400, "OPERATION_RESOLUTION_FAILURE", exc.as_http_error_reason()) from None
    except InvalidOperationTypeError as exc:
        status, code = refused_operation
        raise Refusal(status, code, exc.as_http_error_reason(request.method)) from None
    except MissingQueryError:
        raise Refusal(400, "BAD_REQUEST", "query must be a non-empty string") from None



def resolve_operation(query: str, operation_name: str | None) -> OperationOutline | None:
    """The operation execution will run (None if the document does not parse: execution says so)."""
    try:
        return select_operation(query, operation_name)
    except OperationUnresolved as exc:
        raise Refusal(400, "OPERATION_RESOLUTION_FAILURE", str(exc)) from None


def _accepted(request: Request) -> dict[str, float]:
    """Media types of `Accept` with their q-values (q=0 left out)."""
    accepted: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for parameter in fields[1:]:
            if parameter.lower().startswith("q="):
                try:
                    q = float(parameter[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            accepted[media] = max(q, accepted.get(media, 0.0))
    return accepted


@dataclass(frozen=True)
class ResponseMedia:
    """The media type of a GraphQL response, and the status of a document that fails to parse or validate."""

    media_type: str
    document_error_status: int

    @classmethod
    def of(cls, request: Request) -> "ResponseMedia":
        accepted = _accepted(request)
        graphql_q = accepted.get(GRAPHQL_RESPONSE_JSON, 0.0)
        json_q = accepted.get(APPLICATION_JSON, 0.0)
        if graphql_q and graphql_q >= json_q:
            return cls(GRAPHQL_RESPONSE_JSON, 400)
        if json_q or not accepted:
            return cls(APPLICATION_JSON, 200)  # the spec's SHOULD for application/json clients
        return cls(APPLICATION_JSON, 400)

    def response(self, body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=headers, media_type=self.media_type)


def result_body(
    data: Any, errors: list[dict[str, Any]], media: ResponseMedia
) -> tuple[int, dict[str, Any], str]:
    """(status, body, outcome) of an executed operation.

    No data and only errors without a path: the document failed before execution (parse,
    validation, limits), answered with `media.document_error_status`.
    """
    if data is None and errors and all("path" not in e for e in errors):
        return media.document_error_status, {"errors": errors}, "rejected"
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = errors
        return 200, body, ("partial" if data is not None else "error")
    return 200, body, "ok"
