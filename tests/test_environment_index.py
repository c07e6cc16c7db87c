"""The credit environment index and the department assessment (issue 12): the district's
indicators per month, the composite index by its documented formula, the CSV form, the
department table — over a hub store seeded directly (findings, listings, rating snapshots, cases)
with real dates at month boundaries, on SQLite and PostgreSQL; then `creditEnvironmentIndex` on
`/graphql`, `/public/graphql` and the admin API of a running hub, and the CLI.

The seeded district, January to April 2026 (today 2026-04-15 where the computation is given a day):

- 44 subjects rated BBB (class B, 批发业) on 1 January; S1 (餐饮业) rated AA on 10 January and
  BBB on 5 March; S2 (制造业) A on 31 January; S3 (餐饮业) C on 1 February.
- S3: a serious market finding decided on 1 February (the 1st): blacklisted from that day.
- S4 (a natural person): a general tax finding decided on 31 January.
- S5: a general market finding decided 15 January, revoked at 2026-02-28T17:00Z — 1 March in
  Hohhot: in force on 28 February, not on 31 March.
- S6: red-listed 2024-02-28 for 24 months: its last day is 2026-02-28 (counts in February, not March).
- S2: red-listed 2026-01-01.
- S7: an environment finding of 2025-06-10 (blacklisted), the listing cancelled on 2026-03-31.
- Objections, complaints and a repair with deadlines across 春节 (15–23 February, worked
  Saturdays 14 and 28 February).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
import random
import re
import time
from dataclasses import replace
from typing import Any, AsyncIterator, Callable, Iterator, Sequence

import httpx
import pytest
from sqlalchemy import event, insert, select, update

from hub_fixture import NO_RATE_LIMITS, RunningHub, running_hub
from xinlian.hub.audit import AuditTrail
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.cases.assessment import (
    Availability,
    RequestAvailability,
    Source,
    assess,
    assessment_csv,
    department_assessment,
    quality_row,
)
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.index import (
    CACHE_TTL,
    CLASSES,
    COMPLAINT_CELLS,
    COMPLAINTS,
    COMPLEMENT,
    COUNT_CELLS,
    DERIVED,
    FORMULA_VERSION,
    LEVELS,
    MEDIAN,
    MIN_SUBJECTS,
    OFFICE,
    PAIRS,
    POPULATION,
    PUBLIC,
    SMALL,
    WEIGHTS,
    CaseFact,
    Cells,
    EnvironmentIndex,
    FindingFact,
    IndexCache,
    IndexFacts,
    IndexInputError,
    Month,
    MonthIndicators,
    PenaltyFact,
    RatingFact,
    Window,
    composite,
    compute_index,
    csv_row,
    environment_index,
    index_csv,
    load_facts,
    public_pattern,
    store_day,
)
from xinlian.hub.cases.index import CASES as CASE_TABLE
from xinlian.hub.cases.model import Actor, CaseRef
from xinlian.hub.cases.register import CaseRegister
from xinlian.hub.cli import index as index_cli
from xinlian.hub.credit.model import RecordRef
from xinlian.hub.credit.ratings import RATINGS
from xinlian.hub.credit.register import FINDINGS, CreditRegister
from xinlian.hub.store import Store
from xinlian.policies.cases import standard_case_rules
from xinlian.policies.credit import standard_credit_rules
from xinlian.schema.catalogue import FAMILIES
from xinlian.schema.identifiers import (
    InvalidIdentifier,
    id_check_char,
    org_code_check_char,
    uscc_check_char,
    validate_subject,
)

RULES = standard_credit_rules()
CALENDAR = WorkingCalendar.load()
TODAY = dt.date(2026, 4, 15)
UTC = dt.timezone.utc
JAN, FEB, MAR, APR = Month(2026, 1), Month(2026, 2), Month(2026, 3), Month(2026, 4)


def uscc(n: int) -> str:
    org = f"MA{n:06d}"
    body = "91150102" + org + org_code_check_char(org)
    return body + uscc_check_char(body)


def resident(body: str) -> str:
    return body + id_check_char(body)


S1, S2, S3, S5, S6, S7 = (uscc(n) for n in (1, 2, 3, 5, 6, 7))
S4 = resident("15010219800101123")
EXTRA = [uscc(100 + n) for n in range(44)]
SEEDED = (S1, S2, S3, S4, S5, S6, S7, *EXTRA)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = utc("2026-01-01T00:00:00")

    def __call__(self) -> dt.datetime:
        return self.now


def snapshot(subject: str, rated_on: str, level: str, cls: str, industry: str, penalties: list[dict[str, str]] | None) -> dict[str, Any]:
    """A `credit_ratings` row; `penalties` None: a snapshot from before inputs were kept (a bare list)."""
    explanation: Any = [] if penalties is None else {"indicators": [], "inputs": {"penalties": penalties}, "model_digest": ""}
    day = dt.date.fromisoformat(rated_on)
    return {
        "subject": subject, "subject_name": "", "industry": industry, "level": level, "score": 80.0, "supervision_class": cls,
        "model_version": "xc-2026.1", "policy_version": "v1", "explanation": json.dumps(explanation, ensure_ascii=False),
        "trigger": "bulk", "job_id": None, "rated_at": dt.datetime.combine(day, dt.time(2), UTC), "rated_on": day,
    }


def penalty(number: str, decided: str, severity: str) -> dict[str, str]:
    return {"decision_number": number, "decision_date": decided, "severity": severity}


async def seed(store: Store) -> dict[str, Any]:
    """Seed the district of the module docstring; returns the cases' deadlines by name."""
    async with store.engine.begin() as conn:
        await conn.execute(insert(RATINGS), [snapshot(s, "2026-01-01", "BBB", "B", "批发业", []) for s in EXTRA])
        await conn.execute(insert(RATINGS), [
            snapshot(S1, "2026-01-10", "AA", "A", "餐饮业", [penalty("P9", "2026-01-05", "一般")]),
            snapshot(S2, "2026-01-31", "A", "A", "制造业", [penalty("P2", "2026-03-31", "严重"), penalty("P3", "None", "一般")]),
            snapshot(S3, "2026-02-01", "C", "C", "餐饮业", None),
            snapshot(S1, "2026-03-05", "BBB", "B", "餐饮业", [penalty("P1", "2026-02-01", "一般"), penalty("P0", "2025-12-31", "严重")]),
        ])
    credit = CreditRegister(store)

    async def finding(subject: str, basis: str, department: str, decided: str) -> Any:
        return await credit.record_finding(
            RULES, subject=subject, basis=basis, facts="事实", legal_basis="依据", records=[RecordRef("penalties", "P")],
            department=department, decided_on=dt.date.fromisoformat(decided), measures=[], by="test", today=TODAY,
        )

    await finding(S3, "market-serious", "market", "2026-02-01")
    await finding(S4, "general-dishonesty", "tax", "2026-01-31")
    revoked = (await finding(S5, "general-dishonesty", "market", "2026-01-15")).finding
    await credit.revoke_finding(RULES, revoked.id, "market", "撤销", "test", TODAY)
    async with store.engine.begin() as conn:  # revoked at 01:00 on 1 March in Hohhot (still 28 February in UTC)
        await conn.execute(update(FINDINGS).where(FINDINGS.c.id == revoked.id).values(revoked_at=utc("2026-02-28T17:00:00")))
    cancelled = (await finding(S7, "environment-serious", "environment", "2025-06-10")).listing
    assert cancelled is not None
    await credit.end_listing(cancelled.id, "cancelled", "（2026）内0102执异1号", "test", dt.date(2026, 3, 31))
    for subject, listed_on in ((S6, "2024-02-28"), (S2, "2026-01-01")):
        await credit.list_on_red_list(RULES, subject=subject, basis="honour-red-list", reason="诚信典型", department="market",
                                      listed_on=dt.date.fromisoformat(listed_on), by="test", today=TODAY)

    clock = Clock()
    cases = CaseRegister(store, CALENDAR, standard_case_rules, clock=clock)
    office = Actor.credit_office("office")
    market = Actor("department", "demo-market", department="market")
    tax = Actor("department", "demo-tax", department="tax")
    deadlines: dict[str, dt.date | None] = {}

    async def at(moment: str, action: Callable[[], Any]) -> Any:
        clock.now = utc(moment)
        return await action()

    def objection(subject: str, department: str, family: str) -> Callable[[], Any]:
        return lambda: cases.file("objection", Actor("subject", f"c-{subject}", subject=subject), category="wrong",
                                  description="有误", subject=subject, department=department, records=[CaseRef(family, "P1")])

    def complaint(subject: str | None) -> Callable[[], Any]:
        return lambda: cases.file("complaint", Actor.public(), category="dishonest-conduct", description="举报",
                                  subject=subject, subject_name="某餐馆")

    def move(case: Any, action: str, actor: Actor, department: str | None = None) -> Callable[[], Any]:
        return lambda: cases.move(case.id, action, actor, "处理", department=department)

    o1 = await at("2026-01-05T02:00:00", objection(S1, "market", "penalties"))
    await at("2026-01-16T03:00:00", move(o1, "correct", market))
    o2 = await at("2026-01-20T01:00:00", objection(S2, "tax", "penalties"))
    await at("2026-02-04T01:00:00", move(o2, "uphold", tax))
    o3 = await at("2026-02-09T16:30:00", objection(S3, "market", "licenses"))  # 00:30 on 10 February in Hohhot
    await at("2026-02-12T02:00:00", lambda: cases.move(o3.id, "withdraw", Actor("subject", f"c-{S3}", subject=S3), "撤回"))
    o4 = await at("2026-03-20T02:00:00", objection(S1, "market", "penalties"))
    o5 = await at("2026-04-13T02:00:00", objection(S2, "tax", "penalties"))
    c1 = await at("2026-01-06T02:00:00", complaint(S1))
    c1 = await at("2026-01-07T02:00:00", move(c1, "assign", office, "market"))
    await at("2026-01-27T15:59:00", move(c1, "resolve", market))  # 23:59 on 27 January in Hohhot
    c2 = await at("2026-01-25T16:00:00", complaint(None))  # midnight: 26 January in Hohhot
    c2 = await at("2026-01-27T02:00:00", move(c2, "assign", office, "tax"))
    await at("2026-02-26T02:00:00", move(c2, "resolve", tax))
    c3 = await at("2026-02-01T16:30:00", complaint(S2))  # 2 February in Hohhot
    c3 = await at("2026-02-03T02:00:00", move(c3, "assign", office, "market"))
    await at("2026-02-27T02:00:00", move(c3, "resolve", market))
    c4 = await at("2026-03-02T02:00:00", complaint(S1))
    await at("2026-03-03T02:00:00", move(c4, "reject", office))
    r1 = await at("2026-03-09T02:00:00", lambda: cases.file(
        "repair", Actor("subject", f"c-{S3}", subject=S3), category="listing", description="已履行", subject=S3, department="market"))
    await at("2026-03-20T02:00:00", move(r1, "approve", market))
    for name, case in (("o1", o1), ("o2", o2), ("o3", o3), ("o4", o4), ("o5", o5), ("c1", c1), ("c2", c2), ("c3", c3),
                       ("c4", c4), ("r1", r1)):
        deadlines[name] = case.deadline
    return deadlines


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url)
    try:
        yield opened
    finally:
        await opened.close()


