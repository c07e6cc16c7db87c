"""The REST/JSON connector against the court's API (hub.demo.court_service) on a real loopback server.

Every test talks HTTP to a uvicorn server in a background thread; the server counts what it
was asked (`app.state.traffic`) and plays injected faults (`app.state.faults`). Connectors are
built from TOML through `load_connectors`, as the hub builds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import ipaddress
import math
import ssl
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterator

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette

from department_fixtures import API_KEY, COURT, FAMILY, KEYS, PERSON, RECORDS, court_toml, entry
from servers import serve_app
from xinlian.connectors.contract import Connector, FetchCall, UpstreamInvalid, UpstreamUnavailable
from xinlian.connectors.mapping import ConnectorConfigError
from xinlian.connectors.registry import load_connectors
from xinlian.connectors.rest import RestConnector
from xinlian.hub.demo.court_service import court_app, load_court_records, run_in_thread

NOBODY = "91150102MA0000999X"


def load(tmp_path: Path, text: str) -> RestConnector:
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    (connector,) = load_connectors(path, tmp_path)
    assert isinstance(connector, RestConnector) and isinstance(connector, Connector)
    return connector


@pytest.fixture(autouse=True)
def court_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURT_API_KEY", API_KEY)


@pytest.fixture
def court() -> Iterator[Callable[..., tuple[str, Starlette]]]:
    """Start the court's API: `base_url, app = court(page_size=2, latency=0.05, ...)`."""
    with contextlib.ExitStack() as stack:
        def start(records: dict[str, list[dict[str, Any]]] = RECORDS, **options: Any) -> tuple[str, Starlette]:
            app = court_app(records, options.pop("api_key", API_KEY), **options)
            return stack.enter_context(serve_app(app)), app

        yield start


@contextlib.asynccontextmanager
async def connected(tmp_path: Path, text: str):
    connector = load(tmp_path, text)
    try:
        yield connector
    finally:
        await connector.close()


# ---- batching, mapping, minimisation -------------------------------------------------------
async def test_a_batch_endpoint_is_called_ceil_n_over_batch_size_times(court, tmp_path):
    base_url, app = court()
    async with connected(tmp_path, court_toml(base_url, batch_size=3)) as courts:
        found = await courts.fetch(FAMILY, KEYS, ["case_number", "performance"])
    assert app.state.traffic.requests["batch"] == math.ceil(len(KEYS) / 3) == 3
    assert found[KEYS[0]] == [{"case_number": "（2025）内0102执1号", "performance": "全部未履行"},
                              {"case_number": "（2025）内0102执2号", "performance": "部分未履行"}]
    assert set(found) == {KEYS[0], KEYS[1], KEYS[3], KEYS[4], KEYS[5]}  # KEYS[2], KEYS[6]: nothing on file
    assert courts.calls == [FetchCall(FAMILY, tuple(KEYS), ("case_number", "performance"), ("ah", "lxqk"))]


async def test_dotted_paths_and_list_indexes_are_converted_to_catalogue_types(court, tmp_path):
    base_url, _ = court()
    fields = ["case_number", "court", "debtor_name", "debtor_id_number", "filing_date", "publish_date",
              "basis_document", "obligation", "performance", "dishonest_behavior"]
    async with connected(tmp_path, court_toml(base_url)) as courts:
        found = await courts.fetch(FAMILY, [KEYS[1], PERSON], fields)
    assert found[KEYS[1]] == [{
        "case_number": "（2025）内0102执3号", "court": COURT, "debtor_name": "被执行人002X", "debtor_id_number": KEYS[1],
        "filing_date": dt.date(2025, 3, 1), "publish_date": dt.date(2025, 4, 15), "basis_document": "（2024）内0102民初3号",
        "obligation": "支付货款人民币20000元", "performance": "全部未履行", "dishonest_behavior": "违反财产报告制度",
    }]
    assert found[PERSON][0]["debtor_name"] == "王伟"  # the court wrote the ID's check letter in lower case


