"""Request hardening for the GraphQL endpoints: what a caller may send, and how often.

* `query_limits` — per-endpoint limits on a document (depth, aliases, tokens, cost, root fields).
* `document` — one linear pass over a parsed document that measures it against those limits.
* `extension` — the Strawberry extension that refuses an over-limit document before validation.
* `rate_limits` — per-IP and per-client request rates (the `limits` library; memory or Redis).
* `safelist` — the optional persisted-query safelist of the public endpoint.
* `codes` — the `extensions.code` of every refusal, and the mapping of parser errors to them.

See docs/hardening.md for every limit, its default, its variable and its code.
"""

from __future__ import annotations

from .codes import (
    BATCHING_NOT_SUPPORTED,
    PERSISTED_QUERY_NOT_ALLOWED,
    PERSISTED_QUERY_NOT_SUPPORTED,
    QUERY_TOO_COSTLY,
    QUERY_TOO_DEEP,
    RATE_LIMITED,
    TOO_MANY_ALIASES,
    TOO_MANY_ROOT_FIELDS,
    TOO_MANY_TOKENS,
    code_for_parse_error,
)
from .document import OperationShape, measure
from .extension import QueryGuard
from .query_limits import AUTHENTICATED_LIMITS, PUBLIC_LIMITS, QueryLimits, QueryRefused
from .rate_limits import Admission, RateLimiter, RateRules
from .safelist import PersistedQueryRefused, Safelist, SafelistError, resolve_document

__all__ = [
    "AUTHENTICATED_LIMITS",
    "Admission",
    "BATCHING_NOT_SUPPORTED",
    "OperationShape",
    "PERSISTED_QUERY_NOT_ALLOWED",
    "PERSISTED_QUERY_NOT_SUPPORTED",
    "PUBLIC_LIMITS",
    "PersistedQueryRefused",
    "QUERY_TOO_COSTLY",
    "QUERY_TOO_DEEP",
    "QueryGuard",
    "QueryLimits",
    "QueryRefused",
    "RATE_LIMITED",
    "RateLimiter",
    "RateRules",
    "Safelist",
    "SafelistError",
    "TOO_MANY_ALIASES",
    "TOO_MANY_ROOT_FIELDS",
    "TOO_MANY_TOKENS",
    "code_for_parse_error",
    "measure",
    "resolve_document",
]
