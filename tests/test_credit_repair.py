"""Credit repair (信用修复, issue 12): eligibility at its boundaries with real dates, applications by
subject clients on `/graphql`, decisions by the deciding department and the credit office, and
their effects — a repaired penalty leaves the public display (a policy row rule fed by the repair
register) while government still sees it; a repaired blacklisting ends as `repaired`.

The end-to-end tests run a real hub over the demo district (tests/hub_fixture.py) and pick, from
the market bureau's own database, penalties that are eligible and still shown today — so they
hold whatever day they run on. The subject client (`demo-subject`) is bound to each test's subject
through the admin API and bound back afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator

import httpx
import pytest
from sqlalchemy import select

from hub_fixture import NO_RATE_LIMITS, RunningHub, running_hub
from xinlian.hub.cases.attachments import AttachmentPolicy, LocalAttachments
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.model import REPAIR, Actor, CaseForbidden, CaseInputError, CaseRef
from xinlian.hub.cases.register import CASES, CaseRegister, Upload
from xinlian.hub.cases.repairs import (
    Application,
    RepairRefused,
    RepairRegister,
    RepairUnavailable,
    _repaired,
    check_listing,
    check_record,
    first_listing_day,
    first_record_day,
    minor_shown,
)
from xinlian.hub.credit.governance import CreditGovernance
from xinlian.hub.credit.model import CreditInputError, RecordRef
from xinlian.hub.credit.ratings import RatingRegister
from xinlian.hub.credit.records import RecordFound
from xinlian.hub.credit.register import EVENTS, LISTINGS, CreditRegister
from xinlian.hub.store import Store
from xinlian.policies.cases import cases_document, parse_cases, standard_case_rules, standard_cases_path
from xinlian.policies.credit import standard_credit_rules
from xinlian.policies.loader import load_policy
from xinlian.policies.model import Policy, PolicyError
from xinlian.policies.rows import PublicityWindowRule, add_months
from xinlian.policies.rules import parse_row_rules
from xinlian.schema.catalogue import FAMILIES

D = dt.date
RULES = standard_case_rules().repair
ORDINARY, SEVERE, MINOR = "一般", "严重", "轻微"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
PROOF = [{"filename": "罚款缴纳凭证.pdf", "mediaType": "application/pdf", "contentBase64": base64.b64encode(PDF).decode()}]
COMMITMENT = "本单位承诺：严格遵守法律法规，按时履行法定义务，如有违反愿承担相应责任。"
FIRM = "91110000600037341L"

CASE = "id kind status subject department category description deadline workingDaysLeft history { action status by byKind note }"
APPLY = f"mutation($input: RepairInput!) {{ applyForRepair(input: $input) {{ {CASE} }} }}"
DECIDE = f"mutation($id: Int!, $approve: Boolean!, $note: String!) {{ decideRepair(id: $id, approve: $approve, note: $note) {{ {CASE} }} }}"
WITHDRAW = f"mutation($id: Int!) {{ withdrawRepair(id: $id, note: \"不再申请\") {{ {CASE} }} }}"
REPAIRS = f"query($status: String) {{ repairs(status: $status) {{ totalOpen totalOverdue items {{ {CASE} }} }} }}"
PENALTIES = "query($u: String!) { legalPerson(uscc: $u) { penalties { decisionNumber } } }"
ADMIN_REPAIRS = f"query($status: String, $overdue: Boolean) {{ repairs(status: $status, overdue: $overdue) {{ {CASE} overdue }} }}"
ADMIN_DECIDE = f"mutation($id: Int!, $approve: Boolean!, $note: String!) {{ decideRepair(id: $id, approve: $approve, note: $note) {{ {CASE} }} }}"
BIND = "mutation($c: String!, $s: String) { setClientSubject(clientId: $c, subjectId: $s) { clientId } }"
FINDING = "mutation($input: FindingInput!) { recordFinding(input: $input) { listing { id } } }"
BLACKLIST = "{ blacklist(first: 100) { items { id subject } } }"
LISTING = "query($id: Int!) { creditListing(id: $id) { status transitions { action by reason } } }"


# ---- eligibility at its boundaries, with real dates --------------------------------------------


def test_a_penalty_is_repairable_from_the_day_after_its_minimum_publicity() -> None:
    # 一般: 3 months from the decision date; the last day of the minimum is refused, the next accepted
    assert first_record_day(ORDINARY, D(2026, 1, 15), RULES) == D(2026, 4, 16)
    with pytest.raises(RepairRefused, match=r"not yet: a 一般 penalty .* 3 months .* \(2026-01-15\) .* from 2026-04-16"):
        check_record(ORDINARY, D(2026, 1, 15), D(2026, 4, 15), RULES)
    assert check_record(ORDINARY, D(2026, 1, 15), D(2026, 4, 16), RULES) == D(2026, 4, 16)
    # 严重: 12 months
    with pytest.raises(RepairRefused, match="12 months"):
        check_record(SEVERE, D(2025, 4, 15), D(2026, 4, 15), RULES)
    assert check_record(SEVERE, D(2025, 4, 15), D(2026, 4, 16), RULES) == D(2026, 4, 16)
    # 严重 is not 一般: on the first day an ordinary penalty of that date could be repaired, a severe one cannot
    with pytest.raises(RepairRefused):
        check_record(SEVERE, D(2026, 1, 15), D(2026, 4, 16), RULES)
    # months are calendar months, clamped to the end of a shorter month, as the publicity window counts them
    with pytest.raises(RepairRefused):
        check_record(ORDINARY, D(2025, 11, 30), D(2026, 2, 28), RULES)
    assert check_record(ORDINARY, D(2025, 11, 30), D(2026, 3, 1), RULES) == D(2026, 3, 1)
    assert check_record(SEVERE, D(2024, 2, 29), D(2025, 3, 1), RULES) == D(2025, 3, 1)  # 2025-02-28 was the last day
    # a datetime from a source counts by its date
    assert first_record_day(ORDINARY, dt.datetime(2026, 1, 15, 9, 30), RULES) == D(2026, 4, 16)


def test_the_first_repairable_day_is_the_first_day_the_publicity_window_could_end_early() -> None:
    """The minimum the window must show and the minimum before repair are one period: the window
    shows a penalty through decision date + minimum, and repair is possible the day after."""
    (window,) = parse_row_rules([{"rule": "publicity-window", "families": ["penalties"]}])
    assert isinstance(window, PublicityWindowRule)
    for severity, decided in ((ORDINARY, D(2026, 1, 15)), (SEVERE, D(2025, 8, 31))):
        first = first_record_day(severity, decided, RULES)
        shown_to = add_months(decided, {ORDINARY: 3, SEVERE: 12}[severity])
        record = {"severity": severity, "decision_date": decided, "publicity_end_date": decided}  # the department's date is too early
        assert window.keep(record, shown_to) and not window.keep(record, first)
        assert first == shown_to + dt.timedelta(days=1)


def test_a_policy_may_raise_the_minimum_never_lower_it() -> None:
    text = standard_cases_path().read_text(encoding="utf-8")
    raised = text.replace('"一般" = 3\n', '"一般" = 6\n', 1).replace("listing_min_months = 12", "listing_min_months = 24", 1)
    assert raised != text
    rules = parse_cases(tomllib.loads(raised)["cases"]).repair
    with pytest.raises(RepairRefused, match="6 months"):
        check_record(ORDINARY, D(2026, 1, 15), D(2026, 7, 15), rules)
    assert check_record(ORDINARY, D(2026, 1, 15), D(2026, 7, 16), rules) == D(2026, 7, 16)
    assert check_record(SEVERE, D(2025, 4, 15), D(2026, 4, 16), rules)  # 严重 unchanged
    assert first_listing_day(D(2025, 6, 10), rules) == D(2027, 6, 11)
    lowered = text.replace('"严重" = 12\n', '"严重" = 6\n', 1)
    with pytest.raises(PolicyError, match="严重"):
        parse_cases(tomllib.loads(lowered)["cases"])


def test_a_policy_may_not_lower_the_listing_minimum_nor_take_no_attachment() -> None:
    """A blacklisting's 12 months are the national minimum, as a penalty's are; a policy taking no
    attachment would make a penalty's repair impossible (it needs a proof document)."""
    text = standard_cases_path().read_text(encoding="utf-8")
    for months in (0, 11):
        lowered = text.replace("listing_min_months = 12", f"listing_min_months = {months}", 1)
        assert lowered != text
        with pytest.raises(PolicyError, match=rf"cases.repair.listing_min_months: {months} is below the national minimum of 12"):
            parse_cases(tomllib.loads(lowered)["cases"])
    raised = text.replace("listing_min_months = 12", "listing_min_months = 13", 1)
    assert parse_cases(tomllib.loads(raised)["cases"]).repair.listing_min_months == 13
    for count in (0, -1):
        none = text.replace("max_per_case = 10", f"max_per_case = {count}", 1)
        assert none != text
        with pytest.raises(PolicyError, match=rf"cases.attachments.max_per_case: at least 1, got {count}"):
            parse_cases(tomllib.loads(none)["cases"])
    one = text.replace("max_per_case = 10", "max_per_case = 1", 1)
    assert parse_cases(tomllib.loads(one)["cases"]).attachments.max_per_case == 1
    rules = standard_case_rules()
    assert parse_cases(cases_document(rules)) == rules and rules.repair.min_months == {MINOR: 0, ORDINARY: 3, SEVERE: 12}