async def test_only_the_requested_paths_are_read(court, tmp_path):
    base_url, _ = court()
    async with connected(tmp_path, court_toml(base_url)) as courts:
        found = await courts.fetch(FAMILY, [KEYS[3]], ["case_number"])  # larq is bad, but nobody asked
        assert found == {KEYS[3]: [{"case_number": "（2025）内0102执4号"}]}
        assert courts.calls[-1].columns == ("ah",)
        assert await courts.fetch(FAMILY, [KEYS[0], KEYS[3]], []) == {KEYS[0]: [{}, {}], KEYS[3]: [{}]}
        mixed = await courts.fetch(FAMILY, [KEYS[1], KEYS[3]], ["case_number", "filing_date"])
        with pytest.raises(UpstreamInvalid) as whole:  # every subject asked failed: the call did
            await courts.fetch(FAMILY, [KEYS[3]], ["case_number", "filing_date"])
    assert mixed[KEYS[1]] == [{"case_number": "（2025）内0102执3号", "filing_date": dt.date(2025, 3, 1)}]
    bad = mixed[KEYS[3]]  # one subject's bad value fails that subject only
    assert isinstance(bad, UpstreamInvalid) and bad.department == "新城区人民法院" and bad.reason == "invalid_data"
    assert "judgment_debtor_records.filing_date (path larq)" in bad.message and "2025年13月01日" in bad.message
    assert whole.value.message == bad.message


async def test_a_value_of_the_wrong_shape_is_invalid_naming_the_field(court, tmp_path):
    base_url, _ = court()
    async with connected(tmp_path, court_toml(base_url)) as courts:
        assert await courts.fetch(FAMILY, [KEYS[5]], ["case_number"]) == {KEYS[5]: [{"case_number": "（2025）内0102执5号"}]}
        with pytest.raises(UpstreamInvalid, match=r"judgment_debtor_records\.court \(path zxfy\.mc\): zxfy is a string"):
            await courts.fetch(FAMILY, [KEYS[5]], ["court"])
        found = await courts.fetch(FAMILY, [KEYS[0], KEYS[5]], ["court"])
        assert found[KEYS[0]] == [{"court": COURT}, {"court": COURT}] and isinstance(found[KEYS[5]], UpstreamInvalid)
    text = court_toml(base_url).replace('dishonest_behavior = "sxxwqx.0"', 'dishonest_behavior = "sxxwqx"')
    async with connected(tmp_path, text) as courts:
        with pytest.raises(UpstreamInvalid, match=r"dishonest_behavior \(path sxxwqx\): an array, not a value"):
            await courts.fetch(FAMILY, [KEYS[0]], ["dishonest_behavior"])


async def test_records_without_a_subject_key_are_invalid(court, tmp_path):
    base_url, _ = court({KEYS[0]: [entry(KEYS[0], bzxr={"mc": "无证件号码"})], KEYS[1]: [entry(KEYS[1])]})
    async with connected(tmp_path, court_toml(base_url)) as courts:  # a batch: nobody can tell whose it is
        with pytest.raises(UpstreamInvalid, match=r"subject key \(bzxr\.zjhm\) is absent"):
            await courts.fetch(FAMILY, [KEYS[0], KEYS[1]], ["case_number"])
    async with connected(tmp_path, court_toml(base_url, table="/api/v1/sxbzxr/{key}")) as courts:  # per key: that key
        found = await courts.fetch(FAMILY, [KEYS[0], KEYS[1]], ["case_number"])
    assert isinstance(found[KEYS[0]], UpstreamInvalid) and len(found[KEYS[1]]) == 1


async def test_a_where_filter_drops_records_by_path(court, tmp_path):
    base_url, _ = court()
    text = court_toml(base_url).replace('key = "bzxr.zjhm"', 'key = "bzxr.zjhm"\nwhere = { lxqk = "1" }')
    async with connected(tmp_path, text) as courts:
        found = await courts.fetch(FAMILY, [KEYS[0], KEYS[1]], ["case_number"])
    assert found == {KEYS[0]: [{"case_number": "（2025）内0102执2号"}]}


