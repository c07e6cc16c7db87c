"""`HubResolvers`: the root and family resolvers wired into the Strawberry schemas.

Every family field follows the same stages: selected sub-fields → policy decision for this
subject (purpose, and consent for natural persons' AUTHORIZED data; denied fields recorded,
never fetched) → the client's anti-harvesting cap for AUTHORIZED data → batched loads from every
source connector → row rules (publicity window, review gate) → newest first → objection flag
and masking (on copies: cached records are shared) → released fields recorded for the audit.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import strawberry
from graphql import GraphQLResolveInfo

from xinlian.connectors.contract import ConnectorError, Record
from xinlian.policies.engine import Reason
from xinlian.policies.model import DisclosureClass
from xinlian.schema.catalogue import FAMILIES, REGISTRATION, RecordFamily
from xinlian.schema.graphql import OBJECTION_FLAG, CatalogueEntry
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc
from xinlian.schema.text import InvalidText, validate_text

from .access_log_field import my_access_log
from .errors import bad_user_input, forbidden, upstream
from .plan import REVIEW_FIELD, WINDOWED_FAMILIES, FamilyPlan, SubjectGrant
from .request import RequestContext
from .selection import generic_path, subfields

MAX_SEARCH_TEXT = 50
# review statuses under which a record may be shown to callers the public row rules apply to;
# any other value, or null, means the record awaits review at its source (fail closed)
REVIEWED = frozenset({"approved", "reviewed", "已审核", "审核通过", "通过"})


@dataclass
class LegalPersonRoot:
    uscc: str
    registration: list[Record] | list[ConnectorError] = field(default_factory=list)
    registration_fields: frozenset[str] = frozenset()  # what the root load asked for


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

    def _rows(self, ctx: RequestContext, family: RecordFamily, records: list[Record], grant: SubjectGrant) -> list[Record]:
        """Row rules for callers outside government: publicity window and review gate (fail closed)."""
        if ctx.applies_publicity_window:
            if family.name in WINDOWED_FAMILIES:
                records = [r for r in records if ctx.window.shows(r, ctx.today)]
            if REVIEW_FIELD in family.field_names:
                if not grant.allows(ctx, family.name, REVIEW_FIELD):
                    records = []  # the gate cannot be checked for this caller: nothing is shown
                else:
                    records = [r for r in records if REVIEW_FIELD not in r or r[REVIEW_FIELD] in REVIEWED]
        return _newest_first(family, records)

    def _present(self, ctx: RequestContext, family: RecordFamily, subject: str, plan: FamilyPlan, records: list[Record]) -> list[Record]:
        """Copies of the records holding only this subject's allowed fields (a batch fetch may hold
        more, asked for a sibling subject under another grant), masked, with the objection flag."""
        if not records:
            return records
        flag = family.record_key is not None and ctx.objections is not None
        disputed = ctx.disputed(subject, family.name) if flag else set()
        known = ctx.objections_known(subject)
        out: list[Record] = []
        for record in records:
            shown = {name: record.get(name) for name in plan.allowed}
            for name, mask in plan.masks:
                shown[name] = mask(shown.get(name))
            if flag:
                ref = record.get(family.record_key)  # type: ignore[arg-type]
                shown[OBJECTION_FLAG] = None if ref is None or not known else str(ref) in disputed
            out.append(shown)
        ctx.masked.update(f"{family.name}.{f}" for f, _ in plan.masks)
        return out

    def _release(self, ctx: RequestContext, family: RecordFamily, allowed: list[str], records: list[Record]) -> None:
        if records:
            ctx.released.update(f"{family.name}.{f}" for f in allowed)

    def _selection(self, info: strawberry.Info, family: RecordFamily) -> tuple[list[str], tuple[str, ...]]:
        raw = _raw(info)
        names = _GRAPHQL_TO_FIELD[family.name]
        selected = [names[n] for n in subfields(raw) if n in names]
        return selected, generic_path(raw)

    def _field_path(self, family: RecordFamily, path: tuple[str, ...], field_name: str) -> tuple[str, ...]:
        return path + ("@",) * family.many + (family.field(field_name).graphql_name,)

    def _apply(self, ctx: RequestContext, family: RecordFamily, plan: FamilyPlan, path: tuple[str, ...]) -> None:
        """Record the plan's denials; refuse the whole family when nothing of it may be released."""
        if plan.refused is not None:
            ctx.denied.update(f"{family.name}.{d.field}" for d in plan.denied)
            raise forbidden(family.name, plan.refused.disclosure, plan.refused.reason)
        for d in plan.denied:
            ctx.deny(self._field_path(family, path, d.field), family.name, d.field, reason=d.reason, disclosure=d.disclosure)

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
        natural = isinstance(root, NaturalPersonRoot)
        key = root.id_number if natural else root.uscc
        consented = natural and ctx.needs_consent(family.name, selected) and await ctx.consented(key)
        grant = SubjectGrant(natural_person=natural, consented=consented)
        plan = ctx.plan(family, tuple(selected), grant)
        if plan.authorized and plan.refused is None and not await ctx.admit_authorized(key):
            grant = dataclasses.replace(grant, admitted=False)
            plan = ctx.plan(family, tuple(selected), grant)
        self._apply(ctx, family, plan, path)
        allowed = list(plan.allowed)
        if family is REGISTRATION and plan.fetch <= root.registration_fields:
            outcome: list[Any] = root.registration
        else:
            outcome = (await self._load(ctx, family, [key], plan.fetch))[key]
        if outcome and isinstance(outcome[0], ConnectorError):
            ctx.upstream_failures.update(f.department for f in outcome)
            raise upstream(outcome)
        records = self._present(ctx, family, key, plan, self._rows(ctx, family, outcome, grant))
        self._release(ctx, family, allowed, records)
        if family.many:
            return records
        return records[0] if records else None

    def subject_name_resolver(self) -> Any:
        resolvers = self

        async def resolve_name(root: Any, info: strawberry.Info) -> Optional[str]:
            ctx = _context(info)
            path = generic_path(_raw(info))
            decision = ctx.decision("registration", "name")
            refused = not decision.allowed or (
                decision.disclosure is DisclosureClass.AUTHORIZED and not await ctx.admit_authorized(root.uscc)
            )
            if refused:
                ctx.deny(path, "registration", "name", reason=None if not decision.allowed else Reason.SUBJECT_CAP.value)
                return None
            outcome = root.registration
            if "name" not in root.registration_fields:  # AUTHORIZED names are fetched after the cap
                outcome = (await resolvers._load(ctx, REGISTRATION, [root.uscc], frozenset({"name"})))[root.uscc]
            if outcome and isinstance(outcome[0], ConnectorError):
                raise upstream(outcome)
            if not outcome:
                return None
            ctx.released.add("registration.name")
            if decision.mask is None:
                return outcome[0].get("name")
            ctx.masked.add("registration.name")
            return decision.mask(outcome[0].get("name"))

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
        # AUTHORIZED registration fields are left to the family resolver: they wait for the cap
        fields = frozenset(
            f for f in wanted
            if ctx.may_receive("registration", f)
            and ctx.decision("registration", f).disclosure is not DisclosureClass.AUTHORIZED
        )
        unique = list(dict.fromkeys(codes))
        if not ctx.reserve_subjects(len(codes)):
            raise bad_user_input(f"a request may ask for at most {ctx.batch_limit} subjects in all", argument="subjects")
        ctx.subjects.update(unique)  # named in the audit entry even if the load below fails
        loaded, _ = await asyncio.gather(self._load(ctx, REGISTRATION, unique, fields), ctx.load_objections(unique))
        out: list[LegalPersonRoot | None] = []
        for code in codes:
            outcome = loaded[code]
            out.append(LegalPersonRoot(code, outcome, fields) if outcome else None)
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
            await ctx.load_objections([code])
            return NaturalPersonRoot(code)

        async def search_legal_persons(name: str, info: strawberry.Info, first: Optional[int] = 10) -> Any:
            ctx = _context(info)
            try:  # NUL, control characters and lone surrogates never reach a department
                text = validate_text(name).strip()
            except InvalidText as exc:
                raise bad_user_input(f"name: {exc}", argument="name") from None
            limit = 10 if first is None else first
            if not text or len(text) > MAX_SEARCH_TEXT:
                raise bad_user_input(f"name: give 1 to {MAX_SEARCH_TEXT} characters", argument="name")
            if not 1 <= limit <= ctx.search_limit:
                raise bad_user_input(f"first: between 1 and {ctx.search_limit}", argument="first")
            if not ctx.may_receive(REGISTRATION.name, "name"):
                ctx.denied.add("registration.name")
                decision = ctx.decision("registration", "name")
                raise forbidden("registration", decision.disclosure.value, decision.reason.value)
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
            "my_access_log": my_access_log,
        }
