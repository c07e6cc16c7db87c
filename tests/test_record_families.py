"""The record families of issue 11 and the 2021 双公示 items, through a real hub on the demo district.

Abnormal operations and credit commitments come from market regulation's database, major tax
violations from the tax bureau's, wage arrears from the human resources bureau's file drop;
licences and penalties carry the national standard's 28 and 30 items. Each caller sees what the
default policy gives its class, and a major tax violation past its publicity window is not
shown outside government.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from hub_fixture import RunningHub, running_hub
from xinlian.hub.demo import generator
from xinlian.hub.demo.generator import TEMPLATE, build_demo_district
from xinlian.policies.loader import load_policy
from xinlian.policies.model import DisclosureClass
from xinlian.schema.catalogue import FAMILIES, SubjectKind

LEGAL, NATURAL = SubjectKind.LEGAL_PERSON, SubjectKind.NATURAL_PERSON

# The 2021 双公示 data standard's items (labels as the standard writes them, 代码_n without their
# parenthesised names): 28 for administrative licences, 30 for administrative penalties.
PARTY_ITEMS = ["行政相对人名称", "行政相对人类别", "行政相对人代码_1", "行政相对人代码_2", "行政相对人代码_3",
               "行政相对人代码_4", "行政相对人代码_5", "行政相对人代码_6", "法定代表人", "法定代表人证件类型",
               "法定代表人证件号码", "证件类型", "证件号码"]
LICENCE_ITEMS = PARTY_ITEMS + [
    "行政许可决定文书名称", "行政许可决定文书号", "许可类别", "许可证书名称", "许可编号", "许可内容", "许可决定日期",
    "有效期自", "有效期至", "许可机关", "许可机关统一社会信用代码", "当前状态", "数据来源单位",
    "数据来源单位统一社会信用代码", "备注"]
PENALTY_ITEMS = PARTY_ITEMS + [
    "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容", "罚款金额（万元）",
    "没收违法所得、没收非法财物的金额（万元）", "暂扣或吊销证照名称及编号", "处罚决定日期", "处罚有效期", "公示截止期",
    "处罚机关", "处罚机关统一社会信用代码", "数据来源单位", "数据来源单位统一社会信用代码", "备注"]
# fields the hub has beyond the standard (row rules and internal items)
BEYOND_THE_STANDARD = {"licenses": {"review_status"}, "penalties": {"severity", "case_handler", "review_status"}}

ABNORMAL = "abnormalOperations { decisionNumber listingReason listingDate listingAuthority removalReason removalDate removalAuthority dataSourceUnit }"
COMMITMENTS = "creditCommitments { commitmentNumber commitmentType matter content commitmentDate receivingDepartment fulfilmentStatus fulfilmentCheckedDate }"
WAGES = "wageArrears { caseNumber arrearsAmount workersAffected confirmedDate status dishonestList dataSourceUnit }"
TAX_CASES = "majorTaxViolations { caseNumber violationNature mainFacts legalBasisAndPenalty amountInvolved inspectionAuthority decisionDate publicityEndDate severity dataSourceUnit }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("families")) as running:
        yield running


def legal_person(hub: RunningHub, sample: str, selection: str, kind: str | None, purpose: str | None = None) -> dict[str, Any]:
    """The body of a `legalPerson` query for a named sample, asked as `kind` (None: the public)."""
    query = f"query($u: String!) {{ legalPerson(uscc: $u) {{ {selection} }} }}"
    response = hub.query(query, kind, {"u": hub.samples[sample]}, purpose=purpose)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def forbidden(body: dict[str, Any]) -> list[list[Any]]:
    return sorted(e["path"] for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN")


def public_fields(hub: RunningHub, type_name: str) -> set[str] | None:
    """The fields of a type in the public contract (None: the type does not exist there)."""
    body = hub.http.post("/public/graphql", json={"query": f'{{ __type(name: "{type_name}") {{ fields {{ name }} }} }}'}).json()
    found = body["data"]["__type"]
    return None if found is None else {f["name"] for f in found["fields"]}


# ---- the catalogue -------------------------------------------------------------------------------


def test_the_four_families_are_in_the_catalogue_with_keys_recency_and_subjects() -> None:
    expected = {
        "abnormal_operations": ("经营异常名录", "decision_number", "listing_date", (LEGAL,)),
        "credit_commitments": ("信用承诺", "commitment_number", "commitment_date", (LEGAL,)),
        "wage_arrears": ("欠薪（拖欠农民工工资）", "case_number", "confirmed_date", (LEGAL,)),
        "major_tax_violations": ("重大税收违法失信主体", "case_number", "decision_date", (LEGAL, NATURAL)),
    }
    for name, (label, key, recency, subjects) in expected.items():
        family = FAMILIES[name]
        assert (family.label, family.record_key, family.recency, family.subjects) == (label, key, recency, subjects)
        assert family.many and all(spec.label for spec in family.fields)
        assert "data_source_unit" in family.field_names
    assert FAMILIES["abnormal_operations"].field("removal_date").type.value == "Date"
    assert FAMILIES["wage_arrears"].field("workers_affected").type.value == "Int"
    assert FAMILIES["major_tax_violations"].field("amount_involved").type.value == "Decimal"


def test_enumerated_items_allow_only_the_national_values() -> None:
    assert FAMILIES["credit_commitments"].field("commitment_type").allowed == ("审批替代型", "主动型", "行业自律型", "信用修复型")
    assert FAMILIES["credit_commitments"].field("fulfilment_status").allowed == ("履约", "未履约", "履约中")
    assert FAMILIES["wage_arrears"].field("status").allowed == ("欠薪", "已清偿")
    assert FAMILIES["wage_arrears"].field("dishonest_list").allowed == ("是", "否")
    for family in ("licenses", "penalties"):
        assert FAMILIES[family].field("party_category").allowed == ("法人及非法人组织", "自然人", "个体工商户")
    assert FAMILIES["licenses"].field("current_status").allowed == ("有效", "无效")


@pytest.mark.parametrize("family, items", [("licenses", LICENCE_ITEMS), ("penalties", PENALTY_ITEMS)])
def test_licences_and_penalties_carry_every_item_of_the_2021_standard(family: str, items: list[str]) -> None:
    spec = FAMILIES[family]
    standard = [f for f in spec.fields if f.name not in BEYOND_THE_STANDARD[family]]
    labels = [f.label.split("（")[0] if f.label.startswith("行政相对人代码") else f.label for f in standard]
    assert sorted(labels) == sorted(items)  # (the fields the hub had before keep their order)
    assert len(labels) == len(set(labels)) == {"licenses": 28, "penalties": 30}[family]
    assert spec.field("party_name").names_subject


def test_every_new_field_has_a_class_in_the_default_policy() -> None:
    policy = load_policy()
    for name in ("abnormal_operations", "credit_commitments", "wage_arrears", "major_tax_violations"):
        assert {field for family, field in policy.classes if family == name} == set(FAMILIES[name].field_names)
    assert policy.class_of(("licenses", "legal_representative_id_number")) is DisclosureClass.CONFIDENTIAL
    assert policy.class_of(("penalties", "legal_representative_id_number")) is DisclosureClass.CONFIDENTIAL
    assert policy.class_of(("penalties", "party_id_type")) is DisclosureClass.SHARED
    assert policy.class_of(("credit_commitments", "fulfilment_status")) is DisclosureClass.SHARED
    assert policy.class_of(("wage_arrears", "status"), "bank") is DisclosureClass.AUTHORIZED
    rule = next(r for r in policy.rows if r.kind == "publicity-window")
    assert "major_tax_violations" in rule.families


# ---- the departments serve them --------------------------------------------------------------------


def test_each_family_comes_from_its_department(hub: RunningHub) -> None:
    entries = hub.query("{ catalogue { family fieldName sourceDepartments } }", "department").json()["data"]["catalogue"]
    sources = {(e["family"], e["fieldName"]): e["sourceDepartments"] for e in entries}
    assert sources[("abnormal_operations", "listingReason")] == ["新城区市场监督管理局"]
    assert sources[("credit_commitments", "fulfilmentStatus")] == ["新城区市场监督管理局"]
    assert sources[("wage_arrears", "dishonestList")] == ["新城区人力资源和社会保障局"]
    assert sources[("major_tax_violations", "mainFacts")] == ["国家税务总局呼和浩特市新城区税务局"]
    assert len(sources[("penalties", "partyName")]) == 3  # market, tax and environment name the party
    assert sources[("penalties", "penaltyValidUntil")] == ["新城区市场监督管理局"]


# ---- abnormal operations -------------------------------------------------------------------------


def test_a_department_sees_a_current_and_a_removed_listing(hub: RunningHub) -> None:
    body = legal_person(hub, "abnormal_listed", ABNORMAL, "department")
    [listed] = body["data"]["legalPerson"]["abnormalOperations"]
    assert "errors" not in body
    assert listed["listingReason"] == "未按照《企业信息公示暂行条例》第八条规定的期限公示年度报告"
    assert listed["listingAuthority"] == listed["dataSourceUnit"] == "新城区市场监督管理局"
    assert listed["decisionNumber"].startswith("新市监异列〔")
    assert (listed["removalReason"], listed["removalDate"], listed["removalAuthority"]) == (None, None, None)

    [removed] = legal_person(hub, "abnormal_removed", ABNORMAL, "department")["data"]["legalPerson"]["abnormalOperations"]
    assert removed["removalDate"] > removed["listingDate"]
    assert removed["listingReason"] == "通过登记的住所或者经营场所无法联系"
    assert removed["removalReason"].startswith("依法办理住所或者经营场所变更登记")


def test_the_public_sees_abnormal_operations_in_full(hub: RunningHub) -> None:
    public = legal_person(hub, "abnormal_removed", ABNORMAL, None)
    internal = legal_person(hub, "abnormal_removed", ABNORMAL, "department")
    assert public == internal
    assert public_fields(hub, "AbnormalOperation") == {
        "decisionNumber", "listingReason", "listingDate", "listingAuthority", "removalReason", "removalDate",
        "removalAuthority", "dataSourceUnit", "underObjection"}


# ---- credit commitments --------------------------------------------------------------------------


def test_a_department_sees_kept_broken_and_running_commitments(hub: RunningHub) -> None:
    [kept] = legal_person(hub, "commitment_kept", COMMITMENTS, "department")["data"]["legalPerson"]["creditCommitments"]
    assert (kept["commitmentType"], kept["fulfilmentStatus"]) == ("审批替代型", "履约")
    assert kept["fulfilmentCheckedDate"] > kept["commitmentDate"]
    assert "告知承诺制" in kept["matter"] and kept["receivingDepartment"] == "新城区市场监督管理局"
    broken = legal_person(hub, "commitment_broken", COMMITMENTS, "department")["data"]["legalPerson"]["creditCommitments"]
    assert [(c["commitmentType"], c["fulfilmentStatus"]) for c in broken] == [("主动型", "履约中"), ("审批替代型", "未履约")]
    assert broken[0]["commitmentDate"] > broken[1]["commitmentDate"]  # newest first
    assert broken[0]["fulfilmentCheckedDate"] is None


def test_the_public_sees_the_commitment_but_not_whether_it_was_kept(hub: RunningHub) -> None:
    fields = public_fields(hub, "CreditCommitment")
    assert fields is not None and {"commitmentNumber", "commitmentType", "content"} <= fields
    assert not fields & {"fulfilmentStatus", "fulfilmentCheckedDate"}
    refused = hub.query(f'{{ legalPerson(uscc: "{hub.samples["commitment_broken"]}") {{ {COMMITMENTS} }} }}', None)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    seen = legal_person(hub, "commitment_broken", "creditCommitments { commitmentNumber commitmentType }", None)
    assert len(seen["data"]["legalPerson"]["creditCommitments"]) == 2
    bank = legal_person(hub, "commitment_broken", COMMITMENTS, "bank", purpose="loan-review")
    assert forbidden(bank) == [["legalPerson", "creditCommitments", "@", "fulfilmentCheckedDate"],
                               ["legalPerson", "creditCommitments", "@", "fulfilmentStatus"]]


# ---- wage arrears --------------------------------------------------------------------------------


def test_wage_arrears_from_the_file_drop_for_departments_and_banks(hub: RunningHub) -> None:
    [owed] = legal_person(hub, "wage_arrears_outstanding", WAGES, "department")["data"]["legalPerson"]["wageArrears"]
    assert owed == {**owed, "arrearsAmount": "86", "workersAffected": 46, "status": "欠薪", "dishonestList": "是",
                    "dataSourceUnit": "新城区人力资源和社会保障局"}
    assert owed["caseNumber"].startswith("新人社监〔")
    [paid] = legal_person(hub, "wage_arrears_paid", WAGES, "department")["data"]["legalPerson"]["wageArrears"]
    assert (paid["status"], paid["dishonestList"], paid["arrearsAmount"]) == ("已清偿", "否", "12.5")
    bank = legal_person(hub, "wage_arrears_outstanding", WAGES, "bank", purpose="loan-review")
    assert bank["data"]["legalPerson"]["wageArrears"] == [owed] and "errors" not in bank


def test_wage_arrears_are_not_public(hub: RunningHub) -> None:
    assert public_fields(hub, "WageArrears") is None
    refused = hub.query(f'{{ legalPerson(uscc: "{hub.samples["wage_arrears_outstanding"]}") {{ wageArrears {{ status }} }} }}', None)
    assert refused.status_code == 400
    no_purpose = legal_person(hub, "wage_arrears_outstanding", "wageArrears { status }", "bank")
    assert no_purpose["data"]["legalPerson"]["wageArrears"] is None
    assert forbidden(no_purpose) == [["legalPerson", "wageArrears"]]


# ---- major tax violations --------------------------------------------------------------------------


def test_major_tax_violations_inside_and_past_their_publicity_window(hub: RunningHub) -> None:
    [shown] = legal_person(hub, "major_tax_violation", TAX_CASES, "department")["data"]["legalPerson"]["majorTaxViolations"]
    assert shown["severity"] == "严重" and shown["dataSourceUnit"] == "国家税务总局呼和浩特市新城区税务局"
    assert shown["publicityEndDate"] > hub.runtime.today().isoformat() > shown["decisionDate"]
    assert float(shown["amountInvolved"]) >= 100  # 万元: a major case
    public = legal_person(hub, "major_tax_violation", TAX_CASES, None)["data"]["legalPerson"]["majorTaxViolations"]
    assert public == [shown]

    [expired] = legal_person(hub, "major_tax_violation_expired", TAX_CASES, "department")["data"]["legalPerson"]["majorTaxViolations"]
    assert expired["publicityEndDate"] < hub.runtime.today().isoformat()
    assert legal_person(hub, "major_tax_violation_expired", TAX_CASES, None)["data"]["legalPerson"]["majorTaxViolations"] == []
    bank = legal_person(hub, "major_tax_violation_expired", TAX_CASES, "bank", purpose="loan-review")
    assert bank["data"]["legalPerson"]["majorTaxViolations"] == []  # banks are outside government too


def test_a_residents_major_tax_violation_is_public(hub: RunningHub) -> None:
    query = f"query($id: String!) {{ naturalPerson(idNumber: $id) {{ {TAX_CASES} }} }}"
    body = hub.query(query, None, {"id": hub.samples["natural_tax_violation"]}).json()
    [case] = body["data"]["naturalPerson"]["majorTaxViolations"]
    assert case["violationNature"] == "偷税" and "个人所得税" in case["mainFacts"]


def test_the_publicity_window_reads_the_tax_cases_dates(hub: RunningHub) -> None:
    tax = hub.connector("tax")
    tax.calls.clear()
    legal_person(hub, "major_tax_violation", "majorTaxViolations { caseNumber }", None)
    [call] = [c for c in tax.calls if c.family == "major_tax_violations"]
    assert {"severity", "decision_date", "publicity_end_date", "case_number"} <= set(call.fields)


# ---- the 2021 items of licences and penalties ---------------------------------------------------------


def test_licence_and_penalty_parties_as_departments_see_them(hub: RunningHub) -> None:
    selection = ("name registration { legalRepresentative } "
                 "licenses { partyName partyCategory partyUscc legalRepresentative legalRepresentativeIdType "
                 "decisionDocumentName currentStatus dataSourceUnitUscc } "
                 "penalties { partyName partyCategory partyUscc penaltyValidUntil decisionDate dataSourceUnit }")
    body = legal_person(hub, "a_level_taxpayer", selection, "department")
    person = body["data"]["legalPerson"]
    assert "errors" not in body
    [licence] = [x for x in person["licenses"] if x["partyName"] is not None]
    assert licence == {"partyName": person["name"], "partyCategory": "法人及非法人组织", "partyUscc": hub.samples["a_level_taxpayer"],
                       "legalRepresentative": person["registration"]["legalRepresentative"],
                       "legalRepresentativeIdType": "身份证", "decisionDocumentName": "准予行政许可决定书",
                       "currentStatus": "有效", "dataSourceUnitUscc": licence["dataSourceUnitUscc"]}
    penalties = legal_person(hub, "multi_department_penalties", selection, "department")["data"]["legalPerson"]["penalties"]
    assert len(penalties) == 3 and {p["partyName"] for p in penalties} == {
        legal_person(hub, "multi_department_penalties", "name", None)["data"]["legalPerson"]["name"]}
    market = next(p for p in penalties if p["dataSourceUnit"] == "新城区市场监督管理局")
    assert market["partyCategory"] == "法人及非法人组织" and market["penaltyValidUntil"] > market["decisionDate"]
    assert all(p["partyCategory"] is None for p in penalties if p is not market)  # the others do not record it


def test_the_legal_representatives_id_number_never_leaves_the_market_bureau(hub: RunningHub) -> None:
    market = hub.connector("market")
    market.calls.clear()
    selection = "licenses { decisionNumber legalRepresentativeIdNumber } penalties { decisionNumber legalRepresentativeIdNumber }"
    for kind in ("department", "bank", "admin"):
        body = legal_person(hub, "multi_department_penalties", selection, kind, purpose="loan-review" if kind == "bank" else None)
        assert {e["extensions"].get("disclosureClass") for e in body["errors"]} == {"CONFIDENTIAL"}
    assert all("legal_representative_id_number" not in c.fields for c in market.calls)
    assert "legalRepresentativeIdNumber" not in (public_fields(hub, "AdministrativePenalty") or set())


def test_a_natural_person_partys_name_and_id_are_masked_for_the_public(hub: RunningHub) -> None:
    query = "query($id: String!) { naturalPerson(idNumber: $id) { penalties { partyName partyCategory partyIdNumber } } }"
    resident = hub.samples["natural_penalty"]
    [clear] = hub.query(query, "department", {"id": resident}).json()["data"]["naturalPerson"]["penalties"]
    assert (clear["partyCategory"], clear["partyIdNumber"]) == ("自然人", resident)
    [masked] = hub.query(query, None, {"id": resident}).json()["data"]["naturalPerson"]["penalties"]
    assert masked["partyName"] == clear["partyName"][0] + "*" * (len(clear["partyName"]) - 1)
    assert masked["partyIdNumber"] == resident[:4] + "*" * 10 + resident[-4:]
    assert "partyIdType" not in (public_fields(hub, "AdministrativePenalty") or set())


# ---- an old district on disk ---------------------------------------------------------------------


def test_a_district_built_before_these_families_is_rebuilt_with_the_new_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build_demo_district(tmp_path, legal_persons=20, natural_persons=5)
    manifest = json.loads(first.manifest_path.read_text(encoding="utf-8"))
    first.manifest_path.write_text(json.dumps({**manifest, "format": 1}), encoding="utf-8")  # as format 1 wrote it
    old_template = '# the demo template of an earlier release\nbase_url = "http://127.0.0.1:0"\n'
    first.connectors_path.write_text(old_template.replace(":0", ":43117"), encoding="utf-8")  # the court's port, as the demo left it
    monkeypatch.setattr(generator, "EARLIER_TEMPLATES", frozenset({generator._template_digest(old_template)}))

    rebuilt = build_demo_district(tmp_path, legal_persons=20, natural_persons=5)
    assert not rebuilt.reused and json.loads(rebuilt.manifest_path.read_text(encoding="utf-8"))["format"] == generator.FORMAT
    assert rebuilt.connectors_path.read_text(encoding="utf-8") == TEMPLATE.read_text(encoding="utf-8")
    assert (tmp_path / "drops" / "hr" / "欠薪案件_20261101.csv").is_file()

    rebuilt.connectors_path.write_text("# an operator's own file\n", encoding="utf-8")
    build_demo_district(tmp_path, legal_persons=20, natural_persons=5)
    assert rebuilt.connectors_path.read_text(encoding="utf-8") == "# an operator's own file\n"
