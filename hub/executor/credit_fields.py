"""The credit governance fields of the GraphQL schemas, on the one request pipeline.

Queries: `creditCheck`, `creditChecks`, `rating`, `supervisionPlan`, `findings`,
`measuresCatalogue`, `blacklist` and `redList` (the last two also on `/public/graphql`), and
`listings` on `LegalPerson` / `NaturalPerson`. Mutations (on `/graphql` only, one per request,
audited with an intent entry first like the admin API's): `recordFinding`, `revokeFinding`,
`addToRedList`, `cancelListing`, `recordMeasureFeedback`.

Who may call each is policy data (`credit.access` of the policy version in force): the scopes
that may run checks (and the client kinds that must declare a registered purpose), record
findings (a `department` client bound to its department), read ratings and supervision plans.
A subject's own client may read its own rating. Every call names its subjects in the request's
audit entry and what it released (`creditCheck.<context>`, `rating.level`, `listings.*`), so a
subject sees checks and ratings of it in `myAccessLog`. The work is done by
`CreditGovernance` (hub/credit/).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import strawberry
from graphql import GraphQLError

from xinlian.hub.credit.checks import AppliedMeasure, CheckReason, CheckResult, check_context, finding_until
from xinlian.hub.credit.model import (
    LIST_LABELS,
    CreditForbidden,
    CreditInputError,
    CreditUnavailable,
    Finding,
    Listing,
    RecordRef,
)
from xinlian.hub.credit.ratings import Rating
from xinlian.hub.credit.register import subject_key
from xinlian.hub.credit.supervision import SupervisionPlan, plan_csv, plan_xlsx
from xinlian.policies.credit import CreditRules
from xinlian.policies.masking import parse_mask
from xinlian.policies.model import DisclosureClass
from xinlian.schema import credit as gql
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id

if TYPE_CHECKING:
    from xinlian.hub.credit.governance import CreditGovernance

    from .federation import Federation
    from .request import RequestContext

SUBJECT_KIND = "subject"
NAME_MASK = parse_mask("name", "credit.listings")
ID_MASK = parse_mask("resident_id", "credit.listings")
DEFAULT_PAGE = 20


def _ctx(info: strawberry.Info) -> "RequestContext":
    return info.context


def _code(code: str, message: str, **extra: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def _governance(ctx: "RequestContext") -> "CreditGovernance":
    credit = ctx.services.credit
    if credit is None:
        raise _code("INTERNAL_SERVER_ERROR", "credit governance is not available on this hub")
    return credit


def refused(exc: Exception) -> GraphQLError:
    if isinstance(exc, CreditForbidden):
        return _code("FORBIDDEN", str(exc))
    if isinstance(exc, CreditUnavailable):
        return _code("UPSTREAM_UNAVAILABLE", f"rating postponed: {exc}", departments=exc.departments)
    return _code("BAD_USER_INPUT", str(exc))


def _may(ctx: "RequestContext", scopes: tuple[str, ...], what: str) -> None:
    if ctx.public_endpoint or not ctx.principal.scopes & set(scopes):
        raise _code("FORBIDDEN", f"{what} needs one of the scopes {', '.join(scopes)}", requiredScopes=list(scopes))


def _department(ctx: "RequestContext", what: str) -> str:
    access = ctx.policy.credit.access
    _may(ctx, access.findings, what)
    department = ctx.principal.department
    if not department:
        raise _code("FORBIDDEN", f"{what}: your client is bound to no department (ask the credit office: `xinlian clients set-department`)")
    return department


def _natural(subject: str) -> bool:
    try:
        validate_resident_id(subject)
    except InvalidIdentifier:
        return False
    return True


def government(ctx: "RequestContext") -> bool:
    """The caller is government (its scopes grant SHARED): it sees natural persons on the lists in
    clear, a rating's explanation, a natural person's findings in a check."""
    return not ctx.public_endpoint and ctx.audience is DisclosureClass.SHARED


def department_names(federation: Federation) -> dict[str, str]:
    """Each department's name (新城区人民法院) by its connector's name (courts)."""
    return {d.name: d.connector.department for d in federation.departments}


def listing_view(listing: Listing, clear: bool, names: Mapping[str, str] | None = None) -> gql.CreditListing:
    """A listing as GraphQL shows it; unless `clear` (government), a natural person's ID and name
    are masked as the public sees them, whichever endpoint was called. `names`: the departments'
    names by connector name (`department_names`)."""
    masked = not clear and _natural(listing.subject)
    return gql.CreditListing(
        department_name=(names or {}).get(listing.department, listing.department),
        id=listing.id, list=listing.list, list_label=LIST_LABELS[listing.list],
        subject=str(ID_MASK(listing.subject)) if masked else listing.subject,
        subject_name=str(NAME_MASK(listing.subject_name) or "") if masked else listing.subject_name,
        basis=listing.basis, basis_text=listing.basis_text, department=listing.department,
        listed_on=listing.listed_on, ends_on=listing.ends_on,
    )


def _reason(r: CheckReason) -> gql.CreditReason:
    return gql.CreditReason(
        kind=r.kind, id=r.id, basis=r.basis, basis_text=r.basis_text, department=r.department, since=r.since,
        until=r.until, list=r.list, severity=r.severity,
    )


def _applied(a: AppliedMeasure) -> gql.AppliedCreditMeasure:
    m = a.measure
    return gql.AppliedCreditMeasure(
        code=m.code, name=m.name, effect=m.effect.value, basis=m.basis, department=m.department,
        reasons=[_reason(r) for r in a.reasons],
    )


def check_view(result: CheckResult, today: dt.date) -> gql.CreditCheckResult:
    return gql.CreditCheckResult(
        subject=result.subject, context=result.context, verdict=gql.CreditVerdict(result.verdict.value),
        measures=[_applied(a) for a in result.measures], rewards=[_applied(a) for a in result.rewards],
        reasons=[_reason(r) for r in result.reasons], checked_on=today,
    )


def finding_view(finding: Finding, rules: CreditRules) -> gql.CreditFinding:
    basis = rules.bases.get(finding.basis)
    return gql.CreditFinding(
        id=finding.id, subject=finding.subject, subject_name=finding.subject_name, severity=finding.severity,
        basis=finding.basis, basis_text=basis.name if basis else finding.basis, facts=finding.facts,
        legal_basis=finding.legal_basis, records=[gql.FindingRecordRef(family=r.family, key=r.key) for r in finding.records],
        department=finding.department, decided_on=finding.decided_on, in_force_until=finding_until(rules, finding),
        measures=list(finding.measures), status=finding.status,
    )


def rating_view(rating: Rating, explained: bool = True) -> gql.CreditRating:
    return gql.CreditRating(
        subject=rating.subject, subject_name=rating.subject_name, industry=rating.industry, level=rating.level,
        score=rating.score, supervision_class=rating.supervision_class, model_version=rating.model_version,
        policy_version=rating.policy_version, rated_on=rating.rated_on, trigger=rating.trigger,
        indicators=[
            gql.RatingIndicator(
                name=i.name, label=i.label, kind=i.kind, points=i.points, weight=i.weight, evidence=list(i.evidence),
                detail=i.detail,
            )
            for i in rating.indicators
        ] if explained else [],
    )


def _cursor(listing_id: int) -> str:
    return base64.urlsafe_b64encode(f"listing:{listing_id}".encode()).decode()


def _after(after: Optional[str]) -> Optional[int]:
    if after is None:
        return None
    try:
        text = base64.urlsafe_b64decode(after.encode()).decode()
        kind, _, number = text.partition(":")
        if kind != "listing":
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _code("BAD_USER_INPUT", "after: a cursor from endCursor", argument="after") from None


def _subject(ctx: "RequestContext", subject: str, argument: str = "subject") -> str:
    try:
        return subject_key(subject)
    except CreditInputError as exc:
        raise _code("BAD_USER_INPUT", str(exc), argument=argument) from None


# ---- queries ---------------------------------------------------------------------------------


def _checker(ctx: "RequestContext", what: str) -> None:
    """The caller may run credit checks (and record what it applied after one): a scope of
    `credit.access.check`, and a registered purpose for the kinds that need one."""
    access = ctx.policy.credit.access
    _may(ctx, access.check, what)
    if ctx.principal.kind in access.check_purpose_kinds and not ctx.principal.purpose_allowed:
        raise _code(
            "FORBIDDEN",
            f"a {ctx.principal.kind} runs credit checks with a purpose it is registered for (Xinlian-Purpose header)",
            reason="purpose",
        )


async def _checks(info: strawberry.Info, subjects: list[str], context: str) -> list[gql.CreditCheckResult]:
    ctx = _ctx(info)
    _checker(ctx, "a credit check")
    try:
        results = await _governance(ctx).check(ctx.policy, subjects, context, ctx.today, natural_findings=government(ctx))
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.subjects.update(r.subject for r in results)
    ctx.findings.released.add(f"creditCheck.{context}")
    ctx.findings.detail["creditCheck"] = {"context": context, "subjects": len(results)}
    return [check_view(r, ctx.today) for r in results]


async def credit_check(info: strawberry.Info, subject: str, context: str) -> gql.CreditCheckResult:
    return (await _checks(info, [subject], context))[0]


async def credit_checks(info: strawberry.Info, subjects: list[str], context: str) -> list[gql.CreditCheckResult]:
    return await _checks(info, subjects, context)


async def rating(info: strawberry.Info, subject: str, refresh: bool = False) -> Optional[gql.CreditRating]:
    """The subject's current rating (`refresh`, government only: rate it now from the departments'
    records). Its indicators — which records it rests on — go to government only: they would tell
    others what the policy keeps from them (a tax level, arrears, a record under review)."""
    ctx = _ctx(info)
    key = _subject(ctx, subject)
    own = ctx.principal.kind == SUBJECT_KIND and ctx.principal.subject_id == key
    if not own:
        _may(ctx, ctx.policy.credit.access.ratings, "a rating")
    if refresh and not government(ctx):
        raise _code("FORBIDDEN", "refresh: only government callers rate a subject anew; read its current rating")
    credit = _governance(ctx)
    ctx.findings.subjects.add(key)
    try:
        found = (
            await credit.rate(ctx.policy, key, ctx.today, ctx.principal.client_id or "public")
            if refresh
            else await credit.current_rating(key)
        )
    except (CreditInputError, CreditUnavailable) as exc:
        raise refused(exc) from None
    if found is None:
        return None
    explained = government(ctx)
    ctx.findings.released.add("rating.level")  # only what was returned: a failed or empty rating releases nothing
    if explained:
        ctx.findings.released.update(f"rating.{i.name}" for i in found.indicators)
    return rating_view(found, explained)


async def supervision_plan(
    info: strawberry.Info, department: Optional[str] = None, period: Optional[str] = None
) -> gql.SupervisionPlanResult:
    ctx = _ctx(info)
    _may(ctx, ctx.policy.credit.access.supervision, "a supervision plan")
    own = ctx.principal.department
    if own and department not in (None, own):
        raise _code("FORBIDDEN", f"your client speaks for department {own}: ask for its plan, not {department}'s")
    try:
        plan = await _governance(ctx).supervision_plan(ctx.policy, department or own, period, ctx.today)
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.released.add("supervisionPlan.entries")
    ctx.findings.detail["supervisionPlan"] = {"department": plan.department, "period": plan.period.text, "subjects": len(plan.entries)}
    return plan_view(plan, ctx.findings.released.add)


def plan_view(plan: SupervisionPlan, released: Callable[[str], None]) -> gql.SupervisionPlanResult:
    """A supervision plan as GraphQL shows it; an export, when asked for, is `released`."""

    def export(kind: str) -> str:
        released(f"supervisionPlan.{kind}")
        return plan_csv(plan) if kind == "csv" else base64.b64encode(plan_xlsx(plan)).decode()

    return gql.SupervisionPlanResult(
        exporter=export,
        department=plan.department, period=plan.period.text, starts_on=plan.period.start, ends_on=plan.period.end,
        class_a=plan.count("A"), class_b=plan.count("B"), class_c=plan.count("C"),
        entries=[
            gql.SupervisionPlanEntry(
                subject=e.subject, name=e.name, industry=e.industry, level=e.level, score=e.score,
                supervision_class=e.supervision_class, approach=e.approach, inspections_due=e.inspections_due,
                rated_on=e.rated_on,
            )
            for e in plan.entries
        ],
    )


def measure_views(rules: CreditRules, context: Optional[str]) -> list[gql.CreditMeasure]:
    """The catalogue's measures (of one context), as GraphQL shows them; `CreditInputError` for an unknown context."""
    if context is not None:
        check_context(rules, context)
    chosen = rules.measures if context is None else rules.measures_in(context)
    return [
        gql.CreditMeasure(
            code=m.code, name=m.name, effect=m.effect.value, contexts=list(m.contexts), basis=m.basis,
            department=m.department, triggers=[str(t) for t in m.on],
        )
        for m in chosen
    ]


