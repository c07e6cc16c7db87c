"""Opening the hub store (SQLite by default, PostgreSQL in production) and bringing it up to date.

`Store` owns the async engine and session factory, applies the Alembic migrations shipped in
`xinlian.hub.store.migrations` (programmatically: no alembic.ini at runtime), tunes SQLite
connections (WAL, foreign keys, full sync, busy timeout) and offers `exclusive()`: a write
transaction that only one writer, in any process, holds at a time.

An SQLite store is private to the hub's user, whatever the umask: its directory (the data
directory, by default) is made 0700 and the database file 0600 before SQLite first opens it;
SQLite gives the `-wal` and `-shm` files the database file's mode, and every new connection
checks all three again (`private_sqlite_files`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
import zlib
from pathlib import Path
from typing import Any, AsyncIterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
MIGRATION_LOCK = "xinlian.hub.store.migrations"
DIR_MODE = 0o700  # the store's directory: the hub's user only
FILE_MODE = 0o600  # hub.db, hub.db-wal, hub.db-shm
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

log = logging.getLogger("xinlian.store")


def _restrict(path: Path, mode: int) -> None:
    """chmod `path` to `mode` if it is ours and looser or different (never a shared sticky directory)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid != os.geteuid() or (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX):
        return  # not ours to change (e.g. /tmp): left as it is
    if stat.S_IMODE(info.st_mode) != mode:
        log.info("%s had mode %o; setting %o", path, stat.S_IMODE(info.st_mode), mode)
        os.chmod(path, mode)


def private_directory(directory: Path) -> None:
    """Create `directory` (and its parents) if needed and make it 0700, whatever the umask."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _restrict(directory, DIR_MODE)


def private_sqlite_files(database: Path) -> None:
    """Create the SQLite file 0600 if it does not exist yet, and make it and its side files 0600."""
    try:
        fd = os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is a valid, empty SQLite database
    for path in (database, *(database.with_name(database.name + side) for side in SQLITE_SIDE_FILES)):
        _restrict(path, FILE_MODE)


def advisory_key(name: str) -> int:
    """A stable PostgreSQL advisory-lock key (signed 64-bit) for a lock name."""
    return zlib.crc32(name.encode("utf-8")) | 0x5849_4E00_0000_0000  # "XIN" in the high bytes


def alembic_config() -> Config:
    """Alembic configuration built in code: the script location is the migrations package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    return config


def _tune_sqlite(dbapi_connection: Any, connection_record: Any, database: Path | None = None) -> None:
    tune_sqlite_connection(dbapi_connection, database)


def tune_sqlite_connection(dbapi_connection: Any, database: Path | None = None) -> None:
    """The store's pragmas on a DB-API SQLite connection (the engine's, or the audit writer's own):
    busy timeout, WAL, `synchronous = FULL`, foreign keys; then the files' modes again."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")  # a commit survives power loss, not just a crash
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
    if database is not None:
        private_sqlite_files(database)  # the -wal and -shm files exist now


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL once (it persists); two processes opening a new store may race for it."""
    for attempt in range(50):
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # "database is locked" (sqlite3 or its async adapter): not covered by busy_timeout
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.05)


def _upgrade_to_head(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


class Store:
    """A connection pool to the hub store and a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect: str = parsed.get_backend_name()
        database: Path | None = None  # an SQLite file (None: another dialect, or in memory)
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:") and not parsed.database.startswith("file:"):
            database = Path(parsed.database).expanduser()
            private_directory(database.parent)
            private_sqlite_files(database)
        self.sqlite_path: Path | None = database
        self.engine: AsyncEngine = create_async_engine(url)
        if self.dialect == "sqlite":
            event.listen(
                self.engine.sync_engine, "connect",
                lambda connection, record: _tune_sqlite(connection, record, database),
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str) -> "Store":
        """Open the store and apply pending migrations (safe to call from many processes at once)."""
        store = cls(url)
        try:
            await store.upgrade()
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @staticmethod
    def head_revision() -> str | None:
        """The newest migration shipped with this version of the hub."""
        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    async def upgrade(self) -> str | None:
        """Apply the Alembic migrations up to head, under the migration lock; return the revision."""
        config = alembic_config()
        async with self.exclusive(MIGRATION_LOCK) as conn:
            await conn.run_sync(_upgrade_to_head, config)
            return await conn.run_sync(_current_revision)

    async def current_revision(self) -> str | None:
        """The migration revision the store is at (None for an empty database)."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    @contextlib.asynccontextmanager
    async def exclusive(self, lock_name: str) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds `lock_name` until it commits or rolls back.

        PostgreSQL: `pg_advisory_xact_lock` on a key derived from the name, so hub processes
        sharing the database take turns. SQLite: `BEGIN IMMEDIATE`, which takes the database's
        single write lock up front (the name is implied: SQLite has one writer per file).
        The transaction commits when the block ends and rolls back if it raises.
        """
        async with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                # The sqlite3 driver begins transactions lazily before DML only; starting one
                # ourselves makes it IMMEDIATE, and the driver's COMMIT/ROLLBACK still apply.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(lock_name)})
            yield conn

    def session(self) -> AsyncSession:
        return self.sessions()

    async def close(self) -> None:
        await self.engine.dispose()
