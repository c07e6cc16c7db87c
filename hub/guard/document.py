"""Measure a parsed GraphQL document: depth, aliases, root fields and estimated cost.

One pass, linear in the size of the document: each named fragment is measured once, in
dependency order, and reused wherever it is spread (Strawberry's own `QueryDepthLimiter` and
`MaxAliasesLimiter` re-walk a fragment at every spread, which is exponential for a "fragment
bomb", and fail on a spread of an unknown fragment). Unknown or cyclic fragments count as empty
here; validation refuses them afterwards.

Cost (docs/hardening.md):

    cost(selection set) = Σ cost(field) over its fields, fragments expanded
    cost(field)         = 1 + n(field) × cost(field's selection set)   (a leaf costs 1)
    n(field)            = the size argument of a list root field (ROOT_LIST_SIZES), else 1

so `legalPersons(usccs: [5 codes]) { uscc penalties { decisionNumber } }` costs
1 + 5 × (1 + (1 + 1)) = 16. Lists whose length the document cannot fix (a subject's penalties,
the catalogue) count as one item: the hub fetches one family for one subject in one call
whatever the number of records, so cost follows subjects × selected fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)

UNREADABLE_SIZE = 10**9  # an integer literal too long to convert counts as this many items


@dataclass(frozen=True)
class SizeArgument:
    """Which argument of a list root field fixes how many items it returns."""

    argument: str
    counts: Literal["items", "value"]  # the argument's list length, or its integer value
    default: int  # when the argument is absent


ROOT_LIST_SIZES: Mapping[str, SizeArgument] = {
    "legalPersons": SizeArgument("usccs", "items", 1),
    "searchLegalPersons": SizeArgument("first", "value", 10),  # the resolver's default page
}


@dataclass(frozen=True)
class OperationShape:
    """What one operation of a document measures."""

    name: str | None
    depth: int  # fields on the longest path; a root field alone is 1
    aliases: int  # aliased fields, each fragment counted at every spread
    root_fields: int  # fields of the top-level selection set, fragments expanded
    cost: int


@dataclass
class _Tally:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    fields: int = 0

    def add(self, other: "_Tally") -> None:
        self.depth = max(self.depth, other.depth)
        self.aliases += other.aliases
        self.cost += other.cost
        self.fields += other.fields


def measure(
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    sizes: Mapping[str, SizeArgument] = ROOT_LIST_SIZES,
) -> list[OperationShape]:
    """The shape of every operation in `document`, with `variables` as sent by the caller."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    order = _dependency_order(fragments)
    nested: dict[str, _Tally] = {}
    for name in order:
        nested[name] = _nested(fragments[name].selection_set, nested)
    shapes = []
    for operation in (d for d in document.definitions if isinstance(d, OperationDefinitionNode)):
        values = _operation_values(operation, variables or {})
        at_root: dict[str, _Tally] = {}
        for name in order:
            at_root[name] = _root(fragments[name].selection_set, nested, at_root, values, sizes)
        tally = _root(operation.selection_set, nested, at_root, values, sizes)
        operation_name = operation.name.value if operation.name else None
        shapes.append(OperationShape(operation_name, tally.depth, tally.aliases, tally.fields, tally.cost))
    return shapes


def _nested(selection_set: SelectionSetNode, fragments: Mapping[str, _Tally]) -> _Tally:
    """Tally of a selection set below the root (no size arguments apply)."""
    tally = _Tally()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            child = _nested(selection.selection_set, fragments) if selection.selection_set else _Tally()
            tally.add(_Tally(1 + child.depth, child.aliases + (1 if selection.alias else 0), 1 + child.cost, 1))
        elif isinstance(selection, InlineFragmentNode):
            tally.add(_nested(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            tally.add(fragments[selection.name.value])
    return tally


def _root(
    selection_set: SelectionSetNode,
    nested: Mapping[str, _Tally],
    at_root: Mapping[str, _Tally],
    values: Mapping[str, Any],
    sizes: Mapping[str, SizeArgument],
) -> _Tally:
    """Tally of an operation's top-level selection set: root fields, multiplied by their size."""
    tally = _Tally()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            child = _nested(selection.selection_set, nested) if selection.selection_set else _Tally()
            items = _list_size(selection, values, sizes)
            tally.add(_Tally(1 + child.depth, child.aliases + (1 if selection.alias else 0), 1 + items * child.cost, 1))
        elif isinstance(selection, InlineFragmentNode):
            tally.add(_root(selection.selection_set, nested, at_root, values, sizes))
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in at_root:
            tally.add(at_root[selection.name.value])
    return tally


def _list_size(field: FieldNode, values: Mapping[str, Any], sizes: Mapping[str, SizeArgument]) -> int:
    rule = sizes.get(field.name.value)
    if rule is None:
        return 1
    node = next((a.value for a in field.arguments or () if a.name.value == rule.argument), None)
    if node is None:
        return rule.default
    value = _value(node, values)
    if rule.counts == "items":
        if isinstance(value, (list, tuple)):
            return len(value)
        return 0 if value is None else 1  # a single value is coerced to a one-item list
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return rule.default


def _value(node: ValueNode, values: Mapping[str, Any]) -> Any:
    """Enough of a value to size a list: lists keep their items, integers their value."""
    if isinstance(node, VariableNode):
        return values.get(node.name.value)
    if isinstance(node, ListValueNode):
        return node.values
    if isinstance(node, IntValueNode):
        try:
            return int(node.value)
        except ValueError:  # longer than Python converts
            return UNREADABLE_SIZE
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    return node


def _operation_values(operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's variables, completed with the operation's default values."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name in variables:
            values[name] = variables[name]
        elif definition.default_value is not None:
            values[name] = _value(definition.default_value, {})
    return values


def _spreads(selection_set: SelectionSetNode) -> list[str]:
    """Names of the fragments spread anywhere inside a selection set."""
    names: list[str] = []
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.append(selection.name.value)
            elif isinstance(selection, (FieldNode, InlineFragmentNode)) and selection.selection_set is not None:
                pending.append(selection.selection_set)
    return names


def _dependency_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after the fragments it spreads (iterative; cycles are cut)."""
    dependencies = {name: _spreads(f.selection_set) for name, f in fragments.items()}
    order: list[str] = []
    seen: set[str] = set()
    for start in fragments:
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(dependencies[start]))]
        while stack:
            name, pending = stack[-1]
            for dependency in pending:
                if dependency in fragments and dependency not in seen:
                    seen.add(dependency)
                    stack.append((dependency, iter(dependencies[dependency])))
                    break
            else:
                stack.pop()
                order.append(name)
    return order
