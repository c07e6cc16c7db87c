"""The demo's departments on the real servers: market regulation on PostgreSQL, tax on MariaDB.

`hub.demo.remote.publish_department` copies a department's SQLite database (as the demo
generator wrote it) onto a server database made for the test (`postgres_url` / `mariadb_url`
in conftest.py); `point_connector` rewires `connectors.toml`. The proof is that the connectors
loaded from the rewritten file — and a real hub serving them — return exactly the records the
SQLite originals give, with the SQLite files gone.
"""

from __future__ import annotations

import asyncio
import decimal
import difflib
import json
import shutil
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from xinlian.connectors.mapping import ConnectorConfigError
from xinlian.connectors.registry import load_connectors
from xinlian.hub.demo.generator import DemoDistrict, build_demo_district
from xinlian.hub.demo.remote import PublishError, point_connector, publish_department

LEGAL_PERSONS, NATURAL_PERSONS = 40, 10
READER_PASSWORD = "T4x:r3ader/p@ss{w}%#"  # characters a URL could trip over
DEPARTMENT_TABLES = {"market": ("qy_jbxx", "xzxk", "xzcf", "syxjl", "jyycml", "xycn"),
                     "tax": ("taxpayer_credit_rating", "tax_penalty", "major_tax_case")}
KEY_COLUMNS = {"qy_jbxx": "tyshxydm", "xzxk": "tyshxydm", "xzcf": "dsr_zjhm", "syxjl": "tyshxydm",
               "jyycml": "tyshxydm", "xycn": "tyshxydm",
               "taxpayer_credit_rating": "taxpayer_id", "tax_penalty": "taxpayer_id", "major_tax_case": "taxpayer_id"}


@pytest.fixture
def district(tmp_path: Path) -> DemoDistrict:
    return build_demo_district(tmp_path / "district", legal_persons=LEGAL_PERSONS, natural_persons=NATURAL_PERSONS)


@pytest.fixture(params=["postgres", "mariadb"])
def server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(server name, URL of a fresh database on it): each test runs on PostgreSQL and on MariaDB."""
    return request.param, request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(params=[("postgres", "market"), ("mariadb", "tax")], ids=["market-postgres", "tax-mariadb"])
def placement(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(server name, URL of a fresh database on it, department published there) as the demo places them."""
    name, department = request.param
    return name, request.getfixturevalue(f"{name}_url"), department


@pytest.fixture
async def tax_reader(mariadb_url: str) -> AsyncIterator[str]:
    """A read-only MariaDB account for the tax bureau's database; its URL has `{password}`."""
    parsed = make_url(mariadb_url)
    user = f"xl_tax_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(mariadb_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY :pw"), {"pw": READER_PASSWORD})
            await conn.execute(text(f"GRANT SELECT ON `{parsed.database}`.* TO '{user}'@'127.0.0.1'"))
        yield f"mysql+asyncmy://{user}:{{password}}@127.0.0.1:3306/{parsed.database}?charset=utf8mb4"
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'"))
        await engine.dispose()


def subjects(district: DemoDistrict) -> list[str]:
    """Every subject key any market or tax table holds, and one nobody has."""
    keys: set[str] = set()
    for department, tables in DEPARTMENT_TABLES.items():
        with closing(sqlite3.connect(district.databases[department])) as conn:
            for table in tables:
                keys.update(row[0] for row in conn.execute(f"SELECT DISTINCT {KEY_COLUMNS[table]} FROM {table}"))
    return sorted(keys) + ["91150102MA00000000"]


async def everything(connector: Any, keys: list[str]) -> dict[str, dict[str, list[str]]]:
    """family → subject → its records (every mapped field, order-independent, types kept)."""
    out: dict[str, dict[str, list[str]]] = {}
    for family in sorted(connector.families):
        fetched = await connector.fetch(family, keys, sorted(connector.provides(family)))
        out[family] = {key: sorted(repr(sorted(r.items())) for r in records) for key, records in fetched.items()}
    return out


async def close_all(connectors: list[Any]) -> None:
    for connector in connectors:
        await connector.close()


def backend(connector: Any) -> str:
    return connector._url.get_backend_name()


# ---- connectors over the published departments -------------------------------------------------


