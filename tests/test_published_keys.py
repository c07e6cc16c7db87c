"""Several hosts, one store: each host's private keys stay on its disk; the public halves are published.

Two "hosts" are two data directories (two keyrings) sharing ONE hub store — an SQLite file and a
real PostgreSQL database — and one cluster secret (configuration, not the store). A token, a head
seal or a checkpoint signed by host A's keyring verifies on host B; a rotation on A reaches B; a
forged row never overrides a local key; an unknown kid re-reads the published keys at most once a
second. A key row written by someone who can write the store but lacks the cluster secret (or
holds another) is not accepted — for tokens, seals or checkpoints — and without a secret no host
accepts another's keys. The last tests run two real hubs on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select, text

from audit_fixture import make_entry
from auth_fixture import AUDIENCE, ISSUER, auth_app, settings_for, unb64
from hub_fixture import wait_until
from servers import serve_app
from xinlian.hub.audit.chain_writer import EngineChainWriter
from xinlian.hub.audit.checkpoint import parse_checkpoint, sign_checkpoint, verify_signature
from xinlian.hub.audit.entry import format_time
from xinlian.hub.audit.seal import HeadSealer
from xinlian.hub.audit.trail import AuditTrail
from xinlian.hub.audit.verify import verify_trail
from xinlian.hub.auth import AccessTokenIssuer, BearerValidator, ClientRegistry, InvalidToken
from xinlian.hub.auth.published_keys import PublishedKeys
from xinlian.hub.auth.revocation import RevocationList
from xinlian.hub.cli import main
from xinlian.hub.store import Store
from xinlian.hub.store.models import ChangeGeneration
from xinlian.keys.keyring import Keyring
from xinlian.keys.published import PublishedKey, endorsement, public_members
from xinlian.keys.rotation import rotate

UTC = dt.timezone.utc
SECRET_TEXT = "6c0b3e5f2d9a41c8b7e2f10a9d3c4b5e-cluster"  # what XINLIAN_CLUSTER_SECRET holds on every host
SECRET = SECRET_TEXT.encode()
OTHER_SECRET = b"another-districts-secret-0123456789abcdef"


@dataclasses.dataclass
class Host:
    """One hub host: its own data directory and keyring, the store's published keys in memory."""

    name: str
    data_dir: Path
    keyring: Keyring
    published: PublishedKeys

    @property
    def kid(self) -> str:
        return self.keyring.kid

    def issue(self, client_id: str = "bank-xc") -> str:
        issuer = AccessTokenIssuer(self.keyring, ISSUER, AUDIENCE, 300)
        return issuer.issue(client_id, "bank", "credit:public").access_token

    def validator(self, store: Store) -> BearerValidator:
        return BearerValidator(self.keyring, ISSUER, AUDIENCE, revocations=RevocationList(store))


async def start_host(name: str, root: Path, store: Store, secret: bytes | None = SECRET, **published: Any) -> Host:
    """What a hub does at start-up: load its keyring, publish it (endorsed with the cluster secret
    `secret`), verify with the union."""
    keyring = Keyring.load_or_create(root / name, reload_interval=0)
    keys = PublishedKeys(store, secret, **published)
    await keys.publish(keyring, name)
    keyring.include_published(keys)
    return Host(name, root / name, keyring, keys)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url)
    try:
        yield opened
    finally:
        await opened.close()


def junk_token(kid: str) -> str:
    def part(data: Any) -> str:
        raw = json.dumps(data).encode() if not isinstance(data, bytes) else data
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return ".".join([part({"alg": "ES256", "typ": "at+jwt", "kid": kid}), part({"sub": "x"}), part(b"\x01" * 64)])


# --------------------------------------------------------------------------- tokens and JWKS


async def test_a_token_signed_on_host_a_is_accepted_on_host_b(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)

    principal = await b.validator(store).validate_async(a.issue())

    assert principal.client_id == "bank-xc"
    assert b.keyring.signing_pair()[0] == b.kid != a.kid  # signing stays local
    assert b.keyring.key_status(a.kid) == "active" and b.keyring.published_host(a.kid) == "host-a"
    assert b.keyring.published_host(b.kid) is None
    assert not (b.data_dir / "keys" / f"{a.kid}.pem").exists()  # private keys never travel


async def test_a_freshly_started_hosts_tokens_are_accepted_before_any_refresh(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)  # started after a: a has not read b's keys yet
    assert a.keyring.key_status(b.kid) is None

    principal = await a.validator(store).validate_async(b.issue("tax-1"))

    assert principal.client_id == "tax-1"
    assert a.published.lookups == 1  # the unknown kid re-read the published keys once


