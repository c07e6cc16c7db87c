"""Request hardening through a real hub on loopback (docs/hardening.md).

Every refusal is a 4xx with a GraphQL-shaped error and a code, is audited as "rejected", leaks
nothing of the server, and is decided before any connector is called. Rate limits are exercised
with in-memory counts and with the machine's real Redis (shared by two hubs). Request loops are
bounded and stay on 127.0.0.0/8; other source addresses (127.0.0.2, ...) stand for other callers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from graphql import get_introspection_query, parse

from hub_fixture import RunningHub, running_hub
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.config import Settings
from xinlian.hub.guard import (
    AUTHENTICATED_LIMITS,
    PUBLIC_LIMITS,
    QueryLimits,
    RateRules,
    Safelist,
    SafelistError,
    measure,
)

RELAXED = RateRules(public_ip="100000/minute", graphql_ip="100000/minute", client="100000/minute")
LEAKS = ("Traceback", 'File "', ".py", "sqlite", "SELECT ", "postgres", "http://", "https://")


# ---------------------------------------------------------------------------------------------
# helpers


def _calls(hub: RunningHub) -> dict[str, int]:
    """How many fetches each connector has made so far."""
    return {c.name: len(c.calls) for c in hub.runtime.federation.connectors}


def _codes(hub: RunningHub, count: int) -> list[str]:
    with sqlite3.connect(hub.data_dir / "departments" / "market.db") as db:
        known = [r[0] for r in db.execute("SELECT tyshxydm FROM qy_jbxx")]
    return (known * (count // len(known) + 1))[:count]


def _last_audit(hub: RunningHub) -> AuditEntry:
    with sqlite3.connect(hub.data_dir / "hub.db") as db:
        (content,) = db.execute("SELECT content FROM audit_entries ORDER BY seq DESC LIMIT 1").fetchone()
    return AuditEntry.from_content(content)


def _post(hub: RunningHub, query: str, token: str | None = None, variables: dict[str, Any] | None = None,
          http: httpx.Client | None = None) -> httpx.Response:
    """POST to /public/graphql (no token) or /graphql (with a bearer token)."""
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    http = http or hub.http
    if token is None:
        return http.post("/public/graphql", json=body)
    return http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})


def _assert_no_leak(hub: RunningHub, response: httpx.Response) -> None:
    for marker in (*LEAKS, str(hub.data_dir)):
        assert marker not in response.text, f"{marker!r} in {response.text[:300]}"


def _refused(hub: RunningHub, response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a refusal: status, a GraphQL error with `code`, no data, nothing leaked; audited."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert body["errors"] and all(e["extensions"]["code"] == code for e in body["errors"]), body["errors"]
    _assert_no_leak(hub, response)
    entry = _last_audit(hub)
    assert entry.outcome == "rejected" and entry.errors == [code]
    return body["errors"][0]


def _client_from(hub: RunningHub, address: str) -> httpx.Client:
    """An HTTP client whose requests come from another loopback address (another caller's IP)."""
    return httpx.Client(base_url=hub.base_url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def _introspection(levels: int) -> str:
    """An introspection query `5 + levels` fields deep."""
    return "{ __schema { types { fields { type { " + "ofType { " * levels + "name" + " }" * levels + " } } } } }"


def _deep_profile(uscc: str, levels: int) -> str:
    """A subject's name (a connector would be asked) plus an introspection branch `5 + levels` deep."""
    return f'{{ legalPerson(uscc: "{uscc}") {{ name }} ' + _introspection(levels)[1:]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """The default limits (rate limits relaxed so that the limit tests do not meet them)."""
    with running_hub(tmp_path_factory.mktemp("hardening"), legal_persons=40, natural_persons=10,
                     rate_limits=RELAXED) as running:
        yield running


@pytest.fixture(scope="module")
def department(hub: RunningHub) -> str:
    return hub.token("department")


# ---------------------------------------------------------------------------------------------
# query limits, through the hub


def test_the_public_defaults_are_stricter() -> None:
    for name in vars(AUTHENTICATED_LIMITS):
        assert getattr(PUBLIC_LIMITS, name) <= getattr(AUTHENTICATED_LIMITS, name)
    assert PUBLIC_LIMITS != AUTHENTICATED_LIMITS


def test_depth(hub: RunningHub, department: str) -> None:
    uscc = hub.samples["multi_department_penalties"]
    before = _calls(hub)
    error = _refused(hub, _post(hub, _deep_profile(uscc, 12)), 400, "QUERY_TOO_DEEP")
    assert error["extensions"] == {"code": "QUERY_TOO_DEEP", "limit": 16, "measured": 17}
    assert _calls(hub) == before, "refused before any connector was called"
    assert _post(hub, _introspection(11)).status_code == 200, "16 deep is at the public limit"
    assert _post(hub, _deep_profile(uscc, 12), department).status_code == 200, "/graphql allows 20"
    _refused(hub, _post(hub, _introspection(16), department), 400, "QUERY_TOO_DEEP")


def test_tooling_introspection_fits_both_endpoints(hub: RunningHub, department: str) -> None:
    query = get_introspection_query(descriptions=True)
    assert _post(hub, query).json()["data"]["__schema"]["queryType"]["name"] == "Query"
    assert _post(hub, query, department).json()["data"]["__schema"]["queryType"]["name"] == "Query"


def test_nesting_beyond_the_parser_is_too_deep(hub: RunningHub) -> None:
    query = "{" + "a{" * 300 + "b" + "}" * 301
    _refused(hub, _post(hub, query), 400, "QUERY_TOO_DEEP")


def test_aliases(hub: RunningHub, department: str) -> None:
    uscc = hub.samples["multi_department_penalties"]

    def names(count: int) -> str:
        return f'{{ legalPerson(uscc: "{uscc}") {{ ' + " ".join(f"n{i}: name" for i in range(count)) + " } }"

    assert _post(hub, names(10)).status_code == 200, "10 aliases is the public limit"
    before = _calls(hub)
    error = _refused(hub, _post(hub, names(11)), 400, "TOO_MANY_ALIASES")
    assert error["extensions"]["limit"] == 10 and error["extensions"]["measured"] == 11
    assert _calls(hub) == before
    assert _post(hub, names(11), department).status_code == 200
    _refused(hub, _post(hub, names(51), department), 400, "TOO_MANY_ALIASES")


def test_a_fragment_bomb_is_refused_at_once(hub: RunningHub, department: str) -> None:
    """Each fragment spreads the next twice: 2^24 aliases once expanded, ~250 tokens as sent."""
    levels = 24
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    query = "query Bomb { ...F0 } " + fragments + f" fragment F{levels} on Query {{ a: __typename }}"
    for token in (None, department):
        started = time.monotonic()
        error = _refused(hub, _post(hub, query, token), 400, "TOO_MANY_ALIASES")
        assert time.monotonic() - started < 2.0
        assert error["extensions"]["measured"] == 2**levels
        assert "Bomb" in error["message"]


def test_tokens(hub: RunningHub, department: str) -> None:
    uscc = hub.samples["multi_department_penalties"]
    query = f'{{ legalPerson(uscc: "{uscc}") {{ name }} }}' + "\n# a comment is a token too" * 2000
    before = _calls(hub)
    error = _refused(hub, _post(hub, query), 400, "TOO_MANY_TOKENS")
    assert "2000" in error["message"]
    assert _calls(hub) == before
    assert _post(hub, query, department).json()["data"]["legalPerson"]["name"], "/graphql allows 10 000 tokens"


def test_root_fields(hub: RunningHub, department: str) -> None:
    uscc = hub.samples["multi_department_penalties"]
    query = "{ " + " ".join(f'r{i}: legalPerson(uscc: "{uscc}") {{ name }}' for i in range(6)) + " }"
    before = _calls(hub)
    error = _refused(hub, _post(hub, query), 400, "TOO_MANY_ROOT_FIELDS")
    assert error["extensions"] == {"code": "TOO_MANY_ROOT_FIELDS", "limit": 5, "measured": 6}
    assert _calls(hub) == before
    assert _post(hub, query, department).json()["data"]["r5"]["name"]


def test_cost_of_a_batch_from_variables(hub: RunningHub, department: str) -> None:
    """1 + 900 × (uscc 1 + name 1 + registration{status} 2 + penalties{decisionNumber} 2) = 5401."""
    query = ("query($c: [String!]!) { legalPersons(usccs: $c) "
             "{ uscc name registration { status } penalties { decisionNumber } } }")
    codes = _codes(hub, 900)
    before = _calls(hub)
    error = _refused(hub, _post(hub, query, None, {"c": codes}), 400, "QUERY_TOO_COSTLY")
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "limit": 5000, "measured": 5401}
    assert _calls(hub) == before, "no department was asked"
    served = _post(hub, query, department, {"c": codes})
    assert served.status_code == 200 and len(served.json()["data"]["legalPersons"]) == 900


def test_cost_of_literal_lists_and_pages(hub: RunningHub) -> None:
    codes = json.dumps(_codes(hub, 1700))
    before = _calls(hub)
    error = _refused(hub, _post(hub, f"{{ legalPersons(usccs: {codes}) {{ uscc name penalties {{ decisionNumber }} }} }}"),
                     400, "QUERY_TOO_COSTLY")
    assert error["extensions"]["measured"] == 1 + 1700 * 4
    error = _refused(hub, _post(hub, '{ searchLegalPersons(name: "公司", first: 5000) { uscc } }'), 400, "QUERY_TOO_COSTLY")
    assert error["extensions"]["measured"] == 5001
    huge = _refused(hub, _post(hub, '{ searchLegalPersons(name: "x", first: 99999999999999999999) { uscc } }'),
                    400, "QUERY_TOO_COSTLY")
    assert huge["extensions"]["measured"] > 5000
    assert _calls(hub) == before


# ---------------------------------------------------------------------------------------------
# the cost formula and the measurement itself (no hub needed)


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [
        ("{ catalogue { family label } }", None, 3),
        ('{ legalPersons(usccs: ["a", "b"]) { uscc penalties { decisionNumber fineAmount } } }', None, 1 + 2 * 4),
        ('{ legalPersons(usccs: "a") { uscc } }', None, 2),  # one value is a one-item list
        ("query($c: [String!]!) { legalPersons(usccs: $c) { uscc } }", {"c": ["a"] * 7}, 8),
        ('query($c: [String!]! = ["a", "b", "c"]) { legalPersons(usccs: $c) { uscc } }', None, 4),
        ('{ searchLegalPersons(name: "x") { uscc name } }', None, 1 + 10 * 2),
        ("query($n: Int) { searchLegalPersons(name: \"x\", first: $n) { uscc } }", {"n": 40}, 41),
        (('query { ...Both } fragment Both on Query { a: legalPersons(usccs: ["a", "b"]) { uscc } '
          'b: legalPersons(usccs: ["c"]) { ... on LegalPerson { uscc name } } }'), None, (1 + 2) + (1 + 2)),
    ],
)
def test_the_cost_formula(query: str, variables: dict[str, Any] | None, cost: int) -> None:
    [shape] = measure(parse(query), variables)
    assert shape.cost == cost


