"""The publicity window (NDRC 2025 credit repair measures) and its month arithmetic.

Counted from the decision date: 轻微 not shown by default, 一般 at least 3 and at most 12 months,
严重 at least 12 and at most 36 months; the record's own publicity end date can shorten the window
down to the minimum but never lengthen it; a record whose window cannot be established is not shown.
"""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from xinlian.policies import PolicyError
from xinlian.policies.rows import STANDARD_MIN_MONTHS, PublicityWindow, PublicityWindowRule, add_months
from xinlian.policies.rules import parse_row_rules

D = dt.date
ONE_DAY = dt.timedelta(days=1)
MINOR, ORDINARY, SEVERE = "轻微", "一般", "严重"

dates = st.dates(min_value=D(1990, 1, 1), max_value=D(2200, 12, 31))


@pytest.fixture
def window() -> PublicityWindow:
    return PublicityWindow.standard()


def penalty(severity: object = ORDINARY, decided: object = D(2026, 4, 15), own_end: object = None) -> dict:
    record: dict = {"decision_number": "新市监罚〔2026〕1号"}
    if severity is not None:
        record["severity"] = severity
    if decided is not None:
        record["decision_date"] = decided
    if own_end is not None:
        record["publicity_end_date"] = own_end
    return record


# --------------------------------------------------------------------------------------------
# add_months
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (D(2026, 1, 31), 1, D(2026, 2, 28)),  # common year
        (D(2028, 1, 31), 1, D(2028, 2, 29)),  # leap year
        (D(2100, 1, 31), 1, D(2100, 2, 28)),  # 2100: divisible by 100, not a leap year
        (D(2000, 1, 31), 1, D(2000, 2, 29)),  # 2000: divisible by 400, a leap year
        (D(2026, 3, 31), 1, D(2026, 4, 30)),
        (D(2026, 1, 30), 1, D(2026, 2, 28)),
        (D(2026, 1, 29), 1, D(2026, 2, 28)),
        (D(2028, 1, 29), 1, D(2028, 2, 29)),
        (D(2026, 8, 31), 6, D(2027, 2, 28)),
        (D(2026, 5, 31), 1, D(2026, 6, 30)),
        (D(2026, 12, 15), 1, D(2027, 1, 15)),  # year rollover
        (D(2026, 11, 30), 3, D(2027, 2, 28)),
        (D(2028, 2, 29), 12, D(2029, 2, 28)),  # leap day, one year on
        (D(2028, 2, 29), 48, D(2032, 2, 29)),  # leap day, four years on
        (D(2026, 4, 15), 12, D(2027, 4, 15)),
        (D(2026, 4, 15), 36, D(2029, 4, 15)),
        (D(2026, 4, 15), 0, D(2026, 4, 15)),
        (D(2026, 3, 31), -1, D(2026, 2, 28)),  # backwards, clamped too
        (D(2026, 1, 15), -1, D(2025, 12, 15)),
        (D(2026, 1, 15), -13, D(2024, 12, 15)),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


@given(day=dates, months=st.integers(-120, 120))
@example(day=D(2028, 1, 31), months=1)
def test_add_months_moves_exactly_that_many_calendar_months(day: dt.date, months: int) -> None:
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day == min(day.day, calendar.monthrange(result.year, result.month)[1])


@given(day=dates, months=st.integers(0, 120))
def test_add_months_is_monotonic_in_the_number_of_months(day: dt.date, months: int) -> None:
    assert add_months(day, months) <= add_months(day, months + 1)


# --------------------------------------------------------------------------------------------
# Severities
# --------------------------------------------------------------------------------------------


def test_standard_window_maxima_are_3_12_and_36_months(window: PublicityWindow) -> None:
    assert dict(window.max_months) == {MINOR: 3, ORDINARY: 12, SEVERE: 36}
    assert window.show_minor is False


def test_minor_penalty_is_not_shown_by_default_not_even_on_the_decision_day(window: PublicityWindow) -> None:
    record = penalty(MINOR, D(2026, 4, 15))
    assert window.end_of_display(record) is None
    assert not window.shows(record, D(2026, 4, 15))
    assert not window.shows(record, D(2026, 5, 1))


def test_minor_penalty_with_its_own_end_date_is_still_not_shown_by_default(window: PublicityWindow) -> None:
    record = penalty(MINOR, D(2026, 4, 15), own_end=D(2026, 6, 30))
    assert not window.shows(record, D(2026, 5, 1))


def test_minor_penalty_when_shown_is_shown_at_most_3_months() -> None:
    window = PublicityWindow(max_months=PublicityWindow.standard().max_months, show_minor=True)
    record = penalty(MINOR, D(2026, 4, 15))
    assert window.end_of_display(record) == D(2026, 7, 15)
    assert window.shows(record, D(2026, 7, 15))
    assert not window.shows(record, D(2026, 7, 16))