# ---- per-key endpoints ------------------------------------------------------------------
async def test_per_key_calls_never_exceed_key_concurrency(court, tmp_path):
    many = {f"91150102MA1{n:06d}X": [entry(f"91150102MA1{n:06d}X", n)] for n in range(16)}
    base_url, app = court(many, latency=0.1)
    text = court_toml(base_url, table="/api/v1/sxbzxr/{key}", batch_size=200, extra="key_concurrency = 3")
    async with connected(tmp_path, text) as courts:
        found = await courts.fetch(FAMILY, [*many, NOBODY], ["case_number"])
    traffic = app.state.traffic
    assert traffic.requests["record"] == len(many) + 1 and traffic.requests["batch"] == 0
    assert 2 <= traffic.peak_in_flight <= 3
    assert set(found) == set(many)  # NOBODY: 404, no records


async def test_a_failed_per_key_call_fails_only_its_subject(court, tmp_path):
    base_url, app = court()
    text = court_toml(base_url, table="/api/v1/sxbzxr/{key}", extra="key_concurrency = 1")
    async with connected(tmp_path, text) as courts:
        app.state.faults.inject("error")
        found = await courts.fetch(FAMILY, [KEYS[0], KEYS[1]], ["case_number"])
        failed = found[KEYS[0]]  # one call at a time, in order: the first key's call got the 500
        assert isinstance(failed, UpstreamUnavailable) and failed.reason == "http_status"
        assert found[KEYS[1]] == [{"case_number": "（2025）内0102执3号"}]
        app.state.faults.inject("error", times=2)
        with pytest.raises(UpstreamUnavailable, match="HTTP 500"):  # every subject failed: the call did
            await courts.fetch(FAMILY, [KEYS[0], KEYS[1]], ["case_number"])


async def test_a_404_on_a_per_key_call_means_no_records(court, tmp_path):
    base_url, _ = court()
    async with connected(tmp_path, court_toml(base_url, table="/api/v1/sxbzxr/{key}")) as courts:
        assert await courts.fetch(FAMILY, [NOBODY], ["case_number"]) == {}
        found = await courts.fetch(FAMILY, [KEYS[0], NOBODY], ["case_number"])
    assert [r["case_number"] for r in found[KEYS[0]]] == ["（2025）内0102执1号", "（2025）内0102执2号"]


async def test_a_404_on_a_batch_endpoint_is_unavailable(court, tmp_path):
    base_url, _ = court()
    async with connected(tmp_path, court_toml(base_url, table="/api/v2/missing?ids={keys}")) as courts:
        with pytest.raises(UpstreamUnavailable, match="HTTP 404"):
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])


# ---- pagination ---------------------------------------------------------------------------
async def test_next_links_are_followed(court, tmp_path):
    base_url, app = court(page_size=2)
    async with connected(tmp_path, court_toml(base_url, batch_size=50)) as courts:
        found = await courts.fetch(FAMILY, [KEYS[4]], ["case_number"])
    assert [r["case_number"] for r in found[KEYS[4]]] == [f"（2025）内0102执{n}号" for n in range(10, 15)]
    assert app.state.traffic.requests["batch"] == 3


async def test_cursors_are_sent_back_in_a_query_parameter(court, tmp_path):
    base_url, app = court(page_size=2)
    rest = 'records = "data.list"\nnext = "data.next_page"\ncursor_param = "page"'
    async with connected(tmp_path, court_toml(base_url, table="/api/v1/sxbzxr/{key}", rest=rest)) as courts:
        found = await courts.fetch(FAMILY, [KEYS[4]], ["case_number"])
    assert len(found[KEYS[4]]) == 5 and app.state.traffic.requests["record"] == 3


