"""The working-day calendar: which days count when a case's deadline is given in working days.

The working week is Monday to Friday, changed each year by the State Council's notice on public
holidays (国务院办公厅关于YYYY年部分节假日安排的通知): the days off of each public holiday
(法定节假日, with the weekend days the notice joins to it) are not working days, and the adjusted
working weekends (调休上班日) are Saturdays or Sundays that are. One TOML file per year holds that
year's notice (docs/cases.md, "Working days and deadlines"):

    year = 2026
    notice = "国务院办公厅关于2026年部分节假日安排的通知（2025年11月4日）"
    url = "https://www.gov.cn/..."                    # optional

    [[holidays]]
    name = "国庆节"
    days = ["2026-10-01", "2026-10-02", ...]          # every day off of the period, weekends too

    [[workdays]]
    name = "国庆节调休"
    days = ["2026-09-20", "2026-10-10"]               # only Saturdays and Sundays

A year whose arrangement is not published yet (or not at hand) says `published = false` and lists
no days. The hub
ships the years it knows (calendars/YYYY.toml beside this module); `<data-dir>/calendars/YYYY.toml`
replaces the shipped file of its year as a whole. A year with no file is counted with weekends
only, and says so (`CalendarYear.weekends_only`, `WorkingCalendar.weekends_only_in`).

`WorkingCalendar.load` reads and checks every file at once: a malformed one raises
`CalendarError` naming the file and the entry, so a bad file stops whoever loads it, not a case
months later.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

SHIPPED_DIR = Path(__file__).with_name("calendars")
DATA_DIR_FOLDER = "calendars"  # <data-dir>/calendars/YYYY.toml
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_FILE_NAME = re.compile(r"^(\d{4})\.toml$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP_KEYS = ("year", "notice", "url", "published", "holidays", "workdays")
_ENTRY_KEYS = ("name", "days")


class CalendarError(ValueError):
    """A calendar file the hub cannot use; the message names the file and the entry."""


class CalendarSource(enum.Enum):
    """Where a year's calendar comes from."""

    SHIPPED = "shipped"  # hub/cases/calendars/YYYY.toml
    DATA_DIR = "data dir"  # <data-dir>/calendars/YYYY.toml, replacing the shipped file
    WEEKENDS_ONLY = "weekends only"  # no file, or a file saying `published = false`


@dataclass(frozen=True)
class Holiday:
    """A public holiday (法定节假日) as the notice names it, with every day off of its period."""

    name: str
    days: tuple[dt.date, ...]


@dataclass(frozen=True)
class AdjustedWorkdays:
    """Saturdays or Sundays worked (调休上班日), named after the holiday they make up for."""

    name: str
    days: tuple[dt.date, ...]


@dataclass(frozen=True)
class CalendarYear:
    """One year of the calendar: its holidays, its adjusted working days, and where they come from."""

    year: int
    source: CalendarSource
    holidays: tuple[Holiday, ...] = ()
    workdays: tuple[AdjustedWorkdays, ...] = ()
    path: Path | None = None  # the file read, if any
    notice: str = ""  # the State Council notice the dates come from
    url: str = ""

    @property
    def weekends_only(self) -> bool:
        """True when no holidays are known for the year: only Saturdays and Sundays are days off."""
        return self.source is CalendarSource.WEEKENDS_ONLY

    @cached_property
    def days_off(self) -> frozenset[dt.date]:
        """Every day of the year's holidays (weekend days included)."""
        return frozenset(day for holiday in self.holidays for day in holiday.days)

    @cached_property
    def days_worked(self) -> frozenset[dt.date]:
        """Every adjusted working day of the year."""
        return frozenset(day for group in self.workdays for day in group.days)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether `day` (a day of this year) is a working day."""
        if day in self.days_worked:
            return True
        return day not in self.days_off and day.weekday() < 5

    @cached_property
    def working_days_by_month(self) -> tuple[int, ...]:
        """The number of working days in each month, January first."""
        counts = [0] * 12
        day = dt.date(self.year, 1, 1)
        while day.year == self.year:
            if self.is_working_day(day):
                counts[day.month - 1] += 1
            day += dt.timedelta(days=1)
        return tuple(counts)

    @property
    def working_days(self) -> int:
        """The number of working days in the year."""
        return sum(self.working_days_by_month)

    def describe(self) -> str:
        """Where the year's calendar comes from, as a sentence for people."""
        if self.source is CalendarSource.SHIPPED:
            return f"shipped with the hub ({self.path})"
        if self.source is CalendarSource.DATA_DIR:
            return f"from the data directory ({self.path})"
        if self.path is not None:
            return (f"weekends only: {self.path} gives no holidays for {self.year} ({self.notice}); "
                    "public holidays and adjusted working days are not counted")
        return (f"weekends only: no calendar file for {self.year}; "
                "public holidays and adjusted working days are not counted")