async def test_host_bs_jwks_holds_host_as_keys_with_public_members_only(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)

    jwks = b.keyring.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [b.kid, a.kid]  # local keys first
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    history = {k["kid"]: k for k in b.keyring.history_jwks()["keys"]}
    assert history[a.kid]["host"] == "host-a" and "host" not in history[b.kid]
    assert history[a.kid]["created"].endswith("Z") and history[a.kid]["retired"] is None

    async with store.session() as session:
        rows = (await session.execute(text("SELECT kid, jwk, alg, host FROM published_keys ORDER BY host"))).all()
    assert [(r.kid, r.alg, r.host) for r in rows] == [(a.kid, "ES256", "host-a"), (b.kid, "ES256", "host-b")]
    for row in rows:
        assert set(json.loads(row.jwk)) == {"kty", "crv", "x", "y"}  # never "d"
    private = a.keyring.signing_key.as_dict(private=True)["d"]
    assert private not in json.dumps([tuple(r) for r in rows])


async def test_a_rotation_on_a_is_seen_by_b_after_a_refresh(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)
    before = a.issue()
    old = a.kid

    done = rotate(a.data_dir, grace=60)
    assert await a.published.publish(a.keyring, "host-a") == 2  # the retired key and the new one
    assert b.keyring.key_status(done.new_kid) is None  # b has not re-read the table yet

    await b.published.refresh()  # what the change feed does when `published_keys` changes

    assert b.keyring.key_status(done.new_kid) == "active"
    assert b.keyring.key_status(old) == "retired-verifying"
    assert {old, done.new_kid, b.kid} == set(b.keyring.verification_keys())
    assert b.keyring.verification_key(old) is not None
    validator = b.validator(store)
    assert (await validator.validate_async(before)).client_id == "bank-xc"  # inside its grace
    assert (await validator.validate_async(a.issue())).client_id == "bank-xc"

    rotate(a.data_dir, grace=0)  # a compromised key: stops at once, everywhere
    await a.published.publish(a.keyring, "host-a")
    await b.published.refresh()
    assert b.keyring.key_status(done.new_kid) == "expired"
    assert done.new_kid not in b.keyring.verification_keys() and b.keyring.verification_key(done.new_kid) is None
    assert b.keyring.signing_pair()[0] == b.kid  # b never signs with a's keys


async def test_publishing_is_idempotent_and_announced_on_the_change_feed(store: Store, tmp_path: Path) -> None:
    async def generation() -> int:
        async with store.session() as session:
            found = await session.scalar(select(ChangeGeneration.generation).where(ChangeGeneration.topic == "published_keys"))
        assert found is not None
        return int(found)

    start = await generation()
    a = await start_host("host-a", tmp_path, store)
    published = await generation()
    assert published > start

    again = PublishedKeys(store, SECRET)  # a second worker of the same host, or a restart
    assert await again.publish(a.keyring, "host-a") == 0
    assert await generation() == published  # nothing written: nobody is woken
    unconfigured = PublishedKeys(store)  # e.g. a shell without the secret: leaves the endorsements alone
    assert await unconfigured.publish(a.keyring, "host-a") == 0
    assert await generation() == published

    rotate(a.data_dir, grace=30)
    assert await again.publish(a.keyring, "host-a") == 2
    assert await generation() > published


# --------------------------------------------------------------------------- audit seals and checkpoints


async def test_a_checkpoint_signed_by_a_verifies_on_b(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)
    checkpoint = sign_checkpoint(a.keyring, 8, "ab" * 32, issuer=ISSUER)

    assert verify_signature(checkpoint, b.keyring) is None
    assert verify_signature(checkpoint, b.published) is None  # a verifier with no keyring of its own
    alone = Keyring.load_or_create(tmp_path / "host-c")  # not told about the published keys
    assert verify_signature(checkpoint, alone) is not None

    rotate(a.data_dir, grace=0)  # the key's life ends now: a checkpoint it signed earlier still counts
    await a.published.publish(a.keyring, "host-a")
    await b.published.refresh()
    assert verify_signature(checkpoint, b.keyring) is None
    later = dataclasses.replace(checkpoint, at=dt.datetime.now(UTC) + dt.timedelta(minutes=5))
    assert "not a key of the hub's keyring in service" in (verify_signature(later, b.keyring) or "")


async def test_hosts_writing_one_audit_trail_keep_one_sealed_run(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)
    await a.published.refresh()  # what the change feed does once b has published
    seq = 0
    for host in (a, b, a, b):  # batches by each host in turn, each sealing the head with its own key
        trail = AuditTrail(store, sealer=HeadSealer(host.keyring, ISSUER))
        for _ in range(3):
            seq += 1
            await trail.record(make_entry(seq))
        await trail.stop()

    report = await verify_trail(store, [], b.keyring)

    assert report.ok, report.findings
    assert report.seal is not None and report.seal.seal is not None
    assert (report.sealed_seq, report.seal.seal.run_from, report.seal.seal.kid) == (12, 1, b.kid)
    assert (await verify_trail(store, [], a.keyring)).ok