@pytest.mark.postgres
@pytest.mark.mariadb
async def test_market_on_postgresql_and_tax_on_mariadb_give_the_sqlite_records(
    district: DemoDistrict, postgres_url: str, mariadb_url: str, tax_reader: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = subjects(district)
    original = district.data_dir / "connectors.sqlite.toml"
    shutil.copyfile(district.connectors_path, original)
    sqlite_side = {c.name: c for c in load_connectors(original, district.data_dir)}
    try:
        expected = {name: await everything(sqlite_side[name], keys) for name in ("market", "tax")}
    finally:
        await close_all(list(sqlite_side.values()))
    assert expected["market"]["registration"] and expected["tax"]["tax_credit"]

    await publish_department(district.data_dir, "market", postgres_url)
    await publish_department(district.data_dir, "tax", mariadb_url)
    monkeypatch.setenv("XL_DEMO_TAX_DB_PASSWORD", READER_PASSWORD)
    point_connector(district.connectors_path, "market", postgres_url)
    point_connector(district.connectors_path, "tax", tax_reader, password_env="XL_DEMO_TAX_DB_PASSWORD")
    for department in ("market", "tax"):  # from now on only the servers have these departments
        district.databases[department].rename(district.databases[department].with_suffix(".db.away"))

    served = {c.name: c for c in load_connectors(district.connectors_path, district.data_dir)}
    try:
        assert backend(served["market"]) == "postgresql" and backend(served["tax"]) == "mysql"
        assert backend(served["environment"]) == "sqlite"  # the other departments are unchanged
        assert served["tax"]._url.password == READER_PASSWORD  # the read-only account, password from env
        assert await everything(served["market"], keys) == expected["market"]
        assert await everything(served["tax"], keys) == expected["tax"]

        sample = district.samples["a_level_taxpayer"]
        registration = (await served["market"].fetch("registration", [sample], ["name", "status"]))[sample]
        with closing(sqlite3.connect(district.databases["market"].with_suffix(".db.away"))) as conn:
            (name,) = conn.execute("SELECT qymc FROM qy_jbxx WHERE tyshxydm = ?", (sample,)).fetchone()
        assert registration == [{"name": name, "status": "存续"}] and name.startswith("呼和浩特市新城区")
        ratings = (await served["tax"].fetch("tax_credit", [sample], ["level", "year", "tax_paid"]))[sample]
        assert sorted((r["year"], r["level"]) for r in ratings) == [(2023, "A"), (2024, "A"), (2025, "A")]
        assert all(isinstance(r["tax_paid"], decimal.Decimal) for r in ratings)
        assert (await served["market"].health()).healthy and (await served["tax"].health()).healthy
    finally:
        await close_all(list(served.values()))


# ---- what publishing creates ---------------------------------------------------------------


def _layout(sync_conn: Any) -> dict[str, Any]:
    inspector = inspect(sync_conn)
    return {
        table: {
            "columns": {c["name"]: c["type"] for c in inspector.get_columns(table)},
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": [tuple(i["column_names"]) for i in inspector.get_indexes(table)],
        }
        for table in inspector.get_table_names()
    }


async def test_publishing_keeps_names_keys_and_rows_and_is_idempotent(
    district: DemoDistrict, placement: tuple[str, str, str],
) -> None:
    server, url, department = placement
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:  # someone else's table in the same database
            await conn.execute(text("CREATE TABLE hub_notes (note VARCHAR(50))"))
            await conn.execute(text("INSERT INTO hub_notes VALUES ('kept')"))
        for _ in range(2):  # the second run replaces the first
            await publish_department(district.data_dir, department, url)
        async with engine.connect() as conn:
            layout = await conn.run_sync(_layout)
            counts = {t: (await conn.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one()
                      for t in DEPARTMENT_TABLES[department]}
            notes = (await conn.execute(text("SELECT note FROM hub_notes"))).scalars().all()
            if server == "mariadb":
                charsets = dict((await conn.execute(text(
                    "SELECT table_name, table_collation FROM information_schema.tables WHERE table_schema = DATABASE()"
                ))).all())
    finally:
        await engine.dispose()

    assert notes == ["kept"]
    assert set(layout) == {*DEPARTMENT_TABLES[department], "hub_notes"}
    manifest_counts = json.loads(district.manifest_path.read_text(encoding="utf-8"))["tables"][department]
    assert counts == manifest_counts and all(counts.values())
    with closing(sqlite3.connect(district.databases[department])) as source:
        for table in DEPARTMENT_TABLES[department]:
            columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
            assert list(layout[table]["columns"]) == columns  # same names, same order
            key = KEY_COLUMNS[table]
            assert any(index[0] == key for index in layout[table]["indexes"]) or layout[table]["pk"] == [key]
            assert "VARCHAR(255)" in str(layout[table]["columns"][key]).upper()
    if department == "market":
        assert layout["qy_jbxx"]["pk"] == ["tyshxydm"]
        assert "BIGINT" in str(layout["qy_jbxx"]["columns"]["zczb"]).upper()
    else:
        assert str(layout["tax_penalty"]["columns"]["fine_yuan"]).upper() in ("NUMERIC(18, 2)", "DECIMAL(18, 2)")
        assert {charsets[t] for t in DEPARTMENT_TABLES["tax"]} == {"utf8mb4_bin"}


async def test_unusual_department_columns_survive(tmp_path: Path, server: tuple[str, str]) -> None:
    """Characters outside the BMP, long text, decimals, doubles, big integers, NULLs, composite keys."""
    name, url = server
    if name == "mariadb":  # the other spelling of the dialect gets the same utf8mb4 tables
        url = url.replace("mysql+asyncmy://", "mariadb+asyncmy://")
    (tmp_path / "departments").mkdir()
    long_text = "违法事实：" + "超标排放𠮷" * 5000  # 25,005 characters: beyond MariaDB's TEXT
    rows = [
        ("91150102MA0000001X", 2024, "呼和浩特市新城区𠮷野家餐饮有限公司", long_text, 12345.67, 0.125, 2**40, None, 7),
        ("91150102MA0000001X", 2025, "", "短", 500, 3.0, -1, b"\x00\xff", 8),
        ("150102199001011234", 2025, None, None, None, None, None, None, None),
    ]
    with closing(sqlite3.connect(tmp_path / "departments" / "housing.db")) as conn:
        conn.execute("CREATE TABLE zfbz (zjhm TEXT NOT NULL, nd INTEGER NOT NULL, mc TEXT, bz TEXT, je DECIMAL(18,2), "
                     "bl REAL, xh INTEGER, fj BLOB, qt, PRIMARY KEY (zjhm, nd))")
        conn.execute("CREATE UNIQUE INDEX ux_zfbz_xh ON zfbz(xh)")
        conn.executemany("INSERT INTO zfbz VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
    await publish_department(tmp_path, "housing", url)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            back = (await conn.execute(text("SELECT * FROM zfbz ORDER BY zjhm DESC, nd"))).all()
            layout = await conn.run_sync(_layout)
            if name == "mariadb":
                collation = (await conn.execute(text(
                    "SELECT table_collation FROM information_schema.tables WHERE table_name = 'zfbz' "
                    "AND table_schema = DATABASE()"))).scalar_one()
                assert collation == "utf8mb4_bin"
    finally:
        await engine.dispose()
    assert [tuple(r) for r in back] == [
        ("91150102MA0000001X", 2024, "呼和浩特市新城区𠮷野家餐饮有限公司", long_text, decimal.Decimal("12345.67"), 0.125,
         2**40, None, 7),
        ("91150102MA0000001X", 2025, "", "短", decimal.Decimal("500.00"), 3.0, -1, b"\x00\xff", 8),
        ("150102199001011234", 2025, None, None, None, None, None, None, None),
    ]
    assert layout["zfbz"]["pk"] == ["zjhm", "nd"]
    assert ("xh",) in layout["zfbz"]["indexes"]


async def test_publishing_refuses_what_it_cannot_do(district: DemoDistrict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no demo department 'housing'.*market"):
        await publish_department(district.data_dir, "housing", "postgresql+asyncpg://x@127.0.0.1/db")
    with pytest.raises(ValueError, match="PostgreSQL or MariaDB"):
        await publish_department(district.data_dir, "market", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="no password was given"):
        await publish_department(district.data_dir, "market", "mysql+asyncmy://admin:{password}@127.0.0.1/tax")
    with pytest.raises(ValueError, match="names no database"):
        await publish_department(district.data_dir, "market", "postgresql+asyncpg://x@127.0.0.1")


@pytest.mark.mariadb
async def test_a_refused_login_names_the_server_never_the_password(district: DemoDistrict, mariadb_url: str) -> None:
    database = make_url(mariadb_url).database
    secret = "Wr0ng-p@ss:word/99"
    url = f"mysql+asyncmy://xl_nobody_{uuid.uuid4().hex[:6]}:{{password}}@127.0.0.1:3306/{database}"
    with pytest.raises(PublishError) as caught:
        await publish_department(district.data_dir, "tax", url, password=secret)
    assert "Access denied" in str(caught.value) and "127.0.0.1:3306" in str(caught.value)
    assert secret not in str(caught.value) and "Wr0ng" not in str(caught.value)


# ---- pointing connectors.toml ----------------------------------------------------------------


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_pointing_changes_only_that_connectors_url(district: DemoDistrict, monkeypatch: pytest.MonkeyPatch) -> None:
    path = district.connectors_path
    before = path.read_text(encoding="utf-8")
    point_connector(path, "market", "postgresql+asyncpg://reader@db.market.example:5432/djxt")
    after = path.read_text(encoding="utf-8")
    assert changed_lines(before, after) == [
        '-url = "sqlite+aiosqlite:///{data_dir}/departments/market.db"',
        '+url = "postgresql+asyncpg://reader@db.market.example:5432/djxt"',
    ]

    monkeypatch.setenv("XL_TAX_PW", "s3cret")
    point_connector(path, "tax", "mysql+asyncmy://reader:{password}@db.tax.example:3306/tax?charset=utf8mb4",
                    password_env="XL_TAX_PW")
    assert changed_lines(after, path.read_text(encoding="utf-8")) == [
        '-url = "sqlite+aiosqlite:///{data_dir}/departments/tax.db"',
        '+url = "mysql+asyncmy://reader:{password}@db.tax.example:3306/tax?charset=utf8mb4"',
        '+password_env = "XL_TAX_PW"',
    ]
    assert "s3cret" not in path.read_text(encoding="utf-8")
    connectors = {c.name: c for c in load_connectors(path, district.data_dir)}
    assert connectors["tax"]._url.host == "db.tax.example" and connectors["tax"]._url.password == "s3cret"

    point_connector(path, "tax", "sqlite+aiosqlite:///{data_dir}/departments/tax.db")  # and back: no secret left
    point_connector(path, "market", "sqlite+aiosqlite:///{data_dir}/departments/market.db")
    assert path.read_text(encoding="utf-8") == before


def test_pointing_keeps_comments_and_line_endings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "connectors.toml"
    before = (
        "# department systems\r\n"
        "[[connector]]\r\n"
        'name = "tax"   # 税务局\r\n'
        'kind = "sql"\r\n'
        'department = "国家税务总局呼和浩特市新城区税务局"\r\n'
        "  url = 'sqlite+aiosqlite:///{data_dir}/tax.db'   # the # in a comment stays\r\n"
        'password_file = "secrets/tax"\r\n'
        "\r\n"
        "[connector.families.tax_credit]  # ratings\r\n"
        'table = "taxpayer_credit_rating"\r\n'
        'key = "taxpayer_id"\r\n'
        "[connector.families.tax_credit.fields]\r\n"
        'level = "credit_grade"\r\n'
    )
    path.write_bytes(before.encode("utf-8"))
    monkeypatch.setenv("XL_TAX_PW", "pw")
    point_connector(path, "tax", "mysql+asyncmy://r:{password}@h:3306/tax#x", password_env="XL_TAX_PW")
    after = path.read_bytes().decode("utf-8")
    assert after == before.replace(
        "  url = 'sqlite+aiosqlite:///{data_dir}/tax.db'   # the # in a comment stays\r\n"
        'password_file = "secrets/tax"\r\n',
        '  url = "mysql+asyncmy://r:{password}@h:3306/tax#x"   # the # in a comment stays\r\n'
        '  password_env = "XL_TAX_PW"\r\n',
    )


def test_pointing_refuses_mistakes_and_leaves_the_file_alone(district: DemoDistrict, tmp_path: Path) -> None:
    path = district.connectors_path
    before = path.read_bytes()
    with pytest.raises(ValueError, match="no \\[\\[connector\\]\\] named 'housing'.*market"):
        point_connector(path, "housing", "postgresql+asyncpg://r@h/db")
    with pytest.raises(ValueError, match="put \\{password\\} where the password goes"):
        point_connector(path, "tax", "mysql+asyncmy://r@h/tax", password_env="XL_TAX_PW")
    with pytest.raises(ValueError, match="environment variable's name"):
        point_connector(path, "tax", "mysql+asyncmy://r:{password}@h/tax", password_env="NOT A NAME")
    with pytest.raises(ConnectorConfigError, match="not a database URL") as caught:
        point_connector(path, "market", "not a url at all")
    assert str(path) in str(caught.value) and ".tmp" not in str(caught.value)
    with pytest.raises(ConnectorConfigError, match="environment variable XL_UNSET_FOR_SURE is not set"):
        point_connector(path, "tax", "mysql+asyncmy://r:{password}@h/tax", password_env="XL_UNSET_FOR_SURE")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == []

    rest = tmp_path / "rest.toml"
    rest.write_text('[[connector]]\nname = "courts"\nkind = "rest"\ndepartment = "法院"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="is a rest connector, not sql"):
        point_connector(rest, "courts", "postgresql+asyncpg://r@h/db")


# ---- a real hub over the servers --------------------------------------------------------------

PROFILE = """
query($u: String!) {
  legalPerson(uscc: $u) {
    uscc name
    registration { name status legalRepresentative establishedDate address industry registeredCapital contactPhone }
    taxCredit { level year evaluationDate authority }
    penalties { decisionNumber severity decisionDate fineAmount dataSourceUnit }
  }
}
"""


@pytest.mark.postgres
@pytest.mark.mariadb
def test_the_hub_serves_market_from_postgresql_and_tax_from_mariadb(
    tmp_path: Path, postgres_url: str, mariadb_url: str,
) -> None:
    from hub_fixture import running_hub

    served_dir, sqlite_dir = tmp_path / "servers", tmp_path / "sqlite"
    build_demo_district(served_dir, legal_persons=LEGAL_PERSONS, natural_persons=NATURAL_PERSONS)
    asyncio.run(publish_department(served_dir, "market", postgres_url))
    asyncio.run(publish_department(served_dir, "tax", mariadb_url))
    point_connector(served_dir / "connectors.toml", "market", postgres_url)
    point_connector(served_dir / "connectors.toml", "tax", mariadb_url)

    names = ("a_level_taxpayer", "multi_department_penalties", "revoked", "clean", "honored")
    answers: dict[str, dict[str, Any]] = {}
    for label, data_dir in (("servers", served_dir), ("sqlite", sqlite_dir)):
        with running_hub(data_dir, legal_persons=LEGAL_PERSONS, natural_persons=NATURAL_PERSONS) as hub:
            if label == "servers":
                assert backend(hub.connector("market")) == "postgresql" and backend(hub.connector("tax")) == "mysql"
                hub.connector("market").calls.clear()
                hub.connector("tax").calls.clear()
            for name in names:
                body = hub.query(PROFILE, "department", {"u": hub.samples[name]}).json()
                assert body["data"]["legalPerson"] is not None, body
                assert not [e for e in body.get("errors", []) if e["extensions"]["code"].startswith("UPSTREAM")], body
                answers.setdefault(name, {})[label] = body
            if label == "servers":
                assert {c.family for c in hub.connector("market").calls} >= {"registration", "penalties"}
                assert {c.family for c in hub.connector("tax").calls} >= {"tax_credit", "penalties"}
    for name in names:
        assert answers[name]["servers"] == answers[name]["sqlite"], name
    person = answers["a_level_taxpayer"]["servers"]["data"]["legalPerson"]
    assert person["registration"]["status"] == "存续" and person["taxCredit"]["level"] == "A"
    assert person["name"] == person["registration"]["name"] and person["name"].startswith("呼和浩特市新城区")
    assert answers["revoked"]["servers"]["data"]["legalPerson"]["registration"]["status"] == "吊销"
    sources = {p["dataSourceUnit"] for p in answers["multi_department_penalties"]["servers"]["data"]["legalPerson"]["penalties"]}
    assert {"新城区市场监督管理局", "国家税务总局呼和浩特市新城区税务局"} <= sources