async def district(store: Store, industry: str | None = None) -> EnvironmentIndex:
    await seed(store)
    return await environment_index(store, RULES, CALENDAR, Window(JAN, APR), TODAY, industry, audience=OFFICE)


# ---- the expected figures, by month (January to April) -------------------------------------------------------------

KNOWN, RATED, DISHONEST = (50, 51, 51, 51), (46, 47, 47, 47), (3, 4, 3, 3)
BLACK, RED = (1, 2, 1, 1), (2, 2, 1, 1)
# kind: (filed, closed, due, on time) per month
CASES = {
    "objection": ((2, 1, 1, 1), (1, 2, 1, 0), (1, 0, 0, 0), (1, 0, 1, 0)),
    "complaint": ((2, 1, 1, 1), (1, 2, 1, 0), (1, 1, 2, 2), (0, 0, 0, 0)),
    "repair": ((0, 0, 0, 0), (0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 0, 0)),
}


def expected_index(components: dict[str, float | None]) -> float | None:
    """docs/cases.md: index = round(100 × Σ wᵢ·cᵢ / Σ wᵢ over the computable components, 2)."""
    weights = {"honest_share": 0.30, "a_class_share": 0.20, "blacklist_density": 0.20, "objections_on_time": 0.15,
               "complaints_on_time": 0.15}
    present = {k: v for k, v in components.items() if v is not None}
    return round(100 * sum(weights[k] * v for k, v in present.items()) / sum(weights[k] for k in present), 2) if present else None


COMPONENTS = (
    {"honest_share": 47 / 50, "a_class_share": 2 / 46, "blacklist_density": 1 - 20 / 50, "objections_on_time": 1.0,
     "complaints_on_time": 1.0},
    {"honest_share": 47 / 51, "a_class_share": 2 / 47, "blacklist_density": 1 - (2000 / 51) / 50, "objections_on_time": 0.0,
     "complaints_on_time": 0.0},
    {"honest_share": 48 / 51, "a_class_share": 1 / 47, "blacklist_density": 1 - (1000 / 51) / 50, "objections_on_time": None,
     "complaints_on_time": 1.0},
    {"honest_share": 48 / 51, "a_class_share": 1 / 47, "blacklist_density": 1 - (1000 / 51) / 50, "objections_on_time": 0.0,
     "complaints_on_time": None},
)


# ---- periods ----------------------------------------------------------------------------------------------------------


def test_the_period_defaults_to_the_twelve_months_up_to_this_one() -> None:
    assert Window.parse(None, None, TODAY) == Window(Month(2025, 5), APR)
    assert Window.parse("2026-02", None, TODAY) == Window(FEB, APR)
    assert Window.parse(None, "2026-01", TODAY) == Window(Month(2025, 2), JAN)
    assert len(Window.parse("2021-05", "2026-04", TODAY).months) == 60
    assert [m.text for m in Window(Month(2025, 11), FEB).months] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert (Month(2024, 2).first, Month(2024, 2).last, Month(2025, 12).last) == (
        dt.date(2024, 2, 1), dt.date(2024, 2, 29), dt.date(2025, 12, 31))


@pytest.mark.parametrize(("first", "last", "argument", "says"), [
    ("2026-13", None, "from", "'2026-13' is not a month (YYYY-MM"),
    ("2026-1", None, "from", "is not a month"),
    ("2026-01-01", None, "from", "is not a month"),
    ("0000-01", None, "from", "is not a month"),
    (None, "March", "to", "'March' is not a month"),
    ("2026-03", "2026-02", "from", "from: 2026-03 is after to (2026-02)"),
    ("2021-04", "2026-04", "from", "at most 60 months"),
    (None, "2026-05", "to", "to: 2026-05 is after the current month (2026-04)"),
])
def test_a_bad_period_is_refused_naming_the_argument(first: str | None, last: str | None, argument: str, says: str) -> None:
    with pytest.raises(IndexInputError) as refused:
        Window.parse(first, last, TODAY)
    assert refused.value.argument == argument and says in str(refused.value)


# ---- the indicators -----------------------------------------------------------------------------------------------------


async def test_the_case_deadlines_count_working_days_across_the_spring_festival(store: Store) -> None:
    deadlines = await seed(store)
    assert deadlines == {
        "o1": dt.date(2026, 1, 19), "o2": dt.date(2026, 2, 3), "o3": dt.date(2026, 3, 2), "o4": dt.date(2026, 4, 3),
        "o5": dt.date(2026, 4, 27), "c1": dt.date(2026, 1, 28), "c2": dt.date(2026, 2, 24), "c3": dt.date(2026, 3, 2),
        "c4": dt.date(2026, 3, 5), "r1": dt.date(2026, 3, 23),
    }


async def test_subjects_dishonesty_and_lists_at_each_month_end(store: Store) -> None:
    result = await district(store)
    months = result.months
    assert [m.month for m in months] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert [m.as_of for m in months] == [dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31), TODAY]
    assert tuple(m.subjects_known for m in months) == KNOWN
    assert tuple(m.subjects_rated for m in months) == RATED
    assert tuple(m.subjects_with_dishonesty for m in months) == DISHONEST
    assert [m.dishonesty_share for m in months] == [3 / 50, 4 / 51, 3 / 51, 3 / 51]
    assert tuple(m.blacklist_size for m in months) == BLACK  # S7's listing cancelled on 31 March is off it that day
    assert tuple(m.red_list_size for m in months) == RED  # S6's last day, 28 February, counts in February only
    assert [m.blacklist_per_1000 for m in months] == [20.0, 2000 / 51, 1000 / 51, 1000 / 51]


async def test_findings_decided_in_the_month_by_severity_and_department(store: Store) -> None:
    months = (await district(store)).months
    # S3's finding of 1 February counts in February; S5's is revoked and left out
    assert [dict(m.findings) for m in months] == [
        {"general": 1, "serious": 0}, {"general": 0, "serious": 1}, {"general": 0, "serious": 0}, {"general": 0, "serious": 0}]
    assert [dict(m.findings_by_department) for m in months] == [{("tax", "general"): 1}, {("market", "serious"): 1}, {}, {}]


async def test_cases_filed_closed_and_answered_on_time(store: Store) -> None:
    months = (await district(store)).months
    for kind, figures in CASES.items():
        got = tuple(tuple(m.cases[f"{kind}s_{w}"] for w in ("filed", "closed", "due", "on_time")) for m in months)
        assert got == figures, kind
    assert [m.cases["objections_corrected"] for m in months] == [1, 0, 0, 0]
    assert [m.cases["complaints_resolved"] for m in months] == [1, 2, 0, 0]
    assert [m.cases["repairs_approved"] for m in months] == [0, 0, 1, 0]
    # January: 15 working days (6 → 27 January); February: 18 and 14 across 春节 → 16
    assert [m.complaint_median_working_days for m in months] == [15.0, 16.0, None, None]