async def findings(info: strawberry.Info, subject: str) -> list[gql.CreditFinding]:
    """A subject's findings, newest first (government: the scopes of supervision plans or findings)."""
    ctx = _ctx(info)
    access = ctx.policy.credit.access
    _may(ctx, tuple(dict.fromkeys((*access.supervision, *access.findings))), "findings")
    key = _subject(ctx, subject)
    ctx.findings.subjects.add(key)
    ctx.findings.released.add("findings.facts")
    return [finding_view(f, ctx.policy.credit) for f in await _governance(ctx).register.findings(subject=key)]


def measures_catalogue(info: strawberry.Info, context: Optional[str] = None) -> list[gql.CreditMeasure]:
    ctx = _ctx(info)
    try:
        return measure_views(ctx.policy.credit, context)
    except CreditInputError as exc:
        raise _code("BAD_USER_INPUT", str(exc), argument="context") from None


async def _list_page(info: strawberry.Info, list_name: str, first: Optional[int], after: Optional[str]) -> gql.CreditListingPage:
    ctx = _ctx(info)
    size = DEFAULT_PAGE if first is None else first
    credit = _governance(ctx)
    try:
        items, more = await credit.register.page(list_name, ctx.today, size, _after(after))
        total = await credit.register.count(list_name, ctx.today)
    except CreditInputError as exc:
        raise _code("BAD_USER_INPUT", str(exc), argument="first") from None
    ctx.findings.subjects.update(x.subject for x in items)
    if items:
        ctx.findings.released.add(f"listings.{list_name}")
    return gql.CreditListingPage(
        items=[listing_view(x, government(ctx), department_names(ctx.federation)) for x in items], total_count=total,
        end_cursor=_cursor(items[-1].id) if items else None, has_next_page=more,
    )


