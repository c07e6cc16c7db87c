"""One dropped export's rows → records by subject key, and the rows that cannot be loaded.

It owns the row rules of the file drop: a row is loaded only if its key cell holds a valid
identifier for the family's subjects (a USCC for legal persons, a resident identity number for
natural persons, told apart by shape when a family has both) and every mapped value converts
(`connectors.mapping`). Anything else is a `BadRow` (file, row number as Excel shows it,
reason); when the bad row's key is still readable, its subject is remembered in
`FileRecords.failed` so the connector can say that subject's answer is incomplete instead of
silently serving fewer records. A file that cannot be read as a whole is a `BadFile`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from xinlian.schema.catalogue import FAMILIES, SubjectKind, ValueType
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

from .contract import Record
from .filedrop_sheets import DropFormat, Sheet, UnreadableFile, read_sheet
from .mapping import ConversionError, FamilyMapping, FieldMapping, to_text

MAX_BAD_ROWS_KEPT = 1_000  # per file; further bad rows are counted, not listed
DISTINCT_VALUES_SHARED = 4_096  # per field and file: repeated cells share one converted value up to this many

__all__ = ["BadFile", "BadRow", "FileRecords", "UnreadableFile", "read_records", "subject_key"]


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that was not loaded: the file, its row number as Excel shows it, and why."""

    file: str
    row_number: int
    reason: str
    family: str = ""


@dataclass(frozen=True, slots=True)
class BadFile:
    """A file that was not loaded at all, and why."""

    file: str
    reason: str
    family: str = ""


@dataclass
class FileRecords:
    """What one export yielded for one family: records and their keys, and what was not loaded."""

    keys: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)  # the first MAX_BAD_ROWS_KEPT, for reporting
    bad_count: int = 0
    failed: dict[str, BadRow] = field(default_factory=dict)  # subject key → its first bad row

    def reject(self, row: BadRow, key: str | None) -> None:
        """Report a row; if we know whose it was, that subject's answer becomes "invalid data"."""
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_ROWS_KEPT:
            self.bad.append(row)
        if key:
            self.failed.setdefault(key, row)


def read_records(family: str, mapping: FamilyMapping, name: str, data: bytes, fmt: DropFormat) -> tuple[FileRecords, str | None]:
    """One export's records for `family` and the encoding it was read with.

    Bad rows are collected, never raised; `UnreadableFile` means the file as a whole is not
    loaded (not an export, no header, a needed column missing or doubled).
    """
    sheet = read_sheet(name, data, fmt)
    with contextlib.closing(sheet):  # frees an XLSX workbook however reading ends
        return _load_rows(family, mapping, name, sheet, fmt), sheet.encoding


def _load_rows(family: str, mapping: FamilyMapping, name: str, sheet: Sheet, fmt: DropFormat) -> FileRecords:
    subjects = FAMILIES[family].subjects
    columns = _columns(sheet, mapping)
    key_at = columns[mapping.key]
    wanted = [(c, frozenset(to_text(v) for v in values)) for c, values in mapping.where]
    converter = _SharedConversions(mapping, xlsx=sheet.kind == "xlsx")
    loaded = FileRecords()
    for counted, row in enumerate(sheet.rows, 1):
        if counted > fmt.max_rows:
            # a partly loaded export would answer with some subjects' records silently missing
            raise UnreadableFile(f"more than max_rows = {fmt.max_rows} data rows (row {row.number}): not loaded")
        if row.problem is not None:  # misshapen: whose row it is, only if its key cell is a valid key
            owner = _key_or_none(row.cells[key_at] if key_at < len(row.cells) else None, subjects)
            loaded.reject(BadRow(name, row.number, row.problem, family), owner)
            continue
        cells = {column: row.cells[i] for column, i in columns.items()}
        if not _selected(cells, wanted):
            continue  # filtered out by `where`: not a bad row
        key, record, reason = _row_record(mapping, subjects, cells, converter)
        if reason is None:
            loaded.keys.append(key)
            loaded.records.append(record)
        else:
            loaded.reject(BadRow(name, row.number, reason, family), key)
    return loaded


def _selected(cells: Mapping[str, Any], wanted: list[tuple[str, frozenset[str]]]) -> bool:
    """Whether a row passes the mapping's `where` filter (cells compared as text)."""
    return all(cells[c] is not None and to_text(cells[c]) in values for c, values in wanted)


