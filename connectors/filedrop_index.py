"""The file drop's read model: the folder's exports indexed by subject key, rebuilt on change.

It owns turning a folder of exports into an immutable `DropIndex` (family → subject key →
records in catalogue fields and types, plus what could not be loaded: `BadRow`s and `BadFile`s
from `connectors.filedrop_records`), and deciding which files to (re-)read.

Everything here is synchronous and runs in a worker thread (`refresh_index`); the connector
swaps the finished index in, so readers never see a half-built one. Files whose fingerprint
(size, mtime, inode) is unchanged are not re-read; a file that changes while it is read is
"being written": its previous version (if any) is kept and it is retried on the next check.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .contract import Record
from .filedrop_records import BadFile, BadRow, FileRecords, read_records
from .filedrop_sheets import UNSUPPORTED, DropFormat, UnreadableFile, file_kind
from .mapping import FamilyMapping

log = logging.getLogger("xinlian.connectors.filedrop")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a file looked like when stat-ed: a change in any part means "re-read it"."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class IndexedFile:
    """One file read for one family: what it yielded, or why it was not loaded at all."""

    family: str
    file: str
    fingerprint: Fingerprint
    content: FileRecords = field(default_factory=FileRecords)
    problem: BadFile | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class FamilyRecords:
    """One family's loaded records, file by file, and where each subject's records are.

    Positions are tuples of ints, which the garbage collector stops tracking: a large index
    costs the collector (and so the event loop) a handful of containers, not one per subject.
    """

    records: tuple[Record, ...]
    positions: Mapping[str, tuple[int, ...]]  # subject key → indexes into `records`
    failed: Mapping[str, BadRow] = field(default_factory=dict)  # subjects with a row not loaded

    def of(self, key: str) -> list[Record]:
        return [self.records[i] for i in self.positions.get(key, ())]


@dataclass(frozen=True)
class DropIndex:
    """A complete, immutable picture of the folder at one moment."""

    files: Mapping[tuple[str, str], IndexedFile]  # (family, file name) → its index
    families: Mapping[str, FamilyRecords]
    seen: Mapping[str, Fingerprint]  # every matching file found by the scan
    pending: tuple[str, ...] = ()  # files being written, retried on the next check
    folder_problem: str | None = None  # the folder itself cannot be read
    built_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def bad_rows(self) -> tuple[BadRow, ...]:
        return tuple(row for f in self._ordered() for row in f.content.bad)

    @property
    def bad_row_count(self) -> int:
        return sum(f.content.bad_count for f in self.files.values())

    @property
    def bad_files(self) -> tuple[BadFile, ...]:
        return tuple(f.problem for f in self._ordered() if f.problem is not None)

    @property
    def loaded_files(self) -> tuple[str, ...]:
        return tuple(sorted({f.file for f in self.files.values() if f.problem is None}))

    def _ordered(self) -> list[IndexedFile]:
        return [self.files[k] for k in sorted(self.files, key=lambda k: (k[1], k[0]))]


@dataclass(frozen=True)
class DropPlan:
    """What to index: the folder, the families' mappings (with file globs) and the format."""

    folder: Path
    mappings: Mapping[str, FamilyMapping]
    fmt: DropFormat

    def families_of(self, name: str) -> list[str]:
        """The families whose `table` glob matches a file name (case-insensitive)."""
        lowered = name.lower()
        return [f for f, m in self.mappings.items() if fnmatch.fnmatchcase(lowered, m.table.lower())]


# ---- scanning and reading -------------------------------------------------------------------


def scan_folder(plan: DropPlan) -> dict[str, Fingerprint]:
    """Fingerprints of the regular files that some family's glob matches (`OSError` if unreadable)."""
    seen: dict[str, Fingerprint] = {}
    with os.scandir(plan.folder) as entries:
        for entry in entries:
            if entry.name.startswith((".", "~$")) or not plan.families_of(entry.name):
                continue  # hidden files, editors' lock files, files no family reads
            try:
                if entry.is_file():
                    seen[entry.name] = Fingerprint.of(entry.stat())
            except OSError:
                continue  # vanished between listing and stat
    return seen


