"""Strawberry types built from the catalogue: the full schema and policy-derived contracts.

`build_schema(visible, resolvers)` makes one `strawberry.Schema` in which only the fields for
which `visible(family, field)` is true exist. The authenticated endpoint uses every field
(denied ones come back null with an error); the public endpoint's *contract* schema is built
with `visible` = "PUBLIC under the active policy", so non-public fields do not exist there at
all, in validation or introspection.

Record fields are plain attributes read from dict records (no per-field resolver): permission
logic sits on the family fields, where the executor decides before anything is fetched.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from .catalogue import FAMILIES, RecordFamily, SubjectKind, ValueType, families_for
from .credit import CreditListing

log = logging.getLogger("xinlian.schema")

Visible = Callable[[str, str], bool]
Resolver = Callable[..., Any]

PYTHON_TYPES: dict[ValueType, type] = {
    ValueType.STRING: str,
    ValueType.DATE: dt.date,
    ValueType.DECIMAL: decimal.Decimal,
    ValueType.INT: int,
}


def read_attribute(obj: Any, name: str) -> Any:
    """Default resolver: records are dicts, subjects are objects."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


class SchemaResolvers(Protocol):
    """What the executor supplies to the schema: one resolver per root and family field, and the
    Strawberry extensions its execution needs (the hub's: the planned executor of hot shapes)."""

    def root_fields(self) -> dict[str, Resolver]: ...

    def family_resolver(self, family: RecordFamily) -> Resolver: ...

    def subject_name_resolver(self) -> Resolver: ...

    def execution_extensions(self) -> list[Any]: ...

    def credit_fields(self, public: bool) -> dict[str, Any]: ...

    def credit_mutations(self) -> dict[str, Any]: ...

    def case_fields(self, public: bool) -> dict[str, Any]: ...

    def case_mutations(self, public: bool) -> dict[str, Any]: ...

    def listings_resolver(self) -> Resolver: ...


@strawberry.type(description="One field of the district's credit data catalogue (信用档案目录).")
class CatalogueEntry:
    family: str = strawberry.field(description="Record family (policy key).")
    family_label: str = strawberry.field(description="Chinese name of the record family.")
    type_name: str = strawberry.field(description="GraphQL type holding the field.")
    field_name: str = strawberry.field(description="GraphQL field name.")
    value_type: str = strawberry.field(description="Value type: String, Date, Decimal or Int.")
    label: str = strawberry.field(description="Chinese data item name.")
    disclosure_class: str = strawberry.field(description="PUBLIC, SHARED, AUTHORIZED or CONFIDENTIAL.")
    source_departments: list[str] = strawberry.field(description="Departments that supply the field.")
    description: str = strawberry.field(description="What the field holds.")


@strawberry.type(
    description=(
        "One access of the calling subject's data (信用主体查询记录), from the hub's audit trail. "
        "Fields are those of the whole request: a request about several subjects lists every "
        "field it released."
    )
)
class AccessLogEntry:
    seq: int = strawberry.field(description="The audit entry's sequence number; pass it as `before` for older entries.")
    at: dt.datetime = strawberry.field(description="When the request was answered (UTC).")
    request_id: str = strawberry.field(description="The request's id (X-Request-Id), to quote in an objection or complaint.")
    client_id: Optional[str] = strawberry.field(description="The client that asked; null for the anonymous public.")
    client_name: Optional[str] = strawberry.field(description="The client's registered name; null for the public.")
    client_kind: Optional[str] = strawberry.field(description="department, bank, agency, platform, admin, subject, or public.")
    endpoint: str = strawberry.field(description="/graphql, /public/graphql, or /admin/graphql (a policy dry run).")
    purpose: Optional[str] = strawberry.field(description="The purpose the client declared, if any.")
    released: list[str] = strawberry.field(description="family.field names released in the request.")
    masked: list[str] = strawberry.field(description="family.field names released masked.")
    denied: list[str] = strawberry.field(description="family.field names asked for and refused.")
    outcome: str = strawberry.field(description="ok, partial, error or rejected.")
    policy_version: str = strawberry.field(description="The disclosure policy version that decided the fields.")


