"""OpenTelemetry traces on a running hub (hub/observability/tracing.py, docs/observability.md).

A real hub on loopback over the demo district, with tracing on and its spans sent to the SDK's
`InMemorySpanExporter` (`tracing.exporting_to`); the court's REST API and the regional
platform's GraphQL service are real loopback servers that record the headers they receive.
Checked: one trace per request, with the pipeline's stages and one span per department call
attempt inside it; a caller's `traceparent` is the parent; the departments receive the trace
context of their call's span; no subject identifier, token, variable, record value or address in
any span. In separate processes: with tracing off nothing of the SDK is imported and no span
is made; `xinlian serve` with `XINLIAN_TRACING=otlp` exports to a real OTLP/HTTP receiver, and with
`console` prints its spans.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk.trace", reason="the tracing tests need opentelemetry-sdk (the test extra)")

from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from department_fixtures import TOKEN, TOKEN_ENV, region_toml  # noqa: E402
from hub_fixture import NO_RATE_LIMITS, RunningHub, healthy, serve_process, wait_until  # noqa: E402
from regional_platform import RegionalPlatform, sample_enterprises  # noqa: E402
from servers import serve_app  # noqa: E402
from xinlian.hub.app import create_app  # noqa: E402
from xinlian.hub.cli.demo import ensure_demo_clients  # noqa: E402
from xinlian.hub.config import Settings  # noqa: E402
from xinlian.hub.demo.court_service import court_api_key, court_app, load_court_records  # noqa: E402
from xinlian.hub.demo.generator import build_demo_district  # noqa: E402
from xinlian.hub.demo.services import point_court_connector  # noqa: E402
from xinlian.hub.guard.rate_limits import CLIENT, GRAPHQL_IP  # noqa: E402
from xinlian.hub.observability import tracing  # noqa: E402
from xinlian.hub.serving import uvicorn_options  # noqa: E402

TESTS = Path(__file__).resolve().parent
PROFILE = """
query Profile($uscc: String!) {
  legalPerson(uscc: $uscc) {
    uscc name
    registration { status legalRepresentative }
    penalties { decisionNumber }
    judgmentDebtorRecords { caseNumber court }
    honors { honorName }
  }
}
"""
PERSON = "query($id: String!) { naturalPerson(idNumber: $id) { idNumber judgmentDebtorRecords { caseNumber debtorName } } }"
STAGES = {"admission", "authentication", "purpose", "read body", "graphql parse", "graphql validate",
          "graphql execute", "audit write"}
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


class HeaderRecorder:
    """ASGI wrapper: records the headers of every HTTP request the wrapped app receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        await self.app(scope, receive, send)