async def test_rating_distribution_and_penalties_from_the_newest_snapshots(store: Store) -> None:
    months = (await district(store)).months
    levels = [{k: v for k, v in m.levels.items() if v} for m in months]
    assert levels == [{"AA": 1, "A": 1, "BBB": 44}, {"AA": 1, "A": 1, "BBB": 44, "C": 1},
                      {"A": 1, "BBB": 45, "C": 1}, {"A": 1, "BBB": 45, "C": 1}]
    assert list(months[0].levels) == ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C"]
    assert [dict(m.classes) for m in months] == [{"A": 2, "B": 44, "C": 0}, {"A": 2, "B": 44, "C": 1},
                                                 {"A": 1, "B": 45, "C": 1}, {"A": 1, "B": 45, "C": 1}]
    # S1's older snapshot read a January penalty its newest no longer holds: not counted
    assert [{k: v for k, v in m.penalties.items() if v} for m in months] == [{}, {"一般": 1}, {"严重": 1}, {}]


async def test_the_composite_index_follows_the_documented_formula(store: Store) -> None:
    result = await district(store)
    assert result.formula_version == FORMULA_VERSION == "xc-cei-2026.1"
    assert dict(result.weights) == dict(WEIGHTS) and sum(WEIGHTS.values()) == pytest.approx(1.0)
    for m, components in zip(result.months, COMPONENTS):
        assert dict(m.components) == pytest.approx(components), m.month
        assert m.index == expected_index(components), m.month
    assert [m.index for m in result.months] == [71.07, 32.81, 65.67, 48.02]


async def test_an_industry_counts_only_its_subjects(store: Store) -> None:
    result = await district(store, "餐饮业")  # S1 and S3
    jan, feb = result.months[0], result.months[1]
    assert result.industry == "餐饮业"
    assert (jan.subjects_known, jan.subjects_rated, jan.subjects_with_dishonesty, jan.blacklist_size) == (1, 1, 0, 0)
    assert (feb.subjects_known, feb.subjects_rated, feb.subjects_with_dishonesty, feb.blacklist_size) == (2, 2, 1, 1)
    assert jan.index == 100.0
    # February: no objection or complaint of theirs was due (C2 names no subject): weights 0.3 + 0.2 + 0.2
    assert dict(feb.components) == {"honest_share": 0.5, "a_class_share": 0.5, "blacklist_density": 0.0,
                                    "objections_on_time": None, "complaints_on_time": None}
    assert feb.index == round(100 * (0.3 * 0.5 + 0.2 * 0.5) / 0.7, 2) == 35.71
    assert {k: v for k, v in feb.penalties.items() if v} == {"一般": 1}
    nobody = await environment_index(store, RULES, CALENDAR, Window(JAN, APR), TODAY, "采矿业", audience=OFFICE)
    assert [m.subjects_known for m in nobody.months] == [0, 0, 0, 0] and [m.index for m in nobody.months] == [None] * 4


async def test_the_csv_reads_back_to_the_same_numbers(store: Store) -> None:
    result = await district(store)
    text = index_csv(result)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["month"] for r in rows] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    for row, m in zip(rows, result.months):
        assert int(row["subjects_known"]) == m.subjects_known and float(row["index"]) == m.index
        assert float(row["dishonesty_share"]) == m.dishonesty_share and row["formula_version"] == FORMULA_VERSION
        expected = csv_row(result, m)
        for column, cell in row.items():
            value = expected.get(column, 0 if column.startswith("findings_") else None)
            if value is None:
                assert cell == "", column
            elif isinstance(value, float):
                assert float(cell) == value, column
            else:
                assert cell == str(value), column
    assert [r["findings_market_serious"] for r in rows] == ["0", "1", "0", "0"]
    assert [r["component_objections_on_time"] for r in rows] == ["1.0", "0.0", "", "0.0"]
    assert [r["complaints_on_time"] for r in rows] == ["1", "0", "2", "0"]


# ---- what the public may see (issue 12 review: a subject's figures through a small industry) ------------------------


def small_district() -> IndexFacts:
    """January 2026, built by hand: 餐饮业 R0 (AAA, class A, a general tax finding, a complaint about
    it) and R1–R5 (BBB, B); 批发业 W0–W5 (AAA, A) and W6–W11 (BBB, B); 制造业 M0 alone (C, a serious
    market finding, a minor penalty, a complaint about it resolved on time); N0, never rated, with a
    general tax finding (no industry: the district's totals only)."""
    people = {**{f"R{i}": ("餐饮业", "AAA" if i == 0 else "BBB") for i in range(6)},
              **{f"W{i}": ("批发业", "AAA" if i < 6 else "BBB") for i in range(12)}, "M0": ("制造业", "C")}
    classes = {"AAA": "A", "BBB": "B", "C": "C"}
    day = dt.date
    facts = IndexFacts()
    facts.industries = {s: industry for s, (industry, _) in people.items()}
    facts.ratings = {day(2026, 1, 31): [RatingFact(s, level, classes[level]) for s, (_, level) in people.items()]}
    facts.findings = [
        FindingFact("R0", "general", "general-dishonesty", "tax", day(2026, 1, 10), None, False),
        FindingFact("M0", "serious", "market-serious", "market", day(2026, 1, 12), None, False),
        FindingFact("N0", "general", "general-dishonesty", "tax", day(2026, 1, 20), None, False),
    ]
    facts.penalties = [PenaltyFact("M0", day(2026, 1, 8), "轻微")]
    facts.cases = [
        CaseFact(1, "complaint", "R0", "market", "assigned", (), day(2026, 1, 15), None, day(2026, 2, 20)),
        CaseFact(2, "complaint", "M0", "market", "resolved", (), day(2026, 1, 5), day(2026, 1, 20), day(2026, 1, 25)),
    ]
    return facts


def january(facts: IndexFacts, industry: str | None, audience: str) -> MonthIndicators:
    return compute_index(facts, Window(JAN, JAN), TODAY, RULES, CALENDAR, industry, audience).months[0]


def shown(m: MonthIndicators) -> dict[str, Any]:
    """Every figure of a month as the CSV has it (counts, shares, components, the index)."""
    result = EnvironmentIndex(m.month, m.month, None, (m,))
    row = csv_row(result, m)
    return {k: v for k, v in row.items() if k not in ("month", "as_of", "industry", "formula_version", "suppressed")}


LINE_COLUMNS = [c for c in COUNT_CELLS if c not in COMPLAINT_CELLS]
UNIVERSE = frozenset(LINE_COLUMNS)
CLASS_NAMES = tuple(f"class_{k}" for k in CLASSES)


def assert_nothing_by_subtraction(facts: IndexFacts, industries: list[str]) -> None:
    """No suppressed figure of an industry's public answer is the one unknown of a sum the public
    can form: the district's figure (shown) minus every industry's; an industry's subjects rated
    minus its levels (or classes); its findings of a severity minus those by department. The
    subjects without an industry count as an unknown when they count any (they are never shown)."""
    answers = {g: january(facts, g, PUBLIC) for g in industries}
    public = {g: shown(m) for g, m in answers.items()}
    population = {g for g, m in answers.items() if m.suppressed.get("subjects_known") == POPULATION}
    office = {g: shown(january(facts, g, OFFICE)) for g in industries}
    district = shown(january(facts, None, PUBLIC))
    columns = set(LINE_COLUMNS) | {c for g in industries for c in office[g] if c.startswith("findings_") and c.count("_") >= 2}
    for c in sorted(columns):
        hidden = [g for g in industries if g in population or public[g].get(c, 0) is None]
        if hidden:
            rest = (district.get(c) or 0) - sum(office[g].get(c, 0) or 0 for g in industries)
            assert len(hidden) + (rest > 0) >= 2, (c, hidden, rest)
    for g in industries:
        row = public[g]
        for total, members in (("subjects_rated", [f"level_{lv}" for lv in LEVELS]), ("subjects_rated", [f"class_{k}" for k in CLASSES])):
            hidden = [m for m in members if row[m] is None]
            assert not hidden or len(hidden) + (row[total] is None) >= 2, (g, total, hidden)


def test_outside_the_credit_office_a_small_industry_shows_nothing() -> None:
    facts = small_district()
    office = january(facts, "制造业", OFFICE)  # M0 alone: its level, finding, penalty and the complaint about it
    assert (office.subjects_known, office.levels["C"], office.classes["C"], office.findings["serious"]) == (1, 1, 1, 1)
    assert (office.penalties["轻微"], office.cases["complaints_filed"], office.cases["complaints_resolved"]) == (1, 1, 1)
    assert office.findings_by_department == {("market", "serious"): 1} and office.suppressed == {}
    for industry in ("制造业", "采矿业"):  # one subject, or none: the same answer
        alone = january(facts, industry, PUBLIC)
        assert set(shown(alone).values()) == {None}, industry
        assert alone.findings_by_department == {} and alone.complaint_median_working_days is None
        assert set(alone.suppressed.values()) == {POPULATION} and alone.suppressed["level_C"] == POPULATION
        assert alone.suppressed["index"] == POPULATION and alone.suppressed["component_honest_share"] == POPULATION