def read_stable(path: Path, expected: Fingerprint, max_bytes: int) -> bytes | None:
    """The file's bytes if it still matches `expected` before and after reading, else None."""
    with open(path, "rb") as handle:
        if Fingerprint.of(os.fstat(handle.fileno())) != expected:
            return None
        data = handle.read(max_bytes + 1)
    try:
        after = Fingerprint.of(os.stat(path))
    except OSError:
        return None
    return data if after == expected and len(data) == expected.size else None


def refresh_index(plan: DropPlan, previous: DropIndex | None) -> DropIndex:
    """A new index if the folder changed since `previous` (else `previous` itself)."""
    try:
        seen = scan_folder(plan)
    except OSError as exc:
        return DropIndex({}, {}, {}, folder_problem=f"the drop folder cannot be read ({type(exc).__name__})")
    if previous is not None and previous.folder_problem is None and not previous.pending and previous.seen == seen:
        return previous
    old = previous.files if previous is not None else {}
    files: dict[tuple[str, str], IndexedFile] = {}
    pending: list[str] = []
    for name in sorted(seen):
        fingerprint = seen[name]
        families = plan.families_of(name)
        if all(old.get((f, name)) and old[(f, name)].fingerprint == fingerprint for f in families):
            files.update({(f, name): old[(f, name)] for f in families})
            continue
        data: bytes | None = b""
        problem: str | None = None
        if fingerprint.size > plan.fmt.max_file_bytes:
            problem = f"the file is {fingerprint.size / 1048576:.1f} MB, above max_file_mb = {plan.fmt.max_file_bytes / 1048576:g}"
        elif file_kind(name) is None:
            problem = UNSUPPORTED
        else:
            try:
                data = read_stable(plan.folder / name, fingerprint, plan.fmt.max_file_bytes)
            except FileNotFoundError:
                data = None  # replaced or removed since the scan: the next check sees what is there
            except OSError as exc:
                problem = f"the file cannot be read ({type(exc).__name__})"
        if data is None:  # changed while being read: keep what was served, retry next time
            pending.append(name)
            files.update({(f, name): old[(f, name)] for f in families if (f, name) in old})
            continue
        for family in families:
            if problem is None:
                try:
                    files[(family, name)] = index_file(family, plan.mappings[family], name, data, plan.fmt, fingerprint)
                    continue
                except Exception as exc:  # a file that trips a reader bug must not stop the others
                    log.exception("indexing %s for %s failed", name, family)
                    problem = f"the file could not be indexed ({type(exc).__name__})"
            files[(family, name)] = IndexedFile(family, name, fingerprint, problem=BadFile(name, problem, family))
    return DropIndex(files, _by_family(files), seen, tuple(pending))


def _by_family(files: Mapping[tuple[str, str], IndexedFile]) -> dict[str, FamilyRecords]:
    rows: dict[str, list[Record]] = {}
    positions: dict[str, dict[str, list[int]]] = {}
    failed: dict[str, dict[str, BadRow]] = {}
    for family, name in sorted(files, key=lambda k: (k[1], k[0])):
        indexed = files[(family, name)]
        family_rows = rows.setdefault(family, [])
        family_positions = positions.setdefault(family, {})
        for key, record in zip(indexed.content.keys, indexed.content.records):
            family_positions.setdefault(key, []).append(len(family_rows))
            family_rows.append(record)
        family_failed = failed.setdefault(family, {})
        for key, bad in indexed.content.failed.items():
            family_failed.setdefault(key, bad)
    return {
        family: FamilyRecords(
            tuple(rows[family]), {key: tuple(at) for key, at in positions[family].items()}, failed[family]
        )
        for family in rows
    }


def index_file(family: str, mapping: FamilyMapping, name: str, data: bytes, fmt: DropFormat, fingerprint: Fingerprint) -> IndexedFile:
    """One file's records by key for `family`, with its bad rows (never raises for bad data)."""
    try:
        content, encoding = read_records(family, mapping, name, data, fmt)
    except UnreadableFile as exc:
        return IndexedFile(family, name, fingerprint, problem=BadFile(name, exc.reason, family))
    return IndexedFile(family, name, fingerprint, content, encoding=encoding)
