"""Hostile input cannot switch a department off.

A search text holding a lone UTF-16 surrogate (SQLite, MariaDB: the driver cannot encode it) or a
NUL (PostgreSQL refuses it) made the department's driver raise, every failure counted toward
the department's circuit breaker, and three anonymous requests to /public/graphql opened the
market registry's circuit for 30 s, for everyone. Now:

- the hub refuses such search text with BAD_USER_INPUT before any connector is called
  (`schema.text`, one rule); identifiers holding such characters were already refused by their
  own validators (ASCII alphabets and check characters) and stay refused (guarded here too);
- a value a department's driver, database or API cannot take is a `CallerInputError`: it fails
  that one call, is never retried and never counts toward the breaker (`DepartmentLink`);
- NUL no longer reaches SQLite's LIKE (where it ended the pattern: "%<NUL>%" matched every
  row), and `%` / `_` in search text match themselves.

Real servers throughout: the hub under uvicorn over the demo district, PostgreSQL and MariaDB
on this machine, the court's REST API and the regional GraphQL platform on loopback.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import create_async_engine

from department_fixtures import (
    API_KEY,
    FAMILY,
    KEYS,
    MARKET,
    RECORDS,
    SCHEMA,
    TOKEN,
    TOKEN_ENV,
    court_toml,
    load_one,
    market_toml,
    region_toml,
    seed,
)
from hub_fixture import RunningHub, running_hub
from regional_platform import RegionalPlatform, sample_enterprises
from servers import serve_app
from xinlian.connectors.calls import whole_call_failure
from xinlian.connectors.contract import (
    CallerInputError,
    UpstreamInvalid,
    UpstreamUnavailable,
    caller_text,
)
from xinlian.connectors.registry import load_connectors
from xinlian.connectors.resilience import CircuitState, DepartmentLink, ResiliencePolicy
from xinlian.connectors.sql import SqlConnector
from xinlian.hub.demo.court_service import court_app
from xinlian.hub.executor.errors import upstream
from xinlian.schema.text import InvalidText, refused_character, validate_text

SURROGATE, NUL = "\ud800", "\x00"
HOSTILE = [SURROGATE, f"新城区{SURROGATE}", "\udfff", NUL, f"新城区{NUL}", f"{NUL}%", "\x1b[2J", "a\rb", "\x7f", "\x85"]
STRICT = ResiliencePolicy(timeout=5.0, failure_threshold=1, retries=2, backoff_base=0.0, backoff_max=0.0)


def deadline(link: DepartmentLink) -> float:
    return link.deadline_in(30)


def assert_untouched(link: DepartmentLink, *, bad_input: int, attempts: int | None = None) -> None:
    """The breaker did not move: closed, no failure counted, no last error, nothing retried."""
    status = link.status()
    assert status.state is CircuitState.CLOSED
    assert (status.consecutive_failures, status.failures, status.retries, status.rejected) == (0, 0, 0, 0)
    assert status.last_error is None and status.condition == "healthy"
    assert status.bad_input == bad_input
    if attempts is not None:
        assert status.attempts == attempts, "an input error is never retried"


# ---- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_the_rule_refuses_control_characters_and_lone_surrogates(value: str) -> None:
    refused = refused_character(value)
    assert refused is not None and refused.startswith("U+")
    with pytest.raises(InvalidText) as raised:
        validate_text(value)
    str(raised.value).encode("utf-8")  # the message never carries the character itself
    with pytest.raises(CallerInputError) as refused_input:
        caller_text("某部门", value)
    assert refused_input.value.code == "BAD_USER_INPUT" and refused_input.value.reason == "bad_input"


@pytest.mark.parametrize("value", ["新城区", "呼和浩特市新城区𠮷野家", "a\tb", "100%", "a_b", "O'Brien; DROP TABLE x", "é"])
def test_the_rule_accepts_ordinary_text(value: str) -> None:
    assert refused_character(value) is None and validate_text(value) == value == caller_text("某部门", value)


# ---- the link: an input error is the caller's, not the department's ---------------------------------


class Department:
    """A connector double whose next answers are scripted (an exception is raised)."""

    name, department, families, batch_size, timeout = "market", MARKET, frozenset({"registration"}), 10, 5.0

    def __init__(self) -> None:
        self.script: list[Any] = []
        self.asked = 0

    def provides(self, family: str) -> frozenset[str]:
        return frozenset({"name"})

    async def fetch(self, family: str, keys: Any, fields: Any) -> Any:
        return await self.search(family, "", 1)

    async def search(self, family: str, text: str, limit: int) -> Any:
        self.asked += 1
        answer = self.script.pop(0) if self.script else ["91110000600037341L"]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def health(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        pass


def refused() -> CallerInputError:
    return CallerInputError(MARKET, "search text refused: it contains U+0000 (a control character)")


async def test_input_errors_are_neither_retried_nor_counted_toward_the_breaker() -> None:
    department = Department()
    link = DepartmentLink(department, STRICT)  # type: ignore[arg-type]
    department.script = [refused() for _ in range(6)]
    for _ in range(6):  # one counted failure would open this circuit
        with pytest.raises(CallerInputError):
            await link.search("registration", "x", 5, deadline=deadline(link))
    assert department.asked == 6
    assert_untouched(link, bad_input=6, attempts=6)
    assert await link.search("registration", "x", 5, deadline=deadline(link)) == ["91110000600037341L"]


async def test_an_input_error_in_a_half_open_probe_leaves_the_probe_to_the_next_call() -> None:
    now = [0.0]
    department = Department()
    link = DepartmentLink(department, dataclasses.replace(STRICT, retries=0, reset_timeout=10.0),  # type: ignore[arg-type]
                          clock=lambda: now[0])
    department.script = [UpstreamUnavailable(MARKET, "connection refused")]
    with pytest.raises(UpstreamUnavailable):
        await link.search("registration", "x", 5, deadline=now[0] + 30)
    assert link.state is CircuitState.OPEN
    now[0] += 11
    department.script = [refused()]
    with pytest.raises(CallerInputError):  # the probe: it says nothing about the department
        await link.search("registration", "x", 5, deadline=now[0] + 30)
    status = link.status()
    assert status.state is CircuitState.HALF_OPEN and status.failures == 1 and status.bad_input == 1
    assert await link.search("registration", "x", 5, deadline=now[0] + 30)  # the next call probes, and closes
    assert link.state is CircuitState.CLOSED


def test_a_call_fails_as_the_callers_fault_only_if_every_subject_did() -> None:
    keys = ["a", "b"]
    assert isinstance(whole_call_failure(MARKET, keys, [refused(), refused()]), CallerInputError)
    mixed = whole_call_failure(MARKET, keys, [refused(), UpstreamUnavailable(MARKET, "down")])
    assert type(mixed) is UpstreamUnavailable
    invalid = whole_call_failure(MARKET, keys, [UpstreamInvalid(MARKET, "x"), UpstreamInvalid(MARKET, "y")])
    assert type(invalid) is UpstreamInvalid


def test_the_hub_answers_an_input_error_as_bad_user_input_without_the_drivers_words() -> None:
    failure = CallerInputError(MARKET, "department database failed (Error: invalid byte sequence for encoding \"UTF8\": 0x00)")
    error = upstream([failure])
    assert error.extensions["code"] == "BAD_USER_INPUT" and error.extensions["department"] == MARKET
    assert "UTF8" not in error.message and "database" not in error.message
    down = upstream([UpstreamUnavailable(MARKET, "connection refused")])
    assert down.extensions["code"] == "UPSTREAM_UNAVAILABLE"


# ---- the SQL connector on real servers ------------------------------------------------------------


@pytest.fixture
async def pg_market(postgres_url: str, tmp_path: Path) -> Any:
    await seed(postgres_url, SCHEMA["postgres"])
    connector = load_one(tmp_path, market_toml(postgres_url, SCHEMA["postgres"]))
    yield connector
    await connector.close()


async def test_a_nul_reaching_postgresql_is_the_callers_fault_and_never_moves_the_breaker(
    pg_market: SqlConnector, statements: list[str]
) -> None:
    hostile_key = KEYS[0][:9] + NUL + KEYS[0][10:]
    with pytest.raises(CallerInputError) as raised:  # PostgreSQL itself refused it: 22021
        await pg_market.fetch("registration", [hostile_key], ["name"])
    assert raised.value.code == "BAD_USER_INPUT" and raised.value.department == MARKET
    assert any("qy_djxx" in s for s in statements), "the NUL did reach the database"

    link = DepartmentLink(pg_market, STRICT)
    for _ in range(3):
        with pytest.raises(CallerInputError):
            await link.fetch("registration", [hostile_key], ["name"], deadline=deadline(link))
        with pytest.raises(CallerInputError):  # asyncpg cannot encode it
            await link.fetch("registration", [KEYS[0] + SURROGATE], ["name"], deadline=deadline(link))
    assert_untouched(link, bad_input=6, attempts=6)
    records = await link.fetch("registration", [KEYS[1]], ["name"], deadline=deadline(link))
    assert records[KEYS[1]] == [{"name": "内蒙古鑫达商贸有限责任公司"}]


async def test_search_text_with_a_nul_is_refused_before_the_database_is_asked(
    pg_market: SqlConnector, statements: list[str]
) -> None:
    link = DepartmentLink(pg_market, STRICT)
    for text in (NUL, f"鑫达{NUL}", f"鑫达{SURROGATE}"):
        with pytest.raises(CallerInputError):
            await link.search("registration", text, 10, deadline=deadline(link))
    assert not any("qy_djxx" in s for s in statements)
    assert_untouched(link, bad_input=3, attempts=3)
    assert await link.search("registration", "鑫达", 10, deadline=deadline(link)) == [KEYS[1]]


async def test_a_character_outside_a_mariadb_columns_character_set_is_the_callers_fault(
    mariadb_url: str, tmp_path: Path
) -> None:
    """MariaDB refuses a 4-byte character against a utf8mb3 column ("illegal mix of collations")."""
    engine = create_async_engine(mariadb_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sql_text(
                "CREATE TABLE qy_djxx (shxydm VARCHAR(18) PRIMARY KEY, qymc VARCHAR(200) CHARACTER SET utf8mb3)"
            ))
            await conn.execute(sql_text("INSERT INTO qy_djxx VALUES (:k, :n)"), {"k": KEYS[0], "n": "新城区恒泰物流有限公司"})
    finally:
        await engine.dispose()
    connector = load_one(tmp_path, sql_department_toml(mariadb_url))
    link = DepartmentLink(connector, STRICT)
    try:
        for _ in range(3):
            with pytest.raises(CallerInputError):
                await link.search("registration", "恒泰😀", 10, deadline=deadline(link))
        assert_untouched(link, bad_input=3, attempts=3)
        assert await link.search("registration", "恒泰", 10, deadline=deadline(link)) == [KEYS[0]]
    finally:
        await connector.close()


def sql_department_toml(url: str) -> str:
    return f"""