def test_outside_the_credit_office_small_cells_and_their_complements_are_suppressed() -> None:
    facts = small_district()
    office, public = january(facts, "餐饮业", OFFICE), january(facts, "餐饮业", PUBLIC)
    assert (office.levels["AAA"], office.classes["A"], office.subjects_with_dishonesty, office.findings["general"]) == (1, 1, 1, 1)
    # R0's level, class, finding: 1 subject each — suppressed, not 0
    assert (public.levels["AAA"], public.classes["A"], public.subjects_with_dishonesty, public.findings["general"]) == (None,) * 4
    assert {k: public.suppressed[k] for k in ("level_AAA", "class_A", "subjects_with_dishonesty", "findings_general",
                                              "findings_tax_general")} == dict.fromkeys(
        ("level_AAA", "class_A", "subjects_with_dishonesty", "findings_general", "findings_tax_general"), SMALL)
    assert public.findings_by_department == {("tax", "general"): None}
    # subjects rated minus the other levels would give AAA back: BBB goes too (and A's complement B)
    assert (public.levels["BBB"], public.suppressed["level_BBB"], public.classes["B"]) == (None, COMPLEMENT, None)
    assert public.levels["AA"] == 0 and public.penalties["一般"] == 0  # a zero stays 0
    # what is computed from a suppressed figure is suppressed; the index is taken over the components shown
    assert public.dishonesty_share is None and public.suppressed["dishonesty_share"] == DERIVED
    assert public.components["a_class_share"] is None and public.suppressed["component_a_class_share"] == DERIVED
    # the district minus the other industries would give it back: 批发业's AAA is suppressed with it
    wholesale = january(facts, "批发业", PUBLIC)
    assert (wholesale.subjects_known, wholesale.levels["AAA"], wholesale.suppressed["level_AAA"]) == (12, None, COMPLEMENT)
    assert wholesale.components["honest_share"] == 1.0 and wholesale.index == composite(
        {k: v for k, v in wholesale.components.items()})
    assert_nothing_by_subtraction(facts, ["制造业", "批发业", "餐饮业"])


def check_pattern(groups: dict[str | None, Cells], departments: Sequence[tuple[str, str]]) -> None:
    """Every small cell of an industry suppressed; every line (a breakdown and the figure it adds
    up to; a figure across the industries and the district's) with a suppressed cell has two
    unknowns at least, counting `MIN_SUBJECTS` subjects together where a non-zero cell was left."""
    hidden = public_pattern(groups)
    industries = sorted(g for g in groups if g)
    for g in industries:
        cells, mine = groups[g], hidden[g]
        if cells.count("subjects_known") < MIN_SUBJECTS:
            assert mine["subjects_known"] == POPULATION and all(
                mine.get(c) == POPULATION for c in cells.counts if c in UNIVERSE or isinstance(c, tuple))
            continue
        assert all(c in mine for c, n in cells.subjects.items() if 0 < n < MIN_SUBJECTS and c in UNIVERSE)
        for whole, part, remainder in PAIRS:  # a remainder worked out by subtraction is never small
            if whole not in mine and part not in mine:
                assert not 0 < cells.subjects.get(remainder, 0) < MIN_SUBJECTS, (g, whole, part, mine)
        for total, members in (("subjects_rated", [f"level_{lv}" for lv in LEVELS]), ("subjects_rated", list(CLASS_NAMES)),
                               ("findings_serious", list(departments))):
            unknown = [m for m in members if m in mine]
            if unknown or total in mine:
                assert len(unknown) + (total in mine) >= 2, (g, total, mine)
                left = [m for m in members if m not in mine and cells.count(m)]
                assert total in mine or sum(cells.subjects.get(m, 0) for m in unknown) >= MIN_SUBJECTS or not left, (g, total)
    for whole, part, remainder in PAIRS:  # a remainder across the industries, unknown where its part or whole is
        unknown = [g for g in industries if part in hidden[g] or whole in hidden[g]]
        rest = groups[None].subjects.get(remainder, 0) if None in groups else 0
        if [g for g in unknown if groups[g].subjects.get(remainder, 0)]:
            assert len(unknown) + (rest > 0) >= 2 or len(unknown) == len(industries), (remainder, unknown)
            left = [g for g in industries if g not in unknown and groups[g].subjects.get(remainder, 0)]
            assert sum(groups[g].subjects.get(remainder, 0) for g in unknown) + rest >= MIN_SUBJECTS or not left, (remainder, unknown)
    for c in {c for g in industries for c in groups[g].counts}:
        unknown = [g for g in industries if c in hidden[g]]
        rest = groups[None].subjects.get(c, 0) if None in groups else 0
        if unknown:
            assert len(unknown) + (rest > 0) >= 2 or len(unknown) == len(industries), (c, unknown)
            left = [g for g in industries if c not in hidden[g] and groups[g].count(c)]
            assert sum(groups[g].subjects.get(c, 0) for g in unknown) + rest >= MIN_SUBJECTS or not left, (c, unknown)


def test_the_suppression_pattern_leaves_no_line_with_one_unknown() -> None:
    """`public_pattern` over 200 random months of 2 to 8 industries and a group without one, with
    one or two departments deciding findings and subjects with several records."""
    rng = random.Random(12)
    for _ in range(200):
        departments = rng.choice(([("market", "serious")], [("market", "serious"), ("tax", "serious")]))
        groups: dict[str | None, Cells] = {}
        for g in [f"行业{i}" for i in range(rng.randint(2, 8))] + [None]:
            levels = {f"level_{lv}": rng.choice((0, 0, 1, 2, 4, 5, 9, 30)) for lv in LEVELS}
            classes = {"class_A": levels["level_AAA"] + levels["level_AA"], "class_C": levels["level_C"]}
            classes["class_B"] = sum(levels.values()) - classes["class_A"] - classes["class_C"]
            counts: dict[Any, int] = {**levels, **classes, "subjects_rated": sum(levels.values())}
            counts["subjects_known"] = counts["subjects_rated"] + rng.choice((0, 1, 3))
            counts["penalties_一般"] = rng.choice((0, 1, 6))
            findings = {d: rng.choice((0, 1, 2, 5, 7)) for d in departments}
            counts.update(findings, findings_serious=sum(findings.values()))
            dishonest = rng.randint(0, counts["subjects_known"])
            counts.update(subjects_with_dishonesty=dishonest, subjects_honest=counts["subjects_known"] - dishonest)
            on_time, late = rng.choice((0, 3, 6, 20)), rng.choice((0, 1, 2, 5))
            counts.update(objections_due=on_time + late, objections_on_time=on_time, objections_late=late)
            subjects = dict(counts)  # findings, penalties and cases: a subject may have several
            for c in (*findings, "findings_serious", "penalties_一般", "objections_due", "objections_on_time", "objections_late"):
                subjects[c] = rng.randint(1, counts[c]) if counts[c] else 0
            groups[g] = Cells(counts, subjects)
        check_pattern(groups, departments)


def test_a_figure_worked_out_by_subtraction_is_protected_too() -> None:
    """Review of the index: `due − onTime` (cases answered late) and `subjectsKnown −
    subjectsWithDishonesty` (subjects without dishonesty records) are never shown, but the public
    can subtract; one late answer or one honest subject in an industry suppresses the part shown."""
    def group(known: int, dishonest: int, due: int, on_time: int) -> Cells:
        counts: dict[Any, int] = {"subjects_known": known, "subjects_rated": known, "level_BBB": known, "class_B": known,
                                  "subjects_with_dishonesty": dishonest, "subjects_honest": known - dishonest,
                                  "objections_due": due, "objections_on_time": on_time, "objections_late": due - on_time}
        return Cells(counts, dict(counts))

    groups: dict[str | None, Cells] = {"I0": group(10, 9, 8, 7), "I1": group(20, 5, 12, 6), "I2": group(30, 6, 9, 0)}
    # and across the industries (review): A's two honest subjects were the district's minus B's
    # and C's, once B's part was hidden beside A's for the parts' sake alone
    across: dict[str | None, Cells] = {"A": group(10, 8, 0, 0), "B": group(6, 6, 0, 0), "C": group(20, 10, 0, 0)}
    shown_to_public = public_pattern(across)
    assert shown_to_public["A"]["subjects_with_dishonesty"] == COMPLEMENT
    assert "subjects_with_dishonesty" in shown_to_public["C"]  # the honest ones: A's 2 with C's 10, not B's 0
    check_pattern(across, [])
    hidden = public_pattern(groups)
    assert hidden["I0"]["subjects_with_dishonesty"] == COMPLEMENT  # 10 − 9: one honest subject
    assert hidden["I0"]["objections_on_time"] == COMPLEMENT  # 8 − 7: one late answer
    assert "objections_on_time" not in hidden["I2"]  # 9 − 0: nine late, none singled out
    check_pattern(groups, [])


def test_a_line_of_one_department_hides_its_total() -> None:
    """Review of the index: one department deciding every serious finding of the month made an
    industry's breakdown a line of one cell, its total shown: I0's one finding came back as
    15 (the district) − 6 (I1's total) − 8 (I2's cell), the never-rated subjects' 4 apart."""
    def group(known: int, market: int, tax: int = 0) -> Cells:
        counts: dict[Any, int] = {"subjects_known": known, "subjects_rated": known, "level_BBB": known, "class_B": known}
        if market:
            counts[("market", "serious")] = market
        if tax:
            counts[("tax", "serious")] = tax
        counts["findings_serious"] = market + tax
        return Cells(counts, dict(counts))

    groups: dict[str | None, Cells] = {"I0": group(10, 1), "I1": group(10, 6), "I2": group(10, 8), None: group(4, 0, 4)}
    hidden = public_pattern(groups)
    assert hidden["I0"][("market", "serious")] == SMALL
    assert "findings_serious" in hidden["I0"]  # the one cell's total goes with it
    check_pattern(groups, [("market", "serious"), ("tax", "serious")])