@dataclass
class TracedHub:
    hub: RunningHub
    spans: InMemorySpanExporter
    court: HeaderRecorder  # the court's REST API (the `courts` connector)
    region: RegionalPlatform  # the regional platform's GraphQL service (a `region` connector added)

    def trace_of(self, request_id: str) -> list[ReadableSpan]:
        """Every span of the trace whose server span names `request_id` (the server span first)."""
        spans = self.spans.get_finished_spans()
        server = [s for s in spans if (s.attributes or {}).get("xinlian.request_id") == request_id]
        assert len(server) == 1, f"{len(server)} server spans for request {request_id}"
        assert server[0].context is not None
        trace_id = server[0].context.trace_id
        rest = [s for s in spans if s.context is not None and s.context.trace_id == trace_id and s is not server[0]]
        return [server[0], *rest]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedHub]:
    data_dir: Path = tmp_path_factory.mktemp("tracing")
    district = build_demo_district(data_dir, legal_persons=30, natural_persons=5)
    settings = Settings.from_env(data_dir, database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    settings = dataclasses.replace(settings, rate_limits=NO_RATE_LIMITS, tracing="otlp")
    clients = asyncio.run(ensure_demo_clients(settings, dict(district.samples)))
    court = HeaderRecorder(court_app(load_court_records(data_dir / "departments" / "courts.db"), court_api_key(data_dir)))
    region = RegionalPlatform(sample_enterprises(), token=TOKEN)
    previous_token = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = TOKEN
    exporter = InMemorySpanExporter()
    try:
        with serve_app(court) as court_url, serve_app(region.app()) as region_url:
            connectors = data_dir / "connectors.toml"
            point_court_connector(connectors, court_url)
            with connectors.open("a", encoding="utf-8") as file:
                file.write(region_toml(region_url, batch_size=50))
            with tracing.exporting_to(exporter):
                app = create_app(settings)
                with serve_app(app, **uvicorn_options(settings)) as base_url, \
                        httpx.Client(base_url=base_url, timeout=30) as client:
                    hub = RunningHub(base_url, app, data_dir, clients, dict(district.samples), client)
                    yield TracedHub(hub, exporter, court, region)
    finally:
        if previous_token is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous_token
    assert not tracing.ENABLED  # the runtime's close let go of it


def query(traced: TracedHub, document: str, variables: dict[str, Any], **headers: str) -> httpx.Response:
    """POST `document` to /graphql as the demo department client (its token fetched first)."""
    token = traced.hub.token("department")
    response = traced.hub.http.post(
        "/graphql", json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {token}", **headers},
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    return response


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def ancestors(spans: list[ReadableSpan], span: ReadableSpan) -> list[str]:
    """The names of the spans above `span`, nearest first."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def test_one_trace_per_request_with_its_stages_and_department_calls(traced: TracedHub) -> None:
    uscc = traced.hub.samples["multi_department_penalties"]
    response = query(traced, PROFILE, {"uscc": uscc})
    request_id = response.headers["x-request-id"]
    server, *inside = traced.trace_of(request_id)

    assert server.name == "POST /graphql" and server.parent is None  # a root: no caller's context was sent
    assert server.kind.name == "SERVER"
    attributes = dict(server.attributes or {})
    department = traced.hub.clients["department"]["client_id"]
    assert attributes == {
        "http.request.method": "POST", "http.route": "/graphql", "http.response.status_code": 200,
        "xinlian.endpoint": "graphql", "xinlian.request_id": request_id, "xinlian.outcome": "ok",
        "xinlian.client_kind": "department", "xinlian.client_id": department,
    }
    stages = {s.name for s in children(inside, server)}
    assert STAGES <= stages, STAGES - stages
    admission = [s for s in inside if s.name == "admission"]
    assert {(s.attributes or {}).get("xinlian.rule") for s in admission} == {GRAPHQL_IP, CLIENT}
    execute = next(s for s in inside if s.name == "graphql execute")
    assert (execute.attributes or {}).get("graphql.operation.type") == "query"

    calls = [s for s in inside if s.name.startswith("department ")]
    connectors = {(s.attributes or {})["xinlian.connector"] for s in calls}
    assert {"market", "courts", "region"} <= connectors, connectors
    for call in calls:  # each attempt: a client span inside the execution, with what the link saw
        assert call.kind.name == "CLIENT" and "graphql execute" in ancestors(inside, call)
        call_attributes = dict(call.attributes or {})
        assert call_attributes["xinlian.outcome"] == "success" and call_attributes["xinlian.retry"] == 0
        assert call_attributes["xinlian.department"] and call_attributes["xinlian.connector.kind"] in (
            "sql", "rest", "graphql", "filedrop")
    # the token request before it was a trace of its own
    token_traces = [s for s in traced.spans.get_finished_spans() if s.name == "POST /oauth/token"]
    assert token_traces and all(s.context and s.context.trace_id != (server.context and server.context.trace_id)
                                for s in token_traces)


def test_a_callers_traceparent_makes_the_request_its_child(traced: TracedHub) -> None:
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced.court.seen.clear()
    response = query(
        traced, PROFILE, {"uscc": traced.hub.samples["multi_department_penalties"]},
        traceparent=f"00-{trace_id}-{span_id}-01", tracestate="caller=secret-state",
    )
    server, *_ = traced.trace_of(response.headers["x-request-id"])
    assert server.context is not None and server.parent is not None
    assert f"{server.context.trace_id:032x}" == trace_id
    assert f"{server.parent.span_id:016x}" == span_id and server.parent.is_remote
    assert not server.context.trace_state  # the caller's tracestate is not taken (nor passed on)
    assert traced.court.seen and all("tracestate" not in h for h in traced.court.seen)


def test_a_malformed_traceparent_starts_a_trace_of_our_own(traced: TracedHub) -> None:
    response = query(traced, PROFILE, {"uscc": traced.hub.samples["multi_department_penalties"]},
                     traceparent="00-not-a-trace-context")
    server, *_ = traced.trace_of(response.headers["x-request-id"])
    assert server.parent is None


def test_the_departments_receive_the_trace_context_of_their_call(traced: TracedHub) -> None:
    traced.court.seen.clear()
    traced.region.reset()
    response = query(traced, PROFILE, {"uscc": traced.hub.samples["multi_department_penalties"]})
    _, *inside = traced.trace_of(response.headers["x-request-id"])
    calls = {(s.attributes or {})["xinlian.connector"]: s for s in inside if s.name.startswith("department ")}

    received = {"courts": [h.get("traceparent") for h in traced.court.seen],
                "region": [r.headers.get("traceparent") for r in traced.region.received]}
    for connector, headers in received.items():
        assert headers, f"{connector} was not asked"
        span = calls[connector]
        assert span.context is not None
        for header in headers:  # the trace's id, and the department call's span as the parent
            assert header is not None, f"{connector} received no traceparent"
            match = TRACEPARENT.fullmatch(header)
            assert match, header
            assert match.group(1) == f"{span.context.trace_id:032x}"
            assert match.group(2) == f"{span.context.span_id:016x}"


def test_a_failed_department_call_is_a_failed_attempt_span_per_try(traced: TracedHub) -> None:
    traced.region.reset()
    traced.region.fault = "http500"
    try:
        token = traced.hub.token("department")
        response = traced.hub.http.post(
            "/graphql", json={"query": PROFILE, "variables": {"uscc": traced.hub.samples["multi_department_penalties"]}},
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        traced.region.reset()
    assert response.status_code == 200
    _, *inside = traced.trace_of(response.headers["x-request-id"])
    attempts = [dict(s.attributes or {}) for s in inside if s.name == "department region"]
    assert attempts and all(a["xinlian.outcome"] == "failure" and a["xinlian.reason"] for a in attempts)
    assert [a["xinlian.retry"] for a in attempts] == list(range(len(attempts)))  # retries are attempts of their own
    assert all(s.status.status_code.name == "ERROR" for s in inside if s.name == "department region")


def test_no_subject_token_variable_value_or_address_in_any_span(traced: TracedHub) -> None:
    hub = traced.hub
    traced.spans.clear()
    uscc, person = hub.samples["multi_department_penalties"], hub.samples["natural_debtor"]
    profile = query(traced, PROFILE, {"uscc": uscc}).json()["data"]["legalPerson"]
    debtor = query(traced, PERSON, {"id": person}).json()["data"]["naturalPerson"]
    public = hub.http.post("/public/graphql", json={"query": PROFILE, "variables": {"uscc": uscc}})
    inline = hub.http.post("/public/graphql", json={"query": f'{{ legalPerson(uscc: "{uscc}") {{ name }} }}'})
    refused = hub.http.post("/graphql", json={"query": "{ __typename }"},
                            headers={"Authorization": "Bearer secret-looking-token-value"})
    assert public.status_code == inline.status_code == 200 and refused.status_code == 401
    token = hub.token("department")
    spans = traced.spans.get_finished_spans()
    assert len({s.context.trace_id for s in spans if s.context}) >= 6

    text = "\n".join(s.to_json() for s in spans)  # names, attributes, events, links, status, resource
    secrets = {uscc, person, token, "secret-looking-token-value", "127.0.0.1",
               profile["name"], profile["registration"]["legalRepresentative"],
               debtor["judgmentDebtorRecords"][0]["caseNumber"], debtor["judgmentDebtorRecords"][0]["debtorName"],
               *(c["client_secret"] for c in hub.clients.values())}
    leaked = sorted(s for s in secrets if s and s in text)
    assert not leaked, f"found in spans: {leaked}"
    assert all(not s.events for s in spans)  # exceptions are not recorded as events (messages quote values)
    keys = {k for s in spans for k in (s.attributes or {})}
    assert keys <= {
        "http.request.method", "http.route", "http.response.status_code", "xinlian.endpoint", "xinlian.request_id",
        "xinlian.outcome", "xinlian.client_kind", "xinlian.client_id", "xinlian.rule", "graphql.operation.type",
        "xinlian.connector", "xinlian.connector.kind", "xinlian.department", "xinlian.retry", "xinlian.reason",
        "error.type",
    }, keys
    failed = next(s for s in spans if (s.attributes or {}).get("http.response.status_code") == 401)
    assert (failed.attributes or {})["xinlian.outcome"] == "rejected"
    assert "xinlian.client_id" not in (failed.attributes or {})


def test_the_tracing_setting() -> None:
    assert [tracing.tracing_mode(v) for v in (None, "", " OTLP ", "console", "off")] == [
        "off", "off", "otlp", "console", "off"]
    with pytest.raises(ValueError, match="XINLIAN_TRACING"):
        tracing.tracing_mode("jaeger")
    assert Settings.from_env("/tmp/unused").tracing in tracing.MODES


# ---- in processes of their own ----------------------------------------------------------------------

OFF_SCRIPT = """
import sys
from pathlib import Path

from xinlian.connectors import http, resilience
from xinlian.hub.observability import tracing

made = []
for name in ("begin_request", "_span", "traced_attempt", "trace_headers"):
    setattr(tracing, name, lambda *a, _n=name, **k: made.append(_n))

from hub_fixture import running_hub

with running_hub(Path(sys.argv[1]), legal_persons=20, natural_persons=5) as hub:
    uscc = hub.samples["multi_department_penalties"]
    answer = hub.query(
        "query($u: String!) { legalPerson(uscc: $u) { name judgmentDebtorRecords { caseNumber } } }",
        "department", {"u": uscc},
    )
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    assert hub.runtime.traces is None and not tracing.ENABLED
    assert resilience.TRACE_ATTEMPT is None and http.TRACE_HEADERS is None
    assert not any(isinstance(e, type) and issubclass(e, tracing.GraphQLStages) for e in hub.runtime.schema.extensions)
assert made == [], made
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.trace.propagation.")))
assert loaded == [], loaded
print("untraced")
"""


def test_with_tracing_off_no_span_is_made_and_no_sdk_is_imported(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    env.pop("XINLIAN_TRACING", None)
    done = subprocess.run([sys.executable, "-c", OFF_SCRIPT, str(tmp_path / "hub")], env=env, cwd=TESTS,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("untraced"), done.stderr[-3000:]


class OtlpReceiver(http.server.ThreadingHTTPServer):
    """A loopback OTLP/HTTP receiver: keeps every export request's body (protobuf)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str, bytes]] = []  # (path, content type, body)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.bodies.append((self.path, self.headers.get("content-type", ""), body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_xinlian_serve_exports_over_otlp_http(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the tracing extra (OTLP exporter)")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    receiver = OtlpReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {"XINLIAN_TRACING": "otlp", "OTEL_SERVICE_NAME": "xinlian-hub-test",
           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}"}
    server, port = serve_process(tmp_path / "hub", env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until(lambda: healthy(client), seconds=60, what="the hub to start")
            health = client.get("/healthz", headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
            refused = client.post("/graphql", json={"query": "{ __typename }"},
                                  headers={"Authorization": "Bearer secret-looking-token-value"})
            assert health.status_code == 200 and refused.status_code == 401
    finally:
        server.terminate()  # a graceful stop: the runtime's close flushes the batch of spans
        _, stderr = server.communicate(timeout=60)
        receiver.shutdown()
    assert receiver.bodies, f"nothing exported; the hub said: {stderr[-2000:]}"
    assert all(path == "/v1/traces" and kind == "application/x-protobuf" for path, kind, _ in receiver.bodies)
    spans, services = [], set()
    for _, _, body in receiver.bodies:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            spans += [span for scope in resource_spans.scope_spans for span in scope.spans]
    assert services == {"xinlian-hub-test"}
    by_name = {span.name: span for span in spans}
    assert {"GET /healthz", "POST /graphql", "authentication"} <= set(by_name), sorted(by_name)
    assert by_name["GET /healthz"].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    attributes = {a.key: a.value for a in by_name["GET /healthz"].attributes}
    assert attributes["xinlian.request_id"].string_value == health.headers["x-request-id"]
    assert b"secret-looking-token-value" not in b"".join(body for _, _, body in receiver.bodies)


def test_xinlian_serve_prints_spans_in_console_mode(tmp_path: Path) -> None:
    server, port = serve_process(tmp_path / "hub", {"XINLIAN_TRACING": "console"}, capture="stdout")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until(lambda: healthy(client), seconds=60, what="the hub to start")
            health = client.get("/healthz")
    finally:
        server.terminate()
        stdout, _ = server.communicate(timeout=60)
    assert '"name": "GET /healthz"' in stdout and health.headers["x-request-id"] in stdout


def test_the_spans_are_documented() -> None:
    """Every attribute a span may carry is named in docs/observability.md."""
    docs = (TESTS.parent / "docs" / "observability.md").read_text(encoding="utf-8")
    section = docs.split("## Traces", 1)[1]
    for name in ("xinlian.request_id", "xinlian.client_id", "xinlian.outcome", "xinlian.connector", "xinlian.retry",
                 "traceparent", "XINLIAN_TRACING", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"):
        assert name in section, name
