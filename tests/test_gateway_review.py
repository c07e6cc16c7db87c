"""Holes an independent review of the gateway found, each checked through a real hub on loopback.

- the authentication lockout keys on the client whose secret authlib is about to check (a
  percent-encoded Basic user id, or `Basic<TAB>`, named a fresh pair and escaped the back-off);
- only a client that authenticated clears its lockout pair (a request with an unsupported
  grant type between guesses reset the count: the back-off never started);
- a Basic header the hub cannot read never reaches authlib (it crashed on one: 500);
- every HTTP method passes the gateway (Starlette answered TRACE, PROPFIND, ... itself: no
  request id, no admission, no audit entry);
- a client that stops reading its responses is dropped (it held its requests for ever);
- a bearer token whose header has the wrong shape is refused, not a 500 with a traceback;
- `operationName` is a bounded GraphQL name (any string of the body went into the audit entry).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from graphql import get_introspection_query

from hub_fixture import NO_RATE_LIMITS, RunningHub, post_token, running_hub
from xinlian.hub.guard.rate_limits import RateRules

RELAXED = NO_RATE_LIMITS
TYPENAME = "{ __typename }"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(
        tmp_path_factory.mktemp("review"), legal_persons=20, natural_persons=5, rate_limits=RELAXED,
        header_timeout=1.0, body_timeout=1.0,
    ) as running:
        yield running


def entries_of(hub: RunningHub, response: httpx.Response) -> list[Any]:
    return hub.audit_entries(response.headers["x-request-id"])


def token_request(hub: RunningHub, source: str, headers: dict[str, str], **form: str) -> httpx.Response:
    return post_token(hub.base_url, source=source, headers=headers, **form)


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def percent_encoded(text: str, pattern: int) -> str:
    """`text` with the characters chosen by the bits of `pattern` percent-encoded (the same id to authlib)."""
    return "".join(f"%{ord(c):02X}" if (pattern >> i) & 1 else c for i, c in enumerate(text))


# ---- the lockout keys on the client authlib will check -----------------------------------------

def test_a_percent_encoded_client_id_does_not_escape_its_lockout(hub: RunningHub) -> None:
    bank = hub.clients["bank"]
    client_id, secret = bank["client_id"], bank["client_secret"]
    source = "127.0.0.21"
    # five wrong secrets, each naming demo-bank another way: one pair, locked after the fifth
    for pattern in range(1, 6):
        refused = token_request(hub, source, basic(percent_encoded(client_id, pattern), "wrong-secret-wrong"))
        assert refused.status_code == 401, refused.text
    locked = token_request(hub, source, basic(client_id, secret))
    assert locked.status_code == 429, locked.text
    # nor does a sixth spelling of the id get past the lock
    encoded = token_request(hub, source, basic(percent_encoded(client_id, 0b101), secret))
    assert encoded.status_code == 429, encoded.text
    assert [e.detail["claimedClient"] for e in entries_of(hub, locked)] == ["demo-bank"]
    # the second refusal of the locked pair in the interval is counted by the refusal tally
    assert entries_of(hub, encoded) == []


def test_a_request_refused_before_authentication_does_not_clear_the_lockout(hub: RunningHub) -> None:
    bank = hub.clients["bank"]
    client_id, secret = bank["client_id"], bank["client_secret"]
    source = "127.0.0.23"
    for _ in range(4):
        assert token_request(hub, source, basic(client_id, "wrong-secret-wrong")).status_code == 401
    # no secret is checked for an unsupported grant type: it must not count as a success
    unchecked = token_request(hub, source, basic(client_id, "anything"), grant_type="password")
    assert unchecked.status_code == 400 and unchecked.json()["error"] == "unsupported_grant_type"
    assert token_request(hub, source, basic(client_id, "wrong-secret-wrong")).status_code == 401  # the fifth
    locked = token_request(hub, source, basic(client_id, secret))
    assert locked.status_code == 429, locked.text


def test_a_basic_header_only_authlib_would_read_is_refused_before_it(hub: RunningHub, caplog: pytest.LogCaptureFixture) -> None:
    bank = hub.clients["bank"]
    spaced = base64.b64encode(f"{bank['client_id']}:{bank['client_secret']}".encode()).decode()
    not_utf8 = base64.b64encode(b"\xff\xfe:secret").decode()
    headers = [
        # authlib splits "Basic<TAB>..." at any white space and decodes base64 leniently
        f"Basic\t{spaced[:4]} {spaced[4:]}",
        # well-formed base64 of bytes that are not UTF-8 (authlib crashed decoding them)
        f"Basic {not_utf8}",
    ]
    with caplog.at_level(logging.ERROR):
        for header in headers:
            response = token_request(hub, "127.0.0.22", {"Authorization": header})
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_client"
            assert [e.errors for e in entries_of(hub, response)] == [["invalid_client"]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- every method passes the gateway -------------------------------------------------------------

@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "BREW"])
@pytest.mark.parametrize("path, allow", [("/graphql", "GET, POST"), ("/oauth/token", "POST")])
def test_every_method_is_answered_by_the_gateway_and_audited(hub: RunningHub, method: str, path: str, allow: str) -> None:
    response = hub.http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["cache-control"] == "no-store"
    assert [e.errors for e in entries_of(hub, response)] == [["METHOD_NOT_ALLOWED"]]


def test_an_unlisted_method_is_admitted_per_address_like_any_other(tmp_path: Path) -> None:
    rules = RateRules(public_ip="3/minute", graphql_ip="off", client="off", oauth_ip="off", meta_ip="off")
    with running_hub(tmp_path, legal_persons=12, natural_persons=3, rate_limits=rules) as running:
        statuses = [running.http.request("TRACE", "/public/graphql").status_code for _ in range(5)]
    assert statuses == [405, 405, 405, 429, 429]


# ---- a client that does not read its responses --------------------------------------------------

def test_a_client_that_stops_reading_is_dropped(hub: RunningHub) -> None:
    body = json.dumps({"query": get_introspection_query()}).encode()  # about 40 KB of answer each
    request = (
        b"POST /public/graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    pipelined = 300  # 12 MB of answers: far more than the socket buffers hold
    host, port = hub.base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect((host, int(port)))

    def send() -> None:
        try:
            for _ in range(pipelined):
                sock.sendall(request)
        except OSError:
            pass  # the hub dropped the connection while we were still sending

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(4)  # read nothing for four times the hub's slow-client bound (1 s)
    marker = b"HTTP/1.1 200 OK"
    tail, answers, ended = b"", 0, "timeout"
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                ended = "closed"
                break
            window = tail + chunk  # a status line may be split across two reads
            answers += window.count(marker)
            tail = window[-(len(marker) - 1):]
    except ConnectionResetError:
        ended = "reset"
    except socket.timeout:
        ended = "timeout"
    finally:
        sock.close()
        sender.join(10)
    assert ended in ("closed", "reset"), "the hub kept the connection of a client that had stopped reading"
    assert answers < pipelined, "the hub kept writing to a client that had stopped reading"
    assert hub.http.get("/healthz").status_code == 200


# ---- a bearer token of the wrong shape ------------------------------------------------------------

def test_a_token_header_of_the_wrong_shape_is_refused_not_a_crash(hub: RunningHub, caplog: pytest.LogCaptureFixture) -> None:
    token = hub.token("bank")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    with caplog.at_level(logging.ERROR):
        for typ in ([], {}):
            shaped = base64.urlsafe_b64encode(json.dumps({**header, "typ": typ}).encode()).decode().rstrip("=")
            forged = ".".join([shaped, *token.split(".")[1:]])
            response = hub.http.post("/graphql", json={"query": TYPENAME}, headers={"Authorization": f"Bearer {forged}"})
            assert response.status_code == 401, response.text
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            assert [e.errors for e in entries_of(hub, response)] == [["UNAUTHENTICATED"]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---- operationName is a name, not a payload for the audit trail ---------------------------------

@pytest.mark.parametrize("name", ["A" * 20_000, "110102199101010078"], ids=["long", "id-number"])
def test_an_operation_name_is_a_short_graphql_name(hub: RunningHub, name: str) -> None:
    response = hub.http.post("/public/graphql", json={"query": TYPENAME, "operationName": name})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    [entry] = entries_of(hub, response)
    assert entry.operation_name is None
    named = hub.http.post("/public/graphql", json={"query": "query Q_1 { __typename }", "operationName": "Q_1"})
    assert named.status_code == 200 and entries_of(hub, named)[0].operation_name == "Q_1"
