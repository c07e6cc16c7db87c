"""`HubMetrics`: the hub's Prometheus metrics, served at `GET /metrics` (observability.md).

Two kinds, to keep the request path cheap:

* **observed** on the path, one histogram observation each (a label child looked up once and
  kept): request latency per entry point and outcome (the gateway), each department call's
  latency per connector and outcome (`DepartmentLink.observer`), each audit batch's write time
  and size (`AuditTrail.observer`), admission refusals per entry point and rate rule;
* **read at scrape time** from state the hub keeps anyway (`HubCollector`): every department's
  circuit state, in-flight calls, refused calls and retries (attempts per outcome are the
  department histogram's counts); the audit writer's queue
  depth and batch counters; the public record cache's hits, misses and size.

Labels are entry point names, outcomes, connector names and rule names — never a client, a
subject, an address or anything from a request. Each runtime has its own `CollectorRegistry`
(several hubs in one test process do not mix).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from xinlian.connectors.resilience import CircuitState

if TYPE_CHECKING:
    from xinlian.hub.audit.trail import AuditTrail
    from xinlian.hub.cluster.changes import ChangeFeed
    from xinlian.hub.cluster.members import ClusterMembers
    from xinlian.hub.executor import Federation
    from xinlian.hub.executor.cache import PublicRecordCache

CONTENT_TYPE = CONTENT_TYPE_LATEST
# seconds: from a cached public answer (sub-millisecond) to the 30 s request timeout
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class HubMetrics:
    """The metrics of one hub runtime; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Histogram(
            "xinlian_request_duration_seconds", "Requests by entry point and outcome, time until the response",
            ["endpoint", "outcome"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self._refusals = Counter(
            "xinlian_admission_refusals", "Requests refused by a rate rule or a lockout, by entry point and rule",
            ["endpoint", "rule"], registry=self.registry,
        )
        self._department_calls = Histogram(
            "xinlian_department_call_duration_seconds", "Calls to a department's system, by connector and outcome",
            ["connector", "outcome"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self._audit_writes = Histogram(
            "xinlian_audit_write_duration_seconds", "Audit batches: time from taking them to the commit",
            registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self._audit_batch = Histogram(
            "xinlian_audit_batch_entries", "Audit entries per committed batch (group commit)",
            registry=self.registry, buckets=BATCH_BUCKETS,
        )
        self._children: dict[tuple[str, str, str], Callable[[float], None]] = {}

    def _child(self, family: Histogram, kind: str, a: str, b: str) -> Callable[[float], None]:
        key = (kind, a, b)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(a, b).observe
        return found

    def request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self._child(self._requests, "request", endpoint, outcome)(seconds)

    def refusal(self, endpoint: str, rule: str) -> None:
        self._refusals.labels(endpoint, rule).inc()

    def department_observer(self, connector: str) -> Callable[[str, float], None]:
        """What a `DepartmentLink` calls after each attempt: (outcome, seconds)."""

        def observe(outcome: str, seconds: float) -> None:
            self._child(self._department_calls, "department", connector, outcome)(seconds)

        return observe

    def audit_batch(self, entries: int, seconds: float) -> None:
        self._audit_writes.observe(seconds)
        self._audit_batch.observe(entries)

    def watch(self, federation: "Federation", audit: "AuditTrail", cache: "PublicRecordCache") -> None:
        """Read these at scrape time (and attach the per-call observers)."""
        for department in federation.departments:
            department.link.observer = self.department_observer(department.name)
        audit.observer = self.audit_batch
        self.registry.register(HubCollector(federation, audit, cache))

    def watch_cluster(self, changes: "ChangeFeed", members: "ClusterMembers") -> None:
        """Read the change feed's and the cluster's state at scrape time."""
        self.registry.register(ClusterCollector(changes, members))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HubCollector(Collector):
    """Gauges and counters read from the hub's own state when Prometheus scrapes."""

    def __init__(self, federation: "Federation", audit: "AuditTrail", cache: "PublicRecordCache") -> None:
        self.federation = federation
        self.audit = audit
        self.cache = cache

    def collect(self) -> Iterable[Metric]:
        circuit = GaugeMetricFamily(
            "xinlian_department_circuit_state", "Circuit breaker per connector: 0 closed, 1 half-open, 2 open",
            labels=["connector"],
        )
        in_flight = GaugeMetricFamily("xinlian_department_in_flight", "Calls in flight per connector", labels=["connector"])
        slots = GaugeMetricFamily(
            "xinlian_department_slots", "This process's share of the connector's concurrency budget", labels=["connector"]
        )
        rejected = CounterMetricFamily(
            "xinlian_department_rejected", "Calls refused without asking the department (circuit open, busy, no time)",
            labels=["connector"],
        )
        retries = CounterMetricFamily("xinlian_department_retries", "Attempts that were retries", labels=["connector"])
        for status in self.federation.status():
            circuit.add_metric([status.connector], CIRCUIT_VALUES[status.state])
            in_flight.add_metric([status.connector], status.in_flight)
            slots.add_metric([status.connector], status.slots if status.slots is not None else status.max_concurrency)
            rejected.add_metric([status.connector], status.rejected)
            retries.add_metric([status.connector], status.retries)
        yield from (circuit, in_flight, slots, rejected, retries)
        yield GaugeMetricFamily("xinlian_audit_queue_depth", "Audit entries waiting for the writer", value=self.audit.queue_depth)
        yield CounterMetricFamily("xinlian_audit_entries", "Audit entries committed", value=self.audit.entries)
        yield CounterMetricFamily("xinlian_audit_batches", "Audit batches committed", value=self.audit.batches)
        yield CounterMetricFamily(
            "xinlian_audit_failed_batches", "Audit batches rolled back (their requests were answered 503)",
            value=self.audit.failed_batches,
        )
        lookups = CounterMetricFamily("xinlian_cache_lookups", "Public record cache look-ups by result", labels=["result"])
        lookups.add_metric(["hit"], self.cache.hits)
        lookups.add_metric(["miss"], self.cache.misses)
        yield lookups
        yield GaugeMetricFamily("xinlian_cache_entries", "Records held by the public record cache", value=len(self.cache))


class ClusterCollector(Collector):
    """The hub processes sharing the store, and how fresh this process's view of the store is."""

    def __init__(self, changes: "ChangeFeed", members: "ClusterMembers") -> None:
        self.changes = changes
        self.members = members

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("xinlian_cluster_processes", "Live hub processes sharing the store", value=self.members.count)
        yield GaugeMetricFamily(
            "xinlian_change_feed_age_seconds", "Seconds since this process last read the store's change counters",
            value=self.changes.age(),
        )
        yield CounterMetricFamily("xinlian_change_feed_reads", "Reads of the store's change counters", value=self.changes.reads)