[[connector]]
name = "market"
kind = "sql"
department = "{MARKET}"
url = "{url}"
search = {{ family = "registration", field = "name" }}

[connector.families.registration]
table = "qy_djxx"
key = "shxydm"
[connector.families.registration.fields]
name = "qymc"
"""


@pytest.fixture
async def sqlite_market(tmp_path: Path) -> Any:
    path = tmp_path / "market.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE qy_djxx (shxydm TEXT PRIMARY KEY, qymc TEXT)")
        db.executemany("INSERT INTO qy_djxx VALUES (?, ?)", [
            (KEYS[0], "新城区甲_乙商贸有限公司"), (KEYS[1], "新城区甲丙乙商贸有限公司"),
            (KEYS[2], "新城区百分之100%物流有限公司"), (KEYS[3], "新城区恒泰物流有限公司"),
        ])
    connector = load_one(tmp_path, sql_department_toml(f"sqlite+aiosqlite:///{path}"))
    yield connector
    await connector.close()


async def test_sqlite_like_wildcards_match_themselves_and_a_nul_cannot_match_everything(
    sqlite_market: SqlConnector, statements: list[str]
) -> None:
    link = DepartmentLink(sqlite_market, STRICT)

    async def search(text: str) -> list[str]:
        return await link.search("registration", text, 10, deadline=deadline(link))

    assert await search("%") == [KEYS[2]]  # the one name that holds a per-cent sign, not every name
    assert await search("_") == [KEYS[0]]
    assert await search("甲_乙") == [KEYS[0]]  # not 甲丙乙
    assert await search("甲%乙") == []
    assert all("ESCAPE" in s for s in statements if "LIKE" in s)
    asked = len(statements)
    for text in (NUL, f"新城区{NUL}", f"{NUL}%", SURROGATE):  # "%<NUL>%" used to match every row
        with pytest.raises(CallerInputError):
            await search(text)
    assert len(statements) == asked, "nothing was sent to the database"
    with pytest.raises(CallerInputError):  # a key the driver cannot encode, past every check
        await link.fetch("registration", [KEYS[0] + SURROGATE], ["name"], deadline=deadline(link))
    assert_untouched(link, bad_input=5)
    assert await search("恒泰") == [KEYS[3]]


# ---- the HTTP kinds --------------------------------------------------------------------------------


async def test_the_rest_connector_sends_no_request_with_hostile_text_or_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURT_API_KEY", API_KEY)
    app = court_app(RECORDS, API_KEY)
    rest = 'records = "data.list"\nsearch = "/api/v1/sxbzxr/search?mc={text}&limit={limit}"'
    with serve_app(app) as base_url:
        path = tmp_path / "connectors.toml"
        path.write_text(court_toml(base_url, rest=rest), encoding="utf-8")
        [courts] = load_connectors(path, tmp_path)
        link = DepartmentLink(courts, STRICT)
        try:
            for text in (NUL, f"王伟{SURROGATE}", "王\x1b伟"):
                with pytest.raises(CallerInputError):
                    await link.search(FAMILY, text, 10, deadline=deadline(link))
            with pytest.raises(CallerInputError):
                await link.fetch(FAMILY, [NUL + "X"], ["case_number"], deadline=deadline(link))
            assert sum(app.state.traffic.requests.values()) == 0
            assert_untouched(link, bad_input=4, attempts=4)
        finally:
            await courts.close()


async def test_the_graphql_connector_sends_no_request_with_hostile_text_or_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    platform = RegionalPlatform(sample_enterprises(), token=TOKEN)
    with serve_app(platform.app()) as url:
        path = tmp_path / "connectors.toml"
        path.write_text(region_toml(url), encoding="utf-8")
        [region] = load_connectors(path, tmp_path)
        link = DepartmentLink(region, STRICT)
        try:
            with pytest.raises(CallerInputError):
                await link.search("honors", f"信用{NUL}", 10, deadline=deadline(link))
            with pytest.raises(CallerInputError):  # a key that cannot become UTF-8 JSON
                await link.fetch("honors", [SURROGATE], ["honor_name"], deadline=deadline(link))
            assert platform.received == []
            assert_untouched(link, bad_input=2, attempts=2)
        finally:
            await region.close()


# ---- through the hub ---------------------------------------------------------------------------------

SEARCH = "query($n: String!) { searchLegalPersons(name: $n, first: 5) { uscc name } }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("hostile"), legal_persons=40, natural_persons=10) as running:
        yield running


@pytest.fixture
def market_spy(hub: RunningHub) -> Iterator[list[tuple[str, ...]]]:
    """Every search and fetch the market connector receives while the test runs."""
    market = hub.connector("market")
    asked: list[tuple[str, ...]] = []
    original_search, original_fetch = market.search, market.fetch

    async def search(family: str, text: str, limit: int) -> Any:
        asked.append(("search", family))
        return await original_search(family, text, limit)

    async def fetch(family: str, keys: Any, fields: Any) -> Any:
        asked.append(("fetch", family))
        return await original_fetch(family, keys, fields)

    market.search, market.fetch = search, fetch
    yield asked
    del market.search, market.fetch


def post_raw(hub: RunningHub, body: bytes, path: str = "/public/graphql", token: str | None = None) -> dict[str, Any]:
    """POST a JSON body as bytes, so it can carry a lone surrogate escape ("\\ud800")."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    response = hub.http.post(path, content=body, headers=headers)
    assert response.status_code in (200, 400), response.text
    return response.json()


