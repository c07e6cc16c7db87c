"""The demo district ships open cases (issue 12): an overdue objection with the court, one with
the market, an anonymous complaint awaiting triage, a repair application — seeded once, through
the same registers as `/graphql`, and visible where each party looks."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import pytest

from hub_fixture import NO_RATE_LIMITS, RunningHub, running_hub
from xinlian.hub.demo.cases import ensure_demo_cases


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("demo-cases"), rate_limits=NO_RATE_LIMITS) as running:
        yield running


def admin(hub: RunningHub, query: str) -> dict[str, Any]:
    response = hub.http.post("/admin/graphql", json={"query": query}, headers={"Authorization": f"Bearer {hub.token('admin')}"})
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def test_the_demo_seeds_its_open_cases_once(hub: RunningHub) -> None:
    done = asyncio.run(ensure_demo_cases(hub.runtime.settings, hub.samples))
    assert (done["objections"], done["complaints"], done["repairs"]) == (2, 1, 1), done
    saved = json.loads((hub.data_dir / "demo-cases.json").read_text(encoding="utf-8"))
    assert saved["trackingCode"] == done["trackingCode"]
    assert (hub.data_dir / "demo-cases.json").stat().st_mode & 0o077 == 0
    cases = admin(hub, "{ cases(first: 50) { id kind status department overdue subject records { family key } } }")["cases"]
    assert [c["kind"] for c in cases].count("objection") == 2
    overdue = [c for c in cases if c["overdue"]]
    assert [(c["kind"], c["department"], c["subject"]) for c in overdue] == [("objection", "courts", hub.samples["judgment_debtor"])]
    assert cases[0]["overdue"] is True  # overdue first
    by_kind = {c["kind"]: c for c in cases}
    assert by_kind["complaint"]["status"] == "filed" and by_kind["repair"]["department"] == "tax"
    # the court sees its overdue objection in its queue; the subject sees its own
    queue = hub.query("{ objections { totalOverdue items { id overdue } } }", "court").json()["data"]["objections"]
    assert queue["totalOverdue"] == 1
    mine = hub.query("{ objections { items { status department } } }", "subject").json()["data"]["objections"]["items"]
    assert {"status": "open", "department": "courts"} in mine
    # the public follows the complaint by its tracking code
    followed = hub.query("query($c: String!) { complaint(trackingCode: $c) { status } }", None, {"c": done["trackingCode"]})
    assert followed.json()["data"]["complaint"]["status"] == "filed"
    # a second run files nothing more
    again = asyncio.run(ensure_demo_cases(hub.runtime.settings, hub.samples))
    assert (again["objections"], again["complaints"], again["repairs"]) == (0, 0, 0)
    assert len(admin(hub, "{ cases(first: 50) { id } }")["cases"]) == len(cases)
