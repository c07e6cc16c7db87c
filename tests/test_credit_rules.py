"""Issue 9 §2, credit rules that were wrong: tax credit levels outside A/B/M/C/D are refused
(`UPSTREAM_INVALID`), and subjects registered by authorities other than market regulation
exist when their own registry knows them or any department holds records on them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from xinlian.connectors.contract import UpstreamInvalid
from xinlian.connectors.mapping import ConnectorConfigError, ConversionError, parse_families
from xinlian.connectors.sql import SqlConnector
from xinlian.schema.catalogue import FAMILIES
from xinlian.schema.identifiers import org_code_check_char, uscc_check_char

TAX_LEVELS = ("A", "B", "M", "C", "D")


def uscc(first16: str) -> str:
    body = first16 + org_code_check_char(first16[8:16])
    return body + uscc_check_char(body)


A, B, C = uscc("91150102MA000001"), uscc("91150102MA000002"), uscc("91150102MA000003")
TAX_MAPPING: dict[str, Any] = {
    "tax_credit": {
        "table": "nsxy",
        "key": "nsrsbh",
        "fields": {"year": "pdnd", "level": "xydj", "evaluation_date": "pdsj"},
    },
}


# ---- tax credit level (纳税信用等级) ---------------------------------------------------------


def test_catalogue_declares_the_five_tax_credit_levels() -> None:
    assert FAMILIES["tax_credit"].field("level").allowed == TAX_LEVELS


def test_fields_without_allowed_values_accept_any_text() -> None:
    assert FAMILIES["tax_credit"].field("authority").allowed == ()


@pytest.mark.parametrize("level", TAX_LEVELS)
def test_each_national_tax_level_converts(level: str) -> None:
    spec = parse_families(TAX_MAPPING, "t")["tax_credit"].fields["level"]
    assert spec.convert(level) == level
    assert spec.convert(f" {level} ") == level


@pytest.mark.parametrize("level", ["E", "AA", "a", "优", "A级", "0", "BBB", "N"])
def test_a_tax_level_outside_a_b_m_c_d_is_a_conversion_error(level: str) -> None:
    spec = parse_families(TAX_MAPPING, "t")["tax_credit"].fields["level"]
    with pytest.raises(ConversionError, match="not an allowed value"):
        spec.convert(level)


def test_a_blank_tax_level_stays_absent() -> None:
    spec = parse_families(TAX_MAPPING, "t")["tax_credit"].fields["level"]
    assert spec.convert(None) is None
    assert spec.convert("  ") is None


def test_department_codes_are_checked_after_mapping() -> None:
    mapping = {**TAX_MAPPING["tax_credit"], "fields": {"level": {"column": "xydj", "map": {"1": "A", "2": "B", "9": "E"}}}}
    spec = parse_families({"tax_credit": mapping}, "t")["tax_credit"].fields["level"]
    assert spec.convert("1") == "A"
    with pytest.raises(ConversionError, match="'E' is not an allowed value"):
        spec.convert("9")


def test_a_constant_tax_level_outside_the_scale_is_a_configuration_error() -> None:
    mapping = {**TAX_MAPPING["tax_credit"], "fields": {"level": {"value": "E"}}}
    with pytest.raises(ConnectorConfigError, match="not an allowed value"):
        parse_families({"tax_credit": mapping}, "t")


def _tax_db(path: Path, rows: list[tuple[str, int, str, str]]) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE nsxy (nsrsbh TEXT, pdnd INTEGER, xydj TEXT, pdsj TEXT)")
    conn.executemany("INSERT INTO nsxy VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return f"sqlite+aiosqlite:///{path}"


async def test_sql_source_with_an_unknown_tax_level_is_refused_as_upstream_invalid(tmp_path: Path) -> None:
    url = _tax_db(tmp_path / "tax.db", [(A, 2024, "A", "2025-04-01"), (B, 2024, "E", "2025-04-01")])
    connector = SqlConnector("tax", "新城区税务局", url, parse_families(TAX_MAPPING, "t"))
    try:
        result = await connector.fetch("tax_credit", [A, B], ["level", "year"])
    finally:
        await connector.close()
    assert result[A] == [{"level": "A", "year": 2024}]
    refused = result[B]
    assert isinstance(refused, UpstreamInvalid)
    assert refused.code == "UPSTREAM_INVALID"
    assert "level" in refused.message and "'E'" in refused.message


async def test_sql_source_where_every_level_is_unknown_fails_the_call(tmp_path: Path) -> None:
    url = _tax_db(tmp_path / "tax.db", [(C, 2024, "AAA", "2025-04-01")])
    connector = SqlConnector("tax", "新城区税务局", url, parse_families(TAX_MAPPING, "t"))
    try:
        with pytest.raises(UpstreamInvalid):
            await connector.fetch("tax_credit", [C], ["level"])
    finally:
        await connector.close()


# ---- existence by registration authority -----------------------------------------------------


def test_registries_table_parses_authorities_to_connectors() -> None:
    from xinlian.hub.executor.admission import DEFAULT_REGISTRIES, parse_registries

    assert parse_registries(None, ["market"]) == dict(DEFAULT_REGISTRIES) == {"9": None}
    assert parse_registries({"9": ["market"], "5": "*", "y": ["civil"]}, ["market", "civil"]) == {
        "9": ("market",), "5": None, "Y": ("civil",)}
    for raw, message in [({"95": ["market"]}, "not a registration authority"), ({"I": ["market"]}, "not a registration"),
                         ({"5": []}, "non-empty array"), ({"5": ["nope"]}, "unknown connector 'nope'"), (["9"], "table")]:
        with pytest.raises(ValueError, match=message):
            parse_registries(raw, ["market"])


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from hub_fixture import running_hub

    with running_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running


def test_subjects_without_a_registry_for_their_authority_are_returned_with_their_records(hub: Any) -> None:
    with sqlite3.connect(hub.data_dir / "departments" / "environment.db") as db:
        others = [r[0] for r in db.execute(
            "SELECT DISTINCT credit_code FROM env_punishment WHERE credit_code NOT LIKE '9%' AND credit_code NOT LIKE '150102%'")]
    assert {c[0] for c in others} & {"1", "5", "Y"}
    for code in others:
        body = hub.query('query($u: String!) { legalPerson(uscc: $u) { uscc penalties { decisionNumber } } }',
                         "department", {"u": code}).json()
        assert body["data"]["legalPerson"] is not None, (code, body)
        assert body["data"]["legalPerson"]["penalties"], (code, body)


def test_other_authority_code_without_records_is_returned_empty_but_unknown_enterprise_is_null(hub: Any) -> None:
    social = uscc("51150102MA000009")
    body = hub.query('query($u: String!) { legalPerson(uscc: $u) { uscc penalties { decisionNumber } } }',
                     None, {"u": social}).json()
    assert body == {"data": {"legalPerson": {"uscc": social, "penalties": []}}}
    body = hub.query('{ legalPerson(uscc: "91110000600037341L") { name } }', None).json()
    assert body == {"data": {"legalPerson": None}}  # market regulation's registry does not know it


def test_registries_are_configured_per_authority_in_connectors_toml(tmp_path: Path) -> None:
    import pytest as _pytest

    from xinlian.connectors.mapping import ConnectorConfigError
    from xinlian.hub.demo.generator import build_demo_district
    from xinlian.hub.executor.federation import Federation

    build_demo_district(tmp_path, legal_persons=12, natural_persons=3)
    path = tmp_path / "connectors.toml"
    shipped = path.read_text(encoding="utf-8")
    assert Federation.from_config(path, tmp_path).registries == {"9": None}  # the default: enterprises
    path.write_text('[registries]\n"9" = "*"\n"5" = ["market"]\n\n' + shipped, encoding="utf-8")
    assert Federation.from_config(path, tmp_path).registries == {"9": None, "5": ("market",)}
    path.write_text('[registries]\n"5" = ["civil-affairs"]\n\n' + shipped, encoding="utf-8")
    with _pytest.raises(ConnectorConfigError, match="unknown connector 'civil-affairs'"):
        Federation.from_config(path, tmp_path)
