"""The SQL connector against the machine's real PostgreSQL (asyncpg) and MariaDB (asyncmy) servers.

Each test gets its own database (`postgres_url` / `mariadb_url` in conftest.py), lays out a
department's tables the department's way — status codes, amounts in yuan, dates as 'YYYYMMDD'
text or DATE columns, Chinese names with characters outside the BMP (utf8mb4) — and reads them
through a mapping loaded from TOML by `load_connectors`, as the hub does.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from department_fixtures import K1, K2, K3, KEYS, MARKET, NAMES, SCHEMA, load_one, market_toml, seed
from xinlian.connectors.contract import UpstreamUnavailable
from xinlian.connectors.mapping import ConnectorConfigError
from xinlian.connectors.sql import SqlConnector
from xinlian.hub.executor.federation import Federation
from xinlian.hub.executor.loader import FamilyLoader


@pytest.fixture(params=["postgres", "mariadb"])
def department_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(server, admin URL) of a fresh database on each real server."""
    return request.param, request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
async def market(department_server: tuple[str, str], tmp_path: Path) -> Any:
    """The department's tables, seeded, read through a connector loaded from TOML."""
    server, url = department_server
    await seed(url, SCHEMA[server])
    connector = load_one(tmp_path, market_toml(url, SCHEMA[server]))
    yield connector
    await connector.close()


# ---- conversion -----------------------------------------------------------------------------


async def test_codes_yuan_and_text_dates_become_catalogue_values(market: SqlConnector) -> None:
    fields = ["name", "status", "established_date", "registered_capital", "address"]
    result = await market.fetch("registration", [K1, K2, K3], fields)
    assert result[K1] == [{
        "name": "呼和浩特市新城区𠮷野家餐饮有限公司", "status": "存续", "established_date": dt.date(2019, 1, 15),
        "registered_capital": Decimal("100.05"), "address": "内蒙古自治区呼和浩特市新城区海拉尔东街1号",
    }]
    assert result[K2][0]["status"] == "吊销" and result[K3][0]["status"] == "注销"
    assert result[K2][0]["registered_capital"] == Decimal("200.05")
    assert str(result[K3][0]["registered_capital"]) == "300.05"


async def test_date_columns_small_integers_and_filters(market: SqlConnector) -> None:
    result = await market.fetch("tax_credit", [K1, K2, K3], ["year", "level", "evaluation_date", "tax_paid", "authority"])
    assert set(result) == {K1, K2}  # K3 has no rating; K1's 2024 row is not valid (yxbz = N)
    assert result[K1] == [{
        "year": 2025, "level": "A", "evaluation_date": dt.date(2026, 4, 15),
        "tax_paid": Decimal("123.456789"), "authority": "国家税务总局呼和浩特市新城区税务局",
    }]
    assert isinstance(result[K1][0]["year"], int)
    assert result[K2] == [{"year": 2025, "level": "D", "evaluation_date": dt.date(2026, 4, 15), "tax_paid": Decimal("0"),
                           "authority": "国家税务总局呼和浩特市新城区税务局"}]


async def test_search_finds_chinese_names_beyond_the_basic_plane(market: SqlConnector) -> None:
    assert await market.search("registration", "𠮷野家", 10) == [K1]
    assert await market.search("registration", "鑫达", 10) == [K2]
    assert await market.search("registration", "新城区", 2) == sorted(k for k in KEYS if k != K2)[:2]


# ---- minimisation and batching --------------------------------------------------------------


async def test_only_the_key_and_the_requested_columns_are_selected(market: SqlConnector, statements: list[str]) -> None:
    result = await market.fetch("registration", [K1], ["name"])
    assert result == {K1: [{"name": NAMES[K1]}]}
    assert market.calls[-1].columns == ("qymc",)
    [select] = [s for s in statements if "qy_djxx" in s and "SELECT" in s.upper()]
    assert "shxydm" in select and "qymc" in select
    for not_asked in ("djzt_dm", "clrq", "zczb_yuan", "zs", "lxdh"):
        assert not_asked not in select
    assert K1 not in select  # keys are bound parameters, never SQL text


