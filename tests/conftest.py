"""Shared fixtures: real PostgreSQL / MariaDB databases made per test and dropped afterwards.

A test that needs a service skips with a clear reason when the service is absent, unless
XINLIAN_REQUIRE_SERVICES=1 (set by .ci/run), in which case it fails.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import AsyncIterator, Iterator

import pytest

REQUIRE_SERVICES = os.environ.get("XINLIAN_REQUIRE_SERVICES") == "1"
PG_HOST, PG_PORT = "127.0.0.1", 5432
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306


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
