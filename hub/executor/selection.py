"""Which sub-fields a GraphQL field selects, following fragments and @skip / @include."""

from __future__ import annotations

from typing import Any, Iterable

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLResolveInfo,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import get_directive_values


def _included(node: Any, variables: dict[str, Any]) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include and include.get("if") is False)


def _collect(selection_set: SelectionSetNode | None, info: GraphQLResolveInfo, out: dict[str, list[FieldNode]], seen: set[str]) -> None:
    if selection_set is None:
        return
    for node in selection_set.selections:
        if not _included(node, info.variable_values):
            continue
        if isinstance(node, FieldNode):
            out.setdefault(node.name.value, []).append(node)
        elif isinstance(node, InlineFragmentNode):
            _collect(node.selection_set, info, out, seen)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name in seen:
                continue
            seen.add(name)
            fragment = info.fragments.get(name)
            if fragment is not None:
                _collect(fragment.selection_set, info, out, seen)


def subfields(info: GraphQLResolveInfo, nodes: Iterable[FieldNode] | None = None) -> dict[str, list[FieldNode]]:
    """Sub-field name → its nodes, for the field being resolved (or for the given nodes)."""
    out: dict[str, list[FieldNode]] = {}
    for node in nodes if nodes is not None else info.field_nodes:
        _collect(node.selection_set, info, out, set())
    return {name: found for name, found in out.items() if not name.startswith("__")}


def generic_path(info: GraphQLResolveInfo) -> tuple[str, ...]:
    """The response path of the field being resolved, with list indices replaced by "@"."""
    keys = info.path.as_list()
    return tuple("@" if isinstance(k, int) else str(k) for k in keys)