class WorkingCalendar:
    """Working days over every year: the years with a file as it says, other years weekends only.

    `add_working_days(start, n)` is the deadline of a case filed on `start` with `n` working days
    to answer: the n-th working day after `start`, the filing day never counting (whatever it
    is). Days are `datetime.date` values in Hohhot's calendar; a `datetime` is refused (take its
    date in Asia/Shanghai first: a case filed at 2026-10-08T23:30Z was filed on October 9).
    """

    def __init__(self, years: Iterable[CalendarYear] = (), calendars_dir: Path | None = None) -> None:
        self._years: dict[int, CalendarYear] = {}
        for year in years:
            if year.year in self._years:
                raise ValueError(f"two calendars for {year.year}")
            self._years[year.year] = year
        self.calendars_dir = calendars_dir  # <data-dir>/calendars, where the district's files go
        off = {d for y in self._years.values() for d in y.days_off}
        on = {d for y in self._years.values() for d in y.days_worked}
        # what moves a day away from the plain Monday-to-Friday week, sorted to be counted by bisection
        self._weekdays_off = sorted(d for d in off - on if d.weekday() < 5)
        self._weekends_on = sorted(d for d in on if d.weekday() >= 5)
        self._off = frozenset(off)
        self._on = frozenset(on)

    @classmethod
    def load(cls, data_dir: Path | None = None, *, shipped_dir: Path = SHIPPED_DIR) -> WorkingCalendar:
        """The shipped calendars, each year replaced by `<data_dir>/calendars/YYYY.toml` where there is one.

        Every file is read and checked now; raises `CalendarError` for the first malformed one.
        """
        chosen: dict[int, tuple[Path, CalendarSource]] = {}
        for year, path in _calendar_files(shipped_dir):
            chosen[year] = (path, CalendarSource.SHIPPED)
        own = None if data_dir is None else Path(data_dir) / DATA_DIR_FOLDER
        if own is not None and own.exists():
            if not own.is_dir():
                raise CalendarError(f"{own}: not a directory (a year's calendar goes in {own}/YYYY.toml)")
            for year, path in _calendar_files(own):
                chosen[year] = (path, CalendarSource.DATA_DIR)
        return cls((read_calendar_file(path, source) for _, (path, source) in sorted(chosen.items())), own)

    @property
    def known_years(self) -> tuple[int, ...]:
        """The years whose holidays and adjusted working days are known (not weekends only)."""
        return tuple(sorted(y for y, c in self._years.items() if not c.weekends_only))

    def year_info(self, year: int) -> CalendarYear:
        """The calendar of `year`: its file's holidays and adjusted working days, or weekends only."""
        if not dt.MINYEAR <= year <= dt.MAXYEAR:
            raise ValueError(f"no year {year}")
        return self._years.get(year) or CalendarYear(year, CalendarSource.WEEKENDS_ONLY)

    def weekends_only_in(self, first: dt.date, last: dt.date) -> tuple[int, ...]:
        """The years from `first` to `last` (inclusive, either order) counted with weekends only.

        A deadline whose span touches one of them may move once that year's notice is loaded."""
        low, high = sorted((_day(first, "first"), _day(last, "last")))
        return tuple(y for y in range(low.year, high.year + 1) if self.year_info(y).weekends_only)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether `day` is a working day: an adjusted working day, or a Monday to Friday that is no holiday."""
        day = _day(day, "day")
        if day in self._on:
            return True
        return day not in self._off and day.weekday() < 5

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day after `day` (never `day` itself): `add_working_days(day, 1)`."""
        return self.add_working_days(day, 1)

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after `start` (n >= 1): the deadline of a case filed on `start`.

        `start` itself never counts, whether it is a working day, a weekend or a holiday."""
        day = _day(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be a whole number of working days, not {n!r}")
        if n < 1:
            raise ValueError(f"n must be at least 1 working day, not {n}")
        left = n
        while left:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """The working days after `a` up to and including `b`; negative when `b` is before `a`.

        `working_days_between(start, add_working_days(start, n)) == n`; for a deadline,
        `working_days_between(today, deadline)` is what is left and, past it,
        `working_days_between(deadline, today)` how many working days it is overdue."""
        a, b = _day(a, "a"), _day(b, "b")
        if b < a:
            return -self.working_days_between(b, a)
        weekdays = _weekdays_through(b) - _weekdays_through(a)
        off = bisect.bisect_right(self._weekdays_off, b) - bisect.bisect_right(self._weekdays_off, a)
        on = bisect.bisect_right(self._weekends_on, b) - bisect.bisect_right(self._weekends_on, a)
        return weekdays - off + on

    def file_for(self, year: int) -> Path | None:
        """Where the district's own file for `year` goes (None when the calendar has no data directory)."""
        return None if self.calendars_dir is None else self.calendars_dir / f"{year:04d}.toml"


