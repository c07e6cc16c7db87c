"""The file drop connector on real files: CSV in UTF-8 and GB18030, XLSX, bad rows, reloads, config."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from openpyxl import Workbook

from xinlian.connectors import filedrop, filedrop_index
from xinlian.connectors.contract import Connector, FetchCall, UpstreamInvalid, UpstreamUnavailable
from xinlian.connectors.filedrop import FileDropConnector
from xinlian.connectors.filedrop_index import Fingerprint, read_stable
from xinlian.connectors.filedrop_records import BadFile, BadRow, subject_key
from xinlian.connectors.filedrop_sheets import DropFormat
from xinlian.connectors.mapping import ConnectorConfigError, parse_families, parse_search
from xinlian.connectors.registry import load_connectors
from xinlian.schema.catalogue import SubjectKind
from xinlian.schema.identifiers import InvalidIdentifier, id_check_char, org_code_check_char, uscc_check_char


def uscc(body: str) -> str:
    """A valid code from 17 characters: the embedded organisation code gets its own check character."""
    org = body[9:17]  # the last eight characters name the subject: they become the organisation code
    body = body[:8] + org + org_code_check_char(org)
    return body + uscc_check_char(body)


def resident(body: str) -> str:
    return body + id_check_char(body)


A, B, C = uscc("91150102MA0000001"), uscc("91150102MA0000002"), uscc("91150102MA0000003")
P = resident("15010219910101007")  # a natural person
HOUSING = "新城区住房和城乡建设局"
HEADER = "统一社会信用代码,行政处罚决定书文号,罚款金额（元）,处罚决定日期,失信程度,办案人员\n"

PENALTIES: dict[str, Any] = {
    "table": "xzcf_*.csv",
    "key": "统一社会信用代码",
    "fields": {
        "decision_number": "行政处罚决定书文号",
        "fine_amount": {"column": "罚款金额（元）", "scale": 0.0001},
        "decision_date": {"column": "处罚决定日期", "date_format": "%Y年%m月%d日"},
        "severity": {"column": "失信程度", "map": {"1": "轻微", "2": "一般", "3": "严重"}},
        "case_handler": "办案人员",
        "data_source_unit": {"value": HOUSING},
    },
}
HONORS: dict[str, Any] = {
    "table": "*.xlsx",
    "key": "统一社会信用代码",
    "fields": {"honor_name": "荣誉名称", "awarding_authority": "认定机关", "award_date": "认定日期", "valid_to": "有效期至"},
}


def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir(exist_ok=True)
    return folder


def connector(folder: Path, families: dict[str, Any] | None = None, *, search: dict[str, str] | None = None,
              interval: float = 60.0, fmt: DropFormat = DropFormat(), batch_size: int = 200) -> FileDropConnector:
    mappings = parse_families(families or {"penalties": PENALTIES}, "housing.families")
    return FileDropConnector(
        "housing", HOUSING, folder, mappings, fmt=fmt, reload_interval=interval, batch_size=batch_size,
        search=parse_search(search, mappings, "housing.search") if search else None,
    )


def write_penalties(folder: Path, name: str, rows: list[str], *, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_text(HEADER + "".join(row + "\n" for row in rows), encoding=encoding)
    return path


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll an async check until it returns something truthy (reloads happen in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.02)


# ---- encodings ------------------------------------------------------------------------------


async def test_utf8_csv_with_chinese_headers_converts_values(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [
        f"{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,张伟",
        f"{A},新住建罚〔2025〕7号,\"1,250,000.00\",2025年06月30日,3,王强",
        f"{B},新住建罚〔2025〕2号,,2025年01月02日,1,",
    ])
    housing = connector(folder)
    assert isinstance(housing, Connector)

    result = await housing.fetch("penalties", [A, B], ["decision_number", "fine_amount", "decision_date", "severity", "data_source_unit"])

    assert result[A] == [
        {"decision_number": "新住建罚〔2025〕1号", "fine_amount": Decimal("0.5"), "decision_date": dt.date(2025, 3, 1),
         "severity": "一般", "data_source_unit": HOUSING},
        {"decision_number": "新住建罚〔2025〕7号", "fine_amount": Decimal("125"), "decision_date": dt.date(2025, 6, 30),
         "severity": "严重", "data_source_unit": HOUSING},
    ]
    assert result[B] == [{"decision_number": "新住建罚〔2025〕2号", "fine_amount": None, "decision_date": dt.date(2025, 1, 2),
                          "severity": "轻微", "data_source_unit": HOUSING}]
    assert housing.bad_rows == () and housing.bad_files == ()
    assert housing.index is not None and housing.index.files[("penalties", "xzcf_2025.csv")].encoding == "UTF-8"


async def test_utf8_with_bom_still_finds_the_key_column(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_bom.csv", [f"{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,张伟"], encoding="utf-8-sig")
    assert (folder / "xzcf_bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    result = await connector(folder).fetch("penalties", [A], ["decision_number"])

    assert result == {A: [{"decision_number": "新住建罚〔2025〕1号"}]}


@pytest.mark.parametrize("setting", ["auto", "gb18030", "gbk"])
async def test_gb18030_csv_is_read_with_chinese_headers_and_values(tmp_path: Path, setting: str) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_gbk.csv", [f"{A},新住建罚〔2025〕3号,20000,2025年04月01日,2,李娜、赵敏"], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        (folder / "xzcf_gbk.csv").read_bytes().decode("utf-8")
    housing = connector(folder, fmt=DropFormat(encoding=setting))

    result = await housing.fetch("penalties", [A], ["decision_number", "case_handler", "fine_amount"])

    assert result == {A: [{"decision_number": "新住建罚〔2025〕3号", "case_handler": "李娜、赵敏", "fine_amount": Decimal("2")}]}
    assert housing.index is not None
    assert housing.index.files[("penalties", "xzcf_gbk.csv")].encoding in {"GB18030", "GBK"}


async def test_excel_unicode_text_and_tsv_exports_are_tab_separated(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    row = f"{A}\t新住建罚〔2025〕5号\t100\t2025年05月01日\t1\t张伟\n"
    (folder / "xzcf_unicode.txt").write_bytes((HEADER.replace(",", "\t") + row).encode("utf-16"))  # Excel's "Unicode text"
    (folder / "xzcf_tabs.tsv").write_text(HEADER.replace(",", "\t") + row.replace("5号", "6号"), encoding="gb18030")
    families = {"penalties": {**PENALTIES, "table": "xzcf_*"}}
    housing = connector(folder, families, fmt=DropFormat(delimiter="\t"))
    comma = connector(folder, families)  # a .tsv is tab-separated whatever the delimiter says

    result = await housing.fetch("penalties", [A], ["decision_number"])
    assert result == {A: [{"decision_number": "新住建罚〔2025〕6号"}, {"decision_number": "新住建罚〔2025〕5号"}]}
    # read with commas, the .txt export is unreadable: its records are missing, so no answer is complete
    with pytest.raises(UpstreamInvalid, match="xzcf_unicode.txt not loaded"):
        await comma.fetch("penalties", [A], ["decision_number"])
    assert housing.bad_rows == () and housing.bad_files == ()


async def test_gb18030_read_as_utf8_reports_the_file_with_what_it_found(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_gbk.csv", [f"{A},新住建罚〔2025〕3号,20000,2025年04月01日,2,李娜"], encoding="gb18030")
    housing = connector(folder, fmt=DropFormat(encoding="utf-8"))

    with pytest.raises(UpstreamInvalid, match="xzcf_gbk.csv not loaded"):  # never a silent, empty answer
        await housing.fetch("penalties", [A], ["decision_number"])
    [bad] = housing.bad_files
    assert bad.file == "xzcf_gbk.csv"
    assert bad.reason.startswith("the header has no key column '统一社会信用代码' (read as UTF-8); columns found: ")


async def test_a_damaged_line_in_a_utf8_file_is_one_bad_row(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    rows = [f"{k},新住建罚〔2025〕{i}号,100,2025年03月0{i}日,1,张伟" for i, k in enumerate([A, A, B, A], 1)]
    data = (HEADER + "\n".join(rows) + "\n").encode("utf-8")
    data = data.replace("新住建罚〔2025〕3号".encode(), b"\xff\xfe" + "3号".encode())
    (folder / "xzcf_damaged.csv").write_bytes(data)
    housing = connector(folder)

    result = await housing.fetch("penalties", [A, B], ["decision_number"])

    assert [r["decision_number"] for r in result[A]] == ["新住建罚〔2025〕1号", "新住建罚〔2025〕2号", "新住建罚〔2025〕4号"]
    assert isinstance(result[B], UpstreamInvalid)  # the damaged row's key was still readable: B's answer is incomplete
    assert housing.bad_rows == (BadRow("xzcf_damaged.csv", 4, "contains bytes that are not valid UTF-8", "penalties"),)


# ---- XLSX -----------------------------------------------------------------------------------


def write_honors_workbook(path: Path, rows: list[tuple[Any, ...]], *, title: bool = True, sheet: str = "红名单") -> None:
    workbook = Workbook()
    sheet_ = workbook.active
    sheet_.title = "说明"
    sheet_.append(["这张表不是数据"])
    data = workbook.create_sheet(sheet)
    if title:
        data.append(["2025年守信激励名单"])  # a title row above the header
    data.append(["统一社会信用代码", "荣誉名称", "认定机关", "认定日期", "有效期至"])
    for row in rows:
        data.append(list(row))
    workbook.save(path)


async def test_xlsx_with_excel_dates_text_dates_and_numbers(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_honors_workbook(folder / "红名单.xlsx", [
        (A, "守合同重信用企业", "新城区市场监督管理局", dt.datetime(2025, 5, 20), "2027-05-19"),
        (B, 2025.0, "新城区住房和城乡建设局", "2025-01-08", 46760),  # a number, and a date cell that lost its format
        (int(P), "诚信个人", "新城区住房和城乡建设局", dt.datetime(2025, 2, 1), None),  # an ID typed as a number
        (C, "纳税信用A级", "税务局", "2025/13/01", None, "多余"),
    ])
    housing = connector(folder, {"honors": HONORS}, fmt=DropFormat(sheet="红名单", header_row=2))

    result = await housing.fetch("honors", [A, B, C], ["honor_name", "award_date", "valid_to"])

    assert result[A] == [{"honor_name": "守合同重信用企业", "award_date": dt.date(2025, 5, 20), "valid_to": dt.date(2027, 5, 19)}]
    assert result[B] == [{"honor_name": "2025", "award_date": dt.date(2025, 1, 8), "valid_to": dt.date(2028, 1, 8)}]
    assert isinstance(result[C], UpstreamInvalid) and "红名单.xlsx row 6 not loaded" in result[C].message
    assert housing.bad_rows == (
        BadRow("红名单.xlsx", 5, "key column '统一社会信用代码' holds a number (1.50102e+17), not text: Excel keeps only 15 digits, "
                                "format the column as text", "honors"),
        BadRow("红名单.xlsx", 6, "has a value in column F, beyond the header's 5 columns", "honors"),
    )


async def test_xlsx_sheet_missing_and_first_sheet_by_default(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_honors_workbook(folder / "honors.xlsx", [(A, "守合同重信用企业", "局", dt.datetime(2025, 5, 20), None)])
    missing = connector(folder, {"honors": HONORS}, fmt=DropFormat(sheet="不存在", header_row=2))
    first = connector(folder, {"honors": HONORS}, fmt=DropFormat(header_row=2))  # the first sheet is 说明

    with pytest.raises(UpstreamInvalid, match="honors.xlsx not loaded"):
        await missing.fetch("honors", [A], ["honor_name"])
    assert missing.bad_files == (BadFile("honors.xlsx", "no sheet named '不存在' (sheets: 说明, 红名单)", "honors"),)
    with pytest.raises(UpstreamInvalid, match="honors.xlsx not loaded"):
        await first.fetch("honors", [A], ["honor_name"])
    assert first.bad_files == (BadFile("honors.xlsx", "no header row 2 (the sheet has fewer rows)", "honors"),)


async def test_a_resident_id_in_a_legal_person_family_is_a_bad_row(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_honors_workbook(folder / "honors.xlsx", [(P, "诚信个人", "局", dt.datetime(2025, 2, 1), None)], title=False)
    housing = connector(folder, {"honors": HONORS}, fmt=DropFormat(sheet="红名单"))

    assert await housing.fetch("honors", [P], ["honor_name"]) == {}
    assert housing.bad_rows == (BadRow("honors.xlsx", 2, "key column '统一社会信用代码' has a resident identity number, "
                                                       "but these records are for legal persons (USCC) only", "honors"),)


@pytest.mark.parametrize(
    ("cell", "subjects", "outcome"),
    [
        (f" {A.lower()} ", (SubjectKind.LEGAL_PERSON,), A),
        (f'="{A}"', (SubjectKind.LEGAL_PERSON,), A),  # how some exports keep Excel from reformatting codes
        (f"'{P}", (SubjectKind.LEGAL_PERSON, SubjectKind.NATURAL_PERSON), P),
        (int(P), (SubjectKind.NATURAL_PERSON,), P),  # an exact integer is still the number
        (A, (SubjectKind.NATURAL_PERSON,), "has a unified social credit code, but these records are for natural persons only"),
        ("36042619910102009X", (SubjectKind.LEGAL_PERSON, SubjectKind.NATURAL_PERSON),
         "has '36042619910102009X': check character of resident identity number is wrong (expected 3)"),
        ("9111000060003IOZSV", (SubjectKind.LEGAL_PERSON, SubjectKind.NATURAL_PERSON),
         "has '9111000060003IOZSV': character 'I' is not allowed in a unified social credit code (I, O, S, V, Z are excluded)"),
        (None, (SubjectKind.LEGAL_PERSON,), "is empty"),
    ],
)
def test_key_cells_are_validated_for_the_familys_subjects(cell: Any, subjects: tuple[SubjectKind, ...], outcome: str) -> None:
    if outcome in (A, P):
        assert subject_key(cell, subjects) == outcome
    else:
        with pytest.raises(InvalidIdentifier) as caught:
            subject_key(cell, subjects)
        assert str(caught.value) == outcome


# ---- bad rows -------------------------------------------------------------------------------


async def test_bad_rows_are_reported_with_row_numbers_and_reasons_while_good_rows_load(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    bad_check = A[:17] + ("0" if A[17] != "0" else "1")
    write_penalties(folder, "xzcf_mixed.csv", [
        f"{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,张伟",           # row 2: good
        f"{bad_check},新住建罚〔2025〕2号,5000,2025年03月01日,2,张伟",   # row 3: check character
        ",新住建罚〔2025〕3号,5000,2025年03月01日,2,张伟",              # row 4: no key
        "",                                                              # row 5: blank, skipped
        f"{B},新住建罚〔2025〕4号,五千,2025-03-01,2,张伟",                # row 6: two bad values
        f"{B},新住建罚〔2025〕5号,5000,2025年03月01日,9,张伟",            # row 7: unknown code
        f"{B},新住建罚〔2025〕6号,5000,2025年03月01日,2",                 # row 8: a column short
        f"{P},新住建罚〔2025〕7号,100,2025年04月01日,1,王强",              # row 9: good, a natural person
        "9111,新住建罚〔2025〕8号,100,2025年04月01日,1,王强",             # row 10: too short
    ])
    housing = connector(folder)

    result = await housing.fetch("penalties", [A, B, P], ["decision_number"])

    assert result[A] == [{"decision_number": "新住建罚〔2025〕1号"}] and result[P] == [{"decision_number": "新住建罚〔2025〕7号"}]
    error = result[B]  # B's rows were not loaded, so B's penalties from this office would be incomplete: B fails alone
    assert isinstance(error, UpstreamInvalid)
    assert (error.code, error.department, error.reason) == ("UPSTREAM_INVALID", HOUSING, "invalid_data")
    assert error.message == "penalties: xzcf_mixed.csv row 6 not loaded: fine_amount (column 罚款金额（元）): '五千' is not a number; " \
                            "decision_date (column 处罚决定日期): '2025-03-01' is not date format %Y年%m月%d日"
    assert housing.bad_rows == (
        BadRow("xzcf_mixed.csv", 3, f"key column '统一社会信用代码' has '{bad_check}': check character of {bad_check} "
                                    f"is wrong (expected {A[17]})", "penalties"),
        BadRow("xzcf_mixed.csv", 4, "key column '统一社会信用代码' is empty", "penalties"),
        BadRow("xzcf_mixed.csv", 6, "fine_amount (column 罚款金额（元）): '五千' is not a number; decision_date (column "
                                    "处罚决定日期): '2025-03-01' is not date format %Y年%m月%d日", "penalties"),
        BadRow("xzcf_mixed.csv", 7, "severity (column 失信程度): unknown code '9' (known: 1, 2, 3)", "penalties"),
        BadRow("xzcf_mixed.csv", 8, "has 5 columns, the header has 6", "penalties"),
        BadRow("xzcf_mixed.csv", 10, "key column '统一社会信用代码' has '9111': a unified social credit code has 18 "
                                     "characters, got 4", "penalties"),
    )
    health = await housing.health()
    assert health.healthy and health.detail == "1 file indexed, 6 bad rows, 0 bad files"


async def test_a_subject_with_a_bad_row_fails_alone_and_the_call_fails_only_if_all_asked_did(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [
        f"{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,张伟",
        f"{B},新住建罚〔2025〕2号,5000,2025年03月01日,2,张伟",
    ])
    write_penalties(folder, "xzcf_2026.csv", [f"{B},新住建罚〔2026〕1号,5000,2026年13月01日,2,张伟"])  # no 13th month
    housing = connector(folder)

    assert isinstance((await housing.fetch("penalties", [A, B], []))[B], UpstreamInvalid)  # even for fields not asked
    with pytest.raises(UpstreamInvalid, match=r"penalties: xzcf_2026.csv row 2 not loaded: decision_date"):
        await housing.fetch("penalties", [B], ["decision_number"])

    write_penalties(folder, "xzcf_2026.csv", [f"{B},新住建罚〔2026〕1号,5000,2026年12月01日,2,张伟"])  # the office fixes it
    await housing.refresh()
    assert len((await housing.fetch("penalties", [B], ["decision_number"]))[B]) == 2
    assert housing.bad_rows == ()


async def test_a_quoted_line_break_is_one_row_as_excel_counts_it(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [
        f'{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,"张伟\n李娜"',  # row 2 spans two lines
        f"{B},新住建罚〔2025〕2号,5000,2025年03月01日,9,王强",            # row 3
    ])
    housing = connector(folder)

    assert (await housing.fetch("penalties", [A], ["case_handler"]))[A] == [{"case_handler": "张伟\n李娜"}]
    assert [(b.row_number, b.reason) for b in housing.bad_rows] == [(3, "severity (column 失信程度): unknown code '9' (known: 1, 2, 3)")]


async def test_malformed_files_are_reported_whole_and_the_family_is_not_answered_incomplete(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_good.csv", [f"{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,张伟"])
    (folder / "xzcf_garbage.csv").write_bytes(bytes(range(256)) * 8)
    (folder / "xzcf_empty.csv").write_bytes(b"")
    (folder / "xzcf_nokey.csv").write_text("企业名称,行政处罚决定书文号\n某公司,新住建罚〔2025〕9号\n", encoding="utf-8")
    (folder / "xzcf_twice.csv").write_text(HEADER.strip() + ",办案人员\n", encoding="utf-8")
    (folder / "xzcf_zip.csv").write_bytes(b"PK\x03\x04" + b"\x01" * 64)
    (folder / "honors.xlsx").write_text("this is not a workbook", encoding="utf-8")
    (folder / "old.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)
    (folder / "torn.xlsx").write_bytes(b"PK\x03\x04" + b"\x01" * 64)
    housing = connector(folder, {"penalties": PENALTIES, "honors": HONORS})

    # the good file alone is not the family: answering from it would hide the unreadable exports
    with pytest.raises(UpstreamInvalid, match="not loaded"):
        await housing.fetch("penalties", [A], ["decision_number"])
    assert {(b.file, b.reason) for b in housing.bad_files} == {
        ("honors.xlsx", "not an XLSX workbook (not a zip archive; a CSV must be named .csv)"),
        ("old.xlsx", "an Excel 97-2003 workbook (.xls format): save it as .xlsx or .csv"),
        ("torn.xlsx", "not a readable XLSX workbook (BadZipFile)"),
        ("xzcf_empty.csv", "empty file"),
        ("xzcf_garbage.csv", "binary data (NUL bytes), not a CSV export"),
        ("xzcf_nokey.csv", "the header has no key column '统一社会信用代码' (read as UTF-8); columns found: 企业名称, 行政处罚决定书文号"),
        ("xzcf_twice.csv", "column '办案人员' appears 2 times in the header"),
        ("xzcf_zip.csv", "this is an XLSX workbook (a zip file), not a CSV: name it .xlsx"),
    }
    health = await housing.health()
    assert health.healthy and health.detail == "1 file indexed, 0 bad rows, 8 bad files"


async def test_size_and_row_limits_bound_indexing(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    rows = [f"{A},新住建罚〔2025〕{i}号,100,2025年03月01日,1,张伟" for i in range(1, 6)]
    write_penalties(folder, "xzcf_rows.csv", rows)
    housing = connector(folder, fmt=DropFormat(max_rows=3))
    with pytest.raises(UpstreamInvalid, match="xzcf_rows.csv not loaded"):  # never a silently truncated answer
        await housing.fetch("penalties", [A], ["decision_number"])
    [bad] = housing.bad_files
    assert bad.file == "xzcf_rows.csv" and bad.reason == "more than max_rows = 3 data rows (row 5): not loaded"

    small = connector(folder, fmt=DropFormat(max_file_bytes=100))
    with pytest.raises(UpstreamInvalid, match="xzcf_rows.csv not loaded"):
        await small.fetch("penalties", [A], ["decision_number"])
    [bad] = small.bad_files
    assert bad.file == "xzcf_rows.csv" and bad.reason.startswith("the file is 0.0 MB, above max_file_mb = ")


async def test_where_filter_skips_rows_without_reporting_them(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    (folder / "xzcf_valid.csv").write_text(
        "统一社会信用代码,行政处罚决定书文号,是否有效\n"
        f"{A},新住建罚〔2025〕1号,1\n{A},新住建罚〔2024〕1号,0\nnot-a-code,撤销的,0\n", encoding="utf-8")
    families = {"penalties": {"table": "xzcf_*.csv", "key": "统一社会信用代码", "where": {"是否有效": 1},
                              "fields": {"decision_number": "行政处罚决定书文号"}}}
    housing = connector(folder, families)

    assert await housing.fetch("penalties", [A], ["decision_number"]) == {A: [{"decision_number": "新住建罚〔2025〕1号"}]}
    assert housing.bad_rows == ()


# ---- data minimisation, batching, search ------------------------------------------------------


async def test_only_the_requested_fields_are_returned_and_the_call_is_logged(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [f"{A},新住建罚〔2025〕1号,5000,2025年03月01日,2,张伟"])
    housing = connector(folder)

    result = await housing.fetch("penalties", [A, uscc("91150102MA0000009")], ["severity", "decision_number"])
    assert result == {A: [{"severity": "一般", "decision_number": "新住建罚〔2025〕1号"}]}
    assert "case_handler" not in result[A][0]
    assert housing.calls == [FetchCall("penalties", (A, uscc("91150102MA0000009")), ("severity", "decision_number"),
                                       ("失信程度", "行政处罚决定书文号"))]
    assert await housing.fetch("penalties", [A], []) == {A: [{}]}
    assert housing.provides("penalties") == frozenset(PENALTIES["fields"]) and housing.provides("honors") == frozenset()
    with pytest.raises(ValueError, match="penalties.address"):
        await housing.fetch("penalties", [A], ["address"])
    with pytest.raises(ValueError, match="honors"):
        await housing.fetch("honors", [A], ["honor_name"])
    result[A][0]["severity"] = "changed by a caller"
    assert (await housing.fetch("penalties", [A], ["severity"]))[A] == [{"severity": "一般"}]


async def test_each_batch_is_one_call_answered_from_the_index(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    keys = [uscc(f"91150102MA000{i:04d}") for i in range(5)]
    write_penalties(folder, "xzcf_2025.csv", [f"{k},新住建罚〔2025〕{i}号,100,2025年03月01日,1,张伟" for i, k in enumerate(keys)])
    housing = connector(folder, batch_size=2)
    assert housing.batch_size == 2

    # the hub splits N keys into ceil(N / batch_size) fetches; each is one call, whatever its size
    chunks = [keys[i : i + housing.batch_size] for i in range(0, len(keys), housing.batch_size)]
    merged: dict[str, Any] = {}
    for chunk in chunks:
        merged.update(await housing.fetch("penalties", chunk, ["decision_number"]))

    assert [len(call.keys) for call in housing.calls] == [2, 2, 1]
    assert [call.keys for call in housing.calls] == [tuple(c) for c in chunks]
    assert merged == await housing.fetch("penalties", keys + keys[:2], ["decision_number"])
    assert housing.calls[-1].keys == tuple(keys)  # duplicates folded, one call
    assert [merged[k][0]["decision_number"] for k in keys] == [f"新住建罚〔2025〕{i}号" for i in range(5)]


async def test_search_finds_keys_by_the_configured_field(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_honors_workbook(folder / "honors.xlsx", [
        (B, "守合同重信用企业", "局", dt.datetime(2025, 5, 20), None),
        (A, "守合同重信用企业", "局", dt.datetime(2024, 5, 20), None),
        (C, "纳税信用A级", "局", dt.datetime(2025, 5, 20), None),
    ], title=False)
    housing = connector(folder, {"honors": HONORS}, fmt=DropFormat(sheet="红名单"),
                        search={"family": "honors", "field": "honor_name"})

    assert await housing.search("honors", "重信用", 10) == sorted([A, B])
    assert await housing.search("honors", "重信用", 1) == [min(A, B)]
    assert await housing.search("honors", "a级", 10) == [C]
    assert await housing.search("honors", "无此荣誉", 10) == []
    assert await housing.search("penalties", "重信用", 10) == []


# ---- reloading --------------------------------------------------------------------------------


async def test_an_atomically_replaced_file_is_served_after_the_interval(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [f"{A},旧文号,5000,2025年03月01日,2,张伟"])
    housing = connector(folder, interval=0.2)
    assert (await housing.fetch("penalties", [A], ["decision_number"]))[A] == [{"decision_number": "旧文号"}]
    first = housing.index

    staging = tmp_path / "staging.csv"
    write_penalties(tmp_path, "staging.csv", [f"{A},新文号,5000,2025年03月01日,2,张伟", f"{B},另一条,1,2025年03月02日,1,王强"])
    os.replace(staging, folder / "xzcf_2025.csv")
    assert (await housing.fetch("penalties", [A], ["decision_number"]))[A] == [{"decision_number": "旧文号"}]  # within the interval
    assert housing.index is first

    await asyncio.sleep(0.25)

    async def new_data() -> dict[str, Any]:
        result = await housing.fetch("penalties", [A, B], ["decision_number"])
        return result if result[A] == [{"decision_number": "新文号"}] else {}

    assert await eventually(new_data) == {A: [{"decision_number": "新文号"}], B: [{"decision_number": "另一条"}]}


async def test_an_appended_file_and_a_new_file_are_picked_up_and_a_removed_one_dropped(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    path = write_penalties(folder, "xzcf_2025.csv", [f"{A},第一条,100,2025年03月01日,1,张伟"])
    housing = connector(folder, interval=0)
    await housing.fetch("penalties", [A], ["decision_number"])

    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{A},第二条,100,2025年03月02日,1,张伟\n")
    write_penalties(folder, "xzcf_2026.csv", [f"{A},第三条,100,2026年01月02日,1,张伟"])
    await housing.refresh()
    numbers = [r["decision_number"] for r in (await housing.fetch("penalties", [A], ["decision_number"]))[A]]
    assert numbers == ["第一条", "第二条", "第三条"]

    path.unlink()
    await housing.refresh()
    assert (await housing.fetch("penalties", [A], ["decision_number"]))[A] == [{"decision_number": "第三条"}]


async def test_unchanged_folders_and_files_are_not_read_again(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_a.csv", [f"{A},一,100,2025年03月01日,1,张伟"])
    write_penalties(folder, "xzcf_b.csv", [f"{B},二,100,2025年03月01日,1,张伟"])
    housing = connector(folder)
    first = await housing.refresh()
    assert await housing.refresh() is first

    write_penalties(folder, "xzcf_b.csv", [f"{B},三,100,2025年03月01日,1,张伟"])
    second = await housing.refresh()
    assert second is not first
    assert second.files[("penalties", "xzcf_a.csv")] is first.files[("penalties", "xzcf_a.csv")]
    assert second.files[("penalties", "xzcf_b.csv")] is not first.files[("penalties", "xzcf_b.csv")]


def test_a_file_that_changes_while_it_is_read_is_not_taken(tmp_path: Path) -> None:
    path = write_penalties(drop(tmp_path), "xzcf_2025.csv", [f"{A},一,100,2025年03月01日,1,张伟"])
    seen = Fingerprint.of(path.stat())
    assert read_stable(path, seen, 1 << 20) == path.read_bytes()
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{A},二,100,2025年03,")  # the writer is mid-row
    assert read_stable(path, seen, 1 << 20) is None


async def test_a_file_being_written_keeps_its_previous_version_until_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = drop(tmp_path)
    path = write_penalties(folder, "xzcf_2025.csv", [f"{A},一,100,2025年03月01日,1,张伟"])
    housing = connector(folder)
    await housing.refresh()
    real_read = filedrop_index.read_stable
    monkeypatch.setattr(filedrop_index, "read_stable", lambda *args: None)  # every read sees the size change

    write_penalties(folder, "xzcf_2025.csv", [f"{A},二,100,2025年03月01日,1,张伟"])
    write_penalties(folder, "xzcf_2026.csv", [f"{A},三,100,2026年03月01日,1,张伟"])
    index = await housing.refresh()
    assert index.pending == ("xzcf_2025.csv", "xzcf_2026.csv")
    assert (await housing.fetch("penalties", [A], ["decision_number"]))[A] == [{"decision_number": "一"}]
    assert (await housing.health()).detail == "1 file indexed, 0 bad rows, 0 bad files, 2 files being written"

    monkeypatch.setattr(filedrop_index, "read_stable", real_read)
    index = await housing.refresh()
    assert index.pending == () and path.exists()
    numbers = [r["decision_number"] for r in (await housing.fetch("penalties", [A], ["decision_number"]))[A]]
    assert numbers == ["二", "三"]


async def test_fetches_use_the_previous_index_while_re_indexing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [f"{A},旧,100,2025年03月01日,1,张伟"])
    housing = connector(folder, interval=0)
    await housing.refresh()
    release = threading.Event()
    real_refresh = filedrop.refresh_index

    def slow_refresh(*args: Any) -> Any:
        release.wait(5)
        return real_refresh(*args)

    monkeypatch.setattr(filedrop, "refresh_index", slow_refresh)
    write_penalties(folder, "xzcf_2025.csv", [f"{A},新,100,2025年03月01日,1,张伟"])

    started = time.monotonic()
    for _ in range(3):  # each call is past the interval; a re-index is running, nobody waits for it
        assert (await housing.fetch("penalties", [A], ["decision_number"]))[A] == [{"decision_number": "旧"}]
    assert time.monotonic() - started < 1.0
    release.set()

    async def new_data() -> bool:
        return (await housing.fetch("penalties", [A], ["decision_number"]))[A] == [{"decision_number": "新"}]

    assert await eventually(new_data)


# ---- the folder -------------------------------------------------------------------------------


async def test_an_empty_folder_serves_nothing_and_is_healthy(tmp_path: Path) -> None:
    housing = connector(drop(tmp_path))
    assert await housing.fetch("penalties", [A], ["decision_number"]) == {}
    health = await housing.health()
    assert health.healthy and health.detail == "0 files indexed, 0 bad rows, 0 bad files"


async def test_a_missing_folder_is_unavailable_until_it_appears(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "not-yet"
    (tmp_path / "README.txt").write_text("unrelated", encoding="utf-8")
    housing = connector(folder)

    health = await housing.health()
    assert not health.healthy and health.detail == "the drop folder cannot be read (FileNotFoundError)"
    with pytest.raises(UpstreamUnavailable) as caught:
        await housing.fetch("penalties", [A], ["decision_number"])
    assert caught.value.department == HOUSING and str(tmp_path) not in caught.value.message
    await housing.refresh()
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1  # logged once, not every check

    folder.mkdir()
    write_penalties(folder, "xzcf_2025.csv", [f"{A},一,100,2025年03月01日,1,张伟"])
    (folder / ".xzcf_hidden.csv").write_text("hidden", encoding="utf-8")
    (folder / "~$xzcf_lock.csv").write_text("lock", encoding="utf-8")
    (folder / "readme.csv").write_text("no family reads this", encoding="utf-8")
    await housing.refresh()
    assert await housing.fetch("penalties", [A], ["decision_number"]) == {A: [{"decision_number": "一"}]}
    assert housing.bad_files == () and (await housing.health()).healthy


async def test_close_drops_the_index_and_it_comes_back_on_demand(tmp_path: Path) -> None:
    folder = drop(tmp_path)
    write_penalties(folder, "xzcf_2025.csv", [f"{A},一,100,2025年03月01日,1,张伟"])
    housing = connector(folder)
    await housing.fetch("penalties", [A], ["decision_number"])
    await housing.close()
    assert housing.index is None and housing.bad_rows == ()
    assert await housing.fetch("penalties", [A], ["decision_number"]) == {A: [{"decision_number": "一"}]}


# ---- configuration ------------------------------------------------------------------------------

CONFIG = """
[[connector]]
name = "housing"
kind = "filedrop"
department = "新城区住房和城乡建设局"
folder = "{data_dir}/drops/housing"
encoding = "gb18030"
delimiter = ";"
header_row = 2
reload_interval = 5
max_file_mb = 10
max_rows = 1000
batch_size = 50
search = { family = "penalties", field = "case_handler" }