def test_measure_is_linear_and_total_on_hostile_documents() -> None:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(1500))
    [shape] = measure(parse("{ ...F0 } " + chain + " fragment F1500 on Query { a: __typename }", max_tokens=None))
    assert shape.aliases == 1 and shape.root_fields == 1
    [cyclic] = measure(parse("{ ...A } fragment A on Query { x ...B } fragment B on Query { y ...A }"))
    assert cyclic.root_fields == 2
    [unknown] = measure(parse("{ ...Missing a { b } }"))
    assert unknown.depth == 2 and unknown.root_fields == 1


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XINLIAN_PUBLIC_MAX_COST", "900")
    monkeypatch.setenv("XINLIAN_MAX_DEPTH", "7")
    monkeypatch.setenv("XINLIAN_RATE_PUBLIC", "10/second;100/hour")
    monkeypatch.setenv("XINLIAN_RATE_CLIENT", "off")
    monkeypatch.setenv("XINLIAN_INTROSPECTION", "0")
    monkeypatch.setenv("XINLIAN_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("XINLIAN_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("XINLIAN_PUBLIC_SAFELIST", str(tmp_path / "safelist.json"))
    settings = Settings.from_env(tmp_path)
    assert settings.public_query_limits.max_cost == 900
    assert settings.public_query_limits.max_depth == PUBLIC_LIMITS.max_depth
    assert settings.query_limits.max_depth == 7
    assert settings.rate_limits == RateRules(public_ip="10/second;100/hour", graphql_ip=RateRules().graphql_ip, client="off")
    assert settings.introspection is False and settings.public_introspection is True
    assert settings.max_body_bytes == 4096
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.public_safelist_path == tmp_path / "safelist.json"
    with pytest.raises(ValueError):
        QueryLimits(max_cost=0)


# ---------------------------------------------------------------------------------------------
# hostile input and error masking


def test_hostile_input_is_a_4xx_with_a_code(hub: RunningHub, department: str) -> None:
    before = _calls(hub)
    cases: list[tuple[str, httpx.Response, int, str]] = [
        ("huge variables object", hub.http.post("/public/graphql", json={
            "query": "{ catalogue { family } }", "variables": {f"v{i}": "x" * 16 for i in range(5000)}}),
         413, "PAYLOAD_TOO_LARGE"),
        ("deeply nested selection", _post(hub, "{" + "legalPerson{" * 40 + "name" + "}" * 41), 400, "QUERY_TOO_DEEP"),
        ("10k aliases", _post(hub, "{" + " ".join(f"a{i}: __typename" for i in range(10_000)) + "}"),
         413, "PAYLOAD_TOO_LARGE"),
        ("3k aliases (public)", _post(hub, "{" + " ".join(f"a{i}:__typename" for i in range(3000)) + "}"),
         400, "TOO_MANY_TOKENS"),
        ("3k aliases (/graphql)", _post(hub, "{" + " ".join(f"a{i}:__typename" for i in range(3000)) + "}", department),
         400, "TOO_MANY_ALIASES"),
        ("non-UTF-8 JSON", hub.http.post("/public/graphql", content=b'{"query": "{ \xff\xfe }"}',
                                         headers={"content-type": "application/json"}), 400, "BAD_REQUEST"),
        ("non-UTF-8 GraphQL", hub.http.post("/public/graphql", content=b"{ catalogue \xff { family } }",
                                            headers={"content-type": "application/graphql"}), 400, "BAD_REQUEST"),
        ("wrong content type", hub.http.post("/public/graphql", content=b"query={catalogue{family}}",
                                             headers={"content-type": "application/x-www-form-urlencoded"}),
         415, "UNSUPPORTED_MEDIA_TYPE"),
        ("batched JSON array", hub.http.post("/public/graphql", json=[{"query": "{ catalogue { family } }"}] * 3),
         400, "BATCHING_NOT_SUPPORTED"),
        ("an integer too long to read", hub.http.post("/public/graphql", content=b'{"query": "{ __typename }", '
                                                      b'"variables": {"n": ' + b"9" * 5000 + b"}}",
                                                      headers={"content-type": "application/json"}),
         400, "BAD_REQUEST"),
        ("an unknown operation", hub.http.post("/public/graphql", json={"query": "query A { __typename }",
                                                                       "operationName": "B"}),
         400, "OPERATION_RESOLUTION_FAILURE"),
        ("an unknown fragment", _post(hub, "{ ...Missing }"), 400, "GRAPHQL_VALIDATION_FAILED"),
        ("a persisted query without a safelist", hub.http.post("/public/graphql", json={
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}}),
         400, "PERSISTED_QUERY_NOT_SUPPORTED"),
    ]
    for label, response, status, code in cases:
        assert response.status_code == status, (label, response.text[:300])
        assert response.json()["errors"][0]["extensions"]["code"] == code, (label, response.text[:300])
        _assert_no_leak(hub, response)
    assert _calls(hub) == before


