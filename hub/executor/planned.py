"""The planned executor: hot shapes answered without graphql-core's per-field machinery.

`PlannedExecution` is a Strawberry schema extension. Parsing, validation and the query limits
have run when its `on_execute` hook is called; if the operation is of a hot shape (`shape.py`:
one `legalPerson` / `legalPersons` root field over subject, family and record fields), it answers
the operation itself and hands Strawberry the result, which then goes on as usual (errors
logged by `CreditSchema.process_errors`, the endpoint formats them). Anything else — another
shape, variables that do not coerce, an argument that does not, a field that needs the subject's
consent or the anti-harvesting cap (those await per subject) — is left to graphql-core, before
anything has been done.

What it saves is per subject and per field: graphql-core builds a resolve info, wraps, schedules
and completes every field of every subject and record; here the decisions are taken once per
family field for the request (`RequestContext.plan`, as the resolvers take them), the subjects
of a family are loaded as one entry per department loader (`FamilyLoader.load_many`: the same
batches, the same calls), and records are written straight into the response.

It is the same executor, not a second one: admission (`SubjectAdmission`), plans, denials
(`HubResolvers._apply`), the registration preloaded by the admission, values (`family_value`,
`name_value`: row rules, newest first, masks, the objection flag, released fields) and errors
(`upstream`, `forbidden`, located as graphql-core locates them) are the resolvers' own. The
order of what it records follows graphql-core's: every subject's fields are begun in response
order, subject by subject (denials, refusals, preloaded values), then each field is finished
when its last department answers, in the order graphql-core's tasks would wake — so errors, the
denials' order and the audit findings are the same (tests/test_planned_execution.py compares
both paths over many shapes, callers and policies).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import graphql
from graphql import ExecutionResult, FieldNode, GraphQLError, GraphQLString, located_error
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Undefined, inspect
from strawberry.extensions import SchemaExtension

from xinlian.policies.engine import Decision
from xinlian.policies.model import DisclosureClass
from xinlian.schema.catalogue import REGISTRATION, RecordFamily

from .admission import LegalPersonRoot
from .loader import FamilyLoader, combine
from .plan import FamilyPlan, SubjectGrant
from .request import RequestContext
from .selection import registration_selection
from .shape import (
    Leaf,
    OperationShape,
    SelectionScope,
    ShapeCache,
    SubjectField,
    SubjectFieldKind,
    operation_of,
    output_coercion,
)

if TYPE_CHECKING:
    from .resolvers import HubResolvers

log = logging.getLogger("xinlian.executor")

# The planned executor follows graphql-core 3.3's order of execution; with another version the
# hub executes everything through graphql-core.
SUPPORTED = graphql.version_info >= (3, 3) and graphql.version_info < (3, 4)
LEGAL_PERSON = SubjectGrant()  # a legal person's grant: no consent involved, the cap not crossed
MAX_COERCION_ERRORS = 50  # graphql-core's default (errors mean: graphql-core answers)
_NAME_ONLY = frozenset({"name"})


class PlannedExecution(SchemaExtension):
    """Answers operations of a hot shape with the planned executor (see the module docstring)."""

    asynchronous_only = True  # it awaits: `CreditSchema.get_extensions` leaves it out of execute_sync

    def __init__(self, planner: "OperationPlanner") -> None:
        self.planner = planner

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.result is None:
            operation = self.planner.prepare(context)
            if operation is not None:
                context.result = await operation.execute()
        yield


class OperationPlanner:
    """Compiles documents into shapes (per schema) and prepares planned operations."""

    def __init__(self, resolvers: "HubResolvers") -> None:
        self.resolvers = resolvers
        self._shapes: weakref.WeakKeyDictionary[Any, ShapeCache] = weakref.WeakKeyDictionary()
        self._off: weakref.WeakSet[Any] = weakref.WeakSet()
        self.planned = 0  # operations answered here (for tests and benchmarks)
        self.active = True  # False: every operation goes to graphql-core (XINLIAN_PLANNED_EXECUTION=off)

    def extension(self) -> PlannedExecution:
        return PlannedExecution(self)

    def enable(self, schema: Any, enabled: bool = True) -> None:
        """Switch planned execution on or off for one schema (on by default)."""
        if enabled:
            self._off.discard(schema)
        else:
            self._off.add(schema)

    def enabled(self, schema: Any) -> bool:
        return SUPPORTED and self.active and schema not in self._off

    def prepare(self, context: Any) -> "PlannedOperation | None":
        """The planned operation for this execution, or None to leave it to graphql-core."""
        ctx = context.context
        schema = context.schema
        document = context.graphql_document
        if not isinstance(ctx, RequestContext) or document is None or not isinstance(context.query, str):
            return None
        if not self.enabled(schema):
            return None
        operation = operation_of(document, context.operation_name)
        if operation is None:
            return None
        core_schema = schema._schema
        variables = get_variable_values(
            core_schema, operation.variable_definitions or (), context.variables or {}, max_errors=MAX_COERCION_ERRORS
        )
        if isinstance(variables, list):
            return None  # graphql-core answers the coercion errors
        shapes = self._shapes.get(schema)
        if shapes is None:
            shapes = self._shapes[schema] = ShapeCache(core_schema)
        try:
            shape = shapes.shape(context.query, context.operation_name, document, operation, variables, variables.coerced)
        except Exception:  # not expected: a document the compiler cannot read is graphql-core's
            log.exception("the planned executor could not compile a document; graphql-core executes it")
            return None
        if shape is None:
            return None
        try:
            arguments = get_argument_values(shape.root_field, shape.root_nodes[0], variables)
        except Exception:  # graphql-core locates the argument's error
            return None
        try:
            decided = _decided(ctx, shape)
        except Exception:  # graphql-core's resolvers meet (and locate) whatever went wrong
            return None
        if decided is None:
            return None
        self.planned += 1
        return PlannedOperation(self.resolvers, ctx, shape, arguments, variables.coerced, *decided)


def _decided(ctx: RequestContext, shape: OperationShape) -> tuple[dict[str, FamilyPlan], Decision | None] | None:
    """The plan of every family field and the decision on `name`, taken once for the request as
    the resolvers take them for each subject (a legal person's grant); None when a field needs the
    anti-harvesting cap, which is asked subject by subject (then graphql-core executes)."""
    plans: dict[str, FamilyPlan] = {}
    name: Decision | None = None
    for subject_field in shape.fields:
        if subject_field.family is not None:
            selection = subject_field.family
            plan = ctx.plan(selection.family, selection.selected, LEGAL_PERSON)
            if plan.authorized and plan.refused is None:
                return None
            plans[subject_field.key] = plan
        elif subject_field.kind is SubjectFieldKind.NAME:
            name = ctx.decision(REGISTRATION.name, "name")
            if name.allowed and name.disclosure is DisclosureClass.AUTHORIZED:
                return None
    return plans, name


@dataclass(slots=True, eq=False)
class _Pending:
    """A subject field waiting for its departments (graphql-core: a task awaiting its loads)."""

    subject: dict[str, Any]
    path: list[Any]  # the subject's response path
    subject_field: SubjectField
    root: LegalPersonRoot
    outcomes: list[Any]  # one per source department
    remaining: int


@dataclass(slots=True)
class _Batch:
    """The loads of one department loader, in the order graphql-core would have issued them."""

    loader: FamilyLoader
    fields: frozenset[str]
    keys: list[str] = field(default_factory=list)
    waiting: list[tuple[_Pending, int]] = field(default_factory=list)  # (field, its source index)


class PlannedOperation:
    """One operation of a hot shape, executed for one request."""

    def __init__(
        self,
        resolvers: "HubResolvers",
        ctx: RequestContext,
        shape: OperationShape,
        arguments: dict[str, Any],
        variables: dict[str, Any],
        plans: dict[str, FamilyPlan],
        name: Decision | None,
    ) -> None:
        self.resolvers = resolvers
        self.ctx = ctx
        self.shape = shape
        self.arguments = arguments
        self.variables = variables
        self.plans = plans
        self.name = name
        self.errors: list[GraphQLError] = []
        self._batches: dict[int, _Batch] = {}  # by id of the loader, in the order first asked
        self._loaders: dict[tuple[str, frozenset[str]], list[FamilyLoader]] = {}

    async def execute(self) -> ExecutionResult:
        shape = self.shape
        try:
            roots = await self._admit()
        except Exception as exc:
            return ExecutionResult({shape.root_key: None}, [_located(exc, shape.root_nodes, [shape.root_key])])
        subjects: list[dict[str, Any] | None] = []
        begun: list[tuple[dict[str, Any], list[Any], SubjectField, LegalPersonRoot]] = []
        for index, root in enumerate(roots):
            if root is None:
                subjects.append(None)
                continue
            subject: dict[str, Any] = {}
            path: list[Any] = [shape.root_key, index] if shape.many else [shape.root_key]
            for subject_field in shape.fields:  # graphql-core: every resolver called, sync ones completed
                kind = subject_field.kind
                if kind is SubjectFieldKind.USCC:
                    subject[subject_field.key] = self._leaf(subject_field, root.uscc, path + [subject_field.key])
                elif kind is SubjectFieldKind.TYPENAME:
                    subject[subject_field.key] = shape.subject_type
                else:
                    subject[subject_field.key] = None
                    begun.append((subject, path, subject_field, root))
            subjects.append(subject)
        for subject, path, subject_field, root in begun:  # then the async fields, subject by subject
            self._begin(subject, path, subject_field, root)
        if self._batches:
            await self._finish_loaded()
        value: Any = subjects if shape.many else subjects[0]
        return ExecutionResult({shape.root_key: value}, self.errors or None)

    async def _admit(self) -> list[LegalPersonRoot | None]:
        shape, ctx = self.shape, self.ctx
        admission = self.resolvers.admission
        registration = registration_selection(SelectionScope(shape.root_nodes, shape.fragments, self.variables))
        if shape.many:
            return await admission.admit_legal_persons(ctx, self.arguments["usccs"], "usccs", registration)
        return [await admission.admit_legal_person(ctx, self.arguments["uscc"], "uscc", registration)]

    # ---- the first turn: what each subject field does before it awaits ------------------------
    def _begin(self, subject: dict[str, Any], path: list[Any], subject_field: SubjectField, root: LegalPersonRoot) -> None:
        ctx, resolvers = self.ctx, self.resolvers
        where = path + [subject_field.key]
        try:
            if subject_field.family is None:  # name
                decision = self.name
                assert decision is not None
                if not decision.allowed:
                    ctx.deny(subject_field.generic_path, REGISTRATION.name, "name")
                    return
                if "name" in root.registration_fields:
                    subject[subject_field.key] = self._name(subject_field, decision, root.registration, where)
                else:
                    self._wait(subject, path, subject_field, root, REGISTRATION, _NAME_ONLY)
                return
            family = subject_field.family.family
            plan = self.plans[subject_field.key]
            resolvers._apply(ctx, family, plan, subject_field.generic_path)
            if family is REGISTRATION and plan.fetch <= root.registration_fields:  # resolvers.preloaded
                subject[subject_field.key] = self._family(subject_field, plan, root, root.registration, where)
            else:
                self._wait(subject, path, subject_field, root, family, plan.fetch)
        except Exception as exc:
            self.errors.append(_located(exc, subject_field.nodes, where))

    def _wait(
        self, subject: dict[str, Any], path: list[Any], subject_field: SubjectField, root: LegalPersonRoot,
        family: RecordFamily, fields: frozenset[str],
    ) -> None:
        loaders = self._loaders.get((family.name, fields))
        if loaders is None:
            sources = self.ctx.federation.sources(family.name)
            loaders = self._loaders[(family.name, fields)] = [self.ctx.loader(d, family.name, fields) for d in sources]
        if not loaders:  # no department serves the family: graphql-core never waits
            self._complete(_Pending(subject, path, subject_field, root, [], 0))
            return
        pending = _Pending(subject, path, subject_field, root, [None] * len(loaders), len(loaders))
        for source, loader in enumerate(loaders):
            batch = self._batches.get(id(loader))
            if batch is None:
                batch = self._batches[id(loader)] = _Batch(loader, fields)
            batch.keys.append(root.uscc)
            batch.waiting.append((pending, source))

    # ---- then: each field when its last department has answered ---------------------------------
    async def _finish_loaded(self) -> None:
        """Issue the loads, then finish each waiting field in the order graphql-core's tasks would
        wake: a field wakes when the last of its loads is resolved, loads are resolved loader by
        loader as their calls end, and within a loader in the order they were issued."""
        batches = list(self._batches.values())
        answered: list[int] = []
        futures = []
        for number, batch in enumerate(batches):
            future = batch.loader.load_many(batch.keys, batch.fields)
            future.add_done_callback(_recorder(answered, number))
            futures.append(future)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for number in answered:
            batch, result = batches[number], results[number]
            outcomes: list[Any] = result if isinstance(result, list) else [result] * len(batch.keys)
            for (pending, source), outcome in zip(batch.waiting, outcomes):
                pending.outcomes[source] = outcome
                pending.remaining -= 1
                if pending.remaining == 0:
                    self._complete(pending)

    def _complete(self, pending: _Pending) -> None:
        subject_field = pending.subject_field
        where = pending.path + [subject_field.key]
        try:
            outcome = combine(pending.outcomes)
            if subject_field.family is None:
                assert self.name is not None
                value = self._name(subject_field, self.name, outcome, where)
            else:
                value = self._family(subject_field, self.plans[subject_field.key], pending.root, outcome, where)
        except Exception as exc:
            self.errors.append(_located(exc, subject_field.nodes, where))
            return
        pending.subject[subject_field.key] = value

    # ---- values, completed as graphql-core completes them ---------------------------------------
    def _name(self, subject_field: SubjectField, decision: Decision, outcome: list[Any], where: list[Any]) -> Any:
        return self._leaf(subject_field, self.resolvers.name_value(self.ctx, decision, outcome), where)

    def _family(self, subject_field: SubjectField, plan: FamilyPlan, root: LegalPersonRoot, outcome: list[Any], where: list[Any]) -> Any:
        selection = subject_field.family
        assert selection is not None
        value = self.resolvers.family_value(self.ctx, selection.family, root.uscc, plan, outcome)
        if isinstance(value, Exception):
            raise value
        if value is None:
            return None
        leaves = selection.leaves
        if selection.family.many:
            return [self._record(leaves, record, where + [i]) for i, record in enumerate(value)]
        return self._record(leaves, value, where)

    def _record(self, leaves: tuple[Leaf, ...], record: dict[str, Any], where: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for leaf in leaves:
            if leaf.attribute is None:
                out[leaf.key] = leaf.typename
                continue
            value = record.get(leaf.attribute)  # schema.graphql.read_attribute on a record dict
            if value is None or (leaf.plain_string and type(value) is str):
                out[leaf.key] = value
            else:
                out[leaf.key] = self._coerced(leaf.type_, leaf.coerce, leaf.nodes, value, where + [leaf.key])
        return out

    def _leaf(self, subject_field: SubjectField, value: Any, where: list[Any]) -> Any:
        """A subject's leaf (`uscc`: the admitted code, never null; `name`)."""
        type_ = subject_field.type_
        if value is None or (type(value) is str and type_ is GraphQLString):
            return value
        return self._coerced(type_, output_coercion(type_), subject_field.nodes, value, where)

    def _coerced(self, type_: Any, coerce: Callable[[Any], Any], nodes: tuple[FieldNode, ...], value: Any, where: list[Any]) -> Any:
        """graphql-core's `complete_value` for a nullable leaf: the value coerced, or a located error."""
        try:
            if isinstance(value, Exception):
                raise value
            if value is Undefined:
                return None
            coerced = coerce(value)
            if coerced is Undefined or coerced is None:
                raise TypeError(
                    f"Expected `{inspect(type_)}.coerce_output_value({inspect(value)})` to return"
                    f" non-nullable value, returned: {inspect(coerced)}"
                )
            return coerced
        except Exception as exc:
            self.errors.append(_located(exc, nodes, where))
            return None


def _located(error: Exception, nodes: tuple[FieldNode, ...], path: list[Any]) -> GraphQLError:
    """The error as graphql-core reports a field's error (`handle_field_error`)."""
    return located_error(error, list(nodes), path)


def planner_of(schema: Any) -> "OperationPlanner | None":
    """The planner whose extension a schema carries (to switch it off in tests and benchmarks)."""
    for extension in getattr(schema, "extensions", None) or ():
        planner = getattr(extension, "__self__", None)
        if isinstance(planner, OperationPlanner):
            return planner
    return None


def _recorder(answered: list[int], number: int) -> Callable[[Any], None]:
    def record(_: Any) -> None:
        answered.append(number)

    return record


__all__ = ["OperationPlanner", "PlannedExecution", "PlannedOperation", "planner_of"]
