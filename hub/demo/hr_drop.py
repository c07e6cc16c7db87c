"""The human resources bureau's file drop for the demo (新城区人力资源和社会保障局).

The bureau runs no database the hub may query: it exports spreadsheets into a shared folder.
`write_hr_drop` writes three exports there, as such an office would:

- `社保欠缴_<date>.csv` — employers' social insurance arrears, GB18030-encoded (as Excel on a
  Chinese Windows desktop saves CSV), amounts in yuan, dates as YYYY/MM/DD, status codes;
- `参保缴费_<date>.csv` — people's contributions, UTF-8 with a byte-order mark;
- `欠薪案件_<date>.csv` — wage arrears cases (拖欠农民工工资), GB18030, amounts in yuan, dates as
  YYYY/MM/DD, status codes (0 欠薪, 1 已清偿) and whether the employer was put on the list of
  dishonest employers (是/否); mostly construction firms, never an earlier named sample.

The first two each carry one row a careful office would still get wrong (a mistyped code, a number
written in words), so the connector's bad-row reporting has something to report. Deterministic
per seed; the wage arrears are drawn with a random generator of their own, so the first two
files are as they were before it existed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import sqlite3
from pathlib import Path
from typing import Collection

HR_DEPARTMENT = "新城区人力资源和社会保障局"
ARREARS_FILE = "社保欠缴_20261101.csv"
CONTRIBUTIONS_FILE = "参保缴费_20261101.csv"
WAGE_ARREARS_FILE = "欠薪案件_20261101.csv"
REFERENCE_DATE = dt.date(2026, 11, 1)  # the date of the exports (the district's reference date)
HR_SAMPLES = ("social_insurance_arrears", "insured_person", "wage_arrears_outstanding", "wage_arrears_paid")
CONSTRUCTION = ("E47", "E50")  # 房屋建筑业, 建筑装饰: where migrant workers' wages go unpaid most
INSURANCE_TYPES = ("养老保险", "医疗保险", "失业保险", "工伤保险")
STATUSES = ("参保缴费", "参保缴费", "参保缴费", "暂停缴费")


def _firms(market_db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{market_db}?mode=ro", uri=True) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT tyshxydm, qymc FROM qy_jbxx ORDER BY tyshxydm")]


def _employers(market_db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{market_db}?mode=ro", uri=True) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute("SELECT tyshxydm, qymc, hydm FROM qy_jbxx ORDER BY tyshxydm")]


def _people(courts_db: Path, market_db: Path) -> list[str]:
    found: set[str] = set()
    with sqlite3.connect(f"file:{courts_db}?mode=ro", uri=True) as conn:
        found.update(r[0] for r in conn.execute("SELECT zjhm FROM sxbzxr"))
    with sqlite3.connect(f"file:{market_db}?mode=ro", uri=True) as conn:
        found.update(r[0] for r in conn.execute("SELECT dsr_zjhm FROM xzcf"))
    return sorted(code for code in found if not code.startswith("9"))


def _write(path: Path, header: list[str], rows: list[list[str]], encoding: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue().encode(encoding))
    tmp.replace(path)


def write_hr_drop(data_dir: Path, seed: int = 150102, exclude: Collection[str] = ()) -> dict[str, str]:
    """Write the bureau's three exports into `<data_dir>/drops/hr/`; return named sample subjects.

    `exclude`: subjects the wage arrears leave alone (the district's other named samples).
    """
    rng = random.Random(seed * 31 + 7)
    departments = Path(data_dir) / "departments"
    folder = Path(data_dir) / "drops" / "hr"
    folder.mkdir(parents=True, exist_ok=True)
    firms = _firms(departments / "market.db")
    people = _people(departments / "courts.db", departments / "market.db")

    in_arrears = rng.sample(firms, max(2, len(firms) // 25))
    arrears: list[list[str]] = []
    for uscc, name in in_arrears:
        start = dt.date(2025, rng.randrange(1, 13), 1)
        months = rng.randrange(1, 9)
        end_month = (start.month - 1 + months) % 12 + 1
        end_year = start.year + (start.month - 1 + months) // 12
        confirmed = dt.date(end_year, end_month, 1) + dt.timedelta(days=rng.randrange(10, 60))
        arrears.append([
            uscc, name, rng.choice(INSURANCE_TYPES), f"{start:%Y-%m}至{end_year}-{end_month:02d}",
            str(rng.randrange(5_000, 400_000)), f"{confirmed:%Y/%m/%d}", rng.choice("0001"),
        ])
    bad_uscc = in_arrears[0][0][:-1] + ("0" if in_arrears[0][0][-1] != "0" else "1")
    arrears.insert(len(arrears) // 2, [bad_uscc, "（录入错误）", "养老保险", "2026-01至2026-03", "12000", "2026/04/10", "0"])
    _write(folder / ARREARS_FILE,
           ["统一社会信用代码", "单位名称", "险种", "欠缴期间", "欠缴金额（元）", "认定日期", "状态"], arrears, "gb18030")

    insured = people[: max(3, len(people) * 3 // 4)]
    contributions: list[list[str]] = []
    for code in insured:
        employer = rng.choice(firms)[1]
        for kind in rng.sample(INSURANCE_TYPES[:2], rng.randrange(1, 3)):
            last = dt.date(2026, rng.randrange(1, 11), 1)
            contributions.append([
                code, employer, kind, str(rng.randrange(3_500, 20_000)), str(rng.randrange(6, 300)),
                f"{last:%Y-%m}", rng.choice(STATUSES),
            ])
    contributions.append([insured[0], "（录入错误）", "养老保险", "5000", "十二", "2026-10", "参保缴费"])
    _write(folder / CONTRIBUTIONS_FILE,
           ["公民身份号码", "参保单位", "险种", "缴费基数（元）", "累计缴费月数", "最近缴费年月", "参保状态"],
           contributions, "utf-8-sig")
    wages = write_wage_arrears(folder, departments / "market.db", seed, exclude)
    return {"social_insurance_arrears": in_arrears[-1][0], "insured_person": insured[-1]} | wages


def write_wage_arrears(folder: Path, market_db: Path, seed: int, exclude: Collection[str] = ()) -> dict[str, str]:
    """`欠薪案件_<date>.csv`: wage arrears cases; returns the samples `wage_arrears_outstanding`
    (arrears still unpaid, employer on the dishonest list) and `wage_arrears_paid` (paid, not listed)."""
    rng = random.Random(seed * 31 + 11)
    everyone = _employers(market_db)
    employers = [e for e in everyone if e[0] not in set(exclude)]
    if len(employers) < 2:  # a district too small to keep the samples apart
        employers = everyone
    builders = [e for e in employers if e[2] in CONSTRUCTION]
    pool = builders if len(builders) >= 2 else employers
    outstanding, paid = (pool[i] for i in rng.sample(range(len(pool)), 2))

    # (employer, confirmed, amount in yuan, workers, paid, on the dishonest list)
    cases: list[tuple[tuple[str, str, str], dt.date, int, int, bool, bool]] = []
    for employer in employers:
        if employer in (outstanding, paid) or rng.random() >= (0.10 if employer[2] in CONSTRUCTION else 0.01):
            continue
        for _ in range(rng.choices((1, 2), (85, 15))[0]):
            confirmed = REFERENCE_DATE - dt.timedelta(days=rng.randrange(15, 3 * 365))
            amount, workers = rng.randrange(20_000, 2_000_000, 100), rng.randrange(3, 120)
            settled = rng.random() < (0.3 if (REFERENCE_DATE - confirmed).days < 90 else 0.8)
            listed = amount >= 300_000 and (not settled or rng.random() < 0.5)
            cases.append((employer, confirmed, amount, workers, settled, listed))
    cases.append((outstanding, REFERENCE_DATE - dt.timedelta(days=60), 860_000, 46, False, True))
    cases.append((paid, REFERENCE_DATE - dt.timedelta(days=400), 125_000, 12, True, False))
    cases.sort(key=lambda c: (c[1], c[0][0]))
    numbers: dict[int, int] = {}
    rows: list[list[str]] = []
    for (uscc, name, _industry), confirmed, amount, workers, settled, listed in cases:
        numbers[confirmed.year] = numbers.get(confirmed.year, 0) + 1
        rows.append([f"新人社监〔{confirmed.year}〕{numbers[confirmed.year]}号", uscc, name, str(amount), str(workers),
                     f"{confirmed:%Y/%m/%d}", "1" if settled else "0", "是" if listed else "否"])
    _write(folder / WAGE_ARREARS_FILE,
           ["案件编号", "统一社会信用代码", "用人单位名称", "拖欠工资金额（元）", "涉及人数", "认定日期", "处理状态",
            "是否列入失信联合惩戒名单"], rows, "gb18030")
    return {"wage_arrears_outstanding": outstanding[0], "wage_arrears_paid": paid[0]}