def test_five_subjects_are_counted_as_subjects_not_records() -> None:
    """Review of the index: the complement had to count 5 together in records, so one subject's
    five findings and another's one made a pair the public could narrow to two subjects."""
    def group(level_a: int, level_b: int, findings: int, subjects: int) -> Cells:
        counts: dict[Any, int] = {"subjects_known": 20, "subjects_rated": 20, "level_AAA": level_a, "level_BBB": level_b,
                                  "class_A": level_a, "class_B": level_b, "findings_serious": findings,
                                  ("market", "serious"): findings}
        return Cells(counts, {**counts, "findings_serious": subjects, ("market", "serious"): subjects})

    groups: dict[str | None, Cells] = {"I0": group(10, 10, 1, 1), "I1": group(10, 10, 5, 1), "I2": group(10, 10, 30, 20),
                                       "I3": group(10, 10, 40, 25)}
    hidden = public_pattern(groups)
    across = [g for g in ("I0", "I1", "I2", "I3") if ("market", "serious") in hidden[g]]
    assert "I0" in across and "I1" in across  # both count 1 subject: small
    assert sum(groups[g].subjects[("market", "serious")] for g in across) >= MIN_SUBJECTS  # so a third is hidden with them
    check_pattern(groups, [("market", "serious")])


def test_complaints_are_never_shown_per_industry_outside_the_credit_office() -> None:
    facts = small_district()
    assert january(facts, "餐饮业", OFFICE).cases["complaints_filed"] == 1  # the complaint about R0
    for industry in ("餐饮业", "批发业"):  # even a zero would say whether one was filed
        public = january(facts, industry, PUBLIC)
        for name in ("complaints_filed", "complaints_closed", "complaints_due", "complaints_on_time", "complaints_resolved"):
            assert public.cases[name] is None and public.suppressed[name] == COMPLAINTS, (industry, name)
        assert public.complaint_median_working_days is None and public.suppressed[MEDIAN] == COMPLAINTS
        assert public.components["complaints_on_time"] is None and public.suppressed["component_complaints_on_time"] == COMPLAINTS
    district = january(facts, None, PUBLIC)  # the district's totals are shown
    assert (district.cases["complaints_filed"], district.cases["complaints_resolved"], district.suppressed) == (2, 1, {})
    assert district == january(facts, None, OFFICE)


def test_a_district_month_of_fewer_than_five_subjects_shows_nothing_to_the_public() -> None:
    facts = small_district()
    few = replace(facts, ratings={dt.date(2026, 1, 31): facts.ratings[dt.date(2026, 1, 31)][:3]}, findings=[], cases=[], penalties=[])
    office, public = january(few, None, OFFICE), january(few, None, PUBLIC)
    assert (office.subjects_known, office.levels["AAA"], office.levels["BBB"]) == (3, 1, 2)
    assert set(shown(public).values()) == {None} and set(public.suppressed.values()) == {POPULATION}
    assert january(facts, None, PUBLIC).suppressed == {}  # 20 subjects: shown


async def test_the_public_district_in_a_month_before_five_subjects_were_known(store: Store) -> None:
    await seed(store)  # 31 December 2025: S7 (found and blacklisted in 2025) and S6 (red-listed in 2024) only
    window = Window(Month(2025, 12), JAN)
    office = await environment_index(store, RULES, CALENDAR, window, TODAY, audience=OFFICE)
    public = await environment_index(store, RULES, CALENDAR, window, TODAY, audience=PUBLIC)
    assert (office.months[0].subjects_known, office.months[0].blacklist_size, office.months[0].red_list_size) == (2, 1, 1)
    assert set(shown(public.months[0]).values()) == {None} and set(public.months[0].suppressed.values()) == {POPULATION}
    assert public.months[1] == office.months[1] and public.months[1].subjects_known == 50


# ---- days in Hohhot whatever the server's time zone (SQLite hands times back naive) -----------------------------------


@pytest.fixture
def shanghai_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's local time zone is Asia/Shanghai (as on a hub host in China), not UTC."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_naive_store_time_is_utc_whatever_the_local_time_zone(shanghai_local_time: None) -> None:
    assert time.localtime(0).tm_hour == 8  # the local zone is in force
    assert store_day(dt.datetime(2026, 2, 28, 17, 0)) == dt.date(2026, 3, 1)  # as SQLite returns it: UTC
    assert store_day(dt.datetime(2026, 1, 31, 16, 30, tzinfo=UTC)) == dt.date(2026, 2, 1)
    assert store_day(dt.datetime(2026, 1, 31, 15, 59)) == dt.date(2026, 1, 31)


async def test_revocations_and_closings_fall_on_their_hohhot_day_on_sqlite_in_shanghai(
    sqlite_url: str, shanghai_local_time: None
) -> None:
    store = await Store.open(sqlite_url)
    try:
        await seed(store)
        async with store.engine.begin() as conn:  # O2 upheld at 00:30 on 1 February in Hohhot (31 January in UTC)
            await conn.execute(update(CASE_TABLE).where(CASE_TABLE.c.kind == "objection", CASE_TABLE.c.status == "upheld")
                               .values(closed_at=utc("2026-01-31T16:30:00")))
        months = (await environment_index(store, RULES, CALENDAR, Window(JAN, MAR), TODAY, audience=OFFICE, cache=IndexCache())).months
    finally:
        await store.close()
    # S5's finding, revoked at 01:00 on 1 March in Hohhot, is in force on 28 February
    assert [m.subjects_with_dishonesty for m in months] == [3, 4, 3]
    assert [m.cases["objections_closed"] for m in months] == [1, 2, 0]


# ---- the cache and the one pass over rating snapshots ------------------------------------------------------------------


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_closed_months_come_from_memory_until_the_store_changes(store: Store) -> None:
    await seed(store)
    ticks = Ticks()
    cache = IndexCache(clock=ticks)

    async def ask(industry: str | None = None, audience: str = OFFICE) -> EnvironmentIndex:
        return await environment_index(store, RULES, CALENDAR, Window(JAN, APR), TODAY, industry, audience=audience, cache=cache)

    first = await ask()
    assert (cache.loads, cache.computed, cache.rating_reads) == (1, 4, 1)
    assert await ask() == first and (cache.loads, cache.computed) == (1, 5)  # April, the current month, computed again
    assert first == await environment_index(store, RULES, CALENDAR, Window(JAN, APR), TODAY, audience=OFFICE, cache=IndexCache())
    await ask("餐饮业", PUBLIC)
    assert (cache.loads, cache.computed) == (1, 6)  # another industry and audience: the same months' tables
    # a finding decided in February (credit_findings moves): read again
    await CreditRegister(store).record_finding(
        RULES, subject=EXTRA[0], basis="general-dishonesty", facts="事实", legal_basis="依据", records=[RecordRef("penalties", "P")],
        department="tax", decided_on=dt.date(2026, 2, 10), measures=[], by="test", today=TODAY)
    changed = await ask()
    assert cache.loads == 2 and [m.findings["general"] for m in changed.months] == [1, 1, 0, 0]
    assert (cache.computed, cache.rating_reads) == (10, 1)  # every month again; the ratings at their ends kept
    # a rating snapshot (no change trigger on credit_ratings): seen by the newest snapshot's id
    async with store.engine.begin() as conn:
        await conn.execute(insert(RATINGS), [snapshot(uscc(500), "2026-02-15", "AAA", "A", "批发业", [])])
    rated = await ask()
    assert cache.loads == 3 and [m.subjects_rated for m in rated.months] == [46, 48, 48, 48]
    assert cache.rating_reads == 2  # a snapshot made on 15 February: the ratings at February's end are read again
    # a case moved (cases)
    cases = CaseRegister(store, CALENDAR, standard_case_rules)
    await cases.file("objection", Actor("subject", "c", subject=EXTRA[1]), category="wrong", description="有误",
                     subject=EXTRA[1], department="market", records=[CaseRef("penalties", "P7")])
    await ask()
    assert cache.loads == 4
    # unchanged, but older than the time bound (a snapshot removed by hand has no trigger either)
    await ask()
    ticks.now += CACHE_TTL + 1
    await ask()
    assert cache.loads == 5 and CACHE_TTL == 600.0


async def test_a_change_to_another_policy_reads_the_months_again(store: Store) -> None:
    await seed(store)
    cache = IndexCache()
    await environment_index(store, RULES, CALENDAR, Window(JAN, FEB), TODAY, audience=OFFICE, cache=cache)
    other = replace(RULES, bases={k: replace(v, months=1) if k == "general-dishonesty" else v for k, v in RULES.bases.items()})
    shorter = await environment_index(store, other, CALENDAR, Window(JAN, APR), TODAY, audience=OFFICE, cache=cache)
    assert cache.loads == 2 and [m.subjects_with_dishonesty for m in shorter.months] == [3, 3, 2, 2]  # S5's ends 15 Feb, S4's 28 Feb