def test_ordinary_penalty_is_shown_up_to_exactly_12_months_and_hidden_the_day_after(window: PublicityWindow) -> None:
    record = penalty(ORDINARY, D(2026, 4, 15))
    assert window.end_of_display(record) == D(2027, 4, 15)
    assert window.shows(record, D(2026, 4, 15))
    assert window.shows(record, D(2027, 4, 14))
    assert window.shows(record, D(2027, 4, 15))
    assert not window.shows(record, D(2027, 4, 16))
    assert not window.shows(record, D(2030, 1, 1))


def test_ordinary_window_is_twelve_calendar_months_not_365_days(window: PublicityWindow) -> None:
    record = penalty(ORDINARY, D(2027, 3, 1))  # the year after contains 29 February 2028
    assert window.end_of_display(record) == D(2028, 3, 1)
    assert window.shows(record, D(2028, 2, 29))
    assert window.shows(record, D(2028, 3, 1))
    assert not window.shows(record, D(2028, 3, 2))


def test_severe_penalty_is_shown_up_to_exactly_36_months_and_hidden_the_day_after(window: PublicityWindow) -> None:
    record = penalty(SEVERE, D(2026, 4, 15))
    assert window.end_of_display(record) == D(2029, 4, 15)
    assert window.shows(record, D(2027, 4, 16))  # past the ordinary maximum
    assert window.shows(record, D(2029, 4, 15))
    assert not window.shows(record, D(2029, 4, 16))


def test_penalty_decided_on_a_leap_day_ends_on_28_february(window: PublicityWindow) -> None:
    ordinary = penalty(ORDINARY, D(2028, 2, 29))
    severe = penalty(SEVERE, D(2028, 2, 29))
    assert window.end_of_display(ordinary) == D(2029, 2, 28)
    assert not window.shows(ordinary, D(2029, 3, 1))
    assert window.end_of_display(severe) == D(2031, 2, 28)
    assert not window.shows(severe, D(2031, 3, 1))


def test_penalty_decided_on_31_january_is_clamped_like_add_months() -> None:
    window = PublicityWindow(max_months={ORDINARY: 1})
    assert window.end_of_display(penalty(ORDINARY, D(2026, 1, 31))) == D(2026, 2, 28)
    assert window.end_of_display(penalty(ORDINARY, D(2028, 1, 31))) == D(2028, 2, 29)


def test_decision_dates_given_as_datetimes_count_by_their_date(window: PublicityWindow) -> None:
    record = penalty(ORDINARY, dt.datetime(2026, 4, 15, 16, 30))
    assert window.end_of_display(record) == D(2027, 4, 15)


# --------------------------------------------------------------------------------------------
# The record's own publicity end date
# --------------------------------------------------------------------------------------------


def test_own_end_date_earlier_than_the_maximum_wins(window: PublicityWindow) -> None:
    record = penalty(ORDINARY, D(2026, 1, 10), own_end=D(2026, 6, 30))
    assert window.end_of_display(record) == D(2026, 6, 30)
    assert window.shows(record, D(2026, 6, 30))
    assert not window.shows(record, D(2026, 7, 1))


def test_own_end_date_later_than_the_maximum_does_not_extend_the_window(window: PublicityWindow) -> None:
    record = penalty(ORDINARY, D(2026, 1, 10), own_end=D(2030, 1, 1))
    assert window.end_of_display(record) == D(2027, 1, 10)
    assert not window.shows(record, D(2027, 1, 11))


def test_severe_own_end_date_later_than_36_months_does_not_extend_the_window(window: PublicityWindow) -> None:
    record = penalty(SEVERE, D(2026, 1, 10), own_end=D(2035, 1, 1))
    assert window.end_of_display(record) == D(2029, 1, 10)
    assert not window.shows(record, D(2029, 1, 11))


def test_own_end_date_before_the_decision_date_does_not_shorten_the_minimum(window: PublicityWindow) -> None:
    # Changed by issue 9: this record used to be hidden. A department's end date earlier than
    # the national minimum does not shorten it, so a severe penalty is shown for a year.
    record = penalty(SEVERE, D(2026, 1, 10), own_end=D(2025, 12, 31))
    assert window.end_of_display(record) == D(2027, 1, 10)
    assert window.shows(record, D(2026, 1, 10))
    assert not window.shows(record, D(2027, 1, 11))


def test_own_end_date_that_is_not_a_date_hides_the_record(window: PublicityWindow) -> None:
    # an end date that is not a date is broken upstream data: fail closed rather than guess
    record = penalty(ORDINARY, D(2026, 1, 10), own_end="2030-01-01")
    assert window.end_of_display(record) is None