def test_an_upstream_failure_names_no_url(hub: RunningHub, department: str) -> None:
    if hub.services.court is None:
        pytest.skip("the demo's court is not a REST service")
    link = hub.runtime.federation.department("courts").link
    saved = link.policy
    try:
        link.policy = dataclasses.replace(saved, retries=0)
        hub.services.court.state.faults.inject("error", times=1)
        response = _post(hub, "query($u: String!) { legalPerson(uscc: $u) { judgmentDebtorRecords { caseNumber } } }",
                         department, {"u": hub.samples["judgment_debtor"]})
    finally:
        link.policy = saved
        hub.services.court.state.faults.clear()
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert hub.services.court_url not in response.text
    _assert_no_leak(hub, response)


# ---------------------------------------------------------------------------------------------
# rate limits


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """Small limits, counted in memory; each test speaks from its own loopback address."""
    rules = RateRules(public_ip="5/minute", graphql_ip="6/minute", client="3/minute")
    with running_hub(tmp_path_factory.mktemp("limited"), legal_persons=20, natural_persons=5, rate_limits=rules) as running:
        yield running


def _exhaust(hub: RunningHub, send: Any, allowed: int) -> httpx.Response:
    """Send `allowed` requests that must pass, then one that must be refused (and fetch nothing)."""
    for i in range(allowed):
        response = send()
        assert response.status_code == 200, (i, response.text[:300])
    before = _calls(hub)
    refused = send()
    _refused(hub, refused, 429, "RATE_LIMITED")
    assert _calls(hub) == before, "refused before any connector was called"
    return refused


