"""`QueryLimits`: how large a GraphQL document one endpoint accepts, and the refusal when it is not.

Every limit is an upper bound, inclusive: a document at the limit is served, one above it is
refused with a GraphQL error whose `extensions` carry the code, the limit and the measured value:

    {"message": "Query cost 5203 exceeds the limit of 5000", "extensions":
     {"code": "QUERY_TOO_COSTLY", "limit": 5000, "measured": 5203}}

The public endpoint is stricter by default than the authenticated one (docs/hardening.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import GraphQLError

from .codes import QUERY_TOO_COSTLY, QUERY_TOO_DEEP, TOO_MANY_ALIASES, TOO_MANY_ROOT_FIELDS
from .document import OperationShape


class QueryRefused(GraphQLError):
    """A document over one of its endpoint's limits (raised before validation and execution)."""

    def __init__(self, code: str, message: str, limit: int, measured: int) -> None:
        super().__init__(message, extensions={"code": code, "limit": limit, "measured": measured})
        self.code = code


@dataclass(frozen=True)
class QueryLimits:
    """Upper bounds on one GraphQL document; see docs/hardening.md for how each is measured."""

    max_depth: int = 20  # fields on the longest path, root field = 1 (introspection included)
    max_aliases: int = 50  # aliased fields, counted every time a fragment is spread
    max_tokens: int = 10_000  # lexical tokens (graphql-core's parser counts them)
    max_cost: int = 50_000  # static cost estimate (document.measure)
    max_root_fields: int = 20  # fields in the operation's top-level selection set

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def refusal(self, shape: OperationShape) -> QueryRefused | None:
        """The first limit `shape` exceeds (depth, aliases, root fields, cost), or None."""
        label = f"Operation '{shape.name}'" if shape.name else "The operation"
        if shape.depth > self.max_depth:
            return QueryRefused(
                QUERY_TOO_DEEP, f"{label} is {shape.depth} fields deep; the limit is {self.max_depth}",
                self.max_depth, shape.depth,
            )
        if shape.aliases > self.max_aliases:
            return QueryRefused(
                TOO_MANY_ALIASES, f"{label} uses {shape.aliases} aliases; the limit is {self.max_aliases}",
                self.max_aliases, shape.aliases,
            )
        if shape.root_fields > self.max_root_fields:
            return QueryRefused(
                TOO_MANY_ROOT_FIELDS,
                f"{label} selects {shape.root_fields} root fields; the limit is {self.max_root_fields}",
                self.max_root_fields, shape.root_fields,
            )
        if shape.cost > self.max_cost:
            return QueryRefused(
                QUERY_TOO_COSTLY, f"{label} has an estimated cost of {shape.cost}; the limit is {self.max_cost}",
                self.max_cost, shape.cost,
            )
        return None


AUTHENTICATED_LIMITS = QueryLimits()
PUBLIC_LIMITS = QueryLimits(max_depth=16, max_aliases=10, max_tokens=2_000, max_cost=5_000, max_root_fields=5)
