"""`xinlian calendar show YEAR [--data-dir D] [--json]`: the working-day calendar of a year.

What case deadlines count with (hub/cases/calendar.py): the year's public holidays with their
names and days, the adjusted working weekends, the number of working days in the year and in each
month, and where the calendar comes from — shipped with the hub, the data directory's
`calendars/YYYY.toml`, or weekends only (said plainly, never silently). Reads files only: no hub
store is needed. A malformed calendar file (any year's: they are all checked when loaded): the
message names the file and the entry on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from xinlian.hub.cases.calendar import (
    SHIPPED_DIR,
    WEEKDAY_NAMES,
    CalendarError,
    CalendarSource,
    CalendarYear,
    WorkingCalendar,
)
from xinlian.hub.config import Settings

from .admin_session import DATA_DIR_HELP
from .tables import table


def _year(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year (e.g. 2026)") from None
    if not dt.MINYEAR <= value <= dt.MAXYEAR:
        raise argparse.ArgumentTypeError(f"{value} is not a year between {dt.MINYEAR} and {dt.MAXYEAR}")
    return value


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    calendar = sub.add_parser("calendar", help="the working-day calendar that case deadlines count with")
    c = calendar.add_subparsers(dest="calendar_command", required=True)
    show = c.add_parser("show", help="a year's public holidays, adjusted working days and working-day counts")
    show.add_argument("year", type=_year, metavar="YEAR")
    show.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    show.add_argument("--json", action="store_true", help="one JSON object instead of the listing")
    show.set_defaults(handler=run_show)


def run_show(args: argparse.Namespace) -> int:
    data_dir = Settings.from_env(args.data_dir).data_dir
    try:
        calendar = WorkingCalendar.load(data_dir)
    except CalendarError as exc:
        print(f"xinlian calendar: {exc}", file=sys.stderr)
        return 2
    info = calendar.year_info(args.year)
    if args.json:
        print(json.dumps(as_json(info), ensure_ascii=False))
    else:
        print(listing(info, calendar))
    return 0


def as_json(info: CalendarYear) -> dict[str, Any]:
    """The year's calendar as `--json` prints it."""
    return {
        "year": info.year,
        "source": info.source.value,
        "weekends_only": info.weekends_only,
        "path": None if info.path is None else str(info.path),
        "notice": info.notice or None,
        "url": info.url or None,
        "holidays": [{"name": h.name, "days": [d.isoformat() for d in h.days]} for h in info.holidays],
        "workdays": [{"name": w.name, "days": [d.isoformat() for d in w.days]} for w in info.workdays],
        "working_days": info.working_days,
        "working_days_by_month": {f"{info.year:04d}-{m:02d}": n for m, n in enumerate(info.working_days_by_month, 1)},
    }


def listing(info: CalendarYear, calendar: WorkingCalendar) -> str:
    """The year's calendar for people: source, holidays, adjusted working days, counts."""
    lines = [f"calendar {info.year}: {info.describe()}"]
    if info.notice and not info.weekends_only:
        lines.append(f"notice: {info.notice}" + (f" {info.url}" if info.url else ""))
    shipped = SHIPPED_DIR / f"{info.year:04d}.toml"
    if info.source is CalendarSource.DATA_DIR and shipped.exists():
        lines.append(f"it replaces the shipped {shipped}")
    own = calendar.file_for(info.year)
    if own is not None and info.source is not CalendarSource.DATA_DIR:
        if info.weekends_only:
            lines.append(f"to count its holidays, write {own} from the State Council's notice (docs/cases.md)")
        else:
            lines.append(f"a file {own} would replace it")
    lines.append("")
    if info.holidays:
        lines.append("public holidays (法定节假日)")
        rows = [{"name": h.name, "days": _runs(h.days), "days_off": len(h.days)} for h in info.holidays]
        lines.append(table(rows, ("name", "days", "days_off")))
    else:
        lines.append("public holidays (法定节假日): none known — weekends only")
    lines.append("")
    if info.workdays:
        lines.append("adjusted working days (调休上班日)")
        rows = [{"name": w.name, "days": ", ".join(_day(d) for d in w.days)} for w in info.workdays]
        lines.append(table(rows, ("name", "days")))
    else:
        lines.append("adjusted working days (调休上班日): none" + (" known" if info.weekends_only else ""))
    lines.append("")
    lines.append(f"working days in {info.year}: {info.working_days}" + (" (weekends only)" if info.weekends_only else ""))
    months = {f"{m:02d}": n for m, n in enumerate(info.working_days_by_month, 1)}
    lines.append(table([months | {"year": info.working_days}], (*months, "year")))
    return "\n".join(lines)


def _day(day: dt.date) -> str:
    return f"{day.isoformat()} {WEEKDAY_NAMES[day.weekday()]}"


def _runs(days: tuple[dt.date, ...]) -> str:
    """Consecutive days as `first – last`, the runs separated by commas."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(_day(r[0]) if len(r) == 1 else f"{_day(r[0])} – {_day(r[-1])}" for r in runs)
