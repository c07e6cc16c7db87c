"""The SQL connector and its declarative mapping, on real SQLite files and the real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from xinlian.connectors.contract import Connector, UpstreamInvalid, UpstreamUnavailable
from xinlian.connectors.mapping import ConnectorConfigError, parse_families, parse_search
from xinlian.connectors.registry import load_connectors
from xinlian.connectors.sql import FetchCall, SqlConnector

A, B, C = "91150102MA0000001A", "91150102MA0000002B", "91150102MA0000003C"  # keys only; not validated here
BAD = "91150102MA000000BD"

MARKET_MAPPING: dict[str, Any] = {
    "registration": {
        "table": "qy_jbxx",
        "key": "tyshxydm",
        "fields": {
            "name": "qymc",
            "contact_phone": "lxdh",
            "legal_representative_id": "fddbr_zjhm",
            "status": {"column": "djzt", "map": {"1": "存续", "2": "吊销", "3": "注销"}},
            "established_date": {"column": "clrq", "date_format": "%Y%m%d"},
            "registered_capital": {"column": "zczb", "scale": 0.0001},
            "industry": {"value": "批发业"},
        },
    },
    "penalties": {
        "table": "xzcf",
        "key": "dsr_zjhm",
        "where": {"sfyx": 1},
        "fields": {
            "decision_number": "cfjdswh",
            "fine_amount": {"column": "fkje", "scale": 0.0001},
            "decision_date": "cfjdrq",
            "severity": {"column": "sxcd", "map": {"1": "轻微", "2": "一般", "3": "严重"}},
            "data_source_unit": {"value": "新城区市场监督管理局"},
            "case_handler": "bary",
        },
    },
    "tax_credit": {
        "table": "nsxy",
        "key": "nsrsbh",
        "fields": {"year": "pdnd", "level": "xydj", "evaluation_date": "pdsj", "tax_paid": "nse"},
    },
}


def _market_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE qy_jbxx (tyshxydm TEXT PRIMARY KEY, qymc TEXT, lxdh TEXT, fddbr_zjhm TEXT, djzt INTEGER,
                              clrq TEXT, zczb INTEGER);
        CREATE TABLE xzcf (id INTEGER PRIMARY KEY, dsr_zjhm TEXT, cfjdswh TEXT, fkje TEXT, cfjdrq TEXT, sxcd TEXT,
                           bary TEXT, sfyx INTEGER);
        CREATE TABLE nsxy (nsrsbh TEXT, pdnd TEXT, xydj TEXT, pdsj TEXT, nse REAL);
        """
    )
    conn.executemany(
        "INSERT INTO qy_jbxx VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (A, "呼和浩特市新城区鑫达商贸有限公司", "0471-1234567", "150102199101010071", 1, "20190315", 1234500),
            (B, "呼和浩特市新城区100%纯净水有限公司", "0471-7654321", "150102199101010071", 2, "20200101", 500000),
            (C, "呼和浩特市新城区恒_泰物流有限公司", None, None, 3, "", None),
            (BAD, "呼和浩特市新城区坏数据有限公司", "", None, 7, "2024-13-45", 100),
        ],
    )
    conn.executemany(
        "INSERT INTO xzcf (dsr_zjhm, cfjdswh, fkje, cfjdrq, sxcd, bary, sfyx) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (A, "新市监处罚〔2025〕1号", "5000", "2025-03-01", "2", "张伟、李娜", 1),
            (A, "新市监处罚〔2024〕9号", "1,250,000.00", "2024-06-30 09:30:00", "3", "王强", 1),
            (A, "新市监处罚〔2023〕4号", "100", "2023-01-01", "1", "王强", 0),  # withdrawn on review
            (B, "新市监处罚〔2025〕2号", "not a number", "2025-01-02", "1", "王强", 1),
        ],
    )
    conn.executemany("INSERT INTO nsxy VALUES (?, ?, ?, ?, ?)", [(A, "2025", "A", "2026-04-15", 12345.67)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def market_db(tmp_path: Path) -> Path:
    return _market_db(tmp_path / "market.db")


@pytest.fixture
async def market(market_db: Path) -> Any:
    families = parse_families(MARKET_MAPPING, "market.families")
    connector = SqlConnector(
        "market", "新城区市场监督管理局", f"sqlite+aiosqlite:///{market_db}", families,
        batch_size=2, search=parse_search({"family": "registration", "field": "name"}, families, "market.search"),
    )
    yield connector
    await connector.close()


# ---- data minimisation and batching ---------------------------------------------------------


async def test_fetch_selects_only_the_key_and_the_requested_columns(market: SqlConnector, statements: list[str]) -> None:
    result = await market.fetch("registration", [A], ["name", "status"])

    assert result == {A: [{"name": "呼和浩特市新城区鑫达商贸有限公司", "status": "存续"}]}
    assert market.calls == [FetchCall("registration", (A,), ("name", "status"), ("qymc", "djzt"))]
    select = next(s for s in statements if "FROM qy_jbxx" in s)
    assert all(column in select for column in ("tyshxydm", "qymc", "djzt"))
    for not_asked in ("lxdh", "fddbr_zjhm", "clrq", "zczb"):
        assert not_asked not in select
    assert "?" in select and A not in select  # keys are bound, never formatted into the SQL


async def test_a_bad_value_in_a_column_not_asked_for_does_not_matter(market: SqlConnector) -> None:
    result = await market.fetch("registration", [BAD], ["name"])
    assert result == {BAD: [{"name": "呼和浩特市新城区坏数据有限公司"}]}


async def test_records_carry_exactly_the_requested_fields_and_unknown_keys_are_absent(market: SqlConnector) -> None:
    result = await market.fetch("registration", [A, "91150102MA00000X00", B], ["registered_capital"])
    assert set(result) == {A, B}
    assert all(set(r) == {"registered_capital"} for records in result.values() for r in records)


async def test_no_fields_still_tells_which_subjects_exist(market: SqlConnector, statements: list[str]) -> None:
    assert await market.fetch("registration", [A, "91150102MA00000X00"], []) == {A: [{}]}
    assert market.calls[-1].columns == ()


async def test_one_call_fetches_a_whole_batch_and_larger_ones_in_bounded_queries(market: SqlConnector, statements: list[str]) -> None:
    result = await market.fetch("registration", [A, B, C, BAD, A], ["name"])
    assert set(result) == {A, B, C, BAD}
    assert len(market.calls) == 1 and market.calls[0].keys == (A, B, C, BAD)
    assert len([s for s in statements if "FROM qy_jbxx" in s]) == 2  # batch_size 2 bounds the IN list


async def test_a_family_or_field_the_connector_does_not_map_is_a_caller_bug(market: SqlConnector) -> None:
    assert market.provides("honors") == frozenset()
    assert "case_handler" in market.provides("penalties")
    with pytest.raises(ValueError, match="honors"):
        await market.fetch("honors", [A], ["honor_name"])
    with pytest.raises(ValueError, match="registration.address"):
        await market.fetch("registration", [A], ["address"])


# ---- conversion -----------------------------------------------------------------------------


async def test_codes_dates_and_yuan_become_catalogue_values(market: SqlConnector) -> None:
    fields = ["status", "established_date", "registered_capital", "industry", "contact_phone"]
    result = await market.fetch("registration", [A, B, C], fields)
    assert result[A] == [{
        "status": "存续", "established_date": dt.date(2019, 3, 15), "registered_capital": Decimal("123.45"),
        "industry": "批发业", "contact_phone": "0471-1234567",
    }]
    assert str(result[A][0]["registered_capital"]) == "123.45"  # 1234500 yuan, without scaling's trailing zeros
    assert result[B][0]["status"] == "吊销" and str(result[B][0]["registered_capital"]) == "50"
    assert result[C] == [{"status": "注销", "established_date": None, "registered_capital": None,
                          "industry": "批发业", "contact_phone": None}]


async def test_where_filter_drops_withdrawn_rows_and_values_convert_from_text(market: SqlConnector) -> None:
    result = await market.fetch("penalties", [A], ["decision_number", "fine_amount", "decision_date", "severity",
                                                   "data_source_unit"])
    by_number = {r["decision_number"]: r for r in result[A]}
    assert set(by_number) == {"新市监处罚〔2025〕1号", "新市监处罚〔2024〕9号"}
    assert by_number["新市监处罚〔2025〕1号"]["fine_amount"] == Decimal("0.5")
    assert by_number["新市监处罚〔2024〕9号"]["fine_amount"] == Decimal("125")
    assert by_number["新市监处罚〔2024〕9号"]["decision_date"] == dt.date(2024, 6, 30)  # ISO timestamp → date
    assert by_number["新市监处罚〔2024〕9号"]["severity"] == "严重"
    assert {r["data_source_unit"] for r in result[A]} == {"新城区市场监督管理局"}


async def test_integers_and_decimals_from_other_storage_types(market: SqlConnector) -> None:
    result = await market.fetch("tax_credit", [A], ["year", "level", "evaluation_date", "tax_paid"])
    assert result == {A: [{"year": 2025, "level": "A", "evaluation_date": dt.date(2026, 4, 15), "tax_paid": Decimal("12345.67")}]}
    assert isinstance(result[A][0]["year"], int)


@pytest.mark.parametrize(
    ("family", "field", "reason"),
    [
        ("registration", "established_date", "(column clrq): '2024-13-45' is not date format %Y%m%d"),
        ("registration", "status", "(column djzt): unknown code '7' (known: 1, 2, 3)"),
    ],
)
# Only the bad subject fails; when every subject asked is bad, the call itself raises.
async def test_invalid_data_is_upstream_invalid_naming_the_field(market: SqlConnector, family: str, field: str, reason: str) -> None:
    result = await market.fetch(family, [A, BAD], [field])
    assert isinstance(result[A], list) and result[A], "a bad row fails only its own subject"
    error = result[BAD]
    assert isinstance(error, UpstreamInvalid)
    assert error.code == "UPSTREAM_INVALID"
    assert error.department == "新城区市场监督管理局"
    assert f"{family}.{field} {reason}" in error.message


async def test_a_number_that_is_not_one_is_upstream_invalid(market: SqlConnector) -> None:
    with pytest.raises(UpstreamInvalid, match=r"penalties\.fine_amount \(column fkje\): 'not a number' is not a number"):
        await market.fetch("penalties", [B], ["fine_amount"])


def test_type_override_normalises_a_text_field_through_another_type() -> None:
    families = parse_families(
        {"licenses": {"table": "t", "key": "k", "fields": {
            "license_number": {"column": "xkbh", "type": "int"},
            "content": {"column": "rq", "type": "date", "date_format": "%Y%m%d"},
        }}},
        "x",
    )
    fields = families["licenses"].fields
    assert fields["license_number"].convert(1234.0) == "1234"
    assert fields["content"].convert("20240102") == "2024-01-02"


# ---- failures -------------------------------------------------------------------------------


async def test_missing_table_is_upstream_unavailable_without_sql(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    connector = SqlConnector("market", "新城区市场监督管理局", f"sqlite+aiosqlite:///{empty}",
                             parse_families(MARKET_MAPPING, "x"))
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await connector.fetch("registration", [A], ["name"])
        assert caught.value.department == "新城区市场监督管理局"
        assert "no such table" in caught.value.message
        assert "SELECT" not in caught.value.message.upper() and A not in caught.value.message
        assert (await connector.health()).healthy  # the database itself answers
    finally:
        await connector.close()


async def test_missing_sqlite_file_is_unavailable_and_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "market.db"
    connector = SqlConnector("market", "新城区市场监督管理局", "sqlite+aiosqlite:///{data_dir}/gone/market.db",
                             parse_families(MARKET_MAPPING, "x"), data_dir=tmp_path)
    try:
        with pytest.raises(UpstreamUnavailable):
            await connector.fetch("registration", [A], ["name"])
        health = await connector.health()
        assert not health.healthy and health.checked_at is not None
        assert not missing.exists()
    finally:
        await connector.close()


async def test_department_sqlite_databases_are_opened_read_only(market: SqlConnector) -> None:
    from sqlalchemy import text

    with pytest.raises(UpstreamUnavailable, match="readonly"):
        await market._rows(text("DELETE FROM qy_jbxx"))


async def test_unreachable_database_is_unavailable_without_credentials() -> None:
    url = "postgresql+asyncpg://credit_reader:Pa55-w0rd-xyz@127.0.0.1:1/market"
    connector = SqlConnector("market", "新城区市场监督管理局", url, parse_families(MARKET_MAPPING, "x"))
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await connector.fetch("registration", [A], ["name"])
        health = await connector.health()
    finally:
        await connector.close()
    for text in (caught.value.message, str(caught.value), health.detail):
        assert "Pa55-w0rd-xyz" not in text and "credit_reader" not in text
    assert not health.healthy


# ---- search ---------------------------------------------------------------------------------


async def test_search_finds_keys_by_name(market: SqlConnector) -> None:
    assert await market.search("registration", "新城区", 10) == sorted([A, B, C, BAD])
    assert await market.search("registration", "新城区", 2) == sorted([A, B, C, BAD])[:2]
    assert await market.search("registration", "鑫达", 10) == [A]
    assert await market.search("penalties", "鑫达", 10) == []  # not the searchable family


async def test_search_escapes_like_wildcards(market: SqlConnector, statements: list[str]) -> None:
    assert await market.search("registration", "%", 10) == [B]
    assert await market.search("registration", "_", 10) == [C]
    assert await market.search("registration", "100%纯", 10) == [B]
    assert await market.search("registration", "' OR 1=1 --", 10) == []
    assert not any("OR 1=1" in s for s in statements)


async def test_health_runs_a_trivial_query(market: SqlConnector, statements: list[str]) -> None:
    health = await market.health()
    assert health.healthy and health.detail == "ok"
    assert any(s.strip().upper() == "SELECT 1" for s in statements)


async def test_close_disposes_and_the_engine_comes_back_on_demand(market: SqlConnector) -> None:
    await market.close()
    assert await market.fetch("registration", [A], ["name"])


# ---- mapping and registry validation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("families", "message"),
    [
        ({"penalty": {"table": "t", "key": "k", "fields": {"name": "x"}}}, "unknown record family 'penalty'"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"fine": "x"}}}, "unknown field 'fine' of penalties"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"fine_amount": {"column": "x", "scal": 1}}}}, "unknown option 'scal'"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"fine_amount": {"column": "x", "type": "date"}}}}, "cannot feed a Decimal"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"severity": {"column": "x", "date_format": "%Y"}}}}, "date_format"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"decision_date": {"column": "x", "scale": 2}}}}, "scale"),
        ({"penalties": {"table": "t", "fields": {"severity": "x"}}}, "key must be"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"fine_amount": {"value": "lots"}}}}, "value: 'lots' is not a number"),
        ({"penalties": {"table": "t", "key": "k", "fields": {"severity": {"column": "x", "value": "y"}}}}, "exactly one"),
    ],
)
def test_invalid_mappings_are_rejected_naming_the_item(families: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorConfigError, match=message.replace("(", r"\(")):
        parse_families(families, "connector[0] (market).families")


