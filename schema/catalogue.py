"""The record families of the district's credit file and the fields each one has.

This module is the one place where a field's *existence* is declared: its GraphQL name,
value type, Chinese label (the national 双公示 data item) and description. Who may see a
field lives in `policies/`; where it comes from lives in each connector's mapping.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ValueType(enum.Enum):
    """The value type of a record field, as exposed in GraphQL."""

    STRING = "String"
    DATE = "Date"
    DECIMAL = "Decimal"
    INT = "Int"


class SubjectKind(enum.Enum):
    """The kinds of credit subject (信用主体)."""

    LEGAL_PERSON = "legal_person"
    NATURAL_PERSON = "natural_person"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a record family."""

    name: str  # snake_case; GraphQL exposes it in camelCase
    type: ValueType
    label: str  # the Chinese data item name
    description: str
    allowed: tuple[str, ...] = ()  # the only values a source may send (empty: any); others are refused
    # the field holds the name of the record's own subject (a person's name masks; a legal person's
    # registered name is public, so a `name` mask does not apply to it under a legal person)
    names_subject: bool = False

    @property
    def graphql_name(self) -> str:
        head, *rest = self.name.split("_")
        return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True, slots=True)
class RecordFamily:
    """A standard family of credit records (e.g. administrative penalties)."""

    name: str  # policy and connector key, snake_case
    type_name: str  # GraphQL object type name
    label: str
    description: str
    many: bool  # a list of records per subject, or at most one
    subjects: tuple[SubjectKind, ...]
    fields: tuple[FieldSpec, ...]
    recency: str | None = None  # newest first by this field; single-record families keep the newest
    record_key: str | None = None  # the field naming one record (objections refer to it)

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    @property
    def graphql_field(self) -> str:
        """The field name on the subject type (e.g. `judgmentDebtorRecords`)."""
        return FieldSpec(self.name, ValueType.STRING, "", "").graphql_name


S, D, M, I = ValueType.STRING, ValueType.DATE, ValueType.DECIMAL, ValueType.INT  # noqa: E741 (column aliases)
LEGAL, NATURAL = SubjectKind.LEGAL_PERSON, SubjectKind.NATURAL_PERSON

REGISTRATION = RecordFamily(
    name="registration",
    type_name="Registration",
    label="登记基础信息",
    description="Registration basics kept by the market regulation bureau.",
    many=False,
    subjects=(LEGAL,),
    fields=(
        FieldSpec("name", S, "主体名称", "Registered name of the legal person."),
        FieldSpec("legal_representative", S, "法定代表人", "Name of the legal representative."),
        FieldSpec("legal_representative_id", S, "法定代表人证件号码", "Resident ID of the legal representative."),
        FieldSpec("status", S, "登记状态", "Registration status: 存续, 吊销 or 注销."),
        FieldSpec("established_date", D, "成立日期", "Date of establishment."),
        FieldSpec("address", S, "住所", "Registered address."),
        FieldSpec("industry", S, "行业", "Industry (国民经济行业分类)."),
        FieldSpec("registered_capital", M, "注册资本（万元）", "Registered capital in 10,000 yuan."),
        FieldSpec("contact_phone", S, "联系电话", "Contact telephone on file with the registry."),
    ),
)

