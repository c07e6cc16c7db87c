"""The human resources bureau's spreadsheet drop, federated live through the hub."""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from hub_fixture import RunningHub, running_hub, wait_until

ARREARS = "query($u: String!) { legalPerson(uscc: $u) { name socialInsuranceArrears { insuranceType arrearsAmount status confirmedDate dataSourceUnit } } }"
CONTRIBUTIONS = "query($id: String!) { naturalPerson(idNumber: $id) { socialInsuranceContributions { employerName paidMonths monthlyBase } } }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("hr"), legal_persons=80, natural_persons=20) as running:
        yield running


def test_departments_and_banks_see_arrears_the_public_does_not(hub: RunningHub) -> None:
    uscc = hub.samples["social_insurance_arrears"]
    for kind in ("department", "bank"):
        body = hub.query(ARREARS, kind, {"u": uscc}, purpose="loan-review" if kind == "bank" else None).json()
        assert "errors" not in body, body.get("errors")
        [record, *_] = body["data"]["legalPerson"]["socialInsuranceArrears"]
        assert record["dataSourceUnit"] == "新城区人力资源和社会保障局"
        assert record["status"] in {"欠缴", "已补缴"} and float(record["arrearsAmount"]) > 0
    public = hub.query(ARREARS, None, {"u": uscc})
    assert public.status_code == 400  # SHARED: the field does not exist in the public contract


def test_contributions_are_authorized_only(hub: RunningHub) -> None:
    person = hub.samples["insured_person"]
    bank = hub.query(CONTRIBUTIONS, "bank", {"id": person}, purpose="loan-review").json()
    assert bank["data"]["naturalPerson"]["socialInsuranceContributions"]
    department = hub.query(CONTRIBUTIONS, "department", {"id": person}).json()
    assert department["data"]["naturalPerson"]["socialInsuranceContributions"] is None
    assert department["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_new_export_dropped_into_the_folder_is_served(hub: RunningHub) -> None:
    folder = hub.data_dir / "drops" / "hr"
    uscc = hub.samples["clean"]
    headers = {"Authorization": f"Bearer {hub.token('department')}"}  # one token for all the polls

    def arrears() -> list[dict[str, Any]]:
        body = hub.http.post("/graphql", json={"query": ARREARS, "variables": {"u": uscc}}, headers=headers).json()
        return body["data"]["legalPerson"]["socialInsuranceArrears"]

    assert arrears() == []
    new = folder / "社保欠缴_20261127.csv"
    tmp = folder / "incoming.tmp"
    tmp.write_bytes(
        "统一社会信用代码,单位名称,险种,欠缴期间,欠缴金额（元）,认定日期,状态\r\n"
        f"{uscc},新增单位,失业保险,2026-07至2026-09,36000,2026/11/20,0\r\n".encode("gb18030")
    )
    try:
        os.replace(tmp, new)
        records: list[dict[str, Any]] = []

        def served() -> bool:
            records[:] = arrears()
            return bool(records)

        # the hub looks at the folder on its own clock (its reload interval): wait until it serves the export
        wait_until(served, 15, "the new export being served")
        assert records[0]["arrearsAmount"] == "3.6" and records[0]["insuranceType"] == "失业保险"
    finally:  # the hub is shared by the module: take the export away and wait until the hub has dropped it
        new.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        wait_until(lambda: arrears() == [], 15, "the removed export being dropped")


def test_bad_rows_are_reported_not_loaded(hub: RunningHub) -> None:
    hr = hub.connector("hr")
    reasons = {(b.file, b.row_number): b.reason for b in hr.bad_rows}
    assert any("check character" in r for r in reasons.values())
    assert any("十二" in r for r in reasons.values())