async def test_pagination_that_never_ends_stops_at_the_page_cap(court, tmp_path):
    base_url, app = court(page_size=2)
    async with connected(tmp_path, court_toml(base_url, extra="max_pages = 4")) as courts:
        app.state.faults.inject("endless", times=100)
        with pytest.raises(UpstreamInvalid, match="more than 4 pages"):
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
        assert app.state.traffic.requests["batch"] == 4
        app.state.faults.clear()
        assert len((await courts.fetch(FAMILY, [KEYS[4]], ["case_number"]))[KEYS[4]]) == 5


async def test_pagination_that_loops_or_leaves_the_api_is_invalid(court, tmp_path):
    base_url, app = court(page_size=2)
    async with connected(tmp_path, court_toml(base_url)) as courts:
        app.state.faults.inject("loop", times=10)
        with pytest.raises(UpstreamInvalid, match="loops back"):
            await courts.fetch(FAMILY, [KEYS[4]], ["case_number"])
        assert app.state.traffic.requests["batch"] == 2  # page 1, then "page=1" linking to itself: caught
        app.state.faults.clear()
        app.state.faults.inject("offsite")
        with pytest.raises(UpstreamInvalid, match="leaves the department's API") as offsite:
            await courts.fetch(FAMILY, [KEYS[4]], ["case_number"])
    assert "court-mirror" not in str(offsite.value)


# ---- faults -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "error", "message", "reason"),
    [
        ("error", UpstreamUnavailable, r"failed \(HTTP 500\)", "http_status"),
        ("busy", UpstreamUnavailable, "reported code = 1001", "upstream_error"),
        ("garbage", UpstreamInvalid, "judgment_debtor_records: the response is not valid JSON", "invalid_data"),
        ("shape", UpstreamInvalid, r"data\.list is a string, not a list of records", "invalid_data"),
        ("truncated", UpstreamInvalid, "judgment_debtor_records: the response was cut short", "invalid_data"),
        ("reset", UpstreamUnavailable, "reset|closed the connection", "unreachable"),
    ],
)
async def test_faults_become_connector_errors_and_the_next_request_is_served(court, tmp_path, fault, error, message, reason):
    base_url, app = court()
    async with connected(tmp_path, court_toml(base_url)) as courts:
        app.state.faults.inject(fault)
        with pytest.raises(error, match=message) as failure:
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
        assert type(failure.value) is error and failure.value.department == "新城区人民法院"
        assert failure.value.reason == reason
        assert "127.0.0.1" not in failure.value.message and "ids=" not in failure.value.message
        assert len((await courts.fetch(FAMILY, [KEYS[0]], ["case_number"]))[KEYS[0]]) == 2


def _large_buffers(exc: BaseException, size: int = 64 * 1024) -> list[str]:
    """What an exception keeps reachable that is a body-sized buffer or a response still open.

    Follows its cause and context (suppressed or not), args, attributes, and the locals of every
    frame of every traceback in the chain (one level into lists, tuples and dicts).
    """
    found: list[str] = []
    seen: set[int] = set()

    def look(value: Any, where: str, depth: int = 0) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) >= size:
            found.append(f"{where}: {len(value)} bytes")
        elif isinstance(value, aiohttp.ClientResponse) and not value.closed:
            found.append(f"{where}: an open response")
        elif isinstance(value, BaseException):
            chain(value, where)
        elif depth < 2 and isinstance(value, (list, tuple, set)):
            held = sum(len(item) for item in value if isinstance(item, (bytes, bytearray, memoryview)))
            if held >= size:  # a buffer kept as chunks
                found.append(f"{where}: {held} bytes in {len(value)} pieces")
            for n, item in enumerate(value):
                look(item, f"{where}[{n}]", depth + 1)
        elif depth < 2 and isinstance(value, dict):
            for key, item in value.items():
                look(item, f"{where}[{key!r}]", depth + 1)

    def chain(error: BaseException, where: str) -> None:
        seen.add(id(error))
        for n, arg in enumerate(error.args):
            look(arg, f"{where}.args[{n}]")
        for name, attribute in vars(error).items():
            look(attribute, f"{where}.{name}")
        tb = error.__traceback__
        while tb is not None:
            for name, local in tb.tb_frame.f_locals.items():
                look(local, f"{where} frame {tb.tb_frame.f_code.co_name}.{name}")
            tb = tb.tb_next
        for link in ("__cause__", "__context__"):
            linked = getattr(error, link)
            if linked is not None and id(linked) not in seen:
                chain(linked, f"{where}.{link}")

    chain(exc, "error")
    return found