# The items the 2021 双公示 data standard gives both licences and penalties: who the party (行政相对人)
# is, by name, category and each of its codes, and the data-source unit. 行政相对人代码_1 is the
# USCC (a legal person's subject key); 证件类型/证件号码 identify a natural person party.
PARTY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("party_name", S, "行政相对人名称", "Name of the party: a legal person's registered name or a natural person's name.",
              names_subject=True),
    FieldSpec("party_category", S, "行政相对人类别", "Category of the party: 法人及非法人组织, 自然人 or 个体工商户.",
              allowed=("法人及非法人组织", "自然人", "个体工商户")),
    FieldSpec("party_uscc", S, "行政相对人代码_1（统一社会信用代码）", "The party's unified social credit code."),
    FieldSpec("party_business_registration_number", S, "行政相对人代码_2（工商注册号）", "The party's former business registration number."),
    FieldSpec("party_organization_code", S, "行政相对人代码_3（组织机构代码）", "The party's organisation code (GB 11714)."),
    FieldSpec("party_tax_registration_number", S, "行政相对人代码_4（税务登记号）", "The party's tax registration number."),
    FieldSpec("party_institution_certificate_number", S, "行政相对人代码_5（事业单位证书号）",
              "The party's public institution legal person certificate number."),
    FieldSpec("party_social_organization_number", S, "行政相对人代码_6（社会组织登记证号）",
              "The party's social organisation registration certificate number."),
    FieldSpec("legal_representative", S, "法定代表人", "Legal representative (or person in charge) of a legal person party."),
    FieldSpec("legal_representative_id_type", S, "法定代表人证件类型", "Type of the legal representative's identity document."),
    FieldSpec("legal_representative_id_number", S, "法定代表人证件号码", "Number of the legal representative's identity document."),
    FieldSpec("party_id_type", S, "证件类型", "Type of a natural person party's identity document (身份证, 护照号, ...)."),
    FieldSpec("party_id_number", S, "证件号码", "Number of a natural person party's identity document."),
)
SOURCE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    FieldSpec("data_source_unit_uscc", S, "数据来源单位统一社会信用代码", "USCC of the department that supplied the record."),
    FieldSpec("remarks", S, "备注", "Remarks published with the record."),
)

LICENSES = RecordFamily(
    name="licenses",
    type_name="AdministrativeLicense",
    label="行政许可",
    description="Administrative licences granted to the subject, from every licensing department.",
    many=True,
    subjects=(LEGAL,),
    recency="decision_date",
    record_key="decision_number",
    fields=(
        *PARTY_FIELDS,
        FieldSpec("decision_document_name", S, "行政许可决定文书名称", "Title of the licence decision document."),
        FieldSpec("decision_number", S, "行政许可决定文书号", "Number of the licence decision document."),
        FieldSpec("license_name", S, "许可证书名称", "Name of the licence."),
        FieldSpec("license_category", S, "许可类别", "Licence category (普通, 特许, 认可, 核准, 登记, 其他)."),
        FieldSpec("license_number", S, "许可编号", "Licence number."),
        FieldSpec("content", S, "许可内容", "What the licence permits."),
        FieldSpec("decision_date", D, "许可决定日期", "Date of the licence decision."),
        FieldSpec("valid_from", D, "有效期自", "Start of validity."),
        FieldSpec("valid_to", D, "有效期至", "End of validity."),
        FieldSpec("authority", S, "许可机关", "Issuing authority."),
        FieldSpec("authority_uscc", S, "许可机关统一社会信用代码", "USCC of the issuing authority."),
        FieldSpec("current_status", S, "当前状态", "Whether the licence is in force: 有效 or 无效 (revoked, cancelled, withdrawn).",
                  allowed=("有效", "无效")),
        *SOURCE_FIELDS,
        FieldSpec("review_status", S, "审核状态", "Review status at the source (e.g. 已审核); records awaiting review are not shown to the public."),
    ),
)

PENALTIES = RecordFamily(
    name="penalties",
    type_name="AdministrativePenalty",
    label="行政处罚",
    description="Administrative penalties, a union across every department that imposes them.",
    many=True,
    subjects=(LEGAL, NATURAL),
    recency="decision_date",
    record_key="decision_number",
    fields=(
        *PARTY_FIELDS,
        FieldSpec("decision_number", S, "行政处罚决定书文号", "Number of the penalty decision document."),
        FieldSpec("violation_type", S, "违法行为类型", "Type of the violation."),
        FieldSpec("facts", S, "违法事实", "Facts of the violation."),
        FieldSpec("legal_basis", S, "处罚依据", "Legal basis of the penalty."),
        FieldSpec("penalty_category", S, "处罚类别", "Penalty category (警告, 罚款, 没收违法所得, ...)."),
        FieldSpec("content", S, "处罚内容", "Content of the penalty."),
        FieldSpec("fine_amount", M, "罚款金额（万元）", "Fine in 10,000 yuan."),
        FieldSpec("confiscation_amount", M, "没收违法所得、没收非法财物的金额（万元）", "Confiscated amount in 10,000 yuan."),
        FieldSpec("license_suspension_or_revocation", S, "暂扣或吊销证照名称及编号",
                  "Name and number of the licence or permit suspended or revoked by the penalty, if any."),
        FieldSpec("decision_date", D, "处罚决定日期", "Date of the penalty decision."),
        FieldSpec("penalty_valid_until", D, "处罚有效期", "Last day the penalty itself is in effect (e.g. the end of a suspension)."),
        FieldSpec("authority", S, "处罚机关", "Penalising authority."),
        FieldSpec("authority_uscc", S, "处罚机关统一社会信用代码", "USCC of the penalising authority."),
        *SOURCE_FIELDS,
        FieldSpec("severity", S, "失信程度", "Severity: 轻微, 一般 or 严重."),
        FieldSpec("publicity_end_date", D, "公示截止期", "Last day the record is shown to the public."),
        FieldSpec("case_handler", S, "办案人员", "Officers who handled the case (internal)."),
        FieldSpec("review_status", S, "审核状态", "Review status at the source (e.g. 已审核); records awaiting review are not shown to the public."),
    ),
)