def _day(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"{name} must be a date (datetime.date, the day in Hohhot), not {value!r}")
    return value


def _weekdays_through(day: dt.date) -> int:
    """The Mondays to Fridays from 0001-01-01 (a Monday) through `day`."""
    weeks, rest = divmod(day.toordinal(), 7)
    return weeks * 5 + min(rest, 5)


def _calendar_files(directory: Path) -> list[tuple[int, Path]]:
    """The `YYYY.toml` files of `directory` (none when it does not exist); another `*.toml` is refused."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.toml")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise CalendarError(f"{path}: not a calendar file name: a year's calendar is YYYY.toml, e.g. 2026.toml")
        found.append((int(match.group(1)), path))
    return found


def read_calendar_file(path: Path, source: CalendarSource) -> CalendarYear:
    """Read and check one calendar file (`YYYY.toml`); raises `CalendarError` naming the file and entry."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise CalendarError(f"{path}: not a calendar file name: a year's calendar is YYYY.toml, e.g. 2026.toml")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CalendarError(f"{path}: not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{path}: not valid TOML: {exc}") from None
    return parse_calendar(data, int(match.group(1)), path, source)


def parse_calendar(data: dict[str, Any], year: int, path: Path, source: CalendarSource) -> CalendarYear:
    """Check the parsed TOML of `path` (the calendar of `year`) and build its `CalendarYear`."""
    where = str(path)
    for key in data:
        if key not in _TOP_KEYS:
            raise CalendarError(f"{where}: unknown key {key!r} (the keys are {', '.join(_TOP_KEYS)})")
    stated = data.get("year")
    if stated is None:
        raise CalendarError(f"{where}: `year = {year}` is missing")
    if isinstance(stated, bool) or not isinstance(stated, int) or stated != year:
        raise CalendarError(f"{where}: year = {stated!r}, but the file is named {path.name}: both must say {year}")
    notice = data.get("notice")
    if not isinstance(notice, str) or not notice.strip():
        raise CalendarError(f"{where}: `notice` is missing: name the State Council notice the dates come from")
    url = data.get("url", "")
    if not isinstance(url, str):
        raise CalendarError(f"{where}: url must be a string, not {url!r}")
    published = data.get("published", True)
    if not isinstance(published, bool):
        raise CalendarError(f"{where}: published must be true or false, not {published!r}")
    holiday_entries = _entries(data, "holidays", where)
    workday_entries = _entries(data, "workdays", where)
    if not published:
        if holiday_entries or workday_entries:
            raise CalendarError(f"{where}: published = false (the arrangement for {year} is not published), "
                                "yet it lists [[holidays]] or [[workdays]]: remove them, or remove published = false")
        return CalendarYear(year, CalendarSource.WEEKENDS_ONLY, path=path, notice=notice.strip(), url=url)
    if not holiday_entries:
        raise CalendarError(f"{where}: no [[holidays]]: a published notice names the year's holidays "
                            "(if the arrangement is not published yet, say published = false)")

    listed: dict[dt.date, str] = {}  # each day and the entry that lists it
    holidays: list[Holiday] = []
    for number, entry in enumerate(holiday_entries, 1):
        name, days, label = _entry(entry, "holidays", number, year, where)
        if any(h.name == name for h in holidays):
            raise CalendarError(f"{where}: {label}: a second [[holidays]] entry named {name!r}")
        for day in days:
            if day in listed:
                raise CalendarError(f"{where}: {label}: {day} is already listed under {listed[day]}")
            listed[day] = label
        holidays.append(Holiday(name, days))
    workdays: list[AdjustedWorkdays] = []
    for number, entry in enumerate(workday_entries, 1):
        name, days, label = _entry(entry, "workdays", number, year, where)
        if any(w.name == name for w in workdays):
            raise CalendarError(f"{where}: {label}: a second [[workdays]] entry named {name!r}")
        for day in days:
            if day in listed and listed[day].startswith("[[holidays]]"):
                raise CalendarError(f"{where}: {label}: {day} is both a holiday ({listed[day]}) "
                                    "and an adjusted working day")
            if day in listed:
                raise CalendarError(f"{where}: {label}: {day} is already listed under {listed[day]}")
            if day.weekday() < 5:
                raise CalendarError(f"{where}: {label}: {day} is a {_WEEKDAYS_EN[day.weekday()]} "
                                    f"({WEEKDAY_NAMES[day.weekday()]}); an adjusted working day (调休上班日) "
                                    "is a Saturday or Sunday")
            listed[day] = label
        workdays.append(AdjustedWorkdays(name, days))
    return CalendarYear(year, source, tuple(holidays), tuple(workdays), path, notice.strip(), url)


