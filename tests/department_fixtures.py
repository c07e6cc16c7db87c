"""Fixtures module, not a test module: the departments the connector and hostile-input tests share.

Constants, seed data and connector TOML for three loopback departments: the regional credit
platform (GraphQL, served by regional_platform.py), the court's API (REST, hub.demo.court_service)
and the market regulator's database (SQL, on the machine's PostgreSQL and MariaDB). Test modules
import from here, never from each other.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Date, Integer, MetaData, Numeric, SmallInteger, String, Table, text
from sqlalchemy.ext.asyncio import create_async_engine

from xinlian.connectors.registry import load_connectors
from xinlian.connectors.sql import SqlConnector

KEYS = [f"91150102MA0000{n:03d}X" for n in range(1, 8)]  # seven subjects; the connectors do not validate keys

# ---- the regional credit platform (GraphQL) -------------------------------------------------

TOKEN_ENV, TOKEN = "XINLIAN_TEST_REGION_TOKEN", "rgn-7f3a9c2e-secret-token"
REGION = "内蒙古自治区公共信用信息中心"
SOURCE = "内蒙古自治区公共信用信息平台"

HONORS = {  # honours come from the red list: one record per entry
    "list": 'table = "enterprises"\nkey = "code"',
    "alias": 'table = "enterprise"\nkey = "code"',
}
ARGUMENT = {"list": "codes", "alias": "code"}


def region_toml(url: str, *, honors: str = "list", tax: str = "alias", batch_size: int = 2, timeout: float = 2.0,
                auth: str = f'{{ type = "bearer", token_env = "{TOKEN_ENV}" }}', extra: str = "") -> str:
    return f"""
[[connector]]
name = "region"
kind = "graphql"
department = "{REGION}"
endpoint = "{url}/graphql"
batch_size = {batch_size}
timeout = {timeout}
auth = {auth}
headers = {{ "X-Requesting-System" = "xinlian" }}
{extra}

[connector.families.honors]
{HONORS[honors]}

[connector.families.honors.fields]
honor_name = "title"
awarding_authority = "issuedBy"
award_date = "date"
valid_to = {{ column = "validUntil", date_format = "%Y%m%d" }}
data_source_unit = {{ value = "{SOURCE}" }}

[connector.families.tax_credit]
{HONORS[tax]}

[connector.families.tax_credit.fields]
level = {{ column = "gradeCode", map = {{ "1" = "A", "2" = "B", "3" = "M", "4" = "C", "5" = "D" }} }}
year = "year"
evaluation_date = "evaluatedOn"
tax_paid = {{ column = "taxPaidYuan", scale = 0.0001 }}

[connector.graphql.honors]
mode = "{honors}"
argument = "{ARGUMENT[honors]}"
records = "redList"

[connector.graphql.tax_credit]
mode = "{tax}"
argument = "{ARGUMENT[tax]}"
records = "taxCredit"

[connector.graphql.search]
field = "searchEnterprises"
arg = "name"
limit_arg = "first"
"""


# ---- the court's API (REST) -----------------------------------------------------------------

API_KEY = "court-test-key-5f1c9a"
COURT = "内蒙古自治区呼和浩特市新城区人民法院"
FAMILY = "judgment_debtor_records"
PERSON = "150102199101010078"


def entry(key: str, n: int = 1, **changes: Any) -> dict[str, Any]:
    """One entry in the court API's own JSON shape."""
    record = {
        "ah": f"（2025）内0102执{n}号", "zxfy": {"mc": COURT}, "bzxr": {"mc": f"被执行人{key[-4:]}", "zjhm": key},
        "larq": "2025-03-01", "fbrq": "2025-04-15", "zxyj": {"wh": f"（2024）内0102民初{n}号", "yw": "支付货款人民币20000元"},
        "lxqk": "0", "sxxwqx": ["违反财产报告制度", "违反限制消费令"],
    }
    record.update(changes)
    return record


RECORDS: dict[str, list[dict[str, Any]]] = {
    KEYS[0]: [entry(KEYS[0], 1), entry(KEYS[0], 2, lxqk="1")],
    KEYS[1]: [entry(KEYS[1], 3)],
    KEYS[3]: [entry(KEYS[3], 4, larq="2025年13月01日")],  # a bad filing date: read only if asked for
    KEYS[4]: [entry(KEYS[4], n) for n in range(10, 15)],  # five entries: pagination
    KEYS[5]: [entry(KEYS[5], 5, zxfy="新城区人民法院")],  # a string where the mapping expects an object
    PERSON: [entry(PERSON, 6, bzxr={"mc": "王伟", "zjhm": PERSON.lower()})],
}

FIELDS = """
case_number = "ah"
court = "zxfy.mc"
debtor_name = "bzxr.mc"
debtor_id_number = "bzxr.zjhm"
filing_date = "larq"
publish_date = "fbrq"
basis_document = "zxyj.wh"
obligation = "zxyj.yw"
performance = { column = "lxqk", map = { "0" = "全部未履行", "1" = "部分未履行" } }
dishonest_behavior = "sxxwqx.0"
"""


def court_toml(base_url: str, *, table: str = "/api/v1/sxbzxr?ids={keys}", batch_size: int = 3,
               auth: str = '{ type = "api_key", header = "X-Api-Key", value_env = "COURT_API_KEY" }',
               rest: str = 'records = "data.list"\nnext = "data.next"', extra: str = "") -> str:
    return f"""
[[connector]]
name = "courts"
kind = "rest"
department = "新城区人民法院"
base_url = "{base_url}"
batch_size = {batch_size}
timeout = 3.0
auth = {auth}
expect = {{ code = 0 }}
health_path = "/api/v1/health"
{extra}

[connector.rest.{FAMILY}]
{rest}

[connector.families.{FAMILY}]
table = "{table}"
key = "bzxr.zjhm"

[connector.families.{FAMILY}.fields]
{FIELDS}
"""


