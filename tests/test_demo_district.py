"""The demo district: deterministic, valid identifiers, a realistic spread, and samples that keep their promises."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from xinlian.connectors.contract import Connector, Record
from xinlian.connectors.registry import load_connectors
from xinlian.hub.demo.credit_lists import LIST_SAMPLES, NATURAL_LIST_SAMPLES
from xinlian.hub.demo.generator import (
    LATE_SAMPLES,
    LEGAL_SAMPLES,
    NATURAL_SAMPLES,
    NEW_RECORDS,
    REFERENCE_DATE,
    TEMPLATE,
    DemoDistrict,
    build_demo_district,
)
from xinlian.hub.demo.hr_drop import HR_SAMPLES
from xinlian.hub.demo.services import start_demo_services
from xinlian.policies.rows import PublicityWindow, add_months
from xinlian.schema.catalogue import FAMILIES
from xinlian.schema.identifiers import validate_resident_id, validate_uscc

TODAY = dt.date(2026, 11, 27)
WINDOW = PublicityWindow.standard()


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> DemoDistrict:
    return build_demo_district(tmp_path_factory.mktemp("district"))


def _query(district: DemoDistrict, db: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(district.databases[db])
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _digests(district: DemoDistrict) -> dict[str, str]:
    return {db: hashlib.sha256(path.read_bytes()).hexdigest() for db, path in district.databases.items()}


@pytest.fixture
async def connectors(district: DemoDistrict) -> AsyncIterator[list[Connector]]:
    services = start_demo_services(district.data_dir)  # the court's REST API
    loaded = load_connectors(district.connectors_path, district.data_dir)
    try:
        yield loaded
    finally:
        for connector in loaded:
            await connector.close()
        services.stop()


async def _records(connectors: list[Connector], family: str, key: str) -> dict[str, list[Record]]:
    """Records of one family for one subject, per connector name, with every mapped field."""
    out: dict[str, list[Record]] = {}
    for connector in connectors:
        if family in connector.families:
            found = await connector.fetch(family, [key], sorted(connector.provides(family)))
            if found.get(key):
                out[connector.name] = found[key]
    return out


# ---- building, determinism, reuse ----------------------------------------------------------


def test_builds_four_department_databases_and_the_connector_file(district: DemoDistrict) -> None:
    assert set(district.databases) == {"market", "tax", "environment", "courts"}
    for db, path in district.databases.items():
        assert path == district.data_dir / "departments" / f"{db}.db" and path.is_file()
    assert district.connectors_path.read_text(encoding="utf-8") == TEMPLATE.read_text(encoding="utf-8")
    assert (district.legal_persons, district.natural_persons, district.seed) == (2000, 500, 150102)
    assert set(district.samples) == (set(LEGAL_SAMPLES) | set(NATURAL_SAMPLES) | set(LIST_SAMPLES) | set(NATURAL_LIST_SAMPLES)
                                     | set(HR_SAMPLES) | set(LATE_SAMPLES))
    assert sorted(p.name for p in (district.data_dir / "drops" / "hr").iterdir()) == [
        "参保缴费_20261101.csv", "欠薪案件_20261101.csv", "社保欠缴_20261101.csv"]
    assert _query(district, "market", "SELECT count(*) FROM qy_jbxx") == [(2000,)]


def test_same_seed_gives_the_same_files_and_another_seed_does_not(district: DemoDistrict, tmp_path: Path) -> None:
    again = build_demo_district(tmp_path / "again")
    assert not again.reused
    assert _digests(again) == _digests(district)
    assert again.samples == district.samples
    other = build_demo_district(tmp_path / "other", seed=7)
    assert _digests(other)["market"] != _digests(district)["market"]


def test_generation_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    build_demo_district(tmp_path)
    assert time.perf_counter() - started < 5.0


def test_a_second_run_reuses_what_is_there(tmp_path: Path) -> None:
    first = build_demo_district(tmp_path, legal_persons=60, natural_persons=15)
    stamps = {db: path.stat().st_mtime_ns for db, path in first.databases.items()}
    first.connectors_path.write_text("# edited by an operator\n", encoding="utf-8")

    second = build_demo_district(tmp_path, legal_persons=60, natural_persons=15)
    assert second.reused and second.samples == first.samples
    assert {db: path.stat().st_mtime_ns for db, path in second.databases.items()} == stamps
    assert second.connectors_path.read_text(encoding="utf-8") == "# edited by an operator\n"
    manifest = json.loads(second.manifest_path.read_text(encoding="utf-8"))
    assert manifest["seed"] == 150102 and manifest["legal_persons"] == 60 and manifest["samples"] == first.samples


def test_a_missing_database_or_other_parameters_rebuild(tmp_path: Path) -> None:
    first = build_demo_district(tmp_path, legal_persons=60, natural_persons=15)
    digests = _digests(first)
    first.databases["courts"].unlink()
    rebuilt = build_demo_district(tmp_path, legal_persons=60, natural_persons=15)
    assert not rebuilt.reused and _digests(rebuilt) == digests
    scaled = build_demo_district(tmp_path, legal_persons=80, natural_persons=20)
    assert not scaled.reused
    assert _query(scaled, "market", "SELECT count(*) FROM qy_jbxx") == [(80,)]


def test_too_small_a_district_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        build_demo_district(tmp_path, legal_persons=3, natural_persons=1)


# ---- identifiers ----------------------------------------------------------------------------


def test_every_uscc_is_valid_and_in_xincheng(district: DemoDistrict) -> None:
    codes = [c for (c,) in _query(district, "market", "SELECT tyshxydm FROM qy_jbxx")]
    assert len(set(codes)) == len(codes) == 2000
    for code in codes:
        assert validate_uscc(code) == code and code.startswith("91150102")
    authorities = {c for (c,) in _query(district, "market", "SELECT DISTINCT cfjgdm FROM xzcf")}
    authorities |= {c for (c,) in _query(district, "tax", "SELECT DISTINCT authority_code FROM tax_penalty")}
    authorities |= {c for (c,) in _query(district, "environment", "SELECT DISTINCT issue_org_code FROM env_permit")}
    assert len(authorities) == 3
    for code in authorities:
        assert validate_uscc(code).startswith("11150102")


def test_every_resident_id_is_valid_with_a_real_birth_date(district: DemoDistrict) -> None:
    ids = {i for (i,) in _query(district, "market", "SELECT fddbr_zjhm FROM qy_jbxx")}
    ids |= {i for (i,) in _query(district, "market", "SELECT dsr_zjhm FROM xzcf WHERE dsr_zjhm NOT LIKE '91%'")}
    # (issue 9: social organisations and public institutions have penalties too, so "not 91" no
    # longer means a resident ID; residents' IDs all start with the district's division 150102)
    ids |= {i for (i,) in _query(district, "environment", "SELECT credit_code FROM env_punishment WHERE credit_code LIKE '150102%'")}
    ids |= {i for (i,) in _query(district, "courts", "SELECT zjhm FROM sxbzxr WHERE zjhm NOT LIKE '91%'")}
    assert len(ids) > 100
    for code in ids:
        assert validate_resident_id(code) == code and code.startswith("150102")
        assert dt.date(1950, 1, 1) <= dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14])) <= dt.date(2004, 12, 31)


def test_sample_identifiers_are_valid(district: DemoDistrict) -> None:
    for name in LEGAL_SAMPLES:
        validate_uscc(district.samples[name])
    for name in NATURAL_SAMPLES:
        validate_resident_id(district.samples[name])


# ---- a realistic spread ---------------------------------------------------------------------


def test_about_five_percent_are_dishonest_judgment_debtors(district: DemoDistrict) -> None:
    [(legal,)] = _query(district, "courts", "SELECT count(DISTINCT zjhm) FROM sxbzxr WHERE zt = '1' AND zjhm LIKE '91%'")
    [(natural,)] = _query(district, "courts", "SELECT count(DISTINCT zjhm) FROM sxbzxr WHERE zt = '1' AND zjhm NOT LIKE '91%'")
    assert 0.03 * 2000 <= legal <= 0.08 * 2000
    assert natural >= 10


def test_about_fifteen_percent_of_rated_taxpayers_are_a_level(district: DemoDistrict) -> None:
    latest = _query(district, "tax", """
        SELECT credit_grade FROM taxpayer_credit_rating r
        WHERE rating_year = (SELECT max(rating_year) FROM taxpayer_credit_rating x WHERE x.taxpayer_id = r.taxpayer_id)""")
    share = sum(1 for (grade,) in latest if grade == "A") / len(latest)
    assert 0.10 <= share <= 0.20
    assert {grade for (grade,) in latest} == set("ABMCD")


NEW_DAYS = {day for _, day in NEW_RECORDS}


async def test_penalties_of_every_severity_within_their_windows_some_expired(district: DemoDistrict, connectors: list[Connector]) -> None:
    limits = {"轻微": (0, 3), "一般": (3, 12), "严重": (12, 36)}
    keys = [k for (k,) in _query(district, "market", "SELECT DISTINCT dsr_zjhm FROM xzcf")]
    keys += [k for (k,) in _query(district, "tax", "SELECT DISTINCT taxpayer_id FROM tax_penalty")]
    keys += [k for (k,) in _query(district, "environment", "SELECT DISTINCT credit_code FROM env_punishment")]
    keys = list(dict.fromkeys(keys))
    fields = ["severity", "decision_date", "publicity_end_date", "data_source_unit"]
    seen: dict[str, set[str]] = {}
    december: dict[str, int] = {}
    shown = expired = 0
    for connector in connectors:
        if "penalties" not in connector.families:
            continue
        for start in range(0, len(keys), connector.batch_size):
            result = await connector.fetch("penalties", keys[start : start + connector.batch_size], fields)
            for record in (r for records in result.values() for r in records):
                seen.setdefault(connector.name, set()).add(record["severity"])
                low, high = limits[record["severity"]]
                decided, end = record["decision_date"], record["publicity_end_date"]
                if decided in NEW_DAYS:  # the December penalties of the review's walkthrough (one per department)
                    december[connector.name] = december.get(connector.name, 0) + 1
                    continue
                assert REFERENCE_DATE - dt.timedelta(days=4 * 366) <= decided < REFERENCE_DATE
                assert add_months(decided, low) <= end <= add_months(decided, high)
                if WINDOW.shows(record, REFERENCE_DATE):
                    shown += 1
                elif record["severity"] != "轻微":
                    expired += 1
    assert seen == {name: {"轻微", "一般", "严重"} for name in ("market", "tax", "environment")}
    assert shown > 50 and expired > 50
    assert december == {"market": 1, "tax": 1, "environment": 1}


def test_some_natural_persons_have_penalties(district: DemoDistrict) -> None:
    [(market,)] = _query(district, "market", "SELECT count(*) FROM xzcf WHERE dsr_zjhm NOT LIKE '91%'")
    [(environment,)] = _query(district, "environment", "SELECT count(*) FROM env_punishment WHERE credit_code NOT LIKE '91%'")
    assert market > 5 and environment > 3


async def test_every_mapped_column_exists_in_its_department_layout(district: DemoDistrict, connectors: list[Connector]) -> None:
    assert [c.name for c in connectors] == ["market", "tax", "environment", "courts", "hr"]
    keys = list(district.samples.values())
    for connector in connectors:
        assert (await connector.health()).healthy
        for family in connector.families:
            assert connector.provides(family) <= set(FAMILIES[family].field_names)
            await connector.fetch(family, keys, sorted(connector.provides(family)))  # raises on a missing column


# ---- the named samples keep their promises ---------------------------------------------------


async def test_sample_judgment_debtors(district: DemoDistrict, connectors: list[Connector]) -> None:
    for name in ("judgment_debtor", "natural_debtor"):
        key = district.samples[name]
        [record] = (await _records(connectors, "judgment_debtor_records", key))["courts"]
        assert record["debtor_id_number"] == key and record["publish_date"] <= REFERENCE_DATE


async def test_sample_a_level_taxpayer_has_a_clean_record(district: DemoDistrict, connectors: list[Connector]) -> None:
    key = district.samples["a_level_taxpayer"]
    ratings = (await _records(connectors, "tax_credit", key))["tax"]
    assert max(ratings, key=lambda r: r["year"])["level"] == "A"
    assert await _records(connectors, "penalties", key) == {}
    assert await _records(connectors, "judgment_debtor_records", key) == {}


async def test_sample_expired_penalty_is_past_its_publicity_window(district: DemoDistrict, connectors: list[Connector]) -> None:
    records = [r for rs in (await _records(connectors, "penalties", district.samples["expired_penalty"])).values() for r in rs]
    assert records and all(r["publicity_end_date"] < REFERENCE_DATE for r in records)
    assert not any(WINDOW.shows(r, TODAY) for r in records)


async def test_sample_severe_penalty_is_shown_for_years(district: DemoDistrict, connectors: list[Connector]) -> None:
    records = [r for rs in (await _records(connectors, "penalties", district.samples["severe_penalty"])).values() for r in rs]
    assert [r["severity"] for r in records] == ["严重"]
    assert all(WINDOW.shows(r, day) for r in records for day in (REFERENCE_DATE, TODAY, dt.date(2028, 12, 31)))


async def test_sample_minor_penalty_is_recent_and_minor(district: DemoDistrict, connectors: list[Connector]) -> None:
    records = [r for rs in (await _records(connectors, "penalties", district.samples["minor_penalty"])).values() for r in rs]
    assert [r["severity"] for r in records] == ["轻微"]
    assert records[0]["publicity_end_date"] > REFERENCE_DATE


async def test_sample_multi_department_penalties_come_from_several_departments(district: DemoDistrict, connectors: list[Connector]) -> None:
    by_source = await _records(connectors, "penalties", district.samples["multi_department_penalties"])
    assert set(by_source) == {"market", "tax", "environment"}
    units = {r["data_source_unit"] for rs in by_source.values() for r in rs}
    assert len(units) == 3
    assert all(WINDOW.shows(r, TODAY) for rs in by_source.values() for r in rs)


async def test_sample_honored_revoked_and_clean(district: DemoDistrict, connectors: list[Connector]) -> None:
    assert set(await _records(connectors, "honors", district.samples["honored"])) == {"market", "environment"}
    [revoked] = (await _records(connectors, "registration", district.samples["revoked"]))["market"]
    assert revoked["status"] == "吊销"
    clean = district.samples["clean"]
    [registration] = (await _records(connectors, "registration", clean))["market"]
    assert registration["status"] == "存续"
    for family in ("penalties", "judgment_debtor_records"):
        assert await _records(connectors, family, clean) == {}


async def test_natural_person_samples(district: DemoDistrict, connectors: list[Connector]) -> None:
    [penalty] = (await _records(connectors, "penalties", district.samples["natural_penalty"]))["market"]
    assert WINDOW.shows(penalty, TODAY)
    clean = district.samples["natural_clean"]
    for family in ("penalties", "judgment_debtor_records"):
        assert await _records(connectors, family, clean) == {}


# ---- issue 9: other registration authorities, long names, expired honours --------------------


def test_every_uscc_has_a_valid_embedded_organisation_code(district: DemoDistrict) -> None:
    codes = {c for (c,) in _query(district, "market", "SELECT tyshxydm FROM qy_jbxx")}
    codes |= {c for (c,) in _query(district, "environment", "SELECT credit_code FROM env_punishment WHERE credit_code NOT LIKE '150102%'")}
    codes |= {c for (c,) in _query(district, "environment", "SELECT credit_code FROM env_credit_honor")}
    assert len(codes) > 100
    for code in codes:
        assert validate_uscc(code) == code and code[2:8] == "150102"


def test_subjects_of_other_registration_authorities_have_records_but_no_market_registration(district: DemoDistrict) -> None:
    registered = {c for (c,) in _query(district, "market", "SELECT tyshxydm FROM qy_jbxx")}
    others = {c for (c,) in _query(district, "environment", "SELECT credit_code FROM env_punishment WHERE credit_code NOT LIKE '9%' AND credit_code NOT LIKE '150102%'")}
    others |= {c for (c,) in _query(district, "environment", "SELECT credit_code FROM env_credit_honor WHERE credit_code NOT LIKE '9%'")}
    assert {c[0] for c in others} >= {"1", "5", "Y"}
    assert not others & registered
    for code in others:
        validate_uscc(code)


def test_residents_with_long_mongolian_and_uyghur_names_have_records(district: DemoDistrict) -> None:
    names = {n for (n,) in _query(district, "market", "SELECT dsrmc FROM xzcf WHERE dsr_zjhm LIKE '150102%'")}
    assert {"乌云其木格", "阿依古丽·买买提", "其其格玛", "额尔德尼巴雅尔"} <= names


def test_some_honours_have_expired(district: DemoDistrict) -> None:
    expired = _query(district, "market", f"SELECT yxqzhi FROM syxjl WHERE yxqzhi < '{TODAY:%Y%m%d}'")
    assert len(expired) >= 3


def test_the_review_walkthroughs_firm_is_no_other_sample_even_in_a_small_district(tmp_path: Path) -> None:
    small = build_demo_district(tmp_path / "small", legal_persons=20, natural_persons=5)
    firm = small.samples["new_penalties"]
    assert firm not in {v for k, v in small.samples.items() if k not in LATE_SAMPLES}
    # the December penalties are its own, one per department
    for db, sql in (("market", "SELECT count(*) FROM xzcf WHERE dsr_zjhm = '{}' AND cfjdrq >= '20261201'"),
                    ("tax", "SELECT count(*) FROM tax_penalty WHERE taxpayer_id = '{}' AND decided_on >= '2026-12-01'"),
                    ("environment", "SELECT count(*) FROM env_punishment WHERE credit_code = '{}' AND decision_time >= '2026-12-01'")):
        assert _query(small, db, sql.format(firm)) == [(1,)], db