@given(
    decided=dates,
    severity=st.sampled_from([ORDINARY, SEVERE]),
    own_end=st.none() | dates,
)
def test_window_ends_at_the_own_end_date_held_between_the_minimum_and_the_maximum(
    decided: dt.date, severity: str, own_end: dt.date | None
) -> None:
    window = PublicityWindow.standard()
    record = penalty(severity, decided, own_end)
    maximum = add_months(decided, {ORDINARY: 12, SEVERE: 36}[severity])
    minimum = add_months(decided, {ORDINARY: 3, SEVERE: 12}[severity])
    end = maximum if own_end is None else min(maximum, max(minimum, own_end))
    assert window.end_of_display(record) == end
    assert window.shows(record, end)
    assert not window.shows(record, end + ONE_DAY)
    assert not window.shows(record, maximum + ONE_DAY)


# --------------------------------------------------------------------------------------------
# Fail closed: a window that cannot be established is not shown
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(penalty(severity=None), id="missing severity"),
        pytest.param(penalty(severity=None, own_end=D(2026, 6, 30)), id="missing severity, own end"),
        pytest.param(penalty(severity="moderate"), id="unknown severity"),
        pytest.param(penalty(severity="较重"), id="unknown Chinese severity"),
        pytest.param(penalty(severity="一般 "), id="severity with trailing space"),
        pytest.param(penalty(severity="", own_end=D(2026, 6, 30)), id="empty severity, own end"),
        pytest.param(penalty(severity="moderate", own_end=D(2026, 6, 30)), id="unknown severity, own end"),
        pytest.param(penalty(severity=12), id="numeric severity"),
        pytest.param(penalty(decided=None), id="missing decision date"),
        pytest.param(penalty(decided="2026-04-15"), id="decision date as text"),
        pytest.param(penalty(severity=SEVERE, decided=None), id="severe, missing decision date"),
        pytest.param({}, id="empty record"),
    ],
)
def test_record_whose_window_cannot_be_established_is_hidden(window: PublicityWindow, record: dict) -> None:
    assert window.end_of_display(record) is None
    assert not window.shows(record, D(2026, 5, 1))


# --------------------------------------------------------------------------------------------
# Regressions: bugs found by review, fixed
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decided", [None, "2026-04-15"], ids=["missing decision date", "decision date as text"])
@pytest.mark.parametrize("severity", [ORDINARY, SEVERE])
def test_record_without_a_decision_date_is_hidden_even_with_its_own_end_date(
    window: PublicityWindow, severity: str, decided: object
) -> None:
    record = penalty(severity, decided=decided, own_end=D(2099, 12, 31))
    assert window.end_of_display(record) is None
    assert not window.shows(record, D(2060, 1, 1))


def test_unhashable_severity_is_hidden_rather_than_crashing(window: PublicityWindow) -> None:
    record = penalty([SEVERE], D(2026, 4, 15), own_end=D(2026, 6, 30))
    assert not window.shows(record, D(2026, 5, 1))


def test_publicity_end_date_given_as_a_datetime_does_not_crash(window: PublicityWindow) -> None:
    # (issue 9: the end date moved from 30 June to 31 August, past the 3-month minimum)
    record = penalty(ORDINARY, D(2026, 4, 15), own_end=dt.datetime(2026, 8, 31, 23, 59))
    assert window.shows(record, D(2026, 8, 31))
    assert not window.shows(record, D(2026, 9, 1))


# --------------------------------------------------------------------------------------------
# Issue 9: the national minimum holds against a department's earlier end date
# --------------------------------------------------------------------------------------------


def test_standard_window_minima_are_0_3_and_12_months(window: PublicityWindow) -> None:
    assert dict(window.min_months) == {MINOR: 0, ORDINARY: 3, SEVERE: 12} == dict(STANDARD_MIN_MONTHS)
    assert PublicityWindow(max_months=window.max_months).min_months == window.min_months  # the default


def test_ordinary_penalty_ending_after_one_month_is_still_shown_for_three(window: PublicityWindow) -> None:
    record = penalty(ORDINARY, D(2026, 4, 15), own_end=D(2026, 5, 15))
    assert window.end_of_display(record) == D(2026, 7, 15)
    assert window.shows(record, D(2026, 7, 15))
    assert not window.shows(record, D(2026, 7, 16))


def test_severe_penalty_ending_after_six_months_is_still_shown_for_a_year(window: PublicityWindow) -> None:
    record = penalty(SEVERE, D(2026, 4, 15), own_end=D(2026, 10, 15))
    assert window.end_of_display(record) == D(2027, 4, 15)
    assert window.shows(record, D(2027, 4, 15))
    assert not window.shows(record, D(2027, 4, 16))


def test_own_end_date_between_the_minimum_and_the_maximum_is_kept(window: PublicityWindow) -> None:
    record = penalty(SEVERE, D(2026, 4, 15), own_end=D(2027, 10, 1))
    assert window.end_of_display(record) == D(2027, 10, 1)


