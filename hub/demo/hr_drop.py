"""The human resources bureau's file drop for the demo (新城区人力资源和社会保障局).

The bureau runs no database the hub may query: it exports spreadsheets into a shared folder.
`write_hr_drop` writes two exports there, as such an office would:

- `社保欠缴_<date>.csv` — employers' social insurance arrears, GB18030-encoded (as Excel on a
  Chinese Windows desktop saves CSV), amounts in yuan, dates as YYYY/MM/DD, status codes;
- `参保缴费_<date>.csv` — people's contributions, UTF-8 with a byte-order mark.

Each carries one row a careful office would still get wrong (a mistyped code, a number written
in words), so the connector's bad-row reporting has something to report. Deterministic per seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import sqlite3
from pathlib import Path

HR_DEPARTMENT = "新城区人力资源和社会保障局"
ARREARS_FILE = "社保欠缴_20261101.csv"
CONTRIBUTIONS_FILE = "参保缴费_20261101.csv"
INSURANCE_TYPES = ("养老保险", "医疗保险", "失业保险", "工伤保险")
STATUSES = ("参保缴费", "参保缴费", "参保缴费", "暂停缴费")


def _firms(market_db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{market_db}?mode=ro", uri=True) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT tyshxydm, qymc FROM qy_jbxx ORDER BY tyshxydm")]


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


def write_hr_drop(data_dir: Path, seed: int = 150102) -> dict[str, str]:
    """Write the bureau's two exports into `<data_dir>/drops/hr/`; return named sample subjects."""
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
    return {"social_insurance_arrears": in_arrears[-1][0], "insured_person": insured[-1]}
