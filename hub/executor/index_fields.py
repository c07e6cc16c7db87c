"""The credit environment index fields of the GraphQL schemas (docs/cases.md).

`creditEnvironmentIndex(from: String, to: String, industry: String)` — the district's indicators
per month and the composite index (hub/cases/index.py), with the formula's version and weights,
and the same as CSV (`csv`). On `/graphql` (every token holder) and on `/public/graphql`: it is
public statistics, aggregates only — no subject is named in the answer or in the audit entry,
which carries `detail.creditEnvironmentIndex = {from, to}` (and the industry when one is asked).
Both endpoints answer as the public sees it (`PUBLIC`): no figure of a month with fewer than 5
subjects known, no figure of an industry counting fewer than 5 subjects (nor the figures that
would give it back by subtraction), no complaint figures per industry — each such figure null,
named with its reason in the month's `suppressed`. The admin API (the credit office) sees them
all (hub/admin/index.py). Bad input (a month that is not YYYY-MM, `from` after `to`, more than
60 months, a month after the current one, an industry with control characters) is
BAD_USER_INPUT naming the argument.

The types here are also the admin API's (hub/admin/index.py).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Mapping, Optional

import strawberry
from graphql import GraphQLError

from xinlian.hub.cases.index import (
    MIN_SUBJECTS,
    PUBLIC,
    REASONS,
    EnvironmentIndex,
    IndexInputError,
    MonthIndicators,
    Window,
    environment_index,
    index_csv,
)
from xinlian.hub.cases.model import KINDS
from xinlian.hub.credit.model import CreditInputError
from xinlian.hub.credit.register import decision_text

if TYPE_CHECKING:
    from xinlian.hub.cases.calendar import WorkingCalendar
    from xinlian.hub.store import Store
    from xinlian.policies.credit import CreditRules

    from .request import RequestContext


SUPPRESSED = (f"Null when suppressed: a figure that would count fewer than {MIN_SUBJECTS} subjects, or give one back "
              "by subtraction (`suppressed` says why).")


@strawberry.type(description="A figure the answer does not show, and why.")
class SuppressedFigure:
    figure: str = strawberry.field(description="The figure's CSV column: subjects_known, level_AAA, findings_market_serious, "
                                               "complaints_due, component_honest_share, index, ...")
    reason: str = strawberry.field(description=f"population (fewer than {MIN_SUBJECTS} subjects known in the month: nothing "
                                               f"shown), small (counts 1 to {MIN_SUBJECTS - 1} subjects), complement (would give "
                                               "a suppressed figure back by subtraction), derived (computed from a suppressed "
                                               "figure), complaints (not published per industry).")
    explanation: str


@strawberry.type(description="A count under a name: a rating level, a supervision class, a severity.")
class NamedCount:
    name: str
    count: Optional[int] = strawberry.field(description=SUPPRESSED)
    suppressed: Optional[str] = strawberry.field(default=None, description="Why the count is null (a reason of SuppressedFigure).")


@strawberry.type(description="Findings of one department and severity decided in the month.")
class DepartmentFindings:
    department: str = strawberry.field(description="The deciding department (its connector name).")
    severity: str = strawberry.field(description="general or serious.")
    count: Optional[int] = strawberry.field(description=SUPPRESSED)
    suppressed: Optional[str] = None


@strawberry.type(description="One component of the composite index: its value (0–1; null: not computable this month, or suppressed) and weight.")
class IndexComponent:
    name: str
    value: Optional[float]
    weight: float
    suppressed: Optional[str] = strawberry.field(default=None, description="Why the value is null when it is suppressed "
                                                                           "(the index is then computed without it).")


@strawberry.type(description="Cases of one kind in the month: filed, closed, due (deadline in the month) and answered on time.")
class CaseFigures:
    kind: str = strawberry.field(description="objection, complaint or repair.")
    filed: Optional[int]
    closed: Optional[int]
    due: Optional[int] = strawberry.field(description="Due in the month and timed (withdrawn cases and open ones not yet due left out).")
    on_time: Optional[int]


@strawberry.type(description="The district's credit indicators of one month (docs/cases.md). Outside the admin API a figure "
                             "is null when suppressed; `suppressed` names each and says why.")
class EnvironmentMonth:
    month: str = strawberry.field(description="YYYY-MM (Hohhot).")
    as_of: dt.date = strawberry.field(description="The day the month-end figures are taken: the month's last day, today for the current month.")
    subjects_known: Optional[int] = strawberry.field(description="Subjects rated, found or listed by month end.")
    subjects_rated: Optional[int]
    subjects_with_dishonesty: Optional[int] = strawberry.field(description="Known subjects with a finding in force or on the blacklist at month end.")
    dishonesty_share: Optional[float]
    findings_general: Optional[int] = strawberry.field(description="General findings decided in the month (revoked ones left out).")
    findings_serious: Optional[int]
    findings_by_department: list[DepartmentFindings]
    blacklist_size: Optional[int] = strawberry.field(description="Subjects on the blacklist at month end.")
    red_list_size: Optional[int]
    blacklist_per_1000: Optional[float] = strawberry.field(description="Blacklisted subjects per 1,000 known subjects.")
    objections_corrected: Optional[int]
    repairs_approved: Optional[int]
    complaints_resolved: Optional[int]
    complaint_median_working_days: Optional[float] = strawberry.field(
        description="Median working days from filing to resolution of the complaints resolved in the month."
    )
    cases: list[CaseFigures]
    rating_levels: list[NamedCount] = strawberry.field(description="Newest rating per subject at month end, per level AAA … C.")
    supervision_classes: list[NamedCount]
    penalties: list[NamedCount] = strawberry.field(
        description="Penalties decided in the month by severity (轻微, 一般, 严重, other), as each subject's newest rating snapshot read them."
    )
    components: list[IndexComponent]
    index: Optional[float] = strawberry.field(description="The composite index, 0–100 (null: no component computable or shown), "
                                                          "over the components shown.")
    suppressed: list[SuppressedFigure] = strawberry.field(description="The figures not shown in this answer, and why (none for the credit office).")


@strawberry.type(description="The credit environment index (信用环境指数): indicators per month and the composite index.")
class CreditEnvironmentIndex:
    from_: str = strawberry.field(name="from")
    to: str
    industry: Optional[str]
    formula_version: str
    minimum_subjects: int = strawberry.field(description="Outside the admin API no figure shown counts fewer subjects than this.")
    months: list[EnvironmentMonth]
    result: strawberry.Private[EnvironmentIndex]

    @strawberry.field(description="The same as CSV (UTF-8 text, a header row, one row per month; suppressed figures empty, "
                                  "named in the `suppressed` column as figure=reason).")
    def csv(self) -> str:
        return index_csv(self.result)


def _named(values: Mapping[str, Optional[int]], prefix: str, hidden: Mapping[str, str]) -> list[NamedCount]:
    return [NamedCount(name=k, count=v, suppressed=hidden.get(f"{prefix}{k}")) for k, v in values.items()]


def month_view(m: MonthIndicators, weights: dict[str, float]) -> EnvironmentMonth:
    hidden = m.suppressed
    cases = [
        CaseFigures(kind=k, filed=m.cases[f"{k}s_filed"], closed=m.cases[f"{k}s_closed"], due=m.cases[f"{k}s_due"],
                    on_time=m.cases[f"{k}s_on_time"])
        for k in KINDS
    ]
    return EnvironmentMonth(
        month=m.month, as_of=m.as_of, subjects_known=m.subjects_known, subjects_rated=m.subjects_rated,
        subjects_with_dishonesty=m.subjects_with_dishonesty, dishonesty_share=m.dishonesty_share,
        findings_general=m.findings["general"], findings_serious=m.findings["serious"],
        findings_by_department=[
            DepartmentFindings(department=d, severity=s, count=n, suppressed=hidden.get(f"findings_{d}_{s}"))
            for (d, s), n in m.findings_by_department.items()
        ],
        blacklist_size=m.blacklist_size, red_list_size=m.red_list_size, blacklist_per_1000=m.blacklist_per_1000,
        objections_corrected=m.cases["objections_corrected"], repairs_approved=m.cases["repairs_approved"],
        complaints_resolved=m.cases["complaints_resolved"], complaint_median_working_days=m.complaint_median_working_days,
        cases=cases,
        rating_levels=_named(m.levels, "level_", hidden), supervision_classes=_named(m.classes, "class_", hidden),
        penalties=_named(m.penalties, "penalties_", hidden),
        components=[IndexComponent(name=k, value=v, weight=weights[k], suppressed=hidden.get(f"component_{k}"))
                    for k, v in m.components.items()],
        index=m.index,
        suppressed=[SuppressedFigure(figure=k, reason=r, explanation=REASONS[r]) for k, r in hidden.items()],
    )


def index_view(result: EnvironmentIndex) -> CreditEnvironmentIndex:
    weights = dict(result.weights)
    return CreditEnvironmentIndex(
        from_=result.first, to=result.last, industry=result.industry, formula_version=result.formula_version,
        minimum_subjects=result.minimum_subjects, months=[month_view(m, weights) for m in result.months], result=result,
    )


def checked_industry(industry: Optional[str]) -> Optional[str]:
    """An industry as ratings record it (国民经济行业分类 name), or `IndexInputError`."""
    if industry is None:
        return None
    try:
        return decision_text(industry, "industry", required=True, limit=100, multiline=False)
    except CreditInputError as exc:
        raise IndexInputError(str(exc), "industry") from None


async def compute(
    store: "Store", rules: "CreditRules", calendar: "WorkingCalendar", today: dt.date,
    first: Optional[str], last: Optional[str], industry: Optional[str], audience: str = PUBLIC,
) -> EnvironmentIndex:
    """The index asked for (input checked: `IndexInputError`) as `audience` sees it, shared by
    /graphql, the admin API and the CLI (the store's cache of this process: hub/cases/index.py)."""
    window = Window.parse(first, last, today)
    return await environment_index(store, rules, calendar, window, today, checked_industry(industry), audience=audience)


def audit_detail(result: EnvironmentIndex) -> dict[str, Any]:
    detail: dict[str, Any] = {"from": result.first, "to": result.last}
    if result.industry is not None:
        detail["industry"] = result.industry
    return detail


async def credit_environment_index(
    info: strawberry.Info,
    from_: Annotated[Optional[str], strawberry.argument(name="from", description="First month, YYYY-MM (default: 11 months before `to`).")] = None,
    to: Annotated[Optional[str], strawberry.argument(description="Last month, YYYY-MM (default: the current month).")] = None,
    industry: Annotated[Optional[str], strawberry.argument(description="Only subjects whose newest rating names this industry.")] = None,
) -> CreditEnvironmentIndex:
    ctx: "RequestContext" = info.context
    cases = ctx.services.cases
    if cases is None:
        raise GraphQLError("the index is not available on this hub", extensions={"code": "INTERNAL_SERVER_ERROR"})
    try:
        result = await compute(cases.store, ctx.policy.credit, cases.calendar, ctx.today, from_, to, industry, PUBLIC)
    except IndexInputError as exc:
        raise GraphQLError(str(exc), extensions={"code": "BAD_USER_INPUT", "argument": exc.argument}) from None
    ctx.findings.detail["creditEnvironmentIndex"] = audit_detail(result)
    return index_view(result)


def query_fields(public: bool) -> dict[str, Any]:
    """`creditEnvironmentIndex`, on both schemas (it names no subject; both answer as the public sees it)."""
    return {
        "credit_environment_index": strawberry.field(
            resolver=credit_environment_index,
            description="信用环境指数: the district's credit indicators per month (from, to: YYYY-MM; at most 60 months) "
                        "and the composite index, with its formula version and a CSV form. Figures that could single a "
                        "subject out (fewer than 5 subjects) are null, named in each month's `suppressed`.",
        ),
    }
