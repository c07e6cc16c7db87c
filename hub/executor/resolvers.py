"""`HubResolvers`: the root and family resolvers wired into the Strawberry schemas.

Every family field follows the same stages: selected sub-fields → policy decision (denied
fields recorded, never fetched) → batched loads from every source connector → row rules →
newest first → released fields recorded for the audit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Optional

import strawberry
from graphql import GraphQLResolveInfo

from xinlian.connectors.contract import ConnectorError, Record
from xinlian.schema.catalogue import FAMILIES, REGISTRATION, RecordFamily
from xinlian.schema.graphql import CatalogueEntry
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

from .errors import bad_user_input, forbidden, upstream
from .request import RequestContext
from .selection import generic_path, subfields

WINDOWED_FAMILIES = frozenset({"penalties"})
MAX_SEARCH_TEXT = 50


@dataclass
class LegalPersonRoot:
    uscc: str
    registration: list[Record] | list[ConnectorError] = field(default_factory=list)


@dataclass
class NaturalPersonRoot:
    id_number: str


def _raw(info: strawberry.Info) -> GraphQLResolveInfo:
    return info._raw_info


def _context(info: strawberry.Info) -> RequestContext:
    return info.context


def _specs_by_graphql_name(family: RecordFamily) -> dict[str, str]:
    return {spec.graphql_name: spec.name for spec in family.fields}


_GRAPHQL_TO_FIELD = {name: _specs_by_graphql_name(f) for name, f in FAMILIES.items()}


def _newest_first(family: RecordFamily, records: list[Record]) -> list[Record]:
    if family.recency is None:
        return records
    key = family.recency
    with_value = [r for r in records if r.get(key) is not None]
    without = [r for r in records if r.get(key) is None]
    return sorted(with_value, key=lambda r: r[key], reverse=True) + without


class HubResolvers:
    """Implements `schema.graphql.SchemaResolvers` for the hub."""

    # ---- stages shared by every family -------------------------------------------------
    def _fetch_set(self, ctx: RequestContext, family: RecordFamily, allowed: list[str]) -> frozenset[str]:
        internal: set[str] = set()
        if family.recency:
            internal.add(family.recency)
        if ctx.applies_publicity_window and family.name in WINDOWED_FAMILIES:
            internal.update(ctx.window.fields)
        return frozenset(allowed) | {f for f in internal if ctx.may_receive(family.name, f)}

    async def _load(self, ctx: RequestContext, family: RecordFamily, keys: list[str], fields: frozenset[str]) -> dict[str, list[Record] | list[ConnectorError]]:
        """Records per key from every source; a key maps to its failures if any source failed."""
        sources = ctx.federation.sources(family.name)
        per_source = [
            [ctx.loader(d, family.name, fields).load(key, fields) for key in keys] for d in sources
        ]
        flat = await asyncio.gather(*(f for futures in per_source for f in futures), return_exceptions=True)
        out: dict[str, list[Any]] = {}
        for i, key in enumerate(keys):
            records: list[Record] = []
            failures: list[ConnectorError] = []
            for s in range(len(sources)):
                result = flat[s * len(keys) + i]
                if isinstance(result, ConnectorError):
                    failures.append(result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    records.extend(result)
            out[key] = failures if failures else records
        return out

    def _rows(self, ctx: RequestContext, family: RecordFamily, records: list[Record]) -> list[Record]:
        if ctx.applies_publicity_window and family.name in WINDOWED_FAMILIES:
            records = [r for r in records if ctx.window.shows(r, ctx.today)]
        return _newest_first(family, records)

    def _release(self, ctx: RequestContext, family: RecordFamily, allowed: list[str], records: list[Record]) -> None:
        if records:
            ctx.released.update(f"{family.name}.{f}" for f in allowed)

    def _selection(self, info: strawberry.Info, family: RecordFamily) -> tuple[list[str], tuple[str, ...]]:
        raw = _raw(info)
        names = _GRAPHQL_TO_FIELD[family.name]
        selected = [names[n] for n in subfields(raw) if n in names]
        return selected, generic_path(raw)

    def _decide(self, ctx: RequestContext, family: RecordFamily, selected: list[str], path: tuple[str, ...]) -> list[str]:
        """Allowed selected fields; denied ones are recorded, or the whole family is refused."""
        allowed = [f for f in selected if ctx.may_receive(family.name, f)]
        denied = [f for f in selected if f not in allowed]
        if not allowed and not any(ctx.may_receive(family.name, f) for f in family.field_names):
            # nothing of this family may reach the caller: not even whether records exist
            denied = denied or list(family.field_names)
        if denied and not allowed:
            ctx.denied.update(f"{family.name}.{f}" for f in denied)
            disclosure = ctx.decision(family.name, denied[0]).disclosure.value
            raise forbidden(family.name, disclosure)
        for f in denied:
            ctx.deny(path + ("@",) * family.many + (family.field(f).graphql_name,), family.name, f)
        return allowed

    # ---- family fields ----------------------------------------------------------------
    def family_resolver(self, family: RecordFamily) -> Any:
        resolvers = self

        async def resolve(root: Any, info: strawberry.Info) -> Any:
            return await resolvers.resolve_family(family, root, info)

        resolve.__name__ = f"resolve_{family.name}"
        return resolve

    async def resolve_family(self, family: RecordFamily, root: Any, info: strawberry.Info) -> Any:
        ctx = _context(info)
        selected, path = self._selection(info, family)
        allowed = self._decide(ctx, family, selected, path)
        if family is REGISTRATION:
            outcome: list[Any] = root.registration
        else:
            key = root.uscc if isinstance(root, LegalPersonRoot) else root.id_number
            outcome = (await self._load(ctx, family, [key], self._fetch_set(ctx, family, allowed)))[key]
        if outcome and isinstance(outcome[0], ConnectorError):
            ctx.upstream_failures.update(f.department for f in outcome)
            raise upstream(outcome)
        records = self._rows(ctx, family, outcome)
        self._release(ctx, family, allowed, records)
        if family.many:
            return records
        return records[0] if records else None

    def subject_name_resolver(self) -> Any:
        async def resolve_name(root: Any, info: strawberry.Info) -> Optional[str]:
            ctx = _context(info)
            path = generic_path(_raw(info))
            if not ctx.may_receive("registration", "name"):
                ctx.deny(path, "registration", "name")
                return None
            outcome = root.registration
            if outcome and isinstance(outcome[0], ConnectorError):
                raise upstream(outcome)
            if not outcome:
                return None
            ctx.released.add("registration.name")
            return outcome[0].get("name")

        return resolve_name

    # ---- root fields ------------------------------------------------------------------
    async def _legal_persons(self, info: strawberry.Info, codes: list[str], nodes: Any = None) -> list[LegalPersonRoot | None]:
        """Subjects for codes, checked against the registry (unknown → None) in one batch."""
        ctx = _context(info)
        raw = _raw(info)
        sub = subfields(raw, nodes)
        wanted: set[str] = set()
        names = _GRAPHQL_TO_FIELD["registration"]
        if "registration" in sub:
            wanted.update(names[n] for n in subfields(raw, sub["registration"]) if n in names)
        if "name" in sub:
            wanted.add("name")
        fields = frozenset(f for f in wanted if ctx.may_receive("registration", f))
        unique = list(dict.fromkeys(codes))
        if not ctx.reserve_subjects(len(codes)):
            raise bad_user_input(f"a request may ask for at most {ctx.batch_limit} subjects in all", argument="subjects")
        loaded = await self._load(ctx, REGISTRATION, unique, fields)
        ctx.subjects.update(unique)
        out: list[LegalPersonRoot | None] = []
        for code in codes:
            outcome = loaded[code]
            out.append(LegalPersonRoot(code, outcome) if outcome else None)
        return out

    def root_fields(self) -> dict[str, Any]:
        resolvers = self

        async def legal_person(uscc: str, info: strawberry.Info) -> Any:
            try:
                code = validate_uscc(uscc)
            except InvalidIdentifier as exc:
                raise bad_user_input(f"uscc: {exc}", argument="uscc") from None
            return (await resolvers._legal_persons(info, [code]))[0]

        async def legal_persons(usccs: list[str], info: strawberry.Info) -> Any:
            ctx = _context(info)
            if len(usccs) > ctx.batch_limit:
                raise bad_user_input(f"usccs: at most {ctx.batch_limit} codes per request, got {len(usccs)}", argument="usccs")
            codes, problems = [], []
            for i, value in enumerate(usccs):
                try:
                    codes.append(validate_uscc(value))
                except InvalidIdentifier as exc:
                    problems.append(f"usccs[{i}]: {exc}")
            if problems:
                raise bad_user_input("; ".join(problems[:10]), argument="usccs", invalid=len(problems))
            return await resolvers._legal_persons(info, codes)

        async def natural_person(id_number: str, info: strawberry.Info) -> Any:
            try:
                code = validate_resident_id(id_number)
            except InvalidIdentifier as exc:
                raise bad_user_input(f"idNumber: {exc}", argument="idNumber") from None
            ctx = _context(info)
            if not ctx.reserve_subjects(1):
                raise bad_user_input(f"a request may ask for at most {ctx.batch_limit} subjects in all", argument="subjects")
            ctx.subjects.add(code)
            return NaturalPersonRoot(code)

        async def search_legal_persons(name: str, info: strawberry.Info, first: Optional[int] = 10) -> Any:
            ctx = _context(info)
            text = name.strip()
            limit = 10 if first is None else first
            if not text or len(text) > MAX_SEARCH_TEXT:
                raise bad_user_input(f"name: give 1 to {MAX_SEARCH_TEXT} characters", argument="name")
            if not 1 <= limit <= ctx.search_limit:
                raise bad_user_input(f"first: between 1 and {ctx.search_limit}", argument="first")
            if not ctx.may_receive(REGISTRATION.name, "name"):
                ctx.denied.add("registration.name")
                raise forbidden("registration", ctx.decision("registration", "name").disclosure.value)
            sources = ctx.federation.sources(REGISTRATION.name)
            results = await asyncio.gather(
                *(d.link.search(REGISTRATION.name, text, limit, deadline=ctx.deadline) for d in sources),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, ConnectorError)]
            if failures:
                raise upstream(failures)
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            keys = list(dict.fromkeys(k for r in results for k in r))[:limit]
            found = await resolvers._legal_persons(info, keys)
            return [p for p in found if p is not None]

        def catalogue(info: strawberry.Info) -> list[CatalogueEntry]:
            ctx = _context(info)
            entries = []
            for family in FAMILIES.values():
                for spec in family.fields:
                    disclosure = ctx.decision(family.name, spec.name).disclosure
                    if ctx.public_endpoint and not ctx.may_receive(family.name, spec.name):
                        continue
                    entries.append(
                        CatalogueEntry(
                            family=family.name,
                            family_label=family.label,
                            type_name=family.type_name,
                            field_name=spec.graphql_name,
                            value_type=spec.type.value,
                            label=spec.label,
                            disclosure_class=disclosure.value,
                            source_departments=ctx.federation.departments_for(family.name, spec.name),
                            description=spec.description,
                        )
                    )
            return entries

        return {
            "legal_person": legal_person,
            "legal_persons": legal_persons,
            "natural_person": natural_person,
            "search_legal_persons": search_legal_persons,
            "catalogue": catalogue,
        }
