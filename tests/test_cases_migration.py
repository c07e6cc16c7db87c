"""Migration 0009: the objection register's rows become objection cases, with their history, on
SQLite and PostgreSQL — open ones stay flagged, closed ones keep their outcome under its new name."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from alembic import command
from sqlalchemy import text

from xinlian.hub.governance.objections import ObjectionRegister
from xinlian.hub.store import Store
from xinlian.hub.store.engine import alembic_config

USCC = "91110000600037341L"


async def test_0009_moves_objections_into_cases(store_url: str) -> None:
    store = Store(store_url)
    try:

        def to(revision: str) -> Callable[[Any], None]:
            def upgrade(connection: Any) -> None:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)

            return upgrade

        filed = dt.datetime(2026, 10, 8, 23, 30, tzinfo=dt.timezone.utc)  # 9 October in Hohhot
        async with store.engine.begin() as conn:
            await conn.run_sync(to("0008"))
            for status, ref, closed in (("open", "罚1号", None), ("upheld", "罚2号", filed), ("dismissed", "罚3号", filed)):
                await conn.execute(
                    text(
                        "INSERT INTO objections (subject, family, record_ref, status, reason, filed_at, filed_by, closed_at, closed_by, outcome) "
                        "VALUES (:s, 'penalties', :ref, :status, 'the fine was paid', :at, 'admin-1', :closed, :by, :outcome)"
                    ),
                    {"s": USCC, "ref": ref, "status": status, "at": filed, "closed": closed,
                     "by": "admin-2" if closed else None, "outcome": "checked" if closed else None},
                )
        async with store.engine.begin() as conn:  # a store upgraded by 42f0e63: 0009 gave the moved ones no deadline
            await conn.run_sync(to("0010"))
            assert (await conn.execute(text("SELECT count(*) FROM cases WHERE deadline IS NULL"))).scalar() == 3
        assert await store.upgrade() == Store.head_revision()  # 0011 gives them theirs
        objections = ObjectionRegister(store)
        found = {c.records[0].key: c for c in await objections.list(subject=USCC)}
        assert {k: c.status for k, c in found.items()} == {"罚1号": "open", "罚2号": "corrected", "罚3号": "upheld"}
        assert found["罚1号"].filed_on == dt.date(2026, 10, 9)
        assert found["罚1号"].deadline == dt.date(2026, 10, 22)  # Sat 10 Oct worked counts first
        assert found["罚1号"].overdue(dt.date(2026, 12, 3))
        assert [s.action for s in found["罚2号"].history] == ["filed", "corrected"]
        assert found["罚2号"].history[-1].by == "admin-2" and found["罚2号"].resolution == "checked"
        assert await objections.open_refs_by_family([USCC]) == {(USCC, "penalties"): {"罚1号"}}
        # ids continue after the moved ones (PostgreSQL's sequence was moved on)
        new = await objections.file(USCC, "penalties", "罚4号", "wrong date", "admin-1")
        assert new.id > max(c.id for c in found.values())
    finally:
        await store.close()
