"""The admin API's index fields (the credit office, 信用办; docs/cases.md).

Reads: `creditEnvironmentIndex(from, to, industry)` — the answer of `/graphql` with every
figure (the credit office sees what the public's answer suppresses: small cells, complaint
figures per industry; `suppressed` is empty), with its `csv`; `departmentAssessment(from, to)` —
department data quality per department and family (hub/cases/assessment.py), with its `csv`:
the table the credit office acts on. Availability is per period from the audit trail (the data
endpoints' requests that touched the department, and those that named it unavailable), with the
serving process's department links (`Federation.status()`, since it started) beside it. Each
read is noted in the request's audit entry (`detail.actions`); no subject is named.
There are no index mutations: the index and the table are computed from the store as it stands.
"""

from __future__ import annotations

from typing import Annotated, Optional

import strawberry

from xinlian.hub.cases.assessment import (
    Assessment,
    Availability,
    Quality,
    Source,
    assessment_csv,
    department_assessment,
)
from xinlian.hub.cases.index import OFFICE, IndexInputError, Window
from xinlian.hub.executor.index_fields import CreditEnvironmentIndex, audit_detail, compute, index_view

from .context import AdminContext
from .operations import AdminInputError

FROM = strawberry.argument(name="from", description="First month, YYYY-MM (default: 11 months before `to`).")
TO = strawberry.argument(description="Last month, YYYY-MM (default: the current month).")


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


@strawberry.type(description="A department's cases of one kind due in the period, and how many were answered by their deadline.")
class DeadlinesKept:
    due: int
    on_time: int
    rate: Optional[float] = strawberry.field(description="on time / due; null when none was due.")


@strawberry.type(description="One row of the department assessment: a department and a family (family null: the department as a whole).")
class DepartmentQuality:
    department: str = strawberry.field(description="The connector name.")
    department_name: str
    family: Optional[str]
    completeness: Optional[float] = strawberry.field(description="Share of the family's standard catalogue fields the connector maps.")
    mapped_fields: Optional[int]
    standard_fields: Optional[int]
    missing_fields: list[str]
    timeliness: Optional[float] = strawberry.field(description="Records published within 7 working days of decision; null where not measurable.")
    timeliness_note: str
    objections: int = strawberry.field(description="Objections filed in the period on its records (of this family).")
    objection_rate: Optional[float] = strawberry.field(description="Objections per 1,000 subjects known to the hub at the period's end.")
    objections_answered: DeadlinesKept
    repairs_decided: DeadlinesKept
    complaints_resolved: Optional[DeadlinesKept] = strawberry.field(description="Department rows only (complaints name no family).")
    availability: Optional[float] = strawberry.field(
        description="Over the period, from the audit trail: data-endpoint requests that called the department (or that it failed) "
                    "and that it did not fail / those requests. Department rows."
    )
    availability_requests: Optional[int] = strawberry.field(
        description="Data-endpoint requests in the period that called the department (`detail.asked`; older entries: that touched "
                    "a family it serves)."
    )
    availability_failed: Optional[int] = strawberry.field(description="Those that named it unavailable (`detail.unavailable`).")
    link_availability: Optional[float] = strawberry.field(description="Attempts that did not fail / attempts, this hub process's link since it started.")
    link_attempts: Optional[int]
    link_condition: Optional[str] = strawberry.field(description="healthy, degraded or open.")


@strawberry.type(description="Department data quality over a period (docs/cases.md).")
class DepartmentAssessment:
    from_: str = strawberry.field(name="from")
    to: str
    subjects_known: int
    rows: list[DepartmentQuality]
    result: strawberry.Private[Assessment]

    @strawberry.field(description="The same as CSV (a header row, one row per department and family; family * is the department).")
    def csv(self) -> str:
        return assessment_csv(self.result)


def _kept(due: int, on_time: int, rate: Optional[float]) -> DeadlinesKept:
    return DeadlinesKept(due=due, on_time=on_time, rate=rate)


def quality_view(q: Quality) -> DepartmentQuality:
    period, link, complaints = q.availability, q.link, q.complaints_timed
    return DepartmentQuality(
        department=q.department, department_name=q.department_name, family=q.family, completeness=q.completeness,
        mapped_fields=q.mapped_fields, standard_fields=q.standard_fields, missing_fields=list(q.missing_fields),
        timeliness=q.timeliness, timeliness_note=q.timeliness_note, objections=q.objections, objection_rate=q.objection_rate,
        objections_answered=_kept(q.objections_timed.due, q.objections_timed.on_time, q.objections_timed.rate),
        repairs_decided=_kept(q.repairs_timed.due, q.repairs_timed.on_time, q.repairs_timed.rate),
        complaints_resolved=_kept(complaints.due, complaints.on_time, complaints.rate) if complaints else None,
        availability=period.share if period else None, availability_requests=period.requests if period else None,
        availability_failed=period.failed if period else None, link_availability=link.share if link else None,
        link_attempts=link.attempts if link else None, link_condition=link.condition if link else None,
    )


@strawberry.type
class IndexAdminQuery:
    @strawberry.field(description="信用环境指数: the district's indicators per month and the composite index (as on /graphql, "
                                  "with every figure: nothing suppressed for the credit office).")
    async def credit_environment_index(
        self, info: strawberry.Info, from_: Annotated[Optional[str], FROM] = None, to: Annotated[Optional[str], TO] = None,
        industry: Optional[str] = None,
    ) -> CreditEnvironmentIndex:
        ctx = _ctx(info)
        runtime = ctx.runtime
        try:
            result = await compute(runtime.store, runtime.policy.credit, runtime.calendar, runtime.today(), from_, to, industry, OFFICE)
        except IndexInputError as exc:
            raise AdminInputError(str(exc)) from None
        ctx.note("creditEnvironmentIndex", **audit_detail(result))
        return index_view(result)

    @strawberry.field(description="Department data quality per department and family: completeness, timeliness, objections, deadlines kept, availability.")
    async def department_assessment(
        self, info: strawberry.Info, from_: Annotated[Optional[str], FROM] = None, to: Annotated[Optional[str], TO] = None,
    ) -> DepartmentAssessment:
        ctx = _ctx(info)
        runtime = ctx.runtime
        today = runtime.today()
        try:
            window = Window.parse(from_, to, today)
        except IndexInputError as exc:
            raise AdminInputError(str(exc)) from None
        federation = runtime.federation
        sources = [Source.of(c) for c in federation.connectors]
        links = {s.connector: Availability.of(s) for s in federation.status()}
        result = await department_assessment(runtime.store, sources, window, today, links)
        ctx.note("departmentAssessment", **{"from": result.first, "to": result.last})
        return DepartmentAssessment(
            from_=result.first, to=result.last, subjects_known=result.subjects_known,
            rows=[quality_view(q) for q in result.rows], result=result,
        )


@strawberry.type
class IndexAdminMutation:
    """No changes: the index and the assessment are computed from the store as it stands."""
