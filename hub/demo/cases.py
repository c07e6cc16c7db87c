"""The demo district's open cases (docs/cases.md), seeded once per hub store by `xinlian demo`.

- an **objection** the demo subject client (bound to the sample judgment debtor) filed against its
  court record fifteen working days ago — with the court (`courts`), and **overdue**;
- an **objection** the credit office filed today on a market penalty of the sample with penalties
  from several departments, with the market (`market`);
- an anonymous **complaint** about the sample with a severe environmental penalty, awaiting triage
  (its tracking code is printed and kept in `<data-dir>/demo-cases.json`, to follow it on
  `/public/graphql`);
- a **credit repair** application of the same multi-department sample for its tax penalty (一般,
  decided more than three months ago), with a proof document and its credit commitment, filed at
  the credit office's counter (the demo subject client speaks for the judgment debtor, not for this
  firm), awaiting the tax bureau's decision.

Cases are filed through the same registers as on `/graphql` (the objection going to the
department that provides the record, the repair checked at its source); a department that cannot
be read is skipped, never guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

from xinlian.hub.config import Settings

log = logging.getLogger("xinlian.demo")
BY = "demo"
# a one-page PDF: the demo applicant's proof that the fine was paid
PROOF_PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)


def _working_days_back(calendar: Any, today: dt.date, n: int) -> dt.date:
    day = today
    for _ in range(n):
        day -= dt.timedelta(days=1)
        while not calendar.is_working_day(day):
            day -= dt.timedelta(days=1)
    return day


async def ensure_demo_cases(settings: Settings, samples: dict[str, str]) -> dict[str, Any]:
    """Seed the demo's open cases once (none filed yet); returns what it filed."""
    from xinlian.hub.cases.complaints import ComplaintDesk
    from xinlian.hub.cases.model import Actor
    from xinlian.hub.cases.register import CaseRegister, Upload
    from xinlian.hub.cases.repairs import Application
    from xinlian.hub.governance.objections import ObjectionRegister
    from xinlian.hub.runtime import HubRuntime

    runtime = await HubRuntime.open(settings, schedule=False)
    done: dict[str, Any] = {"objections": 0, "complaints": 0, "repairs": 0, "trackingCode": None}
    try:
        if await runtime.cases.find(limit=1, with_history=False):
            return done
        policy, today, records = runtime.policy, runtime.today(), runtime.credit.records
        debtor, several, severe = samples["judgment_debtor"], samples["multi_department_penalties"], samples["severe_penalty"]
        read = await records.read([debtor, several], {
            "judgment_debtor_records": {"case_number"}, "penalties": {"decision_number", "decision_date", "severity"},
        })
        if debtor in read.found:
            court_records = read.found[debtor].records.get("judgment_debtor_records") or []
            if court_records:
                court_record = court_records[0]
                filed = _working_days_back(runtime.calendar, today, 15)
                at = dt.datetime(filed.year, filed.month, filed.day, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
                earlier = CaseRegister(runtime.store, runtime.calendar, lambda: policy.cases, clock=lambda: at)
                await ObjectionRegister(earlier).file(
                    debtor, "judgment_debtor_records", str(court_record["case_number"]),
                    "该案已于本年度履行完毕，法院已出具结案通知书，失信信息应予删除", Actor("subject", "demo-subject", subject=debtor),
                    grounds="inconsistent-with-decision", department="courts",
                )
                done["objections"] += 1
        penalties = read.found[several].records.get("penalties", []) if several in read.found else []
        for penalty in penalties:
            number = str(penalty.get("decision_number") or "")
            located = await records.find_record(several, "penalties", number)
            if located.departments == ["market"]:
                await runtime.objections.file(
                    several, "penalties", number, "罚款金额与决定书不一致（决定书为五千元）", "demo",
                    grounds="wrong", department="market",
                )
                done["objections"] += 1
                break
        desk = ComplaintDesk(runtime.cases)
        complaint = await desk.file(
            category="dishonest-conduct", categories=policy.cases.complaint_categories, subject=severe, subject_name=None,
            description="该企业夜间仍在偷排废水，附近居民多次闻到刺鼻气味（2026年11月下旬）",
        )
        done["complaints"], done["trackingCode"] = 1, complaint.tracking_code
        for penalty in penalties:
            number = str(penalty.get("decision_number") or "")
            located = await records.find_record(several, "penalties", number)
            if located.departments != ["tax"] or penalty.get("severity") != "一般":
                continue
            application = Application(
                subject=several, reason="罚款已全额缴纳，违法行为已整改完毕", family="penalties", key=number,
                commitment="本企业承诺今后严格遵守税收法律法规，按期申报纳税，如有违反愿承担相应法律责任。",
                uploads=[Upload("完税证明.pdf", "application/pdf", PROOF_PDF)],
            )
            try:
                await runtime.repairs.apply_for_record(  # filed at the credit office's counter for the firm
                    application, Actor.credit_office(BY), policy.cases.repair, records, today
                )
                done["repairs"] += 1
            except Exception as exc:  # not eligible yet (the demo's dates move with the calendar): say so, go on
                log.info("demo repair application not filed: %s", exc)
            break
        path = settings.data_dir / "demo-cases.json"
        path.write_text(json.dumps(done, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.chmod(path, 0o600)
        return done
    finally:
        await runtime.close()
