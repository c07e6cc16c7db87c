"""The admin API's credit governance fields (the credit office, 信用办): read and correct.

Reads: findings by subject or department, a listing with its transitions, ratings history,
district jobs, measure feedback totals, the measures catalogue, a credit check, a supervision
plan. Changes (each audited as an action of the request): record a department's finding or
red-list entry (its paper decision, checked as on /graphql), revoke a finding, record a court's
cancellation of a listing, record expiries now, rate one subject now, start or resume the district
job (in the background; its progress is in `creditRatingJobs`). The measures catalogue and the rating model are policy data: they change
through the policy mutations (`importPolicy`, `activatePolicyVersion`), versioned like every rule.
Departments record their own findings on `/graphql` (hub/executor/credit_fields.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

import strawberry

from xinlian.hub.credit.model import CreditInputError, CreditUnavailable, RecordRef
from xinlian.hub.credit.register import subject_key
from xinlian.hub.executor.credit_fields import (
    check_view,
    department_names,
    finding_view,
    listing_view,
    measure_views,
    plan_view,
    rating_view,
    refused,
)
from xinlian.schema import credit as gql

from .context import AdminContext
from .operations import AdminInputError

log = logging.getLogger("xinlian.admin")


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


def _today(ctx: AdminContext) -> dt.date:
    return ctx.runtime.today()


@strawberry.type(description="A transition of a listing: who, when, why.")
class ListingTransition:
    action: str
    at: dt.datetime
    by: str
    reason: str


@strawberry.type(description="A listing and its history.")
class ListingWithHistory:
    listing: gql.CreditListing
    status: str
    transitions: list[ListingTransition]


@strawberry.type(description="A district-wide credit run (list rules and ratings).")
class RatingJobState:
    id: int
    status: str
    model_version: str
    cursor: str
    rated: int
    failed: int
    started_at: dt.datetime
    finished_at: Optional[dt.datetime]
    by: str
    note: str


@strawberry.type(description="实施反馈 totals: measures applied per department.")
class MeasureFeedbackTotal:
    department: str
    measure: str
    measure_name: str
    applied: int
    last_applied_on: dt.date


def _refused(exc: Exception) -> AdminInputError:
    return AdminInputError(str(exc))


@strawberry.type
class CreditAdminQuery:
    @strawberry.field(description="Findings, newest first, of a subject and/or a department (at most `limit`, 1 to 500).")
    async def credit_findings(
        self, info: strawberry.Info, subject: Optional[str] = None, department: Optional[str] = None, limit: int = 100
    ) -> list[gql.CreditFinding]:
        ctx = _ctx(info)
        if not 1 <= limit <= 500:
            raise AdminInputError("limit: 1 to 500")
        try:
            found = await ctx.runtime.credit.register.findings(subject=subject, department=department, limit=limit)
        except CreditInputError as exc:
            raise _refused(exc) from None
        ctx.note("creditFindings", subject, department=department)
        return [finding_view(f, ctx.runtime.policy.credit) for f in found]

    @strawberry.field(description="A listing with every transition (listed, extended, expired, delisted, cancelled, repaired).")
    async def credit_listing(self, info: strawberry.Info, id: int) -> Optional[ListingWithHistory]:
        ctx = _ctx(info)
        register = ctx.runtime.credit.register
        listing = await register.listing(id)
        if listing is None:
            return None
        ctx.note("creditListing", listing.subject, listing=id)
        return ListingWithHistory(
            listing=listing_view(listing, True, department_names(ctx.runtime.federation)), status=listing.status,
            transitions=[ListingTransition(action=t.action, at=t.at, by=t.by, reason=t.reason) for t in await register.history(id)],
        )

    @strawberry.field(description="A subject's ratings, newest first: each a snapshot with its indicators and model version.")
    async def credit_rating_history(self, info: strawberry.Info, subject: str, limit: int = 20) -> list[gql.CreditRating]:
        ctx = _ctx(info)
        if not 1 <= limit <= 200:
            raise AdminInputError("limit: 1 to 200")
        try:
            key = subject_key(subject)
        except CreditInputError as exc:
            raise _refused(exc) from None
        ctx.note("creditRatingHistory", key)
        return [rating_view(r) for r in await ctx.runtime.credit.ratings.history(key, limit)]

    @strawberry.field(description="District-wide credit runs, newest first.")
    async def credit_rating_jobs(self, info: strawberry.Info, limit: int = 20) -> list[RatingJobState]:
        ctx = _ctx(info)
        ctx.note("creditRatingJobs")
        return [RatingJobState(**vars(j)) for j in await ctx.runtime.credit.district.jobs(max(1, min(limit, 200)))]

    @strawberry.field(description="The measures catalogue of the policy in force, optionally for one context.")
    def credit_measures(self, info: strawberry.Info, context: Optional[str] = None) -> list[gql.CreditMeasure]:
        ctx = _ctx(info)
        try:
            return measure_views(ctx.runtime.policy.credit, context)
        except CreditInputError as exc:
            raise _refused(exc) from None

    @strawberry.field(description="A credit check by the credit office (government: a natural person's findings count).")
    async def credit_check(self, info: strawberry.Info, subject: str, context: str) -> gql.CreditCheckResult:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            (result,) = await runtime.credit.check(runtime.policy, [subject], context, _today(ctx))
        except CreditInputError as exc:
            raise _refused(exc) from None
        ctx.note("creditCheck", result.subject, context=context, verdict=result.verdict.value)
        return check_view(result, _today(ctx))

    @strawberry.field(description="A supervision plan for a department (or the whole district) and a period.")
    async def credit_supervision_plan(
        self, info: strawberry.Info, department: Optional[str] = None, period: Optional[str] = None
    ) -> gql.SupervisionPlanResult:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            plan = await runtime.credit.supervision_plan(runtime.policy, department, period, _today(ctx))
        except CreditInputError as exc:
            raise _refused(exc) from None
        ctx.note("supervisionPlan", department=department, period=plan.period.text, subjects=len(plan.entries))
        return plan_view(plan, lambda kind: ctx.note("supervisionPlanExport", department=department, format=kind))

    @strawberry.field(description="实施反馈: how often each department applied each measure.")
    async def measure_feedback(self, info: strawberry.Info, department: Optional[str] = None) -> list[MeasureFeedbackTotal]:
        ctx = _ctx(info)
        ctx.note("measureFeedback", department=department)
        totals = await ctx.runtime.credit.feedback.totals(ctx.runtime.policy.credit, department)
        return [MeasureFeedbackTotal(**vars(t)) for t in totals]


@strawberry.type
class CreditAdminMutation:
    @strawberry.mutation(description="Revoke a finding (the credit office, e.g. on review); its listing is cancelled or amended.")
    async def revoke_credit_finding(self, info: strawberry.Info, id: int, reason: str) -> gql.CreditFinding:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            finding = await runtime.credit.revoke_finding(runtime.policy, id, None, reason, ctx.by, _today(ctx))
        except CreditInputError as exc:
            raise _refused(exc) from None
        ctx.note("revokeCreditFinding", finding.subject, finding=id, reason=reason)
        return finding_view(finding, runtime.policy.credit)

    @strawberry.mutation(description="Record a department's finding (its paper decision), checked as on /graphql.")
    async def record_credit_finding(
        self, info: strawberry.Info, department: str, input: gql.FindingInput
    ) -> gql.FindingOutcome:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            outcome = await runtime.credit.record_finding(
                runtime.policy, subject=input.subject, basis=input.basis, facts=input.facts,
                legal_basis=input.legal_basis, records=[RecordRef(r.family, r.key) for r in input.records],
                department=department, decided_on=input.decided_on, measures=input.measures, by=ctx.by,
                today=_today(ctx), subject_name=input.subject_name or "", severity=input.severity,
            )
        except (CreditInputError, CreditUnavailable) as exc:
            raise _refused(exc) if isinstance(exc, CreditInputError) else refused(exc) from None
        ctx.note("recordCreditFinding", outcome.finding.subject, department=department, finding=outcome.finding.id,
                 listing=outcome.listing.id if outcome.listing else None)
        return gql.FindingOutcome(
            finding=finding_view(outcome.finding, runtime.policy.credit),
            listing=listing_view(outcome.listing, True, department_names(ctx.runtime.federation)) if outcome.listing is not None else None,
        )

    @strawberry.mutation(description="Record a department's red-list entry on a red-list basis.")
    async def add_credit_red_listing(self, info: strawberry.Info, department: str, input: gql.RedListInput) -> gql.CreditListing:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            listing = await runtime.credit.red_list(
                runtime.policy, subject=input.subject, basis=input.basis, reason=input.reason, department=department,
                listed_on=input.listed_on, by=ctx.by, today=_today(ctx), subject_name=input.subject_name or "",
            )
        except (CreditInputError, CreditUnavailable) as exc:
            raise _refused(exc) if isinstance(exc, CreditInputError) else refused(exc) from None
        ctx.note("addCreditRedListing", listing.subject, department=department, listing=listing.id)
        return listing_view(listing, True, department_names(ctx.runtime.federation))

    @strawberry.mutation(description="Record a court's cancellation of a listing (quote the ruling in `reason`).")
    async def cancel_credit_listing(self, info: strawberry.Info, id: int, reason: str) -> gql.CreditListing:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            listing = await runtime.credit.end_listing(runtime.policy, id, "cancelled", reason, ctx.by, _today(ctx), None)
        except CreditInputError as exc:
            raise _refused(exc) from None
        ctx.note("cancelCreditListing", listing.subject, listing=id, reason=reason)
        return listing_view(listing, True, department_names(ctx.runtime.federation))

    @strawberry.mutation(description="Record the expiry of every listing whose end date has passed; returns how many.")
    async def expire_credit_listings(self, info: strawberry.Info) -> int:
        ctx = _ctx(info)
        count = await ctx.runtime.credit.expire_due(_today(ctx), ctx.by)
        ctx.note("expireCreditListings", expired=count)
        return count

    @strawberry.mutation(description="Rate one subject now (its list rules first), from the departments' records.")
    async def rate_subject(self, info: strawberry.Info, subject: str) -> gql.CreditRating:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            rating = await runtime.credit.rate(runtime.policy, subject, _today(ctx), ctx.by)
        except CreditInputError as exc:
            raise _refused(exc) from None
        except CreditUnavailable as exc:  # a department is down: not the administrator's input
            raise refused(exc) from None
        ctx.note("rateSubject", rating.subject, level=rating.level, model=rating.model_version)
        return rating_view(rating)

    @strawberry.mutation(description="Start (or `resume`) the district-wide run in the background; follow it in creditRatingJobs.")
    async def run_credit_ratings(self, info: strawberry.Info, resume: bool = False) -> RatingJobState:
        ctx = _ctx(info)
        runtime = ctx.runtime
        policy, today = runtime.policy, _today(ctx)
        try:
            job = await runtime.credit.district.start_job(policy.credit, ctx.by, resume)
        except CreditInputError as exc:
            raise _refused(exc) from None

        runtime.credit.start_district(job, policy, today, ctx.by)
        ctx.note("runCreditRatings", job=job.id, resume=resume)
        return RatingJobState(**vars(job))
