"""`DistrictRecords`: what credit governance reads of the departments, through the connectors.

Ratings and list rules read department records; the data stays at its sources. They read as
the credit office (`CREDIT_OFFICE`: a government principal with `credit:shared`), under the
policy in force — so only fields the policy lets government receive are fetched, and the
executor's batching, per-department resilience and PUBLIC cache apply as for any request.

`subjects(after, limit, families)` pages through the district's subjects: the keys of the
registration family, and of the list rules' families, from every connector that can enumerate
them (`EnumeratingConnector`: SQL sources).
`read(keys, needs)` loads, per subject, the records of each family the rules need — without
the records the policy's review gate holds back (awaiting review at their source): a decision
that reaches the public never rests on them — and without the records a reviewer REJECTED in the
review before publication (hub/cases/review.py; families of the policy's `publication-review`
rule, while `[cases.review]` is enabled). Records still pending there are read: the government's
own decisions may rest on a department's record that the public does not see yet. A subject
whose records could not all be read (a department down) comes back in `failed` with the
departments' names, so no rating or listing is decided on partial data.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from xinlian.connectors.contract import ConnectorError, Record
from xinlian.hub.executor.loader import load_records
from xinlian.hub.principal import Principal
from xinlian.policies.review import review_key, reviewed_families
from xinlian.policies.rules import RowRule
from xinlian.schema.catalogue import FAMILIES, REGISTRATION

from .model import CreditInputError
from .register import subject_key

if TYPE_CHECKING:
    from xinlian.hub.executor.request import RequestContext

log = logging.getLogger("xinlian.credit")
CREDIT_OFFICE = Principal(client_id="xinlian-credit-office", kind="department", scopes=frozenset({"credit:shared"}))
SUBJECT_FIELDS = ("name", "industry")
REVIEW_GATE = "review-gate"  # read with every subject: named in ratings and listings


@dataclass
class SubjectRecords:
    """One subject's records by family, and its registration name and industry."""

    subject: str
    records: dict[str, list[Record]] = field(default_factory=dict)
    name: str = ""
    industry: str = ""


@dataclass
class RecordsRead:
    found: dict[str, SubjectRecords]
    failed: dict[str, list[str]]  # subject -> departments that failed
    withheld: set[str] = field(default_factory=set)  # "family.field" the policy does not give government


@dataclass
class RecordFound:
    """Where a record was found: the departments that have it (and their copies), and the
    departments that could not answer."""

    departments: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)


def merge_key_pages(pages: Iterable[Iterable[str]], after: str, limit: int) -> tuple[list[str], list[str], int]:
    """One page of subject keys from several sources' pages: (valid keys, every key merged, how
    many were dropped as invalid). The merged page ends at the smallest last key among the sources
    that answered — a source that sent a short page may still hold keys above it, so none is
    skipped; a source that sent nothing is exhausted."""
    answered = [sorted(page) for page in pages if page]
    if not answered:
        return [], [], 0
    bound = min(page[-1] for page in answered)
    merged = sorted({k for page in answered for k in page if after < k <= bound})[:limit]
    valid: list[str] = []
    for key in merged:
        try:
            valid.append(subject_key(key))
        except CreditInputError:
            continue
    return sorted(set(valid)), merged, len(merged) - len(valid)


