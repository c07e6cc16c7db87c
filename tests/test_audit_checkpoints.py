"""Signed checkpoints of the audit trail, and `xinlian audit verify` against them.

Each attack is made the way an insider with write access to the hub store would make it
(SQL on the real store, hashes recomputed where that hides the change from the chain alone),
then checked through the command line as an operator runs it. Store-backed tests run on the
embedded SQLite and the real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy import text

from audit_fixture import SUBJECTS, make_entry
from hub_fixture import running_hub, wait_until
from xinlian.hub.audit import GENESIS_HASH, AuditTrail, chain_hash
from xinlian.hub.audit.checkpoint import (
    checkpoint_directory,
    latest_valid,
    parse_checkpoint,
    read_checkpoints,
    sign_checkpoint,
)
from xinlian.hub.audit.checkpoint_writer import ChainDoesNotExtend, CheckpointWriter
from xinlian.hub.audit.entry import format_time
from xinlian.hub.cli import main
from xinlian.hub.cli.admin_session import sealed_trail
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring
from xinlian.keys.rotation import rotate

UTC = dt.timezone.utc


class Hub:
    """A data directory with a keyring and an audit trail in the store at `url`."""

    def __init__(self, data_dir: Path, url: str) -> None:
        self.data_dir, self.url = data_dir, url

    def run(self, coroutine_fn, *args):  # type: ignore[no-untyped-def]
        async def go():  # type: ignore[no-untyped-def]
            store = await Store.open(self.url)
            try:
                return await coroutine_fn(store, *args)
            finally:
                await store.close()

        return asyncio.run(go())

    def write(self, start: int, count: int) -> None:
        """Entries as the hub writes them: each batch sealed with the data directory's keyring."""

        async def go(store: Store) -> None:
            trail = sealed_trail(Settings.from_env(self.data_dir), store)
            for i in range(start, start + count):
                await trail.record(make_entry(i))
            await trail.stop()

        self.run(go)

    def sql(self, *statements: str) -> None:
        async def go(store: Store) -> None:
            async with store.engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement))

        self.run(go)

    def rewrite_from(self, k: int, *, append: int = 0) -> None:
        """Replace entries k.. with forged ones (and `append` more), re-hashing the chain."""

        async def go(store: Store) -> None:
            async with store.engine.begin() as conn:
                rows = (await conn.execute(text("SELECT seq, hash FROM audit_entries ORDER BY seq"))).all()
                last = rows[-1].seq if rows else 0
                prev = next((r.hash for r in rows if r.seq == k - 1), GENESIS_HASH)
                await conn.execute(text(f"DELETE FROM audit_entries WHERE seq >= {k}"))
                for seq in range(k, last + append + 1):
                    entry = make_entry(seq, outcome="rejected", released=[])
                    content = entry.canonical_content()
                    digest = chain_hash(prev, content)
                    await conn.execute(
                        text("INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) "
                             "VALUES (:s, :a, :r, :c, :content, :p, :h)"),
                        {"s": seq, "a": content.split('"at":"')[1].split('"')[0], "r": entry.indexed_request_id,
                         "c": entry.indexed_client_id, "content": content, "p": prev, "h": digest},
                    )
                    if seq > last:
                        for subject in SUBJECTS:
                            await conn.execute(text("INSERT INTO audit_subjects (subject, seq) VALUES (:x, :s)"),
                                               {"x": subject, "s": seq})
                    prev = digest

        self.run(go)

    def verify(self, *extra: str) -> tuple[int, str]:
        return main(["audit", "verify", "--data-dir", str(self.data_dir), *extra]), ""

    @property
    def checkpoints(self) -> Path:
        return checkpoint_directory(self.data_dir)


