"""The hub store opens on SQLite and PostgreSQL, migrates itself with Alembic, and stays put."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from xinlian.hub.cli import main
from xinlian.hub.store import Store
from xinlian.hub.store.models import Base, ClientRecord


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_open_migrates_to_head_and_creates_the_tables(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        assert Store.head_revision() == "0011"
        assert await store.current_revision() == Store.head_revision()
        assert {"clients", "audit_entries", "alembic_version", "change_generations", "cluster_members", "cases", "case_events", "case_attachments"} <= await _tables(store)
        assert "objections" not in await _tables(store)  # moved into cases (0009)
    finally:
        await store.close()


async def test_opening_twice_is_idempotent_and_keeps_data(store_url: str) -> None:
    first = await Store.open(store_url)
    async with first.session() as session:
        session.add(
            ClientRecord(
                client_id="dept-tax",
                name="税务局",
                kind="department",
                secret_hash="x",
                scope="credit:shared",
                created_at=dt.datetime.now(dt.timezone.utc),
            )
        )
        await session.commit()
    await first.close()

    second = await Store.open(store_url)
    try:
        assert await second.upgrade() == Store.head_revision()
        assert await second.current_revision() == Store.head_revision()
        async with second.session() as session:
            names = (await session.scalars(select(ClientRecord.name))).all()
        assert names == ["税务局"]
    finally:
        await second.close()


async def test_hub_processes_starting_together_migrate_once(store_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(store_url) for _ in range(4)))
    try:
        for store in stores:
            assert await store.current_revision() == Store.head_revision()
    finally:
        for store in stores:
            await store.close()


async def test_migrations_create_exactly_what_the_models_define(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        async with store.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        assert diff == []
    finally:
        await store.close()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'data' / 'hub.db'}")
    try:
        assert (tmp_path / "nested" / "data" / "hub.db").exists()
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 2  # FULL
    finally:
        await store.close()


async def test_an_unreachable_store_fails_to_open() -> None:
    with pytest.raises(OSError):
        await Store.open("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")


def test_db_upgrade_command_applies_migrations_and_prints_the_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    assert main(["db", "upgrade", "--data-dir", str(data_dir)]) == 0
    assert "at revision 0011 (head)" in capsys.readouterr().out
    assert (data_dir / "hub.db").exists()
    assert main(["db", "upgrade", "--data-dir", str(data_dir)]) == 0
    assert main(["db", "current", "--data-dir", str(data_dir)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_db_upgrade_command_uses_the_database_url_from_the_environment(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINLIAN_DATABASE_URL", postgres_url)
    assert main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "postgresql+asyncpg://" in out and "at revision 0011 (head)" in out
    assert not (tmp_path / "hub.db").exists()
