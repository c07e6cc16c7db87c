"""`OperationShape`: a validated query of a hot shape, compiled once for the planned executor.

The hot shapes are one root field naming legal persons — `legalPerson(uscc:)` or
`legalPersons(usccs:)` — whose selection holds only the subject's `uscc`, `name`, `__typename`
and record family fields, each family selecting record fields, `underObjection` and `__typename`.
Aliases, repeated fields, fragments, inline fragments and @skip / @include are followed exactly as
graphql-core collects fields (response keys in first-appearance order, the nodes of one key merged,
a fragment spread once per selection set, conditions decided with the request's variables). Any
other document — introspection, another root field, several root fields, another directive, a
type condition naming another type — compiles to `None` and is executed by graphql-core.

A shape depends on the schema (the public contract has fewer record fields), the document, the
operation, and the values of the variables its @skip / @include read; `ShapeCache` keeps them per
schema, keyed by query text, operation name and those values.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)

from xinlian.schema.catalogue import FAMILIES, RecordFamily

from .selection import family_selection, included

ROOT_FIELDS = {"legalPerson": False, "legalPersons": True}  # GraphQL root field → returns a list
CONDITIONS = frozenset({"skip", "include"})
TYPENAME = "__typename"
_FAMILY_FIELDS = {family.graphql_field: family for family in FAMILIES.values()}
MAX_SHAPES = 256  # per schema: distinct (query, operation, condition values) kept


class Unplannable(Exception):
    """The document is not of a hot shape: graphql-core executes it."""


class SubjectFieldKind(enum.Enum):
    USCC = "uscc"
    TYPENAME = "typename"
    NAME = "name"
    FAMILY = "family"


@dataclass(frozen=True, slots=True)
class Leaf:
    """One leaf of a record: a record field, the objection flag, or `__typename`."""

    key: str  # response key
    nodes: tuple[FieldNode, ...]
    attribute: str | None  # the record dict's key; None for __typename
    typename: str | None  # the value of __typename
    coerce: Callable[[Any], Any]  # the leaf type's output coercion, as graphql-core calls it
    plain_string: bool  # a String leaf: a `str` value is its own serialisation
    type_: GraphQLScalarType


@dataclass(frozen=True, slots=True)
class FamilySelection:
    """A family field under the subject: its family, selected catalogue fields and leaves."""

    family: RecordFamily
    selected: tuple[str, ...]  # catalogue names as the resolver reads them (`family_selection`)
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True, slots=True)
class SubjectField:
    key: str  # response key
    kind: SubjectFieldKind
    nodes: tuple[FieldNode, ...]
    generic_path: tuple[str, ...]  # the response path, list indices as "@"
    family: FamilySelection | None = None
    type_: GraphQLScalarType = GraphQLString


@dataclass(frozen=True, slots=True)
class OperationShape:
    root_key: str
    root_field: GraphQLField
    root_nodes: tuple[FieldNode, ...]
    many: bool  # legalPersons (a list) or legalPerson
    subject_type: str
    fields: tuple[SubjectField, ...]
    fragments: Mapping[str, FragmentDefinitionNode]


@dataclass(frozen=True, slots=True)
class SelectionScope:
    """`selection.SelectionScope` for one field of a compiled shape (what the resolvers read)."""

    field_nodes: tuple[FieldNode, ...]
    fragments: Mapping[str, FragmentDefinitionNode]
    variable_values: Mapping[str, Any]


def operation_of(document: Any, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation graphql-core would run (None where it would answer an error)."""
    found: OperationDefinitionNode | None = None
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name is None:
            if found is not None:
                return None
            found = definition
        elif definition.name is not None and definition.name.value == operation_name:
            found = definition
    return found


