"""Deadlines in working days (issue 12): the shipped calendars say what the State Council's notices
say, a deadline is the n-th working day after the filing day across holidays, adjusted working
weekends and the turn of the year, a district's file replaces a shipped year, malformed files are
refused naming the file and the entry, and a year without a calendar is counted with weekends
only — and says so, in the API and in `xinlian calendar show`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from xinlian.hub.cases.calendar import (
    SHIPPED_DIR,
    CalendarError,
    CalendarSource,
    WorkingCalendar,
)
from xinlian.hub.cli import main

D = dt.date
TEN = 10  # working days: the usual time a department has to answer an objection


@pytest.fixture(scope="module")
def shipped() -> WorkingCalendar:
    return WorkingCalendar.load(None)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("XINLIAN_DATA_DIR", raising=False)
    (tmp_path / "calendars").mkdir()
    return tmp_path


def write(data_dir: Path, name: str, text: str) -> Path:
    path = data_dir / "calendars" / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shipped calendars are the notices -------------------------------------------------------

NOTICE_2025 = {  # 国务院办公厅关于2025年部分节假日安排的通知（国办发明电〔2024〕12号）
    "holidays": {"元旦": (D(2025, 1, 1), 1), "春节": (D(2025, 1, 28), 8), "清明节": (D(2025, 4, 4), 3),
                 "劳动节": (D(2025, 5, 1), 5), "端午节": (D(2025, 5, 31), 3), "国庆节、中秋节": (D(2025, 10, 1), 8)},
    "workdays": [D(2025, 1, 26), D(2025, 2, 8), D(2025, 4, 27), D(2025, 9, 28), D(2025, 10, 11)],
}
NOTICE_2026 = {  # 国务院办公厅关于2026年部分节假日安排的通知（2025年11月4日）
    "holidays": {"元旦": (D(2026, 1, 1), 3), "春节": (D(2026, 2, 15), 9), "清明节": (D(2026, 4, 4), 3),
                 "劳动节": (D(2026, 5, 1), 5), "端午节": (D(2026, 6, 19), 3), "中秋节": (D(2026, 9, 25), 3),
                 "国庆节": (D(2026, 10, 1), 7)},
    "workdays": [D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10)],
}


@pytest.mark.parametrize("year, notice", [(2025, NOTICE_2025), (2026, NOTICE_2026)])
def test_shipped_years_are_the_state_council_notices(shipped: WorkingCalendar, year: int, notice: dict) -> None:
    info = shipped.year_info(year)
    assert info.source is CalendarSource.SHIPPED and not info.weekends_only
    assert info.path == SHIPPED_DIR / f"{year}.toml"
    assert f"{year}年部分节假日安排的通知" in info.notice and info.url.startswith("https://www.gov.cn/")
    periods = {h.name: h.days for h in info.holidays}
    assert list(periods) == list(notice["holidays"])
    for name, (first, count) in notice["holidays"].items():
        assert periods[name] == tuple(first + dt.timedelta(days=i) for i in range(count)), name
    assert sorted(d for w in info.workdays for d in w.days) == notice["workdays"]
    assert info.working_days == 248


def test_working_days_per_month(shipped: WorkingCalendar) -> None:
    # 2026: February loses the six weekdays of the Spring Festival and gains two Saturdays
    assert shipped.year_info(2026).working_days_by_month == (21, 16, 22, 21, 19, 21, 23, 21, 22, 18, 21, 23)
    assert shipped.year_info(2025).working_days_by_month == (19, 19, 21, 22, 19, 20, 23, 21, 23, 18, 20, 23)


def test_which_days_are_working_days(shipped: WorkingCalendar) -> None:
    assert not shipped.is_working_day(D(2026, 10, 1))  # 国庆节, a Thursday
    assert not shipped.is_working_day(D(2026, 10, 7))  # its last day, a Wednesday
    assert shipped.is_working_day(D(2026, 10, 8))  # Thursday after
    assert shipped.is_working_day(D(2026, 10, 10))  # a Saturday worked (国庆节调休)
    assert shipped.is_working_day(D(2026, 9, 20))  # a Sunday worked
    assert not shipped.is_working_day(D(2026, 9, 19))  # an ordinary Saturday
    assert not shipped.is_working_day(D(2026, 10, 11))  # the Sunday after the Saturday worked
    assert not shipped.is_working_day(D(2025, 10, 8))  # 2025: National Day and Mid-Autumn, 8 days
    assert shipped.is_working_day(D(2025, 10, 11))


# -- deadlines -------------------------------------------------------------------------------------


def test_ten_working_days_across_national_day_2026(shipped: WorkingCalendar) -> None:
    # filed Monday 28 September: 29, 30 Sep; 8, 9 Oct; Saturday 10 Oct (worked); 12-16 Oct
    assert shipped.add_working_days(D(2026, 9, 28), TEN) == D(2026, 10, 16)
    # weekends only would have said 12 October: the holiday moves it by four days
    assert WorkingCalendar().add_working_days(D(2026, 9, 28), TEN) == D(2026, 10, 12)


def test_ten_working_days_across_the_adjusted_sunday_mid_autumn_and_national_day(shipped: WorkingCalendar) -> None:
    # filed Friday 18 September 2026: Sunday 20 Sep is worked (1), 21-24 (2-5), 中秋 25-27 off,
    # 28-30 (6-8), 国庆 1-7 Oct off, 8-9 Oct (9-10)
    assert shipped.add_working_days(D(2026, 9, 18), TEN) == D(2026, 10, 9)
    assert shipped.next_working_day(D(2026, 9, 18)) == D(2026, 9, 20)


def test_ten_working_days_across_national_day_2025(shipped: WorkingCalendar) -> None:
    # filed Friday 26 September 2025: Sunday 28 Sep worked (1), 29-30 (2-3), 1-8 Oct off,
    # 9-10 Oct (4-5), Saturday 11 Oct worked (6), 13-16 Oct (7-10)
    assert shipped.add_working_days(D(2025, 9, 26), TEN) == D(2025, 10, 16)


def test_filed_on_a_friday(shipped: WorkingCalendar) -> None:
    assert shipped.add_working_days(D(2026, 11, 6), TEN) == D(2026, 11, 20)  # an ordinary Friday: two weeks
    # the Friday before a Saturday worked: that Saturday is the first working day
    assert shipped.next_working_day(D(2026, 10, 9)) == D(2026, 10, 10)
    assert shipped.add_working_days(D(2026, 10, 9), TEN) == D(2026, 10, 22)


def test_filed_on_a_holiday(shipped: WorkingCalendar) -> None:
    # the filing day never counts; nor do the holiday's other days: counting starts on 8 October
    assert shipped.next_working_day(D(2026, 10, 1)) == D(2026, 10, 8)
    assert shipped.add_working_days(D(2026, 10, 1), TEN) == D(2026, 10, 20)
    assert shipped.add_working_days(D(2026, 10, 3), TEN) == D(2026, 10, 20)  # a Saturday inside it: the same


def test_filed_on_an_adjusted_working_saturday(shipped: WorkingCalendar) -> None:
    # the Saturday is a working day, but as the filing day it does not count
    assert shipped.add_working_days(D(2026, 10, 10), 1) == D(2026, 10, 12)
    assert shipped.add_working_days(D(2026, 10, 10), TEN) == D(2026, 10, 23)
    # Saturday 14 February 2026, the day before the Spring Festival: 24-27 Feb, Saturday 28 Feb, 2-6 Mar
    assert shipped.add_working_days(D(2026, 2, 14), TEN) == D(2026, 3, 6)


def test_spring_festival(shipped: WorkingCalendar) -> None:
    # filed Friday 13 February 2026: Saturday 14 Feb worked (1), 15-23 Feb off, 24-27 (2-5),
    # Saturday 28 Feb worked (6), 2-5 March (7-10)
    assert shipped.add_working_days(D(2026, 2, 13), TEN) == D(2026, 3, 5)
    assert shipped.working_days_between(D(2026, 2, 14), D(2026, 2, 23)) == 0
    # 2025: filed Friday 24 January: Sunday 26 Jan worked (1), 27 Jan (2), 28 Jan-4 Feb off,
    # 5-7 Feb (3-5), Saturday 8 Feb worked (6), 10-13 Feb (7-10)
    assert shipped.add_working_days(D(2025, 1, 24), TEN) == D(2025, 2, 13)


def test_year_boundary_between_two_known_years(shipped: WorkingCalendar) -> None:
    # filed Wednesday 24 December 2025: 25, 26, 29, 30, 31 Dec (1-5), 元旦 1-3 Jan off,
    # Sunday 4 Jan worked (6), 5-8 Jan (7-10)
    start = D(2025, 12, 24)
    assert shipped.add_working_days(start, TEN) == D(2026, 1, 8)
    assert shipped.weekends_only_in(start, D(2026, 1, 8)) == ()


def test_year_boundary_into_a_year_counted_weekends_only(shipped: WorkingCalendar) -> None:
    # filed Thursday 24 December 2026; 2027 has no holidays shipped, so Friday 1 January counts
    start = D(2026, 12, 24)
    deadline = shipped.add_working_days(start, TEN)
    assert deadline == D(2027, 1, 7)
    assert shipped.weekends_only_in(start, deadline) == (2027,)  # what a case shows next to its deadline


def test_a_data_dir_file_for_the_next_year_moves_the_deadline(data_dir: Path) -> None:
    # the district loads its own 2027 file (test data: 元旦 is 1 January by law; the other days are
    # left out): it replaces the shipped weekends-only 2027 and the deadline moves by one day
    write(data_dir, "2027.toml", 'year = 2027\nnotice = "test: 元旦 only"\n\n'
                                 '[[holidays]]\nname = "元旦"\ndays = [2027-01-01]\n')
    calendar = WorkingCalendar.load(data_dir)
    start = D(2026, 12, 24)
    assert calendar.add_working_days(start, TEN) == D(2027, 1, 8)
    assert calendar.weekends_only_in(start, D(2027, 1, 8)) == ()
    assert calendar.year_info(2027).source is CalendarSource.DATA_DIR
    assert calendar.year_info(2026).source is CalendarSource.SHIPPED  # other years stay shipped


def test_a_data_dir_file_replaces_the_shipped_year_as_a_whole(data_dir: Path) -> None:
    path = write(data_dir, "2026.toml", 'year = 2026\nnotice = "区信用办：仅元旦（test）"\n\n'
                                        '[[holidays]]\nname = "元旦"\ndays = ["2026-01-01", "2026-01-02", "2026-01-03"]\n')
    calendar = WorkingCalendar.load(data_dir)
    info = calendar.year_info(2026)
    assert info.source is CalendarSource.DATA_DIR and info.path == path
    assert [h.name for h in info.holidays] == ["元旦"] and info.workdays == ()
    # replaced, not merged: the shipped National Day and its Saturday worked are gone
    assert calendar.is_working_day(D(2026, 10, 1))
    assert not calendar.is_working_day(D(2026, 10, 10))
    assert "from the data directory" in info.describe() and str(path) in info.describe()


def test_working_days_between_is_the_inverse_of_add_working_days(shipped: WorkingCalendar) -> None:
    rng = random.Random(12)
    for _ in range(400):
        start = D(2024, 12, 1) + dt.timedelta(days=rng.randrange(0, 3 * 366))
        n = rng.randint(1, 60)
        deadline = shipped.add_working_days(start, n)
        assert shipped.working_days_between(start, deadline) == n
        assert shipped.working_days_between(deadline, start) == -n
        assert shipped.is_working_day(deadline)
        # counted day by day, the same
        assert sum(shipped.is_working_day(start + dt.timedelta(days=i)) for i in range(1, (deadline - start).days + 1)) == n
    assert shipped.working_days_between(D(2025, 12, 31), D(2026, 12, 31)) == 248
    assert shipped.working_days_between(D(2026, 10, 1), D(2026, 10, 1)) == 0
    # overdue: a deadline of Friday 9 October, and it is Friday 16 October: six working days late
    # (Saturday 10 October was worked, then 12-16)
    assert shipped.working_days_between(D(2026, 10, 9), D(2026, 10, 16)) == 6


# -- years without a calendar ----------------------------------------------------------------------


def test_a_year_without_any_file_is_weekends_only_and_says_so(shipped: WorkingCalendar) -> None:
    info = shipped.year_info(2030)
    assert info.weekends_only and info.source is CalendarSource.WEEKENDS_ONLY
    assert info.path is None and info.holidays == () and info.workdays == ()
    assert "weekends only" in info.describe() and "no calendar file for 2030" in info.describe()
    assert info.working_days == 261  # every Monday to Friday of 2030
    assert shipped.is_working_day(D(2030, 1, 1)) and not shipped.is_working_day(D(2030, 1, 5))
    assert 2030 not in shipped.known_years and {2025, 2026} <= set(shipped.known_years)


def test_the_shipped_2027_is_weekends_only_until_its_notice_is_loaded(shipped: WorkingCalendar) -> None:
    info = shipped.year_info(2027)
    assert info.weekends_only and info.path == SHIPPED_DIR / "2027.toml"
    assert "2027年部分节假日安排的通知" in info.notice and "weekends only" in info.describe()
    assert 2027 not in shipped.known_years


def test_days_are_dates_and_deadlines_at_least_one_day(shipped: WorkingCalendar) -> None:
    with pytest.raises(TypeError, match="must be a date"):
        shipped.is_working_day(dt.datetime(2026, 10, 1, 9, 0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a date"):
        shipped.add_working_days("2026-10-01", 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        shipped.add_working_days(D(2026, 10, 1), 0)
    with pytest.raises(TypeError, match="whole number"):
        shipped.add_working_days(D(2026, 10, 1), 2.5)  # type: ignore[arg-type]


# -- malformed files -------------------------------------------------------------------------------

HEAD = 'year = 2026\nnotice = "国务院办公厅关于2026年部分节假日安排的通知"\n\n'
NATIONAL_DAY = '[[holidays]]\nname = "国庆节"\ndays = ["2026-10-01", "2026-10-02", "2026-10-03"]\n\n'

MALFORMED = [
    ("a date outside the year",
     HEAD + '[[holidays]]\nname = "元旦"\ndays = ["2026-12-31", "2027-01-01"]\n',
     '[[holidays]] #1 "元旦": 2027-01-01 is not in 2026'),
    ("a day both holiday and workday",
     HEAD + NATIONAL_DAY + '[[workdays]]\nname = "国庆节调休"\ndays = ["2026-10-03"]\n',
     '[[workdays]] #1 "国庆节调休": 2026-10-03 is both a holiday ([[holidays]] #1 "国庆节")'),
    ("a workday that is not a weekend",
     HEAD + NATIONAL_DAY + '[[workdays]]\nname = "国庆节调休"\ndays = ["2026-10-09"]\n',
     '[[workdays]] #1 "国庆节调休": 2026-10-09 is a Friday'),
    ("a holiday on a day another holiday lists",
     HEAD + NATIONAL_DAY + '[[holidays]]\nname = "中秋节"\ndays = ["2026-09-30", "2026-10-01"]\n',
     '[[holidays]] #2 "中秋节": 2026-10-01 is already listed under [[holidays]] #1 "国庆节"'),
    ("a day listed twice",
     HEAD + '[[holidays]]\nname = "元旦"\ndays = ["2026-01-01", "2026-01-01"]\n',
     '[[holidays]] #1 "元旦": 2026-01-01 is listed twice'),
    ("a date that does not exist",
     HEAD + '[[holidays]]\nname = "春节"\ndays = ["2026-02-30"]\n',
     "[[holidays]] #1 \"春节\": '2026-02-30' is not a date"),
    ("a date without dashes",
     HEAD + '[[holidays]]\nname = "春节"\ndays = ["20260216"]\n',
     "[[holidays]] #1 \"春节\": '20260216' is not a date"),
    ("a time instead of a date",
     HEAD + '[[holidays]]\nname = "春节"\ndays = [2026-02-16T00:00:00]\n',
     '[[holidays]] #1 "春节": 2026-02-16T00:00:00 is a date and time'),
    ("a holiday without a name",
     HEAD + '[[holidays]]\ndays = ["2026-10-01"]\n',
     "[[holidays]] #1: `name` is missing"),
    ("a holiday without days",
     HEAD + '[[holidays]]\nname = "国庆节"\ndays = []\n',
     '[[holidays]] #1 "国庆节": `days` is missing or empty'),
    ("a misspelt entry key",
     HEAD + '[[holidays]]\nname = "国庆节"\nday = ["2026-10-01"]\n',
     "[[holidays]] #1: unknown key 'day'"),
    ("a misspelt top-level key",
     HEAD + '[[holiday]]\nname = "国庆节"\ndays = ["2026-10-01"]\n',
     "unknown key 'holiday'"),
    ("two entries of one name",
     HEAD + NATIONAL_DAY + '[[holidays]]\nname = "国庆节"\ndays = ["2026-10-04"]\n',
     '[[holidays]] #2 "国庆节": a second [[holidays]] entry named'),
    ("the year of another file",
     'year = 2025\nnotice = "x"\n\n' + NATIONAL_DAY,
     "year = 2025, but the file is named 2026.toml"),
    ("no year", 'notice = "x"\n\n' + NATIONAL_DAY, "`year = 2026` is missing"),
    ("no notice", "year = 2026\n\n" + NATIONAL_DAY, "`notice` is missing"),
    ("no holidays in a published year", HEAD, "no [[holidays]]"),
    ("days listed in a year said unpublished", HEAD + "published = false\n\n" + NATIONAL_DAY, "published = false"),
    ("not TOML", 'year = 2026\nnotice = "x\n', "not valid TOML"),
]


@pytest.mark.parametrize("what, text, expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_are_refused_naming_the_file_and_the_entry(data_dir: Path, what: str, text: str,
                                                                   expected: str) -> None:
    path = write(data_dir, "2026.toml", text)
    with pytest.raises(CalendarError) as refused:
        WorkingCalendar.load(data_dir)
    message = str(refused.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_a_file_not_named_by_its_year_is_refused(data_dir: Path) -> None:
    path = write(data_dir, "2026-holidays.toml", HEAD + NATIONAL_DAY)
    with pytest.raises(CalendarError, match="not a calendar file name") as refused:
        WorkingCalendar.load(data_dir)
    assert str(path) in str(refused.value)


def test_a_file_with_a_byte_order_mark_and_toml_dates_is_read(data_dir: Path) -> None:
    path = data_dir / "calendars" / "2026.toml"
    path.write_bytes(("\ufeff" + HEAD + '[[holidays]]\nname = "国庆节"\ndays = [2026-10-01, 2026-10-02]\n').encode())
    assert WorkingCalendar.load(data_dir).year_info(2026).holidays[0].days == (D(2026, 10, 1), D(2026, 10, 2))


# -- xinlian calendar show -------------------------------------------------------------------------


def test_cli_shows_a_shipped_year(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "show", "2026", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"calendar 2026: shipped with the hub ({SHIPPED_DIR / '2026.toml'})")
    assert "国务院办公厅关于2026年部分节假日安排的通知" in out
    assert f"a file {data_dir / 'calendars' / '2026.toml'} would replace it" in out
    assert "国庆节  2026-10-01 周四 – 2026-10-07 周三  7" in out
    assert "春节调休    2026-02-14 周六, 2026-02-28 周六" in out
    assert "working days in 2026: 248" in out
    assert "21  16  22  21  19  21  23  21  22  18  21  23  248" in out


def test_cli_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "show", "2025", "--data-dir", str(data_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == "shipped" and shown["weekends_only"] is False
    assert shown["holidays"][-1] == {"name": "国庆节、中秋节", "days": [f"2025-10-0{d}" for d in range(1, 9)]}
    assert shown["workdays"][0] == {"name": "春节调休", "days": ["2025-01-26", "2025-02-08"]}
    assert shown["working_days"] == 248 and shown["working_days_by_month"]["2025-10"] == 18


def test_cli_says_a_year_is_weekends_only(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "show", "2031", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("calendar 2031: weekends only: no calendar file for 2031")
    assert f"write {data_dir / 'calendars' / '2031.toml'} from the State Council's notice" in out
    assert "working days in 2031: 261 (weekends only)" in out
    assert main(["calendar", "show", "2031", "--data-dir", str(data_dir), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["source"] == "weekends only" and shown["weekends_only"] is True and shown["holidays"] == []


def test_cli_shows_the_data_dir_file_in_place_of_the_shipped_one(data_dir: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write(data_dir, "2026.toml", HEAD + NATIONAL_DAY)
    assert main(["calendar", "show", "2026", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"calendar 2026: from the data directory ({path})")
    assert f"it replaces the shipped {SHIPPED_DIR / '2026.toml'}" in out
    assert "春节" not in out


def test_cli_refuses_a_malformed_file(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(data_dir, "2026.toml", HEAD + NATIONAL_DAY + '[[workdays]]\nname = "国庆节调休"\ndays = ["2026-10-09"]\n')
    # any year's file is checked: showing 2025 refuses the broken 2026 too
    assert main(["calendar", "show", "2025", "--data-dir", str(data_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"xinlian calendar: {path}: [[workdays]] #1 \"国庆节调休\": 2026-10-09 is a Friday")


def test_cli_refuses_a_year_that_is_not_one(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["calendar", "show", "twenty", "--data-dir", str(data_dir)])
    assert stopped.value.code == 2
    assert "'twenty' is not a year" in capsys.readouterr().err