async def test_an_oversized_answer_is_invalid_and_not_kept_alive(tmp_path, monkeypatch):
    """Regression (issue 9): 20 oversized answers in a row, every failure kept: memory stays flat.

    A real loopback server streams 4 MiB (chunked, no Content-Length) per request; the ceiling is
    lowered to 1 MiB so the test stays quick. Before the fix, each failure's context kept the
    buffered megabyte alive through the reader's frame.
    """
    from xinlian.connectors import rest

    ceiling, answers = 2**20, {"served": 0}
    monkeypatch.setattr(rest, "MAX_BODY_BYTES", ceiling)

    async def oversized(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        answers["served"] += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        chunk = b" " * 65536
        for _ in range(64):  # 4 MiB
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    with serve_app(oversized, lifespan="off") as base_url:
        async with connected(tmp_path, court_toml(base_url)) as courts:
            with pytest.raises(UpstreamInvalid, match="the response exceeds 1 MiB"):  # warm-up: imports, pools
                await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
            kept: list[BaseException] = []
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(20):
                    with pytest.raises(UpstreamInvalid) as failure:
                        await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
                    kept.append(failure.value)  # as a log handler, a breaker or an error list might
                gc.collect()
                grown, peak = tracemalloc.get_traced_memory()[0] - before, tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
    assert answers["served"] == 21
    assert all(type(e) is UpstreamInvalid and e.reason == "invalid_data" for e in kept)
    assert all("exceeds 1 MiB" in e.message for e in kept)
    assert [found for e in kept if (found := _large_buffers(e))] == []
    # a leak keeps one ceiling per answer (20 MiB here; 23 MB measured before the fix); the bounds
    # leave room for what other threads (the server) and the interpreter allocate meanwhile
    assert grown < 6 * ceiling, f"{grown} bytes still held after 20 oversized answers"
    assert peak < 10 * ceiling, f"peak {peak} bytes: answers kept buffered"


async def test_a_body_cut_short_is_invalid_not_retried_by_the_link(court, tmp_path):
    """The department answered, but its body stops before its Content-Length: invalid, asked once."""
    from xinlian.connectors.resilience import DepartmentLink

    base_url, app = court()
    async with connected(tmp_path, court_toml(base_url)) as courts:
        app.state.faults.inject("truncated", times=5)
        link = DepartmentLink(courts)
        with pytest.raises(UpstreamInvalid, match="cut short") as failure:
            await link.fetch(FAMILY, [KEYS[0]], ["case_number"], deadline=link.deadline_in(5))
        assert failure.value.reason == "invalid_data" and _large_buffers(failure.value) == []
        assert app.state.traffic.requests["batch"] == 1  # not retried
        status = link.status()
        assert (status.attempts, status.invalid, status.failures, status.consecutive_failures) == (1, 1, 0, 0)
        app.state.faults.clear()
        assert len((await courts.fetch(FAMILY, [KEYS[0]], ["case_number"]))[KEYS[0]]) == 2


async def test_a_hung_answer_is_unavailable_and_the_next_request_is_served(court, tmp_path):
    base_url, app = court(hang_seconds=5)
    async with connected(tmp_path, court_toml(base_url).replace("timeout = 3.0", "timeout = 0.3")) as courts:
        app.state.faults.inject("hang")
        with pytest.raises(UpstreamUnavailable, match="in time") as late:
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
        assert late.value.reason == "timeout"
        app.state.faults.inject("hang")  # the hub's own deadline, shorter than httpx's
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(courts.fetch(FAMILY, [KEYS[0]], ["case_number"]), 0.1)
        assert len((await courts.fetch(FAMILY, [KEYS[0]], ["case_number"]))[KEYS[0]]) == 2


async def test_an_unreachable_department_is_unavailable(tmp_path):
    async with connected(tmp_path, court_toml("http://127.0.0.1:9")) as courts:
        with pytest.raises(UpstreamUnavailable, match="refused the connection"):
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
        health = await courts.health()
    assert not health.healthy and "refused" in health.detail


# ---- credentials ---------------------------------------------------------------------------
async def test_a_wrong_api_key_is_unavailable_and_never_shown(court, tmp_path, monkeypatch):
    base_url, app = court()
    monkeypatch.setenv("COURT_API_KEY", "wrong-key-0b7e")
    async with connected(tmp_path, court_toml(base_url)) as courts:
        with pytest.raises(UpstreamUnavailable, match=r"refused the hub's credentials \(HTTP 401\)") as refused:
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
        health = await courts.health()
        shown = f"{refused.value} {refused.value.message} {courts!r} {courts._credentials!r} {health}"
    assert "wrong-key-0b7e" not in shown and API_KEY not in shown
    assert not health.healthy and "401" in health.detail


async def test_the_api_key_can_come_from_a_secret_file(court, tmp_path, monkeypatch):
    base_url, _ = court()
    monkeypatch.delenv("COURT_API_KEY")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "court-api-key").write_text(API_KEY + "\n", encoding="utf-8")
    auth = '{ type = "api_key", value_file = "{data_dir}/secrets/court-api-key" }'
    async with connected(tmp_path, court_toml(base_url, auth=auth)) as courts:
        assert KEYS[0] in await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
        health = await courts.health()
    assert health.healthy and health.detail == "ok (HTTP 200)"