@pytest.fixture
def hub(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """8 entries, a keyring, and one signed checkpoint of entry 8 (written by the CLI)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
    Keyring.load_or_create(data_dir)
    made = Hub(data_dir, store_url)
    made.write(1, 8)
    assert main(["audit", "checkpoint", "--data-dir", str(data_dir)]) == 0
    return made


def verify(hub: Hub, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["audit", "verify", "--data-dir", str(hub.data_dir), *extra])
    return code, capsys.readouterr().out


# --- intact, and the unanchored tail ---------------------------------------------------------


def test_an_intact_trail_with_a_checkpoint_verifies(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    code, out = verify(hub, capsys)
    assert code == 0, out
    assert "anchored: entries 1-8" in out and "NOT YET ANCHORED" not in out
    assert "1 with a valid signature" in out and "audit trail intact" in out
    assert "subject index: 16 rows, 0 difference(s)" in out


def test_entries_after_the_newest_checkpoint_are_reported_not_yet_anchored(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.write(9, 3)
    code, out = verify(hub, capsys)
    assert code == 0, out
    assert "anchored: entries 1-8" in out and "NOT YET ANCHORED: entries 9-11" in out


# --- attacks on the trail --------------------------------------------------------------------


def test_a_cut_tail_is_detected(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.sql("DELETE FROM audit_subjects WHERE seq > 5", "DELETE FROM audit_entries WHERE seq > 5")
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "audit trail CUT: the trail ends at entry 5" in out and "entries 6-8 were removed" in out
    assert "audit chain intact: 5 entries" in out  # the chain alone cannot see it


def test_an_emptied_trail_is_detected(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.sql("DELETE FROM audit_subjects", "DELETE FROM audit_entries")
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "the trail is EMPTY" in out and "entries 1-8 were removed" in out


@pytest.mark.parametrize("k", [1, 4, 8])
def test_a_rewrite_from_any_entry_onward_is_detected(k: int, hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.rewrite_from(k)
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "audit chain intact" in out  # re-hashed: the chain alone cannot see it
    assert "audit trail REWRITTEN: entry 8 no longer has the hash" in out


def test_forged_entries_appended_after_a_checkpoint_are_detected(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.rewrite_from(9, append=3)  # nothing anchored is changed: 9-11 appended with good hashes
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "audit chain intact: 11 entries" in out  # the chain alone cannot see it
    assert "audit trail APPENDED: entries 9-11 carry no seal by the hub" in out
    assert "head seal: entry 8" in out


def test_forged_entries_between_hub_batches_stay_detected_and_are_never_checkpointed(
    hub: Hub, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    hub.write(9, 2)  # the hub's own, sealed but not yet checkpointed
    hub.rewrite_from(11, append=2)  # forged 11-12
    hub.write(13, 2)  # the hub writes on: a new sealed run starts at 13
    assert "a new sealed run starts at entry 13" in caplog.text
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "audit trail APPENDED: entries 9-12 carry no seal" in out and "covers entries 13-14" in out
    assert main(["audit", "checkpoint", "--data-dir", str(hub.data_dir)]) == 1
    assert "not written under the hub's seal" in capsys.readouterr().err
    assert [c.checkpoint.seq for c in read_checkpoints(hub.checkpoints) if c.checkpoint] == [8]


def test_a_removed_or_replayed_head_seal_exposes_the_entries_after_the_checkpoint(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.write(9, 1)
    old_seal = hub.run(_seal_jws)
    hub.write(10, 2)
    hub.sql("DELETE FROM audit_head_seal")
    code, out = verify(hub, capsys)
    assert code == 1 and "audit trail APPENDED: entries 9-11" in out and "no valid head seal" in out, out
    hub.sql(f"INSERT INTO audit_head_seal (id, seq, hash, at, kid, jws) SELECT 1, {old_seal[0]}, '{old_seal[1]}', "
            f"'{old_seal[2]}', '{old_seal[3]}', '{old_seal[4]}'")  # an older, genuinely signed seal put back
    code, out = verify(hub, capsys)
    assert code == 1 and "audit trail APPENDED: entries 10-11" in out, out


def test_a_forged_head_seal_is_detected(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.write(9, 1)
    hub.rewrite_from(10, append=1)
    hub.sql("UPDATE audit_head_seal SET seq = 10, hash = (SELECT hash FROM audit_entries WHERE seq = 10)")
    code, out = verify(hub, capsys)
    assert code == 1 and "head seal FORGED" in out, out


async def _seal_jws(store: Store) -> tuple[int, str, str, str, str]:
    async with store.engine.connect() as conn:
        row = (await conn.execute(text("SELECT seq, hash, at, kid, jws FROM audit_head_seal"))).one()
    return row.seq, row.hash, row.at, row.kid, row.jws


def test_appended_entries_that_change_anchored_ones_are_a_rewrite(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.rewrite_from(6, append=2)
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "REWRITTEN" in out and "NOT YET ANCHORED: entries 1-10" in out  # one checkpoint: nothing left anchored
    assert "APPENDED" not in out  # the rewrite is the finding


def test_an_edited_subject_index_is_detected(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.sql(
        f"DELETE FROM audit_subjects WHERE seq = 3 AND subject = '{SUBJECTS[0]}'",
        "INSERT INTO audit_subjects (subject, seq) VALUES ('110102199101010078', 5)",
        "INSERT INTO audit_subjects (subject, seq) VALUES ('110102199101010078', 99)",
    )
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert f"entry 3 names subject {SUBJECTS[0]} but the index does not" in out
    assert "lists entry 5 for subject 110102199101010078, which the entry does not name" in out
    assert "lists entry 99 for subject 110102199101010078, but there is no entry 99" in out
    assert "3 difference(s)" in out


# --- the checkpoints themselves ----------------------------------------------------------------


def _append_line(hub: Hub, line: str) -> None:
    files = sorted(hub.checkpoints.glob("*.jsonl"))
    with open(files[-1], "a", encoding="utf-8") as f:
        f.write(line + "\n")


def test_a_forged_checkpoint_signature_is_detected(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    real = read_checkpoints(hub.checkpoints)[0].checkpoint
    assert real is not None
    # a checkpoint of a cut trail, signed with a key that is not the hub's but claims its kid
    impostor = ECKey.generate_key("P-256")
    header = {"alg": "ES256", "kid": real.kid, "typ": "xinlian-audit-checkpoint"}
    payload = {"at": format_time(real.at), "hash": "ab" * 32, "iss": "x", "seq": 3, "v": 1}
    token = jws.serialize_compact(header, json.dumps(payload).encode(), impostor, algorithms=["ES256"])
    _append_line(hub, token)
    code, out = verify(hub, capsys)
    assert code == 1, out
    assert "is FORGED: its signature does not verify" in out
    assert "anchored: entries 1-8" in out  # the forged one anchors nothing

    # a real checkpoint's payload edited (seq moved back), signature kept
    parts = real.token.split(".")
    import base64

    edited = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    edited["seq"] = 4
    parts[1] = base64.urlsafe_b64encode(json.dumps(edited).encode()).decode().rstrip("=")
    _append_line(hub, ".".join(parts))
    code, out = verify(hub, capsys)
    assert code == 1 and out.count("is FORGED") == 2


def test_checkpoints_signed_by_a_retired_key_still_verify(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    rotate(hub.data_dir, grace=0)  # the old key stops verifying tokens at once
    hub.write(9, 1)
    assert main(["audit", "checkpoint", "--data-dir", str(hub.data_dir)]) == 0
    code, out = verify(hub, capsys)
    assert code == 0, out
    assert "2 with a valid signature" in out and "anchored: entries 1-9" in out


def test_a_witness_copy_verifies_and_catches_a_cut_when_local_checkpoints_are_gone(
    hub: Hub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    capsys.readouterr()
    assert main(["audit", "checkpoint", "--print", "--data-dir", str(hub.data_dir)]) == 0
    mailed = capsys.readouterr().out.strip()
    witness = tmp_path / "regional-platform-copy.jsonl"
    witness.write_text(mailed + "\n", encoding="utf-8")
    assert parse_checkpoint(mailed).seq == 8

    code, out = verify(hub, capsys, "--checkpoint", str(witness))
    assert code == 0, out
    assert "2 with a valid signature" in out and "anchored: entries 1-8" in out

    # the insider cuts the trail AND deletes the hub's own checkpoints: only the witness remembers
    for path in hub.checkpoints.glob("*.jsonl"):
        path.unlink()
    hub.sql("DELETE FROM audit_subjects WHERE seq > 6", "DELETE FROM audit_entries WHERE seq > 6")
    code, out = verify(hub, capsys)
    assert code == 1 and "checkpoints: none found" in out, out
    assert "audit trail CUT: the trail ends at entry 6, but the head seal" in out  # the seal in the store saw 8
    hub.sql("DELETE FROM audit_head_seal")  # ... so the insider removes it too
    code, out = verify(hub, capsys)
    assert code == 1 and "audit trail APPENDED: entries 1-6" in out and "no valid head seal" in out, out
    code, out = verify(hub, capsys, "--checkpoint", str(witness))
    assert code == 1 and "entries 7-8 were removed" in out

    # a bare compact JWS line is accepted too; a missing witness file is a read error
    witness.write_text(parse_checkpoint(mailed).token + "\n", encoding="utf-8")
    assert verify(hub, capsys, "--checkpoint", str(witness))[0] == 1
    assert verify(hub, capsys, "--checkpoint", str(tmp_path / "absent.jsonl"))[0] == 2


def test_the_command_as_an_operator_runs_it_reports_a_cut(hub: Hub) -> None:
    hub.sql("DELETE FROM audit_entries WHERE seq = 8", "DELETE FROM audit_subjects WHERE seq = 8")
    done = subprocess.run(
        [sys.executable, "-m", "xinlian.hub.cli", "audit", "verify", "--data-dir", str(hub.data_dir)],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "entry 8 was removed" in done.stdout


# --- the writer ------------------------------------------------------------------------------


def test_checkpoint_files_are_private_append_only_json_lines(hub: Hub) -> None:
    assert stat.S_IMODE(hub.checkpoints.stat().st_mode) == 0o700
    files = sorted(hub.checkpoints.glob("*.jsonl"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # the head has not moved: no new checkpoint
    assert main(["audit", "checkpoint", "--data-dir", str(hub.data_dir)]) == 0
    hub.write(9, 2)
    assert main(["audit", "checkpoint", "--data-dir", str(hub.data_dir)]) == 0
    lines = files[0].read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [8, 10]
    assert set(json.loads(lines[0])) == {"at", "hash", "jws", "kid", "seq"}


def test_the_writer_refuses_to_sign_a_chain_that_does_not_extend_the_last_checkpoint(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.rewrite_from(5, append=2)
    capsys.readouterr()
    assert main(["audit", "checkpoint", "--data-dir", str(hub.data_dir)]) == 1
    assert "NOT signed" in capsys.readouterr().err
    assert [c.checkpoint.seq for c in read_checkpoints(hub.checkpoints) if c.checkpoint] == [8]


def test_the_writer_signs_at_its_interval_and_at_stop(hub: Hub) -> None:
    keyring = Keyring.load(hub.data_dir)
    assert keyring is not None

    async def go(store: Store) -> list[int]:
        writer = CheckpointWriter(store, keyring, hub.checkpoints, interval=0.05, issuer="test")
        writer.start()
        trail = sealed_trail(Settings.from_env(hub.data_dir), store)
        await trail.record(make_entry(9))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if writer.last is not None and writer.last.seq == 9:
                break
        await trail.record(make_entry(10))
        await trail.stop()
        await writer.stop()
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM audit_entries WHERE seq = 10"))
        with pytest.raises(ChainDoesNotExtend):
            await writer.checkpoint_now()
        return [c.checkpoint.seq for c in read_checkpoints(hub.checkpoints) if c.checkpoint]

    assert hub.run(go) == [8, 9, 10]


# --- a witness on its own: the public keys, and the checkpoints it was sent ---------------------


def witness_check(capsys: pytest.CaptureFixture[str], jwks_file: Path, *files: Path, head: tuple[int, str] | None = None
                  ) -> tuple[int, str]:
    capsys.readouterr()
    args = ["audit", "verify-checkpoints", "--jwks", str(jwks_file)]
    for path in files:
        args += ["--checkpoint", str(path)]
    if head is not None:
        args += ["--head-seq", str(head[0]), "--head-hash", head[1]]
    code = main(args)
    return code, capsys.readouterr().out


def exported_witness(hub: Hub, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[Path, Path]:
    """The JWKS `xinlian audit keys --print` exports and a witness copy of every checkpoint sent."""
    capsys.readouterr()
    assert main(["audit", "keys", "--print", "--data-dir", str(hub.data_dir)]) == 0
    jwks_file = tmp_path / "hub-keys.json"
    jwks_file.write_text(capsys.readouterr().out, encoding="utf-8")
    witness = tmp_path / "witness" / "copy.jsonl"
    witness.parent.mkdir()
    witness.write_text("".join(p.read_text() for p in sorted(hub.checkpoints.glob("*.jsonl"))), encoding="utf-8")
    return jwks_file, witness


def test_a_witness_verifies_its_copy_with_only_the_exported_public_keys(
    hub: Hub, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotate(hub.data_dir, grace=0)  # the first key expires at once: it leaves the published JWKS
    hub.write(9, 1)
    assert main(["audit", "checkpoint", "--data-dir", str(hub.data_dir)]) == 0
    keyring = Keyring.load(hub.data_dir)
    assert keyring is not None
    published = keyring.jwks()
    jwks_file, witness = exported_witness(hub, capsys, tmp_path)

    exported = json.loads(jwks_file.read_text())
    assert len(exported["keys"]) == 2 and len(published["keys"]) == 1
    for key in exported["keys"]:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use", "created", "retired", "verify_until"}
    old = next(k for k in exported["keys"] if k["retired"] is not None)
    assert old["verify_until"] == old["retired"] and old["kid"] not in {k["kid"] for k in published["keys"]}

    # no data directory, no store, no keyring: only the two files
    shutil.rmtree(hub.data_dir)
    monkeypatch.delenv("XINLIAN_DATABASE_URL")
    monkeypatch.setenv("XINLIAN_DATA_DIR", str(tmp_path / "nowhere"))
    code, out = witness_check(capsys, jwks_file, witness)
    assert code == 0, out
    assert "2 read" in out and "2 with a valid signature" in out and "newest checkpoint: entry 9" in out
    assert "witness checkpoints intact" in out
    assert not (tmp_path / "nowhere").exists()

    newest = parse_checkpoint(witness.read_text().splitlines()[-1])
    assert witness_check(capsys, jwks_file, witness, head=(12, "cd" * 32))[0] == 0  # ahead: fine
    code, out = witness_check(capsys, jwks_file, witness, head=(9, newest.hash))
    assert code == 0, out
    code, out = witness_check(capsys, jwks_file, witness, head=(6, "cd" * 32))
    assert code == 1 and "the hub's head (entry 6) is BEHIND the witnessed checkpoint of entry 9" in out
    code, out = witness_check(capsys, jwks_file, witness, head=(9, "cd" * 32))
    assert code == 1 and "FORK at entry 9" in out

    # the published JWKS alone no longer knows the expired key: that is what the export is for
    current = tmp_path / "published.json"
    current.write_text(json.dumps(published))
    code, out = witness_check(capsys, current, witness)
    assert code == 1 and out.count("is FORGED") == 1 and "not a key of the hub's keyring" in out

    # unreadable inputs are read errors
    assert witness_check(capsys, jwks_file, tmp_path / "absent.jsonl")[0] == 2
    assert witness_check(capsys, witness, witness)[0] == 2  # not a JWKS
    private = {"keys": [{**exported["keys"][0], "d": "secret"}]}
    current.write_text(json.dumps(private))
    assert witness_check(capsys, current, witness)[0] == 2


def test_a_witness_detects_a_forged_signature_a_fork_and_time_running_backwards(
    hub: Hub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jwks_file, witness = exported_witness(hub, capsys, tmp_path)
    real = parse_checkpoint(witness.read_text().splitlines()[0])
    assert witness_check(capsys, jwks_file, witness)[0] == 0

    # an impostor key claiming the hub's kid
    impostor = ECKey.generate_key("P-256")
    header = {"alg": "ES256", "kid": real.kid, "typ": "xinlian-audit-checkpoint"}
    payload = {"at": format_time(real.at + dt.timedelta(seconds=5)), "hash": "ab" * 32, "iss": "x", "seq": 12, "v": 1}
    forged = tmp_path / "forged.jsonl"
    forged.write_text(jws.serialize_compact(header, json.dumps(payload).encode(), impostor, algorithms=["ES256"]) + "\n")
    code, out = witness_check(capsys, jwks_file, witness, forged)
    assert code == 1 and "forged.jsonl:1 is FORGED: its signature does not verify" in out
    assert "newest checkpoint: entry 8" in out  # the forged one counts for nothing

    # a fork: the hub's own key signs another history of entry 8 (a rewrite re-signed)
    keyring = Keyring.load(hub.data_dir)
    assert keyring is not None
    other = sign_checkpoint(keyring, 8, "ef" * 32, issuer="x", at=real.at + dt.timedelta(minutes=1))
    fork = tmp_path / "fork.jsonl"
    fork.write_text(other.to_line() + "\n")
    code, out = witness_check(capsys, jwks_file, witness, fork)
    assert code == 1 and "FORK at entry 8" in out and "FORGED" not in out
    # the same checkpoint twice is no fork
    assert witness_check(capsys, jwks_file, witness, witness)[0] == 0

    # a later entry anchored at an earlier time than an earlier entry
    backwards = sign_checkpoint(keyring, 10, "12" * 32, issuer="x", at=real.at - dt.timedelta(seconds=30))
    fork.write_text(backwards.to_line() + "\n")
    code, out = witness_check(capsys, jwks_file, witness, fork)
    assert code == 1 and "NOT MONOTONIC" in out and "anchors entry 10" in out
    forward = sign_checkpoint(keyring, 10, "12" * 32, issuer="x", at=real.at + dt.timedelta(seconds=30))
    fork.write_text(forward.to_line() + "\n")
    assert witness_check(capsys, jwks_file, witness, fork)[0] == 0


# --- the writer inside a running hub ----------------------------------------------------------


def test_a_running_hub_checkpoints_at_its_interval_and_at_shutdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    directory = checkpoint_directory(tmp_path)

    def newest_seq() -> int:
        keyring = Keyring.load(tmp_path)
        newest = latest_valid(read_checkpoints(directory), keyring) if keyring is not None else None
        return newest.seq if newest is not None else 0

    def head(running) -> int:  # type: ignore[no-untyped-def]
        async def read(store: Store) -> int:
            return (await AuditTrail(store).tail(1))[0].seq

        return int(running.on_store(read))

    with running_hub(tmp_path, legal_persons=12, natural_persons=3, audit_checkpoint_interval=0.2) as running:
        for _ in range(3):
            assert running.query("{ __typename }").status_code == 200
        first = head(running)  # each answer came after its entry was committed
        wait_until(lambda: newest_seq() >= first, seconds=10, what="a periodic checkpoint of the requests")

        # stop the periodic task (on the hub's loop): what follows can only be anchored at shutdown
        writer = running.runtime.checkpoints
        task = writer._task
        assert task is not None
        task.get_loop().call_soon_threadsafe(task.cancel)
        wait_until(task.done, what="the periodic checkpoint task to stop")
        for _ in range(2):
            assert running.query("{ __typename }").status_code == 200
        last = head(running)
        assert last > first and newest_seq() < last

    assert newest_seq() == last  # the final checkpoint, written at shutdown after the trail flushed
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    capsys.readouterr()
    code = main(["audit", "verify", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"audit chain intact: {last} entries" in out and f"anchored: entries 1-{last}" in out
    assert "NOT YET ANCHORED" not in out and "audit trail intact" in out
    assert f"head seal: entry {last}" in out


def test_entries_forged_into_a_running_hubs_store_are_reported_and_never_checkpointed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)

    async def forge(store: Store) -> int:  # an insider with write access to the store, no keys
        async with store.engine.begin() as conn:
            last = (await conn.execute(text("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"))).one()
            entry = make_entry(last.seq + 1, outcome="ok", released=[])
            content = entry.canonical_content()
            await conn.execute(
                text("INSERT INTO audit_entries (seq, at, request_id, client_id, content, prev_hash, hash) "
                     "VALUES (:s, :a, :r, :c, :content, :p, :h)"),
                {"s": last.seq + 1, "a": format_time(entry.at), "r": entry.indexed_request_id,
                 "c": entry.indexed_client_id, "content": content, "p": last.hash, "h": chain_hash(last.hash, content)},
            )
            for subject in SUBJECTS:
                await conn.execute(text("INSERT INTO audit_subjects (subject, seq) VALUES (:x, :s)"),
                                   {"x": subject, "s": last.seq + 1})
        return int(last.seq + 1)

    with running_hub(tmp_path, legal_persons=12, natural_persons=3, audit_checkpoint_interval=0.2) as running:
        assert running.query("{ __typename }").status_code == 200
        writer = running.runtime.checkpoints
        wait_until(lambda: writer.last is not None and writer.last.seq == 1, seconds=10, what="a checkpoint of entry 1")
        forged = running.on_store(forge)
        for _ in range(2):  # the hub keeps answering, and writes on after the forged entry
            assert running.query("{ __typename }").status_code == 200
        wait_until(lambda: writer.problem is not None, seconds=10, what="the checkpoint writer to refuse")

    keyring = Keyring.load(tmp_path)
    newest = latest_valid(read_checkpoints(checkpoint_directory(tmp_path)), keyring) if keyring else None
    assert newest is not None and newest.seq == forged - 1
    capsys.readouterr()
    code = main(["audit", "verify", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"audit trail APPENDED: entry {forged} carry no seal by the hub" in out
    assert f"covers entries {forged + 1}-{forged + 2}" in out
