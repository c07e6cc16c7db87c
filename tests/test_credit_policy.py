"""The credit rules as policy data, and the pure engines over them: checks and ratings.

Boundaries with real dates: a finding's last day in force and the day after, a listing's last
day and the day after, a score exactly at a level's threshold and just below it.
"""

from __future__ import annotations

import copy
import datetime as dt
import tomllib
from typing import Any

import pytest

from xinlian.hub.admin.policy_text import policy_toml
from xinlian.hub.credit.checks import evaluate
from xinlian.hub.credit.model import Finding, Listing
from xinlian.hub.credit.ratings import rate
from xinlian.policies import load_policy
from xinlian.policies.changes import describe_diff
from xinlian.policies.credit import (
    Verdict,
    credit_document,
    parse_credit,
    standard_credit_path,
    standard_credit_rules,
)
from xinlian.policies.loader import parse_policy, parse_policy_text, policy_document
from xinlian.policies.model import PolicyError

RULES = standard_credit_rules()
DAY = dt.date(2026, 12, 3)
SUBJECT = "91110000600037341L"


def _section() -> dict[str, Any]:
    return copy.deepcopy(tomllib.loads(standard_credit_path().read_text(encoding="utf-8"))["credit"])


def _rule(section: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(r for r in section["list_rules"] if r["name"] == name)
    return found


def listing(list_name: str = "black", basis: str = "market-serious", listed_on: dt.date = dt.date(2026, 1, 15),
            ends_on: dt.date | None = dt.date(2029, 1, 14), id: int = 1, status: str = "listed") -> Listing:
    return Listing(id, SUBJECT, "某公司", list_name, basis, "basis", "market", listed_on, ends_on, status, None, None, None, None)


def finding(severity: str = "general", basis: str = "general-dishonesty", decided_on: dt.date = dt.date(2026, 1, 15),
            id: int = 7, status: str = "in_force") -> Finding:
    return Finding(id, SUBJECT, "某公司", severity, basis, "facts", "law", (), "market", decided_on, (), status, None,
                   dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc), "t")


# ---- the section as policy data -------------------------------------------------------------


def test_the_shipped_rules_round_trip_through_the_stored_document_and_the_admin_toml() -> None:
    assert parse_credit(credit_document(RULES)) == RULES
    policy = load_policy()
    document = policy_document(policy)
    assert document["credit"] == credit_document(RULES)
    again = parse_policy_text(policy_toml(document, "v9"), "v9")
    assert policy_document(again) == document
    assert {m.code for m in RULES.measures} >= {"S01", "S02", "S03", "S06", "R01", "R03", "R04"}
    assert set(RULES.contexts) >= {"government-procurement", "bidding", "licensing", "subsidies", "lending"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["measures"][0].update(contexts=["fishing"]), "credit.measures[0]: unknown context 'fishing'"),
        (lambda s: s["measures"][0].update(on=["redlist"]), "rewards follow the red list"),
        (lambda s: s["measures"][0].update(on=["blacklist:nothing"]), "no basis or list rule is named 'nothing'"),
        (lambda s: s["measures"][0].update(effect="BANNED"), "effect must be PROHIBITED, RESTRICTED or REWARD"),
        (lambda s: s["bases"][0].pop("list"), "a serious basis lists the subject on the blacklist"),
        (lambda s: s["rating"]["thresholds"].update(AA=99), "thresholds must fall from AAA to CC"),
        (lambda s: s["rating"]["thresholds"].pop("CC"), "thresholds must name exactly"),
        (lambda s: s["rating"]["industries"]["餐饮业"].update(nothing=2), "unknown indicator 'nothing'"),
        (lambda s: s["rating"]["indicators"][0].update(family="nope"), "unknown record family 'nope'"),
        (lambda s: s["rating"]["indicators"][0].update(colour="red"), "unknown key 'colour'"),
        (lambda s: s["supervision"]["A"].update(levels=["AAA", "AA"]), "cover each of the nine levels exactly once"),
        (lambda s: _rule(s, "a-level-taxpayer").update(conditions=[_rule(s, "a-level-taxpayer")["conditions"][1]]),
         "a rule over absences alone"),
        (lambda s: s["list_rules"][0]["conditions"][0].update(exists=True, none_within_months=3), "give exactly one of"),
    ],
)
def test_a_malformed_section_is_refused_naming_the_place(change: Any, message: str) -> None:
    section = _section()
    change(section)
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_credit(section)