class CreditSchema(strawberry.Schema):
    """A Strawberry schema that logs only unexpected errors (with their traceback).

    Expected errors (bad input, forbidden fields, unavailable departments) carry an
    `extensions.code` and are part of the response, not of the server log.
    """

    def get_extensions(self, sync: bool = False) -> list[SchemaExtension]:
        """The request's extensions; one that awaits (`asynchronous_only`, the hub's planned
        executor) stays out of synchronous execution (`execute_sync`: introspection)."""
        extensions = super().get_extensions(sync)
        if sync:
            extensions = [e for e in extensions if not getattr(e, "asynchronous_only", False)]
        return extensions

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError):
                log.error("unexpected error at %s", error.path, exc_info=original)


OBJECTION_FLAG = "under_objection"  # set by the hub's row rules on records of keyed families


@dataclass(frozen=True)
class BuiltTypes:
    record_types: dict[str, type]
    legal_person: type
    natural_person: type


def _record_type(family: RecordFamily, visible: Visible) -> type | None:
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for spec in family.fields:
        if not visible(family.name, spec.name):
            continue
        annotations[spec.name] = Optional[PYTHON_TYPES[spec.type]]
        namespace[spec.name] = strawberry.field(default=None, description=f"{spec.label}. {spec.description}")
    if not annotations:
        return None
    if family.record_key is not None:
        annotations[OBJECTION_FLAG] = Optional[bool]
        namespace[OBJECTION_FLAG] = strawberry.field(
            default=None,
            description=(
                "异议标注: true while an objection to this record is open (the record is disputed and "
                "being verified); null when the record's key could not be read."
            ),
        )
    namespace["__annotations__"] = annotations
    cls = type(family.type_name, (), namespace)
    return strawberry.type(cls, description=f"{family.label}. {family.description}")


def _family_visible(family: RecordFamily, visible: Visible) -> bool:
    return any(visible(family.name, name) for name in family.field_names)


def _subject_type(
    name: str,
    description: str,
    key_field: str,
    key_description: str,
    kind: SubjectKind,
    record_types: dict[str, type],
    resolvers: SchemaResolvers,
    with_name: bool,
) -> type:
    annotations: dict[str, Any] = {key_field: str}
    namespace: dict[str, Any] = {key_field: strawberry.field(description=key_description)}
    if with_name:
        namespace["name"] = strawberry.field(
            resolver=resolvers.subject_name_resolver(),
            graphql_type=Optional[str],
            description="主体名称 (from the registration record).",
        )
    namespace["listings"] = strawberry.field(
        resolver=resolvers.listings_resolver(),
        graphql_type=list[CreditListing],
        description="The subject's current listings (严重失信主体名单 first, then 守信激励名单): list, basis, dates, deciding department.",
    )
    for family in families_for(kind):
        # Any, not type: mypy reads Optional[...] and list[...] as type expressions and refuses a
        # variable of type `type` inside them (valid-type); at run time they are plain typing objects.
        record_type: Any = record_types.get(family.name)
        if record_type is None:
            continue
        graphql_type = Optional[list[record_type]] if family.many else Optional[record_type]
        namespace[family.name] = strawberry.field(
            resolver=resolvers.family_resolver(family),
            graphql_type=graphql_type,
            description=f"{family.label}. {family.description}",
        )
    namespace["__annotations__"] = annotations
    return strawberry.type(type(name, (), namespace), description=description)


