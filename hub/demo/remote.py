"""The demo's departments on real database servers: publish a department's SQLite copy, point the hub at it.

Departments do not run SQLite: the market regulation bureau runs PostgreSQL, the tax bureau
MariaDB. The demo district (`generator.build_demo_district`) writes each department's database
as a SQLite file in the department's own layout; this module puts one of them on a server and
rewires the hub to read it from there, so the same demo shows the SQL connector against
PostgreSQL (asyncpg) and MariaDB (asyncmy):

    await publish_department(data_dir, "market", "postgresql+asyncpg://admin@db:5432/djxt")
    point_connector(data_dir / "connectors.toml", "market", "postgresql+asyncpg://admin@db:5432/djxt")

`publish_department` copies the file's tables with the same table and column names: the SQLite
schema is reflected with `PRAGMA table_info` / `index_list` and each column's declared type
(and the values it holds) is mapped to a portable SQLAlchemy type — INTEGER → BIGINT,
REAL → DOUBLE, DECIMAL(p,s) → NUMERIC(p,s), TEXT → VARCHAR(255) when short or used by a key
or index (MariaDB cannot index TEXT without a prefix length), TEXT otherwise. Primary keys,
the department's own indexes and an index on every key column its connector looks subjects
up by are recreated; rows are bulk-inserted in chunks. It is idempotent: the department's
tables are dropped and recreated (other tables in the database are left alone). On MariaDB
the tables are utf8mb4 with binary collation (Chinese text, characters outside the BMP, and
key comparisons exactly as in SQLite); on PostgreSQL the database must be UTF8.

`point_connector` rewrites the `url = ...` line of one `[[connector]]` entry of
`connectors.toml` (and its `password_env`), leaving every other line and comment as it was,
and only replaces the file once `connectors.registry.load_connectors` accepts the result.
"""

from __future__ import annotations

import asyncio
import copy
import decimal
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