async def blacklist(info: strawberry.Info, first: Optional[int] = DEFAULT_PAGE, after: Optional[str] = None) -> gql.CreditListingPage:
    return await _list_page(info, "black", first, after)


async def red_list(info: strawberry.Info, first: Optional[int] = DEFAULT_PAGE, after: Optional[str] = None) -> gql.CreditListingPage:
    return await _list_page(info, "red", first, after)


async def subject_listings(root: Any, info: strawberry.Info) -> list[gql.CreditListing]:
    """`LegalPerson.listings` / `NaturalPerson.listings`: the subject's current listings, blacklist first."""
    ctx = _ctx(info)
    key = getattr(root, "uscc", None) or getattr(root, "id_number")
    found = (await _governance(ctx).listings([key], ctx.today))[key]
    if found:
        ctx.findings.released.update(f"listings.{x.list}" for x in found)
    return [listing_view(x, government(ctx), department_names(ctx.federation)) for x in found]


# ---- mutations -------------------------------------------------------------------------------


async def record_finding(info: strawberry.Info, input: gql.FindingInput) -> gql.FindingOutcome:
    ctx = _ctx(info)
    department = _department(ctx, "recording a finding")
    key = _subject(ctx, input.subject)
    ctx.findings.subjects.add(key)
    try:
        outcome = await _governance(ctx).record_finding(
            ctx.policy, subject=key, basis=input.basis, facts=input.facts, legal_basis=input.legal_basis,
            records=[RecordRef(r.family, r.key) for r in input.records], department=department,
            decided_on=input.decided_on, measures=input.measures, by=ctx.principal.client_id or department,
            today=ctx.today, subject_name=input.subject_name or "", severity=input.severity,
        )
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.detail["credit"] = {"action": "recordFinding", "finding": outcome.finding.id,
                                     "listing": outcome.listing.id if outcome.listing else None}
    return gql.FindingOutcome(
        finding=finding_view(outcome.finding, ctx.policy.credit),
        listing=listing_view(outcome.listing, government(ctx), department_names(ctx.federation)) if outcome.listing is not None else None,
    )


