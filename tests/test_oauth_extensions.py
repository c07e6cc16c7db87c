"""OAuth2 extensions on a real hub: revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414),
private_key_jwt clients (RFC 7523) from the CLI, and signing-key rotation picked up without restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from alembic import command
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import text

from auth_fixture import AUDIENCE, ISSUER, TTL, auth_app, settings_for, unb64
from hub_fixture import wait_until
from servers import serve_app
from xinlian.hub.auth import (
    BearerValidator,
    ClientError,
    ClientRegistry,
    RevocationList,
    RevocationUnavailable,
    revocation_list,
)
from xinlian.hub.cli import main
from xinlian.hub.store import Store
from xinlian.hub.store.engine import alembic_config
from xinlian.keys.keyring import Keyring

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# a 1024-bit RSA key, made once (joserfc warns about its size, rightly: the registry refuses it)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    SMALL_RSA = RSAKey.generate_key(1024).as_dict(private=False)
MEMBERS = {"active", "scope", "client_id", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "kind"}


@dataclass(frozen=True)
class Hub:
    url: str
    data_dir: Path
    secrets: dict[str, str]  # client id -> secret
    bank_key: ECKey  # the private key of the private_key_jwt client "bank-keys"

    def token(self, client_id: str) -> str:
        if client_id == "bank-keys":
            form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": self.assertion()}
            response = httpx.post(f"{self.url}/oauth/token", data={"grant_type": "client_credentials", **form})
        else:
            response = httpx.post(
                f"{self.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, self.secrets[client_id]),
            )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def assertion(self) -> str:
        now = int(time.time())
        claims = {"iss": "bank-keys", "sub": "bank-keys", "aud": ISSUER, "exp": now + 60, "jti": uuid.uuid4().hex}
        return jwt.encode({"alg": "ES256"}, claims, self.bank_key, algorithms=["ES256"])

    def post(self, path: str, caller: str, **form: str) -> httpx.Response:
        if caller == "bank-keys":
            form = {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion": self.assertion()}
            return httpx.post(f"{self.url}{path}", data=form)
        return httpx.post(f"{self.url}{path}", data=form, auth=(caller, self.secrets[caller]))

    def whoami(self, token: str) -> httpx.Response:
        return httpx.get(f"{self.url}/whoami", headers={"Authorization": f"Bearer {token}"})


async def _seed(database_url: str, bank_key: ECKey) -> dict[str, str]:
    store = await Store.open(database_url)
    try:
        registry = ClientRegistry(store)
        secrets = {}
        for client_id, kind in (("bank-xc", "bank"), ("agency-xc", "agency"), ("admin-xc", "admin")):
            secrets[client_id] = (await registry.create(client_id, kind, client_id=client_id))[1]
        await registry.create_with_keys(
            "Bank with keys", "bank", bank_key.as_dict(private=False), client_id="bank-keys"
        )
    finally:
        await store.close()
    return secrets


def running_hub(data_dir: Path) -> Iterator[Hub]:
    settings = settings_for(data_dir)
    bank_key = ECKey.generate_key("P-256", private=True)
    secrets = asyncio.run(_seed(settings.database_url, bank_key))
    with serve_app(auth_app(settings, key_reload_interval=0.1)) as url:
        yield Hub(url, data_dir, secrets, bank_key)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    yield from running_hub(tmp_path_factory.mktemp("oauth-hub"))


@pytest.fixture
def fresh_hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub of its own, for tests that rotate keys."""
    yield from running_hub(tmp_path)


def expired_token(hub: Hub, client_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client_id,
        "client_id": client_id,
        "iat": now - 900,
        "nbf": now - 900,
        "exp": now - 120,
        "jti": uuid.uuid4().hex,
        "scope": "credit:public",
        "kind": "bank",
    }
    kid, key = Keyring.load_or_create(hub.data_dir).signing_pair()
    return jwt.encode({"typ": "at+jwt", "alg": "ES256", "kid": kid}, claims, key, algorithms=["ES256"])


# --------------------------------------------------------------------------- revocation (RFC 7009)


def test_a_client_revokes_its_own_token_and_it_stops_working_at_once(hub: Hub) -> None:
    token = hub.token("bank-xc")
    assert hub.whoami(token).status_code == 200

    response = hub.post("/oauth/revoke", "bank-xc", token=token, token_type_hint="access_token")

    assert response.status_code == 200 and response.json() == {}
    assert response.headers["cache-control"] == "no-store"
    assert hub.whoami(token).json()["error_description"] == "token revoked"
    assert hub.post("/oauth/introspect", "bank-xc", token=token).json() == {"active": False}
    assert hub.post("/oauth/revoke", "bank-xc", token=token).status_code == 200  # again: still fine


