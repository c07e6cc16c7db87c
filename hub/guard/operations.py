"""Which operation of a document a request runs, resolved exactly as execution will resolve it.

GraphQL (§6.1 GetOperation): a document with several operations needs an `operationName`
naming one of them; a name that names none is an error. Rules that depend on the operation
(the admin API's one change per request, its intent entry) must see the operation execution
will run, so they call `select_operation` first; it refuses what execution would refuse.
Outlines are cached by document text (an LRU), so a repeated document is parsed once here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse

from .query_limits import AUTHENTICATED_LIMITS

MAX_TOKENS = AUTHENTICATED_LIMITS.max_tokens  # the admin API's limit: the same as its execution's


@dataclass(frozen=True)
class OperationOutline:
    """One operation of a document: its name, type ("query", "mutation", ...) and root selections."""

    name: str | None
    type: str
    root_fields: tuple[str, ...]  # fields selected directly at the root (no __typename)
    root_fragments: bool  # whether the root selects through fragments too


class OperationUnresolved(ValueError):
    """The document's operation cannot be resolved (several without a name, or an unknown name)."""


@functools.lru_cache(maxsize=512)
def outline(query: str) -> tuple[OperationOutline, ...] | None:
    """The operations of a document, or None if it does not parse (execution reports that)."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except (GraphQLError, RecursionError):
        return None
    found = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            selections = definition.selection_set.selections
            found.append(
                OperationOutline(
                    name=definition.name.value if definition.name is not None else None,
                    type=definition.operation.value,
                    root_fields=tuple(
                        s.name.value for s in selections if isinstance(s, FieldNode) and not s.name.value.startswith("__")
                    ),
                    root_fragments=any(not isinstance(s, FieldNode) for s in selections),
                )
            )
    return tuple(found)


def select_operation(query: str, operation_name: str | None) -> OperationOutline | None:
    """The operation execution will run; `OperationUnresolved` if it cannot pick one.

    None when the document does not parse or has no operation: execution reports those.
    """
    operations = outline(query)
    if not operations:
        return None
    if operation_name is None:
        if len(operations) > 1:
            raise OperationUnresolved("the document has several operations: name the one to run with operationName")
        return operations[0]
    for operation in operations:
        if operation.name == operation_name:
            return operation
    raise OperationUnresolved(f"no operation named {operation_name!r} in the document")