async def revoke_finding(info: strawberry.Info, id: int, reason: str) -> gql.CreditFinding:
    ctx = _ctx(info)
    department = _department(ctx, "revoking a finding")
    try:
        finding = await _governance(ctx).revoke_finding(ctx.policy, id, department, reason, ctx.principal.client_id or department, ctx.today)
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.subjects.add(finding.subject)
    ctx.findings.detail["credit"] = {"action": "revokeFinding", "finding": id}
    return finding_view(finding, ctx.policy.credit)


async def add_to_red_list(info: strawberry.Info, input: gql.RedListInput) -> gql.CreditListing:
    ctx = _ctx(info)
    department = _department(ctx, "red-listing")
    key = _subject(ctx, input.subject)
    ctx.findings.subjects.add(key)
    try:
        listing = await _governance(ctx).red_list(
            ctx.policy, subject=key, basis=input.basis, reason=input.reason, department=department,
            listed_on=input.listed_on, by=ctx.principal.client_id or department, today=ctx.today,
            subject_name=input.subject_name or "",
        )
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.detail["credit"] = {"action": "addToRedList", "listing": listing.id}
    return listing_view(listing, government(ctx), department_names(ctx.federation))


async def cancel_listing(info: strawberry.Info, id: int, reason: str) -> gql.CreditListing:
    """A court's cancellation ends a listing early (policy `credit.access.cancel_departments`)."""
    ctx = _ctx(info)
    department = _department(ctx, "cancelling a listing")
    try:
        listing = await _governance(ctx).end_listing(
            ctx.policy, id, "cancelled", reason, ctx.principal.client_id or department, ctx.today, department
        )
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.subjects.add(listing.subject)
    ctx.findings.detail["credit"] = {"action": "cancelListing", "listing": id}
    return listing_view(listing, government(ctx), department_names(ctx.federation))