def _assert_retry_after(response: httpx.Response, window: int) -> int:
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= window
    assert response.json()["errors"][0]["extensions"]["retryAfter"] == seconds
    return seconds


def test_the_public_endpoint_is_limited_per_ip(limited: RunningHub) -> None:
    with _client_from(limited, "127.0.0.2") as greedy, _client_from(limited, "127.0.0.3") as other:
        refused = _exhaust(limited, lambda: _post(limited, "{ __typename }", http=greedy), 5)
        _assert_retry_after(refused, 60)
        entry = _last_audit(limited)
        assert entry.endpoint == "/public/graphql" and entry.remote_addr == "127.0.0.2"
        assert _post(limited, "{ __typename }", http=greedy).status_code == 429, "still limited"
        assert _post(limited, "{ __typename }", http=other).status_code == 200, "another IP is served"
    department = limited.token("department")
    assert _post(limited, "{ __typename }", department).status_code == 200, "/graphql is counted apart"


def test_graphql_is_limited_per_client(limited: RunningHub) -> None:
    bank, department = limited.token("bank"), limited.token("department")
    with _client_from(limited, "127.0.0.4") as one, _client_from(limited, "127.0.0.5") as another:
        query = f'{{ legalPerson(uscc: "{limited.samples["multi_department_penalties"]}") {{ name }} }}'
        refused = _exhaust(limited, lambda: _post(limited, query, bank, http=one), 3)
        _assert_retry_after(refused, 60)
        assert _last_audit(limited).client_id == limited.clients["bank"]["client_id"]
        assert _post(limited, "{ __typename }", bank, http=another).status_code == 429, "per client, from any IP"
        assert _post(limited, "{ __typename }", department, http=one).status_code == 200, "another client is served"