async def test_n_subjects_cost_ceil_n_over_batch_size_calls(market: SqlConnector, statements: list[str]) -> None:
    department = Federation([market]).department(market.name)
    loader = FamilyLoader(department, "registration", deadline=time.monotonic() + 30)
    futures = [loader.load(key, frozenset({"status"})) for key in KEYS]
    results = [await f for f in futures]
    assert len(market.calls) == math.ceil(len(KEYS) / market.batch_size) == 3
    assert sorted(len(call.keys) for call in market.calls) == [1, 3, 3]
    assert [r[0]["status"] for r in results] == ["存续", "吊销", "注销", "存续", "吊销", "注销", "存续"]

    statements.clear()
    await market.fetch("registration", KEYS, ["name"])  # one fetch of seven keys: bounded IN lists
    assert len([s for s in statements if "qy_djxx" in s]) == 3


# ---- credentials ----------------------------------------------------------------------------

READER_PASSWORD = "R3@d:er/p%w{d}#?&='x"  # every character a URL or SQL could trip over


@pytest.fixture
async def mariadb_reader(mariadb_url: str) -> Any:
    """A read-only MariaDB account with a password, on the seeded test database; dropped after."""
    await seed(mariadb_url, None)
    parsed = make_url(mariadb_url)
    user = f"xl_reader_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(mariadb_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY :pw"), {"pw": READER_PASSWORD})
            await conn.execute(text(f"GRANT SELECT ON `{parsed.database}`.* TO '{user}'@'127.0.0.1'"))
        yield user, parsed.database
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'"))
        await engine.dispose()


def reader_toml(user: str, database: str, extra: str) -> str:
    url = f"mysql+asyncmy://{user}:{{password}}@127.0.0.1:3306/{database}?charset=utf8mb4"
    return market_toml(url, None, extra)