def variables_body(query: str, variables_json: str) -> bytes:
    return ('{"query": ' + json.dumps(query) + ', "variables": ' + variables_json + "}").encode("utf-8")


def assert_bad_input(body: dict[str, Any], argument: str, field: str) -> None:
    assert body["data"] in (None, {field: None}), body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == argument, error
    assert "U+" in error["message"] and "database" not in error["message"]


HOSTILE_JSON = [  # JSON texts of hostile search values, as a client would send them
    '"\\ud800"', '"新城区\\ud800"', '"\\udc00新城区"', '"\\u0000"', '"新城区\\u0000"', '"\\u0000%"', '"\\u001b[2J"',
]


def test_hostile_search_text_is_refused_and_cannot_open_the_registrys_circuit(
    hub: RunningHub, market_spy: list[tuple[str, ...]]
) -> None:
    link = hub.runtime.federation.department("market").link
    before = link.status()
    for _ in range(3):  # three rounds used to open the circuit for 30 s
        for value in HOSTILE_JSON:
            body = post_raw(hub, variables_body(SEARCH, '{"n": ' + value + "}"))
            assert_bad_input(body, "name", "searchLegalPersons")
    literal = post_raw(hub, json.dumps({"query": '{ searchLegalPersons(name: "新城区\\u0000") { uscc } }'}).encode())
    assert_bad_input(literal, "name", "searchLegalPersons")
    token = hub.token("department")
    authenticated = post_raw(hub, variables_body(SEARCH, '{"n": "\\ud800"}'), "/graphql", token)
    assert_bad_input(authenticated, "name", "searchLegalPersons")

    assert market_spy == [], "no connector was called"
    after = link.status()
    assert (after.calls, after.attempts, after.failures) == (before.calls, before.attempts, before.failures)
    assert after.state is CircuitState.CLOSED and after.consecutive_failures == 0
    assert all(s.state is CircuitState.CLOSED and s.consecutive_failures == 0 for s in hub.runtime.federation.status())
    assert after.condition == "healthy" and after.last_error is None

    found = hub.query(SEARCH, None, {"n": "新城区"}).json()
    people = found["data"]["searchLegalPersons"]
    assert 1 <= len(people) <= 5 and all("新城区" in p["name"] for p in people)
    assert ("search", "registration") in market_spy