def showing_minor(policy: Policy) -> Policy:
    """`policy` with every publicity window showing 轻微 penalties (`show_minor = true`)."""
    rows = tuple(
        dataclasses.replace(r, window=dataclasses.replace(r.window, show_minor=True)) if isinstance(r, PublicityWindowRule) else r
        for r in policy.rows
    )
    return dataclasses.replace(policy, rows=rows)


def test_a_minor_penalty_is_repairable_where_the_policy_shows_it_from_the_day_after_its_decision() -> None:
    standard = load_policy()
    assert not minor_shown(standard, "penalties") and minor_shown(showing_minor(standard), "penalties")
    # shown to banks only, or to nobody (no window for the public at all: a repair would end nothing): not repairable
    authorized_only = parse_row_rules([
        {"rule": "publicity-window", "families": ["penalties"], "applies_to": ["AUTHORIZED"], "show_minor": True},
        {"rule": "publicity-window", "families": ["penalties"], "applies_to": ["PUBLIC"]},
    ])
    assert not minor_shown(dataclasses.replace(standard, rows=authorized_only), "penalties")
    assert not minor_shown(dataclasses.replace(standard, rows=()), "penalties")
    # the national minimum of a 轻微 penalty is 0 months: the decision day is refused, the next accepted
    assert first_record_day(MINOR, D(2026, 10, 2), RULES, minor=True) == D(2026, 10, 3)
    with pytest.raises(RepairRefused, match=r"not yet: a 轻微 penalty may be repaired from the day after its decision date \(2026-10-02\), i.e. from 2026-10-03"):
        check_record(MINOR, D(2026, 10, 2), D(2026, 10, 2), RULES, minor=True)
    assert check_record(MINOR, D(2026, 10, 2), D(2026, 10, 3), RULES, minor=True) == D(2026, 10, 3)
    assert check_record(MINOR, D(2026, 1, 31), D(2026, 2, 1), RULES, minor=True) == D(2026, 2, 1)
    # a policy may raise it
    text = standard_cases_path().read_text(encoding="utf-8")
    raised = text.replace('"一般" = 3\n', '"轻微" = 1\n"一般" = 3\n', 1)
    assert raised != text
    rules = parse_cases(tomllib.loads(raised)["cases"]).repair
    with pytest.raises(RepairRefused, match=r"minimum publicity of 1 months .* from 2026-11-03"):
        check_record(MINOR, D(2026, 10, 2), D(2026, 11, 2), rules, minor=True)
    # where the policy does not show it: nothing to repair, whatever its age
    with pytest.raises(RepairRefused, match="nothing to repair"):
        check_record(MINOR, D(2020, 1, 1), D(2026, 12, 3), RULES)


def test_a_repair_day_read_back_naive_from_sqlite_is_a_utc_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite hands stored (UTC) times back naive: the repair day of an approval without
    `repaired_on` is the Hohhot day of that UTC time, whatever the hub machine's time zone."""
    key = "新市监处罚〔2025〕3号"
    records = json.dumps([{"family": "penalties", "key": key}], ensure_ascii=False)
    monkeypatch.setenv("TZ", "America/New_York")  # not UTC: a naive time taken as local time moves
    time.tzset()
    try:
        closed = dt.datetime(2026, 12, 2, 12, 0)  # 12:00 UTC: 20:00 in Hohhot, the same day
        assert _repaired([(FIRM, records, "{}", closed)]) == {FIRM: {"penalties": {key: D(2026, 12, 2)}}}
        late = dt.datetime(2026, 12, 2, 17, 0)  # 17:00 UTC: 01:00 the next day in Hohhot
        assert _repaired([(FIRM, records, None, late)]) == {FIRM: {"penalties": {key: D(2026, 12, 3)}}}
        aware = closed.replace(tzinfo=dt.timezone.utc)
        assert _repaired([(FIRM, records, "{}", aware)]) == {FIRM: {"penalties": {key: D(2026, 12, 2)}}}
        # the approval's own day wins when it was recorded
        assert _repaired([(FIRM, records, json.dumps({"repaired_on": "2026-12-01"}), late)])[FIRM]["penalties"][key] == D(2026, 12, 1)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_minor_penalty_has_nothing_to_repair_and_an_unknown_window_is_refused() -> None:
    with pytest.raises(RepairRefused, match=r"轻微 \(minor\) penalty is not shown to the public .* nothing to repair"):
        check_record(MINOR, D(2020, 1, 1), D(2026, 12, 3), RULES)
    with pytest.raises(RepairRefused, match="severity .* cannot be established"):
        check_record("重大", D(2020, 1, 1), D(2026, 12, 3), RULES)
    with pytest.raises(RepairRefused, match="severity"):
        check_record(None, D(2020, 1, 1), D(2026, 12, 3), RULES)
    with pytest.raises(RepairRefused, match="no decision date"):
        check_record(ORDINARY, "2020-01-01", D(2026, 12, 3), RULES)