async def test_a_sealer_learns_a_new_hosts_key_before_judging_its_seal(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    c = await start_host("host-c", tmp_path, store)  # started after a; a has not heard yet
    trail = AuditTrail(store, sealer=HeadSealer(c.keyring, ISSUER))
    await trail.record(make_entry(1))
    await trail.stop()
    async with store.session() as session:
        jws = await session.scalar(text("SELECT jws FROM audit_head_seal"))
    assert parse_checkpoint(jws).kid == c.kid and a.keyring.key_status(c.kid) is None

    await HeadSealer(a.keyring, ISSUER).know_signer(jws)

    assert a.keyring.key_status(c.kid) == "active"


@pytest.mark.parametrize("writer", ["the store's own", "engine"])
async def test_every_chain_writer_learns_a_new_hosts_key_before_judging_its_seal(
    writer: str, store: Store, tmp_path: Path
) -> None:
    a = await start_host("host-a", tmp_path, store)
    c = await start_host("host-c", tmp_path, store)  # started after a; a has not heard yet

    async def batch(host: Host, first: int) -> None:
        trail = AuditTrail(store, sealer=HeadSealer(host.keyring, ISSUER))
        if writer == "engine":  # the writer of a store that is neither an SQLite file nor asyncpg
            trail._chain = EngineChainWriter(store, trail.sealer)
        for seq in range(first, first + 3):
            await trail.record(make_entry(seq))
        await trail.stop()

    await batch(c, 1)
    assert a.keyring.key_status(c.kid) is None
    await batch(a, 4)  # a's writer meets c's seal: it looks c's key up instead of starting a new run

    assert a.published.lookups == 1 and a.keyring.key_status(c.kid) == "active"
    report = await verify_trail(store, [], a.keyring)
    assert report.ok, report.findings
    assert report.seal is not None and report.seal.seal is not None
    assert (report.sealed_seq, report.seal.seal.run_from, report.seal.seal.kid) == (6, 1, a.kid)


# --------------------------------------------------------------------------- forged rows


async def _insert_row(store: Store, *, endorse_with: bytes | None = None, **values: Any) -> None:
    """Write a `published_keys` row as anyone with write access to the store could: not endorsed
    (""), unless `endorse_with` names the secret to endorse it with (a host's, or another)."""
    now = dt.datetime.now(UTC).replace(microsecond=0)
    row = {"alg": "ES256", "host": "mallory", "signing": True, "created": now - dt.timedelta(days=1),
           "retired": None, "verify_until": None, "published_at": now, "endorsement": "", **values}
    if endorse_with is not None:
        stated = PublishedKey(
            kid=row["kid"], key=ECKey.import_key(json.loads(row["jwk"])), host=row["host"], created=row["created"],
            retired=row["retired"], verify_until=row["verify_until"], signing=row["signing"], alg=row["alg"],
        )
        row["endorsement"] = endorsement(endorse_with, stated)
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM published_keys WHERE kid = :kid"), {"kid": row["kid"]})
        await conn.execute(
            text("INSERT INTO published_keys (kid, jwk, alg, host, signing, created, retired, verify_until, "
                 "published_at, endorsement) VALUES (:kid, :jwk, :alg, :host, :signing, :created, :retired, "
                 ":verify_until, :published_at, :endorsement)"),
            row,
        )


async def test_a_forged_row_for_a_local_kid_does_not_override_the_local_key(store: Store, tmp_path: Path) -> None:
    b = await start_host("host-b", tmp_path, store)
    own = b.issue()
    long_ago = dt.datetime(2020, 1, 1, tzinfo=UTC)
    # the same kid, claimed retired long ago by another host (one that holds the secret: endorsed)
    await _insert_row(store, kid=b.kid, jwk=json.dumps(public_members(b.keyring.signing_key)),
                      retired=long_ago, verify_until=long_ago, signing=False, endorse_with=SECRET)
    await b.published.refresh()
    assert b.published.get(b.kid) is not None  # the row was read ...
    assert b.keyring.key_status(b.kid) == "active"  # ... and the local key won
    assert b.keyring.published_host(b.kid) is None
    assert (await b.validator(store).validate_async(own)).client_id == "bank-xc"
    assert [k["kid"] for k in b.keyring.history_jwks()["keys"]].count(b.kid) == 1

    # the same kid with another key (an attacker's): refused outright, and the local key still verifies
    attacker = ECKey.generate_key("P-256", private=True)
    await _insert_row(store, kid=b.kid, jwk=json.dumps(public_members(attacker)), endorse_with=SECRET)
    await b.published.refresh()
    assert b.published.get(b.kid) is None
    local = b.keyring.verification_keys()[b.kid]
    assert public_members(local) == public_members(b.keyring.signing_key)


@pytest.mark.parametrize(
    "forge",
    [
        lambda key: {"kid": "not-the-thumbprint", "jwk": json.dumps(public_members(key))},
        lambda key: {"kid": key.thumbprint(), "jwk": json.dumps(key.as_dict(private=True))},  # holds "d"
        lambda key: {"kid": key.thumbprint(), "jwk": json.dumps(public_members(key)), "alg": "HS256"},
        lambda key: {"kid": key.thumbprint(), "jwk": "{not json"},
    ],
    ids=["kid-not-thumbprint", "private-member", "wrong-alg", "not-json"],
)
async def test_malformed_published_rows_are_ignored(forge: Any, store: Store, tmp_path: Path) -> None:
    b = await start_host("host-b", tmp_path, store)
    key = ECKey.generate_key("P-256", private=True)
    row = forge(key)
    # malformed whether endorsed or not: even a host holding the secret cannot publish such a row
    for endorse_with in (None, SECRET) if row["jwk"] != "{not json" else (None,):
        await _insert_row(store, **row, endorse_with=endorse_with)
        await b.published.refresh()
        assert b.published.get(row["kid"]) is None
        assert row["kid"] in b.published.ignored()
        assert row["kid"] not in b.keyring.verification_keys()


# --------------------------------------------------------------------------- endorsement: the cluster secret


def _stored_seal(jws: str | None) -> tuple[str, int | None]:
    assert jws is not None
    seal = parse_checkpoint(jws)
    return seal.kid, seal.run_from


async def _seal_jws(store: Store) -> str | None:
    async with store.session() as session:
        return await session.scalar(text("SELECT jws FROM audit_head_seal"))


async def _endorsement_of(store: Store, kid: str) -> str:
    async with store.session() as session:
        found = await session.scalar(text("SELECT endorsement FROM published_keys WHERE kid = :kid"), {"kid": kid})
    assert found is not None
    return str(found)


FORGERIES = {
    "not-endorsed": {},
    "junk-endorsement": {"endorsement": "ab" * 32},
    "another-secret": {"endorse_with": OTHER_SECRET},
}


@pytest.mark.parametrize("forged", sorted(FORGERIES))
async def test_a_key_written_into_the_store_without_the_secret_signs_nothing_the_hosts_accept(
    forged: str, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="xinlian.keys")
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)
    trail = AuditTrail(store, sealer=HeadSealer(b.keyring, ISSUER))
    for seq in (1, 2, 3):
        await trail.record(make_entry(seq))
    await trail.stop()
    # someone who can write the store: a key pair of their own, its public half a well-formed row
    # (valid EC P-256 JWK, kid = its thumbprint, alive, signing) claiming to be host a's
    mallory = Keyring.load_or_create(tmp_path / "mallory", reload_interval=0)
    await _insert_row(store, kid=mallory.kid, jwk=json.dumps(public_members(mallory.signing_key)), host="host-a",
                      **FORGERIES[forged])

    # tokens: refused on every host, even after the unknown kid made them re-read the table
    token = AccessTokenIssuer(mallory, ISSUER, AUDIENCE, 300).issue("bank-xc", "bank", "credit:public").access_token
    for host in (a, b):
        with pytest.raises(InvalidToken, match="unknown key id"):
            await host.validator(store).validate_async(token)
        assert host.published.lookups == 1 and host.published.get(mallory.kid) is None
        assert host.keyring.key_status(mallory.kid) is None and host.keyring.published_host(mallory.kid) is None
        assert mallory.kid not in {k["kid"] for k in host.keyring.jwks()["keys"]}
        assert mallory.kid not in {k["kid"] for k in host.keyring.history_jwks()["keys"]}
        assert mallory.kid in host.published.ignored()

    # checkpoints: not the hub's
    checkpoint = sign_checkpoint(mallory, 3, "cd" * 32, issuer=ISSUER)
    assert "not a key of the hub's keyring" in (verify_signature(checkpoint, b.keyring) or "")
    assert verify_signature(checkpoint, b.published) is not None

    # head seals: entries appended and sealed with the key, continuing b's run, are caught
    mallory.include_published(b.published)  # so its sealer takes b's seal as valid: run_from stays 1
    forged_trail = AuditTrail(store, sealer=HeadSealer(mallory, ISSUER))
    for seq in (4, 5):
        await forged_trail.record(make_entry(seq))
    await forged_trail.stop()
    assert _stored_seal(await _seal_jws(store)) == (mallory.kid, 1)
    for host in (a, b):
        report = await verify_trail(store, [], host.keyring)
        assert not report.ok and report.sealed_seq == 0
        assert [f for f in report.findings if f.startswith("head seal FORGED")] == [
            f"head seal FORGED: signed with key {mallory.kid!r}, which is not a key of the hub's keyring in service "
            f"at {format_time(parse_checkpoint(await _seal_jws(store) or '').at)}"
        ], report.findings

    # the hub's next batch does not continue the forged run: it starts its own
    trail = AuditTrail(store, sealer=HeadSealer(a.keyring, ISSUER))
    await trail.record(make_entry(6))
    await trail.stop()
    assert _stored_seal(await _seal_jws(store)) == (a.kid, 6)
    report = await verify_trail(store, [], b.keyring)
    assert report.sealed_seq == 6 and any("APPENDED: entries 1-5" in f for f in report.findings)

    # logged once per process (warning, naming the kid and the claimed host), never the secret
    await b.published.refresh()
    await b.published.refresh()
    warned = [r.getMessage() for r in caplog.records if mallory.kid in r.getMessage()]
    assert len(warned) == 2 and all(r.levelno == logging.WARNING for r in caplog.records if mallory.kid in r.getMessage())
    assert all("'host-a'" in message and "endorsement" in message for message in warned)
    assert SECRET_TEXT not in caplog.text and OTHER_SECRET.decode() not in caplog.text


