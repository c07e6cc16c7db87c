"""`HubResolvers`: the root and family resolvers wired into the Strawberry schemas.

Root fields are thin: the subjects they name are admitted by `SubjectAdmission`
(hub/executor/admission.py: identifiers, budget, audit, objections, existence).

Every family field follows the same stages: selected sub-fields → policy decision for this
subject (purpose, and consent for natural persons' AUTHORIZED data; denied fields recorded,
never fetched) → the client's anti-harvesting cap for AUTHORIZED data → batched loads from every
source connector → the row rules the policy puts in force for the caller (e.g. publicity window,
review gate, validity window; `policies.rules`) → newest first → record annotations (e.g. the
objection flag) and masking (on copies: cached records are shared) → released fields recorded
for the audit.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Optional

import strawberry
from graphql import GraphQLResolveInfo

from xinlian.connectors.contract import ConnectorError, Record
from xinlian.policies.engine import Decision, Reason
from xinlian.policies.model import DisclosureClass
from xinlian.schema.catalogue import FAMILIES, REGISTRATION, RecordFamily
from xinlian.schema.graphql import CatalogueEntry
from xinlian.schema.text import InvalidText, validate_text

from . import case_fields, credit_fields
from .access_log_field import my_access_log
from .admission import LegalPersonRoot, NaturalPersonRoot, SubjectAdmission
from .errors import bad_user_input, forbidden, upstream
from .loader import load_records
from .plan import FamilyPlan, SubjectGrant
from .planned import OperationPlanner
from .request import RequestContext
from .selection import family_selection, generic_path, registration_selection

MAX_SEARCH_TEXT = 50

__all__ = ["HubResolvers", "LegalPersonRoot", "NaturalPersonRoot"]


def _raw(info: strawberry.Info) -> GraphQLResolveInfo:
    return info._raw_info


def _context(info: strawberry.Info) -> RequestContext:
    return info.context


NAME_ONLY = frozenset({"name"})  # what the `name` resolver asks the registry for when it was not preloaded


def preloaded(family: RecordFamily, plan: FamilyPlan, root: Any) -> bool:
    """The admission already loaded what the plan fetches (a legal person's registration)."""
    return family is REGISTRATION and plan.fetch <= root.registration_fields


def _newest_first(family: RecordFamily, records: list[Record]) -> list[Record]:
    if family.recency is None:
        return records
    if len(records) < 2:
        return records[:]
    key = family.recency
    with_value = [r for r in records if r.get(key) is not None]
    without = [r for r in records if r.get(key) is None]
    return sorted(with_value, key=lambda r: r[key], reverse=True) + without


class HubResolvers:
    """Implements `schema.graphql.SchemaResolvers` for the hub."""

    def __init__(self, admission: SubjectAdmission | None = None) -> None:
        self.admission = admission or SubjectAdmission()
        self.planner = OperationPlanner(self)

    def execution_extensions(self) -> list[Any]:
        """Every schema built on these resolvers answers hot shapes with the planned executor."""
        return [self.planner.extension]

    def credit_fields(self, public: bool) -> dict[str, Any]:
        """The credit governance root fields (hub/executor/credit_fields.py)."""
        return credit_fields.query_fields(public)

    def credit_mutations(self) -> dict[str, Any]:
        return credit_fields.mutation_fields()

    def case_fields(self, public: bool) -> dict[str, Any]:
        """The case root fields (hub/executor/case_fields.py): on the public contract, complaints only."""
        return case_fields.query_fields(public)

    def case_mutations(self, public: bool) -> dict[str, Any]:
        return case_fields.mutation_fields(public)

    def listings_resolver(self) -> Any:
        return credit_fields.subject_listings

    # ---- stages shared by every family -------------------------------------------------
    def _rows(
        self, ctx: RequestContext, family: RecordFamily, subject: str, records: list[Record], plan: FamilyPlan
    ) -> list[Record]:
        """The row rules in force for this caller, with the subject's facts (approved credit repairs)
        (none shown if one cannot be checked), newest first."""
        ctx.findings.rules_applied.update(plan.applied)
        if plan.unchecked:
            records = []  # a rule reads a field this caller may not receive: fail closed
        elif plan.rows and records:
            facts, today = ctx.facts(subject), ctx.today
            keepers = [rule.keeper(family, facts, today) for rule in plan.rows]  # once per subject
            records = [r for r in records if all(keep(r) for keep in keepers)]
        return _newest_first(family, records)

    def _present(self, ctx: RequestContext, family: RecordFamily, subject: str, plan: FamilyPlan, records: list[Record]) -> list[Record]:
        """Copies of the records holding only this subject's allowed fields (a batch fetch may hold
        more, asked for a sibling subject under another grant), masked, with their annotations."""
        if not records:
            return records
        annotators = []
        if plan.annotations:
            facts = ctx.facts(subject)
            annotators = [(a.output, a.annotator(family, facts)) for a in plan.annotations]  # once per subject
        allowed, masks = plan.allowed, plan.masks
        out: list[Record] = []
        for record in records:
            shown = {name: record.get(name) for name in allowed}
            for name, mask in masks:
                shown[name] = mask(shown.get(name))
            for output, annotate in annotators:
                shown[output] = annotate(record)
            out.append(shown)
        if plan.masked:
            ctx.findings.masked.update(plan.masked)
        return out

    def _release(self, ctx: RequestContext, plan: FamilyPlan, records: list[Record]) -> None:
        if records:
            ctx.findings.released.update(plan.released)

    def _selection(self, info: strawberry.Info, family: RecordFamily) -> tuple[list[str], tuple[str, ...]]:
        raw = _raw(info)
        return family_selection(raw, family), generic_path(raw)

    def _field_path(self, family: RecordFamily, path: tuple[str, ...], field_name: str) -> tuple[str, ...]:
        return path + ("@",) * family.many + (family.field(field_name).graphql_name,)

    def _apply(self, ctx: RequestContext, family: RecordFamily, plan: FamilyPlan, path: tuple[str, ...]) -> None:
        """Record the plan's denials; refuse the whole family when nothing of it may be released."""
        if plan.refused is not None:
            ctx.findings.denied.update(f"{family.name}.{d.field}" for d in plan.denied)
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
        if preloaded(family, plan, root):
            outcome: list[Any] = root.registration
        else:
            outcome = (await load_records(ctx, family, [key], plan.fetch))[key]
        return self.family_value(ctx, family, key, plan, outcome)

    def family_value(self, ctx: RequestContext, family: RecordFamily, key: str, plan: FamilyPlan, outcome: list[Any]) -> Any:
        """A family field's value from its sources' outcome (records, or the failures that make it an
        error): the row rules, newest first, the subject's allowed fields masked and annotated, the
        released fields recorded. Shared by this resolver and the planned executor (planned.py)."""
        if outcome and isinstance(outcome[0], ConnectorError):
            raise upstream(outcome)
        records = self._present(ctx, family, key, plan, self._rows(ctx, family, key, outcome, plan))
        self._release(ctx, plan, records)
        if family.many:
            return records
        return records[0] if records else None

    def subject_name_resolver(self) -> Any:
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
                outcome = (await load_records(ctx, REGISTRATION, [root.uscc], NAME_ONLY))[root.uscc]
            return self.name_value(ctx, decision, outcome)

        return resolve_name

    def name_value(self, ctx: RequestContext, decision: Decision, outcome: list[Any]) -> Optional[str]:
        """A subject's `name` from its registration outcome (shared with the planned executor)."""
        if outcome and isinstance(outcome[0], ConnectorError):
            raise upstream(outcome)
        if not outcome:
            return None
        ctx.findings.released.add("registration.name")
        if decision.mask is None:
            return outcome[0].get("name")
        ctx.findings.masked.add("registration.name")
        return decision.mask(outcome[0].get("name"))

    # ---- root fields ------------------------------------------------------------------
    def _registration_selection(self, info: strawberry.Info) -> set[str]:
        return registration_selection(_raw(info))

    def root_fields(self) -> dict[str, Any]:
        resolvers = self
        admission = self.admission

        async def legal_person(uscc: str, info: strawberry.Info) -> Any:
            selected = resolvers._registration_selection(info)
            return await admission.admit_legal_person(_context(info), uscc, "uscc", selected)

        async def legal_persons(usccs: list[str], info: strawberry.Info) -> Any:
            selected = resolvers._registration_selection(info)
            return await admission.admit_legal_persons(_context(info), usccs, "usccs", selected)

        async def natural_person(id_number: str, info: strawberry.Info) -> Any:
            return await admission.admit_natural_person(_context(info), id_number, "idNumber")

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
                ctx.findings.denied.add("registration.name")
                decision = ctx.decision("registration", "name")
                raise forbidden("registration", decision.disclosure.value, decision.reason.value)
            sources = ctx.federation.sources(REGISTRATION.name)
            ctx.caches.called.update(d.connector.department for d in sources)  # for the audit entry's `asked`
            results = await asyncio.gather(
                *(d.link.search(REGISTRATION.name, text, limit, deadline=ctx.deadline) for d in sources),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, ConnectorError)]
            if failures:
                raise upstream(failures)
            found_keys: list[str] = []
            for r in results:
                if isinstance(r, BaseException):
                    raise r
                found_keys.extend(r)
            keys = list(dict.fromkeys(found_keys))[:limit]
            found = await admission.admit_found_legal_persons(ctx, keys, resolvers._registration_selection(info))
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