async def test_bearer_tokens_from_an_environment_variable_or_a_file(court, tmp_path, monkeypatch):
    base_url, _ = court(scheme="bearer")
    monkeypatch.setenv("COURT_TOKEN", API_KEY)
    (tmp_path / "token").write_text(API_KEY, encoding="utf-8")
    for auth in ('{ type = "bearer", token_env = "COURT_TOKEN" }', '{ type = "bearer", token_file = "token" }'):
        async with connected(tmp_path, court_toml(base_url, auth=auth)) as courts:
            assert KEYS[0] in await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
    async with connected(tmp_path, court_toml(base_url)) as courts:  # an API key where a token is expected
        with pytest.raises(UpstreamUnavailable, match="401"):
            await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])


def _certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    now = dt.datetime.now(dt.timezone.utc)

    def issue(subject: str, key: Any, issuer: x509.Name, signer: Any, *extensions: tuple[Any, bool]) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Xinlian test CA")])
    ca = issue("Xinlian test CA", ca_key, ca_name, ca_key, (x509.BasicConstraints(ca=True, path_length=None), True),
               (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
               (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False))
    files = {"ca": directory / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, usage, san in (("server", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             ("client", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("hub.xinlian.test")])):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(name, key, ca_name, ca_key, (x509.SubjectAlternativeName(san), False),
                     (x509.ExtendedKeyUsage([usage]), False),
                     (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False))
        files[name] = directory / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{name}_key"] = directory / f"{name}-key.pem"
        files[f"{name}_key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return files


async def test_mutual_tls_with_a_client_certificate(tmp_path):
    pem = _certificates(tmp_path)
    service = run_in_thread(court_app(RECORDS, API_KEY), ssl_certfile=str(pem["server"]),
                            ssl_keyfile=str(pem["server_key"]), ssl_ca_certs=str(pem["ca"]), ssl_cert_reqs=ssl.CERT_REQUIRED)
    try:
        assert service.base_url.startswith("https://127.0.0.1:")
        mtls = (f'[{{ type = "mtls", cert_file = "{pem["client"]}", key_file = "{pem["client_key"]}", '
                f'ca_file = "{pem["ca"]}" }}, {{ type = "api_key", value_env = "COURT_API_KEY" }}]')
        async with connected(tmp_path, court_toml(service.base_url, auth=mtls)) as courts:
            assert KEYS[0] in await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
            assert (await courts.health()).healthy
        no_cert = court_toml(service.base_url, extra=f'verify = "{pem["ca"]}"')  # trusts the server, has no cert
        async with connected(tmp_path, no_cert) as courts:
            with pytest.raises(UpstreamUnavailable) as refused:
                await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
            assert not (await courts.health()).healthy
        async with connected(tmp_path, court_toml(service.base_url, auth=mtls.replace(f', ca_file = "{pem["ca"]}"', ""))) as courts:
            with pytest.raises(UpstreamUnavailable, match="TLS"):  # the system's CAs do not know the test CA
                await courts.fetch(FAMILY, [KEYS[0]], ["case_number"])
    finally:
        service.stop()
    assert "127.0.0.1" not in refused.value.message


# ---- search and health ---------------------------------------------------------------------
async def test_search_uses_the_configured_template(court, tmp_path):
    base_url, app = court()
    rest = 'records = "data.list"\nsearch = "/api/v1/sxbzxr/search?mc={text}&limit={limit}"'
    async with connected(tmp_path, court_toml(base_url, rest=rest)) as courts:
        assert await courts.search(FAMILY, "被执行人", 3) == [KEYS[0], KEYS[1]]  # the court's first 3 entries
        assert await courts.search(FAMILY, "王伟", 10) == [PERSON]  # the court wrote "x"; keys are upper case
        assert await courts.search(FAMILY, "nobody", 10) == []
        assert await courts.search("registration", "王伟", 10) == []
    async with connected(tmp_path, court_toml(base_url)) as courts:
        assert await courts.search(FAMILY, "王伟", 10) == []
    assert app.state.traffic.requests["search"] == 3


# ---- configuration ---------------------------------------------------------------------------
BASE = "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('value_env = "COURT_API_KEY"', 'value_env = "COURT_KEY_UNSET"'),
         "auth.value_env: environment variable COURT_KEY_UNSET is not set"),
        (lambda t: t.replace('value_env = "COURT_API_KEY"', 'value_file = "secrets/none"'), "auth.value_file: cannot read secret file"),
        (lambda t: t.replace('value_env = "COURT_API_KEY"', 'value_env = "COURT_API_KEY", value_file = "x"'), "exactly one of"),
        (lambda t: t.replace('type = "api_key"', 'type = "basic"'), 'type = "api_key", "bearer" or "mtls"'),
        (lambda t: t.replace('header = "X-Api-Key"', 'hdr = "X-Api-Key"'), "unknown option 'hdr' for api_key"),
        (lambda t: t.replace('header = "X-Api-Key"', 'header = "X Api: Key"'), "auth.header: must be an HTTP header name"),
        (lambda t: t.replace("auth = {", "auth = [] # {"), "give at least one auth table"),
        (lambda t: t.replace("?ids={keys}", "?ids={ids}"), "table: must use {keys}"),
        (lambda t: t.replace("?ids={keys}", ""), "table: must use {keys}"),
        (lambda t: t.replace("/api/v1/sxbzxr?ids={keys}", "http://elsewhere/x?ids={keys}"), "relative to base_url"),
        (lambda t: t.replace('key = "bzxr.zjhm"', 'key = "bzxr..zjhm"'), "key: 'bzxr..zjhm' is not a dotted path"),
        (lambda t: t.replace('court = "zxfy.mc"', 'court = "zxfy.mc."'), "fields.court: 'zxfy.mc.' is not a dotted path"),
        (lambda t: t.replace(f"[connector.rest.{FAMILY}]", "[connector.rest.penalties]"), "rest.penalties: family 'penalties' is not mapped"),
        (lambda t: t.replace('next = "data.next"', 'nxt = "data.next"'), "unknown option 'nxt'"),
        (lambda t: t.replace('next = "data.next"', 'cursor_param = "page"'), "cursor_param needs next"),
        (lambda t: t.replace(BASE, "ftp://127.0.0.1/"), "base_url: must be an http:// or https:// URL"),
        (lambda t: t.replace(BASE, "http://reader:pw@127.0.0.1"), "must not carry credentials"),
        (lambda t: t + "", None),
        (lambda t: t.replace("batch_size = 3", "batch_size = 3\nverify = false"), "verification cannot be switched off"),
        (lambda t: t.replace("batch_size = 3", "batch_size = 3\nkey_concurrency = 0"), "key_concurrency: must be a whole number"),
        (lambda t: t.replace("batch_size = 3", 'batch_size = 3\nheaders = { Authorization = "Basic x" }'), "belong in auth"),
        (lambda t: t.replace("batch_size = 3", 'batch_size = 3\nproxy = "x"'), "unknown option 'proxy' for a rest connector"),
        (lambda t: t.replace(f'base_url = "{BASE}"', ""), "a rest connector needs 'base_url'"),
        (lambda t: t.replace("batch_size = 3", f'batch_size = 3\nsearch = {{ family = "{FAMILY}", field = "debtor_name" }}'),
         f"rest.{FAMILY}.search"),
        (lambda t: t.replace('key = "bzxr.zjhm"', 'key = "bzxr.zjhm"\nschema = "court"'), "schema does not apply"),
        (lambda t: t.replace('type = "api_key", header = "X-Api-Key", value_env = "COURT_API_KEY"',
                             'type = "mtls", cert_file = "c.pem", key_file = "k.pem"'), "auth.cert_file: no such file"),
    ],
)
def test_configuration_mistakes_are_reported_at_load_time(tmp_path, change, message):
    text = change(court_toml(BASE))
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    if message is None:  # the unchanged configuration loads
        assert isinstance(load_connectors(path, tmp_path)[0], RestConnector)
        return
    with pytest.raises(ConnectorConfigError) as error:
        load_connectors(path, tmp_path)
    assert message in str(error.value) and "connector[0] (courts)" in str(error.value)