def test_a_client_cannot_revoke_another_clients_token(hub: Hub) -> None:
    token = hub.token("bank-xc")
    response = hub.post("/oauth/revoke", "agency-xc", token=token)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The token was not issued to this client.",
    }
    assert hub.whoami(token).status_code == 200
    assert hub.post("/oauth/revoke", "admin-xc", token=token).status_code == 400  # not even an admin


@pytest.mark.parametrize("kind", ["garbage", "expired", "foreign-signature"])
def test_revoking_a_token_that_is_not_valid_is_a_quiet_success(hub: Hub, kind: str) -> None:
    token = {
        "garbage": "not-a-token",
        "expired": expired_token(hub, "bank-xc"),
        "foreign-signature": jwt.encode(
            {"alg": "ES256"}, {"jti": "x"}, ECKey.generate_key("P-256"), algorithms=["ES256"]
        ),
    }[kind]
    response = hub.post("/oauth/revoke", "bank-xc", token=token)
    assert response.status_code == 200 and response.json() == {}


def test_a_private_key_jwt_client_revokes_with_an_assertion(hub: Hub) -> None:
    token = hub.token("bank-keys")
    assert hub.whoami(token).json()["client_id"] == "bank-keys"
    assert hub.post("/oauth/revoke", "bank-keys", token=token).status_code == 200
    assert hub.whoami(token).json()["error_description"] == "token revoked"


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_revocation_and_introspection_need_client_authentication(hub: Hub, path: str) -> None:
    token = hub.token("bank-xc")
    anonymous = httpx.post(f"{hub.url}{path}", data={"token": token})
    wrong = httpx.post(f"{hub.url}{path}", data={"token": token}, auth=("bank-xc", "wrong-secret-wrong-secret"))
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}
    assert hub.whoami(token).status_code == 200


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_malformed_revocation_and_introspection_requests(hub: Hub, path: str) -> None:
    assert hub.post(path, "bank-xc").json()["error"] == "invalid_request"  # no token
    hinted = hub.post(path, "bank-xc", token="x", token_type_hint="id_token")
    assert (hinted.status_code, hinted.json()["error"]) == (400, "unsupported_token_type")
    got = httpx.get(f"{hub.url}{path}")
    assert (got.status_code, got.headers["allow"]) == (405, "POST")