class _Collector:
    """graphql-core's field collection (collect_fields.py) for object types without interfaces."""

    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode], variables: Any) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.coerced: Mapping[str, Any] = getattr(variables, "coerced", variables) or {}
        self.condition_variables: set[str] = set()

    def collect(self, selection_sets: list[SelectionSetNode], type_name: str) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._visit(selection_set, type_name, grouped, visited)
        return grouped

    def _include(self, node: Any) -> bool:
        for directive in node.directives or ():
            if directive.name.value not in CONDITIONS:
                raise Unplannable(f"directive @{directive.name.value}")
            for argument in directive.arguments or ():
                if isinstance(argument.value, VariableNode):
                    name = argument.value.name.value
                    self.condition_variables.add(name)
                    if not isinstance(self.coerced.get(name), bool):  # null: graphql-core refuses it
                        raise Unplannable(f"${name} is not a boolean")
        return included(node, self.variables)

    def _matches(self, condition: Any, type_name: str) -> bool:
        if condition is None:
            return True
        if condition.name.value != type_name:
            raise Unplannable("a type condition naming another type")
        return True

    def _visit(self, selection_set: SelectionSetNode, type_name: str, grouped: dict[str, list[FieldNode]], visited: set[str]) -> None:
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                if self._include(node):
                    grouped.setdefault(node.alias.value if node.alias else node.name.value, []).append(node)
            elif isinstance(node, InlineFragmentNode):
                if self._include(node) and self._matches(node.type_condition, type_name):
                    self._visit(node.selection_set, type_name, grouped, visited)
            elif isinstance(node, FragmentSpreadNode):
                if not self._include(node):
                    continue
                fragment = self.fragments.get(node.name.value)
                if fragment is None or not self._matches(fragment.type_condition, type_name):
                    continue
                if fragment.variable_definitions:
                    raise Unplannable("fragment arguments")
                if node.name.value in visited:
                    continue
                visited.add(node.name.value)
                self._visit(fragment.selection_set, type_name, grouped, visited)
            else:
                raise Unplannable(f"selection {type(node).__name__}")


def _object_type(type_: Any, many: bool, non_null_items: bool = False) -> GraphQLObjectType:
    """The object type of a nullable field (a nullable list when `many`, of nullable items unless
    `non_null_items`: records, which the executor never answers as null)."""
    if isinstance(type_, GraphQLNonNull):
        raise Unplannable("a non-null field")
    if many:
        if not isinstance(type_, GraphQLList):
            raise Unplannable("not a list")
        type_ = type_.of_type
        if isinstance(type_, GraphQLNonNull) and non_null_items:
            type_ = type_.of_type
        elif isinstance(type_, GraphQLNonNull):
            raise Unplannable("non-null items")
    if not isinstance(type_, GraphQLObjectType) or type_.is_type_of is not None or type_.interfaces:
        raise Unplannable("not a plain object type")
    return type_


def _scalar(type_: Any, nullable: bool = True) -> GraphQLScalarType:
    if isinstance(type_, GraphQLNonNull):
        if nullable:
            raise Unplannable("a non-null leaf")
        type_ = type_.of_type
    if not isinstance(type_, GraphQLScalarType):
        raise Unplannable("not a scalar")
    return type_


def _plain_attribute(definition: GraphQLField | None) -> str | None:
    """The attribute a Strawberry field without a resolver reads (`read_attribute`), if it is one."""
    strawberry_field = (definition.extensions or {}).get("strawberry-definition") if definition is not None else None
    if strawberry_field is None or strawberry_field.base_resolver is not None:
        return None
    name = strawberry_field.python_name
    return name if isinstance(name, str) else None


def output_coercion(scalar: GraphQLScalarType) -> Callable[[Any], Any]:
    """What graphql-core calls to complete a leaf of this type (3.3: `coerce_output_value`)."""
    coerce: Callable[[Any], Any] = getattr(scalar, "coerce_output_value", scalar.serialize)
    return coerce


def _no_subselection(nodes: list[FieldNode]) -> None:
    if any(node.selection_set is not None or node.arguments for node in nodes):
        raise Unplannable("a leaf with a selection or arguments")


def _leaves(collector: _Collector, record_type: GraphQLObjectType, family: RecordFamily, nodes: list[FieldNode]) -> tuple[Leaf, ...]:
    grouped = collector.collect([n.selection_set for n in nodes if n.selection_set is not None], record_type.name)
    leaves: list[Leaf] = []
    for key, leaf_nodes in grouped.items():
        name = leaf_nodes[0].name.value
        _no_subselection(leaf_nodes)
        if name == TYPENAME:
            leaves.append(Leaf(key, tuple(leaf_nodes), None, record_type.name, str, True, GraphQLString))
            continue
        definition = record_type.fields.get(name)
        attribute = _plain_attribute(definition)
        if attribute is None:
            raise Unplannable(f"record field {name}")
        scalar = _scalar(definition.type)
        leaves.append(Leaf(key, tuple(leaf_nodes), attribute, None, output_coercion(scalar), scalar is GraphQLString, scalar))
    return tuple(leaves)


