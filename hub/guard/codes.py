"""The `extensions.code` of every hardening refusal, and which parser errors mean which code.

The hub's own limits raise errors that carry their code. Two limits are enforced inside
graphql-core's parser and surface as plain syntax errors: the token limit (Strawberry's
`MaxTokensLimiter` sets the parser's `max_tokens`) and the parser's nesting guard.
`code_for_parse_error` recognises them so the caller gets `TOO_MANY_TOKENS` or
`QUERY_TOO_DEEP` instead of a generic parse failure.
"""

from __future__ import annotations

import re

from graphql import GraphQLError, GraphQLSyntaxError

QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
TOO_MANY_ROOT_FIELDS = "TOO_MANY_ROOT_FIELDS"
RATE_LIMITED = "RATE_LIMITED"
PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
BATCHING_NOT_SUPPORTED = "BATCHING_NOT_SUPPORTED"

# graphql-core: "Document contains more than N tokens. Parsing aborted." ("more that" before 3.2.4)
_TOKEN_LIMIT = re.compile(r"Document contains more th[ae]n \d+ tokens")
_NESTING_LIMIT = "nested too deeply"


def code_for_parse_error(error: GraphQLError) -> str | None:
    """The hardening code for a parser refusal, or None for any other error."""
    if isinstance(error.original_error, RecursionError):  # a parser without a nesting guard
        return QUERY_TOO_DEEP
    if not isinstance(error, GraphQLSyntaxError):
        return None
    if _TOKEN_LIMIT.search(error.message):
        return TOO_MANY_TOKENS
    if _NESTING_LIMIT in error.message:
        return QUERY_TOO_DEEP
    return None
