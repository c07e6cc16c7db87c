"""The credit repair fields of `/graphql` (信用修复, docs/cases.md; not on the public contract).

- `applyForRepair(input: RepairInput!)` — a subject client, for its own subject only: the repair
  of one of its records (`family`, `recordKey`; the family one of the policy's
  `cases.repair.families`) or of its current blacklisting (`listingId`), with a `reason`, the
  subject's credit commitment (`commitment`, 信用承诺, required) and proof documents
  (`attachments`, at least one for a penalty). Eligibility is checked with real dates at the
  record's sources (hub/cases/repairs.py; a 轻微 penalty only under a policy that shows minor
  penalties to the public); a department that cannot answer refuses it with
  `UPSTREAM_UNAVAILABLE`, even when another has the record, and nothing is stored. Answers the
  case (`id`, `status`, `deadline`, `history`).
- `repairs(status, subject, overdue, first)` — a subject its own applications, a department those
  it decides; overdue first.
- `decideRepair(id, approve, note)` — the deciding department (the record's provider, or the
  listing's department) approves or refuses; a caller that may not see the case (another
  department) is told NOT_FOUND, as for a case that does not exist, and one that may see it but
  not decide it (the applicant) FORBIDDEN. An approval ends the listing (`repaired`) or the
  record's public display, in the step's transaction; the answer follows the commit, and the
  subject's re-rating runs in the background (`RepairRegister.settle`).
- `withdrawRepair(id, note)` — the applicant withdraws its open application.

Every field names the subject and the case in the request's audit entry (`audited`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import strawberry
from graphql import GraphQLError

from xinlian.hub.cases.model import REPAIR, CaseInputError
from xinlian.hub.cases.repairs import Application, RepairRefused, RepairRegister, RepairUnavailable, minor_shown
from xinlian.schema import cases as gql

from . import case_fields as shared  # it imports this module too: its names are read at call time

if TYPE_CHECKING:
    from xinlian.hub.credit.governance import CreditGovernance

    from .request import RequestContext


@strawberry.input(name="RepairInput", description=(
    "A credit repair application (信用修复): either a record (family and recordKey) or a listing (listingId)."
))
class RepairInput:
    reason: str = strawberry.field(description="What was done to correct the conduct: why the record should no longer be shown.")
    commitment: str = strawberry.field(description="The credit commitment (信用承诺): the subject's written commitment to keep the law. Required.")
    family: Optional[str] = strawberry.field(default=None, description="The record's family (the policy's repairable families: penalties).")
    record_key: Optional[str] = strawberry.field(default=None, description="The record's key: its decision number.")
    listing_id: Optional[int] = strawberry.field(default=None, description="The subject's current blacklisting, instead of a record.")
    attachments: Optional[list[gql.AttachmentInput]] = strawberry.field(
        default=None, description="Proof that the obligations are met (at least one for a penalty): PDF, JPEG or PNG."
    )


def _ctx(info: strawberry.Info) -> "RequestContext":
    return info.context


def repairs_of(ctx: "RequestContext") -> RepairRegister:
    repairs = ctx.services.repairs
    if repairs is None:
        raise shared.code("INTERNAL_SERVER_ERROR", "credit repair is not available on this hub")
    return repairs


def credit_of(ctx: "RequestContext") -> "CreditGovernance":
    credit = ctx.services.credit
    if credit is None:
        raise shared.code("INTERNAL_SERVER_ERROR", "credit governance is not available on this hub")
    return credit


def refused(exc: Exception) -> GraphQLError:
    """A repair refusal as a GraphQL error (UPSTREAM_UNAVAILABLE, or the cases' codes)."""
    if isinstance(exc, RepairUnavailable):
        return shared.code(
            "UPSTREAM_UNAVAILABLE", str(exc), department=exc.departments[0] if len(exc.departments) == 1 else exc.departments,
            departments=exc.departments, reason="unavailable",
        )
    if isinstance(exc, RepairRefused) and exc.argument:
        return shared.code("BAD_USER_INPUT", str(exc), argument=exc.argument)
    return shared.case_error(exc)


async def apply_for_repair(info: strawberry.Info, input: RepairInput) -> gql.CaseView:
    """信用修复: a subject client applies for the repair of its record or listing."""
    ctx = _ctx(info)
    actor = shared.actor_of(ctx)
    if actor.kind != "subject":
        raise shared.code("FORBIDDEN", "credit repair is applied for by the subject's own client")
    if not actor.subject:
        raise shared.code("FORBIDDEN", "your subject client is bound to no subject (ask the credit office)")
    ctx.findings.subjects.add(actor.subject)
    files = shared.uploads(ctx, input.attachments)
    application = Application(
        subject=actor.subject, reason=input.reason, commitment=input.commitment, uploads=files,
        family=input.family, key=input.record_key, listing=input.listing_id,
    )
    rules, repairs, credit = ctx.policy.cases.repair, repairs_of(ctx), credit_of(ctx)
    try:
        if input.listing_id is None and (input.family is not None or input.record_key is not None):
            minor = input.family is not None and minor_shown(ctx.policy, input.family)
            case = await repairs.apply_for_record(application, actor, rules, credit.records, ctx.today, minor=minor)
        else:
            case = await repairs.apply_for_listing(application, actor, rules, credit.register, ctx.today)
    except (CaseInputError, RepairUnavailable) as exc:
        raise refused(exc) from None
    shared.audited(ctx, "applyForRepair", case)
    return shared.view(ctx, case)


async def repairs(
    info: strawberry.Info, status: Optional[str] = None, subject: Optional[str] = None, overdue: bool = False,
    first: int = 50,
) -> gql.CasePage:
    return await shared.case_page(_ctx(info), REPAIR, status, subject, overdue, first)


async def decide_repair(info: strawberry.Info, id: int, approve: bool, note: str) -> gql.CaseView:
    """The deciding department approves or refuses a repair application. A caller that may not see
    the case — any department but the deciding one — is told NOT_FOUND (whether it exists is not
    said); the step tells one that sees it but does not decide it (the applicant) FORBIDDEN."""
    ctx = _ctx(info)
    actor = shared.actor_of(ctx)
    seen = await shared.visible_case(ctx, id, REPAIR)
    if seen.subject:
        ctx.findings.subjects.add(seen.subject)
    repairs, credit = repairs_of(ctx), credit_of(ctx)
    try:
        case = await repairs.decide(id, approve, note, actor, credit.register)
    except CaseInputError as exc:
        raise refused(exc) from None
    repairs.settle(case, credit, ctx.policy)  # committed: the re-rating runs in the background
    shared.audited(ctx, "decideRepair", case)
    return shared.view(ctx, case)


async def withdraw_repair(info: strawberry.Info, id: int, note: str = "") -> gql.CaseView:
    """The applicant withdraws its open repair application."""
    ctx = _ctx(info)
    actor = shared.actor_of(ctx)
    await shared.visible_case(ctx, id, REPAIR)
    try:
        case = await repairs_of(ctx).withdraw(id, note, actor)
    except CaseInputError as exc:
        raise refused(exc) from None
    shared.audited(ctx, "withdrawRepair", case)
    return shared.view(ctx, case)


def query_fields(public: bool) -> dict[str, Any]:
    if public:
        return {}
    return {
        "repairs": strawberry.field(resolver=repairs, description=(
            "Credit repair applications you may see (a subject: its own; a department: those it decides), overdue first."
        )),
    }


def mutation_fields(public: bool) -> dict[str, Any]:
    if public:
        return {}
    return {
        "apply_for_repair": strawberry.field(resolver=apply_for_repair, description=(
            "信用修复: a subject client applies for the repair of its penalty (after its minimum publicity) or its "
            "blacklisting (after it has lasted the policy's months), with its credit commitment and proof."
        )),
        "decide_repair": strawberry.field(resolver=decide_repair, description=(
            "The deciding department approves (the listing ends as repaired; the record is no longer shown to the "
            "public) or refuses a repair application, with a note."
        )),
        "withdraw_repair": strawberry.field(resolver=withdraw_repair, description="The applicant withdraws its repair application."),
    }