def compile_shape(
    schema: GraphQLSchema, document: Any, operation: OperationDefinitionNode, variables: Any
) -> tuple[OperationShape | None, frozenset[str]]:
    """The operation's shape (None if it is not a hot shape) and the variables its conditions read."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    collector = _Collector(schema, fragments, variables)
    try:
        shape = _compile(schema, operation, fragments, collector, variables)
    except Unplannable:
        shape = None
    return shape, frozenset(collector.condition_variables)


def _compile(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    collector: _Collector,
    variables: Any,
) -> OperationShape:
    query_type = schema.query_type
    if operation.operation is not OperationType.QUERY or query_type is None or operation.directives:
        raise Unplannable("not a plain query")
    roots = collector.collect([operation.selection_set], query_type.name)
    if len(roots) != 1:
        raise Unplannable("not one root field")
    ((root_key, root_nodes),) = roots.items()
    root_name = root_nodes[0].name.value
    if root_name not in ROOT_FIELDS:
        raise Unplannable(f"root field {root_name}")
    many = ROOT_FIELDS[root_name]
    root_field = query_type.fields.get(root_name)
    if root_field is None:
        raise Unplannable("no such root field")
    subject_type = _object_type(root_field.type, many)
    subject_nodes = [n.selection_set for n in root_nodes if n.selection_set is not None]
    fields: list[SubjectField] = []
    base = (root_key, "@") if many else (root_key,)
    for key, nodes in collector.collect(subject_nodes, subject_type.name).items():
        name = nodes[0].name.value
        path = base + (key,)
        if name == TYPENAME:
            _no_subselection(nodes)
            fields.append(SubjectField(key, SubjectFieldKind.TYPENAME, tuple(nodes), path))
            continue
        definition = subject_type.fields.get(name)
        if definition is None:
            raise Unplannable(f"subject field {name}")
        if name == "uscc":
            _no_subselection(nodes)
            fields.append(SubjectField(key, SubjectFieldKind.USCC, tuple(nodes), path, None, _scalar(definition.type, nullable=False)))
        elif name == "name":
            _no_subselection(nodes)
            fields.append(SubjectField(key, SubjectFieldKind.NAME, tuple(nodes), path, None, _scalar(definition.type)))
        elif name in _FAMILY_FIELDS:
            if any(n.arguments for n in nodes):
                raise Unplannable("arguments on a family field")
            family = _FAMILY_FIELDS[name]
            record_type = _object_type(definition.type, family.many, non_null_items=True)
            scope = SelectionScope(tuple(nodes), fragments, variables)
            selected = tuple(family_selection(scope, family))
            family_fields = FamilySelection(family, selected, _leaves(collector, record_type, family, nodes))
            fields.append(SubjectField(key, SubjectFieldKind.FAMILY, tuple(nodes), path, family_fields))
        else:
            raise Unplannable(f"subject field {name}")
    return OperationShape(root_key, root_field, tuple(root_nodes), many, subject_type.name, tuple(fields), fragments)


@dataclass
class _Entry:
    condition_variables: frozenset[str]
    shapes: dict[tuple[Any, ...], OperationShape | None] = field(default_factory=dict)


class ShapeCache:
    """Compiled shapes of one schema (bounded: the least recently used documents go first)."""

    def __init__(self, schema: GraphQLSchema, max_entries: int = MAX_SHAPES) -> None:
        self.schema = schema
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str | None], _Entry] = OrderedDict()

    def shape(
        self, query: str, operation_name: str | None, document: Any, operation: OperationDefinitionNode,
        variables: Any, coerced: Mapping[str, Any],
    ) -> OperationShape | None:
        key = (query, operation_name)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            values = tuple(_hashable(coerced.get(name)) for name in sorted(entry.condition_variables))
            if values in entry.shapes:
                return entry.shapes[values]
        shape, names = compile_shape(self.schema, document, operation, variables)
        if entry is None or entry.condition_variables != names:
            entry = self._entries[key] = _Entry(names)
        values = tuple(_hashable(coerced.get(name)) for name in sorted(names))
        if len(entry.shapes) < 16:
            entry.shapes[values] = shape
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return shape


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