def _entries(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise CalendarError(f"{where}: {key} must be [[{key}]] entries, each with a name and days")
    return value


def _entry(entry: dict[str, Any], key: str, number: int, year: int, where: str) -> tuple[str, tuple[dt.date, ...], str]:
    """The name, the sorted days and the label (`[[holidays]] #3 "清明节"`) of one entry."""
    label = f"[[{key}]] #{number}"
    for field in entry:
        if field not in _ENTRY_KEYS:
            raise CalendarError(f"{where}: {label}: unknown key {field!r} (an entry has a name and days)")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CalendarError(f"{where}: {label}: `name` is missing (e.g. name = \"国庆节\")")
    name = name.strip()
    label = f'{label} "{name}"'
    raw_days = entry.get("days")
    if not isinstance(raw_days, list) or not raw_days:
        raise CalendarError(f'{where}: {label}: `days` is missing or empty (e.g. days = ["{year}-10-01"])')
    days = []
    for raw in raw_days:
        day = _parse_day(raw)
        if isinstance(raw, dt.datetime):
            raise CalendarError(f"{where}: {label}: {raw.isoformat()} is a date and time; a day is a date (YYYY-MM-DD)")
        if day is None:
            raise CalendarError(f"{where}: {label}: {raw!r} is not a date (YYYY-MM-DD)")
        if day.year != year:
            raise CalendarError(f"{where}: {label}: {day} is not in {year} (it belongs in {day.year:04d}.toml)")
        if day in days:
            raise CalendarError(f"{where}: {label}: {day} is listed twice")
        days.append(day)
    return name, tuple(sorted(days)), label


def _parse_day(raw: Any) -> dt.date | None:
    """A TOML date (2026-10-01) or a string "2026-10-01"; None for anything else."""
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    try:
        return dt.date.fromisoformat(raw) if isinstance(raw, str) and _ISO_DATE.match(raw) else None
    except ValueError:  # 2026-02-30
        return None