def _row_record(mapping: FamilyMapping, subjects: tuple[SubjectKind, ...], cells: Mapping[str, Any], converter: _SharedConversions) -> tuple[str, Record, str | None]:
    """The row's key and record of every mapped field, or the reason it cannot be loaded."""
    try:
        key = subject_key(cells[mapping.key], subjects)
    except InvalidIdentifier as exc:
        return "", {}, f"key column {mapping.key!r} {exc}"
    record: Record = {}
    problems: list[str] = []
    for field_name, spec in mapping.fields.items():
        try:
            record[field_name] = converter.convert(spec, cells[spec.source] if spec.source is not None else None)
        except ConversionError as exc:
            problems.append(str(exc))
    return key, record, "; ".join(problems) or None


class _SharedConversions:
    """Converts cells field by field; equal cells of a field share one (immutable) value.

    Exports repeat the same dates, codes, authorities and handlers on thousands of rows:
    converting each distinct cell once saves time and most of the index's memory. A field
    with more distinct values than `DISTINCT_VALUES_SHARED` (decision numbers) stops sharing.
    """

    def __init__(self, mapping: FamilyMapping, *, xlsx: bool) -> None:
        self._caches: dict[str, dict[tuple[type, Any], Any] | None] = {name: {} for name in mapping.fields}
        self._xlsx = xlsx

    def convert(self, spec: FieldMapping, raw: Any) -> Any:
        if self._xlsx and spec.type is ValueType.DATE and spec.codes is None:
            raw = _excel_date(raw)
        cache = self._caches[spec.name]
        if cache is None:
            return spec.convert(raw)
        cell = (type(raw), raw)  # the type too: True, 1 and 1.0 are equal keys but convert differently
        if cell in cache:
            return cache[cell]
        value = spec.convert(raw)
        if len(cache) < DISTINCT_VALUES_SHARED:
            cache[cell] = value
        else:
            self._caches[spec.name] = None
        return value


# ---- keys and columns ---------------------------------------------------------------------------


def subject_key(raw: Any, subjects: tuple[SubjectKind, ...]) -> str:
    """The normalised subject key in a key cell; `InvalidIdentifier` completes "key column X ..."."""
    if isinstance(raw, float):
        raise InvalidIdentifier(f"holds a number ({raw:g}), not text: Excel keeps only 15 digits, format the column as text")
    text = str(raw).strip() if raw is not None else ""
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1].strip()  # ="..." is how some exports keep Excel from reformatting codes
    text = text.lstrip("'").upper()
    if not text:
        raise InvalidIdentifier("is empty")
    id_shaped = len(text) == 18 and text[:17].isdigit() and text[17] in "0123456789X"
    checks: list[Callable[[str], str]] = []
    if SubjectKind.NATURAL_PERSON in subjects:
        checks.append(validate_resident_id)
    if SubjectKind.LEGAL_PERSON in subjects:
        checks.insert(0 if not id_shaped else len(checks), validate_uscc)
    reasons: list[str] = []
    for check in checks:
        try:
            return check(text)
        except InvalidIdentifier as exc:
            reasons.append(str(exc))
    if validate_resident_id not in checks and id_shaped and _passes(validate_resident_id, text):
        raise InvalidIdentifier("has a resident identity number, but these records are for legal persons (USCC) only")
    if validate_uscc not in checks and _passes(validate_uscc, text):
        raise InvalidIdentifier("has a unified social credit code, but these records are for natural persons only")
    raise InvalidIdentifier(f"has {text!r}: {reasons[0]}")


def _passes(check: Callable[[str], str], text: str) -> bool:
    try:
        check(text)
    except InvalidIdentifier:
        return False
    return True


def _key_or_none(raw: Any, subjects: tuple[SubjectKind, ...]) -> str | None:
    try:
        return subject_key(raw, subjects)
    except InvalidIdentifier:
        return None


def _columns(sheet: Sheet, mapping: FamilyMapping) -> dict[str, int]:
    """Positions of the columns the mapping reads; `UnreadableFile` naming any missing one."""
    needed = [mapping.key, *(f.source for f in mapping.fields.values() if f.source), *(c for c, _ in mapping.where)]
    found = ", ".join(h for h in sheet.header if h) or "none"
    read_as = f" (read as {sheet.encoding})" if sheet.encoding else ""
    positions: dict[str, int] = {}
    for column in dict.fromkeys(needed):
        places = [i for i, h in enumerate(sheet.header) if h == column]
        what = "key column" if column == mapping.key else "column"
        if not places:
            raise UnreadableFile(f"the header has no {what} {column!r}{read_as}; columns found: {found}")
        if len(places) > 1:
            raise UnreadableFile(f"{what} {column!r} appears {len(places)} times in the header")
        positions[column] = places[0]
    return positions


def _excel_date(raw: Any) -> Any:
    """An XLSX number in a date field is an Excel serial date whose cell lost its date format."""
    from openpyxl.utils.datetime import from_excel

    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 < raw < 2958466:
        return from_excel(raw)
    return raw
