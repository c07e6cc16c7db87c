"""The request pipeline's holes, each closed and checked through a real hub on loopback.

One gateway serves every entry point (hub/gateway/); these tests prove its stages hold for the
holes an independent review found: operation resolution before admin rules, admission before
anything is audited, the OAuth endpoints admitted / locked out / audited, forwarded addresses
only from trusted proxies, audit attribution, no-store and a redacted access log, slow and
vanished clients, /readyz detail, RFC 6750 challenges and GraphQL-over-HTTP media types.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import logging
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from starlette.requests import Request

from hub_fixture import NO_RATE_LIMITS, RunningHub, post_token, running_hub
from xinlian.hub.cli import main
from xinlian.hub.gateway.addresses import ClientAddress, parse_networks
from xinlian.hub.gateway.lockout import AuthenticationLockout, LockoutRules
from xinlian.hub.guard.rate_limits import RateRules
from xinlian.hub.serving import redact

RELAXED = NO_RATE_LIMITS
PURPOSES = "{ __typename }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(
        tmp_path_factory.mktemp("gateway"), legal_persons=20, natural_persons=5, rate_limits=RELAXED,
        header_timeout=1.0, body_timeout=1.0,
    ) as running:
        yield running


def admin(hub: RunningHub, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    return hub.http.post("/admin/graphql", json=body, headers={"Authorization": f"Bearer {token or hub.token('admin')}"})


def only_entry(hub: RunningHub, response: httpx.Response) -> Any:
    entries = [e for e in hub.audit_entries(response.headers["x-request-id"]) if not (e.detail or {}).get("intent")]
    assert len(entries) == 1, entries
    return entries[0]


# ---- 2. the admin API resolves the operation as execution will --------------------------------

def test_two_mutations_without_an_operation_name_change_nothing(hub: RunningHub) -> None:
    document = (
        'mutation A { definePurpose(code: "hole-two-a", label: "A") { code } } '
        'mutation B { definePurpose(code: "hole-two-b", label: "B") { code } }'
    )
    response = admin(hub, {"query": document})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
    listed = admin(hub, {"query": "{ purposes(includeRetired: true) { code } }"}).json()["data"]["purposes"]
    assert not {"hole-two-a", "hole-two-b"} & {p["code"] for p in listed}
    assert not [e for e in hub.audit_entries(response.headers["x-request-id"]) if (e.detail or {}).get("intent")]


def test_a_named_mutation_among_two_runs_alone_with_its_intent(hub: RunningHub) -> None:
    document = (
        'mutation A { definePurpose(code: "hole-two-c", label: "C") { code } } '
        'query B { purposes { code } }'
    )
    response = admin(hub, {"query": document, "operationName": "A"})
    assert response.status_code == 200, response.text
    intents = [e for e in hub.audit_entries(response.headers["x-request-id"]) if (e.detail or {}).get("intent")]
    assert [e.detail["fields"] for e in intents] == [["definePurpose"]]
    unknown = admin(hub, {"query": document, "operationName": "C"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"


# ---- 3. admission comes first; refusals beyond the limit are counted --------------------------

def test_a_flood_over_the_limit_writes_a_bounded_number_of_entries(tmp_path: Path) -> None:
    rules = RateRules(public_ip="5/minute", graphql_ip="off", client="off", oauth_ip="off", meta_ip="off")
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=rules) as running:
        before = len(running.audit_entries())
        statuses = [running.http.request("OPTIONS", "/public/graphql").status_code for _ in range(60)]
        assert statuses.count(405) == 5 and statuses.count(429) == 55
        written = [e for e in running.audit_entries()[before:] if e.endpoint == "/public/graphql"]
        # five 405s (admitted, so audited one by one) and the first refusal; the rest are counted
        assert sorted(e.errors[0] for e in written) == ["METHOD_NOT_ALLOWED"] * 5 + ["RATE_LIMITED"]
    # at shutdown the tally writes one summary entry for the 54 refusals it counted
    running.http = httpx.Client()  # the hub has stopped; its store is still on disk
    summaries = [e for e in running.audit_entries() if (e.detail or {}).get("refusals")]
    assert [(s.detail["refusals"], s.remote_addr, s.errors) for s in summaries] == [(54, "127.0.0.1", ["RATE_LIMITED"])]


# ---- 4. the OAuth endpoints: admitted, locked out with back-off, audited ----------------------

def token_request(hub: RunningHub, client_id: str, secret: str, *, source: str = "127.0.0.1", **form: str) -> httpx.Response:
    return post_token(hub.base_url, source=source, auth=(client_id, secret), **form)


def test_token_requests_are_audited_without_secrets(hub: RunningHub) -> None:
    bank = hub.clients["bank"]
    good = token_request(hub, bank["client_id"], bank["client_secret"], source="127.0.0.3")
    assert good.status_code == 200
    entry = only_entry(hub, good)
    assert (entry.endpoint, entry.client_id, entry.client_kind, entry.outcome) == ("/oauth/token", "demo-bank", "bank", "ok")
    bad = token_request(hub, bank["client_id"], "not-the-secret-at-all", source="127.0.0.3")
    assert bad.status_code == 401
    entry = only_entry(hub, bad)
    assert entry.client_id is None and entry.detail["claimedClient"] == "demo-bank"
    assert entry.outcome == "rejected" and entry.errors == ["invalid_client"]
    stored = json.dumps([e.to_document() for e in hub.audit_entries()], ensure_ascii=False)
    assert bank["client_secret"] not in stored and "not-the-secret-at-all" not in stored
    assert good.json()["access_token"] not in stored


def test_failed_authentications_lock_the_pair_out_with_back_off(hub: RunningHub) -> None:
    department = hub.clients["department"]
    source = "127.0.0.4"
    for _ in range(5):
        assert token_request(hub, department["client_id"], "wrong-secret-wrong", source=source).status_code == 401
    locked = token_request(hub, department["client_id"], department["client_secret"], source=source)
    assert locked.status_code == 429 and locked.json()["error"] == "temporarily_unavailable"
    assert int(locked.headers["retry-after"]) >= 1
    # the same client from elsewhere is not locked out by a stranger's guesses
    assert token_request(hub, department["client_id"], department["client_secret"], source="127.0.0.5").status_code == 200
    time.sleep(int(locked.headers["retry-after"]) + 0.2)
    assert token_request(hub, department["client_id"], department["client_secret"], source=source).status_code == 200


def test_a_junk_flood_is_refused_before_the_secret_check_and_spares_real_clients(hub: RunningHub) -> None:
    def junk(i: int) -> int:
        return token_request(hub, f"junk-{i}", "junk-secret-junk", source="127.0.0.6").status_code

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        flood = [pool.submit(junk, i) for i in range(64)]
        time.sleep(0.05)
        bank = hub.clients["bank"]
        started = time.monotonic()
        real = token_request(hub, bank["client_id"], bank["client_secret"], source="127.0.0.7")
        elapsed = time.monotonic() - started
        statuses = [f.result() for f in flood]
    assert real.status_code == 200
    # at most the per-address failure budget (30) reached the scrypt check; the rest were refused
    assert statuses.count(429) >= 64 - 30 and statuses.count(401) <= 30
    assert elapsed < 2.0, f"a real client's token took {elapsed:.2f} s during a junk flood"


def test_the_oauth_endpoints_are_rate_limited_per_address(tmp_path: Path) -> None:
    rules = RateRules(public_ip="off", graphql_ip="off", client="off", oauth_ip="3/minute", meta_ip="off")
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=rules) as running:
        bank = running.clients["bank"]
        statuses = [token_request(running, bank["client_id"], bank["client_secret"]).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = running.http.post("/oauth/introspect", data={"token": "x"})
        assert refused.status_code == 429 and refused.json()["error"] == "slow_down"


def test_lockout_rules_in_isolation() -> None:
    now = [0.0]
    lockout = AuthenticationLockout(LockoutRules(threshold=2, base=1, ceiling=4, per_address=100), clock=lambda: now[0])
    locks = []
    for _ in range(5):
        assert lockout.attempt("bank", "10.0.0.1") == 0
        lockout.finished("bank", "10.0.0.1", succeeded=False)
        locks.append(lockout.retry_after("bank", "10.0.0.1"))
        now[0] += locks[-1]
    assert locks == [0, 1, 2, 4, 4]  # from the threshold on, doubling up to the ceiling
    assert lockout.retry_after("bank", "10.0.0.9") == 0  # another address is not locked
    assert lockout.attempt("bank", "10.0.0.1") == 0
    lockout.finished("bank", "10.0.0.1", succeeded=True)  # a success clears the pair
    lockout.finished("bank", "10.0.0.1", succeeded=False)
    assert lockout.retry_after("bank", "10.0.0.1") == 0
    budget = AuthenticationLockout(LockoutRules(threshold=100, per_address=3), clock=lambda: now[0])
    admitted = [budget.attempt(f"junk-{i}", "10.0.0.2") for i in range(5)]
    assert admitted == [0, 0, 0, 1, 1]  # in-flight attempts count: a burst cannot slip past the check


# ---- 5. X-Forwarded-For only from trusted proxies ----------------------------------------------

def test_forwarded_addresses_are_ignored_from_untrusted_peers(tmp_path: Path) -> None:
    rules = RateRules(public_ip="3/minute", graphql_ip="off", client="off", oauth_ip="off", meta_ip="off")
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=rules) as running:
        statuses = [
            running.http.post("/public/graphql", json={"query": PURPOSES},
                              headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
            for i in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        assert {e.remote_addr for e in running.audit_entries() if e.endpoint == "/public/graphql"} == {"127.0.0.1"}


def test_a_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=RELAXED,
                     trusted_proxies=parse_networks(["127.0.0.1"])) as running:
        forwarded = running.http.post("/public/graphql", json={"query": PURPOSES},
                                      headers={"X-Forwarded-For": "not-an-address, 203.0.113.9"})
        garbage = running.http.post("/public/graphql", json={"query": PURPOSES},
                                    headers={"X-Forwarded-For": "203.0.113.9, not-an-address"})
        assert only_entry(running, forwarded).remote_addr == "203.0.113.9"
        assert only_entry(running, garbage).remote_addr == "127.0.0.1"


def connection(peer: str, forwarded: list[str]) -> Request:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return Request({"type": "http", "client": (peer, 4711), "headers": headers, "scheme": "http",
                    "server": ("hub.test", 80), "path": "/", "query_string": b"", "method": "GET"})


def test_client_address_rules() -> None:
    trusted = ClientAddress(parse_networks(["10.0.0.0/8"]))
    assert trusted.of(connection("10.0.0.1", ["203.0.113.5, 10.0.0.9"]))[0] == "203.0.113.5"
    assert trusted.of(connection("10.0.0.1", ["203.0.113.5", "198.51.100.1"]))[0] == "198.51.100.1"
    assert trusted.of(connection("10.0.0.1", ["[2001:db8::1]:443"]))[0] == "2001:db8::1"
    assert trusted.of(connection("192.0.2.1", ["203.0.113.5"]))[0] == "192.0.2.1"
    assert ClientAddress().of(connection("127.0.0.1", ["203.0.113.5"]))[0] == "127.0.0.1"


def test_serve_refuses_a_malformed_trusted_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--trusted-proxy", "not-a-network"])
    assert exited.value.code == 2
    assert "not an IP address or network" in capsys.readouterr().err


# ---- 6. audit attribution ----------------------------------------------------------------------

def test_a_purpose_conflict_is_attributed_to_the_client(hub: RunningHub) -> None:
    bank = hub.clients["bank"]
    bound = hub.http.post("/oauth/token", data={"grant_type": "client_credentials", "purpose": "loan-review"},
                          auth=(bank["client_id"], bank["client_secret"])).json()["access_token"]
    response = hub.http.post("/graphql", json={"query": PURPOSES},
                             headers={"Authorization": f"Bearer {bound}", "Xinlian-Purpose": "credit-card-review"})
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == "PURPOSE_CONFLICT"
    entry = only_entry(hub, response)
    assert (entry.client_id, entry.purpose, entry.detail["declaredPurpose"]) == ("demo-bank", "loan-review", "credit-card-review")


def test_a_refused_token_says_why_and_which_client_it_claimed(hub: RunningHub) -> None:
    token = hub.token("bank")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = hub.http.post("/graphql", json={"query": PURPOSES}, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    entry = only_entry(hub, response)
    assert entry.client_id is None  # never trusted: only recorded as claimed
    assert entry.detail == {"reason": "bad signature", "claimedClient": "demo-bank"}


@pytest.mark.parametrize(
    "values",
    [
        [b"because I am curious"],  # free text
        ["贷款审批".encode("utf-8")],  # UTF-8, not a purpose code
        [b"loan-review", b"credit-card-review"],  # two headers
        [b"\xff\xfe"],  # not UTF-8
    ],
    ids=["free-text", "utf8-label", "twice", "not-utf8"],
)
def test_only_one_purpose_code_is_accepted(hub: RunningHub, values: list[bytes]) -> None:
    headers = [(b"authorization", f"Bearer {hub.token('bank')}".encode()), (b"content-type", b"application/json")]
    headers += [(b"xinlian-purpose", v) for v in values]
    response = hub.http.post("/graphql", content=json.dumps({"query": PURPOSES}).encode(), headers=headers)
    assert response.status_code == 400, response.text
    entry = only_entry(hub, response)
    assert entry.client_id == "demo-bank" and entry.purpose is None and entry.errors == ["BAD_REQUEST"]


def test_the_request_id_is_the_hubs_own(hub: RunningHub) -> None:
    response = hub.http.post("/public/graphql", json={"query": PURPOSES}, headers={"X-Request-Id": "chosen-by-caller"})
    assert response.headers["x-request-id"] != "chosen-by-caller"
    entry = only_entry(hub, response)
    assert entry.request_id == response.headers["x-request-id"]
    assert entry.detail == {"callerRequestId": "chosen-by-caller"}
    assert not hub.audit_entries("chosen-by-caller")


# ---- 7. no-store; the access log names no one ---------------------------------------------------

def test_responses_with_personal_data_are_not_stored_by_caches(hub: RunningHub) -> None:
    uscc = hub.samples["judgment_debtor"]
    query = "query($u: String!) { legalPerson(uscc: $u) { name } }"
    public = hub.http.post("/public/graphql", json={"query": query, "variables": {"u": uscc}})
    private = hub.query(query, "department", {"u": uscc})
    for response in (public, private):
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"


def test_the_access_log_redacts_resident_ids_and_tokens(hub: RunningHub) -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("uvicorn.access")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        query = '{ naturalPerson(idNumber: "110102199101010078") { name } }'
        hub.http.get("/public/graphql", params={"query": query, "access_token": "sekrit-token-value"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert records, "uvicorn wrote no access line"
    line = " ".join(records)
    assert "19910101" not in line and "sekrit-token-value" not in line
    assert "access_token=[redacted]" in line


def test_redaction_rules() -> None:
    assert redact("/x?id=44011320141005001X&y=1") == "/x?id=440113***********X&y=1"
    assert redact("/x?access_token=abc.def&q=1") == "/x?access_token=[redacted]&q=1"
    assert redact("order 1234567890123456789") == "order 1234567890123456789"  # 19 digits: not an ID


# ---- 8. slow and vanished clients ---------------------------------------------------------------

def raw_connection(hub: RunningHub) -> socket.socket:
    host, port = hub.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_half_sent_headers_are_not_held_open(hub: RunningHub) -> None:
    with raw_connection(hub) as sock:
        sock.sendall(b"POST /public/graphql HTTP/1.1\r\nHost: hub\r\n")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the hub closed the connection
        assert time.monotonic() - started < 4


def test_a_body_that_does_not_arrive_in_time_is_refused(hub: RunningHub) -> None:
    with raw_connection(hub) as sock:
        sock.sendall(
            b"POST /public/graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"query\":"
        )
        received = b""
        while chunk := sock.recv(4096):  # until the hub closes the connection
            received += chunk
    answer = received.decode()
    assert answer.startswith("HTTP/1.1 408") and "BODY_TIMEOUT" in answer


def test_a_client_that_goes_away_is_recorded_as_abandoned(hub: RunningHub, caplog: pytest.LogCaptureFixture) -> None:
    before = len(hub.audit_entries())
    with caplog.at_level(logging.INFO):
        with raw_connection(hub) as sock:
            sock.sendall(
                b"POST /public/graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{\"query\":"
            )
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            fresh = [e for e in hub.audit_entries()[before:] if e.outcome == "abandoned"]
            if fresh:
                break
            time.sleep(0.1)
    assert [e.endpoint for e in fresh] == ["/public/graphql"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- 9. /readyz detail for admins and monitors only -------------------------------------------

def test_readyz_tells_anyone_only_whether_the_hub_is_ready(hub: RunningHub) -> None:
    anonymous = hub.http.get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready"}
    department = hub.http.get("/readyz", headers={"Authorization": f"Bearer {hub.token('department')}"})
    assert department.json() == {"status": "ready"}
    detail = hub.http.get("/readyz", headers={"Authorization": f"Bearer {hub.token('admin')}"}).json()
    assert detail["status"] == "ready" and {c["department"] for c in detail["connectors"]}


def test_a_monitoring_address_sees_the_detail(tmp_path: Path) -> None:
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=RELAXED,
                     monitoring_addresses=parse_networks(["127.0.0.0/8"])) as running:
        assert "connectors" in running.http.get("/readyz").json()


# ---- 10. RFC 6750 and GraphQL over HTTP ----------------------------------------------------------

def test_bearer_challenges_follow_rfc_6750(hub: RunningHub) -> None:
    missing = hub.http.post("/admin/graphql", json={"query": PURPOSES})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Bearer realm="xinlian"'
    scope = admin(hub, {"query": PURPOSES}, token=hub.token("department"))
    assert scope.status_code == 403
    assert scope.headers["www-authenticate"] == 'Bearer realm="xinlian", error="insufficient_scope", scope="admin"'
    credentials = base64.b64encode(b"x:y").decode()
    basic = hub.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": f"Basic {credentials}"})
    assert basic.status_code == 401 and basic.headers["www-authenticate"].startswith('Basic realm="xinlian"')


@pytest.mark.parametrize(
    "accept, media, status",
    [
        ("application/graphql-response+json", "application/graphql-response+json", 400),
        ("application/graphql-response+json, application/json;q=0.9", "application/graphql-response+json", 400),
        ("application/json", "application/json", 200),
        (None, "application/json", 200),
        ("*/*", "application/json", 400),
    ],
)
def test_graphql_over_http_media_types(hub: RunningHub, accept: str | None, media: str, status: int) -> None:
    headers = {"Accept": accept} if accept else {}
    client = httpx.Client(base_url=hub.base_url, headers={"User-Agent": "t"}, timeout=10)
    if accept is None:
        client.headers.pop("accept", None)
    with client:
        invalid = client.post("/public/graphql", json={"query": "{ noSuchField }"}, headers=headers)
        valid = client.post("/public/graphql", json={"query": PURPOSES}, headers=headers)
    assert invalid.status_code == status and invalid.headers["content-type"].startswith(media)
    assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert valid.status_code == 200 and valid.headers["content-type"].startswith(media)


def test_ipv6_clients_are_counted_per_slash_64_and_ipv4_as_themselves() -> None:
    key = ClientAddress.budget_key
    assert key("2001:db8:1:2:aaaa::1") == key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::1") != key("2001:db8:1:2::1")
    assert key("::ffff:203.0.113.5") == "203.0.113.5" and key("203.0.113.5") == "203.0.113.5"
    assert key("unknown") == "unknown"


def test_a_locked_out_flood_is_counted_not_stored_one_by_one(tmp_path: Path) -> None:
    # a lock long enough that no request of the flood outlives it, however loaded the machine
    rules = LockoutRules(threshold=5, base=60, ceiling=60, per_address=1000)
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=RELAXED, auth_lockout=rules) as running:
        department = running.clients["department"]
        for _ in range(5):
            assert token_request(running, department["client_id"], "wrong-secret-wrong").status_code == 401
        before = len(running.audit_entries())
        statuses = [token_request(running, department["client_id"], "wrong-secret-wrong").status_code for _ in range(20)]
        assert statuses == [429] * 20
        locked = [e for e in running.audit_entries()[before:] if "AUTHENTICATION_LOCKED" in e.errors]
        assert len(locked) == 1 and locked[0].detail["claimedClient"] == "demo-department"
    running.http = httpx.Client()
    summaries = [e for e in running.audit_entries() if "AUTHENTICATION_LOCKED" in e.errors and e.detail.get("refusals")]
    assert [s.detail["refusals"] for s in summaries] == [19]


def test_basic_credentials_on_a_bearer_endpoint_get_a_challenge_without_an_error_code(hub: RunningHub) -> None:
    credentials = base64.b64encode(b"demo-bank:secret").decode()
    response = hub.http.post("/graphql", json={"query": PURPOSES}, headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == 'Bearer realm="xinlian"'
    assert only_entry(hub, response).detail["reason"].startswith("no bearer token")


# ---- every entry point passes the gateway, by construction --------------------------------------

def test_every_route_of_the_hub_is_a_declared_entry_point_served_by_the_gateway(tmp_path: Path) -> None:
    from starlette.routing import Route

    from xinlian.hub.app import ENTRY_POINTS, create_app
    from xinlian.hub.config import Settings
    from xinlian.hub.gateway.pipeline import Gateway

    app = create_app(Settings.from_env(tmp_path))
    served = [Gateway.served_by(route) for route in app.routes if isinstance(route, Route)]
    assert len(served) == len(app.routes) and None not in served
    assert [e.path for e in served if e is not None] == [e.path for e in ENTRY_POINTS]
    audited = {e.path for e in ENTRY_POINTS if e.audited}
    assert {"/graphql", "/public/graphql", "/admin/graphql", "/oauth/token", "/oauth/revoke", "/oauth/introspect"} == audited
