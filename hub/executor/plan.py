"""`FamilyPlan`: what to do for one family field of one subject, decided once per request.

A plan depends only on the family, the selected fields and the subject's `SubjectGrant`
(natural person?, consent on file?, under the anti-harvesting cap?), not on the subject itself,
so a batch of 1,000 legal persons computes it once and reuses it 999 times.

The plan also holds the row rules and record annotations the request's policy puts in force on
the family for the caller's audience (`Policy.row_rules`, `Policy.record_annotations`): the
fields they read are fetched when the caller may receive them; a row rule reading a field the
caller may not receive cannot be checked, so no record of the family is shown (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xinlian.policies.engine import Decision, Reason
from xinlian.policies.masking import Mask
from xinlian.policies.model import DisclosureClass
from xinlian.policies.rules import RecordAnnotation, RowRule
from xinlian.schema.catalogue import RecordFamily

if TYPE_CHECKING:
    from .request import RequestContext


@dataclass(frozen=True, slots=True)
class SubjectGrant:
    """What decides a field for one subject: natural person?, consent on file?, under the cap?"""

    natural_person: bool = False
    consented: bool = False
    admitted: bool = True  # not refused by the anti-harvesting cap

    def decision(self, ctx: "RequestContext", family: str, field_name: str) -> Decision:
        return ctx.decision(family, field_name, self.natural_person, self.consented)

    def refusal(self, ctx: "RequestContext", family: str, field_name: str) -> str | None:
        """Why the field is refused for this subject (a `Reason` value), or None if it is allowed."""
        decision = self.decision(ctx, family, field_name)
        if not decision.allowed:
            return decision.reason.value
        if not self.admitted and decision.disclosure is DisclosureClass.AUTHORIZED:
            return Reason.SUBJECT_CAP.value
        return None

    def allows(self, ctx: "RequestContext", family: str, field_name: str) -> bool:
        return self.refusal(ctx, family, field_name) is None


@dataclass(frozen=True, slots=True)
class Denied:
    field: str
    disclosure: str
    reason: str


@dataclass(frozen=True, slots=True)
class FamilyPlan:
    """Allowed and denied selected fields, what to fetch, and the masks to apply.

    `refused` is set when no selected field may be released (then not even whether records
    exist is disclosed: the family field is FORBIDDEN as a whole and nothing is fetched).
    `authorized` says an allowed field is AUTHORIZED, so the anti-harvesting cap applies.
    `rows` are the row rules in force, `unchecked` those of them that read a field the caller
    may not receive (then nothing is shown), `annotations` the record annotations in force.
    `applied`, `released` and `masked` are what the audit records when the plan runs ("family:rule",
    "family.field"), spelled out once instead of for every subject.
    """

    allowed: tuple[str, ...]
    denied: tuple[Denied, ...]
    refused: Denied | None
    fetch: frozenset[str]
    masks: tuple[tuple[str, Mask], ...]
    authorized: bool
    rows: tuple[RowRule, ...] = ()
    unchecked: tuple[RowRule, ...] = ()
    annotations: tuple[RecordAnnotation, ...] = ()
    applied: tuple[str, ...] = ()  # "family:rule" for `rules`
    released: tuple[str, ...] = ()  # "family.field" for `allowed`
    masked: tuple[str, ...] = ()  # "family.field" for `masks`

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule kinds in force (row rules, then annotations), for `ctx.findings.rules_applied`."""
        return tuple(r.kind for r in self.rows) + tuple(a.kind for a in self.annotations)


def _denied(ctx: "RequestContext", family: str, field_name: str, grant: SubjectGrant, reason: str) -> Denied:
    return Denied(field_name, grant.decision(ctx, family, field_name).disclosure.value, reason)


def _fetch_set(
    ctx: "RequestContext",
    family: RecordFamily,
    allowed: tuple[str, ...],
    grant: SubjectGrant,
    rules: tuple[RowRule | RecordAnnotation, ...],
) -> frozenset[str]:
    """The allowed fields plus the ones ordering and the rules read, where the caller may receive them."""
    internal: set[str] = set()
    if family.recency:
        internal.add(family.recency)
    for rule in rules:
        internal.update(rule.reads(family))
    return frozenset(allowed) | {f for f in internal if grant.allows(ctx, family.name, f)}


def _public_name(family: RecordFamily, field_name: str, mask: Mask, grant: SubjectGrant) -> bool:
    """A `name` mask on the subject's own name of a legal person: its registered name is public."""
    return mask.spec == "name" and not grant.natural_person and family.field(field_name).names_subject


def build_plan(ctx: "RequestContext", family: RecordFamily, selected: tuple[str, ...], grant: SubjectGrant) -> FamilyPlan:
    name = family.name
    refusals = {f: grant.refusal(ctx, name, f) for f in selected}
    allowed = tuple(f for f in selected if refusals[f] is None)
    denied = tuple(_denied(ctx, name, f, grant, r) for f, r in refusals.items() if r is not None)
    refused: Denied | None = None
    if not allowed:
        if denied:
            refused = denied[0]
        elif not any(grant.allows(ctx, name, f) for f in family.field_names):
            # only __typename selected from a family of which nothing may be released
            refused = _denied(ctx, name, family.field_names[0], grant, grant.refusal(ctx, name, family.field_names[0]) or "")
            denied = tuple(_denied(ctx, name, f, grant, grant.refusal(ctx, name, f) or "") for f in family.field_names)
    masks = tuple(
        (f, m) for f in allowed
        if (m := grant.decision(ctx, name, f).mask) is not None and not _public_name(family, f, m, grant)
    )
    rows = ctx.policy.row_rules(name, ctx.audience)
    annotations = ctx.policy.record_annotations(name, ctx.audience)
    unchecked = tuple(r for r in rows if not all(grant.allows(ctx, name, f) for f in r.reads(family)))
    fetch = _fetch_set(ctx, family, allowed, grant, rows + annotations) if refused is None else frozenset()
    # the cap counts a subject whenever AUTHORIZED data would be fetched for it, selected or not
    # (the recency or key field read for ordering and the objection flag counts too)
    authorized = any(grant.decision(ctx, name, f).disclosure is DisclosureClass.AUTHORIZED for f in fetch)
    kinds = tuple(r.kind for r in rows) + tuple(a.kind for a in annotations)
    return FamilyPlan(
        allowed, denied, refused, fetch, masks, authorized, rows, unchecked, annotations,
        applied=tuple(f"{name}:{kind}" for kind in kinds),
        released=tuple(f"{name}.{f}" for f in allowed),
        masked=tuple(f"{name}.{f}" for f, _ in masks),
    )
