"""The GraphQL connector against a real GraphQL service on loopback (the regional credit platform).

What the platform receives is recorded server-side, so these tests prove what the hub asked:
how many requests, which fields, keys only as variables, which credentials.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import socket
from decimal import Decimal
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

import graphql
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from department_fixtures import REGION, SOURCE, TOKEN, TOKEN_ENV, region_toml
from regional_platform import RedListEntry, RegionalPlatform, sample_enterprises
from servers import serve_app
from xinlian.connectors.contract import Connector, UpstreamInvalid, UpstreamUnavailable
from xinlian.connectors.graphql import MAX_RESPONSE_BYTES, GraphQLConnector, RootField
from xinlian.connectors.mapping import ConnectorConfigError, parse_families
from xinlian.connectors.registry import load_connectors
from xinlian.connectors.resilience import DepartmentLink

A, B, C, D, E = (e.code for e in sample_enterprises())


def load(tmp_path: Path, text: str) -> GraphQLConnector:
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    [connector] = load_connectors(path, tmp_path)
    assert isinstance(connector, GraphQLConnector) and isinstance(connector, Connector)
    return connector


def selected_paths(query: str) -> set[str]:
    """Every leaf the query selects, as a dotted path below its root field."""
    found: set[str] = set()

    def walk(selections: graphql.SelectionSetNode, prefix: tuple[str, ...]) -> None:
        for node in selections.selections:
            assert isinstance(node, graphql.FieldNode)
            path = (*prefix, node.name.value)
            if node.selection_set:
                walk(node.selection_set, path)
            else:
                found.add(".".join(path))

    [operation] = graphql.parse(query).definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    for root in operation.selection_set.selections:
        assert isinstance(root, graphql.FieldNode) and root.selection_set
        walk(root.selection_set, ())
    return found


@pytest.fixture
def platform() -> RegionalPlatform:
    return RegionalPlatform(sample_enterprises(), token=TOKEN)


@pytest.fixture
def upstream(platform: RegionalPlatform) -> Iterator[str]:
    with serve_app(platform.app()) as url:
        yield url


@pytest.fixture
async def connect(tmp_path: Path, upstream: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., GraphQLConnector]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    made: list[GraphQLConnector] = []

    def make(**options: object) -> GraphQLConnector:
        made.append(load(tmp_path, region_toml(upstream, **options)))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for connector in made:
        await connector.close()


# ---- batching, mapping, minimisation -----------------------------------------------------


@pytest.mark.parametrize("mode", ["list", "alias"])
async def test_one_upstream_request_per_batch(connect, platform: RegionalPlatform, mode: str) -> None:
    connector = connect(honors=mode, batch_size=2)
    result = await connector.fetch("honors", [A, B, C, D, E], ["honor_name", "award_date"])

    assert len(platform.received) == 3  # ceil(5 / 2)
    assert sorted(result) == [A, B, D]  # C and E have no red-list entries
    assert [r["honor_name"] for r in result[A]] == ["自治区守合同重信用企业", "A级纳税人"]
    for request, chunk in zip(platform.received, [[A, B], [C, D], [E]]):
        roots = graphql.parse(request.query).definitions[0].selection_set.selections  # type: ignore[attr-defined]
        if mode == "list":
            assert request.variables == {"keys": chunk}
            assert [r.name.value for r in roots] == ["enterprises"]
        else:
            assert request.variables == {f"k{i}": key for i, key in enumerate(chunk)}
            assert [(r.alias.value, r.name.value) for r in roots] == [(f"k{i}", "enterprise") for i in range(len(chunk))]
        assert not any(key in request.query for key in chunk)  # keys travel as variables only


async def test_values_are_converted_to_catalogue_types(connect) -> None:
    connector = connect()
    honors = await connector.fetch("honors", [B], ["honor_name", "awarding_authority", "award_date", "valid_to",
                                                    "data_source_unit"])
    tax = await connector.fetch("tax_credit", [A, B, C, D], ["level", "year", "evaluation_date", "tax_paid"])

    assert honors == {B: [{
        "honor_name": "自治区守合同重信用企业", "awarding_authority": "内蒙古自治区市场监督管理局",
        "award_date": dt.date(2025, 3, 1), "valid_to": dt.date(2028, 2, 28), "data_source_unit": SOURCE,
    }]}
    assert tax == {  # grade codes mapped, yuan → 万元; D has no tax credit evaluation
        A: [{"level": "A", "year": 2025, "evaluation_date": dt.date(2026, 4, 15), "tax_paid": Decimal("123.45")}],
        B: [{"level": "M", "year": 2025, "evaluation_date": dt.date(2026, 4, 15), "tax_paid": Decimal("8.8")}],
        C: [{"level": "D", "year": 2025, "evaluation_date": dt.date(2026, 4, 15), "tax_paid": Decimal("0")}],
    }


@pytest.mark.parametrize("mode", ["list", "alias"])
async def test_the_platform_is_asked_only_for_the_requested_fields(connect, platform: RegionalPlatform, mode: str) -> None:
    connector = connect(honors=mode, tax=mode)
    await connector.fetch("honors", [A], ["award_date"])
    await connector.fetch("tax_credit", [A], ["level", "data_source_unit"][:1])
    await connector.fetch("honors", [A], ["data_source_unit"])  # a constant asks for nothing but the records
    await connector.fetch("tax_credit", [A], [])  # existence only

    assert [selected_paths(r.query) for r in platform.received] == [
        {"code", "redList.date"},
        {"code", "taxCredit.gradeCode"},
        {"code", "redList.__typename"},
        {"code", "taxCredit.__typename"},
    ]
    assert connector.calls[0].columns == ("code", "redList.date")
    assert all("legalRepresentativeId" not in r.query and "creditRating" not in r.query for r in platform.received)


async def test_existence_and_unknown_subjects(connect) -> None:
    connector = connect(tax="list")
    assert await connector.fetch("tax_credit", [A, D, "91150102MA000000XX"], []) == {A: [{}]}
    assert await connector.fetch("honors", [], ["honor_name"]) == {}


async def test_a_hostile_key_is_only_ever_a_variable(connect, platform: RegionalPlatform) -> None:
    hostile = 'X") { legalRepresentativeId } k9: enterprise(code: "'
    for mode in ("list", "alias"):
        assert await connect(honors=mode).fetch("honors", [hostile], ["honor_name"]) == {}
    assert all(hostile in r.variables.values() or [hostile] in r.variables.values() for r in platform.received)
    assert all("legalRepresentativeId" not in r.query for r in platform.received)


# ---- per-subject upstream errors ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["list", "alias"])
@pytest.mark.parametrize("switch", ["failing_codes", "vanishing_codes"])
async def test_an_upstream_error_on_one_subject_fails_only_that_key(
    connect, platform: RegionalPlatform, mode: str, switch: str,
) -> None:
    getattr(platform, switch).add(B)
    connector = connect(honors=mode, batch_size=5)
    result = await connector.fetch("honors", [A, B, C, D], ["honor_name"])

    assert len(platform.received) == 1
    assert [r["honor_name"] for r in result[A]] == ["自治区守合同重信用企业", "A级纳税人"]
    assert result[D] == [{"honor_name": "A级纳税人"}]
    failure = result[B]
    assert isinstance(failure, UpstreamUnavailable) and failure.department == REGION
    assert "record store failed" in failure.message and failure.code == "UPSTREAM_UNAVAILABLE"
    assert C not in result  # answered, without red-list entries


async def test_when_every_subject_fails_the_whole_call_fails(connect, platform: RegionalPlatform) -> None:
    platform.failing_codes.update({A, B})
    with pytest.raises(UpstreamUnavailable, match="record store failed"):
        await connect(honors="alias").fetch("honors", [A, B], ["honor_name"])


async def test_a_value_that_cannot_be_converted_fails_only_its_subject(connect, platform: RegionalPlatform) -> None:
    platform.enterprises[B].red_list = [RedListEntry(
        title="诚信示范企业", issued_by="新城区发展和改革委员会", date=dt.date(2025, 1, 2), valid_until="20281345",
    )]
    result = await connect().fetch("honors", [A, B], ["honor_name", "valid_to"])

    assert len(result[A]) == 2
    assert isinstance(result[B], UpstreamInvalid)
    assert result[B].message.startswith("honors.valid_to (validUntil): '20281345'")


async def test_a_failed_subject_does_not_count_against_the_department_link(connect, platform: RegionalPlatform) -> None:
    """Through the hub's `DepartmentLink`: one subject's failure is data, not a department outage."""
    platform.failing_codes.add(B)
    link = DepartmentLink(connect(batch_size=10))
    result = await link.fetch("honors", [A, B, C], ["honor_name"], deadline=link.deadline_in(5))

    assert len(platform.received) == 1  # no retry
    assert len(result[A]) == 2 and isinstance(result[B], UpstreamUnavailable)
    assert result[B].reason == "upstream_error"  # type: ignore[union-attr]
    status = link.status()
    assert status.failures == 0 and status.consecutive_failures == 0 and status.state.value == "closed"


@pytest.mark.parametrize(("mode", "answer", "outcome"), [
    ("alias", {"data": {"k0": {"code": A, "redList": [{"title": "诚信企业"}]}, "k1": {"code": C, "redList": []}}},
     {A: [{"honor_name": "诚信企业"}], B: UpstreamInvalid("", "honors: the answer is about another subject")}),
    ("list", {"data": {"enterprises": [{"code": A, "redList": "诚信企业"}, {"code": B, "redList": None}]}},
     {A: UpstreamInvalid("", "honors: redList is not a list or object")}),  # B answered, without entries
    ("list", {"data": {"enterprises": [{"code": A, "redList": [7]}, {"code": B, "redList": [{"title": "x"}]}]}},
     {A: UpstreamInvalid("", "honors: redList holds a value that is not an object"), B: [{"honor_name": "x"}]}),
    ("alias", {"data": {"k0": None}}, UpstreamInvalid("", "honors: the answer lacks enterprise for a subject")),
    ("list", {"data": {"enterprises": None}, "errors": [{"message": "shard 3 timed out", "path": ["enterprises"]}]},
     UpstreamUnavailable("", "honors: the service reported an error (shard 3 timed out)")),
    ("list", {"data": {"enterprises": []}, "errors": [{"message": "rate limited"}]},
     UpstreamUnavailable("", "honors: the service reported an error (rate limited)")),
    ("list", {"data": {"enterprises": [{"redList": []}]}}, UpstreamInvalid("", "honors: an item has no code")),
    ("list", {"data": {"enterprises": [], "padding": "x" * MAX_RESPONSE_BYTES}}, UpstreamInvalid("", "exceeds 16 MiB")),
])
async def test_answers_of_the_wrong_shape(mode: str, answer: dict, outcome: object) -> None:
    """Crafted answers from a real server on loopback: what a real platform rarely sends."""
    families = parse_families({"honors": {"table": "enterprises" if mode == "list" else "enterprise", "key": "code",
                                          "fields": {"honor_name": "title"}}}, "test")
    root = RootField("enterprises" if mode == "list" else "enterprise", "codes", "[String!]!", mode, ("code",), ("redList",))

    async def crafted(request: Request) -> Response:
        await request.body()
        return JSONResponse(answer)

    with serve_app(Starlette(routes=[Route("/graphql", crafted, methods=["POST"])])) as url:
        connector = GraphQLConnector("region", REGION, f"{url}/graphql", families, {"honors": root})
        await _check_outcome(connector, outcome)


async def _check_outcome(connector: GraphQLConnector, outcome: object) -> None:
    try:
        if isinstance(outcome, Exception):
            with pytest.raises(type(outcome), match=re.escape(str(outcome))):
                await connector.fetch("honors", [A, B], ["honor_name"])
        else:
            result = await connector.fetch("honors", [A, B], ["honor_name"])
            assert {k: (type(v), str(v)) if isinstance(v, Exception) else v for k, v in result.items()} == {
                k: (type(v), str(v)) if isinstance(v, Exception) else v for k, v in outcome.items()  # type: ignore[attr-defined]
            }
    finally:
        await connector.close()


# ---- whole-call failures -----------------------------------------------------------------


@pytest.mark.parametrize(("fault", "error", "message"), [
    ("http500", UpstreamUnavailable, "answered HTTP 500"),
    ("garbage", UpstreamInvalid, "not a GraphQL response"),
    ("no_data", UpstreamInvalid, "no data (database connection pool exhausted)"),
    ("truncated", UpstreamInvalid, "the answer was cut short"),  # it answered, unusably: not retried
])
async def test_a_failing_platform_fails_the_call_and_the_next_call_succeeds(
    connect, platform: RegionalPlatform, fault: str, error: type[Exception], message: str,
) -> None:
    connector = connect()
    platform.fault = fault
    with pytest.raises(error, match=re.escape(message)) as raised:
        await connector.fetch("honors", [A, B], ["honor_name"])
    assert raised.value.department == REGION  # type: ignore[attr-defined]
    assert not (await connector.health()).healthy

    platform.fault = None
    assert sorted(await connector.fetch("honors", [A, B], ["honor_name"])) == [A, B]
    assert (await connector.health()).healthy


async def test_a_slow_platform_is_unavailable_within_the_timeout(connect, platform: RegionalPlatform) -> None:
    connector = connect(timeout=0.3)
    platform.fault, platform.delay = "slow", 0.8
    with pytest.raises(UpstreamUnavailable, match=r"no answer within 0.3 s") as raised:
        await connector.fetch("tax_credit", [A], ["level"])
    assert raised.value.reason == "timeout"
    link = DepartmentLink(connector)
    with pytest.raises(UpstreamUnavailable, match="no answer within"):
        await link.fetch("tax_credit", [A], ["level"], deadline=link.deadline_in(0.5), retry=False)
    platform.fault = None
    assert await connector.fetch("tax_credit", [A], ["level"]) == {A: [{"level": "A"}]}


async def test_a_platform_that_is_down_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connector = load(tmp_path, region_toml(f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(UpstreamUnavailable, match="the service refused the connection") as raised:
            await connector.fetch("honors", [A], ["honor_name"])
        assert raised.value.reason == "unreachable" and "127.0.0.1" not in raised.value.message
        health = await connector.health()
        assert not health.healthy and "refused the connection" in health.detail
    finally:
        await connector.close()


# ---- credentials -------------------------------------------------------------------------


async def test_the_bearer_token_is_sent_and_never_shown(connect, platform: RegionalPlatform, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    connector = connect()
    await connector.fetch("honors", [A], ["honor_name"])
    headers = platform.received[-1].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["x-requesting-system"] == "xinlian"

    platform.fault = "echo"  # the platform quotes the credentials back in its error
    with pytest.raises(UpstreamInvalid) as raised:
        await connector.fetch("honors", [A], ["honor_name"])
    assert "Bearer ***" in str(raised.value) and TOKEN not in str(raised.value)
    platform.fault, platform.token = None, "rotated-token"
    with pytest.raises(UpstreamUnavailable, match="HTTP 401") as raised:
        await connector.fetch("honors", [A], ["honor_name"])
    assert TOKEN not in str(raised.value) and TOKEN not in repr(connector)
    assert TOKEN not in caplog.text


async def test_an_api_key_from_a_secret_file(tmp_path: Path) -> None:
    platform = RegionalPlatform(sample_enterprises(), api_key=("X-Api-Key", "k-2f9e41"))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "region.key").write_text("k-2f9e41\n", encoding="utf-8")
    auth = '{ type = "api_key", header = "X-Api-Key", value_file = "secrets/region.key" }'
    with serve_app(platform.app()) as url:
        connector = load(tmp_path, region_toml(url, auth=auth))
        try:
            assert (await connector.health()).healthy
            assert platform.received[-1].headers["x-api-key"] == "k-2f9e41"
            assert "__typename" in platform.received[-1].query
        finally:
            await connector.close()


# ---- search and configuration ------------------------------------------------------------


async def test_search_asks_the_platform_and_returns_sorted_keys(connect, platform: RegionalPlatform) -> None:
    connector = connect()
    assert await connector.search("honors", "鑫达", 10) == [A, E]
    assert await connector.search("honors", "鑫达", 1) == [A]
    assert platform.received[-1].variables == {"text": "鑫达", "limit": 1}
    assert await connector.search("registration", "鑫达", 10) == []  # not a family it serves
    assert len(platform.received) == 2


@pytest.mark.parametrize(("change", "message"), [
    (("", 'auth = { type = "bearer", token_env = "XINLIAN_TEST_UNSET_VARIABLE" }\n'),
     "auth.token_env: environment variable XINLIAN_TEST_UNSET_VARIABLE is not set"),
    (("", 'auth = { type = "bearer", token_file = "missing/region.token" }\n'), "cannot read secret file"),
    (("", 'auth = { type = "basic", username = "u" }\n'), "auth is {type = 'bearer'"),
    (('mode = "list"', 'mode = "batch"'), "graphql.honors.mode: must be 'list' or 'alias'"),
    (('records = "redList"', 'records = "redList"\nfirst = 10'), "graphql.honors: unknown option 'first'"),
    (('honor_name = "title"', 'honor_name = "title } legalRepresentativeId {"'), "is not a dotted path"),
    (('year = "year"', 'year = "gradeCode.value"'), "taxCredit.gradeCode cannot be both a value and an object"),
    (('argument = "codes"', 'argument = "codes"\nargument_type = "[String!"'), "is not a GraphQL type"),
    (("[connector.graphql.tax_credit]", "[connector.graphql.unused]"), "graphql: unknown option 'unused'"),
    (('/graphql"', '/graphql"\nsearch = { family = "honors", field = "honor_name" }'), "graphql.search ="),
    (('table = "enterprises"', 'table = "enterprises"\nwhere = { valid = true }'), "'where' do not apply"),
    (("http://", "ftp://"), "endpoint: must be an http(s) URL"),
    (("http://", "http://user:pw@"), "put credentials in 'auth'"),
])
def test_configuration_mistakes_are_load_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], message: str,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    text = region_toml("http://127.0.0.1:9")
    old, new = change
    if old:
        assert old in text
        text = text.replace(old, new, 1)
    else:
        text = text.replace(f'auth = {{ type = "bearer", token_env = "{TOKEN_ENV}" }}\n', new)
    with pytest.raises(ConnectorConfigError) as raised:
        load(tmp_path, text)
    assert message in str(raised.value) and "(region)" in str(raised.value)
    assert TOKEN not in str(raised.value)


# ---- the environment's proxy ---------------------------------------------------------------


async def test_the_environments_proxy_is_used_and_no_proxy_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY is read once, when the connector first connects (not per request), and the
    request goes through it; a host in NO_PROXY is asked directly."""
    seen: list[bytes] = []
    answer = b'{"data": {"enterprises": []}}'

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        seen.append(head.split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        connector = load(tmp_path, region_toml("http://region.invalid:8080"))  # only the proxy can reach it
        try:
            assert await connector.fetch("honors", [A], ["honor_name"]) == {}
            assert await connector.fetch("honors", [B], ["honor_name"]) == {}
        finally:
            await connector.close()
        assert seen == [b"POST http://region.invalid:8080/graphql HTTP/1.1"] * 2  # absolute form: a proxy request

        monkeypatch.setenv("NO_PROXY", "region.invalid")
        direct = load(tmp_path, region_toml("http://region.invalid:8080"))
        try:
            with pytest.raises(UpstreamUnavailable) as raised:  # asked directly: the name does not resolve
                await direct.fetch("honors", [A], ["honor_name"])
            assert raised.value.reason == "unreachable" and len(seen) == 2
        finally:
            await direct.close()
    finally:
        server.close()
        await server.wait_closed()