def test_a_blacklisting_is_repairable_once_it_has_lasted_the_policys_months() -> None:
    assert RULES.listing_min_months == 12
    with pytest.raises(RepairRefused, match=r"lasted 12 months \(listed on 2025-06-10\), i.e. from 2026-06-11"):
        check_listing(D(2025, 6, 10), D(2026, 6, 10), RULES)
    assert check_listing(D(2025, 6, 10), D(2026, 6, 11), RULES) == D(2026, 6, 11)
    assert check_listing(D(2024, 2, 29), D(2025, 3, 1), RULES) == D(2025, 3, 1)


def test_an_application_says_what_is_missing() -> None:
    proof: Any = [object()]
    base = {"subject": FIRM, "reason": "已缴清罚款并完成整改", "commitment": COMMITMENT, "uploads": proof,
            "family": "penalties", "key": "新市监处罚〔2025〕2号"}
    assert Application(**base).checked(RULES).key == "新市监处罚〔2025〕2号"
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"commitment": "  "}, "commitment", r"credit commitment \(信用承诺\) is required"),
        ({"uploads": []}, "attachments", "at least one proof document"),
        ({"reason": ""}, "reason", "reason"),
        ({"family": "licenses"}, "family", "repair is for records of penalties"),
        ({"key": " "}, "recordKey", "recordKey"),
    ]
    for change, argument, message in cases:
        with pytest.raises(RepairRefused, match=message) as refused:
            Application(**{**base, **change}).checked(RULES)
        assert refused.value.argument == argument
    with pytest.raises(RepairRefused, match="either a record .* or a listing"):
        Application(**{**base, "listing": 7}).checked(RULES)
    with pytest.raises(RepairRefused, match="either a record"):
        Application(FIRM, "理由", COMMITMENT).checked(RULES)
    # a listing needs no proof document (its department holds the finding), but a commitment
    assert Application(FIRM, "理由", COMMITMENT, listing=7).checked(RULES).listing == 7
    with pytest.raises(RepairRefused, match="commitment"):
        Application(FIRM, "理由", "", listing=7).checked(RULES)


# ---- the row rule fed by the repair register ---------------------------------------------------


class Facts:
    def __init__(self, repairs: dict[str, dict[str, dt.date]] | None) -> None:
        self._repairs = repairs

    def open_objections(self, family: str) -> set[str] | None:
        return set()

    def repairs(self, family: str) -> dict[str, dt.date] | None:
        return None if self._repairs is None else self._repairs.get(family, {})


def test_an_approved_repair_ends_display_from_its_day_and_only_for_its_record() -> None:
    (rule,) = parse_row_rules([{"rule": "publicity-window", "families": ["penalties"]}])
    penalties = FAMILIES["penalties"]
    assert "decision_number" in rule.reads(penalties)  # the key a repair names is read with the window
    repaired = {"severity": SEVERE, "decision_date": D(2025, 1, 11), "decision_number": "新市监处罚〔2025〕3号"}
    other = {"severity": SEVERE, "decision_date": D(2025, 1, 11), "decision_number": "新市监处罚〔2025〕9号"}
    facts = Facts({"penalties": {"新市监处罚〔2025〕3号": D(2026, 12, 3)}})
    on_the_eve, on_the_day = rule.keeper(penalties, facts, D(2026, 12, 2)), rule.keeper(penalties, facts, D(2026, 12, 3))
    assert on_the_eve(repaired) and not on_the_day(repaired)
    assert on_the_day(other)  # the subject's other penalty stays inside its window
    assert not rule.keeper(penalties, facts, D(2026, 12, 3))({k: v for k, v in other.items() if k != "decision_number"})
    assert rule.keeper(penalties, Facts({}), D(2026, 12, 3))(repaired)  # no repair: the window alone
    assert not rule.keeper(penalties, Facts(None), D(2026, 12, 3))(other)  # repairs not known: fail closed
    # a repair ends display before the minimum (a severe penalty decided a year and a half later)
    young = {"severity": SEVERE, "decision_date": D(2026, 6, 1), "decision_number": "新市监处罚〔2025〕3号"}
    assert not rule.keeper(penalties, facts, D(2026, 12, 3))(young)


# ---- the register of approved repairs and serialised decisions, on SQLite and PostgreSQL ---------


class Source:
    """What the departments answer about one record (DistrictRecords.find_record's result)."""

    def __init__(self, found: RecordFound) -> None:
        self.found = found

    async def find_record(self, subject: str, family: str, key: str, fields: Iterable[str] = ()) -> RecordFound:
        return self.found


@contextlib.asynccontextmanager
async def registers(url: str, files: Path | None = None) -> AsyncIterator[tuple[Store, RepairRegister, CreditRegister]]:
    """One hub process's registers over the store at `url` (`files`: where attachments go)."""
    store = await Store.open(url)
    try:
        attachments = LocalAttachments.in_data_dir(files, AttachmentPolicy.standard()) if files else None
        cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules, attachments=attachments)
        yield store, RepairRegister(cases), CreditRegister(store)
    finally:
        await store.close()


MARKET = Actor("department", "demo-market", department="market")
COURT = Actor("department", "demo-court", department="courts")
APPLICANT = Actor("subject", "demo-subject", subject=FIRM)


async def _blacklisting(credit: CreditRegister, today: dt.date) -> int:
    outcome = await credit.record_finding(
        standard_credit_rules(), subject=FIRM, basis="market-serious", facts="严重违法", legal_basis="《广告法》第五十五条",
        records=[RecordRef("penalties", "新市监罚〔2025〕1号")], department="market", decided_on=add_months(today, -13),
        measures=["S01"], by="demo-market", today=today, subject_name="某公司",
    )
    assert outcome.listing is not None
    return outcome.listing.id