def test_graphql_has_a_looser_cap_per_ip_before_the_token(limited: RunningHub) -> None:
    with _client_from(limited, "127.0.0.6") as anonymous:
        for _ in range(6):  # unauthenticated requests count against the IP too
            assert anonymous.post("/graphql", json={"query": "{ __typename }"}).status_code == 401
        refused = anonymous.post("/graphql", json={"query": "{ __typename }"},
                                 headers={"Authorization": f"Bearer {limited.token('department')}"})
        _refused(limited, refused, 429, "RATE_LIMITED")
        assert _last_audit(limited).client_id is None, "refused before the token was read"
        assert _post(limited, "{ __typename }", http=anonymous).status_code == 200, "the public endpoint is apart"


def test_the_memory_limiter_reports_its_state(limited: RunningHub) -> None:
    status = limited.runtime.rate_limiter.status()
    assert status["storage"] == "memory" and status["state"] == "ok"
    assert status["limits"] == {
        "publicPerIp": "5/minute", "perIp": "6/minute", "perClient": "3/minute",
        "oauthPerIp": RateRules().oauth_ip, "metaPerIp": RateRules().meta_ip,
    }


def test_redis_counts_are_shared_by_hubs_and_expire(tmp_path: Path, redis_url: str, redis_key_prefix: str) -> None:
    import redis

    rules = RateRules(public_ip="4 per 3 seconds", graphql_ip="off", client="off")
    settings = {"rate_limits": rules, "redis_url": redis_url, "redis_key_prefix": redis_key_prefix}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with running_hub(tmp_path / "a", legal_persons=20, natural_persons=5, **settings) as first, \
            running_hub(tmp_path / "b", legal_persons=20, natural_persons=5, **settings) as second:
        assert first.runtime.rate_limiter.status()["storage"] == "redis"
        for hub in (first, second, first, second):
            assert _post(hub, "{ __typename }").status_code == 200
        refused = _post(second, "{ __typename }")
        _refused(second, refused, 429, "RATE_LIMITED")
        wait = _assert_retry_after(refused, 3)
        keys = redis.Redis.from_url(redis_url).keys(f"{redis_key_prefix}*")
        assert keys and all(b"127.0.0.1" in k for k in keys)
        time.sleep(wait + 0.1)
        assert _post(first, "{ __typename }").status_code == 200, "served again after Retry-After"
        assert first.runtime.rate_limiter.status()["state"] == "ok"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_redis_down_fails_open_to_memory_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rules = RateRules(public_ip="3/minute", graphql_ip="off", client="off")
    with running_hub(tmp_path, legal_persons=20, natural_persons=5, rate_limits=rules,
                     redis_url=f"redis://127.0.0.1:{_closed_port()}/0") as hub:
        started = time.monotonic()
        _exhaust(hub, lambda: _post(hub, "{ __typename }"), 3)
        assert time.monotonic() - started < 5, "no request waits on the dead Redis"
        status = hub.runtime.rate_limiter.status()
        assert status["storage"] == "redis" and status["state"] == "degraded" and status["degradedSince"]
        assert status["redisFailures"] >= 1
    assert any("Redis is unavailable" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# safelist, introspection and limits configured per endpoint


SAFE_QUERY = "query Name($u: String!) { legalPerson(uscc: $u) { name } }"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """A public safelist; /graphql without introspection and with a small cost limit."""
    safelist = tmp_path_factory.mktemp("safelist") / "safelist.json"
    safelist.write_text(json.dumps({hashlib.sha256(SAFE_QUERY.encode()).hexdigest(): SAFE_QUERY}), encoding="utf-8")
    with running_hub(tmp_path_factory.mktemp("configured"), legal_persons=20, natural_persons=5,
                     rate_limits=RELAXED, public_safelist_path=safelist, introspection=False,
                     query_limits=QueryLimits(max_cost=30, max_root_fields=2)) as running:
        yield running


def test_the_safelist_serves_only_its_documents(configured: RunningHub) -> None:
    hub, uscc = configured, configured.samples["multi_department_penalties"]
    digest = hashlib.sha256(SAFE_QUERY.encode()).hexdigest()
    assert _post(hub, SAFE_QUERY, None, {"u": uscc}).json()["data"]["legalPerson"]["name"]
    by_hash = hub.http.post("/public/graphql", json={
        "variables": {"u": uscc}, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}})
    assert by_hash.json()["data"]["legalPerson"]["name"]
    by_get = hub.http.get("/public/graphql", params={
        "variables": json.dumps({"u": uscc}), "extensions": json.dumps({"persistedQuery": {"sha256Hash": digest}})})
    assert by_get.json()["data"]["legalPerson"]["name"]
    before = _calls(hub)
    _refused(hub, _post(hub, SAFE_QUERY + " ", None, {"u": uscc}), 400, "PERSISTED_QUERY_NOT_ALLOWED")
    _refused(hub, _post(hub, "{ this is not GraphQL"), 400, "PERSISTED_QUERY_NOT_ALLOWED")  # before parsing
    _refused(hub, hub.http.post("/public/graphql", json={
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}}), 400, "PERSISTED_QUERY_NOT_ALLOWED")
    _refused(hub, hub.http.post("/public/graphql", json={
        "query": "{ __typename }", "extensions": {"persistedQuery": {"sha256Hash": digest}}}), 400, "BAD_REQUEST")
    assert _calls(hub) == before
    department = hub.token("department")
    assert _post(hub, "{ catalogue { family } }", department).status_code == 200, "/graphql has no safelist"