TAX_CREDIT = RecordFamily(
    name="tax_credit",
    type_name="TaxCredit",
    label="纳税信用等级",
    description="The subject's latest annual tax credit evaluation (A/B/M/C/D).",
    many=False,
    subjects=(LEGAL,),
    recency="year",
    record_key="year",
    fields=(
        FieldSpec("level", S, "纳税信用等级", "Tax credit level: A, B, M, C or D.", allowed=("A", "B", "M", "C", "D")),
        FieldSpec("year", I, "评价年度", "Evaluation year."),
        FieldSpec("evaluation_date", D, "评价日期", "Date of the evaluation."),
        FieldSpec("tax_paid", M, "年度纳税额（万元）", "Tax paid in the evaluation year, 10,000 yuan."),
        FieldSpec("authority", S, "评价机关", "Evaluating tax authority."),
    ),
)

JUDGMENT_DEBTORS = RecordFamily(
    name="judgment_debtor_records",
    type_name="JudgmentDebtorRecord",
    label="失信被执行人",
    description="Dishonest judgment debtor entries published by the courts.",
    many=True,
    subjects=(LEGAL, NATURAL),
    recency="publish_date",
    record_key="case_number",
    fields=(
        FieldSpec("case_number", S, "案号", "Enforcement case number."),
        FieldSpec("court", S, "执行法院", "Enforcing court."),
        FieldSpec("debtor_name", S, "被执行人姓名/名称", "Name of the judgment debtor.", names_subject=True),
        FieldSpec("debtor_id_number", S, "证件号码", "Identifier of the judgment debtor."),
        FieldSpec("filing_date", D, "立案时间", "Date the enforcement case was filed."),
        FieldSpec("publish_date", D, "发布时间", "Date the entry was published."),
        FieldSpec("basis_document", S, "执行依据文号", "Number of the document enforced."),
        FieldSpec("obligation", S, "生效法律文书确定的义务", "Obligation fixed by the effective legal document."),
        FieldSpec("performance", S, "被执行人的履行情况", "How far the debtor has performed."),
        FieldSpec("dishonest_behavior", S, "失信被执行人行为具体情形", "The dishonest behaviour."),
        FieldSpec("review_status", S, "审核状态", "Review status at the source (e.g. 已审核); records awaiting review are not shown to the public."),
    ),
)

HONORS = RecordFamily(
    name="honors",
    type_name="Honor",
    label="守信激励",
    description="Honours and red-list entries (守信激励).",
    many=True,
    subjects=(LEGAL,),
    recency="award_date",
    record_key="honor_name",
    fields=(
        FieldSpec("honor_name", S, "荣誉名称", "Name of the honour or red list."),
        FieldSpec("awarding_authority", S, "认定机关", "Authority that awarded it."),
        FieldSpec("award_date", D, "认定日期", "Date awarded."),
        FieldSpec("valid_to", D, "有效期至", "End of validity."),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
        FieldSpec("review_status", S, "审核状态", "Review status at the source (e.g. 已审核); records awaiting review are not shown to the public."),
    ),
)

