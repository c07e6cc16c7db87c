"""`FileDropConnector`: a folder where a department drops CSV or XLSX exports, served live.

Small offices (human resources, housing) hand over spreadsheets instead of running a database.
This connector keeps an in-memory read model of their drop folder (`connectors.filedrop_index`):
each family's `table` is a file-name glob in the folder, `key` the column header holding the
subject key, fields map to column headers with the usual conversions (`connectors.mapping`).
Nothing is copied into the hub store; the index is what the folder says, rebuilt when it changes.

Freshness: the folder is checked at most every `reload_interval` seconds, on the first call
after the interval (fetch, search or health). A check scans fingerprints and, if anything
changed, re-indexes in a worker thread while calls keep using the previous complete index; the
new one is swapped in whole. Only the first call waits (there is nothing to serve before it).

Rows that cannot be loaded are reported, never served and never fatal: `bad_rows` (file, Excel
row number, reason) and `bad_files` (a file not loaded at all). A subject one of whose rows was
not loaded gets `UpstreamInvalid` for that family instead of a silently shorter list (like the
SQL connector, a bad row fails only its own subject). An unreadable folder makes fetches raise
`UpstreamUnavailable`. Timeouts, retries and breakers are the hub's business.
"""

from __future__ import annotations

import asyncio
import codecs
import datetime as dt
import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .calls import distinct_request, log_call
from .contract import Connector, FetchCall, FetchResult, Health, UpstreamInvalid, UpstreamUnavailable
from .filedrop_index import DropIndex, DropPlan, FamilyRecords, refresh_index
from .filedrop_records import BadFile, BadRow
from .filedrop_sheets import SUFFIXES, DropFormat
from .mapping import ConnectorConfigError, FamilyMapping, SearchField
from .spec import ConnectorKind, ConnectorSpec

log = logging.getLogger("xinlian.connectors.filedrop")
DEFAULT_RELOAD_INTERVAL = 2.0
DEFAULT_MAX_FILE_MB = 50
DEFAULT_MAX_ROWS = 500_000