[connector.families.penalties]
table = "xzcf_*.csv"
key = "统一社会信用代码"

[connector.families.penalties.fields]
decision_number = "行政处罚决定书文号"
fine_amount = { column = "罚款金额（元）", scale = 0.0001 }
case_handler = "办案人员"
"""


async def test_registry_builds_a_file_drop_from_toml(tmp_path: Path) -> None:
    folder = tmp_path / "drops" / "housing"
    folder.mkdir(parents=True)
    (folder / "xzcf_2025.csv").write_bytes(
        f"新城区住建局行政处罚公示\n统一社会信用代码;行政处罚决定书文号;罚款金额（元）;办案人员\n{A};新住建罚〔2025〕1号;5000;张伟\n".encode("gb18030"))
    config = tmp_path / "connectors.toml"
    config.write_text(CONFIG, encoding="utf-8")

    [housing] = load_connectors(config, tmp_path)

    assert isinstance(housing, FileDropConnector)
    assert (housing.name, housing.department, housing.batch_size, housing.reload_interval) == ("housing", HOUSING, 50, 5.0)
    assert housing.folder == folder
    assert await housing.fetch("penalties", [A], ["fine_amount", "case_handler"]) == {A: [{"fine_amount": Decimal("0.5"), "case_handler": "张伟"}]}
    assert await housing.search("penalties", "张", 5) == [A]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('folder = "{data_dir}/drops/housing"\n', ""), "needs 'folder'"),
        (('folder = "{data_dir}/drops/housing"', 'folder = "drops/housing"'), "folder: must be an absolute path or start with {data_dir}"),
        (('encoding = "gb18030"', 'encoding = "klingon"'), "encoding: unknown encoding 'klingon'"),
        (('delimiter = ";"', 'delimiter = ";;"'), "delimiter: must be one character"),
        (("header_row = 2", "header_row = 0"), "header_row: must be a whole number at least 1"),
        (("reload_interval = 5", "reload_interval = -1"), "reload_interval: must be a number at least 0"),
        (("max_file_mb = 10", "max_file_mb = 0"), "max_file_mb: must be a number above 0"),
        (("max_rows = 1000", "max_rows = 1.5"), "max_rows: must be a whole number at least 1"),
        (("max_rows = 1000", 'sheet = ""'), "sheet: must be a sheet name"),
        (("max_rows = 1000", "url = 'x'"), "unknown option 'url' for a filedrop connector"),
        (('table = "xzcf_*.csv"', 'table = "../xzcf_*.csv"'), "families.penalties.table: a file name pattern inside the folder"),
        (('table = "xzcf_*.csv"', 'table = "xzcf.xls"'), "families.penalties.table: 'xzcf.xls' names .xls files"),
        (('table = "xzcf_*.csv"', 'table = "xzcf_*.csv"\nschema = "s"'), "families.penalties: schema does not apply to a file drop"),
        (('decision_number = "行政处罚决定书文号"', 'decision_nr = "行政处罚决定书文号"'), "unknown field 'decision_nr' of penalties"),
    ],
)
def test_registry_rejects_file_drop_mistakes(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(CONFIG.replace(*change), encoding="utf-8")
    with pytest.raises(ConnectorConfigError) as caught:
        load_connectors(config, tmp_path)
    assert message in str(caught.value)
    assert "connector[0] (housing)" in str(caught.value)
