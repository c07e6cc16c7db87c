"""OpenTelemetry traces of the hub and its department calls: optional, off by default.

`XINLIAN_TRACING` (settings `tracing`) turns them on: `otlp` exports over OTLP/HTTP (the standard
`OTEL_EXPORTER_OTLP_*` variables say where; `OTEL_SERVICE_NAME` names the service, default
`xinlian-hub`), `console` prints each span to stdout for local debugging, `off` (the default)
traces nothing. On, the SDK comes from the `tracing` extra (`pip install 'xinlian[tracing]'`).

Off, nothing of OpenTelemetry is imported and nothing is created on the request path: the
gateway, the schema and the connectors check one module-level value (`ENABLED` here, the hooks
`connectors.resilience.TRACE_ATTEMPT` and `connectors.http.TRACE_HEADERS`, None while off) and go
their usual way.

On, `start()` (called once by `HubRuntime.open`, before the schemas are built) makes a
`TracerProvider` of the hub's own — not the process-wide global one: nothing else in the process
is traced through it — and `stop()` (`HubRuntime.close`) flushes and shuts it down. Spans:

* one SERVER span per request, in the gateway (`begin_request`): `POST /graphql` (the method and
  the entry point's route template, never the path a caller sent: `/s/{uscc}` stays a template),
  with `http.request.method`, `http.route`, `http.response.status_code`, `xinlian.endpoint`,
  `xinlian.request_id` (the `X-Request-Id` of the response, the audit entry's `request_id`),
  `xinlian.outcome` (the audit outcome), `xinlian.client_kind` and, for a client that is not a
  subject's own, `xinlian.client_id`. A caller's W3C `traceparent` makes it a child of the
  caller's span (its `tracestate` and baggage are not read);
* children for the pipeline's stages (`stage`): `admission` (with `xinlian.rule`),
  `authentication`, `purpose`, `read body`, `audit write`; and, in a GraphQL request, `graphql
  parse`, `graphql validate`, `graphql execute` (`GraphQLStages`, with `graphql.operation.type`);
* one CLIENT span per department call attempt (`department <connector>`, retries are attempts of
  their own) with `xinlian.connector`, `xinlian.connector.kind`, `xinlian.department`,
  `xinlian.retry` (0 for the first attempt), `xinlian.outcome` (as the department histogram's:
  success, failure, invalid, neutral, bad_input — or `rejected`, with `xinlian.reason`), and
  `xinlian.reason` of a failure (timeout, unreachable, http_status, ...). Its context goes to the
  department as `traceparent` on the REST and GraphQL connectors' requests, so the department's
  own tracing can join.

No personal data, no secrets: span names and attributes are entry points, routes, stages,
connectors, departments, outcomes, reasons, the request id and the client — never a subject's
identifier, a query document or its variables, a token, a record value, an error message
(messages can quote values) or an address. Exceptions are not recorded as span events (their
messages and tracebacks could hold any of those): a failed span carries only `error.type`, the
exception's class name. tests/test_tracing.py checks every attribute of a traced request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Iterator, Mapping, TypeVar

from strawberry.extensions import SchemaExtension

from xinlian.connectors.contract import CallerInputError, ConnectorError, UpstreamInvalid

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.util.types import AttributeValue
    from starlette.requests import Request

    from xinlian.connectors.resilience import DepartmentLink
    from xinlian.hub.audit.record import AccessRecord
    from xinlian.hub.config import Settings
    from xinlian.hub.gateway.profile import EntryPoint

log = logging.getLogger("xinlian.tracing")
T = TypeVar("T")

MODES = ("off", "otlp", "console")
SERVICE_NAME = "xinlian-hub"
INSTRUMENTATION = "xinlian.hub"
# W3C methods a span may be named after; any other token (the gateway hands every method on) is "_OTHER"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

ENABLED = False  # read on the request path; while False nothing below is called
_tracer: "Tracer | None" = None
_provider: "TracerProvider | None" = None
_users = 0  # runtimes of this process that opened with tracing on (several only in tests)
_exporter_override: "SpanExporter | None" = None
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def tracing_mode(value: str | None) -> str:
    """`XINLIAN_TRACING`: off (the default, also for an empty value), otlp or console."""
    mode = (value or "off").strip().lower() or "off"
    if mode not in MODES:
        raise ValueError(f"XINLIAN_TRACING must be one of {', '.join(MODES)}, not {value!r}")
    return mode


class Tracing:
    """A runtime's hold on the process's tracing (`start` returns it, `stop` lets it go)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stopped = False