def newest_by_day(rows: list[Any], days: list[dt.date]) -> dict[dt.date, list[tuple[str, str, str]]]:
    """The definition, one day at a time: each subject's snapshot of the highest id made by the day."""
    out = {}
    for day in days:
        best: dict[str, Any] = {}
        for r in rows:
            if r.rated_on <= day and (r.subject not in best or r.id > best[r.subject].id):
                best[r.subject] = r
        out[day] = sorted((s, r.level, r.supervision_class) for s, r in best.items())
    return out


async def test_the_rating_at_every_month_end_is_read_in_one_pass(store: Store) -> None:
    await seed(store)
    async with store.engine.begin() as conn:  # a snapshot added later for an earlier day: the higher id still wins
        await conn.execute(insert(RATINGS), [snapshot(S2, "2026-01-20", "BB", "B", "制造业", []),
                                             snapshot(uscc(600), "2026-05-02", "B", "B", "批发业", [])])
        rows = (await conn.execute(select(RATINGS))).all()
    days = [dt.date(2025, 12, 31), dt.date(2026, 1, 19), dt.date(2026, 1, 31), dt.date(2026, 2, 28), TODAY, dt.date(2026, 6, 1)]
    facts = await load_facts(store, days)
    assert {d: sorted((r.subject, r.level, r.supervision_class) for r in facts.ratings[d]) for d in days} == newest_by_day(rows, days)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await environment_index(store, RULES, CALENDAR, Window(Month(2021, 5), APR), TODAY, audience=OFFICE, cache=IndexCache())
        sixty = list(statements)
        statements.clear()
        await environment_index(store, RULES, CALENDAR, Window(MAR, APR), TODAY, audience=OFFICE, cache=IndexCache())
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert len(sixty) == len(statements) <= 10  # 60 months or 2: the same statements, not one per month
    assert sum("credit_ratings" in s for s in sixty) <= 3


# ---- the department assessment ----------------------------------------------------------------------------------------

PENALTY_FIELDS = frozenset({"decision_number", "decision_date", "severity", "party_name"})


async def test_department_quality_per_department_and_family(store: Store) -> None:
    await seed(store)
    sources = [Source("market", "新城区市场监督管理局", {"penalties": PENALTY_FIELDS, "licenses": frozenset(FAMILIES["licenses"].field_names)})]
    result = await department_assessment(store, sources, Window(JAN, APR), TODAY, {"market": Availability(10, 1, "degraded")})
    rows = {(q.department, q.family): q for q in result.rows}
    assert list(rows) == [("market", None), ("market", "penalties"), ("market", "licenses"), ("tax", None), ("tax", "penalties")]
    assert result.subjects_known == 51
    market, penalties, licenses = rows[("market", None)], rows[("market", "penalties")], rows[("market", "licenses")]
    # objections O1, O3, O4 went to market; O3 was withdrawn (not timed), O4 is overdue since 3 April
    assert (market.objections, market.objections_timed.due, market.objections_timed.on_time) == (3, 2, 1)
    assert market.objection_rate == 3000 / 51
    assert (penalties.objections, penalties.objections_timed.due, penalties.objections_timed.on_time) == (2, 2, 1)
    assert (licenses.objections, licenses.objections_timed.due) == (1, 0) and licenses.objections_timed.rate is None
    assert market.complaints_timed is not None and (market.complaints_timed.due, market.complaints_timed.rate) == (2, 1.0)
    assert (market.repairs_timed.due, market.repairs_timed.on_time) == (1, 1)
    assert penalties.complaints_timed is None
    # availability over the period: no request in the audit trail touched market; its link (this process) beside it
    assert market.availability is not None and (market.availability.requests, market.availability.share) == (0, None)
    assert market.link is not None and market.link.share == 0.9 and penalties.availability is None and penalties.link is None
    standard = len(FAMILIES["penalties"].fields)
    assert (penalties.mapped_fields, penalties.standard_fields, penalties.completeness) == (4, standard, 4 / standard)
    assert "decision_number" not in penalties.missing_fields and "fine_amount" in penalties.missing_fields
    assert licenses.completeness == 1.0 and licenses.missing_fields == ()
    assert all(q.timeliness is None for q in result.rows)
    assert penalties.timeliness_note.startswith("not measurable") and "no publication date" in penalties.timeliness_note
    # tax is federated nowhere here but its cases name it: O2 late, O5 not yet due; C2 resolved late
    tax = rows[("tax", None)]
    assert (tax.objections, tax.objections_timed.due, tax.objections_timed.on_time, tax.completeness) == (2, 1, 0, None)
    assert tax.complaints_timed is not None and (tax.complaints_timed.due, tax.complaints_timed.on_time) == (1, 0)
    assert tax.availability is None and tax.link is None
    table = list(csv.DictReader(io.StringIO(assessment_csv(result))))
    assert [(r["department"], r["family"]) for r in table] == [("market", "*"), ("market", "penalties"), ("market", "licenses"),
                                                              ("tax", "*"), ("tax", "penalties")]
    assert (table[0]["availability"], table[0]["availability_requests"], table[0]["link_availability"]) == ("", "0", "0.9")
    assert table[0]["link_condition"] == "degraded" and table[0]["objections_on_time_rate"] == "0.5"
    assert table[1]["completeness"] == repr(4 / standard) and table[1]["complaints_due"] == ""
    assert [quality_row(result, q)["objections"] for q in result.rows] == [int(r["objections"]) for r in table]


def test_timeliness_notes_say_what_each_family_lacks() -> None:
    from xinlian.hub.cases.assessment import timeliness_note

    notes = {name: timeliness_note(spec) for name, spec in FAMILIES.items()}
    assert "no publication date" in notes["penalties"] and "decision_date (处罚决定日期)" in notes["penalties"]
    assert "no decision date" in notes["judgment_debtor_records"] and "publish_date (发布时间)" in notes["judgment_debtor_records"]
    assert all(n.startswith("not measurable") for n in notes.values())


async def test_the_assessment_window_ends_with_its_last_month(store: Store) -> None:
    await seed(store)
    facts = await load_facts(store, (dt.date(2026, 1, 31),))
    january = assess(facts, [], Window(JAN, JAN), TODAY)
    rows = {(q.department, q.family): q for q in january.rows}
    assert january.subjects_known == 50
    assert (rows[("market", None)].objections, rows[("market", None)].objections_timed.due) == (1, 1)
    assert rows[("tax", None)].objections == 1 and rows[("tax", None)].objections_timed.due == 0  # O2 due 3 February


MARKET_NAME, TAX_NAME = "新城区市场监督管理局", "国家税务总局呼和浩特市新城区税务局"


def entry(
    at: str, endpoint: str, released: Sequence[str] = (), unavailable: Sequence[str] = (), asked: Sequence[str] | None = None,
) -> AuditEntry:
    detail: dict[str, Any] = {"unavailable": list(unavailable)} if unavailable else {}
    if asked is not None:
        detail["asked"] = list(asked)
    return AuditEntry(
        at=utc(at), request_id=f"r-{at}-{endpoint}", endpoint=endpoint, client_id=None, client_kind="public", outcome="ok",
        policy_version="v1", released=list(released), errors=["UPSTREAM_UNAVAILABLE"] if unavailable else [],
        detail=detail or None,
    )


async def test_availability_over_the_period_from_the_audit_trail(store: Store) -> None:
    await seed(store)
    trail = AuditTrail(store)
    await trail.start()
    try:
        await trail.record_all([
            entry("2026-01-10T02:00:00", "/graphql", ["penalties.decision_number"]),  # touched market: answered
            entry("2026-02-01T15:59:59", "/public/graphql", ["licenses.license_name"], [MARKET_NAME]),  # market failed it
            entry("2025-12-31T16:30:00", "/graphql", ["licenses.license_name"]),  # 00:30 on 1 January in Hohhot: in
            entry("2025-12-31T15:30:00", "/graphql", [], [MARKET_NAME]),  # 23:30 on 31 December in Hohhot: before
            entry("2026-03-31T16:30:00", "/graphql", [], [MARKET_NAME]),  # 1 April in Hohhot: after March
            entry("2026-01-05T02:00:00", "/admin/graphql", ["penalties.decision_number"], [MARKET_NAME]),  # not a data endpoint
            entry("2026-01-20T02:00:00", "/graphql", ["tax_credit.level"], [TAX_NAME]),  # tax only
            entry("2026-01-21T02:00:00", "/graphql", ["registration.name"]),  # neither
            # entries that say which departments were called count exactly: tax asked, market's family
            # named but market not called (its records came from the cache)
            entry("2026-01-22T02:00:00", "/graphql", ["penalties.decision_number"], asked=[TAX_NAME]),
            entry("2026-01-23T02:00:00", "/graphql", [], [TAX_NAME], asked=[TAX_NAME, MARKET_NAME]),
        ])
    finally:
        await trail.stop()
    sources = [Source("market", MARKET_NAME, {"penalties": PENALTY_FIELDS, "licenses": frozenset({"license_name"})}),
               Source("tax", TAX_NAME, {"tax_credit": frozenset({"level"})})]
    result = await department_assessment(store, sources, Window(JAN, MAR), TODAY, {"market": Availability(4, 0, "healthy")})
    rows = {(q.department, q.family): q for q in result.rows}
    market, tax = rows[("market", None)], rows[("tax", None)]
    assert market.availability == RequestAvailability(4, 1) and market.availability.share == 3 / 4
    assert tax.availability == RequestAvailability(3, 2) and tax.availability.share == 1 / 3
    assert market.link == Availability(4, 0, "healthy") and tax.link is None
    assert rows[("market", "penalties")].availability is None  # department rows only
    table = {r["department"]: r for r in csv.DictReader(io.StringIO(assessment_csv(result))) if r["family"] == "*"}
    assert (table["market"]["availability"], table["market"]["availability_requests"], table["market"]["availability_failed"]) == (
        repr(3 / 4), "4", "1")
    assert (table["market"]["link_availability"], table["tax"]["link_availability"]) == ("1.0", "")
    march = await department_assessment(store, sources, Window(MAR, MAR), TODAY)
    assert {q.department: q.availability for q in march.rows if q.family is None} == {
        "market": RequestAvailability(0, 0), "tax": RequestAvailability(0, 0)}