SOCIAL_INSURANCE_ARREARS = RecordFamily(
    name="social_insurance_arrears",
    type_name="SocialInsuranceArrears",
    label="社会保险费欠缴",
    description="Employers' confirmed social insurance arrears, from the human resources and social security bureau.",
    many=True,
    subjects=(LEGAL,),
    recency="confirmed_date",
    record_key="arrears_period",
    fields=(
        FieldSpec("insurance_type", S, "险种", "Insurance type (养老, 医疗, 失业, 工伤, 生育)."),
        FieldSpec("arrears_period", S, "欠缴期间", "Months in arrears, e.g. 2026-01至2026-06."),
        FieldSpec("arrears_amount", M, "欠缴金额（万元）", "Amount in arrears, 10,000 yuan."),
        FieldSpec("confirmed_date", D, "认定日期", "Date the arrears were confirmed."),
        FieldSpec("status", S, "状态", "欠缴 (outstanding) or 已补缴 (paid up)."),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    ),
)

SOCIAL_INSURANCE_CONTRIBUTIONS = RecordFamily(
    name="social_insurance_contributions",
    type_name="SocialInsuranceContribution",
    label="社会保险参保缴费",
    description="A natural person's social insurance contributions (a classic item banks ask for, with consent).",
    many=True,
    subjects=(NATURAL,),
    recency="last_paid_month",
    fields=(
        FieldSpec("employer_name", S, "参保单位", "Employer that pays the contributions."),
        FieldSpec("insurance_type", S, "险种", "Insurance type."),
        FieldSpec("monthly_base", M, "缴费基数（元）", "Monthly contribution base in yuan."),
        FieldSpec("paid_months", I, "累计缴费月数", "Months paid in total."),
        FieldSpec("last_paid_month", S, "最近缴费年月", "Latest month paid, YYYY-MM."),
        FieldSpec("status", S, "参保状态", "参保缴费, 暂停缴费 or 终止."),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    ),
)

ABNORMAL_OPERATIONS = RecordFamily(
    name="abnormal_operations",
    type_name="AbnormalOperation",
    label="经营异常名录",
    description="Listings in the directory of abnormal operations (经营异常名录) by market regulation, "
                "each with its removal once the enterprise has put things right.",
    many=True,
    subjects=(LEGAL,),
    recency="listing_date",
    record_key="decision_number",
    fields=(
        FieldSpec("decision_number", S, "列入决定书文号", "Number of the decision that listed the enterprise."),
        FieldSpec("listing_reason", S, "列入经营异常名录原因", "Why the enterprise was listed."),
        FieldSpec("listing_date", D, "列入日期", "Date the enterprise was listed."),
        FieldSpec("listing_authority", S, "作出决定机关（列入）", "Authority that decided the listing."),
        FieldSpec("removal_reason", S, "移出经营异常名录原因", "Why the enterprise was removed; null while it is still listed."),
        FieldSpec("removal_date", D, "移出日期", "Date the enterprise was removed; null while it is still listed."),
        FieldSpec("removal_authority", S, "作出决定机关（移出）", "Authority that decided the removal; null while it is still listed."),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    ),
)

CREDIT_COMMITMENTS = RecordFamily(
    name="credit_commitments",
    type_name="CreditCommitment",
    label="信用承诺",
    description="Credit commitments (信用承诺) the subject made to a department, and whether it kept them.",
    many=True,
    subjects=(LEGAL,),
    recency="commitment_date",
    record_key="commitment_number",
    fields=(
        FieldSpec("commitment_number", S, "承诺编号", "Number of the commitment at the receiving department."),
        FieldSpec("commitment_type", S, "承诺类型",
                  "Type: 审批替代型 (in place of a certificate for an approval), 主动型 (made of its own accord), "
                  "行业自律型 (to an industry body) or 信用修复型 (to repair its credit).",
                  allowed=("审批替代型", "主动型", "行业自律型", "信用修复型")),
        FieldSpec("matter", S, "承诺事项", "The matter the commitment is about (e.g. the licence applied for)."),
        FieldSpec("content", S, "承诺内容", "What the subject committed to."),
        FieldSpec("commitment_date", D, "承诺日期", "Date the commitment was made."),
        FieldSpec("receiving_department", S, "承诺受理单位", "Department that received the commitment."),
        FieldSpec("fulfilment_status", S, "履行状态", "履约 (kept), 未履约 (broken) or 履约中 (still running).",
                  allowed=("履约", "未履约", "履约中")),
        FieldSpec("fulfilment_checked_date", D, "履约核查日期", "Date the department last checked the commitment; null if never."),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    ),
)

