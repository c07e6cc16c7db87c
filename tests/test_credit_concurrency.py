"""Two departments acting on one subject at once, over HTTP, on a hub whose store is PostgreSQL.

The court red-lists a company while market regulation blacklists it, both requests in flight
together: whatever the order the hub serialises them in, the company ends on the blacklist
only (a blacklisting ends a red listing; a red listing is refused while blacklisted), and every
transition is in the listing's history. Without the per-subject lock both checks could pass and
leave the company on both lists (tests/test_credit_register.py shows the same at the register).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from hub_fixture import RunningHub, running_hub

RED_LIST = """mutation($s: String!, $d: Date!) {
  addToRedList(input: {subject: $s, basis: "honour-red-list", reason: "诚信示范", listedOn: $d}) { id list }
}"""
FINDING = """mutation($s: String!, $d: Date!) {
  recordFinding(input: {subject: $s, basis: "market-serious", facts: "严重违法", legalBasis: "办法", decidedOn: $d}) {
    finding { id } listing { id list }
  }
}"""
STATE = """query($s: String!) { legalPerson(uscc: $s) { listings { list basis } } }"""


@pytest.fixture
def hub(tmp_path: Path, postgres_url: str) -> Iterator[RunningHub]:
    with running_hub(tmp_path, legal_persons=40, natural_persons=10, database_url=postgres_url) as running:
        yield running


def _post(hub: RunningHub, token: str, query: str, variables: dict[str, Any], barrier: threading.Barrier,
          out: dict[str, Any], key: str) -> None:
    with httpx.Client(base_url=hub.base_url, timeout=30) as http:
        barrier.wait()
        out[key] = http.post("/graphql", json={"query": query, "variables": variables},
                             headers={"Authorization": f"Bearer {token}"})


def test_a_red_listing_and_a_blacklisting_at_once_leave_the_subject_on_the_blacklist_only(hub: RunningHub) -> None:
    court, market = hub.token("court"), hub.token("market")
    today = hub.runtime.today().isoformat()
    subjects = [s for k, s in hub.samples.items() if k in ("clean", "a_level_taxpayer", "minor_penalty", "expired_penalty")]
    assert len(subjects) == 4
    outcomes = []
    for subject in subjects:
        variables = {"s": subject, "d": today}
        out: dict[str, Any] = {}
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=_post, args=(hub, court, RED_LIST, variables, barrier, out, "red")),
            threading.Thread(target=_post, args=(hub, market, FINDING, variables, barrier, out, "black")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        black = out["black"].json()
        assert "errors" not in black, black
        assert black["data"]["recordFinding"]["listing"]["list"] == "black"
        red = out["red"].json()
        outcomes.append("refused" if red.get("errors") else "listed then delisted")
        if red.get("errors"):  # the blacklisting came first: refused, naming why
            assert "is on the blacklist" in red["errors"][0]["message"]
        state = hub.query(STATE, "market", {"s": subject}).json()["data"]["legalPerson"]["listings"]
        assert [x["list"] for x in state] == ["black"], (subject, state)
    assert len(outcomes) == 4


def test_concurrent_serious_findings_from_the_same_department_make_one_listing(hub: RunningHub) -> None:
    market = hub.token("market")
    subject = hub.samples["clean"]
    days = [(dt.date(2026, 1, 1) + dt.timedelta(days=20 * i)).isoformat() for i in range(6)]
    out: dict[str, Any] = {}
    barrier = threading.Barrier(len(days))
    threads = [threading.Thread(target=_post, args=(hub, market, FINDING, {"s": subject, "d": d}, barrier, out, d))
               for d in days]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answers = [out[d].json() for d in days]
    assert all("errors" not in a for a in answers), answers
    assert len({a["data"]["recordFinding"]["listing"]["id"] for a in answers}) == 1
    assert len({a["data"]["recordFinding"]["finding"]["id"] for a in answers}) == len(days)
    state = hub.query(STATE, "market", {"s": subject}).json()["data"]["legalPerson"]["listings"]
    assert state == [{"list": "black", "basis": "market-serious"}]
