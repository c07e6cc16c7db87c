"""`EntryPoint`: an entry point declared as a profile, and `Exchange`: what its handler is given.

An entry point is *declared* — path, methods, who may call, which rate rules admit it, how
large a body it reads, whether and how it is audited, how its refusals look — and the gateway
(`pipeline.py`) runs every stage for it. A handler only answers: it gets an `Exchange` with
the authenticated principal, the bounded body and the request's `AccessRecord`, and returns a
response or raises `Refusal`. It cannot skip admission, authentication or the audit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response

from xinlian.hub.audit.record import AccessRecord
from xinlian.hub.principal import Principal

from .refusal import ErrorStyle

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store"}


class Caller(enum.Enum):
    """Who may call an entry point, as far as the gateway checks."""

    ANYONE = "anyone"  # no credentials (the public endpoint; OAuth endpoints authenticate clients themselves)
    BEARER = "bearer"  # an access token of the hub, with the profile's `scope` if it names one
    OPTIONAL_BEARER = "optional-bearer"  # a token if one is sent (then it must be valid), else anonymous


@dataclass
class Exchange:
    """One request as its handler sees it, after every stage before the handler has passed."""

    request: Request
    runtime: "HubRuntime"
    entry_point: "EntryPoint"
    record: AccessRecord
    principal: Principal | None  # None: anonymous (Caller.ANYONE / OPTIONAL_BEARER without a token)
    body: bytes
    client_address: str
    scheme: str

    @property
    def request_id(self) -> str:
        return self.record.request_id


Handler = Callable[[Exchange], Awaitable[Response]]


@dataclass(frozen=True)
class EntryPoint:
    """A declared entry point (see the module docstring)."""

    path: str
    handler: Handler
    methods: frozenset[str] = frozenset({"GET", "POST"})
    caller: Caller = Caller.BEARER
    scope: str | None = None  # a scope the token must carry (else 403 insufficient_scope)
    ip_rate: str | None = None  # a RateRules scope, counted per client address before anything else
    client_rate: str | None = None  # a RateRules scope, counted per client after authentication
    max_body: int | None = None  # bytes; None: the hub's `max_body_bytes`; 0: no body is read
    # None above: the hub's `max_batch_body_bytes` instead (token holders' batches: 10,000 codes
    # screened in one creditChecks); read only after the caller is authenticated
    batch_body: bool = False
    audited: bool = True  # one audit entry per request, stored before the response is sent
    audit_endpoint: str | None = None  # the entry's `endpoint` (default: the path)
    style: ErrorStyle = ErrorStyle.GRAPHQL
    headers: Mapping[str, str] = field(default_factory=lambda: dict(NO_STORE))
    name: str = ""

    @property
    def audit_name(self) -> str:
        return self.audit_endpoint or self.path