class DistrictRecords:
    """Reads department records for credit governance (see the module docstring)."""

    def __init__(self, context: Callable[[Principal], "RequestContext"]) -> None:
        self._context = context

    @staticmethod
    def _gates(ctx: "RequestContext", family: str) -> tuple[RowRule, ...]:
        """The policy's review gates on `family`, whatever audience they name: a decision that
        reaches the public (a listing, a rating) never rests on a record still awaiting review."""
        return tuple(r for r in ctx.policy.rows if r.kind == REVIEW_GATE and family in r.families)

    def served(self, family: str) -> bool:
        """Whether some department of the federation is a source of `family`."""
        return bool(self._context(CREDIT_OFFICE).federation.sources(family))

    def serves(self, department: str, family: str) -> bool:
        """Whether `department` (a connector name) is a source of `family`."""
        ctx = self._context(CREDIT_OFFICE)
        return any(d.name == department for d in ctx.federation.sources(family))

    def enumerable(self) -> bool:
        """Whether some registry can page through the district's subjects."""
        ctx = self._context(CREDIT_OFFICE)
        return bool(ctx.federation.enumerators(REGISTRATION.name))

    async def subjects(self, after: str, limit: int, families: Iterable[str] = ()) -> list[str]:
        """The next subject keys after `after` (at most `limit`): the registry's, and those of
        `families` (the list rules' families: a court's or tax bureau's natural persons) wherever
        their source can enumerate them, normalised and merged in key order.

        Sources page independently and may answer short pages, so the merged page ends at the
        smallest last key among the sources that answered: no source can still hold a key below
        it, and nothing is skipped. A key that is no valid USCC or resident ID is left out (and
        logged as a count): no decision is taken on it."""
        ctx = self._context(CREDIT_OFFICE)
        wanted = dict.fromkeys([REGISTRATION.name, *families])
        calls = [
            d.link.subject_keys(family, after, limit, deadline=ctx.deadline)
            for family in wanted
            for d in ctx.federation.enumerators(family)
        ]
        valid, merged, dropped = merge_key_pages(await asyncio.gather(*calls), after, limit)
        if dropped:
            log.warning("credit run: %d key(s) from the departments are no valid USCC or resident ID; left out", dropped)
        if not valid and merged:  # a page of invalid keys only: go on past them
            return await self.subjects(merged[-1], limit, families)
        return valid

    async def read(self, keys: list[str], needs: Mapping[str, set[str]]) -> RecordsRead:
        """Each subject's records of every family in `needs` (family -> fields), plus its name and industry."""
        ctx = self._context(CREDIT_OFFICE)
        wanted = {family: set(fields) for family, fields in needs.items()}
        wanted.setdefault(REGISTRATION.name, set()).update(SUBJECT_FIELDS)
        withheld: set[str] = set()
        plans: dict[str, frozenset[str]] = {}
        gates = {family: self._gates(ctx, family) for family in wanted}
        reviewed = reviewed_families(ctx.policy.rows)
        for family, fields in wanted.items():
            spec = FAMILIES[family]
            fields.update(f.name for f in spec.fields if f.names_subject)  # a name for who the registry does not know
            for gate in gates[family]:
                fields.update(gate.reads(spec))
            allowed = {f for f in fields if ctx.may_receive(family, f)}
            withheld.update(f"{family}.{f}" for f in fields - allowed)
            if spec.record_key and ctx.may_receive(family, spec.record_key):
                allowed.add(spec.record_key)
            if allowed:
                plans[family] = frozenset(allowed)
        outcomes = await asyncio.gather(*(load_records(ctx, FAMILIES[f], keys, fields) for f, fields in plans.items()))
        found = {key: SubjectRecords(key) for key in keys}
        failed: dict[str, list[str]] = {}
        for family, per_key in zip(plans, outcomes):
            for key, outcome in per_key.items():
                if outcome and isinstance(outcome[0], ConnectorError):
                    failed.setdefault(key, []).extend(e.department for e in outcome if isinstance(e, ConnectorError))
                    continue
                records = [r for r in outcome if not isinstance(r, ConnectorError)]
                records = [r for r in records if all(g.keep(r, ctx.today) for g in gates[family])]
                if family in reviewed and records:
                    records = self._unrejected(ctx, family, key, records)
                found[key].records[family] = records
                if family == REGISTRATION.name and records:
                    found[key].name = str(records[0].get("name") or "")
                    found[key].industry = str(records[0].get("industry") or "")
        for key in failed:
            found.pop(key, None)
        for subject in found.values():
            if not subject.name:  # a natural person (or a subject the registry does not hold): named by its records
                subject.name = next(
                    (str(r[f.name]) for family, records in subject.records.items() for f in FAMILIES[family].fields
                     if f.names_subject for r in records if r.get(f.name)),
                    "",
                )
        return RecordsRead(found, failed, withheld)

    @staticmethod
    def _unrejected(ctx: "RequestContext", family: str, subject: str, records: list[Record]) -> list[Record]:
        """`records` without those a reviewer rejected in the review before publication (their key
        was noted by the family's loaders in this request; a record whose key was not read stays)."""
        rejected = ctx.review_rejected(subject, family)
        key_field = FAMILIES[family].record_key
        if not rejected or key_field is None:
            return records
        return [r for r in records if review_key(r.get(key_field)) not in rejected]

    async def find_record(self, subject: str, family: str, key: str, fields: Iterable[str] = ()) -> RecordFound:
        """Which department provides the subject's record of `family` whose key is `key` — for a
        case about it (an objection goes to the department that provides the record). Asks every
        source of the family; `departments` holds each that has it (normally one), `unavailable`
        each that could not answer. The family's date is read too when the policy gives it to the
        credit office: the review before publication queues only records whose date it knows."""
        ctx = self._context(CREDIT_OFFICE)
        spec = FAMILIES[family]
        if spec.record_key is None:
            raise CreditInputError(f"{family} records have no key")
        wanted = frozenset({spec.record_key, *(f for f in fields if ctx.may_receive(family, f))})
        if spec.recency is not None and ctx.may_receive(family, spec.recency):
            wanted |= {spec.recency}
        sources = ctx.federation.sources(family)
        outcomes = await asyncio.gather(*(load_records(ctx, spec, [subject], wanted, [d]) for d in sources))
        found = RecordFound()
        for department, per_key in zip(sources, outcomes):
            outcome = per_key[subject]
            if outcome and isinstance(outcome[0], ConnectorError):
                found.unavailable.append(department.name)
                continue
            for record in outcome:
                if not isinstance(record, ConnectorError) and str(record.get(spec.record_key) or "").strip() == key:
                    found.departments.append(department.name)
                    found.records.append(record)
                    break
        return found