def test_two_hub_processes_agree_on_a_revocation_within_the_refresh_bound(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    bank_key = ECKey.generate_key("P-256", private=True)
    secrets = asyncio.run(_seed(settings.database_url, bank_key))
    with serve_app(auth_app(settings)) as url_a, serve_app(auth_app(settings)) as url_b:
        a, b = Hub(url_a, tmp_path, secrets, bank_key), Hub(url_b, tmp_path, secrets, bank_key)
        token = a.token("bank-xc")
        assert b.whoami(token).status_code == 200  # hub B has read the (empty) revocation list

        assert a.post("/oauth/revoke", "bank-xc", token=token).status_code == 200
        revoked_at = time.monotonic()
        assert a.whoami(token).status_code == 401  # at once where it was revoked
        while b.whoami(token).status_code == 200:
            assert time.monotonic() - revoked_at < 2.0, "hub B still accepts the token after 2 s"
            time.sleep(0.05)
        assert b.whoami(token).json()["error_description"] == "token revoked"


async def test_the_revocation_list_is_shared_through_the_store(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        here = RevocationList(store, refresh_interval=0.2)
        there = RevocationList(store, refresh_interval=0.2)
        assert not await here.is_revoked("t-1") and not await there.is_revoked("t-1")

        now = time.time()
        await here.revoke("t-1", "bank-xc", now + 300)
        await here.revoke("t-1", "bank-xc", now + 300)  # twice is fine
        assert await here.is_revoked("t-1")
        assert not await there.is_revoked("t-1")  # its cache is still fresh
        await asyncio.sleep(0.25)
        assert await there.is_revoked("t-1")

        await here.revoke("long-gone", "bank-xc", now - 3600)  # expired long ago: purged on the next revoke
        await here.revoke("t-2", "bank-xc", now + 300)
        async with store.engine.connect() as conn:
            jtis = set((await conn.execute(text("SELECT jti FROM revoked_tokens"))).scalars())
        assert jtis == {"t-1", "t-2"}
    finally:
        await store.close()


async def test_an_unreadable_revocation_list_fails_closed(tmp_path: Path) -> None:
    unreachable = Store("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    keyring = Keyring.load_or_create(tmp_path)
    try:
        with pytest.raises(RevocationUnavailable):
            await RevocationList(unreachable).is_revoked("anything")
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "b",
            "client_id": "b",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "jti": "j",
            "scope": "credit:public",
            "kind": "bank",
        }
        token = jwt.encode({"typ": "at+jwt", "alg": "ES256", "kid": keyring.kid}, claims, keyring.signing_key)
        with pytest.raises(RevocationUnavailable):
            await BearerValidator(keyring, ISSUER, AUDIENCE, revocations=RevocationList(unreachable)).validate_async(
                token
            )
        with pytest.raises(RuntimeError, match="revocations"):
            await BearerValidator(keyring, ISSUER, AUDIENCE).validate_async(token)
    finally:
        await unreachable.close()


# --------------------------------------------------------------------------- introspection (RFC 7662)


def test_a_client_introspects_its_own_token(hub: Hub) -> None:
    token = hub.token("bank-xc")
    response = hub.post("/oauth/introspect", "bank-xc", token=token)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = unb64(token.split(".")[1])
    assert set(body) == MEMBERS
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert {k: body[k] for k in MEMBERS - {"active", "token_type"}} == {
        k: claims[k] for k in MEMBERS - {"active", "token_type"}
    }
    assert (body["client_id"], body["kind"], body["scope"]) == ("bank-xc", "bank", "credit:public credit:authorized")


def test_another_clients_token_is_inactive_unless_the_caller_is_an_admin(hub: Hub) -> None:
    token = hub.token("bank-xc")
    assert hub.post("/oauth/introspect", "agency-xc", token=token).json() == {"active": False}
    assert hub.post("/oauth/introspect", "bank-keys", token=token).json() == {"active": False}
    as_admin = hub.post("/oauth/introspect", "admin-xc", token=token).json()
    assert as_admin["active"] is True and as_admin["client_id"] == "bank-xc"


@pytest.mark.parametrize("kind", ["garbage", "expired", "unknown-key"])
def test_tokens_that_are_not_valid_are_inactive(hub: Hub, kind: str) -> None:
    token = {
        "garbage": "x.y.z",
        "expired": expired_token(hub, "admin-xc"),
        "unknown-key": jwt.encode(
            {"alg": "ES256", "kid": "k"}, {"a": 1}, ECKey.generate_key("P-256"), algorithms=["ES256"]
        ),
    }[kind]
    assert hub.post("/oauth/introspect", "admin-xc", token=token).json() == {"active": False}


def test_a_private_key_jwt_client_introspects_with_an_assertion(hub: Hub) -> None:
    token = hub.token("bank-keys")
    body = hub.post("/oauth/introspect", "bank-keys", token=token).json()
    assert body["active"] is True and body["sub"] == "bank-keys"


async def _purpose_client(database_url: str) -> str:
    """A bank registered for purpose `intro-review`; its secret."""
    from xinlian.hub.governance.purposes import PurposeRegistry

    store = await Store.open(database_url)
    try:
        await PurposeRegistry(store).define("intro-review", "审查")
        registry = ClientRegistry(store)
        secret = (await registry.create("bank-purpose-xc", "bank", client_id="bank-purpose-xc"))[1]
        await registry.set_purposes("bank-purpose-xc", ["intro-review"])
    finally:
        await store.close()
    return secret


def test_introspection_names_the_purpose_a_token_was_issued_for(fresh_hub: Hub) -> None:
    hub = fresh_hub
    secret = asyncio.run(_purpose_client(settings_for(hub.data_dir).database_url))
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials", "purpose": "intro-review"},
        auth=("bank-purpose-xc", secret),
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert unb64(token.split(".")[1])["purpose"] == "intro-review"
    body = httpx.post(f"{hub.url}/oauth/introspect", data={"token": token}, auth=("bank-purpose-xc", secret)).json()
    assert body["active"] is True and body["purpose"] == "intro-review"
    assert set(body) == MEMBERS | {"purpose"}
    # a token issued without a purpose has no purpose member
    plain = hub.token("bank-xc")
    assert "purpose" not in hub.post("/oauth/introspect", "bank-xc", token=plain).json()


# --------------------------------------------------------------------------- metadata (RFC 8414)


def test_the_metadata_document_describes_the_hub(hub: Hub) -> None:
    response = httpx.get(f"{hub.url}/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert doc["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert doc["response_types_supported"] == []
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    algs = doc["token_endpoint_auth_signing_alg_values_supported"]
    assert "ES256" in algs and "RS256" in algs and "EdDSA" in algs
    assert not any(a == "none" or a.startswith("HS") for a in algs)
    assert {"credit:public", "credit:shared", "credit:authorized", "admin"} <= set(doc["scopes_supported"])
    for name in ("token_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint"):
        local = doc[name].replace(ISSUER, hub.url)
        assert httpx.request("GET" if name == "jwks_uri" else "POST", local).status_code != 404, name


# --------------------------------------------------------------------------- key rotation


def test_rotation_with_grace_on_a_running_hub(fresh_hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    hub = fresh_hub
    before = hub.token("bank-xc")
    old_kid = unb64(before.split(".")[0])["kid"]

    assert main(["keys", "rotate", "--grace", "2", "--json", "--data-dir", str(hub.data_dir)]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["retired"] == old_kid and rotated["grace_seconds"] == 2
    verify_until = dt.datetime.fromisoformat(rotated["verify_until"].replace("Z", "+00:00")).timestamp()
    # the hub looks at the manifest every 0.1 s here (every 2 s by default): wait until it signs
    # with the new key, no restart
    wait_until(lambda: unb64(hub.token("bank-xc").split(".")[0])["kid"] == rotated["active"], 5, "the rotation")
    after = hub.token("bank-xc")
    assert unb64(after.split(".")[0])["kid"] == rotated["active"]
    assert {k["kid"] for k in httpx.get(f"{hub.url}/.well-known/jwks.json").json()["keys"]} == {
        old_kid,
        rotated["active"],
    }
    assert hub.whoami(before).status_code == 200 and hub.whoami(after).status_code == 200
    assert hub.post("/oauth/introspect", "bank-xc", token=before).json()["active"] is True

    while time.time() <= verify_until + 0.2:
        time.sleep(0.1)
    assert hub.whoami(before).json()["error_description"] == "signing key retired (past its grace period)"
    assert hub.post("/oauth/introspect", "bank-xc", token=before).json() == {"active": False}
    assert hub.whoami(after).status_code == 200
    assert [k["kid"] for k in httpx.get(f"{hub.url}/.well-known/jwks.json").json()["keys"]] == [rotated["active"]]

    assert main(["keys", "list", "--json", "--data-dir", str(hub.data_dir)]) == 0
    listed = {k["kid"]: k["status"] for k in map(json.loads, capsys.readouterr().out.splitlines())}
    assert listed == {rotated["active"]: "active", old_kid: "expired"}


def test_the_default_grace_covers_a_whole_token_lifetime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XINLIAN_TOKEN_TTL", str(TTL))
    assert main(["keys", "rotate", "--data-dir", str(tmp_path)]) == 1  # no keys yet
    assert "no keys" in capsys.readouterr().err
    Keyring.load_or_create(tmp_path)
    assert main(["keys", "rotate", "--json", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["grace_seconds"] == TTL + 30
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["KID", "ALG", "CREATED", "VERIFY_UNTIL", "STATUS"]
    assert [line.split()[-1] for line in lines[2:]] == ["active", "retired-verifying"]


# --------------------------------------------------------------------------- private_key_jwt clients


def test_cli_registers_a_client_with_its_public_key_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XINLIAN_DATABASE_URL", raising=False)
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["db", "upgrade", *data]) == 0  # the CLI's client commands never create the store
    capsys.readouterr()
    key = ECKey.generate_key("P-256", private=True)
    public, private = tmp_path / "public.jwk", tmp_path / "private.jwk"
    public.write_text(json.dumps(key.as_dict(private=False)))
    private.write_text(json.dumps(key.as_dict(private=True)))

    add = ["clients", "add", "--name", "内蒙古银行", "--kind", "bank", "--client-id", "bank-nm"]
    assert main([*add, "--jwks-file", str(public), "--json", *data]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["token_endpoint_auth_method"] == "private_key_jwt" and "client_secret" not in added
    assert added["kids"] == [key.thumbprint()]

    assert main(["clients", "list", "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out)["auth"] == "private_key_jwt"

    other = ["clients", "add", "--name", "X", "--kind", "bank", "--client-id", "bank-x"]
    assert main([*other, "--jwks-file", str(private), *data]) == 2  # refused: 2 (was 1)
    assert "PUBLIC key only" in capsys.readouterr().err
    assert main([*other, "--jwks-file", str(tmp_path / "missing.jwk"), *data]) == 2

    rotated = ECKey.generate_key("P-256", private=True)
    public.write_text(json.dumps({"keys": [rotated.as_dict(private=False), key.as_dict(private=False)]}))
    assert main(["clients", "set-keys", "bank-nm", "--jwks-file", str(public), *data]) == 0
    assert main(["clients", "set-keys", "nobody", "--jwks-file", str(public), *data]) == 2


@pytest.mark.parametrize(
    "jwks, message",
    [
        pytest.param(OctKey.generate_key(256).as_dict(private=True), "PUBLIC key only", id="symmetric-with-k"),
        pytest.param({"kty": "oct"}, "unsupported key type", id="symmetric"),
        pytest.param(SMALL_RSA, "at least 2048", id="small-rsa"),
        pytest.param(ECKey.generate_key("P-384").as_dict(private=False), "does not fit", id="p-384"),
        pytest.param({**ECKey.generate_key("P-256").as_dict(private=False), "use": "enc"}, "use must be", id="enc"),
        pytest.param(
            {**ECKey.generate_key("P-256").as_dict(private=False), "alg": "HS256"}, "does not fit", id="alg-hs"
        ),
        pytest.param("{not json", "not valid JSON", id="not-json"),
        pytest.param({"keys": []}, "no keys", id="empty"),
    ],
)
@pytest.mark.filterwarnings("ignore:Key size should be")
async def test_the_registry_refuses_unfit_client_keys(sqlite_url: str, jwks: Any, message: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        with pytest.raises(ClientError, match=message):
            await ClientRegistry(store).create_with_keys("Bank", "bank", jwks)
    finally:
        await store.close()


async def test_replacing_a_keyed_clients_keys_ends_its_earlier_tokens(sqlite_url: str) -> None:
    """set_keys is a keyed client's rotation: tokens issued before it stay dead, later ones live."""
    store = await Store.open(sqlite_url)
    try:
        registry = ClientRegistry(store)
        key = ECKey.generate_key("P-256", private=True)
        client_id = await registry.create_with_keys(
            "新城区征信", "agency", {"keys": [key.as_dict(private=False)]}, client_id="agency-keys"
        )
        revocations = revocation_list(store)
        issued_before = int(time.time())
        assert not await revocations.issued_before_cutoff("agency-keys", issued_before)
        rotated = ECKey.generate_key("P-256", private=True)
        assert await registry.set_keys(client_id, {"keys": [rotated.as_dict(private=False)]})
        assert await revocations.issued_before_cutoff("agency-keys", issued_before)
        assert not await revocations.issued_before_cutoff("agency-keys", int(time.time()))
    finally:
        await store.close()


async def test_a_keyed_client_never_authenticates_with_a_secret(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        registry = ClientRegistry(store)
        client_id = await registry.create_with_keys("Bank", "bank", ECKey.generate_key("P-256").as_dict(private=False))
        record = await registry.get(client_id)
        assert (
            record is not None and record.secret_hash == "" and record.token_endpoint_auth_method == "private_key_jwt"
        )
        assert await registry.authenticate(client_id, "") is None
        with pytest.raises(ClientError, match="authenticates with a secret"):
            secret_client, _ = await registry.create("Dept", "department")
            await registry.set_keys(secret_client, ECKey.generate_key("P-256").as_dict(private=False))
    finally:
        await store.close()


async def test_migration_0002_keeps_existing_clients_on_secrets(store_url: str) -> None:
    store = Store(store_url)
    try:

        def to_0001(connection: Any) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")

        async with store.engine.begin() as conn:
            await conn.run_sync(to_0001)
            await conn.execute(
                text(
                    "INSERT INTO clients (client_id, name, kind, secret_hash, scope, disabled, created_at) "
                    "VALUES ('old-dept', '老部门', 'department', 'scrypt$x', 'credit:public', false, :at)"
                ),
                {"at": dt.datetime.now(dt.timezone.utc)},
            )
        assert await store.upgrade() == Store.head_revision()
        record = await ClientRegistry(store).get("old-dept")
        assert record is not None
        assert (record.token_endpoint_auth_method, record.jwks, record.secret_hash) == (
            "client_secret_basic",
            None,
            "scrypt$x",
        )
    finally:
        await store.close()
