"""Supervision plans (分级分类监管): subjects by supervision class for a department and a period.

The plan is read from every subject's current rating (hub/credit/ratings.py): its level gives
its class (A: periodic spot checks, B: irregular patrols, C: focused inspections) and the class
the recommended inspections per year (policy data, `credit.supervision`). For a period — a year
`2026`, a quarter `2026-Q4` or a month `2026-12` — each subject's inspections due are the yearly
frequency times the period's share of a year, rounded up (a class-C subject inspected 4 times a
year is due once a quarter). A department sees the subjects of the industries it supervises
(`credit.supervising`; a department the policy does not name supervises every industry).
The plan exports as CSV or XLSX with the same columns.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from typing import Sequence

from xinlian.policies.credit import CreditRules

from .model import CreditInputError
from .ratings import Rating

PERIOD = re.compile(r"(?P<year>[0-9]{4})(?:-(?:Q(?P<quarter>[1-4])|(?P<month>0[1-9]|1[0-2])))?")
YEARS = range(2000, 2101)  # plans are for the years the hub serves
COLUMNS = (
    ("subject", "统一社会信用代码"), ("name", "主体名称"), ("industry", "行业"), ("level", "信用等级"),
    ("score", "评分"), ("supervision_class", "监管类别"), ("approach", "监管方式"),
    ("inspections_due", "本期应检查次数"), ("rated_on", "评价日期"), ("model_version", "模型版本"),
)


@dataclass(frozen=True)
class Period:
    """A plan period: a year, a quarter or a month."""

    text: str
    start: dt.date
    end: dt.date  # inclusive
    share: float  # of a year

    @classmethod
    def parse(cls, text: str | None, today: dt.date) -> "Period":
        if text is None or not text.strip():
            quarter = (today.month - 1) // 3 + 1
            text = f"{today.year}-Q{quarter}"
        match = PERIOD.fullmatch(text.strip())
        if match is None:
            raise CreditInputError("period: a year (2026), a quarter (2026-Q4) or a month (2026-12)")
        year = int(match["year"])
        if year not in YEARS:
            raise CreditInputError(f"period: a year from {YEARS.start} to {YEARS.stop - 1}")
        if match["quarter"]:
            q = int(match["quarter"])
            start, end_month, share = dt.date(year, 3 * q - 2, 1), 3 * q, 0.25
        elif match["month"]:
            m = int(match["month"])
            start, end_month, share = dt.date(year, m, 1), m, 1 / 12
        else:
            start, end_month, share = dt.date(year, 1, 1), 12, 1.0
        end = (dt.date(year + 1, 1, 1) if end_month == 12 else dt.date(year, end_month + 1, 1)) - dt.timedelta(days=1)
        return cls(text.strip(), start, end, share)


@dataclass(frozen=True)
class PlanEntry:
    subject: str
    name: str
    industry: str
    level: str
    score: float
    supervision_class: str
    approach: str
    inspections_due: int
    rated_on: dt.date
    model_version: str


@dataclass(frozen=True)
class SupervisionPlan:
    department: str | None
    period: Period
    entries: tuple[PlanEntry, ...]  # class C first, then B, then A; lowest score first

    def count(self, supervision_class: str) -> int:
        return sum(1 for e in self.entries if e.supervision_class == supervision_class)


def build_plan(rules: CreditRules, ratings: Sequence[Rating], department: str | None, period: Period) -> SupervisionPlan:
    industries = rules.supervising.get(department) if department is not None else None
    entries = []
    for r in ratings:
        if industries is not None and r.industry not in industries:
            continue
        cls = rules.supervision[r.supervision_class] if r.supervision_class in rules.supervision else rules.supervision_class(r.level)
        entries.append(PlanEntry(
            r.subject, r.subject_name, r.industry, r.level, r.score, cls.code, cls.approach,
            math.ceil(cls.inspections_per_year * period.share - 1e-9), r.rated_on, r.model_version,
        ))
    entries.sort(key=lambda e: (-ord(e.supervision_class), e.score, e.subject))
    return SupervisionPlan(department, period, tuple(entries))


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A cell value that a spreadsheet never reads as a formula (a name starting with "=")."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _row(entry: PlanEntry) -> list[object]:
    return [_cell(getattr(entry, name)) if name != "rated_on" else entry.rated_on.isoformat() for name, _ in COLUMNS]


def plan_csv(plan: SupervisionPlan) -> str:
    """The plan as CSV (UTF-8 text; a header row in Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([label for _, label in COLUMNS])
    for entry in plan.entries:
        writer.writerow(_row(entry))
    return out.getvalue()


def plan_xlsx(plan: SupervisionPlan) -> bytes:
    """The plan as an XLSX workbook (one sheet, the same columns as the CSV)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"监管计划 {plan.period.text}"[:31]
    sheet.append([label for _, label in COLUMNS])
    for entry in plan.entries:
        sheet.append(_row(entry))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
