"""Reading one dropped export (CSV or XLSX bytes) into a header and numbered rows of cells.

It owns the file formats and nothing else: which suffixes are read, how a CSV's encoding is
found (UTF-8 with or without BOM, else GB18030, or an explicit codec), how an XLSX sheet is
opened (openpyxl, read-only, cached formula values), and numbering rows as a person sees them
in Excel (1-based, blank rows counted). Problems of one row (bytes the encoding cannot decode,
the wrong number of columns) travel with the row; problems of the whole file raise
`UnreadableFile` with a reason a department can act on. Mapping rows to records is
`connectors.filedrop_index`'s business.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator

CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
SUFFIXES = CSV_SUFFIXES | XLSX_SUFFIXES
UNSUPPORTED = f"unsupported file type (the file drop reads {', '.join(sorted(SUFFIXES))})"
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
ENCODING_SAMPLE = 1 << 20  # bytes looked at to tell damaged UTF-8 from GB18030
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and other OLE2 documents)


class UnreadableFile(Exception):
    """The whole file cannot be read as an export; `reason` says why, for the department."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DropFormat:
    """How a connector reads its folder's files (one setting for every file it serves)."""

    encoding: str = "auto"  # "auto" or a codec name (CSV only)
    delimiter: str = ","  # CSV and .txt (a .tsv file is always tab-separated)
    sheet: str | None = None  # XLSX: a sheet name, or None for the first sheet
    header_row: int = 1  # 1-based row holding the column headers; rows above it are ignored
    max_file_bytes: int = 50 * 1024 * 1024
    max_rows: int = 500_000  # data rows per file; rows beyond are reported, not loaded


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One data row: its Excel row number, its cells and any problem.

    A row without a problem has exactly one cell per header column; a row with one has its
    cells as read (used only to tell whose row it was).
    """

    number: int
    cells: tuple[Any, ...]
    problem: str | None = None


@dataclass
class Sheet:
    """A file's header (trimmed column names) and an iterator over its data rows."""

    header: tuple[str, ...]
    rows: Generator[SheetRow, None, None]
    kind: str  # "csv" or "xlsx"
    encoding: str | None = None  # the encoding a CSV was read with
    release: Callable[[], None] | None = None  # frees what the reader holds (an XLSX workbook)

    def close(self) -> None:
        """Stop reading rows and free the reader, whether or not the rows were read."""
        self.rows.close()
        if self.release is not None:
            self.release()


