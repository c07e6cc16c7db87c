"""`SubjectAdmission`: how the credit subjects a request names are let into it.

Every root field that names subjects (`legalPerson`, `legalPersons`, `naturalPerson`, the results
of `searchLegalPersons`) — and any future entity resolver, such as a federation subgraph's
`_entities` — admits them through this one service, in this order:

1. **shape**: a list argument holds at most the request's batch limit of identifiers;
2. **validation**: unified social credit codes (GB 32100-2015) and resident identity numbers
   (GB 11643-1999), check characters included, before any connector is called;
3. **budget**: the request's subject budget, counted across every root field and alias, repeated
   identifiers included (`RequestContext.reserve_subjects`);
4. **audit**: the subjects are recorded (`ctx.findings.subjects`), so the audit entry names them even if
   a load below fails;
5. **subject facts**: the hub-owned facts about them are read once for the batch — the open
   objections against their records (the objection flag) and their approved credit repairs (the
   publicity window ends display on them);
6. **existence**: a legal person is looked up in the registry of its *registration authority*
   (position 1 of the USCC: 9 market regulation, 5 civil affairs, 1 establishment offices, Y
   others, …), one batch per registry, carrying the registration fields the caller selected and
   may receive without the anti-harvesting cap. Which connectors are an authority's registry is
   data (`registries`, authority code → connector names; see `parse_registries`); by default
   authority 9 is answered by every source of `registration` and the others have no registry.
   A code its registry answers for and does not know is `None`; if the registry is down the
   subject is admitted and its registration carries the failure. A code whose authority has no
   configured registry is admitted (not `None`): a subject exists if any department holds records
   on it, and its record families answer for themselves (empty lists when none do).

Refusals are GraphQL errors with `extensions.code` `BAD_USER_INPUT` and `extensions.argument`
naming the argument (`subjects` for the budget); a list's invalid entries are reported together
(the first ten, `extensions.invalid` counting all of them).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Callable, Collection, Sequence

from xinlian.connectors.contract import ConnectorError, Record
from xinlian.policies.model import DisclosureClass
from xinlian.schema.catalogue import REGISTRATION, RecordFamily
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

from .errors import bad_user_input
from .loader import load_records
from .registries import DEFAULT_REGISTRIES, parse_registries  # noqa: F401  (re-exported)
from .request import RequestContext

MAX_REPORTED = 10  # invalid entries of a list named in the error message
VALID_CODES_KEPT = 16_384  # valid USCCs whose check characters are not computed again (about 4 MiB)


@functools.lru_cache(maxsize=VALID_CODES_KEPT)
def _known_valid_uscc(value: str) -> str:
    return validate_uscc(value)  # raises for an invalid code: only valid ones are kept


def valid_uscc(value: str) -> str:
    """`validate_uscc`, remembered for valid codes (a pure function of the text; batches repeat
    the same codes, and the check characters cost more than a look-up)."""
    return _known_valid_uscc(value) if type(value) is str else validate_uscc(value)


@dataclass
class LegalPersonRoot:
    """An admitted legal person: its code and the registration records the admission loaded."""

    uscc: str
    registration: list[Record] | list[ConnectorError] = field(default_factory=list)
    registration_fields: frozenset[str] = frozenset()  # what the admission asked the registry for


@dataclass
class NaturalPersonRoot:
    """An admitted natural person (there is no registry of natural persons to consult)."""

    id_number: str


def _validated(values: Sequence[str], argument: str, validate: Callable[[str], str]) -> list[str]:
    problems: list[str] = []
    out: list[str] = []
    for i, value in enumerate(values):
        try:
            out.append(validate(value))
        except InvalidIdentifier as exc:
            problems.append(f"{argument}[{i}]: {exc}")
    if problems:
        raise bad_user_input("; ".join(problems[:MAX_REPORTED]), argument=argument, invalid=len(problems))
    return out


def _one(value: str, argument: str, validate: Callable[[str], str]) -> str:
    try:
        return validate(value)
    except InvalidIdentifier as exc:
        raise bad_user_input(f"{argument}: {exc}", argument=argument) from None


class SubjectAdmission:
    """Admits subjects into a request (see the module docstring for the stages)."""

    def __init__(self, registry: RecordFamily = REGISTRATION) -> None:
        self.registry = registry

    # ---- legal persons --------------------------------------------------------------------
    async def admit_legal_person(
        self, ctx: RequestContext, value: str, argument: str, registration: Collection[str] = ()
    ) -> LegalPersonRoot | None:
        """One USCC given as `argument`; None if the registry does not know it."""
        code = _one(value, argument, valid_uscc)
        return (await self._admit_legal(ctx, [code], registration))[0]

    async def admit_legal_persons(
        self, ctx: RequestContext, values: Sequence[str], argument: str, registration: Collection[str] = ()
    ) -> list[LegalPersonRoot | None]:
        """A list of USCCs given as `argument`, in order (None for each code the registry does not know)."""
        if len(values) > ctx.batch_limit:
            raise bad_user_input(
                f"{argument}: at most {ctx.batch_limit} codes per request, got {len(values)}", argument=argument
            )
        codes = _validated(values, argument, valid_uscc)
        return await self._admit_legal(ctx, codes, registration)

    async def admit_found_legal_persons(
        self, ctx: RequestContext, codes: Sequence[str], registration: Collection[str] = ()
    ) -> list[LegalPersonRoot | None]:
        """Codes a registry search returned (the registry's own keys, not the caller's input)."""
        return await self._admit_legal(ctx, list(codes), registration)

    # ---- natural persons ------------------------------------------------------------------
    async def admit_natural_person(self, ctx: RequestContext, value: str, argument: str) -> NaturalPersonRoot:
        """One resident identity number given as `argument`."""
        code = _one(value, argument, validate_resident_id)
        self._reserve(ctx, [code])
        await ctx.load_subject_facts([code])
        return NaturalPersonRoot(code)

    # ---- stages ---------------------------------------------------------------------------
    def _reserve(self, ctx: RequestContext, codes: list[str]) -> list[str]:
        """Count the codes against the request's budget and record them for the audit."""
        if not ctx.reserve_subjects(len(codes)):
            raise bad_user_input(f"a request may ask for at most {ctx.batch_limit} subjects in all", argument="subjects")
        unique = list(dict.fromkeys(codes))
        ctx.findings.subjects.update(unique)  # named in the audit entry even if a load below fails
        return unique

    def preloaded_fields(self, ctx: RequestContext, selected: Collection[str]) -> frozenset[str]:
        """The selected registration fields the existence check may fetch: those the caller may
        receive, except AUTHORIZED ones, which wait for the anti-harvesting cap in the family resolver."""
        family = self.registry.name
        return frozenset(
            f for f in selected
            if f in self.registry.field_names
            and ctx.may_receive(family, f)
            and ctx.decision(family, f).disclosure is not DisclosureClass.AUTHORIZED
        )

    async def _admit_legal(
        self, ctx: RequestContext, codes: list[str], registration: Collection[str]
    ) -> list[LegalPersonRoot | None]:
        fields = self.preloaded_fields(ctx, registration)
        unique = self._reserve(ctx, codes)
        groups: dict[tuple[str, ...] | None, list[str]] = {}
        unregistered: set[str] = set()
        registries = ctx.federation.registries  # authority code → its registry (connectors.toml)
        for code in unique:
            authority = code[0]
            if authority not in registries:
                unregistered.add(code)  # no registry for its authority: admitted, families answer
                continue
            groups.setdefault(registries[authority], []).append(code)
        lookups = [self._look_up(ctx, names, keys, fields) for names, keys in groups.items()]
        answers, _ = await asyncio.gather(asyncio.gather(*lookups), ctx.load_subject_facts(unique))
        loaded: dict[str, list[Record] | list[ConnectorError] | None] = {}
        for answer in answers:
            loaded.update(answer)
        out: list[LegalPersonRoot | None] = []
        for code in codes:
            if code in unregistered:
                out.append(LegalPersonRoot(code))  # nothing preloaded: the registration resolver asks its sources
                continue
            outcome = loaded[code]
            if outcome is None:  # none of its registry's connectors is configured: as if no registry
                out.append(LegalPersonRoot(code))
            else:
                out.append(LegalPersonRoot(code, outcome, fields) if outcome else None)
        return out

    async def _look_up(
        self, ctx: RequestContext, names: tuple[str, ...] | None, codes: list[str], fields: frozenset[str]
    ) -> dict[str, list[Record] | list[ConnectorError] | None]:
        """Registration records of `codes` from the registry `names` (None: every registration source)."""
        if names is None:
            return dict(await load_records(ctx, self.registry, codes, fields))
        sources = [d for d in ctx.federation.sources(self.registry.name) if d.name in names]
        if not sources:
            return dict.fromkeys(codes)
        return dict(await load_records(ctx, self.registry, codes, fields, sources))