def test_search_must_be_a_plain_mapped_text_column() -> None:
    families = parse_families(MARKET_MAPPING, "x")
    with pytest.raises(ConnectorConfigError, match="plain text column"):
        parse_search({"family": "registration", "field": "status"}, families, "x.search")
    with pytest.raises(ConnectorConfigError, match="not mapped"):
        parse_search({"family": "registration", "field": "address"}, families, "x.search")


CONFIG = """
[[connector]]
name = "market"
kind = "sql"
department = "新城区市场监督管理局"
url = "sqlite+aiosqlite:///{data_dir}/market.db"
search = { family = "registration", field = "name" }

[connector.families.registration]
table = "qy_jbxx"
key = "tyshxydm"
[connector.families.registration.fields]
name = "qymc"
status = { column = "djzt", map = { "1" = "存续", "2" = "吊销", "3" = "注销" } }
"""


async def test_registry_builds_connectors_with_defaults_and_data_dir(tmp_path: Path) -> None:
    _market_db(tmp_path / "market.db")
    (tmp_path / "connectors.toml").write_text(CONFIG, encoding="utf-8")
    [connector] = load_connectors(tmp_path / "connectors.toml", tmp_path)
    try:
        assert isinstance(connector, Connector) and isinstance(connector, SqlConnector)
        assert (connector.name, connector.batch_size, connector.timeout) == ("market", 200, 3.0)
        assert connector.families == frozenset({"registration"})
        assert await connector.fetch("registration", [A], ["status"]) == {A: [{"status": "存续"}]}
        assert await connector.search("registration", "鑫达", 5) == [A]
    finally:
        await connector.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "sql"', 'kind = "ftp"'), "unknown kind 'ftp'"),
        (('url = "sqlite+aiosqlite:///{data_dir}/market.db"', ""), "needs 'url'"),
        (('url = "sqlite+aiosqlite:///{data_dir}/market.db"', 'url = "not a url"'), "not a database URL"),
        (('kind = "sql"', 'kind = "sql"\nbatchsize = 5'), "unknown option 'batchsize'"),
        (('kind = "sql"', 'kind = "sql"\nbatch_size = 0'), "batch_size"),
        (('kind = "sql"', 'kind = "sql"\ntimeout = -1'), "timeout"),
        (('name = "qymc"', 'nmae = "qymc"'), r"unknown field 'nmae' of registration"),
    ],
)
def test_registry_rejects_configuration_mistakes(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(CONFIG.replace(*change), encoding="utf-8")
    with pytest.raises(ConnectorConfigError, match=message) as caught:
        load_connectors(path, tmp_path)
    assert "market" in str(caught.value) and str(path) in str(caught.value)


def test_registry_rejects_duplicate_names_and_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(CONFIG + CONFIG, encoding="utf-8")
    with pytest.raises(ConnectorConfigError, match="duplicate connector name 'market'"):
        load_connectors(path, tmp_path)
    path.write_text("[[connector]\n", encoding="utf-8")
    with pytest.raises(ConnectorConfigError, match="not valid TOML"):
        load_connectors(path, tmp_path)


# ---- the real PostgreSQL server ---------------------------------------------------------------

TAX_MAPPING: dict[str, Any] = {
    "tax_credit": {
        "table": "nsr_xypj",
        "schema": "swj",
        "key": "nsrsbh",
        "where": {"sfyx": ["Y", "y"]},
        "fields": {
            "level": {"column": "xydj", "map": {"01": "A", "02": "B", "03": "M", "04": "C", "05": "D"}},
            "year": "pdnd",
            "evaluation_date": "pdrq",
            "tax_paid": {"column": "nse_yuan", "scale": 0.0001},
            "authority": "swjg_mc",
        },
    },
}


async def _postgres_department(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(
            """
            CREATE SCHEMA swj;
            CREATE TABLE swj.nsr_xypj (
                id serial PRIMARY KEY, nsrsbh char(18) NOT NULL, nsrmc varchar(200), xydj varchar(2),
                pdnd smallint, pdrq date, nse_yuan numeric(18, 2), swjg_mc varchar(100), sfyx char(1));
            """
        )
        await conn.executemany(
            "INSERT INTO swj.nsr_xypj (nsrsbh, nsrmc, xydj, pdnd, pdrq, nse_yuan, swjg_mc, sfyx) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                (A, "呼和浩特市新城区鑫达商贸有限公司", "01", 2025, dt.date(2026, 4, 15), Decimal("1234567.89"), "新城区税务局", "Y"),
                (A, "呼和浩特市新城区鑫达商贸有限公司", "02", 2024, dt.date(2025, 4, 10), Decimal("1000.00"), "新城区税务局", "y"),
                (A, "呼和浩特市新城区鑫达商贸有限公司", "05", 2023, dt.date(2024, 4, 10), Decimal("1.00"), "新城区税务局", "N"),
                (B, "呼和浩特市新城区50%_利润有限公司", "09", 2025, dt.date(2026, 4, 15), Decimal("0"), "新城区税务局", "Y"),
                (C, "呼和浩特市新城区50x利润有限公司", "03", 2025, dt.date(2026, 4, 15), None, "新城区税务局", "Y"),
            ],
        )
    finally:
        await conn.close()


async def test_postgres_department_through_the_mapping(postgres_url: str, statements: list[str]) -> None:
    await _postgres_department(postgres_url)
    families = parse_families(TAX_MAPPING, "tax.families")
    connector = SqlConnector("tax", "国家税务总局呼和浩特市新城区税务局", postgres_url, families, batch_size=50)
    try:
        assert (await connector.health()).healthy
        result = await connector.fetch("tax_credit", [A, C, "91150102MA00000X00"], ["level", "year", "tax_paid", "evaluation_date"])
        assert set(result) == {A, C}
        assert sorted(result[A], key=lambda r: r["year"]) == [
            {"level": "B", "year": 2024, "tax_paid": Decimal("0.1"), "evaluation_date": dt.date(2025, 4, 10)},
            {"level": "A", "year": 2025, "tax_paid": Decimal("123.4567890"), "evaluation_date": dt.date(2026, 4, 15)},
        ]
        assert result[C] == [{"level": "M", "year": 2025, "tax_paid": None, "evaluation_date": dt.date(2026, 4, 15)}]
        select = next(s for s in statements if "nsr_xypj" in s)
        assert "swj.nsr_xypj" in select and "nsrmc" not in select and "swjg_mc" not in select
        assert connector.calls[-1].columns == ("xydj", "pdnd", "nse_yuan", "pdrq")

        with pytest.raises(UpstreamInvalid, match=r"tax_credit\.level \(column xydj\): unknown code '09'"):
            await connector.fetch("tax_credit", [B], ["level"])
    finally:
        await connector.close()


async def test_postgres_search_escapes_wildcards_and_missing_table_is_unavailable(postgres_url: str) -> None:
    await _postgres_department(postgres_url)
    mapping = {"registration": {"table": "nsr_xypj", "schema": "swj", "key": "nsrsbh", "fields": {"name": "nsrmc"}}}
    families = parse_families(mapping, "x")
    connector = SqlConnector("tax", "国家税务总局呼和浩特市新城区税务局", postgres_url, families,
                             search=parse_search({"family": "registration", "field": "name"}, families, "x"))
    missing = SqlConnector("tax", "国家税务总局呼和浩特市新城区税务局", postgres_url,
                           parse_families({"registration": {**mapping["registration"], "table": "gone"}}, "x"))
    try:
        assert await connector.search("registration", "50%_", 10) == [B]
        assert await connector.search("registration", "50", 10) == [B, C]
        assert await connector.search("registration", "鑫达", 10) == [A]
        with pytest.raises(UpstreamUnavailable) as caught:
            await missing.fetch("registration", [A], ["name"])
        assert "does not exist" in caught.value.message and "SELECT" not in caught.value.message.upper()
        assert "postgres@" not in caught.value.message
    finally:
        await connector.close()
        await missing.close()