def test_a_broken_safelist_stops_the_hub_from_starting(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"0" * 64: "{ __typename }"}), encoding="utf-8")
    with pytest.raises(SafelistError):
        Safelist.load(wrong)
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    with pytest.raises(SafelistError):
        Safelist.load(tmp_path / "list.json")
    with pytest.raises(SafelistError):
        Safelist.load(tmp_path / "missing.json")


def test_introspection_can_be_switched_off_on_graphql(configured: RunningHub) -> None:
    department = configured.token("department")
    _refused(configured, _post(configured, "{ __schema { types { name } } }", department), 400,
             "GRAPHQL_VALIDATION_FAILED")
    assert _post(configured, "{ __typename }", department).json()["data"] == {"__typename": "Query"}


def test_limits_are_set_per_endpoint(configured: RunningHub) -> None:
    department = configured.token("department")
    before = _calls(configured)
    error = _refused(configured, _post(configured, "query($c: [String!]!) { legalPersons(usccs: $c) { uscc name } }",
                                       department, {"c": _codes(configured, 15)}), 400, "QUERY_TOO_COSTLY")
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "limit": 30, "measured": 31}
    _refused(configured, _post(configured, "{ a: __typename b: __typename c: __typename }", department), 400,
             "TOO_MANY_ROOT_FIELDS")
    assert _calls(configured) == before