async def test_two_decisions_at_once_one_wins_and_a_listing_ends_once(store_url: str) -> None:
    """Two hub processes (two stores over one database) decide one application at once: one step
    wins, the other is told what it did; an approval ends the listing in the same transaction."""
    async with registers(store_url) as (store, one, credit), registers(store_url) as (_, two, credit_two):
        today = one.today()
        listing = await _blacklisting(credit, today)
        apply = Application(FIRM, "已整改并履行全部义务", COMMITMENT, listing=listing)
        for round_ in range(3):
            case = await one.apply_for_listing(apply, APPLICANT, RULES, credit, today)
            assert (case.status, case.department, case.category) == ("applied", "market", "listing")
            with pytest.raises(RepairRefused, match=f"repair application {case.id} for this listing is open"):
                await two.apply_for_listing(apply, APPLICANT, RULES, credit_two, today)
            decisions: list[Awaitable[Any]] = [
                two.decide(case.id, False, "材料不全", Actor.credit_office("admin-li"), credit_two),
                one.decide(case.id, False, "材料不全", MARKET, credit),
            ] if round_ < 2 else [
                one.decide(case.id, True, "同意修复", MARKET, credit),
                two.decide(case.id, True, "同意修复", Actor.credit_office("admin-li"), credit_two),
            ]
            outcomes = await asyncio.gather(*decisions, return_exceptions=True)
            won = [o for o in outcomes if not isinstance(o, BaseException)]
            lost = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(won) == 1 and len(lost) == 1, outcomes
            assert isinstance(lost[0], CaseInputError) and "cannot be moved" in str(lost[0])
            final = await one.cases.get(case.id)
            assert [s.action for s in final.history] == ["filed", "approve" if round_ == 2 else "refuse"]
        async with store.engine.connect() as conn:
            status = (await conn.execute(select(LISTINGS.c.status, LISTINGS.c.ended_on).where(LISTINGS.c.id == listing))).one()
            actions = [r.action for r in await conn.execute(select(EVENTS.c.action).where(EVENTS.c.listing_id == listing))]
        assert tuple(status) == ("repaired", today) and actions == ["listed", "repaired"]
        # the other "process" did not approve it: a repaired listing cannot be repaired again
        with pytest.raises(RepairRefused, match="not current"):
            await two.apply_for_listing(apply, APPLICANT, RULES, credit_two, today)


async def test_an_approval_and_a_court_cancellation_at_once_do_not_deadlock(store_url: str) -> None:
    """The approval takes the case's lock, then the subject's; a cancellation the subject's only:
    one ends the listing, and the approval that came second is refused (the case stays applied)."""
    async with registers(store_url) as (_, repairs, credit), registers(store_url) as (_, _other, court_side):
        today = repairs.today()
        for round_ in range(4):
            listing = await _relist(credit, today, round_)
            case = await repairs.apply_for_listing(Application(FIRM, "已整改", COMMITMENT, listing=listing), APPLICANT, RULES, credit, today)
            approval, cancellation = await asyncio.wait_for(asyncio.gather(
                repairs.decide(case.id, True, "同意修复", MARKET, credit),
                court_side.end_listing(listing, "cancelled", "撤销", "demo-court", today, "courts", ("courts",)),
                return_exceptions=True,
            ), 30)
            after = await credit.listing(listing)
            assert after is not None
            if isinstance(approval, BaseException):
                assert isinstance(approval, RepairRefused) and "is cancelled" in str(approval)
                assert after.status == "cancelled" and (await repairs.cases.get(case.id)).status == "applied"
                await repairs.withdraw(case.id, "", APPLICANT)
            else:
                assert isinstance(cancellation, CreditInputError) and "is repaired: nothing to end" in str(cancellation)
                assert after.status == "repaired"


async def _relist(credit: CreditRegister, today: dt.date, n: int) -> int:
    outcome = await credit.record_finding(
        standard_credit_rules(), subject=FIRM, basis="market-serious", facts=f"严重违法 {n}", legal_basis="《广告法》",
        records=[], department="market", decided_on=add_months(today, -13), measures=["S01"], by="demo-market",
        today=today,
    )
    assert outcome.listing is not None
    return outcome.listing.id


async def test_approved_repairs_reach_every_process_and_stay_approved(store_url: str, tmp_path: Path) -> None:
    async with registers(store_url, tmp_path) as (store, one, _), registers(store_url) as (_, two, _c):
        today = one.today()
        key = "新市监处罚〔2025〕3号"
        found = RecordFound(["market"], [{"decision_number": key, "severity": SEVERE, "decision_date": add_months(today, -13),
                                           "party_name": "某公司"}])
        apply = Application(FIRM, "已缴清罚款", COMMITMENT, uploads=[Upload("凭证.pdf", "application/pdf", PDF)],
                            family="penalties", key=key)
        assert await two.repaired([FIRM]) == {}
        case = await one.apply_for_record(apply, APPLICANT, RULES, Source(found), today)
        assert case.department == "market" and case.subject_name == "某公司" and case.detail["eligible_from"]
        with pytest.raises(CaseForbidden):
            await two.decide(case.id, True, "同意", COURT, CreditRegister(store))
        assert await two.repaired([FIRM]) == {}
        await one.decide(case.id, True, "同意修复", MARKET, CreditRegister(store))
        assert await one.repaired([FIRM, "91310115MA1K3BTP2B"]) == {FIRM: {"penalties": {key: today}}}  # at once here
        two.approved.interval = 0  # no change feed in this test: the other process asks the store on its next read
        assert await two.repaired([FIRM]) == {FIRM: {"penalties": {key: today}}}
        reloads = two.approved.reloads
        assert await two.repaired([FIRM]) == {FIRM: {"penalties": {key: today}}} and two.approved.reloads == reloads
        # a source that cannot answer: refused, nothing filed
        down = RecordFound([], [], ["market"])
        with pytest.raises(Exception, match="market did not answer; nothing was filed"):
            await one.apply_for_record(apply, APPLICANT, RULES, Source(down), today)
        async with store.engine.connect() as conn:
            assert len((await conn.execute(select(CASES.c.id).where(CASES.c.kind == REPAIR))).all()) == 1


async def stored_repairs(store: Store) -> list[int]:
    async with store.engine.connect() as conn:
        return [r.id for r in await conn.execute(select(CASES.c.id).where(CASES.c.kind == REPAIR))]


