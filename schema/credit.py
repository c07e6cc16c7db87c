"""GraphQL types of credit governance: listings, credit checks, measures, findings, ratings, plans.

These are the hub's own decisions (not department records), so their fields are fixed here;
who may call the fields that return them is policy data (`credit.access`, hub/executor/
credit_fields.py). The public contract carries only `CreditListing` (name, code, basis, dates,
deciding department — the fields the national publicity rules make public) through
`blacklist`, `redList` and `LegalPerson.listings`.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Callable, Optional

import strawberry


@strawberry.enum(description="What a credit check answers (联合奖惩).")
class CreditVerdict(enum.Enum):
    ALLOWED = "ALLOWED"
    RESTRICTED = "RESTRICTED"
    PROHIBITED = "PROHIBITED"


@strawberry.type(description="A subject on the blacklist (严重失信主体名单) or the red list (守信激励名单).")
class CreditListing:
    id: int = strawberry.field(description="The listing's number.")
    list: str = strawberry.field(description="`black` (严重失信主体名单) or `red` (守信激励名单).")
    list_label: str = strawberry.field(description="The list's Chinese name.")
    subject: str = strawberry.field(description="The subject's code (a natural person's ID is masked for the public).")
    subject_name: str = strawberry.field(description="The subject's name as decided (a natural person's is masked for the public).")
    basis: str = strawberry.field(description="The basis code (policy `credit.bases`) or list rule name.")
    basis_text: str = strawberry.field(description="认定依据: the basis in words.")
    department: str = strawberry.field(description="The deciding department (its code in the hub).")
    department_name: str = strawberry.field(description="The deciding department's name (作出决定部门).")
    listed_on: dt.date = strawberry.field(description="列入日期.")
    ends_on: Optional[dt.date] = strawberry.field(description="The last day on the list (移出日期 the day after); null while its rule holds.")


@strawberry.type(description="A page of a list, oldest listing first.")
class CreditListingPage:
    items: list[CreditListing]
    total_count: int = strawberry.field(description="Current listings on the list.")
    end_cursor: Optional[str] = strawberry.field(description="Pass as `after` for the next page.")
    has_next_page: bool


@strawberry.type(description="A listing or finding behind a measure.")
class CreditReason:
    kind: str = strawberry.field(description="`listing` or `finding`.")
    id: int
    basis: str
    basis_text: str
    department: str
    since: dt.date = strawberry.field(description="Listed on, or decided on.")
    until: Optional[dt.date] = strawberry.field(description="Last day in force; null while its rule holds.")
    list: Optional[str] = strawberry.field(description="black or red, for a listing.")
    severity: Optional[str] = strawberry.field(description="general or serious, for a finding.")


@strawberry.type(description="A measure of the catalogue that applies, and why.")
class AppliedCreditMeasure:
    code: str
    name: str
    effect: str = strawberry.field(description="PROHIBITED, RESTRICTED or REWARD.")
    basis: str = strawberry.field(description="Its legal basis.")
    department: str = strawberry.field(description="The issuing department.")
    reasons: list[CreditReason]


@strawberry.type(description="A credit check of one subject in one context (联合奖惩).")
class CreditCheckResult:
    subject: str
    context: str
    verdict: CreditVerdict
    measures: list[AppliedCreditMeasure] = strawberry.field(description="The sanctions that apply.")
    rewards: list[AppliedCreditMeasure] = strawberry.field(description="The rewards that apply (fast-track, fewer inspections, waived deposits).")
    reasons: list[CreditReason] = strawberry.field(description="Every listing and finding behind them.")
    checked_on: dt.date


@strawberry.type(description="A measure of the catalogue (失信惩戒措施清单 / 守信激励措施清单).")
class CreditMeasure:
    code: str
    name: str
    effect: str
    contexts: list[str]
    basis: str
    department: str
    triggers: list[str] = strawberry.field(description="blacklist, redlist, finding-serious, finding-general (optionally :basis).")


@strawberry.type(description="A department record a finding rests on.")
class FindingRecordRef:
    family: str
    key: str


@strawberry.input(description="A department record a finding rests on.")
class FindingRecordInput:
    family: str
    key: str


@strawberry.type(description="A dishonesty finding (失信认定).")
class CreditFinding:
    id: int
    subject: str
    subject_name: str
    severity: str = strawberry.field(description="general (一般失信) or serious (严重失信).")
    basis: str
    basis_text: str
    facts: str
    legal_basis: str
    records: list[FindingRecordRef]
    department: str
    decided_on: dt.date
    in_force_until: Optional[dt.date]
    measures: list[str]
    status: str = strawberry.field(description="in_force or revoked.")


@strawberry.type(description="A recorded finding, and the blacklist listing it made or extended.")
class FindingOutcome:
    finding: CreditFinding
    listing: Optional[CreditListing]


@strawberry.input(description="A finding to record for the calling department.")
class FindingInput:
    subject: str
    basis: str = strawberry.field(description="A basis code of the policy's `credit.bases` your department may use.")
    facts: str
    legal_basis: str
    decided_on: dt.date
    records: list[FindingRecordInput] = strawberry.field(default_factory=list)
    measures: list[str] = strawberry.field(default_factory=list, description="Proposed measure codes.")
    severity: Optional[str] = strawberry.field(default=None, description="general or serious; must match the basis.")
    subject_name: Optional[str] = None


@strawberry.input(description="An explicit red-list entry.")
class RedListInput:
    subject: str
    basis: str
    reason: str
    listed_on: dt.date
    subject_name: Optional[str] = None


@strawberry.input(description="实施反馈: a measure the calling unit applied after a credit check.")
class MeasureFeedbackInput:
    measure: str
    subject: str
    context: str
    applied_on: dt.date
    check_request_id: Optional[str] = None
    note: Optional[str] = None


@strawberry.type(description="One indicator's part in a rating.")
class RatingIndicator:
    name: str
    label: str
    kind: str
    points: float
    weight: float = strawberry.field(description="The industry weight applied.")
    evidence: list[str] = strawberry.field(description="family:key of records, listing:<id>, finding:<id>, objection:<id>.")
    detail: str


@strawberry.type(description="A rating on the nine-level scale (三等九级), explained.")
class CreditRating:
    subject: str
    subject_name: str
    industry: str
    level: str
    score: float
    supervision_class: str
    model_version: str
    policy_version: str
    rated_on: dt.date
    trigger: str
    indicators: list[RatingIndicator]


@strawberry.type(description="One subject of a supervision plan.")
class SupervisionPlanEntry:
    subject: str
    name: str
    industry: str
    level: str
    score: float
    supervision_class: str
    approach: str
    inspections_due: int
    rated_on: dt.date


@strawberry.type(description="A supervision plan (分级分类监管): subjects by class for a period.")
class SupervisionPlanResult:
    department: Optional[str]
    period: str
    starts_on: dt.date
    ends_on: dt.date
    class_a: int
    class_b: int
    class_c: int
    entries: list[SupervisionPlanEntry]
    exporter: strawberry.Private[Callable[[str], str]]
    csv: str = strawberry.field(
        resolver=lambda root: root.exporter("csv"),
        description="The plan as CSV (UTF-8, Chinese headers): the export a department files.",
    )
    xlsx_base64: str = strawberry.field(
        resolver=lambda root: root.exporter("xlsx"),
        description="The plan as an XLSX workbook (one sheet, the CSV's columns), base64-encoded.",
    )