WAGE_ARREARS = RecordFamily(
    name="wage_arrears",
    type_name="WageArrears",
    label="欠薪（拖欠农民工工资）",
    description="Employers' confirmed wage arrears (欠薪) from the human resources and social security bureau, "
                "and whether the employer is on the list of dishonest employers in arrears of migrant workers' wages.",
    many=True,
    subjects=(LEGAL,),
    recency="confirmed_date",
    record_key="case_number",
    fields=(
        FieldSpec("case_number", S, "案件编号", "Number of the wage arrears case."),
        FieldSpec("arrears_amount", M, "拖欠工资金额（万元）", "Wages in arrears, 10,000 yuan."),
        FieldSpec("workers_affected", I, "涉及劳动者人数", "Number of workers owed wages."),
        FieldSpec("confirmed_date", D, "认定日期", "Date the arrears were confirmed."),
        FieldSpec("status", S, "状态", "欠薪 (outstanding) or 已清偿 (paid).", allowed=("欠薪", "已清偿")),
        FieldSpec("dishonest_list", S, "是否列入拖欠农民工工资失信联合惩戒对象名单",
                  "是 if the employer was put on the list of dishonest employers for joint sanctions, else 否.",
                  allowed=("是", "否")),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    ),
)

MAJOR_TAX_VIOLATIONS = RecordFamily(
    name="major_tax_violations",
    type_name="MajorTaxViolation",
    label="重大税收违法失信主体",
    description="Cases published under the tax authorities' measures on subjects of major tax violations and "
                "dishonesty (重大税收违法失信主体信息公布管理办法): shown for three years from publication.",
    many=True,
    subjects=(LEGAL, NATURAL),
    recency="decision_date",
    record_key="case_number",
    fields=(
        FieldSpec("case_number", S, "案件编号", "Number of the case at the inspecting tax authority."),
        FieldSpec("violation_nature", S, "案件性质", "Nature of the case (偷税, 逃避追缴欠税, 骗取出口退税, 虚开增值税专用发票, ...)."),
        FieldSpec("main_facts", S, "主要违法事实", "Main facts of the violation."),
        FieldSpec("legal_basis_and_penalty", S, "相关法律依据及税务处理处罚情况", "Legal basis, and how the case was handled and penalised."),
        FieldSpec("amount_involved", M, "涉案金额（万元）", "Tax evaded, defrauded or not paid in the case, 10,000 yuan."),
        FieldSpec("inspection_authority", S, "实施检查的单位", "Tax authority that inspected the case."),
        FieldSpec("decision_date", D, "公布日期", "Date the case was published; the publicity window counts from it."),
        FieldSpec("publicity_end_date", D, "公布截止日期", "Last day the case is published (three years after publication)."),
        FieldSpec("severity", S, "失信程度", "Severity for the publicity window: always 严重 for a major tax violation.",
                  allowed=("轻微", "一般", "严重")),
        FieldSpec("data_source_unit", S, "数据来源单位", "The department that supplied the record."),
    ),
)

FAMILIES: dict[str, RecordFamily] = {
    family.name: family
    for family in (
        REGISTRATION,
        LICENSES,
        PENALTIES,
        TAX_CREDIT,
        JUDGMENT_DEBTORS,
        HONORS,
        SOCIAL_INSURANCE_ARREARS,
        SOCIAL_INSURANCE_CONTRIBUTIONS,
        ABNORMAL_OPERATIONS,
        CREDIT_COMMITMENTS,
        WAGE_ARREARS,
        MAJOR_TAX_VIOLATIONS,
    )
}


def family(name: str) -> RecordFamily:
    """Look a record family up by name; `KeyError` names the unknown family."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown record family {name!r}") from None


def families_for(kind: SubjectKind) -> tuple[RecordFamily, ...]:
    """The record families a subject of this kind has, in declaration order."""
    return tuple(f for f in FAMILIES.values() if kind in f.subjects)