class FileDropConnector:
    """A department's drop folder serving some record families (see `connectors.contract`)."""

    kind = "filedrop"

    def __init__(
        self,
        name: str,
        department: str,
        folder: Path,
        mappings: Mapping[str, FamilyMapping],
        *,
        fmt: DropFormat = DropFormat(),
        reload_interval: float = DEFAULT_RELOAD_INTERVAL,
        batch_size: int = 200,
        timeout: float = 3.0,
        search: SearchField | None = None,
    ) -> None:
        self.name = name
        self.department = department
        self.folder = Path(folder)
        self.mappings = dict(mappings)
        self.families = frozenset(self.mappings)
        self.batch_size = batch_size
        self.timeout = timeout
        self.search_field = search
        self.reload_interval = reload_interval
        self.calls: list[FetchCall] = []
        self._plan = DropPlan(self.folder, self.mappings, fmt)
        self._index: DropIndex | None = None
        self._checked_at = -math.inf
        self._reload: asyncio.Task[DropIndex] | None = None

    def __repr__(self) -> str:
        return f"FileDropConnector(name={self.name!r}, department={self.department!r}, families={sorted(self.families)})"

    # ---- what the latest index could not load -------------------------------------------
    @property
    def index(self) -> DropIndex | None:
        """The complete index being served (None before the first call)."""
        return self._index

    @property
    def bad_rows(self) -> tuple[BadRow, ...]:
        """Rows of the latest index that were not loaded (at most 1,000 listed per file)."""
        return self._index.bad_rows if self._index else ()

    @property
    def bad_files(self) -> tuple[BadFile, ...]:
        """Files of the latest index that were not loaded at all."""
        return self._index.bad_files if self._index else ()

    # ---- the contract ---------------------------------------------------------------------
    def provides(self, family: str) -> frozenset[str]:
        mapping = self.mappings.get(family)
        return frozenset(mapping.fields) if mapping else frozenset()

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> FetchResult:
        mapping = self._mapping(family)
        unique, wanted = distinct_request(self.name, family, mapping.fields, keys, fields)
        log_call(self.calls, FetchCall(family, unique, wanted, mapping.columns_for(wanted)))
        index = await self.current()
        unreadable = [b for b in (index.bad_files if index else ()) if getattr(b, "family", None) in (family, None)]
        if unreadable:  # a whole export of this family is missing: every answer would be incomplete
            first = unreadable[0]
            raise UpstreamInvalid(self.department, f"{family}: {first.file} not loaded: {first.reason}")
        served = self._served(index).get(family)
        out: FetchResult = {}
        if served is None:
            return out
        for key in unique:
            subject = key.strip().upper()
            bad = served.failed.get(subject)
            if bad is not None:  # a row of this subject was not loaded: its answer would be incomplete
                out[key] = UpstreamInvalid(self.department, f"{family}: {bad.file} row {bad.row_number} not loaded: {bad.reason}")
                continue
            records = served.of(subject)
            if records:
                out[key] = [{name: record[name] for name in wanted} for record in records]
        failed = [v for v in out.values() if isinstance(v, UpstreamInvalid)]
        if failed and len(failed) == len(unique):
            raise failed[0]  # every subject asked failed: the call as a whole did
        return out

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        spec = self.search_field
        if spec is None or spec.family != family or limit <= 0 or not text:
            return []
        served = self._served(await self.current()).get(family)
        if served is None:
            return []
        needle = text.casefold()
        found: list[str] = []
        for key in sorted(served.positions):
            if any(needle in str(r.get(spec.field) or "").casefold() for r in served.of(key)):
                found.append(key)
                if len(found) >= limit:
                    break
        return found

    async def health(self) -> Health:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            index = await self.current()
        except Exception as exc:  # health never raises
            return Health(False, f"indexing failed ({type(exc).__name__})", now)
        if index.folder_problem:
            return Health(False, index.folder_problem, now)
        parts = [
            _count(len(index.loaded_files), "file") + " indexed",
            _count(index.bad_row_count, "bad row"),
            _count(len(index.bad_files), "bad file"),
        ]
        if index.pending:
            parts.append(_count(len(index.pending), "file") + " being written")
        return Health(True, ", ".join(parts), now)

    async def close(self) -> None:
        task, self._reload = self._reload, None
        if task is not None and not task.done():
            task.cancel()  # the worker thread finishes on its own; its result is dropped
        self._index = None
        self._checked_at = -math.inf

    # ---- the read model ---------------------------------------------------------------------
    async def current(self) -> DropIndex:
        """The index to serve now; starts a check when the interval has passed (waits only for the first)."""
        if self._index is None or time.monotonic() - self._checked_at >= self.reload_interval:
            task = self._start_check()
            if self._index is None:
                return await asyncio.shield(task)
        assert self._index is not None
        return self._index

    async def refresh(self) -> DropIndex:
        """Check the folder now and wait for the result (for tests, tools and start-up warm-up)."""
        running = self._reload
        if running is not None and not running.done() and running.get_loop() is asyncio.get_running_loop():
            await asyncio.shield(running)
        self._checked_at = -math.inf
        return await asyncio.shield(self._start_check())

    def _start_check(self) -> asyncio.Task[DropIndex]:
        running = self._reload
        if running is not None and not running.done() and running.get_loop() is asyncio.get_running_loop():
            return running
        self._checked_at = time.monotonic()
        self._reload = asyncio.get_running_loop().create_task(self._check(self._index))
        return self._reload

    async def _check(self, previous: DropIndex | None) -> DropIndex:
        try:
            index = await asyncio.to_thread(refresh_index, self._plan, previous)
        except Exception as exc:  # an indexing bug must not take the connector down
            log.exception("connector %s: indexing %s failed", self.name, self.folder)
            if previous is not None:
                return previous
            index = DropIndex({}, {}, {}, folder_problem=f"indexing failed ({type(exc).__name__})")
        if index is not previous:
            self._log_changes(previous, index)
        self._index = index
        return index

    def _log_changes(self, previous: DropIndex | None, index: DropIndex) -> None:
        """One line per new state: a folder problem once, then each newly read bad file."""
        if index.folder_problem:
            if previous is None or previous.folder_problem != index.folder_problem:
                log.warning("connector %s (%s): %s: %s", self.name, self.department, index.folder_problem, self.folder)
            return
        log.info(
            "connector %s: indexed %d files in %s (%d bad rows, %d bad files, %d being written)",
            self.name, len(index.loaded_files), self.folder, index.bad_row_count, len(index.bad_files), len(index.pending),
        )
        before = previous.files if previous is not None else {}
        for at, indexed in index.files.items():
            if indexed.problem is not None and before.get(at) is not indexed:
                log.warning("connector %s: %s not loaded: %s", self.name, indexed.file, indexed.problem.reason)

    def _served(self, index: DropIndex) -> Mapping[str, FamilyRecords]:
        if index.folder_problem:
            raise UpstreamUnavailable(self.department, index.folder_problem)
        return index.families

    def _mapping(self, family: str) -> FamilyMapping:
        try:
            return self.mappings[family]
        except KeyError:
            raise ValueError(f"connector {self.name} does not serve {family!r}") from None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---- configuration --------------------------------------------------------------------------