from sqlalchemy import (
    URL,
    BigInteger,
    Column,
    Double,
    Index,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects.mysql import LONGTEXT
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from xinlian.connectors.credentials import PASSWORD_PLACEHOLDER, with_password
from xinlian.connectors.mapping import ConnectorConfigError
from xinlian.connectors.registry import load_connectors

log = logging.getLogger("xinlian.hub.demo.remote")

SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb"})
SHORT_TEXT = 255  # characters: VARCHAR(255) for short text and for every key/index column
INDEXABLE_TEXT = 768  # characters: 3072 bytes, InnoDB's index key limit, at 4 bytes a character (utf8mb4)
LONG_TEXT = 16_383  # characters: beyond this MariaDB's TEXT (65,535 bytes) is too small
ROW_BYTES = 60_000  # MariaDB rows hold at most 65,535 bytes of VARCHAR: leave headroom
CHUNK_ROWS = 1_000  # rows per executemany
IDENTIFIER = 63  # PostgreSQL's limit for names (MariaDB's is 64)
MARIADB_TABLE_OPTIONS: dict[str, Any] = {  # for URLs naming either dialect: mysql+asyncmy:// or mariadb+asyncmy://
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in (("engine", "InnoDB"), ("charset", "utf8mb4"), ("collate", "utf8mb4_bin"))
}


class PublishError(RuntimeError):
    """Publishing a department failed; the message names the server without its password."""


# ---- the department's SQLite database, as it is ------------------------------------------------


@dataclass(frozen=True)
class SourceColumn:
    """One column as `PRAGMA table_info` reports it."""

    name: str
    declared: str  # declared type, e.g. "TEXT", "DECIMAL(18,2)", "" (none)
    not_null: bool
    primary_key: int  # position in the primary key (1-based), 0 when not part of it


@dataclass(frozen=True)
class SourceIndex:
    """One index the department declared (`CREATE INDEX` or a UNIQUE constraint)."""

    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class SourceTable:
    """A department table: its columns, indexes and every row (in column order)."""

    name: str
    columns: tuple[SourceColumn, ...]
    indexes: tuple[SourceIndex, ...]
    rows: list[tuple[Any, ...]]

    @property
    def primary_key(self) -> tuple[str, ...]:
        keyed = sorted((c for c in self.columns if c.primary_key), key=lambda c: c.primary_key)
        return tuple(c.name for c in keyed)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_department(path: Path) -> list[SourceTable]:
    """Every table of a department's SQLite file (opened read-only), in creation order."""
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY rowid")]
        tables: list[SourceTable] = []
        for name in names:
            columns = tuple(
                SourceColumn(row[1], (row[2] or "").strip(), bool(row[3]), int(row[5]))
                for row in conn.execute(f"PRAGMA table_info({_quoted(name)})")
            )
            indexes: list[SourceIndex] = []
            for _seq, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({_quoted(name)})"):
                if origin == "pk":
                    continue  # the primary key is recreated as such
                cols = tuple(row[2] for row in conn.execute(f"PRAGMA index_info({_quoted(index)})"))
                if not cols or any(c is None for c in cols):
                    continue  # an index on expressions: no portable equivalent
                if partial and unique:
                    continue  # a partial UNIQUE index made total could reject the department's rows
                indexes.append(SourceIndex(index, cols, bool(unique)))
            listed = ", ".join(_quoted(c.name) for c in columns)
            rows = conn.execute(f"SELECT {listed} FROM {_quoted(name)}").fetchall()
            tables.append(SourceTable(name, columns, tuple(indexes), rows))
        return tables
    finally:
        conn.close()


def connector_keys(connectors_path: Path, department: str) -> dict[str, set[str]]:
    """table → the key columns the department's connector looks subjects up by (if configured).

    Read from `connectors.toml` so the server copy has an index wherever the hub will query; a
    missing or unreadable file gives none (the department's own indexes are recreated anyway).
    """
    try:
        document = tomllib.loads(Path(connectors_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    keys: dict[str, set[str]] = {}
    for entry in document.get("connector", []) if isinstance(document.get("connector"), list) else []:
        if not isinstance(entry, dict) or entry.get("name") != department:
            continue
        families = entry.get("families")
        for family in families.values() if isinstance(families, dict) else []:
            if isinstance(family, dict) and isinstance(family.get("table"), str) and isinstance(family.get("key"), str):
                keys.setdefault(family["table"], set()).add(family["key"])
    return keys


# ---- portable types ------------------------------------------------------------------------------


def _affinity(declared: str) -> str:
    """SQLite's type affinity of a declared column type (https://sqlite.org/datatype3.html §3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _precision(declared: str) -> tuple[int, int] | None:
    """(precision, scale) of DECIMAL(p,s) / NUMERIC(p,s), else None."""
    found = re.fullmatch(r"\s*(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)\s*", declared, re.IGNORECASE)
    if not found:
        return None
    return int(found.group(1)), int(found.group(2) or 0)


def _text_type(values: Sequence[Any], indexed: bool, where: str) -> TypeEngine[Any]:
    longest = max((len(v) for v in values if isinstance(v, str)), default=0)
    if indexed:
        if longest > INDEXABLE_TEXT:
            raise PublishError(f"{where}: a key/index column holds {longest} characters (at most {INDEXABLE_TEXT})")
        return String(SHORT_TEXT if longest <= SHORT_TEXT else INDEXABLE_TEXT)
    if longest <= SHORT_TEXT:
        return String(SHORT_TEXT)
    return Text().with_variant(LONGTEXT(), "mysql", "mariadb") if longest > LONG_TEXT else Text()


def column_type(declared: str, values: Sequence[Any], indexed: bool, where: str) -> TypeEngine[Any]:
    """The portable type for a SQLite column: its declared type, checked against what it holds.

    SQLite lets any column hold any value; a server column cannot, so a value the chosen type
    cannot hold is a `PublishError` naming the table and column (never the value).
    """
    kinds = {type(v) for v in values if v is not None}
    affinity = _affinity(declared)
    precision = _precision(declared) if affinity == "NUMERIC" else None
    if precision is not None and kinds <= {int, float, str}:
        for value in values:
            if isinstance(value, str):
                try:
                    decimal.Decimal(value)
                except decimal.InvalidOperation:
                    raise PublishError(f"{where}: holds text in a {declared} column") from None
        return Numeric(*precision)
    if affinity == "INTEGER" and kinds <= {int}:
        return BigInteger()
    if affinity == "REAL" and kinds <= {int, float}:
        return Double()
    if affinity == "TEXT" and kinds <= {str}:
        return _text_type(values, indexed, where)
    if affinity in ("BLOB", "NUMERIC"):  # no declared type, or BOOLEAN, DATE, NUMERIC...: by the values held
        if not kinds or kinds <= {str}:
            return _text_type(values, indexed, where)
        if kinds <= {int}:
            return BigInteger()
        if kinds <= {int, float}:
            return Double()
        if kinds <= {bytes} and not indexed:
            return LargeBinary()
    shown = ", ".join(sorted(k.__name__ for k in kinds))
    raise PublishError(f"{where}: declared {declared or 'without a type'} but holds {shown} values")


def _value(value: Any, kind: TypeEngine[Any]) -> Any:
    if value is None:
        return None
    if isinstance(kind, Double):  # (a Float, and so a Numeric: test it first)
        return float(value)
    if isinstance(kind, Numeric):
        return decimal.Decimal(repr(value) if isinstance(value, float) else str(value))
    return value


def _index_name(table: str, columns: Iterable[str], name: str | None = None) -> str:
    name = name or f"ix_{table}_{'_'.join(columns)}"
    if len(name) <= IDENTIFIER:
        return name
    return f"{name[: IDENTIFIER - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class ServerTable:
    """A department table as it will be created on the server, with its rows converted."""

    table: Table
    rows: list[dict[str, Any]]


def server_tables(tables: Sequence[SourceTable], keys: dict[str, set[str]], metadata: MetaData) -> list[ServerTable]:
    """SQLAlchemy tables (same names, portable types, keys and indexes) for a department's tables."""
    out: list[ServerTable] = []
    for source in tables:
        primary = source.primary_key
        wanted_keys = [k for k in sorted(keys.get(source.name, ())) if k in {c.name for c in source.columns}]
        indexed = set(primary) | {c for i in source.indexes for c in i.columns} | set(wanted_keys)
        types: dict[str, TypeEngine[Any]] = {}
        for position, col in enumerate(source.columns):
            values = [row[position] for row in source.rows]
            types[col.name] = column_type(col.declared, values, col.name in indexed, f"{source.name}.{col.name}")
        _fit_row_size(source.name, types, indexed)
        columns = [
            Column(c.name, types[c.name], nullable=not (c.not_null or c.primary_key), autoincrement=False)
            for c in source.columns
        ]
        constraints: list[Any] = [PrimaryKeyConstraint(*primary)] if primary else []  # named by the server
        table = Table(source.name, metadata, *columns, *constraints, **MARIADB_TABLE_OPTIONS)
        leading = {i.columns[0] for i in source.indexes} | ({primary[0]} if primary else set())
        for index in source.indexes:
            Index(_index_name(source.name, index.columns, index.name), *(table.c[c] for c in index.columns),
                  unique=index.unique)
        for key in wanted_keys:
            if key not in leading:  # every column the connector looks subjects up by gets an index
                Index(_index_name(source.name, (key,)), table.c[key])
        names = [c.name for c in source.columns]
        rows = [{n: _value(v, types[n]) for n, v in zip(names, row)} for row in source.rows]
        out.append(ServerTable(table, rows))
    return out


def _fit_row_size(table: str, types: dict[str, TypeEngine[Any]], indexed: set[str]) -> None:
    """Turn unindexed VARCHARs into TEXT while the row would exceed MariaDB's VARCHAR budget."""
    def budget() -> int:
        return sum(t.length * 4 for t in types.values() if isinstance(t, String) and not isinstance(t, Text)
                   and t.length)

    for name in list(types):
        if budget() <= ROW_BYTES:
            return
        kind = types[name]
        if name not in indexed and isinstance(kind, String) and not isinstance(kind, Text):
            types[name] = Text()
    if budget() > ROW_BYTES:
        raise PublishError(f"{table}: its key/index columns are too wide for one MariaDB row")


# ---- publishing ----------------------------------------------------------------------------------


def server_url(url: str, password: str | None = None) -> URL:
    """The SQLAlchemy URL of the department's server: `{password}` filled, utf8mb4 on MariaDB."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the server URL is empty")
    url = url.strip()
    if PASSWORD_PLACEHOLDER in url:
        if password is None:
            raise ValueError(f"the server URL has {PASSWORD_PLACEHOLDER} but no password was given")
        url = with_password(url, password)
    elif password is not None:
        raise ValueError(f"a password was given but the server URL has no {PASSWORD_PLACEHOLDER}")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # the message could quote the URL (and a password): never repeat it
        raise ValueError("not a database URL (dialect+driver://user@host:port/database)") from None
    backend = parsed.get_backend_name()
    if backend not in SERVER_BACKENDS:
        raise ValueError(f"publish to PostgreSQL or MariaDB (postgresql+asyncpg://, mysql+asyncmy://), not {backend}")
    if not parsed.database:
        raise ValueError("the server URL names no database")
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


async def _check_encoding(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        encoding = (await conn.execute(text("SHOW server_encoding"))).scalar_one()
        if str(encoding).upper() not in ("UTF8", "UTF-8"):
            raise PublishError(f"the PostgreSQL database's encoding is {encoding}: department text needs UTF8 "
                               "(CREATE DATABASE ... ENCODING 'UTF8')")


async def _replace(conn: AsyncConnection, metadata: MetaData, tables: Sequence[ServerTable]) -> dict[str, int]:
    await _check_encoding(conn)
    await conn.run_sync(lambda sync: metadata.drop_all(sync, checkfirst=True))
    await conn.run_sync(lambda sync: metadata.create_all(sync, checkfirst=False))
    counts: dict[str, int] = {}
    for server in tables:
        for start in range(0, len(server.rows), CHUNK_ROWS):
            await conn.execute(server.table.insert(), server.rows[start : start + CHUNK_ROWS])
        counts[server.table.name] = (await conn.execute(select(func.count()).select_from(server.table))).scalar_one()
        if counts[server.table.name] != len(server.rows):
            raise PublishError(f"{server.table.name}: {len(server.rows)} rows sent, "
                               f"{counts[server.table.name]} on the server")
    return counts


def local_url(department: str) -> str:
    """The URL the demo's `connectors.toml` gives a department at first: its SQLite file (to point back)."""
    return f"sqlite+aiosqlite:///{{data_dir}}/departments/{department}.db"


def department_database(data_dir: Path, department: str) -> Path:
    """`<data_dir>/departments/<department>.db`, which must exist."""
    departments = Path(data_dir) / "departments"
    path = departments / f"{department}.db"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", department or "") or not path.is_file():
        known = sorted(p.stem for p in departments.glob("*.db")) if departments.is_dir() else []
        raise ValueError(f"no demo department {department!r} in {departments} "
                         f"(departments: {', '.join(known) or 'none: build the demo district first'})")
    return path


async def publish_department(
    data_dir: Path, department: str, url: str, *, password: str | None = None, connectors_path: Path | None = None,
) -> None:
    """Copy one demo department's SQLite database (e.g. "market") into the database at `url`.

    `url` is a SQLAlchemy async URL of an existing database on PostgreSQL
    (`postgresql+asyncpg://user@host:5432/db`) or MariaDB (`mysql+asyncmy://user@host:3306/db`),
    for an account that may create tables there. A `{password}` in it is filled with `password`
    (URL-quoted). The department's tables are dropped and recreated with the same table and
    column names, their primary keys and indexes, an index on each key column its connector in
    `connectors_path` (default `<data_dir>/connectors.toml`) uses, and every row; other tables
    are not touched. Raises `ValueError` for a bad department or URL, `PublishError` when the
    server refuses (the message shows the URL without its password).
    """
    path = department_database(data_dir, department)
    target = server_url(url, password)
    sources = await asyncio.to_thread(read_department, path)
    metadata = MetaData()
    keys = connector_keys(Path(connectors_path) if connectors_path else Path(data_dir) / "connectors.toml", department)
    tables = server_tables(sources, keys, metadata)
    try:
        engine: AsyncEngine = create_async_engine(target, hide_parameters=True)
    except (ArgumentError, SQLAlchemyError, ImportError) as exc:
        raise PublishError(f"cannot open {_shown(target)} ({type(exc).__name__}: {_first_line(exc, target)})") from None
    try:
        async with engine.begin() as conn:
            counts = await _replace(conn, metadata, tables)
    except PublishError:
        raise
    except Exception as exc:  # the driver's errors, whatever it raised
        raise PublishError(f"publishing {department} to {_shown(target)} failed "
                           f"({type(getattr(exc, 'orig', None) or exc).__name__}: {_first_line(exc, target)})") from exc
    finally:
        await engine.dispose()
    log.info("published %s to %s: %s", department, _shown(target),
             ", ".join(f"{table} {count} rows" for table, count in counts.items()))


def _first_line(exc: BaseException, url: URL) -> str:
    origin = getattr(exc, "orig", None) or exc
    line = (str(origin).strip().splitlines() or [""])[0]
    if url.password:
        line = line.replace(str(url.password), "***")
    return line[:200]


# ---- pointing the hub at the server ---------------------------------------------------------------

_ENTRY_HEADER = re.compile(r"^\s*\[\[\s*connector\s*\]\]\s*(#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_KEYS = ("password_env", "password_file")


def _key_line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(?P<indent>\s*)(?P<key>{key}|\"{key}\"|'{key}')(?P<eq>\s*=\s*)(?P<rest>.*)$")


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _split_value(rest: str, where: str) -> tuple[str, str]:
    """`value  # comment` → ("value  ", "# comment"): the first `#` after which the value parses."""
    cuts = [i for i, ch in enumerate(rest) if ch == "#"] + [len(rest)]
    for cut in cuts:
        try:
            tomllib.loads("v = " + rest[:cut])
        except tomllib.TOMLDecodeError:
            continue
        return rest[:cut], rest[cut:]
    raise ValueError(f"{where}: its value spans several lines; edit it by hand")


def _line_ending(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


def _entry_lines(lines: Sequence[str], index: int, where: str) -> tuple[int, int]:
    """[start, end) of the lines holding the `index`-th [[connector]]'s own keys (not its sub-tables)."""
    starts = [n for n, line in enumerate(lines) if _ENTRY_HEADER.match(line.rstrip("\r\n"))]
    if index >= len(starts):
        raise ValueError(f"{where}: cannot find its [[connector]] header; edit the file by hand")
    start = starts[index] + 1
    end = next((n for n in range(start, len(lines)) if _TABLE_HEADER.match(lines[n])), len(lines))
    return start, end


def _rewrite(text_: str, index: int, url: str, password_env: str | None, where: str) -> str:
    """`text_` with the entry's url (and secret lines) changed; every other line as it was."""
    lines = text_.splitlines(keepends=True)
    start, end = _entry_lines(lines, index, where)
    own = list(lines[start:end])

    def find(key: str) -> tuple[int, re.Match[str]] | None:
        for n, line in enumerate(own):
            found = _key_line(key).match(_line_ending(line)[0])
            if found:
                _split_value(found["rest"], f"{where}.{key}")  # single-line values only
                return n, found
        return None

    def replaced(key: str, value: str) -> str:
        at = find(key)
        assert at is not None
        n, found = at
        old, comment = _split_value(found["rest"], f"{where}.{key}")
        spacing = old[len(old.rstrip()):] if comment else ""
        return f"{found['indent']}{found['key']}{found['eq']}{_toml_string(value)}{spacing}{comment}{_line_ending(own[n])[1]}"

    url_at = find("url")
    if url_at is None:
        raise ValueError(f"{where}: has no url = ... line; edit it by hand")
    own[url_at[0]] = replaced("url", url)
    drop: list[int] = []
    if password_env is not None:
        env_at = find("password_env")
        if env_at is not None:
            own[env_at[0]] = replaced("password_env", password_env)
        else:
            n, found = url_at
            own.insert(n + 1, f"{found['indent']}password_env = {_toml_string(password_env)}"
                              f"{_line_ending(own[n])[1] or chr(10)}")
        file_at = find("password_file")
        if file_at is not None:
            drop.append(file_at[0])  # exactly one secret source
    elif PASSWORD_PLACEHOLDER not in url:  # no placeholder: a secret option would be refused
        drop.extend(at[0] for at in (find(key) for key in SECRET_KEYS) if at is not None)
    for n in sorted(drop, reverse=True):
        del own[n]
    return "".join([*lines[:start], *own, *lines[end:]])


def point_connector(
    connectors_path: Path,
    department: str,
    url: str,
    password_env: str | None = None,
    *,
    data_dir: Path | None = None,
) -> None:
    """Point the `[[connector]]` named `department` in `connectors.toml` at `url`.

    Only that entry's `url = ...` line changes (its comment kept), plus, with `password_env`,
    its `password_env = "..."` line (added after `url` if absent; a `password_file` is then
    removed); a URL without `{password}` and no `password_env` drops the entry's secret lines.
    The result must load with `load_connectors` (`data_dir`, default the file's folder, is the
    hub's data directory): else `ConnectorConfigError` and the file is left as it was. Loading
    reads the secret, so a `password_env` variable must be set when pointing.
    """
    path = Path(connectors_path)
    where = f"{path}: connector {department!r}"
    if not isinstance(url, str) or not url.strip() or "\n" in url:
        raise ValueError(f"{where}: the URL must be one non-empty line")
    url = url.strip()
    if password_env is not None:
        if not isinstance(password_env, str) or not _ENV_NAME.fullmatch(password_env):
            raise ValueError(f"{where}: password_env must be an environment variable's name")
        if PASSWORD_PLACEHOLDER not in url:
            raise ValueError(f"{where}: with password_env, put {PASSWORD_PLACEHOLDER} where the password goes "
                             "(e.g. mysql+asyncmy://reader:{password}@host:3306/db)")
    with open(path, encoding="utf-8", newline="") as source:  # line endings as they are (CRLF stays CRLF)
        original = source.read()
    document = tomllib.loads(original)
    entries = document.get("connector")
    if not isinstance(entries, list):
        raise ValueError(f"{path}: has no [[connector]] entries")
    index = next((n for n, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == department), None)
    if index is None:
        names = ", ".join(str(e.get("name")) for e in entries if isinstance(e, dict))
        raise ValueError(f"{path}: no [[connector]] named {department!r} (connectors: {names})")
    if entries[index].get("kind") != "sql":
        raise ValueError(f"{where}: is a {entries[index].get('kind')} connector, not sql: it has no database URL")

    rewritten = _rewrite(original, index, url, password_env, where)
    expected = copy.deepcopy(document)
    entry = expected["connector"][index]
    entry["url"] = url
    if password_env is not None:
        entry["password_env"] = password_env
        entry.pop("password_file", None)
    elif PASSWORD_PLACEHOLDER not in url:
        for key in SECRET_KEYS:
            entry.pop(key, None)
    if tomllib.loads(rewritten) != expected:  # the text edit did something else: never write it
        raise ValueError(f"{where}: the file's layout is unusual; change its url by hand")

    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(rewritten)
        shutil.copymode(path, tmp)
        try:
            load_connectors(tmp, Path(data_dir) if data_dir is not None else path.parent)
        except ConnectorConfigError as exc:
            raise ConnectorConfigError(str(exc).replace(str(tmp), str(path))) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("connector %s now reads %s", department, _shown_config_url(url))


def _shown_config_url(url: str) -> str:
    """A configured URL for a log line: a literal password (if any) hidden, `{password}` kept."""
    try:
        parsed = make_url(url.replace(PASSWORD_PLACEHOLDER, "PASSWORD"))
    except (ArgumentError, ValueError):
        return "(a database URL)"
    return parsed.render_as_string(hide_password=True)
