"""`Refusal`: a request the gateway or a handler will not serve, and how each style answers it.

A refusal carries its HTTP status, an error code (`extensions.code` for GraphQL entry points,
the OAuth2 `error` for the OAuth endpoints), a message, and any headers (`Retry-After`,
`WWW-Authenticate`). The entry point's `ErrorStyle` turns it into a response body; the
gateway records the code in the request's audit entry.
"""

from __future__ import annotations

import enum
from typing import Any

from starlette.responses import JSONResponse, Response


class Refusal(Exception):
    """A request refused: HTTP status, code, message, headers, extra `extensions` (GraphQL)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
        *,
        oauth_error: str | None = None,
        audit_detail: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extensions = extensions or {}
        self.oauth_error = oauth_error  # the RFC 6749 §5.2 error, when it differs from the code
        self.audit_detail = audit_detail or {}  # said in the audit entry, never to the caller
        self.body = body  # a body of its own (RFC 6750 bearer errors), whatever the style


class ErrorStyle(enum.Enum):
    """How an entry point's refusals look: a GraphQL error document, an OAuth2 error, or plain JSON."""

    GRAPHQL = "graphql"
    OAUTH = "oauth"
    JSON = "json"


def graphql_error_body(code: str, message: str, extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]}


OAUTH_ERRORS = {
    401: "invalid_client",
    413: "invalid_request",
    429: "slow_down",
    503: "temporarily_unavailable",
    500: "server_error",
}


def refusal_response(style: ErrorStyle, refusal: Refusal, headers: dict[str, str]) -> Response:
    """The response to `refusal` in `style`, with the entry point's headers and the refusal's own."""
    merged = {**headers, **refusal.headers}
    if refusal.body is not None:
        return JSONResponse(refusal.body, status_code=refusal.status, headers=merged)
    if style is ErrorStyle.OAUTH:
        error = refusal.oauth_error or OAUTH_ERRORS.get(refusal.status, "invalid_request")
        body: dict[str, Any] = {"error": error, "error_description": refusal.message}
    elif style is ErrorStyle.GRAPHQL:
        body = graphql_error_body(refusal.code, refusal.message, refusal.extensions)
    else:
        body = {"error": refusal.code, "message": refusal.message}
    return JSONResponse(body, status_code=refusal.status, headers=merged)