def test_mutual_tls_needs_https_and_readable_certificates(tmp_path):
    pem = _certificates(tmp_path)
    mtls = f'{{ type = "mtls", cert_file = "{pem["client"]}", key_file = "{pem["client_key"]}" }}'
    with pytest.raises(ConnectorConfigError, match="mutual TLS needs an https:// URL"):
        load(tmp_path, court_toml(BASE, auth=mtls))
    wrong_key = mtls.replace(str(pem["client_key"]), str(pem["server_key"]))
    with pytest.raises(ConnectorConfigError, match="cannot load the TLS files"):
        load(tmp_path, court_toml(BASE.replace("http:", "https:"), auth=wrong_key))
    assert isinstance(load(tmp_path, court_toml(BASE.replace("http:", "https:"), auth=mtls)), RestConnector)


def test_a_secret_is_never_echoed_in_configuration_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("COURT_API_KEY", "s3cr3t-value\x07")
    with pytest.raises(ConnectorConfigError) as error:
        load(tmp_path, court_toml(BASE))
    assert "COURT_API_KEY" in str(error.value) and "s3cr3t" not in str(error.value)


# ---- the demo district's court ------------------------------------------------------------------
def test_the_demo_courts_database_is_served_in_the_courts_shape(tmp_path):
    from xinlian.hub.demo.generator import build_demo_district

    district = build_demo_district(tmp_path, legal_persons=40, natural_persons=12)
    records = load_court_records(district.databases["courts"])
    debtor = district.samples["judgment_debtor"]
    (first,) = records[debtor]
    assert first["bzxr"]["zjhm"] == debtor and first["zxfy"]["mc"] == COURT
    assert dt.date.fromisoformat(first["larq"]) < dt.date.fromisoformat(first["fbrq"])
    assert district.samples["clean"] not in records