def build_types(visible: Visible, resolvers: SchemaResolvers) -> BuiltTypes:
    record_types = {
        name: t for name, family in FAMILIES.items() if (t := _record_type(family, visible)) is not None
    }
    legal = _subject_type(
        "LegalPerson",
        "A legal person or other organisation (法人和非法人组织), federated from every department.",
        "uscc",
        "统一社会信用代码 (GB 32100-2015).",
        SubjectKind.LEGAL_PERSON,
        record_types,
        resolvers,
        with_name=visible("registration", "name"),
    )
    natural = _subject_type(
        "NaturalPerson",
        "A natural person (自然人).",
        "id_number",
        "公民身份号码 (GB 11643-1999).",
        SubjectKind.NATURAL_PERSON,
        record_types,
        resolvers,
        with_name=False,
    )
    return BuiltTypes(record_types, legal, natural)


def build_schema(
    visible: Visible,
    resolvers: SchemaResolvers,
    *,
    include_catalogue: bool = True,
    include_access_log: bool = False,
    extensions: list[Any] | None = None,
    public_contract: bool = True,
) -> strawberry.Schema:
    """A Strawberry schema exposing only the visible fields, wired to the executor's resolvers.

    `include_access_log` adds `myAccessLog` (root resolver "my_access_log"): the authenticated
    full schema has it, the public contract never does. A public contract (`public_contract`)
    has of the credit governance fields only the lists (`resolvers.credit_fields(public)`), of the
    case fields and mutations only the complaint's (`resolvers.case_fields(public)`: filing one,
    following it by its tracking code); the full schema has them all and the mutations of
    `resolvers.credit_mutations()` and `resolvers.case_mutations(False)`.
    """
    built = build_types(visible, resolvers)
    root = resolvers.root_fields()
    # Any for the same reason as in _subject_type: built at run time, used inside Optional[...].
    L: Any = built.legal_person
    N: Any = built.natural_person
    namespace: dict[str, Any] = {
        "legal_person": strawberry.field(
            resolver=root["legal_person"], graphql_type=Optional[L],
            description="One legal person by unified social credit code; null if no department knows it.",
        ),
        "legal_persons": strawberry.field(
            resolver=root["legal_persons"], graphql_type=Optional[list[Optional[L]]],
            description="Many legal persons at once (batch), in the order asked.",
        ),
        "natural_person": strawberry.field(
            resolver=root["natural_person"], graphql_type=Optional[N],
            description="One natural person by resident identity number.",
        ),
        "search_legal_persons": strawberry.field(
            resolver=root["search_legal_persons"], graphql_type=Optional[list[L]],
            description="Legal persons whose registered name contains `name`.",
        ),
    }
    if include_catalogue:
        namespace["catalogue"] = strawberry.field(
            resolver=root["catalogue"], graphql_type=list[CatalogueEntry],
            description="The district's credit data catalogue: every field, its class and its sources.",
        )
    if include_access_log:
        namespace["my_access_log"] = strawberry.field(
            resolver=root["my_access_log"], graphql_type=list[AccessLogEntry],
            description=(
                "Who accessed the calling subject's data, newest first (only for a client of kind "
                "`subject`, which speaks for one credit subject). `first`: 1 to 200; `before`: "
                "the `seq` of the last entry of the previous page."
            ),
        )
    namespace.update(resolvers.credit_fields(public=public_contract))
    namespace.update(resolvers.case_fields(public=public_contract))
    namespace["__annotations__"] = {}
    query = strawberry.type(type("Query", (), namespace), description="Xinlian credit information queries.")
    changes = {
        **({} if public_contract else resolvers.credit_mutations()),
        **resolvers.case_mutations(public=public_contract),
    }
    mutation = None
    if changes:
        mutation = strawberry.type(
            type("Mutation", (), {**changes, "__annotations__": {}}),
            description=(
                "Complaints and reports from the public: one per request, audited first." if public_contract else
                "Credit governance and case changes by departments, subjects and checking units: one per request, audited first."
            ),
        )
    return CreditSchema(
        query=query,
        mutation=mutation,
        config=StrawberryConfig(default_resolver=read_attribute),
        # the executor's own last: they run after the limits, the parse and the validation
        extensions=[*(extensions or []), *resolvers.execution_extensions()],
    )