# ---- the CLI --------------------------------------------------------------------------------------------------------


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="xinlian")
    index_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(args))


def test_the_cli_shows_the_index_and_the_departments(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"

    async def prepare() -> EnvironmentIndex:
        opened = await Store.open(url)
        try:
            await seed(opened)
            return await environment_index(opened, RULES, CALENDAR, Window(JAN, MAR), TODAY, audience=OFFICE)
        finally:
            await opened.close()

    expected = asyncio.run(prepare())
    assert cli("index", "show", "--from", "2026-01", "--to", "2026-03", "--csv", "--data-dir", str(tmp_path)) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(r["index"]) for r in rows] == [m.index for m in expected.months] == [71.07, 32.81, 65.67]
    assert [int(r["blacklist_size"]) for r in rows] == [1, 2, 1]
    assert cli("index", "show", "--from", "2026-01", "--to", "2026-02", "--industry", "餐饮业", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "industry 餐饮业" in out and "formula xc-cei-2026.1" in out and "100.0" in out and "35.71" in out
    assert cli("index", "departments", "--from", "2026-01", "--to", "2026-03", "--csv", "--data-dir", str(tmp_path)) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["department"], r["family"], r["objections"]) for r in table] == [
        ("market", "*", "3"), ("market", "licenses", "1"), ("market", "penalties", "2"), ("tax", "*", "1"), ("tax", "penalties", "1")]
    assert cli("index", "show", "--from", "2026-1", "--data-dir", str(tmp_path)) == 2
    assert "'2026-1' is not a month" in capsys.readouterr().err


