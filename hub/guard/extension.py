"""`QueryGuard`: the Strawberry extension that refuses an over-limit document before validation.

It runs in the validation stage, ahead of `ValidationCache` (so a refused document is never
validated, let alone executed, and no connector is called), measures the parsed document with the
request's variables (`document.measure`) and raises a `QueryRefused` GraphQL error carrying the
limit's code. Strawberry turns an error raised there into the result's only error, with no data;
the endpoint answers it with 400.

The token limit is not here: Strawberry's `MaxTokensLimiter` makes the parser count tokens, and
`codes.code_for_parse_error` names its refusal.
"""

from __future__ import annotations

from typing import Iterator

from strawberry.extensions import SchemaExtension

from .document import measure
from .query_limits import QueryLimits


class QueryGuard(SchemaExtension):
    """Refuse any operation of the document that exceeds `limits` (depth, aliases, root fields, cost)."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None:
            for shape in measure(document, self.execution_context.variables):
                refusal = self.limits.refusal(shape)
                if refusal is not None:
                    raise refusal
        yield