async def test_without_a_secret_no_host_accepts_another_hosts_key(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start_host("host-a", tmp_path, store)  # with the secret: its rows are endorsed
    caplog.set_level(logging.INFO, logger="xinlian.keys")
    b = await start_host("host-b", tmp_path, store, secret=None)

    assert not b.published.endorses and b.published.published() == {}
    with pytest.raises(InvalidToken, match="unknown key id"):
        await b.validator(store).validate_async(a.issue())
    assert b.published.lookups == 0  # nothing published could be accepted: no look at the store
    assert (await b.validator(store).validate_async(b.issue())).client_id == "bank-xc"  # its own keys, as ever
    assert [k["kid"] for k in b.keyring.jwks()["keys"]] == [b.kid]
    assert [k["kid"] for k in b.keyring.history_jwks()["keys"]] == [b.kid]
    checkpoint = sign_checkpoint(a.keyring, 1, "ab" * 32, issuer=ISSUER)
    assert verify_signature(checkpoint, b.keyring) is not None and verify_signature(checkpoint, b.published) is not None
    with pytest.raises(InvalidToken, match="unknown key id"):  # and b's unendorsed rows count nowhere
        await a.validator(store).validate_async(b.issue())
    assert await _endorsement_of(store, b.kid) == "" and len(await _endorsement_of(store, a.kid)) == 64

    # a's seal is not b's: b starts its own run, exactly as a single host always did
    for host, seq in ((a, 1), (b, 2)):
        trail = AuditTrail(store, sealer=HeadSealer(host.keyring, ISSUER))
        await trail.record(make_entry(seq))
        await trail.stop()
    assert _stored_seal(await _seal_jws(store)) == (b.kid, 2)

    await b.published.refresh()
    told = [r for r in caplog.records if "XINLIAN_CLUSTER_SECRET" in r.getMessage() and r.levelno == logging.INFO]
    assert len(told) == 1 and told[0].levelno == logging.INFO and "'host-a'" in told[0].getMessage()


async def test_setting_the_secret_later_endorses_the_hosts_own_rows(store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store, secret=None)  # published before the secret was set
    b = await start_host("host-b", tmp_path, store)
    token = a.issue()
    with pytest.raises(InvalidToken, match="unknown key id"):
        await b.validator(store).validate_async(token)
    assert await _endorsement_of(store, a.kid) == ""

    restarted = PublishedKeys(store, SECRET)  # host a's hub restarted with XINLIAN_CLUSTER_SECRET
    assert await restarted.publish(a.keyring, "host-a") == 1  # the statement is unchanged; the endorsement is new
    endorsed_row = await _endorsement_of(store, a.kid)
    assert len(endorsed_row) == 64 and int(endorsed_row, 16) >= 0
    assert await restarted.publish(a.keyring, "host-a") == 0
    assert await PublishedKeys(store).publish(a.keyring, "host-a") == 0  # a process without it leaves it alone
    assert await _endorsement_of(store, a.kid) == endorsed_row

    await b.published.refresh()
    assert (await b.validator(store).validate_async(token)).client_id == "bank-xc"
    assert b.keyring.published_host(a.kid) == "host-a"

    # a host given another secret (a mistake) rewrites the row with it: the other hosts stop accepting it
    assert await PublishedKeys(store, OTHER_SECRET).publish(a.keyring, "host-a") == 1
    await b.published.refresh()
    assert b.keyring.key_status(a.kid) is None


@pytest.mark.parametrize(
    "change",
    [
        {"retired": None, "verify_until": None, "signing": True},  # un-retire the compromised key
        {"verify_until": "future"},  # lengthen its grace
        {"created": "long ago"},  # backdate it, for checkpoints dated before it existed
        {"host": "host-b"},  # pass it off as another host's
    ],
    ids=["un-retired", "grace-lengthened", "backdated", "other-host"],
)
async def test_changing_what_an_endorsed_row_states_voids_it(change: dict[str, Any], store: Store, tmp_path: Path) -> None:
    a = await start_host("host-a", tmp_path, store)
    b = await start_host("host-b", tmp_path, store)
    old = a.kid
    rotate(a.data_dir, grace=0)  # a compromised key: stops at once
    await a.published.publish(a.keyring, "host-a")
    await b.published.refresh()
    assert b.keyring.key_status(old) == "expired"

    values = {**change}
    if values.get("verify_until") == "future":
        values["verify_until"] = dt.datetime.now(UTC) + dt.timedelta(days=1)
    if values.get("created") == "long ago":
        values["created"] = dt.datetime(2020, 1, 1, tzinfo=UTC)
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    async with store.engine.begin() as conn:
        await conn.execute(text(f"UPDATE published_keys SET {assignments} WHERE kid = :kid"), {**values, "kid": old})
    await b.published.refresh()

    assert b.published.get(old) is None and b.keyring.key_status(old) is None
    assert old in b.published.ignored()


# --------------------------------------------------------------------------- unknown kids


async def test_unknown_kids_reread_the_store_at_most_once_a_second(store: Store, tmp_path: Path) -> None:
    now = [1000.0]
    b = await start_host("host-b", tmp_path, store, clock=lambda: now[0])
    validator = b.validator(store)
    reads = b.published.refreshes

    async def refused(kid: str) -> str:
        with pytest.raises(InvalidToken) as caught:
            await validator.validate_async(junk_token(kid))
        return caught.value.reason

    assert {await refused(f"junk-{i}") for i in range(20)} == {"unknown key id"}
    assert await asyncio.gather(*(refused(f"flood-{i}") for i in range(50))) == ["unknown key id"] * 50
    assert b.published.lookups == 1 and b.published.refreshes == reads + 1

    a = await start_host("host-a", tmp_path, store)  # a new host publishes within the same second
    token = a.issue()
    assert await refused(a.kid) == "unknown key id"  # the interval's one look is spent
    assert b.published.lookups == 1

    now[0] += 1.01
    assert (await validator.validate_async(token)).client_id == "bank-xc"
    assert b.published.lookups == 2
    assert (await validator.validate_async(token)).client_id == "bank-xc"  # known now: no more looks
    assert b.published.lookups == 2
    assert await refused("x" * 500) == "unknown key id"  # a kid no key can have: no look at all
    assert b.published.lookups == 2


async def test_an_unreadable_store_refuses_the_unknown_kid_without_raising(store: Store, tmp_path: Path) -> None:
    b = await start_host("host-b", tmp_path, store)
    a = await start_host("host-a", tmp_path, store)
    broken = PublishedKeys(Store("sqlite+aiosqlite:///" + str(tmp_path / "missing" / "none.db")), SECRET)
    b.keyring.include_published(broken)
    with pytest.raises(InvalidToken, match="unknown key id"):
        await b.validator(store).validate_async(a.issue())
    await broken.store.close()


# --------------------------------------------------------------------------- the CLI


def test_cli_rotate_publishes_list_marks_hosts_and_audit_verify_trusts_published_keys(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
    monkeypatch.setenv("XINLIAN_CLUSTER_SECRET", SECRET_TEXT)
    a_dir, b_dir = tmp_path / "host-a", tmp_path / "host-b"
    a_dir.mkdir()
    b_dir.mkdir()
    a_old = Keyring.load_or_create(a_dir).kid
    b_kid = Keyring.load_or_create(b_dir).kid

    assert main(["keys", "rotate", "--grace", "60", "--json", "--data-dir", str(a_dir)]) == 0  # audited, sealed by a
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["published"] is True and rotated["retired"] == a_old

    assert main(["keys", "list", "--json", "--data-dir", str(b_dir)]) == 0
    listed = {k["kid"]: k for k in map(json.loads, capsys.readouterr().out.splitlines())}
    assert listed[b_kid]["status"] == "active" and "host" not in listed[b_kid]
    assert listed[rotated["active"]]["status"] == "active" and listed[rotated["active"]]["host"]
    assert listed[a_old]["status"] == "retired-verifying" and listed[a_old]["path"] is None
    assert main(["keys", "list", "--data-dir", str(b_dir)]) == 0
    table = capsys.readouterr().out
    assert "keys published by other hosts" in table and rotated["active"] in table.split("published by")[1]
    assert main(["keys", "list", "--json", "--data-dir", str(a_dir)]) == 0  # a's own keys are local on a
    assert {json.loads(line)["kid"] for line in capsys.readouterr().out.splitlines()} == {a_old, rotated["active"]}

    # b checks the trail whose head a sealed, and signs a checkpoint over it
    assert main(["audit", "verify", "--data-dir", str(b_dir)]) == 0
    out = capsys.readouterr().out
    assert f"by key {rotated['active']} (host " in out and "audit trail intact" in out
    assert main(["audit", "checkpoint", "--data-dir", str(b_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["kid"] == b_kid
    assert main(["audit", "keys", "--data-dir", str(b_dir)]) == 0
    exported = {k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]}
    assert exported == {b_kid, a_old, rotated["active"]}


def test_cli_publish_makes_an_unpublished_keyring_trusted(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
    a_dir, b_dir = tmp_path / "host-a", tmp_path / "host-b"
    a_dir.mkdir()
    b_dir.mkdir()
    Keyring.load_or_create(b_dir)
    assert main(["keys", "publish", "--data-dir", str(a_dir)]) == 1  # no keys yet
    a_kid = Keyring.load_or_create(a_dir).kid

    async def seal_by_a() -> None:  # a hub of host a that never published its keys
        store = await Store.open(store_url)
        try:
            trail = AuditTrail(store, sealer=HeadSealer(Keyring.load_or_create(a_dir), ISSUER))
            await trail.record(make_entry(1))
            await trail.stop()
        finally:
            await store.close()

    asyncio.run(seal_by_a())
    monkeypatch.setenv("XINLIAN_CLUSTER_SECRET", SECRET_TEXT)
    assert main(["audit", "verify", "--data-dir", str(b_dir)]) == 1  # b cannot tell a's seal from a forgery
    capsys.readouterr()

    monkeypatch.delenv("XINLIAN_CLUSTER_SECRET")  # published from a shell without the secret: unendorsed
    assert main(["keys", "publish", "--data-dir", str(a_dir)]) == 0
    published = capsys.readouterr()
    assert "1 row(s) written" in published.out and "XINLIAN_CLUSTER_SECRET is not set" in published.err
    monkeypatch.setenv("XINLIAN_CLUSTER_SECRET", SECRET_TEXT)
    assert main(["audit", "verify", "--data-dir", str(b_dir)]) == 1  # still not trusted
    refused = capsys.readouterr()
    assert "head seal FORGED" in refused.out and f"published key {a_kid!r}" in refused.err

    assert main(["keys", "publish", "--data-dir", str(a_dir)]) == 0
    published = capsys.readouterr()
    assert "1 row(s) written" in published.out and "not set" not in published.err  # now endorsed
    assert main(["keys", "publish", "--data-dir", str(a_dir)]) == 0
    assert "0 row(s) written" in capsys.readouterr().out
    assert main(["audit", "verify", "--data-dir", str(b_dir)]) == 0
    assert f"by key {a_kid} (host " in capsys.readouterr().out

    monkeypatch.delenv("XINLIAN_CLUSTER_SECRET")  # b without the secret: its own keys only
    assert main(["audit", "verify", "--data-dir", str(b_dir)]) == 1
    assert "XINLIAN_CLUSTER_SECRET is not set" in capsys.readouterr().err
    assert main(["keys", "list", "--json", "--data-dir", str(b_dir)]) == 0
    listed = capsys.readouterr()
    assert a_kid not in listed.out and "XINLIAN_CLUSTER_SECRET is not set" in listed.err


def _hub_batch(store_url: str, root: Path, name: str, seqs: range) -> str:
    """A hub on host `name` (data directory root/name): publishes its keys, writes and seals one batch."""

    async def run() -> str:
        store = await Store.open(store_url)
        try:
            host = await start_host(name, root, store)
            trail = AuditTrail(store, sealer=HeadSealer(host.keyring, ISSUER))
            for seq in seqs:
                await trail.record(make_entry(seq))
            await trail.stop()
            return host.kid
        finally:
            await store.close()

    return asyncio.run(run())


def _head_seal(store_url: str) -> tuple[str, int | None]:
    async def run() -> tuple[str, int | None]:
        store = await Store.open(store_url)
        try:
            return _stored_seal(await _seal_jws(store))
        finally:
            await store.close()

    return asyncio.run(run())


def test_a_cli_admin_command_after_another_hosts_batch_keeps_one_sealed_run(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
    monkeypatch.setenv("XINLIAN_CLUSTER_SECRET", SECRET_TEXT)
    a_dir, b_dir = tmp_path / "host-a", tmp_path / "host-b"
    a_dir.mkdir()
    a_kid = Keyring.load_or_create(a_dir).kid
    assert main(["keys", "publish", "--data-dir", str(a_dir)]) == 0

    b_kid = _hub_batch(store_url, tmp_path, "host-b", range(1, 4))  # host b's hub: entries 1-3, sealed by b
    assert _head_seal(store_url) == (b_kid, 1)
    # an administrative command on host a (run_admin): its entry continues b's sealed run
    assert main(["clients", "add", "--name", "新城区税务局", "--kind", "department", "--data-dir", str(a_dir)]) == 0
    assert _head_seal(store_url) == (a_kid, 1)
    _hub_batch(store_url, tmp_path, "host-b", range(5, 7))  # b again: entries 5-6
    capsys.readouterr()
    # a rotation on host a (audit_actions), after b's batch: continues the run too
    assert main(["keys", "rotate", "--grace", "60", "--json", "--data-dir", str(a_dir)]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert _head_seal(store_url) == (rotated["active"], 1)

    for data_dir in (a_dir, b_dir):
        assert main(["audit", "verify", "--data-dir", str(data_dir)]) == 0
        out = capsys.readouterr().out
        assert "audit trail intact" in out and "APPENDED" not in out and "TAMPERED" not in out


def test_cli_audit_verify_flags_entries_sealed_with_a_key_written_into_the_store(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
    monkeypatch.setenv("XINLIAN_CLUSTER_SECRET", SECRET_TEXT)
    b_kid = _hub_batch(store_url, tmp_path, "host-b", range(1, 4))

    async def attack() -> str:  # a row for a key of their own, then entries sealed with it
        store = await Store.open(store_url)
        try:
            mallory = Keyring.load_or_create(tmp_path / "mallory", reload_interval=0)
            await _insert_row(store, kid=mallory.kid, jwk=json.dumps(public_members(mallory.signing_key)), host="host-b")
            keys = PublishedKeys(store, SECRET)  # as if b's seal were its own: run_from stays 1
            await keys.refresh()
            mallory.include_published(keys)
            trail = AuditTrail(store, sealer=HeadSealer(mallory, ISSUER))
            for seq in (4, 5):
                await trail.record(make_entry(seq))
            await trail.stop()
            return mallory.kid
        finally:
            await store.close()

    kid = asyncio.run(attack())
    assert _head_seal(store_url) == (kid, 1)

    assert main(["audit", "verify", "--data-dir", str(tmp_path / "host-b")]) == 1
    verified = capsys.readouterr()
    assert f"TAMPERED: head seal FORGED: signed with key {kid!r}" in verified.out
    assert "audit trail intact" not in verified.out
    assert f"published key {kid!r} of host 'host-b' ignored" in verified.err
    assert main(["keys", "list", "--json", "--data-dir", str(tmp_path / "host-b")]) == 0
    listed = capsys.readouterr()
    assert {json.loads(line)["kid"] for line in listed.out.splitlines()} == {b_kid}
    assert f"published key {kid!r} of host 'host-b' not accepted" in listed.err
    assert main(["audit", "keys", "--data-dir", str(tmp_path / "host-b")]) == 0
    assert kid not in capsys.readouterr().out


# --------------------------------------------------------------------------- two real hubs on loopback


@dataclasses.dataclass
class ServedHost:
    url: str
    app: Any
    data_dir: Path

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


@contextlib.contextmanager
def serve_host(root: Path, store_url: str, name: str) -> Iterator[ServedHost]:
    """A hub on its own data directory, with the cluster secret every host shares: it publishes
    its keys at start-up and follows the published keys on the change feed (hub/runtime.py)."""
    data_dir = root / name
    data_dir.mkdir()
    settings = dataclasses.replace(settings_for(data_dir, store_url), cluster_secret=SECRET, change_feed_interval=0.2)
    app = auth_app(settings, key_reload_interval=0.1)
    with serve_app(app) as url:
        yield ServedHost(url, app, data_dir)


async def _client(url: str) -> tuple[str, str]:
    store = await Store.open(url)
    try:
        return await ClientRegistry(store).create("内蒙古银行新城支行", "bank", client_id="bank-xc")
    finally:
        await store.close()


def test_two_hubs_on_two_data_dirs_share_one_store(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id, secret = asyncio.run(_client(store_url))
    with serve_host(tmp_path, store_url, "host-a") as a, serve_host(tmp_path, store_url, "host-b") as b:
        a_kid, b_kid = a.runtime.keyring.kid, b.runtime.keyring.kid
        assert a_kid != b_kid
        wait_until(lambda: a.runtime.keyring.key_status(b_kid) == "active", 5, "host a hearing of host b's key")

        def token(host: ServedHost) -> str:
            response = httpx.post(f"{host.url}/oauth/token", data={"grant_type": "client_credentials"},
                                  auth=(client_id, secret))
            assert response.status_code == 200, response.text
            return response.json()["access_token"]

        def whoami(host: ServedHost, bearer: str) -> httpx.Response:
            return httpx.get(f"{host.url}/whoami", headers={"Authorization": f"Bearer {bearer}"})

        from_a, from_b = token(a), token(b)
        assert unb64(from_a.split(".")[0])["kid"] == a_kid and unb64(from_b.split(".")[0])["kid"] == b_kid
        assert whoami(b, from_a).json()["client_id"] == client_id
        assert whoami(a, from_b).json()["client_id"] == client_id
        jwks = httpx.get(f"{b.url}/.well-known/jwks.json").json()
        assert {k["kid"] for k in jwks["keys"]} == {a_kid, b_kid}

        # a rotation on host a, by the CLI, right after a batch of host b: published at once, and
        # its audit entry continues b's sealed run
        token(b)
        monkeypatch.setenv("XINLIAN_DATABASE_URL", store_url)
        monkeypatch.setenv("XINLIAN_CLUSTER_SECRET", SECRET_TEXT)
        assert main(["keys", "rotate", "--grace", "60", "--json", "--data-dir", str(a.data_dir)]) == 0
        rotated = json.loads(capsys.readouterr().out)
        assert rotated["published"] is True
        wait_until(lambda: b.runtime.keyring.key_status(rotated["active"]) == "active", 5, "host b hearing of it")
        wait_until(lambda: unb64(token(a).split(".")[0])["kid"] == rotated["active"], 5, "host a signing with it")
        assert whoami(b, token(a)).json()["client_id"] == client_id
        assert whoami(b, from_a).json()["client_id"] == client_id  # the retired key, inside its grace
        jwks = httpx.get(f"{b.url}/.well-known/jwks.json").json()
        assert {k["kid"] for k in jwks["keys"]} == {a_kid, rotated["active"], b_kid}

        # both hosts sealed the one audit trail (token requests are audited): one sealed run
        token(b)
        for host in (b, a):
            assert main(["audit", "verify", "--data-dir", str(host.data_dir)]) == 0, capsys.readouterr().out
            out = capsys.readouterr().out
            assert "audit trail intact" in out and "APPENDED" not in out
