"""`SqlConnector`: a department database read through SQLAlchemy 2 (async), mapped declaratively.

It owns turning a hub request into one bounded, parameterised query per batch: only the key
column and the columns of the requested fields are selected (data minimisation), keys are
bound in `WHERE key IN (...)`, rows are converted by the family's `FamilyMapping`. Database
failures become `UpstreamUnavailable` with a message free of credentials and SQL; values that
cannot be converted become `UpstreamInvalid` naming the field. A value of the request the
driver or database cannot take (a lone surrogate, a NUL, a character outside the database's
character set) becomes `CallerInputError`: the caller's fault, never a breaker failure. Search
text is checked before it is sent (`caller_text`) and its LIKE wildcards are escaped (`%`, `_`
match themselves). SQLite files are opened read-only. Timeouts, retries and breakers are the
hub's business, not this module's.

An SQLite file is read through the synchronous driver in a few threads of the connector's own,
one hop per call (checkout, query, rows, release in the thread), instead of aiosqlite's hop per
driver operation and SQLAlchemy's async layer around each; other databases through the async
engine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from sqlalchemy import URL, Select, bindparam, create_engine, make_url, select, text
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.expression import BindParameter, ColumnElement, TableClause, column, table

from .calls import distinct_request, log_call
from .contract import (
    CallerInputError,
    Connector,
    FetchCall,
    FetchResult,
    Health,
    UpstreamInvalid,
    UpstreamUnavailable,
    caller_text,
)
from .credentials import PASSWORD_PLACEHOLDER, secret_option, with_password
from .mapping import ConnectorConfigError, ConversionError, FamilyMapping, SearchField
from .spec import ConnectorKind, ConnectorSpec

log = logging.getLogger("xinlian.connectors.sql")
LOCAL_THREADS = 4  # threads (and pooled connections) of a connector reading an SQLite file
SERVER_POOL_SIZE = 10  # pooled connections to a server database (more than a bulkhead's default 8 calls)

# What drivers and databases answer when a *value of the request* cannot be taken — the caller's
# fault, not the department's: PostgreSQL character_not_in_repertoire (e.g. NUL) and
# untranslatable_character (a character outside the server's encoding); MySQL / MariaDB illegal
# mix of collations (e.g. a 4-byte character against a utf8mb3 column), invalid character string,
# incorrect string value. Client-side, a lone surrogate fails to encode (UnicodeEncodeError) and
# psycopg refuses NUL with a ValueError ("... cannot contain NUL (0x00) ...").
_INPUT_SQLSTATES = frozenset({"22021", "22P05"})
_INPUT_MYSQL_ERRORS = frozenset({1267, 1300, 1366})


def caused_by_input(exc: BaseException) -> bool:
    """Whether a database error was caused by a value of the request rather than the department."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, UnicodeEncodeError):
            return True
        if isinstance(error, ValueError) and "NUL (0x00)" in str(error):
            return True
        if getattr(error, "sqlstate", None) in _INPUT_SQLSTATES or getattr(error, "pgcode", None) in _INPUT_SQLSTATES:
            return True
        orig = getattr(error, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        if orig is not None and orig.args and isinstance(orig.args[0], int) and orig.args[0] in _INPUT_MYSQL_ERRORS:
            return True
        todo.extend((orig, error.__cause__, error.__context__))
    return False


def resolve_url(url: str, data_dir: Path | None) -> URL:
    """The engine URL: `{data_dir}` substituted; SQLite files opened read-only (never created)."""
    if "{data_dir}" in url:
        if data_dir is None:
            raise ValueError("the URL uses {data_dir} but no data directory was given")
        url = url.replace("{data_dir}", str(data_dir))
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        parsed = parsed.set(database=f"file:{quote(database)}", query={**parsed.query, "mode": "ro", "uri": "true"})
    return parsed


class SqlConnector:
    """A department's SQL database serving some record families (see `connectors.contract`)."""

    kind = "sql"

    def __init__(
        self,
        name: str,
        department: str,
        url: str,
        mappings: Mapping[str, FamilyMapping],
        *,
        batch_size: int = 200,
        timeout: float = 3.0,
        search: SearchField | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.department = department
        self.mappings = dict(mappings)
        self.families = frozenset(self.mappings)
        self.batch_size = batch_size
        self.timeout = timeout
        self.search_field = search
        self.calls: list[FetchCall] = []
        self._url = resolve_url(url, data_dir)
        self._engine: AsyncEngine | None = None
        # an SQLite file: the synchronous driver in threads of our own (one hop per call)
        self._local = self._url.get_backend_name() == "sqlite"
        self._sync_engine: Engine | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._statements: dict[tuple[int, tuple[str, ...]], Select[Any]] = {}

    def __repr__(self) -> str:
        return f"SqlConnector(name={self.name!r}, department={self.department!r}, families={sorted(self.families)})"

    # ---- the contract ------------------------------------------------------------------
    def provides(self, family: str) -> frozenset[str]:
        mapping = self.mappings.get(family)
        return frozenset(mapping.fields) if mapping else frozenset()

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> FetchResult:
        mapping = self._mapping(family)
        unique, wanted = distinct_request(self.name, family, mapping.fields, keys, fields)
        columns = mapping.columns_for(wanted)
        extra = tuple(c for c in columns if c != mapping.key)
        log_call(self.calls, FetchCall(family, unique, wanted, columns))
        out: FetchResult = {}
        size = max(1, self.batch_size)
        for start in range(0, len(unique), size):
            chunk = unique[start : start + size]
            # Departments store a resident ID's check character as 'X' or 'x'; rows come back
            # under the key the hub asked for, whatever the department's spelling or collation.
            asked = {k.strip().upper(): k for k in chunk}
            variants = tuple(k[:-1] + "x" for k in chunk if k.endswith("X"))
            rows = await self._rows(self._fetch_statement(mapping, extra), {"keys": [*chunk, *variants]})
            for row in rows:
                stored = str(row[0]).strip()
                key = asked.get(stored.upper(), stored)
                if isinstance(out.get(key), UpstreamInvalid):
                    continue  # this subject already failed: one bad row fails only its subject
                values = {mapping.key: row[0], **dict(zip(extra, row[1:]))}
                try:
                    record = mapping.record(values, wanted)
                except ConversionError as exc:
                    out[key] = UpstreamInvalid(self.department, f"{family}.{exc}")
                    continue
                out.setdefault(key, []).append(record)  # type: ignore[union-attr]
        failed = [v for v in out.values() if isinstance(v, UpstreamInvalid)]
        if failed and len(failed) == len(out) == len(unique):
            raise failed[0]  # every subject asked failed: the call as a whole did
        return out

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        spec = self.search_field
        if spec is None or spec.family != family or limit <= 0 or not text:
            return []
        caller_text(self.department, text)  # NUL would end SQLite's LIKE pattern: "%<NUL>%" matches all
        mapping = self._mapping(family)
        source = mapping.fields[spec.field].source
        assert source is not None  # parse_search accepts column-backed fields only
        tbl = self._table(mapping, (source,))
        key = tbl.c[mapping.key]
        stmt = (
            select(key)
            .where(tbl.c[source].contains(text, autoescape=True), *self._filters(mapping, tbl))
            .distinct()
            .order_by(key)
            .limit(limit)
        )
        return [str(row[0]).strip() for row in await self._rows(stmt)]

    def enumerates(self, family: str) -> bool:
        """Every mapped family's table can be paged through by its key column."""
        return family in self.mappings

    async def subject_keys(self, family: str, after: str, limit: int) -> list[str]:
        """The keys of subjects with records of `family`, in key order after `after`: a page of the
        department's subjects (the registry's are the district's), for district-wide jobs."""
        if limit <= 0:
            return []
        mapping = self._mapping(family)
        tbl = self._table(mapping, ())
        key = tbl.c[mapping.key]
        stmt = select(key).where(key > after, *self._filters(mapping, tbl)).distinct().order_by(key).limit(limit)
        return [str(row[0]).strip() for row in await self._rows(stmt)]

    async def health(self) -> Health:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            await self._rows(text("SELECT 1"))
        except UpstreamUnavailable as exc:
            return Health(False, exc.message, now)
        return Health(True, "ok", now)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()
        self._close_local()

    def _close_local(self) -> None:
        sync_engine, self._sync_engine = self._sync_engine, None
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        if sync_engine is not None:
            sync_engine.dispose()

    # ---- statements --------------------------------------------------------------------
    def _mapping(self, family: str) -> FamilyMapping:
        try:
            return self.mappings[family]
        except KeyError:
            raise ValueError(f"connector {self.name} does not serve {family!r}") from None

    @staticmethod
    def _table(mapping: FamilyMapping, columns: Sequence[str]) -> TableClause:
        names = dict.fromkeys([mapping.key, *columns, *(c for c, _ in mapping.where)])
        return table(mapping.table, *(column(n) for n in names), schema=mapping.schema)

    @staticmethod
    def _filters(mapping: FamilyMapping, tbl: TableClause) -> list[ColumnElement[bool]]:
        return [
            tbl.c[name] == values[0] if len(values) == 1 else tbl.c[name].in_(values)
            for name, values in mapping.where
        ]

    def _fetch_statement(self, mapping: FamilyMapping, columns: Sequence[str]) -> Select[Any]:
        """The batch's query: built once per family and column set (keys are an expanding bound
        parameter), then only bound — building a `select` cost more than running it on SQLite."""
        cache_key = (id(mapping), tuple(columns))  # mappings live as long as the connector
        statement = self._statements.get(cache_key)
        if statement is None:
            tbl = self._table(mapping, columns)
            key = tbl.c[mapping.key]
            keys_param: BindParameter[Any] = bindparam("keys", expanding=True)
            statement = select(key, *(tbl.c[c] for c in columns)).where(key.in_(keys_param), *self._filters(mapping, tbl))
            if len(self._statements) < 256:
                self._statements[cache_key] = statement
        return statement

    # ---- execution ---------------------------------------------------------------------
    def _engine_for_use(self) -> AsyncEngine:
        if self._engine is None:
            options: dict[str, Any] = {}
            if self._url.get_backend_name() != "sqlite":
                # A server database: reads only, so no BEGIN/ROLLBACK around each (AUTOCOMMIT);
                # no ping before each use (a dead pooled connection fails the attempt, the
                # engine is disposed below and the link's retry reconnects); enough pooled
                # connections for the department's bulkhead, so none is opened per call. The
                # async layer's round trips through the event loop per call fell from 15 to 5
                # on PostgreSQL and 9 to 7 on MariaDB (bench/sql_paths.py, docs/benchmarks.md).
                options.update(
                    pool_recycle=1800, pool_size=SERVER_POOL_SIZE, max_overflow=SERVER_POOL_SIZE,
                    isolation_level="AUTOCOMMIT",
                )
            else:
                options["pool_pre_ping"] = True
            self._engine = create_async_engine(self._url, **options)
        return self._engine

    def _local_for_use(self) -> tuple[Engine, ThreadPoolExecutor]:
        if self._sync_engine is None or self._threads is None:
            self._sync_engine = create_engine(self._url.set(drivername="sqlite"), pool_size=LOCAL_THREADS)
            self._threads = ThreadPoolExecutor(max_workers=LOCAL_THREADS, thread_name_prefix=f"xinlian-sql-{self.name}")
        return self._sync_engine, self._threads

    @staticmethod
    def _rows_in_thread(engine: Engine, statement: Any, parameters: dict[str, Any] | None) -> list[Row[Any]]:
        with engine.connect() as conn:
            return list(conn.execute(statement, parameters).all())

    async def _rows(self, statement: Any, parameters: dict[str, Any] | None = None) -> list[Row[Any]]:
        try:
            if self._local:
                engine, threads = self._local_for_use()
                return await asyncio.get_running_loop().run_in_executor(
                    threads, self._rows_in_thread, engine, statement, parameters
                )
            async with self._engine_for_use().connect() as conn:
                result = await conn.execute(statement, parameters)
                return list(result.all())
        except Exception as exc:  # every database failure, whatever the driver raised
            message = self._describe(exc)
            if caused_by_input(exc):  # the request's values, not the database: pool and breaker untouched
                log.info("connector %s (%s): refused input: %s", self.name, self.department, message)
                raise CallerInputError(self.department, message) from None
            log.warning("connector %s (%s): %s", self.name, self.department, message)
            # Pooled connections may point at a database that has since been replaced or
            # restarted: drop them so the next call reconnects from scratch.
            if self._engine is not None:
                await self._engine.dispose()
            if self._sync_engine is not None:
                self._sync_engine.dispose()
            raise UpstreamUnavailable(self.department, message) from None

    def _describe(self, exc: BaseException) -> str:
        """What went wrong, without SQL, parameters, credentials or host secrets."""
        origin = getattr(exc, "orig", None) or exc
        detail = str(origin).strip().splitlines()[0] if str(origin).strip() else ""
        detail = re.sub(r"^<class '[\w.]+'>:\s*", "", detail)
        for secret in (self._url.password, self._url.username):
            if secret:
                detail = detail.replace(str(secret), "***")
        detail = re.sub(r"(?i)(password|pwd|secret)\s*[=:]\s*\S+", r"\1=***", detail)
        if len(detail) > 160:
            detail = detail[:157] + "..."
        kind = type(origin).__name__
        return f"department database failed ({kind}: {detail})" if detail else f"department database failed ({kind})"


def _build_sql(spec: ConnectorSpec, data_dir: Path, where: str) -> Connector:
    url = spec.options["url"]
    if not isinstance(url, str) or not url.strip():
        raise ConnectorConfigError(f"{where}.url: must be a database URL")
    url = url.strip()
    password = secret_option(spec.options, "password", where, base=data_dir)
    if password is None and PASSWORD_PLACEHOLDER in url:
        raise ConnectorConfigError(
            f"{where}.url: has {PASSWORD_PLACEHOLDER} but neither password_env nor password_file is set"
        )
    if password is not None:
        if PASSWORD_PLACEHOLDER not in url:
            raise ConnectorConfigError(
                f"{where}.url: put {PASSWORD_PLACEHOLDER} where the password goes "
                "(e.g. postgresql+asyncpg://reader:{password}@host:5432/db)"
            )
        url = with_password(url, password)
    try:
        make_url(url.replace("{data_dir}", str(data_dir)))
    except (ArgumentError, ValueError):  # the message could quote the URL: never repeat it
        raise ConnectorConfigError(f"{where}.url: not a database URL (dialect+driver://...)") from None
    return SqlConnector(
        spec.name, spec.department, url, spec.families,
        batch_size=spec.batch_size, timeout=spec.timeout, search=spec.search, data_dir=data_dir,
    )


KIND = ConnectorKind(
    _build_sql, options=frozenset({"url", "password_env", "password_file"}), required=frozenset({"url"})
)