def test_every_cli_read_of_the_index_is_audited(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"

    async def entries(action: Callable[[Store], Any] | None = None) -> list[Any]:
        opened = await Store.open(url)
        try:
            if action is not None:
                await action(opened)
            return [s.entry for s in await AuditTrail(opened).tail(50) if s.entry is not None]
        finally:
            await opened.close()

    assert asyncio.run(entries(seed)) == []
    assert cli("index", "show", "--from", "2026-01", "--to", "2026-02", "--industry", "餐饮业", "--data-dir", str(tmp_path)) == 0
    assert cli("index", "show", "--to", "2026-03", "--csv", "--data-dir", str(tmp_path)) == 0
    assert cli("index", "departments", "--from", "2026-01", "--to", "2026-03", "--data-dir", str(tmp_path)) == 0
    assert cli("index", "show", "--from", "2026-1", "--data-dir", str(tmp_path)) == 2  # refused: nothing read, nothing audited
    capsys.readouterr()
    audited = asyncio.run(entries())
    assert [(e.endpoint, e.client_kind, e.operation_name, e.subjects) for e in audited] == [
        ("cli", "admin", "creditEnvironmentIndex", []), ("cli", "admin", "creditEnvironmentIndex", []),
        ("cli", "admin", "departmentAssessment", [])]
    assert [e.detail for e in audited] == [
        {"action": "creditEnvironmentIndex", "from": "2026-01", "to": "2026-02", "industry": "餐饮业"},
        {"action": "creditEnvironmentIndex", "from": "2025-04", "to": "2026-03"},
        {"action": "departmentAssessment", "from": "2026-01", "to": "2026-03"},
    ]


def test_a_cli_read_that_cannot_be_audited_shows_nothing(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"

    async def prepare() -> None:
        opened = await Store.open(url)
        try:
            await seed(opened)
        finally:
            await opened.close()

    asyncio.run(prepare())

    async def refuse(self: AuditTrail, entry: Any) -> None:
        raise AuditUnavailable("the audit store refused the entry")

    monkeypatch.setattr(AuditTrail, "record", refuse)
    assert cli("index", "show", "--from", "2026-01", "--to", "2026-03", "--csv", "--data-dir", str(tmp_path)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "nothing is shown: the read's audit entry could not be written" in err and "change was made" not in err


# ---- on a running hub -------------------------------------------------------------------------------------------------

MONTH_FIELDS = """month asOf subjectsKnown subjectsRated subjectsWithDishonesty dishonestyShare findingsGeneral findingsSerious
  findingsByDepartment { department severity count } blacklistSize redListSize blacklistPer1000 objectionsCorrected
  repairsApproved complaintsResolved complaintMedianWorkingDays cases { kind filed closed due onTime }
  ratingLevels { name count suppressed } supervisionClasses { name count } penalties { name count }
  components { name value weight suppressed } index suppressed { figure reason explanation }"""
INDEX = f"""query Index($from: String, $to: String, $industry: String) {{
  creditEnvironmentIndex(from: $from, to: $to, industry: $industry) {{
    from to industry formulaVersion minimumSubjects csv months {{ {MONTH_FIELDS} }} }}
}}"""
ASSESSMENT = """query A($from: String, $to: String) { departmentAssessment(from: $from, to: $to) {
  from to subjectsKnown csv rows { department departmentName family completeness mappedFields standardFields missingFields
  timeliness timelinessNote objections objectionRate objectionsAnswered { due onTime rate } repairsDecided { due onTime rate }
  complaintsResolved { due onTime rate } availability availabilityRequests availabilityFailed linkAvailability linkAttempts
  linkCondition } } }"""
Q1 = {"from": "2026-01", "to": "2026-03"}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("index-hub"), rate_limits=NO_RATE_LIMITS) as running:
        running.on_store(seed)
        yield running


def data(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


def admin(hub: RunningHub, query: str, variables: dict[str, Any]) -> httpx.Response:
    return hub.http.post("/admin/graphql", json={"query": query, "variables": variables},
                         headers={"Authorization": f"Bearer {hub.token('admin')}"})


def subjects_in(text: str) -> set[str]:
    """Every USCC or resident ID (valid check character) in a text."""
    found = set()
    for candidate in re.findall(r"[0-9A-Z]{17}[0-9A-Z]", text.upper()):
        try:
            found.add(validate_subject(candidate))
        except InvalidIdentifier:
            pass
    return found


def test_the_index_on_graphql_and_the_public_endpoint(hub: RunningHub) -> None:
    answers = {kind: hub.query(INDEX, kind, Q1) for kind in (None, "department", "subject")}
    for kind, response in answers.items():
        index = data(response)["creditEnvironmentIndex"]
        assert (index["from"], index["to"], index["formulaVersion"], index["industry"]) == ("2026-01", "2026-03", FORMULA_VERSION, None), kind
        months = index["months"]
        assert [m["index"] for m in months] == [71.07, 32.81, 65.67], kind
        assert [m["subjectsKnown"] for m in months] == [50, 51, 51] and [m["asOf"] for m in months] == ["2026-01-31", "2026-02-28", "2026-03-31"]
        assert [m["blacklistSize"] for m in months] == [1, 2, 1] and [m["redListSize"] for m in months] == [2, 2, 1]
        assert months[1]["findingsByDepartment"] == [{"department": "market", "severity": "serious", "count": 1}]
        assert months[1]["complaintMedianWorkingDays"] == 16.0
        assert {c["kind"]: [c["filed"], c["closed"], c["due"], c["onTime"]] for c in months[2]["cases"]} == {
            "objection": [1, 0, 0, 0], "complaint": [1, 1, 2, 2], "repair": [1, 1, 1, 1]}
        assert [c for c in months[2]["components"] if c["name"] == "objections_on_time"] == [
            {"name": "objections_on_time", "value": None, "weight": 0.15, "suppressed": None}]  # nothing due: not suppressed
        assert all(m["suppressed"] == [] for m in months)  # the district's figures, 50 subjects and more: all shown
        rows = list(csv.DictReader(io.StringIO(index["csv"])))
        assert [float(r["index"]) for r in rows] == [71.07, 32.81, 65.67]
    assert answers[None].json() == answers["department"].json()  # the public sees the same statistics
    public = answers[None]
    assert subjects_in(public.text) == set() and not set(SEEDED) & set(re.findall(r"[0-9A-Z]{18}", public.text))
    [entry] = hub.audit_entries(public.headers["x-request-id"])
    assert entry.endpoint == "/public/graphql" and entry.subjects == []
    assert entry.detail is not None and entry.detail["creditEnvironmentIndex"] == {"from": "2026-01", "to": "2026-03"}
    [entry] = hub.audit_entries(answers["department"].headers["x-request-id"])
    assert entry.endpoint == "/graphql" and entry.subjects == [] and entry.detail is not None
    assert entry.detail["creditEnvironmentIndex"] == {"from": "2026-01", "to": "2026-03"}


def figures(month: dict[str, Any]) -> set[Any]:
    """Every count, share, component and the index of a month of `INDEX`'s answer."""
    out = {month[k] for k in ("subjectsKnown", "subjectsRated", "subjectsWithDishonesty", "dishonestyShare", "findingsGeneral",
                              "findingsSerious", "blacklistSize", "redListSize", "blacklistPer1000", "objectionsCorrected",
                              "repairsApproved", "complaintsResolved", "complaintMedianWorkingDays", "index")}
    out |= {d["count"] for d in month["findingsByDepartment"]} | {c["value"] for c in month["components"]}
    out |= {c[k] for c in month["cases"] for k in ("filed", "closed", "due", "onTime")}
    return out | {n["count"] for key in ("ratingLevels", "supervisionClasses", "penalties") for n in month[key]}


def test_an_industry_of_fewer_than_five_subjects_shows_nothing_outside_the_credit_office(hub: RunningHub) -> None:
    variables = {"from": "2026-01", "to": "2026-03", "industry": "餐饮业"}  # S1 and S3 only
    public, token = hub.query(INDEX, None, variables), hub.query(INDEX, "subject", variables)
    for response in (public, token):
        index = data(response)["creditEnvironmentIndex"]
        assert (index["industry"], index["minimumSubjects"]) == ("餐饮业", 5)
        for month in index["months"]:  # not S3's level C, its serious finding, its blacklisting; not the complaints about S1
            assert figures(month) == {None} and month["findingsByDepartment"] == [], month
            reasons = {s["figure"]: s["reason"] for s in month["suppressed"]}
            assert {reasons[k] for k in ("subjects_known", "level_C", "findings_serious", "complaints_filed", "index")} == {"population"}
            assert [n["suppressed"] for n in month["ratingLevels"]] == ["population"] * 9
        rows = list(csv.DictReader(io.StringIO(index["csv"])))
        assert {r[c] for r in rows for c in r if c not in ("month", "as_of", "industry", "formula_version", "suppressed")} == {""}
        assert "subjects_known=population" in rows[0]["suppressed"].split()
        assert subjects_in(response.text) == set()
    assert public.json() == token.json()  # a token holder (here the subject the complaints are about) sees what the public sees
    office = data(admin(hub, INDEX, variables))["creditEnvironmentIndex"]
    assert [m["index"] for m in office["months"]][:2] == [100.0, 35.71] and [m["subjectsKnown"] for m in office["months"]] == [1, 2, 2]
    assert all(m["suppressed"] == [] for m in office["months"])
    assert {c["kind"]: c["filed"] for c in office["months"][0]["cases"]}["complaint"] == 1  # C1, about S1


def test_the_public_district_and_a_large_industry(hub: RunningHub) -> None:
    index = data(hub.query(INDEX, None, {"from": "2025-12", "to": "2026-01"}))["creditEnvironmentIndex"]
    december, january = index["months"]
    assert figures(december) == {None} and {s["reason"] for s in december["suppressed"]} == {"population"}  # S6, S7 only
    assert january["subjectsKnown"] == 50 and january["suppressed"] == [] and january["index"] == 71.07
    office = data(admin(hub, INDEX, {"from": "2025-12", "to": "2025-12"}))["creditEnvironmentIndex"]["months"][0]
    assert (office["subjectsKnown"], office["blacklistSize"], office["suppressed"]) == (2, 1, [])
    wholesale = data(hub.query(INDEX, None, {"from": "2026-01", "to": "2026-01", "industry": "批发业"}))
    month = wholesale["creditEnvironmentIndex"]["months"][0]
    assert month["subjectsKnown"] == 44  # 44 subjects: shown
    reasons = {s["figure"]: s["reason"] for s in month["suppressed"]}
    for name in ("complaints_filed", "complaints_closed", "complaints_due", "complaints_on_time", "complaints_resolved",
                 "complaint_median_working_days", "component_complaints_on_time"):
        assert reasons[name] == "complaints", name
    assert [c for c in month["cases"] if c["kind"] == "complaint"] == [
        {"kind": "complaint", "filed": None, "closed": None, "due": None, "onTime": None}]
    # the district's 44 BBB minus 批发业's would say that neither small industry's subject (S1 AA, S2 A) is BBB, and its
    # 46 subjects rated minus 批发业's that 2 are rated there: neither is shown, so BBB is not subjects rated minus the rest
    levels = {n["name"]: n for n in month["ratingLevels"]}
    assert (levels["BBB"]["count"], levels["BBB"]["suppressed"], reasons["subjects_rated"]) == (None, "complement", "complement")
    assert month["subjectsRated"] is None and [n["count"] for n in levels.values()].count(None) == 1


@pytest.mark.parametrize(("variables", "argument"), [
    ({"from": "2026-13"}, "from"), ({"from": "26-01"}, "from"), ({"to": "2026-02", "from": "2026-03"}, "from"),
    ({"from": "2019-01", "to": "2026-01"}, "from"), ({"to": "2999-01"}, "to"), ({"industry": "餐饮\u202e业"}, "industry"),
])
def test_bad_input_is_bad_user_input_on_both_endpoints(hub: RunningHub, variables: dict[str, Any], argument: str) -> None:
    for kind in (None, "department"):
        body = hub.query(INDEX, kind, variables).json()
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == argument, body
        assert error["message"].startswith(argument) and body["data"] is None
    refused = admin(hub, INDEX, variables).json()
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]


def test_the_default_period_is_the_last_twelve_months(hub: RunningHub) -> None:
    today = hub.runtime.today()
    index = data(hub.query(INDEX, None))["creditEnvironmentIndex"]
    assert index["to"] == Month.of(today).text and index["from"] == Month.of(today).plus(-11).text
    assert len(index["months"]) == 12 and index["months"][-1]["asOf"] == today.isoformat()


def test_the_credit_office_reads_the_index_and_the_department_table(hub: RunningHub) -> None:
    assert data(hub.query('{ legalPerson(uscc: "%s") { name } }' % hub.samples["severe_penalty"], "department"))
    answer = data(admin(hub, INDEX, Q1))["creditEnvironmentIndex"]
    assert [m["index"] for m in answer["months"]] == [71.07, 32.81, 65.67]
    response = admin(hub, ASSESSMENT, Q1)
    table = data(response)["departmentAssessment"]
    assert (table["from"], table["to"], table["subjectsKnown"]) == ("2026-01", "2026-03", 51)
    rows = {(r["department"], r["family"]): r for r in table["rows"]}
    market = rows[("market", None)]
    assert market["objections"] == 3 and market["objectionRate"] == 3000 / 51
    assert market["objectionsAnswered"] == {"due": 1, "onTime": 1, "rate": 1.0}  # O4 is due in April
    assert market["complaintsResolved"] == {"due": 2, "onTime": 2, "rate": 1.0}
    assert market["repairsDecided"] == {"due": 1, "onTime": 1, "rate": 1.0}
    assert rows[("tax", None)]["objectionsAnswered"] == {"due": 1, "onTime": 0, "rate": 0.0}
    connector = hub.connector("market")
    for family in sorted(connector.families):
        spec = FAMILIES[family]
        mapped = sum(1 for f in spec.field_names if f in connector.provides(family))
        row = rows[("market", family)]
        assert (row["mappedFields"], row["standardFields"], row["completeness"]) == (mapped, len(spec.fields), mapped / len(spec.fields))
        assert row["timeliness"] is None and row["timelinessNote"].startswith("not measurable") and row["availability"] is None
    assert market["linkAttempts"] >= 1 and market["linkAvailability"] == 1.0 and market["linkCondition"] == "healthy"
    assert market["availabilityRequests"] == 0 and market["availability"] is None  # no request to the hub in 2026-01..03
    assert all(row["linkAvailability"] is None and row["availability"] is None for row in rows.values() if row["family"])
    this_year = data(admin(hub, ASSESSMENT, {}))["departmentAssessment"]  # the 12 months up to now: this module's requests
    market_now = next(r for r in this_year["rows"] if (r["department"], r["family"]) == ("market", None))
    assert market_now["availabilityRequests"] >= 1 and market_now["availabilityFailed"] == 0 and market_now["availability"] == 1.0
    assert {d.name for d in hub.runtime.federation.departments} <= {d for d, _ in rows}
    assert [r["department"] for r in csv.DictReader(io.StringIO(table["csv"]))] == [r["department"] for r in table["rows"]]
    [entry] = [e for e in hub.audit_entries(response.headers["x-request-id"]) if e.endpoint == "/admin/graphql"]
    assert entry.subjects == [] and {"action": "departmentAssessment", "from": "2026-01", "to": "2026-03"} in entry.detail["actions"]
