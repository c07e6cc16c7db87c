"""Shared fixtures: real PostgreSQL / MariaDB databases made per test and dropped afterwards,
and the machine's Redis with a key prefix per test whose keys are deleted afterwards.

A test that needs a service skips with a clear reason when the service is absent, unless
XINLIAN_REQUIRE_SERVICES=1 (set by .ci/run), in which case it fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any, AsyncIterator, Iterator

import pytest

REQUIRE_SERVICES = os.environ.get("XINLIAN_REQUIRE_SERVICES") == "1"
PG_HOST, PG_PORT = "127.0.0.1", 5432
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under XINLIAN_REQUIRE_SERVICES=1) when a service does not answer."""
    if _answers(host, port):
        return
    reason = f"{name} is not answering on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} and XINLIAN_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (asyncpg URL), dropped after the test."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    import asyncpg

    name = f"xinlian_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


MARIADB_SOCKET = "/run/mysqld/mysqld.sock"
MARIADB_TEST_USER = "xinlian_test"
MARIADB_TEST_PASSWORD = "xinlian-test-only-Pw1"  # a throwaway account on the machine's own server


async def _mariadb_admin() -> dict[str, Any]:
    """asyncmy connection keywords for an account over TCP that may create databases and users.

    root@127.0.0.1 with an empty password where the server allows it (as on this machine);
    where root may log in only through the unix socket, a dedicated `xinlian_test` account for
    127.0.0.1 is made (or reset) through the socket, with a fixed test-only password.
    """
    import asyncmy
    from asyncmy.errors import OperationalError

    tcp: dict[str, Any] = {"host": MARIADB_HOST, "port": MARIADB_PORT}
    try:
        conn = await asyncmy.connect(**tcp, user="root", password="")
    except OperationalError as exc:
        if exc.args[0] not in (1045, 1698):  # access denied / root uses unix_socket auth
            raise
    else:
        conn.close()
        return {**tcp, "user": "root", "password": ""}
    conn = await asyncmy.connect(unix_socket=MARIADB_SOCKET, user="root")
    try:
        async with conn.cursor() as cur:
            await cur.execute(
                f"CREATE OR REPLACE USER '{MARIADB_TEST_USER}'@'{MARIADB_HOST}' IDENTIFIED BY %s",
                (MARIADB_TEST_PASSWORD,),
            )
            await cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_TEST_USER}'@'{MARIADB_HOST}' WITH GRANT OPTION")
    finally:
        conn.close()
    return {**tcp, "user": MARIADB_TEST_USER, "password": MARIADB_TEST_PASSWORD}


async def _mariadb_execute(admin: dict[str, Any], statement: str) -> None:
    import asyncmy

    conn = await asyncmy.connect(**admin)
    try:
        async with conn.cursor() as cur:
            await cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture
async def mariadb_url() -> AsyncIterator[str]:
    """A fresh, empty MariaDB database (utf8mb4; asyncmy URL), dropped after the test.

    The URL's account may create databases and users: `mysql+asyncmy://root@127.0.0.1:3306/<name>`
    where root logs in over TCP with an empty password (this machine's setup); otherwise the
    `xinlian_test` account that `_mariadb_admin` creates through the unix socket as root.
    """
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT)
    from urllib.parse import quote

    admin = await _mariadb_admin()
    name = f"xinlian_test_{uuid.uuid4().hex[:12]}"
    await _mariadb_execute(admin, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    login = quote(admin["user"], safe="") + (f":{quote(admin['password'], safe='')}" if admin["password"] else "")
    try:
        yield f"mysql+asyncmy://{login}@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
    finally:
        await _mariadb_execute(admin, f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def sqlite_url(tmp_path) -> Iterator[str]:
    """A fresh SQLite database file in the test's temporary directory."""
    yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Run a store test on both the embedded SQLite and the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def redis_key_prefix() -> str:
    """A key prefix of this test's own in Redis (give it to the hub as `redis_key_prefix`)."""
    return f"xinlian-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_url(redis_key_prefix: str) -> Iterator[str]:
    """The machine's Redis (`redis://` URL); every key under `redis_key_prefix` is deleted afterwards."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    try:
        yield url
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{redis_key_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL text of every statement any SQLAlchemy engine sends while the test runs."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)