@pytest.mark.mariadb
async def test_password_from_an_environment_variable_logs_in(
    mariadb_reader: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, database = mariadb_reader
    monkeypatch.setenv("TAX_DB_PASSWORD", READER_PASSWORD)
    connector = load_one(tmp_path, reader_toml(user, database, 'password_env = "TAX_DB_PASSWORD"'))
    try:
        assert await connector.fetch("registration", [K1], ["name"]) == {K1: [{"name": NAMES[K1]}]}
        for shown in (repr(connector), str(connector._url), repr(connector._url)):
            assert READER_PASSWORD not in shown
    finally:
        await connector.close()


@pytest.mark.mariadb
async def test_password_from_a_secret_file_logs_in(mariadb_reader: tuple[str, str], tmp_path: Path) -> None:
    user, database = mariadb_reader
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tax-db").write_text(READER_PASSWORD + "\n", encoding="utf-8")
    connector = load_one(tmp_path, reader_toml(user, database, 'password_file = "secrets/tax-db"'))
    try:
        assert (await connector.health()).healthy
        assert await connector.fetch("tax_credit", [K2], ["level"]) == {K2: [{"level": "D"}]}
    finally:
        await connector.close()


@pytest.mark.mariadb
async def test_a_wrong_password_is_unavailable_and_no_secret_or_url_is_repeated(
    mariadb_reader: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    user, database = mariadb_reader
    wrong = "Wr0ng:p@ss/word-7731"
    monkeypatch.setenv("TAX_DB_PASSWORD", wrong)
    connector = load_one(tmp_path, reader_toml(user, database, 'password_env = "TAX_DB_PASSWORD"'))
    caplog.set_level(logging.DEBUG)
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as caught:
            await connector.fetch("registration", [K1], ["name"])
        assert time.monotonic() - started < 5
        health = await connector.health()
    finally:
        await connector.close()
    error = caught.value
    assert error.department == MARKET and "Access denied" in error.message
    full_url = f"mysql+asyncmy://{user}:{wrong}@127.0.0.1:3306/{database}"
    said = [error.message, str(error), repr(error), health.detail, *(r.getMessage() for r in caplog.records)]
    for text_ in said:
        for secret in (wrong, READER_PASSWORD, full_url, "mysql+asyncmy://"):
            assert secret not in text_
    assert not health.healthy


async def test_password_placeholder_on_postgresql(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncpg gets the substituted password (this machine's PostgreSQL trusts loopback, so it
    cannot reject a wrong one: the MariaDB tests above cover refusal)."""
    await seed(postgres_url, "djxt")
    parsed = make_url(postgres_url)
    url = f"postgresql+asyncpg://{parsed.username}:{{password}}@{parsed.host}:{parsed.port}/{parsed.database}"
    monkeypatch.setenv("MARKET_DB_PASSWORD", READER_PASSWORD)
    connector = load_one(tmp_path, market_toml(url, "djxt", 'password_env = "MARKET_DB_PASSWORD"'))
    try:
        assert connector._url.password == READER_PASSWORD  # quoted in the URL, intact for the driver
        assert await connector.fetch("registration", [K2], ["status"]) == {K2: [{"status": "吊销"}]}
        assert READER_PASSWORD not in repr(connector) and READER_PASSWORD not in str(connector._url)
    finally:
        await connector.close()


@pytest.mark.parametrize(
    ("extra", "environment", "message"),
    [
        ("", {}, "has {password} but neither password_env nor password_file"),
        ('password_env = "NOT_SET_ANYWHERE_XL"', {}, "environment variable NOT_SET_ANYWHERE_XL is not set"),
        ('password_env = "XL_EMPTY"', {"XL_EMPTY": ""}, "environment variable XL_EMPTY is empty"),
        ('password_file = "missing/secret"', {}, "cannot read secret file .*missing/secret"),
        ('password_env = "A"\npassword_file = "b"', {"A": "x"}, "password_env or password_file, not both"),
    ],
)
def test_credential_mistakes_name_the_variable_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, environment: dict[str, str], message: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    url = "mysql+asyncmy://reader:{password}@127.0.0.1:3306/tax"
    with pytest.raises(ConnectorConfigError, match=message.replace("{", r"\{").replace("}", r"\}")) as caught:
        load_one(tmp_path, market_toml(url, None, extra))
    assert "market" in str(caught.value)


def test_a_password_option_needs_the_placeholder_and_is_never_echoed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XL_PW", "s3cr3t-value")
    with pytest.raises(ConnectorConfigError, match=r"put \{password\} where the password goes") as caught:
        load_one(tmp_path, market_toml("mysql+asyncmy://reader@127.0.0.1:3306/tax", None, 'password_env = "XL_PW"'))
    assert "s3cr3t-value" not in str(caught.value)
    with pytest.raises(ConnectorConfigError, match="not a database URL") as caught:
        load_one(tmp_path, market_toml("mysql+asyncmy://reader:{password}@127.0.0.1:port/tax", None,
                                           'password_env = "XL_PW"'))
    assert "s3cr3t-value" not in str(caught.value)


# ---- an unreachable server ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["postgresql+asyncpg://postgres@127.0.0.1:1/djxt", "mysql+asyncmy://root@127.0.0.1:1/tax"],
    ids=["postgres", "mariadb"],
)
async def test_a_server_that_is_not_listening_is_unavailable_at_once(url: str, tmp_path: Path) -> None:
    connector = load_one(tmp_path, market_toml(url, None))
    try:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as caught:
            await connector.fetch("registration", [K1], ["name"])
        assert time.monotonic() - started < 3
        health = await connector.health()
    finally:
        await connector.close()
    assert caught.value.department == MARKET and "://" not in caught.value.message
    assert "Connect call failed" in caught.value.message  # the driver tried: not a missing module
    assert not health.healthy
