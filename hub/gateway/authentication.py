"""The authentication stage: a bearer token becomes the request's `Principal` (RFC 6750).

- No `Authorization` header, or one of another scheme (Basic): 401 with
  `WWW-Authenticate: Bearer realm="xinlian"` and no error code (RFC 6750 §3.1: a request without
  bearer credentials is not an invalid one).
- A token that fails (shape, signature, claims, revoked, client disabled): 401
  `error="invalid_token"` with the reason; the audit entry records the reason and, marked as
  claimed, the client the unverified token names.
- A valid token without the entry point's scope: 403 `error="insufficient_scope"`, attributed
  to the (authenticated) client.
- Revocations unreadable: 503 (fail closed).

Then the request's purpose (`declare_purpose`): the `Xinlian-Purpose` header, sent at most
once, read as UTF-8, a purpose code (`a-z 0-9 . _ -`, 1 to 64), and not in conflict with a
purpose the token is bound to. The principal is attributed in the audit record *before* the
purpose is checked, so a refused purpose is never audited as anonymous. The client's
registered facts (allowed purposes, the subject or department it speaks for) come last, at most a
second old.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from starlette.requests import Request

from xinlian.hub.audit.record import AccessRecord
from xinlian.hub.auth.bearer import (
    InvalidToken,
    RevocationUnavailable,
    bearer_challenge,
    bearer_token,
    unverified_claim,
)
from xinlian.hub.governance.purposes import PURPOSE_CODE
from xinlian.hub.principal import Principal

from .refusal import Refusal

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

PURPOSE_HEADER = "xinlian-purpose"


def invalid_token(reason: str, claimed: str | None = None) -> Refusal:
    detail: dict[str, str] = {"reason": reason}
    if claimed:
        detail["claimedClient"] = claimed
    return Refusal(
        401, "UNAUTHENTICATED", reason,
        headers={"WWW-Authenticate": bearer_challenge("invalid_token", reason)},
        body={"error": "invalid_token", "error_description": reason},
        audit_detail=detail,
    )


def missing_token(reason: str = "missing bearer token") -> Refusal:
    """No bearer credentials at all (none, or another scheme): a challenge without an error code."""
    return Refusal(
        401, "UNAUTHENTICATED", reason,
        headers={"WWW-Authenticate": bearer_challenge()},
        body={"error": "unauthenticated", "error_description": reason},
        audit_detail={"reason": reason},
    )


def insufficient_scope(scope: str, message: str) -> Refusal:
    return Refusal(403, "FORBIDDEN", message, headers={"WWW-Authenticate": bearer_challenge("insufficient_scope", scope=scope)})


async def bearer_principal(request: Request, runtime: "HubRuntime", record: AccessRecord) -> Principal:
    """The token's principal (signature, claims, revocation), attributed in `record`."""
    authorization = request.headers.get("authorization", "")
    if not authorization:
        raise missing_token()
    if authorization.split(" ", 1)[0].lower() != "bearer":  # RFC 6750 §3.1: an unsupported method
        raise missing_token("no bearer token (the Authorization header uses another scheme)")
    token = ""
    try:
        token = bearer_token(request)
        principal = await runtime.validator.validate_async(token)
    except InvalidToken as exc:
        raise invalid_token(exc.reason, unverified_claim(token, "client_id")) from None
    except RevocationUnavailable:
        raise Refusal(503, "REVOCATION_UNAVAILABLE", "token revocations cannot be checked right now",
                      headers={"Retry-After": "1"}) from None
    record.authenticated(principal)
    return principal


def purpose_header(request: Request) -> str | None:
    """The declared purpose: one header, UTF-8, a purpose code; `Refusal` (400) otherwise."""
    raw = [value for key, value in request.headers.raw if key == PURPOSE_HEADER.encode()]
    if not raw:
        return None
    if len(raw) > 1:
        raise Refusal(400, "BAD_REQUEST", "send Xinlian-Purpose once")
    try:
        declared = raw[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Refusal(400, "BAD_REQUEST", "Xinlian-Purpose is not UTF-8") from None
    if not declared:
        return None
    if not PURPOSE_CODE.fullmatch(declared):  # a code is 1 to 64 characters
        raise Refusal(
            400, "BAD_REQUEST",
            "Xinlian-Purpose names a registered purpose code (1 to 64 of a-z 0-9 . _ -), not free text",
        )
    return declared


async def declare_purpose(request: Request, runtime: "HubRuntime", principal: Principal, record: AccessRecord) -> Principal:
    """The principal with its request's purpose and the client's registered facts."""
    declared = purpose_header(request)
    purpose = principal.purpose
    if declared is not None:
        if purpose is not None and declared != purpose:
            raise Refusal(
                400, "PURPOSE_CONFLICT", f"this token is bound to purpose {purpose!r}; Xinlian-Purpose names another",
                audit_detail={"declaredPurpose": declared},
            )
        purpose = declared
    facts = await runtime.clients.facts(principal.client_id) if principal.client_id else None
    declared_principal = dataclasses.replace(
        principal,
        purpose=purpose,
        allowed_purposes=facts.allowed_purposes if facts else frozenset(),
        subject_id=facts.subject_id if facts else None,
        department=facts.department if facts else None,
    )
    record.authenticated(declared_principal)
    return declared_principal