def file_kind(name: str) -> str | None:
    """"csv", "xlsx" or None for a file name the file drop does not read."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in XLSX_SUFFIXES:
        return "xlsx"
    return None


def read_sheet(name: str, data: bytes, fmt: DropFormat) -> Sheet:
    """The header and rows of one export; `UnreadableFile` when the file as a whole is not one."""
    kind = file_kind(name)
    if kind is None:
        raise UnreadableFile(UNSUPPORTED)
    if not data.strip():
        raise UnreadableFile("empty file")
    if kind == "xlsx":
        return _xlsx_sheet(data, fmt)
    return _csv_sheet(data, fmt, "\t" if name.lower().endswith(".tsv") else fmt.delimiter)


# ---- CSV ------------------------------------------------------------------------------------


def _line_safe(codec: str) -> bool:
    """Whether byte 0x0A is always a line end in this codec (true for UTF-8, GB18030, GBK)."""
    return not codec.startswith(("utf_16", "utf_32"))


def _choose_encoding(data: bytes, setting: str) -> tuple[str, bytes]:
    """The codec to decode `data` with and the bytes without any BOM."""
    if data.startswith(UTF8_BOM):
        return "utf_8", data[len(UTF8_BOM):]
    if setting != "auto":
        return codecs.lookup(setting).name.replace("-", "_"), data
    if data.startswith(UTF16_BOMS):
        return "utf_16", data
    try:
        data.decode("utf_8")
        return "utf_8", data
    except UnicodeDecodeError:
        pass
    # Not clean UTF-8: a UTF-8 export with a few damaged bytes still has far more valid
    # multi-byte characters than damage; GB18030 text read as UTF-8 is almost all damage.
    text = data[:ENCODING_SAMPLE].decode("utf_8", errors="replace")
    damaged = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", "ignore")) - damaged  # non-ASCII characters that decoded
    return ("utf_8" if valid > damaged else "gb18030"), data


ENCODING_NAMES = {"utf_8": "UTF-8", "gb18030": "GB18030", "gbk": "GBK", "utf_16": "UTF-16"}


def _decode_lines(data: bytes, codec: str) -> tuple[list[str], set[int]]:
    """Decoded physical lines (with their ends) and the 1-based numbers of undecodable ones."""
    shown = ENCODING_NAMES.get(codec, codec)
    if not _line_safe(codec):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise UnreadableFile(f"not valid {shown} (line {line})") from None
        return list(io.StringIO(text, newline="")), set()  # only \r and \n end lines, as in csv
    lines: list[str] = []
    bad: set[int] = set()
    for number, raw in enumerate(data.splitlines(keepends=True), 1):
        try:
            lines.append(raw.decode(codec))
        except UnicodeDecodeError:
            bad.add(number)
            lines.append(raw.decode(codec, errors="replace"))
    return lines, bad


def _csv_sheet(data: bytes, fmt: DropFormat, delimiter: str) -> Sheet:
    if data.startswith(b"PK\x03\x04"):
        raise UnreadableFile("this is an XLSX workbook (a zip file), not a CSV: name it .xlsx")
    if b"\x00" in data and not data.startswith(UTF16_BOMS):
        raise UnreadableFile("binary data (NUL bytes), not a CSV export")
    codec, body = _choose_encoding(data, fmt.encoding)
    lines, bad_lines = _decode_lines(body, codec)
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    shown = ENCODING_NAMES.get(codec, codec)
    reader = csv.reader(lines, delimiter=delimiter)
    header = _csv_header(reader, fmt.header_row)
    return Sheet(header, _csv_rows(reader, header, bad_lines, fmt.header_row, shown), "csv", shown)


def _csv_header(reader: Any, header_row: int) -> tuple[str, ...]:
    try:
        for number, cells in enumerate(reader, 1):
            if number == header_row:
                return tuple(cell.strip() for cell in cells)
    except csv.Error as exc:
        raise UnreadableFile(f"not a readable CSV (line {reader.line_num}: {exc})") from None
    raise UnreadableFile(f"no header row {header_row} (the file has fewer rows)")


def _csv_rows(reader: Any, header: tuple[str, ...], bad_lines: set[int], header_row: int, encoding: str) -> Generator[SheetRow, None, None]:
    width = len(header)
    number = header_row
    first_line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(f"not a readable CSV (line {reader.line_num}: {exc})") from None
        number += 1
        lines = range(first_line, reader.line_num + 1)
        first_line = reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if bad_lines and any(line in bad_lines for line in lines):
            yield SheetRow(number, tuple(cells), f"contains bytes that are not valid {encoding}")
        elif len(cells) != width:
            yield SheetRow(number, tuple(cells), f"has {len(cells)} columns, the header has {width}")
        else:
            yield SheetRow(number, tuple(cells))


# ---- XLSX -----------------------------------------------------------------------------------


def _xlsx_sheet(data: bytes, fmt: DropFormat) -> Sheet:
    from openpyxl import load_workbook  # imported here: CSV-only deployments never load it
    from openpyxl.utils import get_column_letter
    from openpyxl.utils.exceptions import InvalidFileException

    if data.startswith(OLE2_MAGIC):
        raise UnreadableFile("an Excel 97-2003 workbook (.xls format): save it as .xlsx or .csv")
    if not data.startswith(b"PK"):
        raise UnreadableFile("not an XLSX workbook (not a zip archive; a CSV must be named .csv)")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UnreadableFile(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        if fmt.sheet is None:
            if not workbook.worksheets:
                raise UnreadableFile("the workbook has no sheets")
            worksheet = workbook.worksheets[0]
        elif fmt.sheet in workbook.sheetnames:
            worksheet = workbook[fmt.sheet]
        else:
            raise UnreadableFile(f"no sheet named {fmt.sheet!r} (sheets: {', '.join(workbook.sheetnames)})")
        if not hasattr(worksheet, "reset_dimensions"):
            raise UnreadableFile(f"sheet {worksheet.title!r} is a chart, not a worksheet")
        worksheet.reset_dimensions()  # exporters often write wrong dimensions; read what is there
        rows = worksheet.iter_rows(values_only=True)
        header: tuple[str, ...] | None = None
        for number, cells in enumerate(rows, 1):
            if number == fmt.header_row:
                header = tuple("" if c is None else str(c).strip() for c in cells)
                while header and not header[-1]:
                    header = header[:-1]
                break
        if header is None:
            raise UnreadableFile(f"no header row {fmt.header_row} (the sheet has fewer rows)")
    except UnreadableFile:
        workbook.close()
        raise
    except Exception as exc:  # a damaged part of the workbook, whatever openpyxl raised
        workbook.close()
        raise UnreadableFile(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    return Sheet(header, _xlsx_rows(workbook, rows, header, fmt.header_row, get_column_letter), "xlsx", release=workbook.close)


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _xlsx_rows(workbook: Any, rows: Iterator[tuple[Any, ...]], header: tuple[str, ...], header_row: int, letter: Any) -> Generator[SheetRow, None, None]:
    width = len(header)
    try:
        for number, cells in enumerate(rows, header_row + 1):
            if all(_blank(c) for c in cells):
                continue
            beyond = [i for i in range(width, len(cells)) if not _blank(cells[i])]
            if beyond:
                yield SheetRow(number, tuple(cells), f"has a value in column {letter(beyond[0] + 1)}, beyond the header's {width} columns")
                continue
            yield SheetRow(number, tuple(cells[:width]) + (None,) * (width - len(cells)))
    except Exception as exc:  # a damaged sheet part discovered mid-way
        raise UnreadableFile(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    finally:
        workbook.close()