@pytest.mark.parametrize("wildcard", ["%", "_", "%%", "_%_"])
def test_like_wildcards_in_search_text_match_nothing_in_the_demo_names(hub: RunningHub, wildcard: str) -> None:
    body = hub.query(SEARCH, None, {"n": wildcard}).json()
    assert body == {"data": {"searchLegalPersons": []}}


def test_a_tab_is_ordinary_text(hub: RunningHub) -> None:
    body = hub.query(SEARCH, None, {"n": "新城区\t有限公司"}).json()
    assert body == {"data": {"searchLegalPersons": []}}


@pytest.mark.parametrize(
    ("query", "variables_json", "argument", "field"),
    [
        ("query($u: String!) { legalPerson(uscc: $u) { name } }", '{"u": "91110000600037341\\u0000"}', "uscc", "legalPerson"),
        ("query($u: String!) { legalPerson(uscc: $u) { name } }", '{"u": "91110000600037341\\ud800"}', "uscc", "legalPerson"),
        ("query($u: [String!]!) { legalPersons(usccs: $u) { name } }", '{"u": ["\\ud800", "\\u0000"]}', "usccs",
         "legalPersons"),
        ("query($i: String!) { naturalPerson(idNumber: $i) { idNumber } }", '{"i": "11010219910101007\\udfff"}',
         "idNumber", "naturalPerson"),
    ],
)
def test_identifiers_with_hostile_characters_are_refused_before_any_connector(
    hub: RunningHub, market_spy: list[tuple[str, ...]], query: str, variables_json: str, argument: str, field: str
) -> None:
    calls_before = [d.link.status().calls for d in hub.runtime.federation.departments]
    body = post_raw(hub, variables_body(query, variables_json))
    assert body["data"] in (None, {field: None}), body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == argument
    assert market_spy == []
    assert [d.link.status().calls for d in hub.runtime.federation.departments] == calls_before