async def test_a_source_that_cannot_answer_refuses_the_application_even_when_another_has_the_record(tmp_path: Path) -> None:
    """The record may be held by two departments (then the credit office decides): while one of
    them cannot answer, who decides cannot be told, and nothing is filed."""
    async with registers(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", tmp_path) as (store, repairs, _):
        today = repairs.today()
        key = "新市监处罚〔2025〕3号"
        record = {"decision_number": key, "severity": SEVERE, "decision_date": add_months(today, -13), "party_name": "某公司"}
        apply = Application(FIRM, "已缴清罚款", COMMITMENT, uploads=[Upload("凭证.pdf", "application/pdf", PDF)],
                            family="penalties", key=key)
        with pytest.raises(RepairUnavailable, match="the record could not be checked: tax did not answer; nothing was filed") as refused:
            await repairs.apply_for_record(apply, APPLICANT, RULES, Source(RecordFound(["market"], [record], ["tax"])), today)
        assert refused.value.departments == ["tax"]
        assert await stored_repairs(store) == []
        # every source answered: filed with the one that has it
        case = await repairs.apply_for_record(apply, APPLICANT, RULES, Source(RecordFound(["market"], [record], [])), today)
        assert case.department == "market" and await stored_repairs(store) == [case.id]


async def test_a_minor_penalty_is_filed_only_where_the_policy_shows_it(tmp_path: Path) -> None:
    async with registers(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", tmp_path) as (store, repairs, _):
        today = repairs.today()
        key = "新市监处罚〔2026〕7号"
        found = RecordFound(["market"], [{"decision_number": key, "severity": MINOR, "decision_date": today - dt.timedelta(days=30)}])
        apply = Application(FIRM, "已缴清罚款", COMMITMENT, uploads=[Upload("凭证.pdf", "application/pdf", PDF)],
                            family="penalties", key=key)
        with pytest.raises(RepairRefused, match="nothing to repair"):
            await repairs.apply_for_record(apply, APPLICANT, RULES, Source(found), today)
        assert await stored_repairs(store) == []
        case = await repairs.apply_for_record(apply, APPLICANT, RULES, Source(found), today, minor=True)
        assert (case.status, case.department, case.detail["severity"]) == ("applied", "market", MINOR)
        assert case.detail["eligible_from"] == (today - dt.timedelta(days=29)).isoformat()
        decided_today = RecordFound(["market"], [{"decision_number": "新市监处罚〔2026〕8号", "severity": MINOR, "decision_date": today}])
        with pytest.raises(RepairRefused, match=f"from {today + dt.timedelta(days=1)}"):
            await repairs.apply_for_record(dataclasses.replace(apply, key="新市监处罚〔2026〕8号"), APPLICANT, RULES,
                                           Source(decided_today), today, minor=True)


class SlowRating:
    """Stands in for `CreditGovernance.rate`: a department slow to answer (until `release`), or a
    rating model that breaks."""

    def __init__(self, fail: bool = False) -> None:
        self.release = asyncio.Event()
        self.fail = fail
        self.rated: list[tuple[str, dt.date, str]] = []

    async def __call__(self, policy: Any, subject: str, today: dt.date, by: str, trigger: str = "") -> None:
        await self.release.wait()
        if self.fail:
            raise RuntimeError("the rating model broke")
        self.rated.append((subject, today, by))


async def test_an_approval_re_rates_the_subject_in_the_background_bounded_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`settle` after the commit: the standing is invalidated at once, the re-rating runs in the
    credit machinery's background (`CreditGovernance.rerate_later`; `settled` waits for it); its
    errors are logged, its number bounded, and it ends with the machinery."""
    async with registers(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}") as (store, repairs, credit_register):
        today = repairs.today()
        listing = await _blacklisting(credit_register, today)
        case = await repairs.apply_for_listing(Application(FIRM, "已整改", COMMITMENT, listing=listing), APPLICANT, RULES,
                                               credit_register, today)
        approved = await repairs.decide(case.id, True, "同意修复", MARKET, credit_register)
        policy: Any = object()
        credit = CreditGovernance(store, lambda principal: None)  # type: ignore[arg-type,return-value]
        invalidated: list[int] = []
        monkeypatch.setattr(credit.standing, "invalidate", lambda: invalidated.append(1))
        slow = SlowRating()
        monkeypatch.setattr(credit, "rate", slow)
        task = repairs.settle(approved, credit, policy)
        assert task is not None and invalidated == [1] and credit.rerating() == (task,)
        await asyncio.sleep(0.01)
        assert not task.done() and slow.rated == []  # the caller has its answer; the department is still asked
        slow.release.set()
        await asyncio.wait_for(credit.settled(), 5)
        assert slow.rated == [(FIRM, today, "demo-market")] and credit.rerating() == ()
        # nothing to re-rate after a refusal, or after a record's repair
        for other in (dataclasses.replace(approved, status="refused"), dataclasses.replace(approved, category="record")):
            assert repairs.settle(other, credit, policy) is None
        assert invalidated == [1]
        caplog.set_level(logging.INFO, "xinlian.credit")
        # an error is logged, never raised
        broken = SlowRating(fail=True)
        broken.release.set()
        monkeypatch.setattr(credit, "rate", broken)
        repairs.settle(approved, credit, policy)
        await asyncio.wait_for(credit.settled(), 5)
        assert f"re-rating {FIRM} after a change failed" in caplog.text and "the rating model broke" in caplog.text
        # bounded in number: past `max_rerating` pending the standing is still invalidated, the rating left to the district run
        stuck = SlowRating()
        monkeypatch.setattr(credit, "rate", stuck)
        credit.max_rerating = 1
        first = repairs.settle(approved, credit, policy)
        assert first is not None and repairs.settle(approved, credit, policy) is None and len(invalidated) == 4
        assert f"re-rating {FIRM} after credit repair {case.id} not started: 1 re-ratings pending" in caplog.text
        # the hub stopping lets it end within the grace, then cancels it
        await credit.stop(grace=0.05)
        assert first.cancelled() and credit.rerating() == ()
        assert stuck.rated == []
        assert repairs.settle(approved, credit, policy) is None and credit.rerating() == ()  # stopped: none starts


# ---- end to end, on a running hub ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("repair-hub"), rate_limits=NO_RATE_LIMITS) as running:
        yield running


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body.get("errors"), body
    return dict(body["errors"][0])


def admin(hub: RunningHub, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
    return hub.http.post("/admin/graphql", json={"query": query, "variables": variables or {}},
                         headers={"Authorization": f"Bearer {hub.token('admin')}"})


def request_subjects(hub: RunningHub, response: httpx.Response) -> list[list[str]]:
    """The subjects each audit entry of the request names (its intent entry names none)."""
    return [e.subjects for e in hub.audit_entries(response.headers["x-request-id"]) if not (e.detail or {}).get("intent")]


def eligible_penalties(hub: RunningHub) -> list[tuple[str, str]]:
    """(subject, decision number) of market penalties of registered firms that may be repaired today
    and are still shown to the public, read from the market bureau's own database."""
    today = hub.runtime.today()
    samples = set(hub.samples.values())
    conn = sqlite3.connect(hub.data_dir / "departments" / "market.db")
    try:
        rows = conn.execute("SELECT dsr_zjhm, cfjdswh, cfjdrq, sxcd, gsjzq FROM xzcf WHERE sfyx = 1 AND dsrlb = '1'").fetchall()
    finally:
        conn.close()
    counts: dict[str, int] = {}
    for subject, *_ in rows:
        counts[subject] = counts.get(subject, 0) + 1
    found = []
    for subject, number, decided, code, end in rows:
        if code not in ("2", "3") or subject in samples:
            continue
        severity = {"2": ORDINARY, "3": SEVERE}[code]
        decided_on, own_end = dt.datetime.strptime(decided, "%Y%m%d").date(), dt.datetime.strptime(end, "%Y%m%d").date()
        last_shown = min(add_months(decided_on, {ORDINARY: 12, SEVERE: 36}[severity]), own_end)
        if first_record_day(severity, decided_on, RULES) <= today <= last_shown:
            found.append((subject, number))
    return sorted(set(found))


@pytest.fixture(scope="module")
def candidates(hub: RunningHub) -> Callable[[], tuple[str, str]]:
    pool = eligible_penalties(hub)
    assert len(pool) >= 3, f"the demo district should have market penalties that may be repaired today: {pool}"
    pool.reverse()
    return pool.pop


@contextlib.contextmanager
def speaking_for(hub: RunningHub, subject: str) -> Iterator[None]:
    """Bind the demo subject client to `subject` for the block, then back to its own subject."""
    client = hub.clients["subject"]["client_id"]
    data(admin(hub, BIND, {"c": client, "s": subject}))
    try:
        yield
    finally:
        data(admin(hub, BIND, {"c": client, "s": hub.samples["judgment_debtor"]}))


def public_numbers(hub: RunningHub, subject: str, kind: str | None = None) -> list[str]:
    person = data(hub.query(PENALTIES, kind, {"u": subject}))["legalPerson"]
    return [p["decisionNumber"] for p in person["penalties"]]


def all_repairs(hub: RunningHub) -> list[dict[str, Any]]:
    return list(data(admin(hub, ADMIN_REPAIRS, {}))["repairs"])


def record_input(number: str, **changes: Any) -> dict[str, Any]:
    return {"family": "penalties", "recordKey": number, "reason": "已足额缴纳罚款，违法行为已整改到位",
            "commitment": COMMITMENT, "attachments": PROOF, **changes}


def settled(hub: RunningHub, timeout: float = 60) -> None:
    """Wait, from the test thread, for the hub's background re-ratings after repair decisions."""
    credit = hub.runtime.credit
    pending = credit.rerating()
    if pending:
        asyncio.run_coroutine_threadsafe(credit.settled(), pending[0].get_loop()).result(timeout)


@contextlib.contextmanager
def policy_in_force(hub: RunningHub, policy: Policy) -> Iterator[None]:
    """Put `policy` in force in the running hub for the block (as an activation would), then the one before."""
    before = hub.runtime.policy
    hub.runtime.policy = policy
    try:
        yield
    finally:
        hub.runtime.policy = before


def test_an_application_without_commitment_or_proof_is_refused_and_nothing_is_stored(
    hub: RunningHub, candidates: Callable[[], tuple[str, str]]
) -> None:
    subject, number = candidates()
    before = all_repairs(hub)
    with speaking_for(hub, subject):
        for change, argument, words in (
            ({"commitment": ""}, "commitment", "信用承诺"),
            ({"attachments": None}, "attachments", "at least one proof document"),
            ({"attachments": []}, "attachments", "at least one proof document"),
            ({"family": "licenses"}, "family", "records of penalties"),
        ):
            response = hub.query(APPLY, "subject", {"input": record_input(number, **change)})
            refused = error(response)
            assert refused["extensions"]["code"] == "BAD_USER_INPUT" and refused["extensions"]["argument"] == argument
            assert words in refused["message"]
            assert request_subjects(hub, response) == [[subject]]  # the refusal is audited, naming the subject
        # a department cannot apply for a subject, nor can the public
        assert error(hub.query(APPLY, "market", {"input": record_input(number)}))["extensions"]["code"] == "FORBIDDEN"
    assert all_repairs(hub) == before
    assert number in public_numbers(hub, subject)


def test_the_deciding_department_approves_and_the_public_no_longer_sees_the_penalty(
    hub: RunningHub, candidates: Callable[[], tuple[str, str]]
) -> None:
    subject, number = candidates()
    today = hub.runtime.today()
    assert number in public_numbers(hub, subject) and number in public_numbers(hub, subject, "subject")
    with speaking_for(hub, subject):
        response = hub.query(APPLY, "subject", {"input": record_input(number)})
        case = data(response)["applyForRepair"]
        assert request_subjects(hub, response) == [[subject]]
        assert (case["kind"], case["status"], case["subject"], case["department"], case["category"]) == (
            "repair", "applied", subject, "market", "record")
        assert case["deadline"] == hub.runtime.calendar.add_working_days(today, 10).isoformat()
        assert [(s["action"], s["status"], s["byKind"]) for s in case["history"]] == [("filed", "applied", "subject")]
        again = error(hub.query(APPLY, "subject", {"input": record_input(number, reason="再次申请")}))
        assert again["extensions"]["code"] == "BAD_USER_INPUT" and f"repair application {case['id']}" in again["message"]
        mine = data(hub.query(REPAIRS, "subject", {"status": "applied"}))["repairs"]
        assert [i["id"] for i in mine["items"]] == [case["id"]] and mine["totalOpen"] == 1
        # neither another department nor the applicant decides; another department may not see the
        # application at all: it is told what it is told of an id that does not exist
        hidden = error(hub.query(DECIDE, "court", {"id": case["id"], "approve": True, "note": "同意"}))
        absent = error(hub.query(DECIDE, "court", {"id": 10_000_000, "approve": True, "note": "同意"}))
        assert hidden["extensions"] == absent["extensions"] == {"code": "NOT_FOUND"}
        assert hidden["message"].replace(str(case["id"]), "N") == absent["message"].replace("10000000", "N")
        assert error(hub.query(DECIDE, "subject", {"id": case["id"], "approve": True, "note": "同意"}))["extensions"]["code"] == "FORBIDDEN"
        assert number in public_numbers(hub, subject)
        queue = data(hub.query(REPAIRS, "market", {"status": "applied"}))["repairs"]["items"]
        [seen] = [i for i in queue if i["id"] == case["id"]]  # the department reads the reason and the commitment
        assert "已足额缴纳罚款" in seen["description"] and COMMITMENT in seen["description"]
        assert case["id"] not in [i["id"] for i in data(hub.query(REPAIRS, "court", {}))["repairs"]["items"]]

        response = hub.query(DECIDE, "market", {"id": case["id"], "approve": True, "note": "罚款已缴清，整改到位，同意修复"})
        decided = data(response)["decideRepair"]
        assert decided["status"] == "approved" and request_subjects(hub, response) == [[subject]]
        assert [(s["action"], s["byKind"], s["by"]) for s in decided["history"]][-1] == (
            "approve", "department", hub.clients["market"]["client_id"])
        # the public and the subject no longer see it (from today); government still does
        assert number not in public_numbers(hub, subject)
        assert number not in public_numbers(hub, subject, "subject")
        assert number in public_numbers(hub, subject, "market") and number in public_numbers(hub, subject, "department")
        assert data(hub.query(REPAIRS, "subject", {"status": "approved"}))["repairs"]["items"][0]["id"] == case["id"]
        # decided: nothing more to do
        assert "cannot be moved" in error(hub.query(WITHDRAW, "subject", {"id": case["id"]}))["message"]


def test_a_refusal_leaves_the_penalty_shown(hub: RunningHub, candidates: Callable[[], tuple[str, str]]) -> None:
    subject, number = candidates()
    with speaking_for(hub, subject):
        case = data(hub.query(APPLY, "subject", {"input": record_input(number)}))["applyForRepair"]
        note = error(hub.query(DECIDE, "market", {"id": case["id"], "approve": False, "note": ""}))
        assert note["extensions"]["code"] == "BAD_USER_INPUT" and "note" in note["message"]
        refused = data(hub.query(DECIDE, "market", {"id": case["id"], "approve": False, "note": "整改报告未加盖公章"}))["decideRepair"]
        assert refused["status"] == "refused"
        assert number in public_numbers(hub, subject)
        # refused, the subject may apply again; then withdraw
        second = data(hub.query(APPLY, "subject", {"input": record_input(number)}))["applyForRepair"]
        assert second["id"] != case["id"]
        assert data(hub.query(WITHDRAW, "subject", {"id": second["id"]}))["withdrawRepair"]["status"] == "withdrawn"
    assert number in public_numbers(hub, subject)


def test_the_credit_office_sees_every_application_overdue_first_and_decides_any(
    hub: RunningHub, candidates: Callable[[], tuple[str, str]]
) -> None:
    subject, number = candidates()

    async def file_late(store: Store) -> int:  # filed a month ago: its 10 working days are over
        month_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
        cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules, clock=lambda: month_ago)
        late = await cases.file(REPAIR, Actor("subject", "demo-subject", subject=subject), category="record",
                                description="已整改", subject=subject, department="market",
                                records=[CaseRef("penalties", "新市监处罚〔2000〕1号")],
                                detail={"target": "record", "commitment": COMMITMENT})
        return late.id

    late = hub.on_store(file_late)
    with speaking_for(hub, subject):
        case = data(hub.query(APPLY, "subject", {"input": record_input(number)}))["applyForRepair"]
    listed = all_repairs(hub)
    assert listed[0]["id"] == late and listed[0]["overdue"] and not any(r["overdue"] for r in listed[1:])
    assert [r["id"] for r in data(admin(hub, ADMIN_REPAIRS, {"overdue": True}))["repairs"]] == [late]
    response = admin(hub, ADMIN_DECIDE, {"id": case["id"], "approve": True, "note": "信用办审核同意"})
    decided = data(response)["decideRepair"]
    assert decided["status"] == "approved" and decided["history"][-1]["byKind"] == "credit-office"
    assert number not in public_numbers(hub, subject) and number in public_numbers(hub, subject, "market")
    assert [e.subjects for e in hub.audit_entries(response.headers["x-request-id"]) if not (e.detail or {}).get("intent")] == [[subject]]
    data(admin(hub, ADMIN_DECIDE, {"id": late, "approve": False, "note": "逾期未补正材料"}))


def test_a_minor_penalty_and_an_unknown_record_are_refused_clearly(hub: RunningHub) -> None:
    subject = hub.samples["minor_penalty"]
    [number] = public_numbers(hub, subject, "market")
    with speaking_for(hub, subject):
        refused = error(hub.query(APPLY, "subject", {"input": record_input(number)}))
        assert refused["extensions"]["code"] == "BAD_USER_INPUT" and "轻微 (minor) penalty is not shown" in refused["message"]
        unknown = error(hub.query(APPLY, "subject", {"input": record_input("新市监处罚〔1999〕1号")}))
        assert "no penalties record '新市监处罚〔1999〕1号'" in unknown["message"]


def test_a_department_that_is_down_refuses_the_application_and_nothing_is_stored(
    hub: RunningHub, candidates: Callable[[], tuple[str, str]]
) -> None:
    subject, number = candidates()
    before = all_repairs(hub)

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("connection refused")

    # the market bureau holds the record; then the tax bureau (another source of penalties) cannot
    # answer: it might hold the record too, so who decides cannot be told — both refused, nothing stored
    for name, said in (("market", "nothing was filed"),
                       ("tax", "the record could not be checked: tax did not answer; nothing was filed")):
        connector = hub.connector(name)
        with speaking_for(hub, subject):
            connector.fetch = down
            try:
                refused = error(hub.query(APPLY, "subject", {"input": record_input(number)}))
            finally:
                del connector.fetch
        assert refused["extensions"]["code"] == "UPSTREAM_UNAVAILABLE" and refused["extensions"]["department"] == name
        assert said in refused["message"]
        assert all_repairs(hub) == before


def test_a_repaired_blacklisting_ends_as_repaired(hub: RunningHub) -> None:
    subject, young = hub.samples["clean"], hub.samples["a_level_taxpayer"]
    today = hub.runtime.today()

    def blacklist(who: str, decided: dt.date) -> int:
        finding = {"subject": who, "basis": "market-serious", "facts": "发布虚假广告，情节严重", "legalBasis": "《广告法》第五十五条",
                   "decidedOn": decided.isoformat(), "records": [], "measures": ["S01"]}
        return int(data(hub.query(FINDING, "market", {"input": finding}))["recordFinding"]["listing"]["id"])

    listing = blacklist(subject, add_months(today, -12) - dt.timedelta(days=1))  # lasted 12 months yesterday
    fresh = blacklist(young, add_months(today, -12))  # its 12 months end today
    with speaking_for(hub, young):
        too_soon = error(hub.query(APPLY, "subject", {"input": {"listingId": fresh, "reason": "已整改", "commitment": COMMITMENT}}))
        assert too_soon["extensions"]["argument"] == "listingId" and f"from {today + dt.timedelta(days=1)}" in too_soon["message"]
        other = error(hub.query(APPLY, "subject", {"input": {"listingId": listing, "reason": "已整改", "commitment": COMMITMENT}}))
        assert other["extensions"]["code"] == "NOT_FOUND"  # not its listing
    with speaking_for(hub, subject):
        case = data(hub.query(APPLY, "subject", {"input": {"listingId": listing, "reason": "已整改并公开承诺", "commitment": COMMITMENT}}))["applyForRepair"]
        assert (case["category"], case["department"], case["status"]) == ("listing", "market", "applied")
        assert f"listing {listing}" in case["description"] and COMMITMENT in case["description"]
        assert error(hub.query(DECIDE, "court", {"id": case["id"], "approve": True, "note": "同意"}))["extensions"]["code"] == "NOT_FOUND"
        assert subject in {i["subject"] for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"]}
        decided = data(hub.query(DECIDE, "market", {"id": case["id"], "approve": True, "note": "同意移出严重失信主体名单"}))["decideRepair"]
        assert decided["status"] == "approved"
    assert subject not in {i["subject"] for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"]}
    assert young in {i["subject"] for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"]}
    history = data(admin(hub, LISTING, {"id": listing}))["creditListing"]
    assert history["status"] == "repaired"
    assert [(t["action"], t["by"]) for t in history["transitions"]] == [
        ("listed", hub.clients["market"]["client_id"]), ("repaired", hub.clients["market"]["client_id"])]
    assert f"credit repair {case['id']} approved" in history["transitions"][-1]["reason"]


# ---- two decisions at once over HTTP, on PostgreSQL ------------------------------------------------


@pytest.fixture
def pg_hub(tmp_path: Path, postgres_url: str) -> Iterator[RunningHub]:
    with running_hub(tmp_path, legal_persons=40, natural_persons=10, database_url=postgres_url,
                     rate_limits=NO_RATE_LIMITS) as running:
        yield running


def test_the_department_and_the_credit_office_deciding_at_once_on_postgresql(pg_hub: RunningHub) -> None:
    hub, subject = pg_hub, pg_hub.samples["clean"]
    decided = add_months(hub.runtime.today(), -13)
    finding = {"subject": subject, "basis": "market-serious", "facts": "严重违法", "legalBasis": "办法",
               "decidedOn": decided.isoformat(), "records": [], "measures": ["S01"]}
    listing = int(data(hub.query(FINDING, "market", {"input": finding}))["recordFinding"]["listing"]["id"])
    with speaking_for(hub, subject):
        case = data(hub.query(APPLY, "subject", {"input": {"listingId": listing, "reason": "已整改", "commitment": COMMITMENT}}))["applyForRepair"]
    market, office = hub.token("market"), hub.token("admin")
    out: dict[str, httpx.Response] = {}
    barrier = threading.Barrier(2)

    def post(path: str, token: str, approve: bool, key: str) -> None:
        with httpx.Client(base_url=hub.base_url, timeout=30) as http:
            barrier.wait()
            out[key] = http.post(path, json={"query": DECIDE, "variables": {"id": case["id"], "approve": approve, "note": key}},
                                 headers={"Authorization": f"Bearer {token}"})

    threads = [threading.Thread(target=post, args=("/graphql", market, True, "market approves")),
               threading.Thread(target=post, args=("/admin/graphql", office, False, "the office refuses"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bodies = {k: r.json() for k, r in out.items()}
    won = [k for k, b in bodies.items() if not b.get("errors")]
    assert len(won) == 1, bodies
    lost = next(b for k, b in bodies.items() if k not in won)
    assert "cannot be moved" in json.dumps(lost, ensure_ascii=False)
    history = data(admin(hub, LISTING, {"id": listing}))["creditListing"]
    if won == ["market approves"]:
        assert history["status"] == "repaired" and [t["action"] for t in history["transitions"]] == ["listed", "repaired"]
    else:
        assert history["status"] == "listed" and [t["action"] for t in history["transitions"]] == ["listed"]


def test_a_minor_penalty_is_repaired_where_the_policy_shows_minor_penalties(hub: RunningHub) -> None:
    subject = hub.samples["minor_penalty"]
    [number] = public_numbers(hub, subject, "market")
    with policy_in_force(hub, showing_minor(hub.runtime.policy)), speaking_for(hub, subject):
        case = data(hub.query(APPLY, "subject", {"input": record_input(number)}))["applyForRepair"]
        assert (case["status"], case["department"], case["category"]) == ("applied", "market", "record")
        decided = data(hub.query(DECIDE, "market", {"id": case["id"], "approve": True, "note": "罚款已缴清，同意修复"}))["decideRepair"]
        assert decided["status"] == "approved"
        assert number not in public_numbers(hub, subject) and number in public_numbers(hub, subject, "market")


def test_due_soon_follows_the_policys_reminder_days(hub: RunningHub) -> None:
    subject = hub.samples["clean"]

    async def file_today(store: Store) -> int:
        cases = CaseRegister(store, WorkingCalendar.load(), standard_case_rules)
        filed = await cases.file(REPAIR, Actor("subject", "demo-subject", subject=subject), category="record",
                                 description="已整改", subject=subject, department="market",
                                 records=[CaseRef("penalties", "新市监处罚〔2000〕2号")],
                                 detail={"target": "record", "commitment": COMMITMENT})
        return filed.id

    case_id = hub.on_store(file_today)
    due = "query { repairs(status: \"applied\") { id workingDaysLeft dueSoon } }"
    page = "{ repairs(status: \"applied\") { items { id workingDaysLeft dueSoon } } }"

    def shown() -> tuple[dict[str, Any], dict[str, Any]]:
        office = next(r for r in data(admin(hub, due))["repairs"] if r["id"] == case_id)
        market = next(r for r in data(hub.query(page, "market"))["repairs"]["items"] if r["id"] == case_id)
        return office, market

    try:
        office, market = shown()
        assert office == market and office["workingDaysLeft"] >= 10 and not office["dueSoon"]  # 2 days' reminder
        policy = hub.runtime.policy
        deadlines = dataclasses.replace(policy.cases.deadlines, reminder=30)
        with policy_in_force(hub, dataclasses.replace(policy, cases=dataclasses.replace(policy.cases, deadlines=deadlines))):
            office, market = shown()
            assert office["dueSoon"] and market["dueSoon"]
    finally:
        data(admin(hub, ADMIN_DECIDE, {"id": case_id, "approve": False, "note": "测试完毕"}))


def test_a_decision_answers_at_once_and_the_subject_is_re_rated_in_the_background(
    hub: RunningHub, candidates: Callable[[], tuple[str, str]]
) -> None:
    """A slow department must not hold a decision's answer: the approval has committed, and a client
    that timed out and asked again would be told the repair is approved. The re-rating that asks the
    departments runs after the answer (the market bureau is slow here: it answers once the decision
    has been answered)."""
    subject, _ = candidates()
    market = hub.connector("market")
    original = market.fetch

    async def latest_rating(store: Store) -> int:
        rating = await RatingRegister(store).latest(subject)
        return rating.id if rating is not None and rating.id is not None else 0

    for endpoint, kind, query in (("/graphql", "market", DECIDE), ("/admin/graphql", "admin", ADMIN_DECIDE)):
        finding = {"subject": subject, "basis": "market-serious", "facts": "发布虚假广告，情节严重", "legalBasis": "《广告法》第五十五条",
                   "decidedOn": add_months(hub.runtime.today(), -13).isoformat(), "records": [], "measures": ["S01"]}
        listing = int(data(hub.query(FINDING, "market", {"input": finding}))["recordFinding"]["listing"]["id"])
        with speaking_for(hub, subject):
            case = data(hub.query(APPLY, "subject", {"input": {"listingId": listing, "reason": "已整改", "commitment": COMMITMENT}}))["applyForRepair"]
        rated_before = hub.on_store(latest_rating)
        token = hub.token(kind)
        release, asked, answered = threading.Event(), threading.Event(), threading.Event()

        async def slow(*args: Any, **kwargs: Any) -> Any:
            asked.set()
            try:
                for _ in range(600):  # at most 30 s
                    if release.is_set():
                        break
                    await asyncio.sleep(0.05)
                return await original(*args, **kwargs)
            finally:
                answered.set()

        market.fetch = slow
        try:
            response = hub.http.post(endpoint, json={"query": query, "variables": {"id": case["id"], "approve": True, "note": "同意修复"}},
                                     headers={"Authorization": f"Bearer {token}"})
            before_the_department = not answered.is_set()
            release.set()
            assert before_the_department, f"{endpoint}: the decision waited for the department"
            settled(hub)
        finally:
            release.set()
            del market.fetch
        assert data(response)["decideRepair"]["status"] == "approved"
        assert asked.is_set()  # the subject was re-rated, after the answer
        assert hub.on_store(latest_rating) > rated_before
        assert subject not in {i["subject"] for i in data(hub.query(BLACKLIST, None))["blacklist"]["items"]}
        assert data(admin(hub, LISTING, {"id": listing}))["creditListing"]["status"] == "repaired"