def test_a_small_policy_round_trips_with_the_shipped_credit_rules() -> None:
    """A policy that declares none of the credit scopes keeps the shipped rules through storage:
    credit:check names a scope it cannot grant to anyone (clients' scopes are checked against
    the declared ones), so it opens nothing."""
    small = parse_policy_text('version = "s"\n[scopes]\n"credit:public" = ["PUBLIC"]\n[fields.registration]\nname = "PUBLIC"\n')
    assert "credit:check" not in small.scopes and small.credit == RULES
    stored = policy_document(small)
    assert parse_policy(stored, "s").credit == RULES and policy_document(parse_policy(stored, "s")) == stored


def test_a_change_to_a_measure_reads_as_diff_lines() -> None:
    old = policy_document(load_policy())
    new = copy.deepcopy(old)
    new["credit"]["measures"][0]["contexts"] = ["government-procurement", "bidding"]
    new["credit"]["rating"]["thresholds"]["A"] = 86.0
    lines = describe_diff(old, new)
    assert "credit.measures.S01.contexts: government-procurement -> government-procurement, bidding" in lines
    assert "credit.rating.thresholds.A: 85.0 -> 86.0" in lines
    assert len(lines) == 2


def test_a_document_without_a_credit_section_has_the_shipped_rules() -> None:
    document = policy_document(load_policy())
    del document["credit"]
    assert parse_policy(document, "old").credit == RULES


# ---- dates at their boundaries --------------------------------------------------------------


def test_a_bases_period_ends_on_the_corresponding_day_as_the_publicity_window_does() -> None:
    serious = RULES.bases["market-serious"]  # 36 months
    assert serious.ends_on(dt.date(2026, 1, 15)) == dt.date(2029, 1, 15)  # 民法典 art. 201: the first day does not count
    general = RULES.bases["general-dishonesty"]  # 12 months
    assert general.ends_on(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)  # no 29 February: the month's last day
    assert general.ends_on(dt.date(2024, 2, 28)) == dt.date(2025, 2, 28)
    # a serious penalty and the blacklisting it led to leave the public's view on the same day
    window = next(r for r in load_policy().rows if r.kind == "publicity-window")
    penalty = {"severity": "严重", "decision_date": dt.date(2026, 11, 20), "publicity_end_date": None}
    last_shown = max(d for d in (dt.date(2029, 11, 19), dt.date(2029, 11, 20), dt.date(2029, 11, 21)) if window.keep(penalty, d))
    assert serious.ends_on(dt.date(2026, 11, 20)) == last_shown == dt.date(2029, 11, 20)


def test_a_listing_is_current_on_its_last_day_and_not_the_day_after() -> None:
    x = listing(ends_on=dt.date(2029, 1, 14))
    assert x.current(dt.date(2029, 1, 14))
    assert not x.current(dt.date(2029, 1, 15))
    assert not x.current(dt.date(2026, 1, 14))  # before it was listed
    assert listing(ends_on=None).current(dt.date(2040, 1, 1))  # while its rule holds
    assert not listing(status="cancelled").current(DAY)


def test_a_check_counts_a_finding_through_its_last_day() -> None:
    general = finding(decided_on=dt.date(2025, 12, 3))  # 12 months: last day 2026-12-03
    on_last_day = evaluate(RULES, "licensing", SUBJECT, [], [general], dt.date(2026, 12, 3))
    assert on_last_day.verdict is Verdict.RESTRICTED
    assert [a.measure.code for a in on_last_day.measures] == ["S09"]
    assert evaluate(RULES, "licensing", SUBJECT, [], [general], dt.date(2026, 12, 4)).verdict is Verdict.ALLOWED
    assert evaluate(RULES, "licensing", SUBJECT, [], [finding(status="revoked")], DAY).verdict is Verdict.ALLOWED


def test_a_blacklisted_subject_is_prohibited_where_a_measure_prohibits_and_restricted_where_it_restricts() -> None:
    black = listing(listed_on=dt.date(2026, 1, 15), ends_on=dt.date(2029, 1, 14))
    procurement = evaluate(RULES, "government-procurement", SUBJECT, [black], [], DAY)
    assert procurement.verdict is Verdict.PROHIBITED
    assert [a.measure.code for a in procurement.measures] == ["S01"]
    assert [(r.kind, r.id, r.list) for r in procurement.reasons] == [("listing", 1, "black")]
    assert evaluate(RULES, "licensing", SUBJECT, [black], [], DAY).verdict is Verdict.RESTRICTED
    # the day after its last day the listing no longer counts
    assert evaluate(RULES, "government-procurement", SUBJECT, [black], [], dt.date(2029, 1, 15)).verdict is Verdict.ALLOWED