# ---- the market regulator's database (SQL) ------------------------------------------------

MARKET = "新城区市场监督管理局"
K1, K2, K3 = KEYS[:3]
SCHEMA = {"postgres": "djxt", "mariadb": None}  # PostgreSQL keeps the tables in their own schema


def department_tables(schema: str | None) -> tuple[MetaData, Table, Table]:
    metadata = MetaData(schema=schema)
    registry = Table(
        "qy_djxx", metadata,
        Column("shxydm", String(18), primary_key=True),  # 统一社会信用代码
        Column("qymc", String(200)),  # 企业名称
        Column("djzt_dm", String(2)),  # 登记状态代码: 01 存续, 02 吊销, 03 注销
        Column("clrq", String(8)),  # 成立日期 as 'YYYYMMDD'
        Column("zczb_yuan", Numeric(18, 2)),  # 注册资本, yuan
        Column("zs", String(300)),  # 住所
        Column("lxdh", String(20)),  # 联系电话 (never asked for in these tests)
    )
    ratings = Table(
        "nsxy_pj", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("nsrsbh", String(18), index=True),  # 纳税人识别号
        Column("pjnd", SmallInteger),  # 评价年度
        Column("xydj_dm", String(1)),  # 1 A, 2 B, 3 M, 4 C, 5 D
        Column("pjrq", Date),  # 评价日期, a DATE column
        Column("ynse_yuan", Numeric(16, 2)),  # 应纳税额, yuan
        Column("swjg_mc", String(100)),  # 税务机关名称
        Column("yxbz", String(1)),  # 有效标志 Y/N
    )
    return metadata, registry, ratings


NAMES = {
    K1: "呼和浩特市新城区𠮷野家餐饮有限公司",  # 𠮷 is outside the BMP: four bytes in UTF-8
    K2: "内蒙古鑫达商贸有限责任公司",
    K3: "呼和浩特市新城区恒泰物流有限公司",
}


async def seed(url: str, schema: str | None) -> None:
    metadata, registry, ratings = department_tables(schema)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if schema:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(metadata.create_all)
            await conn.execute(registry.insert(), [
                {"shxydm": key, "qymc": NAMES.get(key, f"新城区第{i}商贸有限公司"), "djzt_dm": ["01", "02", "03"][i % 3],
                 "clrq": f"2019{(i % 12) + 1:02d}15", "zczb_yuan": Decimal(1_000_000 * (i + 1)) + Decimal("500.00"),
                 "zs": f"内蒙古自治区呼和浩特市新城区海拉尔东街{i + 1}号", "lxdh": "0471-1234567"}
                for i, key in enumerate(KEYS)
            ])
            await conn.execute(ratings.insert(), [
                {"nsrsbh": K1, "pjnd": 2025, "xydj_dm": "1", "pjrq": dt.date(2026, 4, 15),
                 "ynse_yuan": Decimal("1234567.89"), "swjg_mc": "国家税务总局呼和浩特市新城区税务局", "yxbz": "Y"},
                {"nsrsbh": K1, "pjnd": 2024, "xydj_dm": "3", "pjrq": dt.date(2025, 4, 20),
                 "ynse_yuan": Decimal("880000.00"), "swjg_mc": "国家税务总局呼和浩特市新城区税务局", "yxbz": "N"},
                {"nsrsbh": K2, "pjnd": 2025, "xydj_dm": "5", "pjrq": dt.date(2026, 4, 15),
                 "ynse_yuan": Decimal("0.00"), "swjg_mc": "国家税务总局呼和浩特市新城区税务局", "yxbz": "Y"},
            ])
    finally:
        await engine.dispose()


def market_toml(url: str, schema: str | None, extra: str = "") -> str:
    schema_line = f'schema = "{schema}"' if schema else ""
    return f"""
[[connector]]
name = "market"
kind = "sql"
department = "{MARKET}"
url = "{url}"
batch_size = 3
timeout = 5.0
search = {{ family = "registration", field = "name" }}
{extra}

[connector.families.registration]
table = "qy_djxx"
{schema_line}
key = "shxydm"
[connector.families.registration.fields]
name = "qymc"
status = {{ column = "djzt_dm", map = {{ "01" = "存续", "02" = "吊销", "03" = "注销" }} }}
established_date = {{ column = "clrq", date_format = "%Y%m%d" }}
registered_capital = {{ column = "zczb_yuan", scale = 0.0001 }}
address = "zs"

[connector.families.tax_credit]
table = "nsxy_pj"
{schema_line}
key = "nsrsbh"
where = {{ yxbz = "Y" }}
[connector.families.tax_credit.fields]
year = "pjnd"
level = {{ column = "xydj_dm", map = {{ "1" = "A", "2" = "B", "3" = "M", "4" = "C", "5" = "D" }} }}
evaluation_date = "pjrq"
tax_paid = {{ column = "ynse_yuan", scale = 0.0001 }}
authority = "swjg_mc"
"""


def load_one(tmp_path: Path, config: str) -> SqlConnector:
    path = tmp_path / "connectors.toml"
    path.write_text(config, encoding="utf-8")
    [connector] = load_connectors(path, tmp_path)
    assert isinstance(connector, SqlConnector)
    return connector
