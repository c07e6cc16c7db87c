"""The audit trail: canonical entries, group commit, fail-closed writes, tamper detection, CLI.

Store-backed tests run on the embedded SQLite and on the real PostgreSQL server (`store_url`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy import func, select, text

from audit_fixture import make_entry
from xinlian.hub.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditTrail,
    AuditUnavailable,
    chain_hash,
    verify_chain,
)
from xinlian.hub.cli import main
from xinlian.hub.cli.admin_session import sealed_trail
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.hub.store.models import AuditRecord

UTC = dt.timezone.utc
DOCS = Path(__file__).resolve().parent.parent / "docs" / "audit.md"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url)
    yield opened
    await opened.close()


@pytest.fixture
async def trail(store: Store) -> AsyncIterator[AuditTrail]:
    writer = AuditTrail(store)
    await writer.start()
    yield writer
    await writer.stop()


async def sql(store: Store, statement: str, **params: object) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text(statement), params)


async def row_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(AuditRecord))).scalar_one()


# --- the entry and its canonical form -------------------------------------------------------


def test_canonical_content_is_sorted_compact_utf8_json_with_z_times() -> None:
    entry = make_entry(0, at=dt.datetime(2026, 4, 1, 16, 30, 5, 120, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    assert entry.canonical_content() == (
        '{"at":"2026-04-01T08:30:05.000120Z","client_id":"bank-hohhot","client_kind":"bank",'
        '"denied":["penalties.facts"],"endpoint":"/graphql","errors":["FORBIDDEN"],'
        '"operation_name":"Profile","outcome":"partial","policy_version":"2026.1","purpose":"贷款审查",'
        '"released":["registration.name","taxCredit.level"],"remote_addr":"10.0.0.7","request_id":"req-0000",'
        '"subjects":["91110000600037341L","91350100M000100Y43"]}'
    )


def test_the_hash_covers_the_previous_hash_and_the_content_bytes() -> None:
    content = make_entry(1).canonical_content()
    expected = hashlib.sha256(("0" * 64 + "\n" + content).encode("utf-8")).hexdigest()
    assert GENESIS_HASH == "0" * 64
    assert chain_hash(GENESIS_HASH, content) == expected


def test_an_entry_reads_back_from_its_content() -> None:
    entry = make_entry(3, client_id=None, client_kind=None, purpose=None, endpoint="/public/graphql")
    assert AuditEntry.from_content(entry.canonical_content()) == entry


def test_lists_are_sorted_and_unique_and_times_must_be_aware() -> None:
    entry = make_entry(0, subjects=["b", "a", "b"], errors=["Z", "A"])
    assert entry.subjects == ["a", "b"] and entry.errors == ["A", "Z"]
    with pytest.raises(ValueError):
        make_entry(0, at=dt.datetime(2026, 4, 1, 8, 0))
    with pytest.raises(ValueError):
        make_entry(0, outcome="Maybe so")
    with pytest.raises(ValueError):
        make_entry(0, endpoint="admin")  # neither a path nor "cli"
    # the vocabulary is open to new entry points and their outcomes
    assert make_entry(0, endpoint="/oauth/token", outcome="abandoned").endpoint == "/oauth/token"


def test_text_that_is_not_utf8_encodable_is_escaped_not_lost() -> None:
    entry = make_entry(0, operation_name="\ud800op")
    assert entry.canonical_content().encode("utf-8")
    assert entry.operation_name == "\\ud800op"


# --- writing: group commit, durability, failure ----------------------------------------------


async def test_concurrent_records_form_one_contiguous_intact_chain_in_few_transactions(
    store: Store, trail: AuditTrail
) -> None:
    seqs = await asyncio.gather(*(trail.record(make_entry(i)) for i in range(200)))
    assert sorted(seqs) == list(range(1, 201))
    assert trail.entries == 200
    assert trail.batches < 200
    report = await verify_chain(store)
    assert report.ok and report.checked == 200 and report.head_seq == 200


async def test_record_returns_only_once_the_entry_is_committed(store: Store, trail: AuditTrail) -> None:
    seq = await trail.record(make_entry(1, request_id="durable"))
    other_process = Store(store.url)
    try:
        async with other_process.engine.connect() as conn:
            stored = (
                await conn.execute(select(AuditRecord.request_id).where(AuditRecord.seq == seq))
            ).scalar_one()
        assert stored == "durable"
    finally:
        await other_process.close()


async def test_the_chain_continues_across_restarts(store: Store) -> None:
    first = AuditTrail(store)
    assert [await first.record(make_entry(i)) for i in range(3)] == [1, 2, 3]
    await first.stop()
    second = AuditTrail(store)
    await second.start()
    assert await second.record(make_entry(4)) == 4
    await second.stop()
    assert (await verify_chain(store)).ok


async def test_stop_flushes_pending_entries_and_then_refuses_new_ones(store: Store) -> None:
    writer = AuditTrail(store)
    await writer.start()
    pending = [asyncio.create_task(writer.record(make_entry(i))) for i in range(20)]
    await asyncio.sleep(0)
    await writer.stop()
    assert sorted(task.result() for task in pending) == list(range(1, 21))
    with pytest.raises(AuditUnavailable):
        await writer.record(make_entry(99))


async def test_two_hub_processes_sharing_a_store_keep_one_chain(store: Store) -> None:
    other_store = Store(store.url)  # its own engine and connections, as another process has
    mine, theirs = AuditTrail(store), AuditTrail(other_store)
    await mine.start()
    await theirs.start()
    try:
        results = await asyncio.gather(
            *(trail.record(make_entry(i)) for i in range(100) for trail in (mine, theirs))
        )
    finally:
        await mine.stop()
        await theirs.stop()
        await other_store.close()
    assert sorted(results) == list(range(1, 201))
    report = await verify_chain(store)
    assert report.ok and report.checked == 200


async def test_a_dropped_table_makes_record_fail_closed(store: Store, trail: AuditTrail) -> None:
    await trail.record(make_entry(1))
    await sql(store, "DROP TABLE audit_entries")
    with pytest.raises(AuditUnavailable):
        await asyncio.wait_for(trail.record(make_entry(2)), timeout=30)
    assert trail.failed_batches == 1


async def test_an_unreachable_store_makes_record_fail_closed() -> None:
    unreachable = Store("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    writer = AuditTrail(unreachable, write_timeout=10)
    try:
        with pytest.raises(AuditUnavailable):
            await asyncio.wait_for(writer.record(make_entry(1)), timeout=30)
    finally:
        await writer.stop()
        await unreachable.close()


async def test_a_failed_batch_fails_every_waiter_and_leaves_nothing_behind(store: Store, trail: AuditTrail) -> None:
    # Plant rows so that the batch's SECOND entry collides on the unique hash column:
    # the last row (seq 1000) fixes the batch's starting hash, a row at seq 500 holds entry 2's hash.
    first, second = make_entry(1), make_entry(2)
    start = "f" * 64
    second_hash = chain_hash(chain_hash(start, first.canonical_content()), second.canonical_content())
    planted = "INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) VALUES "
    await sql(store, planted + "(1000, 'x', 'planted', NULL, '{}', :p, :h)", p=GENESIS_HASH, h=start)
    await sql(store, planted + "(500, 'x', 'planted', NULL, '{}', :p, :h)", p=GENESIS_HASH, h=second_hash)

    results = await asyncio.gather(trail.record(first), trail.record(second), return_exceptions=True)
    assert all(isinstance(result, AuditUnavailable) for result in results)
    assert await row_count(store) == 2  # only the planted rows: the first entry was rolled back too

    await sql(store, "DELETE FROM audit_entries")
    assert await trail.record(make_entry(3)) == 1  # the trail recovers once the store does


async def test_tail_returns_the_latest_entries_oldest_first(store: Store, trail: AuditTrail) -> None:
    entries = [make_entry(i) for i in range(5)]
    for entry in entries:
        await trail.record(entry)
    latest = await trail.tail(2)
    assert [stored.seq for stored in latest] == [4, 5]
    assert [stored.entry for stored in latest] == entries[3:]
    assert latest[1].prev_hash == latest[0].hash


# --- tamper detection -------------------------------------------------------------------------


async def write_entries(store: Store, count: int, *, trail: AuditTrail | None = None) -> None:
    writer = trail or AuditTrail(store)
    for i in range(1, count + 1):
        await writer.record(make_entry(i))
    await writer.stop()


async def test_an_intact_chain_and_an_empty_one_verify(store: Store) -> None:
    assert (await verify_chain(store)).ok
    await write_entries(store, 10)
    report = await verify_chain(store, page_size=3)
    assert report.ok and report.checked == 10 and report.first_bad_seq is None


async def test_altered_content_is_named(store: Store) -> None:
    await write_entries(store, 10)
    forged = make_entry(7, client_id="someone-else").canonical_content()
    await sql(store, "UPDATE audit_entries SET content = :c WHERE seq = 7", c=forged)
    report = await verify_chain(store, page_size=3)
    assert not report.ok and report.first_bad_seq == 7
    assert "altered" in (report.problem or "")
    assert report.head_seq == 6


async def test_an_altered_hash_is_named(store: Store) -> None:
    await write_entries(store, 10)
    await sql(store, "UPDATE audit_entries SET hash = :h WHERE seq = 4", h="a" * 64)
    report = await verify_chain(store)
    assert not report.ok and report.first_bad_seq == 4 and "altered" in (report.problem or "")


async def test_content_altered_and_rehashed_is_caught_at_the_next_link(store: Store) -> None:
    await write_entries(store, 10)
    async with store.engine.connect() as conn:
        prev = (await conn.execute(text("SELECT prev_hash FROM audit_entries WHERE seq = 5"))).scalar_one()
    forged = make_entry(5, outcome="ok").canonical_content()
    await sql(
        store, "UPDATE audit_entries SET content = :c, hash = :h WHERE seq = 5", c=forged, h=chain_hash(prev, forged)
    )
    report = await verify_chain(store)
    assert not report.ok and report.first_bad_seq == 6
    assert "entry 5 was altered and re-hashed" in (report.problem or "")


async def test_an_altered_indexed_column_is_named(store: Store) -> None:
    await write_entries(store, 10)
    await sql(store, "UPDATE audit_entries SET client_id = 'innocent' WHERE seq = 3")
    report = await verify_chain(store)
    assert report.first_bad_seq == 3 and "client_id" in (report.problem or "")


async def test_a_removed_entry_is_named(store: Store) -> None:
    await write_entries(store, 10)
    await sql(store, "DELETE FROM audit_entries WHERE seq = 5")
    report = await verify_chain(store, page_size=4)
    assert not report.ok and report.first_bad_seq == 5
    assert report.problem == "entry 5 was removed: entry 6 follows entry 4"


async def test_a_removed_first_entry_is_named(store: Store) -> None:
    await write_entries(store, 3)
    await sql(store, "DELETE FROM audit_entries WHERE seq = 1")
    report = await verify_chain(store)
    assert report.first_bad_seq == 1 and "removed" in (report.problem or "")


async def test_a_removed_entry_hidden_by_renumbering_is_named(store: Store) -> None:
    await write_entries(store, 10)
    await sql(store, "DELETE FROM audit_entries WHERE seq = 5")
    await sql(store, "UPDATE audit_entries SET seq = -(seq - 1) WHERE seq > 5")
    await sql(store, "UPDATE audit_entries SET seq = -seq WHERE seq < 0")
    report = await verify_chain(store)
    assert not report.ok and report.first_bad_seq == 5
    assert "an entry between them was removed" in (report.problem or "")


async def test_an_inserted_entry_is_named(store: Store) -> None:
    await write_entries(store, 10)
    await sql(store, "UPDATE audit_entries SET seq = -(seq + 1) WHERE seq >= 5")
    await sql(store, "UPDATE audit_entries SET seq = -seq WHERE seq < 0")
    async with store.engine.connect() as conn:
        hash_4 = (await conn.execute(text("SELECT hash FROM audit_entries WHERE seq = 4"))).scalar_one()
    forged = make_entry(42, request_id="forged", client_id="bank-hohhot")
    content = forged.canonical_content()
    await sql(
        store,
        "INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) "
        "VALUES (5, :at, 'forged', 'bank-hohhot', :c, :p, :h)",
        at="2026-04-01T08:00:42.000000Z",
        c=content,
        p=hash_4,
        h=chain_hash(hash_4, content),
    )
    report = await verify_chain(store, page_size=5)
    assert not report.ok and report.first_bad_seq == 5
    assert report.problem == "entry 5 was inserted: entry 6 links to the entry before it"


async def test_an_entry_inserted_before_the_start_is_named(store: Store) -> None:
    await write_entries(store, 3)
    content = make_entry(0).canonical_content()
    await sql(
        store,
        "INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) "
        "VALUES (0, '2026-04-01T08:00:00.000000Z', 'req-0000', 'bank-hohhot', :c, :p, :h)",
        c=content,
        p=GENESIS_HASH,
        h=chain_hash(GENESIS_HASH, content),
    )
    report = await verify_chain(store)
    assert report.first_bad_seq == 0 and "inserted" in (report.problem or "")


# --- the command line and the outside auditor -------------------------------------------------


async def _build_data_dir(data_dir: Path, count: int) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    try:  # written as the hub writes: sealed with the data directory's keyring
        await write_entries(store, count, trail=sealed_trail(Settings.from_env(data_dir), store))
    finally:
        await store.close()


async def _tamper(data_dir: Path, statement: str) -> None:
    store = Store(f"sqlite+aiosqlite:///{data_dir / 'hub.db'}")
    try:
        await sql(store, statement)
    finally:
        await store.close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    directory = tmp_path / "data"
    asyncio.run(_build_data_dir(directory, 6))
    return directory


def test_audit_verify_exits_zero_when_intact_and_non_zero_naming_the_entry(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
    assert "audit chain intact: 6 entries" in capsys.readouterr().out

    asyncio.run(_tamper(data_dir, "UPDATE audit_entries SET content = replace(content, 'partial', 'ok') WHERE seq = 4"))
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at entry 4" in out and "altered" in out

    asyncio.run(_tamper(data_dir, "DELETE FROM audit_entries WHERE seq = 2"))
    assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 1
    assert "entry 2 was removed" in capsys.readouterr().out


def test_audit_verify_on_a_missing_store_exits_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    assert main(["audit", "verify", "--data-dir", str(tmp_path / "absent")]) == 2
    assert not (tmp_path / "absent").exists()


def test_the_xinlian_command_reports_a_tampered_store(data_dir: Path) -> None:
    asyncio.run(_tamper(data_dir, "UPDATE audit_entries SET hash = 'x' WHERE seq = 3"))
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from xinlian.hub.cli import main; sys.exit(main())",
         "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1 and "BROKEN at entry 3" in done.stdout


def test_audit_tail_prints_the_latest_entries(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "tail", "-n", "2", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "#5 " in out and "#6 " in out and "#4 " not in out
    assert "bank-hohhot (bank)" in out and "贷款审查" in out

    assert main(["audit", "tail", "-n", "3", "--json", "--data-dir", str(data_dir)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["seq"] for line in lines] == [4, 5, 6]
    assert lines[0]["entry"]["request_id"] == "req-0004"


def _auditor_script() -> str:
    match = re.search(r"<!-- auditor-script -->\s*```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert match, "docs/audit.md must carry the outside auditor's script"
    return match.group(1)


def test_the_documented_auditor_script_re_verifies_the_chain(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "verify_audit.py"
    script.write_text(_auditor_script(), encoding="utf-8")
    run = [sys.executable, str(script), str(data_dir / "hub.db")]
    intact = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert intact.returncode == 0 and "intact: 6 entries" in intact.stdout

    asyncio.run(_tamper(data_dir, "UPDATE audit_entries SET content = replace(content, 'Profile', 'Other') WHERE seq = 5"))
    tampered = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert tampered.returncode != 0 and "entry 5" in tampered.stderr