def test_minor_penalty_shown_by_policy_has_no_minimum() -> None:
    window = PublicityWindow(max_months=PublicityWindow.standard().max_months, show_minor=True)
    record = penalty(MINOR, D(2026, 4, 15), own_end=D(2026, 4, 20))
    assert window.end_of_display(record) == D(2026, 4, 20)


def test_minimum_is_capped_by_a_smaller_maximum() -> None:
    window = PublicityWindow(max_months={ORDINARY: 1})  # only constructible directly: parsing refuses it
    assert window.end_of_display(penalty(ORDINARY, D(2026, 4, 15), own_end=D(2026, 4, 16))) == D(2026, 5, 15)


def test_own_end_date_that_is_not_a_date_still_hides_the_record_despite_the_minimum(window: PublicityWindow) -> None:
    assert window.end_of_display(penalty(SEVERE, D(2026, 4, 15), own_end="2026-05-01")) is None


def test_credit_repair_hook_ends_display_before_the_minimum() -> None:
    """There is no repair yet; `repair_end` is where an approved repair will end display."""
    assert PublicityWindow.standard().repair_end(penalty(SEVERE)) is None

    class Repaired(PublicityWindow):
        def repair_end(self, record: dict) -> dt.date | None:  # type: ignore[override]
            return D(2026, 6, 1)

    repaired = Repaired(max_months=PublicityWindow.standard().max_months)
    assert repaired.end_of_display(penalty(SEVERE, D(2026, 4, 15), own_end=D(2026, 5, 1))) == D(2026, 6, 1)


@given(decided=dates, severity=st.sampled_from([ORDINARY, SEVERE]), own_end=dates)
def test_no_own_end_date_shows_a_penalty_for_less_than_the_minimum(
    decided: dt.date, severity: str, own_end: dt.date
) -> None:
    window = PublicityWindow.standard()
    minimum = add_months(decided, {ORDINARY: 3, SEVERE: 12}[severity])
    assert window.shows(penalty(severity, decided, own_end), minimum)


def _rule(**params: object) -> PublicityWindowRule:
    (rule,) = parse_row_rules([{"rule": "publicity-window", "families": ["penalties"], **params}])
    assert isinstance(rule, PublicityWindowRule)
    return rule


def test_rule_defaults_to_the_national_minima_and_reports_them() -> None:
    rule = _rule()
    assert rule.window == PublicityWindow.standard()
    assert rule.parameters()["min_months"] == {MINOR: 0, ORDINARY: 3, SEVERE: 12}


def test_rule_may_raise_a_minimum_up_to_the_maximum() -> None:
    rule = _rule(min_months={MINOR: 1, ORDINARY: 6, SEVERE: 36})
    assert dict(rule.window.min_months) == {MINOR: 1, ORDINARY: 6, SEVERE: 36}
    record = penalty(ORDINARY, D(2026, 4, 15), own_end=D(2026, 5, 1))
    assert rule.keep(record, D(2026, 10, 15)) and not rule.keep(record, D(2026, 10, 16))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"min_months": 3}, "min_months must be a table of severity = months"),
        ({"min_months": {MINOR: 0, ORDINARY: 2, SEVERE: 12}}, "min_months.一般: 2 months is outside 3 to 12"),
        ({"min_months": {MINOR: 0, ORDINARY: 3, SEVERE: 11}}, "min_months.严重: 11 months is outside 12 to 36"),
        ({"min_months": {MINOR: 4, ORDINARY: 3, SEVERE: 12}}, "min_months.轻微: 4 months is outside 0 to 3"),
        ({"min_months": {MINOR: 0, ORDINARY: 3, SEVERE: 12}, "max_months": {MINOR: 3, ORDINARY: 6, SEVERE: 24}}, None),
        ({"min_months": {MINOR: 0, ORDINARY: 9, SEVERE: 12}, "max_months": {MINOR: 3, ORDINARY: 6, SEVERE: 24}},
         "min_months.一般: 9 months is outside 3 to 6"),
        ({"min_months": {MINOR: 0, ORDINARY: "3", SEVERE: 12}}, "min_months.一般 must be a whole number"),
        ({"min_months": {MINOR: False, ORDINARY: 3, SEVERE: 12}}, "min_months.轻微 must be a whole number"),
        ({"min_months": {MINOR: 0, ORDINARY: 3}}, "min_months: give the months for 严重"),
        ({"min_months": {"重大": 3}}, "min_months: unknown severity '重大'"),
    ],
)
def test_rule_min_months_are_validated_like_max_months(params: dict, message: str | None) -> None:
    if message is None:
        _rule(**params)
        return
    with pytest.raises(PolicyError, match=message):
        _rule(**params)