def test_a_measure_narrowed_to_a_basis_applies_only_to_listings_on_it() -> None:
    market = listing(basis="market-serious")
    debtor = listing(basis="judgment-debtor", ends_on=None, id=2)
    assert evaluate(RULES, "public-office", SUBJECT, [market], [], DAY).verdict is Verdict.ALLOWED
    office = evaluate(RULES, "public-office", SUBJECT, [debtor], [], DAY)
    assert office.verdict is Verdict.PROHIBITED and [a.measure.code for a in office.measures] == ["S08"]


def test_rewards_go_to_the_red_listed_unless_blacklisted_or_under_a_serious_finding() -> None:
    red = listing("red", "a-level-taxpayer", ends_on=dt.date(2027, 6, 30), id=3)
    lending = evaluate(RULES, "lending", SUBJECT, [red], [], DAY)
    assert lending.verdict is Verdict.ALLOWED and [a.measure.code for a in lending.rewards] == ["R04"]
    other_red = listing("red", "honour-red-list", ends_on=dt.date(2027, 6, 30), id=4)
    assert evaluate(RULES, "lending", SUBJECT, [other_red], [], DAY).rewards == ()  # R04 is for A-level taxpayers only
    both = evaluate(RULES, "lending", SUBJECT, [red, listing()], [], DAY)
    assert both.rewards == () and both.verdict is Verdict.RESTRICTED
    serious = finding("serious", "market-serious", dt.date(2026, 6, 1))
    assert evaluate(RULES, "lending", SUBJECT, [red], [serious], DAY).rewards == ()


# ---- ratings --------------------------------------------------------------------------------


def _rate(records: dict[str, list[dict[str, Any]]], industry: str = "批发业", listings: list[Listing] | None = None,
          findings: list[Finding] | None = None, rules: Any = RULES) -> Any:
    return rate(rules, "v1", SUBJECT, "某公司", industry, records, listings or [], findings or [], [], DAY)


def test_a_score_exactly_at_a_threshold_reaches_the_level_and_just_below_does_not() -> None:
    base = _rate({})  # no record at all: the base, 85, exactly A's threshold
    assert (base.score, base.level, base.supervision_class) == (85.0, "A", "A")
    penalty = {"decision_number": "罚1", "severity": "一般", "decision_date": DAY - dt.timedelta(days=10)}
    one = _rate({"penalties": [penalty]})  # -5: 80, exactly BBB's threshold
    assert (one.score, one.level, one.supervision_class) == (80.0, "BBB", "B")
    section = _section()
    section["rating"]["base"] = 84.99
    below = _rate({}, rules=parse_credit(section))
    assert (below.score, below.level) == (84.99, "BBB")


def test_a_rating_explains_each_indicator_with_the_records_behind_it() -> None:
    records = {
        "penalties": [
            {"decision_number": "环罚1", "severity": "严重", "decision_date": DAY - dt.timedelta(days=100)},
            {"decision_number": "环罚0", "severity": "严重", "decision_date": DAY - dt.timedelta(days=365 * 3 + 5)},  # too old
        ],
        "tax_credit": [{"year": 2024, "level": "A"}, {"year": 2025, "level": "C"}],
        "honors": [{"honor_name": "诚信示范", "valid_to": DAY - dt.timedelta(days=1)}],  # expired: no trust
    }
    rating = _rate(records, listings=[listing()], findings=[finding(decided_on=DAY - dt.timedelta(days=5))])
    by_name = {i.name: i for i in rating.indicators}
    assert by_name["serious-penalties"].points == -15 and by_name["serious-penalties"].evidence == ("penalties:环罚1",)
    assert by_name["tax-credit"].points == -10 and by_name["tax-credit"].detail == "level = C"  # the newest year counts
    assert by_name["honours"].points == 0 and by_name["honours"].evidence == ()
    assert by_name["blacklisted"].points == -35 and by_name["blacklisted"].evidence == ("listing:1",)
    assert by_name["general-findings"].points == -6 and by_name["general-findings"].evidence == ("finding:7",)
    assert rating.score == 85 - 15 - 10 - 35 - 6 and rating.level == "C" and rating.supervision_class == "C"
    assert all(str(i.points) != "-0.0" for i in rating.indicators)