@contextlib.contextmanager
def exporting_to(exporter: "SpanExporter") -> Iterator[None]:
    """For tests: a runtime that opens inside the block with tracing on (any mode) exports to
    `exporter` (e.g. the SDK's `InMemorySpanExporter`) span by span, as each span ends."""
    global _exporter_override
    before, _exporter_override = _exporter_override, exporter
    try:
        yield
    finally:
        _exporter_override = before


def start(settings: "Settings") -> Tracing | None:
    """Set tracing up for this process if `settings.tracing` asks for it; None when off.

    Called by `HubRuntime.open` before it builds the schemas (they get `GraphQLStages` while
    tracing is on). A second runtime of the same process shares the first one's provider.
    """
    global ENABLED, _tracer, _provider, _users
    mode = tracing_mode(settings.tracing)
    if mode == "off":
        return None
    if _provider is None:
        from xinlian.connectors import http as connector_http
        from xinlian.connectors import resilience

        _provider = _make_provider(mode)
        _tracer = _provider.get_tracer(INSTRUMENTATION, _version())
        resilience.TRACE_ATTEMPT = traced_attempt
        connector_http.TRACE_HEADERS = trace_headers
        ENABLED = True
        log.info("tracing on: %s", "a test exporter" if _exporter_override is not None else mode)
    _users += 1
    return Tracing(mode)


async def stop(handle: Tracing | None) -> None:
    """Let go of `handle`; the last runtime to let go flushes the spans left and shuts down."""
    global ENABLED, _tracer, _provider, _users
    if handle is None or handle.stopped:
        return
    handle.stopped = True
    _users -= 1
    if _users > 0 or _provider is None:
        return
    from xinlian.connectors import http as connector_http
    from xinlian.connectors import resilience

    provider = _provider
    ENABLED, _tracer, _provider = False, None, None
    resilience.TRACE_ATTEMPT = None
    connector_http.TRACE_HEADERS = None
    await asyncio.to_thread(provider.shutdown)  # the batch exporter's last send may take its timeout


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xinlian")
    except PackageNotFoundError:
        return "unknown"


def _make_provider(mode: str) -> "TracerProvider":
    """The SDK's provider with the exporter `mode` names (or the test override)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise RuntimeError(
            f"XINLIAN_TRACING={mode} needs the OpenTelemetry SDK: pip install 'xinlian[tracing]'"
        ) from exc
    resource = Resource.create({"service.version": _version()})  # reads OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # sampler: OTEL_TRACES_SAMPLER
    if _exporter_override is not None:
        provider.add_span_processor(SimpleSpanProcessor(_exporter_override))
    elif mode == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        try:
            # the exporter is in the `tracing` extra only, not in `test` (mypy may not see it)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise RuntimeError(
                "XINLIAN_TRACING=otlp needs the OTLP exporter: pip install 'xinlian[tracing]'"
            ) from exc
        # endpoint, headers, timeout, compression, certificates: OTEL_EXPORTER_OTLP_[TRACES_]* variables
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


# ---- spans ---------------------------------------------------------------------------------


def _failed(span: "Span", exc: BaseException) -> None:
    """Mark `span` failed by the class of `exc` only (a message could quote a value)."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR))


@contextlib.contextmanager
def _span(name: str, attributes: "Mapping[str, AttributeValue] | None", kind: Any = None) -> Iterator["Span"]:
    assert _tracer is not None
    options: dict[str, Any] = {"record_exception": False, "set_status_on_exception": False}
    if kind is not None:
        options["kind"] = kind
    with _tracer.start_as_current_span(name, attributes=attributes, **options) as span:
        try:
            yield span
        except BaseException as exc:
            _failed(span, exc)
            raise