async def record_measure_feedback(info: strawberry.Info, input: gql.MeasureFeedbackInput) -> int:
    """实施反馈: record a measure applied after a check; returns the feedback's id."""
    ctx = _ctx(info)
    _checker(ctx, "measure feedback")
    key = _subject(ctx, input.subject)
    ctx.findings.subjects.add(key)
    client = ctx.principal.client_id or ""
    try:
        new_id = await _governance(ctx).record_feedback(
            ctx.policy, natural_findings=government(ctx), measure=input.measure, subject=key, context=input.context, applied_on=input.applied_on,
            client_id=client, department=ctx.principal.department or client, today=ctx.today,
            check_request_id=input.check_request_id or "", note=input.note or "",
        )
    except CreditInputError as exc:
        raise refused(exc) from None
    ctx.findings.detail["credit"] = {"action": "recordMeasureFeedback", "feedback": new_id, "measure": input.measure}
    return new_id


def query_fields(public: bool) -> dict[str, Any]:
    """The credit root fields of a schema: lists only on the public contract."""
    fields: dict[str, Any] = {
        "blacklist": strawberry.field(
            resolver=blacklist, description="严重失信主体名单: current blacklist listings, oldest first (`first` 1 to 100)."
        ),
        "red_list": strawberry.field(resolver=red_list, description="守信激励名单: current red-list listings, oldest first."),
    }
    if public:
        return fields
    fields.update(
        credit_check=strawberry.field(resolver=credit_check, description="联合奖惩 check of one subject in a context (government-procurement, bidding, licensing, subsidies, lending, ...)."),
        credit_checks=strawberry.field(resolver=credit_checks, description="Credit checks of up to 10,000 subjects in one context (screening a list), in the order asked."),
        rating=strawberry.field(resolver=rating, description="The subject's current rating (三等九级) with its indicators; `refresh: true` rates it now."),
        supervision_plan=strawberry.field(resolver=supervision_plan, description="Subjects by supervision class for a department and a period (2026, 2026-Q4, 2026-12)."),
        findings=strawberry.field(resolver=findings, description="A subject's dishonesty findings, newest first (government)."),
        measures_catalogue=strawberry.field(resolver=measures_catalogue, description="The measures catalogue of the policy in force, optionally for one context."),
    )
    return fields


def mutation_fields() -> dict[str, Any]:
    return {
        "record_finding": strawberry.field(resolver=record_finding, description="Record a finding for your department (serious: lists the subject on the blacklist)."),
        "revoke_finding": strawberry.field(resolver=revoke_finding, description="Revoke your department's finding; its listing is cancelled."),
        "add_to_red_list": strawberry.field(resolver=add_to_red_list, description="List a subject on the red list on a red-list basis."),
        "cancel_listing": strawberry.field(resolver=cancel_listing, description="A court's cancellation of a listing (departments named in credit.access.cancel_departments)."),
        "record_measure_feedback": strawberry.field(resolver=record_measure_feedback, description="实施反馈: a measure you applied after a credit check."),
    }