def test_industry_weights_multiply_an_indicators_points_and_the_score_stays_within_its_bounds() -> None:
    penalty = {"decision_number": "罚1", "severity": "严重", "decision_date": DAY - dt.timedelta(days=10)}
    wholesale = _rate({"penalties": [penalty]}, industry="批发业")
    catering = _rate({"penalties": [penalty]}, industry="餐饮业")
    assert {i.name: i.points for i in wholesale.indicators}["serious-penalties"] == -15
    assert {i.name: (i.points, i.weight) for i in catering.indicators}["serious-penalties"] == (-22.5, 1.5)
    many = _rate({"judgment_debtor_records": [{"case_number": str(n)} for n in range(5)], "penalties": [penalty] * 9},
                 listings=[listing()])
    assert many.score == 0 and many.level == "C"  # never below 0
    best = _rate({"tax_credit": [{"year": 2025, "level": "A"}], "honors": [{"honor_name": "x", "valid_to": None}] * 3},
                 listings=[listing("red", "honour-red-list", id=9)])
    assert best.score == 100 and best.level == "AAA"  # capped at max_score


def test_a_rule_over_a_single_record_family_reads_the_newest_record() -> None:
    """An A-level taxpayer is one whose latest grade is A: A in 2023 and 2024, D in 2025 is not."""
    rule = RULES.list_rule("a-level-taxpayer")
    assert rule is not None
    grades = [{"year": 2023, "level": "A"}, {"year": 2024, "level": "A"}, {"year": 2025, "level": "D"}]
    assert not rule.holds({"tax_credit": grades, "penalties": []}, DAY)
    assert rule.holds({"tax_credit": [*grades[:2], {"year": 2025, "level": "A"}], "penalties": []}, DAY)
    old_penalty = {"decision_number": "罚", "decision_date": DAY - dt.timedelta(days=365 * 3 + 2)}
    recent_penalty = {"decision_number": "罚", "decision_date": DAY - dt.timedelta(days=30)}
    latest_a = [{"year": 2025, "level": "A"}]
    assert rule.holds({"tax_credit": latest_a, "penalties": [old_penalty]}, DAY)
    assert not rule.holds({"tax_credit": latest_a, "penalties": [recent_penalty]}, DAY)


@pytest.mark.parametrize("text", ["0000", "9999-12", "2026-Q5", "2026-13", "２０２６", "2026-1", ""])
def test_a_plan_period_outside_its_form_or_years_is_refused(text: str) -> None:
    from xinlian.hub.credit.model import CreditInputError
    from xinlian.hub.credit.supervision import Period

    if text == "":
        assert Period.parse(text, DAY).text == "2026-Q4"  # empty: this quarter
        return
    with pytest.raises(CreditInputError, match="period"):
        Period.parse(text, DAY)


def test_a_snapshot_reproduces_its_rating_from_its_stored_inputs() -> None:
    from xinlian.hub.credit.ratings import _rating_of, model_digest, stored_records

    records = {
        "penalties": [
            {"decision_number": "罚1", "severity": "严重", "decision_date": DAY - dt.timedelta(days=100), "case_handler": "x"},
            {"decision_number": "罚2", "severity": "一般", "decision_date": DAY - dt.timedelta(days=800)},
        ],
        "tax_credit": [{"year": 2025, "level": "B"}],
        "honors": [{"honor_name": "示范", "valid_to": None}],
    }
    first = _rate(records, industry="餐饮业", listings=[listing()])
    assert first.model_digest == model_digest(RULES.rating)
    assert "case_handler" not in first.inputs["penalties"][0]  # only what the model reads is kept

    class Row:  # a stored row, as the store gives it back
        id, subject, subject_name, industry, level, score = 1, SUBJECT, "某公司", "餐饮业", first.level, first.score
        supervision_class, model_version, policy_version = first.supervision_class, first.model_version, "v1"
        rated_on, rated_at, trigger, explanation = DAY, None, "bulk", first.explanation()

    stored = _rating_of(Row)
    again = _rate(stored_records(stored), industry="餐饮业", listings=[listing()])
    assert (again.level, again.score, again.indicators) == (first.level, first.score, first.indicators)
