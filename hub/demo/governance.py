"""The demo district's credit governance out of the box: findings, listings and ratings.

`ensure_demo_credit(settings, samples)` opens the hub (its connectors must be reachable: the
court's REST service runs) and, once per hub store:

- records three department decisions on the district's sample subjects — a serious
  environmental finding (blacklist for 24 months from the decision), a general finding by
  market regulation on the subject penalised by three departments, and a red-list entry for the
  honoured company;
- runs the district job: the list rules (dishonest judgment debtors onto the blacklist while
  the court's record stands, A-level taxpayers without penalties and honoured companies onto
  the red list), then a rating of every subject under the policy's model.

A second call finds the findings and the finished job and does nothing. docs/governance.md
walks through what this leaves.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

from xinlian.hub.config import Settings

BY = "demo"


async def ensure_demo_credit(
    settings: Settings, samples: dict[str, str], progress: Callable[[int, int, int], None] | None = None
) -> dict[str, int]:
    """Seed the demo's findings and run the district job once; returns what it did."""
    from xinlian.hub.runtime import HubRuntime

    runtime = await HubRuntime.open(settings, schedule=False)
    try:
        credit, policy, today = runtime.credit, runtime.policy, runtime.today()
        done = {"findings": 0, "redListed": 0, "rated": 0}
        if not await credit.register.findings(limit=1):
            serious = await credit.record_finding(
                policy, subject=samples["severe_penalty"], basis="environment-serious",
                facts="超标排放污染物，拒不改正（行政处罚后复查仍超标）", legal_basis="《中华人民共和国大气污染防治法》第九十九条",
                records=[], department="environment", decided_on=today - dt.timedelta(days=150), measures=["S01", "S02"],
                by=BY, today=today,
            )
            general = await credit.record_finding(
                policy, subject=samples["multi_department_penalties"], basis="general-dishonesty",
                facts="一年内被三个部门行政处罚", legal_basis="《新城区公共信用信息管理办法》",
                records=[], department="market", decided_on=today - dt.timedelta(days=30), measures=["S09"],
                by=BY, today=today,
            )
            red = await credit.red_list(
                policy, subject=samples["honored"], basis="honour-red-list", reason="2026年度诚信经营示范企业",
                department="market", listed_on=today - dt.timedelta(days=10), by=BY, today=today,
            )
            await credit.district.audit_system(  # the demo's decisions are audited like any other
                "demoDecisions", BY, policy.version, sorted({serious.finding.subject, general.finding.subject, red.subject}),
                {"findings": [serious.finding.id, general.finding.id], "listings": [
                    serious.listing.id if serious.listing else None, red.id]},
            )
            done["findings"], done["redListed"] = 2, 1
        jobs = await credit.district.jobs(limit=1)
        if not jobs or jobs[0].status != "done":
            job = await credit.district.run_district(
                policy.credit, policy.version, today, BY, resume=bool(jobs), progress=progress
            )
            done["rated"] = job.rated
        return done
    finally:
        await runtime.close()