def stage(name: str, attributes: "Mapping[str, AttributeValue] | None" = None) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one for a pipeline stage; a shared no-op while tracing is off."""
    if not ENABLED:
        return _NO_SPAN
    return _span(name, attributes)


class RequestTrace:
    """The server span of one request while the gateway serves it (`begin_request` ... `end`)."""

    __slots__ = ("span", "token", "record", "status")

    def __init__(self, span: "Span", token: "Token[Context]") -> None:
        self.span, self.token = span, token
        self.record: "AccessRecord | None" = None  # the request's audit record, once the gateway made it
        self.status: int | None = None  # the response's status, once there is one

    def end(self, outcome: str) -> None:
        """Name the outcome, the request and the caller on the span, end it, restore the context."""
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        span, record = self.span, self.record
        try:
            span.set_attribute("xinlian.outcome", outcome)
            if record is not None:
                span.set_attribute("xinlian.request_id", record.request_id)
                principal = record.principal
                if principal is not None:
                    span.set_attribute("xinlian.client_kind", principal.kind)
                    if principal.client_id is not None and principal.kind != "subject":  # a subject's client may name them
                        span.set_attribute("xinlian.client_id", principal.client_id)
            if self.status is None:  # the pipeline raised: Starlette answers 500
                span.set_attribute("error.type", "exception")
                span.set_status(Status(StatusCode.ERROR))
            else:
                span.set_attribute("http.response.status_code", self.status)
                if self.status >= 500:
                    span.set_attribute("error.type", str(self.status))
                    span.set_status(Status(StatusCode.ERROR))
        finally:
            span.end()
            context.detach(self.token)


def _caller_context(request: "Request") -> "Context | None":
    """The caller's trace context from its W3C `traceparent` (only that header: no tracestate,
    no baggage, so nothing a caller sends is passed on to departments but the ids)."""
    traceparent = request.headers.get("traceparent")
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def begin_request(request: "Request", entry_point: "EntryPoint") -> RequestTrace:
    """Start the server span of `request` and make it current (call only while `ENABLED`)."""
    from opentelemetry import context, trace

    assert _tracer is not None
    method = request.method if request.method in KNOWN_METHODS else "_OTHER"
    route = entry_point.path  # the route template, never the path sent (it may hold a subject's code)
    span = _tracer.start_span(
        f"{method} {route}",
        context=_caller_context(request),
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "http.route": route,
            "xinlian.endpoint": entry_point.name or entry_point.path,
        },
        record_exception=False,
        set_status_on_exception=False,
    )
    return RequestTrace(span, context.attach(trace.set_span_in_context(span)))


def _attempt_outcome(error: ConnectorError | None) -> tuple[str, str | None]:
    """(outcome, reason) of an attempt, as `DepartmentLink` counts it."""
    if error is None:
        return "success", None
    if isinstance(error, UpstreamInvalid):
        return "invalid", error.reason
    if isinstance(error, CallerInputError):
        return "bad_input", error.reason
    if error.reason == "deadline":
        return "neutral", error.reason
    return "failure", error.reason


async def traced_attempt(
    link: "DepartmentLink", retry: int, attempt: Awaitable[tuple[T | None, ConnectorError | None, bool]]
) -> tuple[T | None, ConnectorError | None, bool]:
    """One department call attempt inside its CLIENT span (`connectors.resilience.TRACE_ATTEMPT`)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from xinlian.connectors.resilience import CallRejected

    connector = link.connector
    attributes: dict[str, AttributeValue] = {
        "xinlian.connector": connector.name,
        "xinlian.department": connector.department,
        "xinlian.retry": retry,
    }
    kind = getattr(connector, "kind", None)
    if isinstance(kind, str):
        attributes["xinlian.connector.kind"] = kind
    with _span(f"department {connector.name}", attributes, SpanKind.CLIENT) as span:
        try:
            outcome = await attempt
        except CallRejected as rejected:  # circuit open, busy, no time left: not asked
            span.set_attribute("xinlian.outcome", "rejected")
            span.set_attribute("xinlian.reason", rejected.reason)
            raise
        name, reason = _attempt_outcome(outcome[1])
        span.set_attribute("xinlian.outcome", name)
        if reason:
            span.set_attribute("xinlian.reason", reason)
        if name == "failure":
            span.set_status(Status(StatusCode.ERROR))
        return outcome


def trace_headers() -> dict[str, str]:
    """The current span's W3C `traceparent`, for a department request (`connectors.http.TRACE_HEADERS`)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return {"traceparent": carrier["traceparent"]} if "traceparent" in carrier else {}


class GraphQLStages(SchemaExtension):
    """Strawberry extension (added to the schemas while tracing is on): spans for parsing,
    validating and executing the operation — the operation's type, never its document or variables."""

    def on_parse(self) -> Iterator[None]:
        with stage("graphql parse"):
            yield

    def on_validate(self) -> Iterator[None]:
        with stage("graphql validate"):
            yield

    def on_execute(self) -> Iterator[None]:
        with stage("graphql execute") as span:
            if span is not None:
                try:
                    span.set_attribute("graphql.operation.type", self.execution_context.operation_type.value)
                except (RuntimeError, AttributeError):  # no operation could be told: no type to name
                    pass
            yield


def schema_extensions() -> list[Any]:
    """Extensions for a schema built now: `[GraphQLStages]` while tracing is on, else none."""
    return [GraphQLStages] if ENABLED else []


__all__ = [
    "ENABLED", "MODES", "GraphQLStages", "RequestTrace", "Tracing", "begin_request", "exporting_to",
    "schema_extensions", "stage", "start", "stop", "trace_headers", "traced_attempt", "tracing_mode",
]
