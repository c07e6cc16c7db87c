"""`xinlian cases list|show|assign` (issue 12): every case, overdue first, with working days left
counted with the data directory's calendar; assignments audited as the CLI's `--by`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from xinlian.hub.audit import AuditTrail
from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.model import Actor, CaseRef
from xinlian.hub.cases.register import CaseRegister
from xinlian.hub.cli import main
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.policies.cases import standard_case_rules

COMPANY = "91110000600037341L"
CHINA = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"

    async def create() -> None:
        await (await Store.open(Settings.from_env(directory).database_url)).close()

    asyncio.run(create())
    return directory


def run(data_dir: Path, *argv: str) -> int:
    return main([*argv, "--data-dir", str(data_dir)])


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def seed(data_dir: Path) -> dict[str, int]:
    """Three cases: one filed 30 working days ago (overdue), one today, one closed."""
    today = dt.datetime.now(CHINA).date()
    calendar = WorkingCalendar.load(data_dir)
    long_ago = today
    for _ in range(30):
        long_ago -= dt.timedelta(days=1)
        while not calendar.is_working_day(long_ago):
            long_ago -= dt.timedelta(days=1)

    async def go() -> dict[str, int]:
        store = await Store.open(Settings.from_env(data_dir).database_url)
        moment = dt.datetime(long_ago.year, long_ago.month, long_ago.day, 10, tzinfo=CHINA)
        try:
            old = CaseRegister(store, calendar, standard_case_rules, clock=lambda: moment)
            overdue = await old.file("objection", Actor.credit_office("office"), category="wrong", description="金额有误",
                                     subject=COMPANY, records=[CaseRef("penalties", "罚1号")])
            now = CaseRegister(store, calendar, standard_case_rules)
            fresh = await now.file("objection", Actor.credit_office("office"), category="duplicate", description="重复",
                                   subject=COMPANY, records=[CaseRef("penalties", "罚2号")])
            closed = await now.file("objection", Actor.credit_office("office"), category="wrong", description="x",
                                    subject=COMPANY, records=[CaseRef("penalties", "罚3号")])
            await now.move(closed.id, "withdraw", Actor.credit_office("office"), "settled")
            return {"overdue": overdue.id, "fresh": fresh.id, "closed": closed.id}
        finally:
            await store.close()

    return asyncio.run(go())


def test_list_shows_overdue_first_with_working_days_left(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(data_dir)
    assert run(data_dir, "cases", "list", "--json") == 0
    rows = json_lines(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [ids["overdue"], ids["fresh"]]  # open only, overdue first
    overdue, fresh = rows
    assert overdue["overdue"] is True and overdue["left"] == -20  # 10 working days allowed, filed 30 ago
    assert fresh["overdue"] is False and fresh["left"] == 10 and fresh["department"] == "(credit office)"
    assert run(data_dir, "cases", "list", "--overdue", "--json") == 0
    assert [r["id"] for r in json_lines(capsys.readouterr().out)] == [ids["overdue"]]
    assert run(data_dir, "cases", "list", "--all", "--json") == 0
    assert [r["id"] for r in json_lines(capsys.readouterr().out)] == [ids["overdue"], ids["fresh"], ids["closed"]]
    assert run(data_dir, "cases", "list", "--due-soon", "--json") == 0
    assert json_lines(capsys.readouterr().out) == []  # 10 left: not within the 2-day reminder
    assert run(data_dir, "cases", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["ID", "KIND"]
    assert [line.split()[0] for line in lines[1:]] == [str(ids["overdue"]), str(ids["fresh"])]
    assert lines[1].split()[-2:] == ["-20", "true"]


def test_show_and_assign_are_audited(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = seed(data_dir)
    assert run(data_dir, "cases", "assign", str(ids["fresh"]), "market", "--note", "市场监管局作出的处罚", "--by", "ops-li") == 0
    assert "assigned to market" in capsys.readouterr().out
    assert run(data_dir, "cases", "show", str(ids["fresh"]), "--json") == 0
    [shown] = json_lines(capsys.readouterr().out)
    assert shown["department"] == "market" and [h["action"] for h in shown["history"]] == ["filed", "assign"]
    assert shown["history"][1]["by"] == "ops-li"
    assert run(data_dir, "cases", "assign", str(ids["closed"]), "market") == 2  # closed: nothing to assign
    assert run(data_dir, "cases", "show", "999999") == 2
    assert "no case 999999" in capsys.readouterr().err

    async def tail(store: Store) -> list[Any]:
        return [s.entry for s in await AuditTrail(store).tail(100) if s.entry is not None]

    async def go() -> list[Any]:
        store = await Store.open(Settings.from_env(data_dir).database_url)
        try:
            return await tail(store)
        finally:
            await store.close()

    actions = [e.detail.get("action") for e in asyncio.run(go())]
    assert "assignCase" in actions and "showCase" in actions