def _number(options: Mapping[str, Any], key: str, default: float, where: str, *, minimum: float, strict: bool, whole: bool = False) -> Any:
    value = options.get(key, default)
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum or (strict and value == minimum):
        bound = f"{'above' if strict else 'at least'} {minimum:g}"
        raise ConnectorConfigError(f"{where}.{key}: must be a {'whole number' if whole else 'number'} {bound}")
    return value


def drop_format(options: Mapping[str, Any], where: str) -> DropFormat:
    """The validated reading options of a `kind = "filedrop"` entry."""
    encoding = options.get("encoding", "auto")
    if not isinstance(encoding, str) or not encoding.strip():
        raise ConnectorConfigError(f"{where}.encoding: must be \"auto\" or an encoding name such as \"gb18030\"")
    encoding = encoding.strip().lower()
    if encoding != "auto":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConnectorConfigError(f"{where}.encoding: unknown encoding {encoding!r} (use \"auto\", \"utf-8\" or \"gb18030\")") from None
    delimiter = options.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"":
        raise ConnectorConfigError(f"{where}.delimiter: must be one character such as \",\", \";\" or \"\\t\"")
    sheet = options.get("sheet")
    if sheet is not None and (not isinstance(sheet, str) or not sheet.strip()):
        raise ConnectorConfigError(f"{where}.sheet: must be a sheet name")
    max_mb = _number(options, "max_file_mb", DEFAULT_MAX_FILE_MB, where, minimum=0, strict=True)
    return DropFormat(
        encoding=encoding,
        delimiter=delimiter,
        sheet=sheet.strip() if sheet else None,
        header_row=_number(options, "header_row", 1, where, minimum=1, strict=False, whole=True),
        max_file_bytes=max(1, int(max_mb * 1024 * 1024)),
        max_rows=_number(options, "max_rows", DEFAULT_MAX_ROWS, where, minimum=1, strict=False, whole=True),
    )


def drop_folder(raw: Any, data_dir: Path, where: str) -> Path:
    """The folder path: `{data_dir}` substituted; it must be absolute (it need not exist yet)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConnectorConfigError(f"{where}.folder: must be a folder path")
    folder = Path(raw.strip().replace("{data_dir}", str(data_dir)))
    if not folder.is_absolute():
        raise ConnectorConfigError(f"{where}.folder: must be an absolute path or start with {{data_dir}}")
    return folder


def check_file_globs(mappings: Mapping[str, FamilyMapping], where: str) -> None:
    """Each family's `table` is a file-name glob inside the folder; `schema` has no meaning here."""
    for family, mapping in mappings.items():
        at = f"{where}.families.{family}"
        if mapping.schema is not None:
            raise ConnectorConfigError(f"{at}: schema does not apply to a file drop")
        pattern = mapping.table
        if "/" in pattern or "\\" in pattern or pattern in (".", ".."):
            raise ConnectorConfigError(f"{at}.table: a file name pattern inside the folder (e.g. \"penalties_*.csv\"), not a path")
        suffix = "." + pattern.rsplit(".", 1)[-1].lower() if "." in pattern else ""
        if suffix and not any(ch in suffix for ch in "*?[") and suffix not in SUFFIXES:
            raise ConnectorConfigError(f"{at}.table: {pattern!r} names {suffix} files; the file drop reads {', '.join(sorted(SUFFIXES))}")


def _build_filedrop(spec: ConnectorSpec, data_dir: Path, where: str) -> Connector:
    options = spec.options
    check_file_globs(spec.families, where)
    return FileDropConnector(
        spec.name, spec.department, drop_folder(options["folder"], data_dir, where), spec.families,
        fmt=drop_format(options, where),
        reload_interval=float(_number(options, "reload_interval", DEFAULT_RELOAD_INTERVAL, where, minimum=0, strict=False)),
        batch_size=spec.batch_size, timeout=spec.timeout, search=spec.search,
    )


KIND = ConnectorKind(
    _build_filedrop,
    options=frozenset({"folder", "encoding", "delimiter", "sheet", "header_row", "reload_interval", "max_file_mb", "max_rows"}),
    required=frozenset({"folder"}),
)
