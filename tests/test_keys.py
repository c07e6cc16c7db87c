"""The signing keyring: created once in the data directory, owner-only, reused, verified on load."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from xinlian.keys.keyring import Keyring, KeyringError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def rfc7638_thumbprint(jwk: dict[str, str]) -> str:
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def test_first_load_creates_owner_only_key_files(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)

    keys_dir = tmp_path / "keys"
    assert mode(keys_dir) == 0o700
    files = sorted(p.name for p in keys_dir.iterdir() if not p.name.startswith("."))
    assert files == sorted(["manifest.json", f"{keyring.kid}.pem"])
    for path in keys_dir.iterdir():
        assert mode(path) == 0o600, path
    manifest = json.loads((keys_dir / "manifest.json").read_text())
    assert manifest["signing"] == keyring.kid
    [entry] = manifest["keys"]
    assert entry["alg"] == "ES256" and entry["crv"] == "P-256"
    assert entry["created"].endswith("Z") and entry["retired"] is None


def test_second_load_reuses_the_same_key(tmp_path: Path) -> None:
    first = Keyring.load_or_create(tmp_path)
    pem = tmp_path / "keys" / f"{first.kid}.pem"
    before = (pem.read_bytes(), pem.stat().st_mtime_ns)

    second = Keyring.load_or_create(tmp_path)

    assert second.kid == first.kid
    assert (pem.read_bytes(), pem.stat().st_mtime_ns) == before
    token = jwt.encode({"alg": "ES256", "kid": first.kid}, {"x": 1}, first.signing_key, algorithms=["ES256"])
    assert jwt.decode(token, second.verification_keys()[first.kid], algorithms=["ES256"]).claims == {"x": 1}


def _create_in(path: str) -> str:
    return Keyring.load_or_create(Path(path)).kid


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        kids = set(pool.map(_create_in, [str(tmp_path)] * 8))
    assert len(kids) == 1
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1


def test_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    [jwk] = keyring.jwks()["keys"]
    assert keyring.kid == rfc7638_thumbprint(jwk) == jwk["kid"]


def test_jwks_publishes_public_members_only(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    jwks = keyring.jwks()

    [jwk] = jwks["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    private_scalar = keyring.signing_key.as_dict(private=True)["d"]
    assert private_scalar not in json.dumps(jwks)
    public = KeySet.import_key_set(jwks).get_by_kid(keyring.kid)
    assert not public.is_private
    token = jwt.encode({"alg": "ES256", "kid": keyring.kid}, {"ok": True}, keyring.signing_key, algorithms=["ES256"])
    assert jwt.decode(token, public, algorithms=["ES256"]).claims == {"ok": True}


def test_verification_keys_are_public(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    keys = keyring.verification_keys()
    assert list(keys) == [keyring.kid]
    assert not keys[keyring.kid].is_private
    assert keyring.signing_key.is_private


def test_describe_shows_the_signing_key(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    [key] = keyring.describe()
    assert (key.kid, key.alg, key.status) == (keyring.kid, "ES256", "active")
    assert key.created <= dt.datetime.now(dt.timezone.utc)
    assert key.path == tmp_path.resolve() / "keys" / f"{keyring.kid}.pem"


def test_load_does_not_create(tmp_path: Path) -> None:
    assert Keyring.load(tmp_path) is None
    assert not (tmp_path / "keys").exists()
    created = Keyring.load_or_create(tmp_path)
    loaded = Keyring.load(tmp_path)
    assert loaded is not None and loaded.kid == created.kid


def test_loosened_permissions_are_tightened(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    pem = tmp_path / "keys" / f"{keyring.kid}.pem"
    os.chmod(pem, 0o644)
    os.chmod(tmp_path / "keys", 0o755)
    Keyring.load_or_create(tmp_path)
    assert mode(pem) == 0o600
    assert mode(tmp_path / "keys") == 0o700


def test_a_swapped_key_file_is_refused(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    other = ECKey.generate_key("P-256", private=True)
    (tmp_path / "keys" / f"{keyring.kid}.pem").write_bytes(other.as_pem(private=True))
    with pytest.raises(KeyringError, match="does not match its kid"):
        Keyring.load_or_create(tmp_path)


def test_a_missing_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    (tmp_path / "keys" / f"{keyring.kid}.pem").unlink()
    with pytest.raises(KeyringError, match="cannot read"):
        Keyring.load_or_create(tmp_path)


def test_a_corrupt_manifest_is_refused(tmp_path: Path) -> None:
    Keyring.load_or_create(tmp_path)
    (tmp_path / "keys" / "manifest.json").write_text("{not json")
    with pytest.raises(KeyringError, match="cannot read"):
        Keyring.load_or_create(tmp_path)


def test_key_files_without_a_manifest_are_not_overwritten(tmp_path: Path) -> None:
    keyring = Keyring.load_or_create(tmp_path)
    pem = tmp_path / "keys" / f"{keyring.kid}.pem"
    content = pem.read_bytes()
    (tmp_path / "keys" / "manifest.json").unlink()
    with pytest.raises(KeyringError, match="refusing to generate"):
        Keyring.load_or_create(tmp_path)
    assert pem.read_bytes() == content


def _add_key(keys_dir: Path, retired: str | None, verify_until: str | None) -> str:
    key = ECKey.generate_key("P-256", private=True)
    kid = key.thumbprint()
    (keys_dir / f"{kid}.pem").write_bytes(key.as_pem(private=True))
    os.chmod(keys_dir / f"{kid}.pem", 0o600)
    manifest = json.loads((keys_dir / "manifest.json").read_text())
    manifest["keys"].append(
        {
            "kid": kid,
            "alg": "ES256",
            "crv": "P-256",
            "file": f"{kid}.pem",
            "created": "2026-01-01T00:00:00Z",
            "retired": retired,
            "verify_until": verify_until,
        }
    )
    (keys_dir / "manifest.json").write_text(json.dumps(manifest))
    return kid


def test_manifest_layout_carries_rotation_grace_periods(tmp_path: Path) -> None:
    """A retired key verifies until its grace period ends; the layout needs no change for rotation."""
    current = Keyring.load_or_create(tmp_path).kid
    keys_dir = tmp_path / "keys"
    in_grace = _add_key(keys_dir, retired="2026-01-02T00:00:00Z", verify_until="2999-01-01T00:00:00Z")
    past_grace = _add_key(keys_dir, retired="2026-01-02T00:00:00Z", verify_until="2026-01-03T00:00:00Z")

    keyring = Keyring.load_or_create(tmp_path)

    assert keyring.kid == current
    assert set(keyring.verification_keys()) == {current, in_grace}
    assert {k["kid"] for k in keyring.jwks()["keys"]} == {current, in_grace}
    assert {d.kid: d.status for d in keyring.describe()} == {
        current: "active",
        in_grace: "retired-verifying",
        past_grace: "expired",
    }


# --------------------------------------------------------------------------- rotation and reload


def test_rotation_makes_a_new_signing_key_and_keeps_the_old_one_verifying(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    old = Keyring.load_or_create(tmp_path)
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)

    done = rotate(tmp_path, grace=600)

    assert done.retired_kid == old.kid and done.new_kid != old.kid
    assert before + dt.timedelta(seconds=600) <= done.verify_until <= before + dt.timedelta(seconds=602)
    rotated = Keyring.load_or_create(tmp_path)
    assert rotated.kid == done.new_kid
    assert set(rotated.verification_keys()) == {old.kid, done.new_kid}
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {old.kid, done.new_kid}
    assert {d.kid: d.status for d in rotated.describe()} == {done.new_kid: "active", old.kid: "retired-verifying"}
    assert [d.kid for d in rotated.describe()] == [done.new_kid, old.kid]  # newest first
    for path in (tmp_path / "keys").iterdir():
        assert mode(path) == 0o600, path
    manifest = json.loads((tmp_path / "keys" / "manifest.json").read_text())
    [old_entry] = [e for e in manifest["keys"] if e["kid"] == old.kid]
    assert old_entry["retired"].endswith("Z") and old_entry["verify_until"].endswith("Z")


def test_a_token_signed_before_rotation_verifies_until_the_grace_ends(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    old = Keyring.load_or_create(tmp_path)
    token = jwt.encode({"alg": "ES256", "kid": old.kid}, {"n": 1}, old.signing_key, algorithms=["ES256"])
    done = rotate(tmp_path, grace=60)
    keyring = Keyring.load_or_create(tmp_path)

    assert jwt.decode(token, keyring.verification_keys()[old.kid], algorithms=["ES256"]).claims == {"n": 1}
    after_grace = done.verify_until + dt.timedelta(seconds=1)
    assert old.kid not in keyring.verification_keys(at=after_grace)
    assert keyring.key_status(old.kid, at=after_grace) == "expired"
    assert keyring.key_status(done.new_kid, at=after_grace) == "active"
    assert keyring.key_status("no-such-kid") is None


def test_rotation_with_zero_grace_stops_the_old_key_at_once(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    old = Keyring.load_or_create(tmp_path)
    moment = dt.datetime(2026, 5, 1, 8, 0, 0, tzinfo=dt.timezone.utc)
    done = rotate(tmp_path, grace=0, now=moment)
    assert done.verify_until == moment
    keyring = Keyring.load_or_create(tmp_path)
    assert old.kid not in keyring.verification_keys()
    assert {k["kid"] for k in keyring.jwks()["keys"]} == {done.new_kid}
    assert keyring.key_status(old.kid) == "expired"


def test_a_grace_end_is_rounded_up_to_the_second(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    Keyring.load_or_create(tmp_path)
    moment = dt.datetime(2026, 5, 1, 8, 0, 0, 250_000, tzinfo=dt.timezone.utc)
    done = rotate(tmp_path, grace=10, now=moment)
    assert done.verify_until == dt.datetime(2026, 5, 1, 8, 0, 11, tzinfo=dt.timezone.utc)


def test_rotating_twice_keeps_both_retired_keys_with_their_own_grace(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    first = Keyring.load_or_create(tmp_path).kid
    second = rotate(tmp_path, grace=0).new_kid
    third = rotate(tmp_path, grace=600).new_kid
    keyring = Keyring.load_or_create(tmp_path)
    assert {d.kid: d.status for d in keyring.describe()} == {
        third: "active",
        second: "retired-verifying",
        first: "expired",
    }
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 3  # expired keys stay on disk for the record


def test_rotation_refuses_a_broken_keyring_and_a_missing_one(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    with pytest.raises(KeyringError, match="no keys"):
        rotate(tmp_path, grace=60)
    keyring = Keyring.load_or_create(tmp_path)
    manifest_before = (tmp_path / "keys" / "manifest.json").read_bytes()
    (tmp_path / "keys" / f"{keyring.kid}.pem").write_bytes(ECKey.generate_key("P-256").as_pem(private=True))
    with pytest.raises(KeyringError, match="does not match its kid"):
        rotate(tmp_path, grace=60)
    assert (tmp_path / "keys" / "manifest.json").read_bytes() == manifest_before
    with pytest.raises(ValueError, match="negative"):
        rotate(tmp_path, grace=-1)


def test_a_loaded_keyring_picks_up_a_rotation_after_its_reload_interval(tmp_path: Path) -> None:
    from xinlian.keys.rotation import rotate

    keyring = Keyring.load_or_create(tmp_path, reload_interval=3600)
    old = keyring.kid
    done = rotate(tmp_path, grace=60)

    assert keyring.kid == old  # not looked at yet: within the reload interval
    assert keyring.reload_if_changed(force=True) is True
    assert keyring.kid == done.new_kid
    kid, key = keyring.signing_pair()
    assert kid == done.new_kid and key.thumbprint() == done.new_kid
    assert set(keyring.verification_keys()) == {old, done.new_kid}
    assert keyring.reload_if_changed(force=True) is False  # nothing changed since


def test_the_reload_check_is_throttled_by_the_interval(tmp_path: Path) -> None:
    import time

    from xinlian.keys.rotation import rotate

    keyring = Keyring.load_or_create(tmp_path, reload_interval=0.05)
    done = rotate(tmp_path, grace=60)
    time.sleep(0.1)
    assert keyring.kid == done.new_kid  # any use after the interval reloads


def test_a_broken_manifest_keeps_the_keys_in_use(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keyring = Keyring.load_or_create(tmp_path, reload_interval=3600)
    kid = keyring.kid
    (tmp_path / "keys" / "manifest.json").write_text("{broken")
    assert keyring.reload_if_changed(force=True) is False
    assert keyring.kid == kid and list(keyring.verification_keys()) == [kid]
    assert "not reloaded" in caplog.text
