"""`GET /metrics` on a running hub: who may read it, and that the figures follow real requests
(requests by entry point and outcome, department calls by connector, the audit writer, the
public record cache, admission refusals, circuit state)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub_fixture import NO_RATE_LIMITS, RunningHub, healthy, running_hub, serve_process, wait_until
from xinlian.hub.gateway.addresses import parse_networks

PROFILE = """
query Profile($uscc: String!) {
  legalPerson(uscc: $uscc) {
    uscc name
    registration { status legalRepresentative }
    penalties { decisionNumber severity }
    judgmentDebtorRecords { caseNumber court }
  }
}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    data_dir: Path = tmp_path_factory.mktemp("observability")
    rules = dataclasses.replace(NO_RATE_LIMITS, public_ip="4/minute")  # a refusal is easy to cause
    with running_hub(data_dir, legal_persons=30, natural_persons=5, rate_limits=rules) as running:
        federation = running.runtime.federation  # PUBLIC records may be reused for a minute (cache_ttl = 60)
        federation.departments[:] = [dataclasses.replace(d, cache_ttl=60.0) for d in federation.departments]
        federation._by_name = {d.name: d for d in federation.departments}
        yield running


def scrape(hub: RunningHub) -> dict[str, float]:
    """`/metrics` read with the admin token: {'name{label="v",...}': value}."""
    response = hub.http.get("/metrics", headers={"Authorization": f"Bearer {hub.token('admin')}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def value(samples: dict[str, float], pattern: str) -> float:
    """The sum of the samples whose key matches `pattern` (a regular expression)."""
    return sum(v for k, v in samples.items() if re.fullmatch(pattern, k))


def test_the_metrics_are_not_for_everyone(hub: RunningHub) -> None:
    assert hub.http.get("/metrics").status_code == 403
    bank = hub.http.get("/metrics", headers={"Authorization": f"Bearer {hub.token('bank')}"})
    assert bank.status_code == 403
    assert hub.http.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_a_monitoring_address_reads_them_without_a_token(hub: RunningHub) -> None:
    runtime = hub.runtime
    before = runtime.settings
    runtime.settings = dataclasses.replace(before, monitoring_addresses=parse_networks(["127.0.0.1/32"]))
    try:
        response = hub.http.get("/metrics")
    finally:
        runtime.settings = before
    assert response.status_code == 200 and "xinlian_request_duration_seconds" in response.text


def test_requests_department_calls_audit_and_cache_are_counted(hub: RunningHub) -> None:
    before = scrape(hub)
    uscc = hub.samples["multi_department_penalties"]
    for _ in range(3):
        answer = hub.query(PROFILE, "department", {"uscc": uscc})
        assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    after = scrape(hub)
    ok = r'xinlian_request_duration_seconds_count\{endpoint="graphql",outcome="ok"\}'
    assert value(after, ok) - value(before, ok) == 3
    tokens = r'xinlian_request_duration_seconds_count\{endpoint="oauth_token",outcome="ok"\}'
    assert value(after, tokens) - value(before, tokens) >= 3  # hub.query gets a token per call
    calls = r'xinlian_department_call_duration_seconds_count\{connector="[^"]+",outcome="success"\}'
    assert value(after, calls) - value(before, calls) >= 3
    connectors = {m.group(1) for k in after if (m := re.match(r'xinlian_department_circuit_state\{connector="([^"]+)"\}', k))}
    assert connectors == {c.name for c in hub.runtime.federation.connectors}
    assert value(after, r"xinlian_department_circuit_state\{.*\}") == 0  # every circuit closed
    entries = r"xinlian_audit_entries_total\{\}"
    assert value(after, entries) - value(before, entries) >= 6  # 3 queries + 3 token requests (and the scrape's token)
    assert value(after, r"xinlian_audit_batch_entries_count\{\}") >= value(before, r"xinlian_audit_batch_entries_count\{\}") + 1
    assert value(after, r"xinlian_audit_queue_depth\{\}") == 0
    assert value(after, r"xinlian_audit_failed_batches_total\{\}") == 0
    # one process: it takes each department's whole budget, and follows the store's changes
    assert value(after, r"xinlian_cluster_processes\{\}") == 1
    assert value(after, r"xinlian_change_feed_age_seconds\{\}") < 5
    assert value(after, r"xinlian_change_feed_reads_total\{\}") >= 1
    budgets = {c.name: hub.runtime.federation.department(c.name).link.policy.max_concurrency for c in hub.runtime.federation.connectors}
    assert all(value(after, rf'xinlian_department_slots\{{connector="{name}"\}}') == budget for name, budget in budgets.items())


def test_public_cache_hits_and_admission_refusals_are_counted(hub: RunningHub) -> None:
    before = scrape(hub)
    uscc = hub.samples["multi_department_penalties"]
    statuses = [hub.query(PROFILE, None, {"uscc": uscc}).status_code for _ in range(6)]
    assert statuses.count(429) >= 2 and statuses[0] == 200  # public_ip is 4/minute
    after = scrape(hub)
    hits = r'xinlian_cache_lookups_total\{result="hit"\}'
    assert value(after, hits) > value(before, hits)  # the public answers came from the cache the second time
    refused = r'xinlian_admission_refusals_total\{endpoint="public_graphql",rule="[^"]+"\}'
    assert value(after, refused) - value(before, refused) == statuses.count(429)
    rejected = r'xinlian_request_duration_seconds_count\{endpoint="public_graphql",outcome="refused"\}'
    assert value(after, rejected) - value(before, rejected) == statuses.count(429)


def test_no_client_subject_or_address_appears_in_the_metrics(hub: RunningHub) -> None:
    uscc = hub.samples["multi_department_penalties"]
    hub.query(PROFILE, "department", {"uscc": uscc})
    text = hub.http.get("/metrics", headers={"Authorization": f"Bearer {hub.token('admin')}"}).text
    assert uscc not in text and "127.0.0.1" not in text
    assert all(client["client_id"] not in text for client in hub.clients.values())


def test_json_logs_carry_the_request_id_and_no_secrets(tmp_path: Path) -> None:
    """`xinlian serve` with XINLIAN_LOG_FORMAT=json: every stderr line is a JSON object, and the
    access line of a request names the same request id as its X-Request-Id header."""
    server, port = serve_process(tmp_path / "hub", {"XINLIAN_LOG_FORMAT": "json"})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_until(lambda: healthy(http), seconds=60, what="the hub to start")
            health = http.get("/healthz")
            refused = http.post("/graphql", json={"query": "{ __typename }"},
                                headers={"Authorization": "Bearer secret-looking-token-value"})
            assert refused.status_code == 401
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is JSON
    assert lines and all({"at", "level", "logger", "message", "requestId"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line["requestId"] == health.headers["x-request-id"] and "/healthz" in line["message"] for line in access)
    assert any(line["requestId"] == refused.headers["x-request-id"] for line in access)
    assert "secret-looking-token-value" not in stderr


