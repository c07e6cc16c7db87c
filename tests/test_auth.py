"""Auth: the client registry, the token endpoint on a real server, bearer validation, the CLI.

Token tests talk HTTP to a real uvicorn server (tests/servers.py) with httpx; bearer tests try
real tokens from that server and hand-made attacks against `BearerValidator`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet

from auth_fixture import AUDIENCE, ISSUER, TTL, auth_app, b64, settings_for, unb64
from servers import serve_app
from xinlian.hub.auth import (
    BearerValidator,
    ClientError,
    ClientRegistry,
    InvalidToken,
    default_scope,
)
from xinlian.hub.auth.client_secrets import hash_secret, verify_secret
from xinlian.hub.cli import main
from xinlian.hub.config import Settings
from xinlian.hub.principal import Principal
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str


@dataclass(frozen=True)
class Hub:
    url: str
    settings: Settings
    keyring: Keyring
    department: Client
    bank: Client
    disabled: Client

    @property
    def validator(self) -> BearerValidator:
        return BearerValidator(self.keyring, ISSUER, AUDIENCE)

    def token(self, client: Client, **form: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials", **form},
            auth=(client.client_id, client.secret),
        )
        assert response.status_code == 200, response.text
        return response.json()


async def _seed(settings: Settings) -> dict[str, Client]:
    store = await Store.open(settings.database_url)
    try:
        registry = ClientRegistry(store)
        made = {
            "department": await registry.create("新城区市场监督管理局", "department"),
            "bank": await registry.create("内蒙古银行新城支行", "bank", client_id="bank-xc"),
            "disabled": await registry.create("已停用的机构", "agency"),
        }
        await registry.disable(made["disabled"][0])
    finally:
        await store.close()
    return {name: Client(*pair) for name, pair in made.items()}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    settings = settings_for(tmp_path_factory.mktemp("hub"))
    clients = asyncio.run(_seed(settings))
    with serve_app(auth_app(settings)) as url:
        yield Hub(url, settings, Keyring.load_or_create(settings.data_dir), **clients)


# --------------------------------------------------------------------------- token endpoint


def test_client_secret_basic_gets_a_token(hub: Hub) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(hub.department.client_id, hub.department.secret),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == TTL
    assert body["scope"] == "credit:public credit:shared"
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}


def test_client_secret_post_gets_a_token(hub: Hub) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "bank-xc", "client_secret": hub.bank.secret},
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "credit:public credit:authorized"


def test_token_is_an_rfc9068_jwt_signed_with_the_published_key(hub: Hub) -> None:
    before = int(time.time())
    body = hub.token(hub.bank)
    jwks = httpx.get(f"{hub.url}/.well-known/jwks.json").json()

    token = jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=["ES256"])

    assert token.header == {"typ": "at+jwt", "alg": "ES256", "kid": hub.keyring.kid}
    claims = token.claims
    assert set(claims) == {"iss", "aud", "sub", "client_id", "iat", "nbf", "exp", "jti", "scope", "kind"}
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == "bank-xc"
    assert claims["kind"] == "bank"
    assert claims["scope"] == "credit:public credit:authorized"
    assert before - 1 <= claims["iat"] == claims["nbf"] <= int(time.time()) + 1
    assert claims["exp"] == claims["iat"] + TTL
    assert claims["jti"] != jwt.decode(hub.token(hub.bank)["access_token"], KeySet.import_key_set(jwks)).claims["jti"]


def test_jwks_endpoint_publishes_the_public_key_only(hub: Hub) -> None:
    response = httpx.get(f"{hub.url}/.well-known/jwks.json")
    assert response.status_code == 200
    [key] = response.json()["keys"]
    assert key["kid"] == hub.keyring.kid
    assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_a_requested_subset_of_scopes_is_granted(hub: Hub) -> None:
    body = hub.token(hub.department, scope="credit:shared")
    assert body["scope"] == "credit:shared"
    assert jwt.decode(body["access_token"], hub.keyring.verification_keys()[hub.keyring.kid]).claims["scope"] == "credit:shared"


def test_a_scope_beyond_the_clients_is_invalid_scope(hub: Hub) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "credit:public credit:shared"},
        auth=(hub.bank.client_id, hub.bank.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "auth, form",
    [
        pytest.param(("bank-xc", "wrong-secret-wrong-secret"), {}, id="basic-wrong-secret"),
        pytest.param(("nobody", "wrong-secret-wrong-secret"), {}, id="basic-unknown-client"),
        pytest.param(None, {"client_id": "bank-xc", "client_secret": "wrong-secret"}, id="post-wrong-secret"),
        pytest.param(None, {}, id="no-credentials"),
    ],
)
def test_bad_client_credentials_get_invalid_client(hub: Hub, auth: tuple[str, str] | None, form: dict[str, str]) -> None:
    response = httpx.post(f"{hub.url}/oauth/token", data={"grant_type": "client_credentials", **form}, auth=auth)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}
    assert response.headers["www-authenticate"].startswith('Basic realm="xinlian", error="invalid_client"')


def test_a_disabled_client_is_refused(hub: Hub) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(hub.disabled.client_id, hub.disabled.secret),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_an_unsupported_grant_type_is_refused(hub: Hub) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "password", "username": "u", "password": "p"},
        auth=(hub.bank.client_id, hub.bank.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "content, headers, use_basic, expected",
    [
        pytest.param(b"scope=credit%3Apublic", {}, True, "grant_type", id="missing-grant-type"),
        pytest.param(b"grant_type=client_credentials&grant_type=client_credentials", {}, True, "repeated", id="repeated"),
        pytest.param(b"grant_type=client_credentials&client_secret=x", {}, True, "one client authentication", id="two-auth-methods"),
        pytest.param(b"grant_type=client_credentials&client_id=someone-else", {}, True, "does not match", id="client-id-mismatch"),
        pytest.param(b'{"grant_type": "client_credentials"}', {"content-type": "application/json"}, True, "x-www-form-urlencoded", id="json-body"),
        pytest.param(b"grant_type=\xff\xfe", {}, True, "not a valid form", id="not-utf8"),
    ],
)
def test_malformed_token_requests_get_invalid_request(
    hub: Hub, content: bytes, headers: dict[str, str], use_basic: bool, expected: str
) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        content=content,
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
        auth=(hub.bank.client_id, hub.bank.secret) if use_basic else None,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert expected in body["error_description"]


def test_an_oversized_body_is_refused(hub: Hub) -> None:
    response = httpx.post(f"{hub.url}/oauth/token", data={"grant_type": "client_credentials", "pad": "x" * 20_000})
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_get_on_the_token_endpoint_is_a_json_error(hub: Hub) -> None:
    response = httpx.get(f"{hub.url}/oauth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "invalid_request"


def test_plain_http_to_a_non_loopback_host_is_refused(hub: Hub) -> None:
    """authlib's rule: OAuth2 over TLS, or loopback (set AUTHLIB_INSECURE_TRANSPORT=1 to relax)."""
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(hub.bank.client_id, hub.bank.secret),
        headers={"Host": "hub.example.gov.cn"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "insecure_transport"


async def test_token_endpoint_over_each_store(store_url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, store_url)
    store = await Store.open(store_url)
    try:
        client_id, secret = await ClientRegistry(store).create("新城区税务局", "department")
    finally:
        await store.close()
    with serve_app(auth_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
            assert response.status_code == 200, response.text
            principal = BearerValidator(Keyring.load_or_create(tmp_path), ISSUER, AUDIENCE).validate(
                response.json()["access_token"]
            )
            assert principal.client_id == client_id and principal.kind == "department"


# --------------------------------------------------------------------------- bearer validation


def claims_for(hub: Hub, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bank-xc",
        "client_id": "bank-xc",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "test-jti",
        "scope": "credit:public credit:authorized",
        "kind": "bank",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(hub: Hub, claims: dict[str, Any], key: ECKey | None = None, **header: Any) -> str:
    head = {"typ": "at+jwt", "alg": "ES256", "kid": hub.keyring.kid, **header}
    return jwt.encode(head, claims, key or hub.keyring.signing_key, algorithms=["ES256"])


def test_the_validator_accepts_a_real_token(hub: Hub) -> None:
    body = hub.token(hub.bank)
    principal = hub.validator.validate(body["access_token"])
    jti = unb64(body["access_token"].split(".")[1])["jti"]
    assert principal == Principal(
        client_id="bank-xc",
        kind="bank",
        scopes=frozenset({"credit:public", "credit:authorized"}),
        purpose=None,
        token_id=jti,
    )


def test_alg_none_is_refused(hub: Hub) -> None:
    token = f"{b64({'typ': 'at+jwt', 'alg': 'none', 'kid': hub.keyring.kid})}.{b64(claims_for(hub))}."
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        hub.validator.validate(token)


@pytest.mark.parametrize("public_form", ["pem", "jwk"])
def test_hs256_signed_with_the_public_key_is_refused(hub: Hub, public_form: str) -> None:
    public = hub.keyring.verification_keys()[hub.keyring.kid]
    secret = public.as_pem(private=False) if public_form == "pem" else json.dumps(public.as_dict()).encode()
    signing_input = f"{b64({'typ': 'at+jwt', 'alg': 'HS256', 'kid': hub.keyring.kid})}.{b64(claims_for(hub))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken, match="algorithm not allowed"):
        hub.validator.validate(f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize(
    "changes, reason",
    [
        pytest.param({"exp": int(time.time()) - 120}, "token expired", id="expired"),
        pytest.param({"nbf": int(time.time()) + 3600}, "not yet valid", id="nbf-in-the-future"),
        pytest.param({"iat": int(time.time()) + 3600}, "not yet valid", id="iat-in-the-future"),
        pytest.param({"iss": "http://evil.example"}, "wrong issuer", id="wrong-iss"),
        pytest.param({"aud": "another-api"}, "wrong audience", id="wrong-aud"),
        pytest.param({"aud": ["another-api", "third-api"]}, "wrong audience", id="wrong-aud-list"),
        pytest.param({"client_id": None}, "missing claim: client_id", id="missing-client-id"),
        pytest.param({"exp": None}, "missing claim: exp", id="missing-exp"),
        pytest.param({"kind": "emperor"}, "invalid claim: kind", id="unknown-kind"),
        pytest.param({"sub": "someone-else"}, "sub does not match", id="sub-mismatch"),
    ],
)
def test_tokens_with_bad_claims_are_refused(hub: Hub, changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        hub.validator.validate(signed(hub, claims_for(hub, **changes)))


def test_small_clock_skew_is_tolerated(hub: Hub) -> None:
    now = int(time.time())
    principal = hub.validator.validate(signed(hub, claims_for(hub, iat=now + 5, nbf=now + 5)))
    assert principal.client_id == "bank-xc"


def test_an_unknown_kid_is_refused(hub: Hub) -> None:
    stranger = ECKey.generate_key("P-256", private=True)
    with pytest.raises(InvalidToken, match="unknown key id"):
        hub.validator.validate(signed(hub, claims_for(hub), key=stranger, kid=stranger.thumbprint()))


def test_a_foreign_key_claiming_our_kid_is_a_bad_signature(hub: Hub) -> None:
    stranger = ECKey.generate_key("P-256", private=True)
    with pytest.raises(InvalidToken, match="bad signature"):
        hub.validator.validate(signed(hub, claims_for(hub), key=stranger))


def test_a_tampered_payload_is_refused(hub: Hub) -> None:
    header, payload, signature = hub.token(hub.department)["access_token"].split(".")
    claims = unb64(payload)
    claims["scope"] = "admin credit:public credit:shared credit:authorized"
    with pytest.raises(InvalidToken, match="bad signature"):
        hub.validator.validate(f"{header}.{b64(claims)}.{signature}")


@pytest.mark.parametrize("typ", ["JWT", "at+JWT-ish", None])
def test_a_wrong_token_type_is_refused(hub: Hub, typ: str | None) -> None:
    header = {"alg": "ES256", "kid": hub.keyring.kid} | ({"typ": typ} if typ else {})
    token = jwt.encode(header, claims_for(hub), hub.keyring.signing_key, algorithms=["ES256"], default_type=None)
    with pytest.raises(InvalidToken, match="wrong token type"):
        hub.validator.validate(token)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "...",
        "a.b.c.d.e",
        "eyJhbGciOiJFUzI1NiJ9",
        "!!!.###.$$$",
        f"{b64(b'not json')}.{b64(b'{}')}.sig",
        f"{b64(b'[1, 2]')}.{b64(b'{}')}.sig",
        "x" * 10_000,
    ],
)
def test_garbage_is_malformed(hub: Hub, garbage: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        hub.validator.validate(garbage)
    assert caught.value.reason in {"malformed token", "algorithm not allowed"}


def test_a_signed_payload_that_is_not_an_object_is_refused(hub: Hub) -> None:
    header = {"typ": "at+jwt", "alg": "ES256", "kid": hub.keyring.kid}
    token = jws.serialize_compact(header, b"[1, 2, 3]", hub.keyring.signing_key, algorithms=["ES256"])
    with pytest.raises(InvalidToken, match="malformed"):
        hub.validator.validate(token)


# --------------------------------------------------------------------------- bearer over HTTP


def test_a_protected_route_without_a_token_gets_a_json_401(hub: Hub) -> None:
    response = httpx.get(f"{hub.url}/whoami")
    assert response.status_code == 401
    # RFC 6750 §3.1: no credentials, no error code
    assert response.json() == {"error": "unauthenticated", "error_description": "missing bearer token"}
    assert response.headers["www-authenticate"] == 'Bearer realm="xinlian"'


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Bearer not.a.token", "Bearer a b"],
)
def test_a_protected_route_with_a_bad_token_gets_a_json_401(hub: Hub, authorization: str) -> None:
    response = httpx.get(f"{hub.url}/whoami", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "Traceback" not in response.text


def test_a_protected_route_with_a_real_token_knows_the_caller(hub: Hub) -> None:
    token = hub.token(hub.department)["access_token"]
    response = httpx.get(f"{hub.url}/whoami", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "client_id": hub.department.client_id,
        "kind": "department",
        "scopes": ["credit:public", "credit:shared"],
    }


# --------------------------------------------------------------------------- client registry


async def test_registry_creates_clients_with_hashed_secrets(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        registry = ClientRegistry(store)
        client_id, secret = await registry.create("新城区生态环境局", "department")

        record = await registry.get(client_id)
        assert record is not None
        assert (record.name, record.kind, record.scope, record.disabled) == (
            "新城区生态环境局",
            "department",
            "credit:public credit:shared",
            False,
        )
        assert client_id.startswith("department-")
        assert len(secret) >= 43
        assert secret not in record.secret_hash
        assert record.secret_hash.startswith("scrypt$n=16384,r=8,p=1$")
        assert verify_secret(secret, record.secret_hash)
        assert hash_secret(secret) != hash_secret(secret)  # a fresh salt every time
    finally:
        await store.close()


async def test_registry_authenticates_only_the_right_secret_of_an_enabled_client(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        registry = ClientRegistry(store)
        client_id, secret = await registry.create("Bank", "bank", client_id="bank-1", secret="s" * 24)
        assert (client_id, secret) == ("bank-1", "s" * 24)

        assert (await registry.authenticate("bank-1", secret)).client_id == "bank-1"
        assert await registry.authenticate("bank-1", "wrong" * 5) is None
        assert await registry.authenticate("nobody", secret) is None

        assert await registry.disable("bank-1") is True
        assert await registry.authenticate("bank-1", secret) is None
        assert (await registry.get("bank-1")).disabled is True
        assert await registry.disable("nobody") is False
    finally:
        await store.close()


async def test_registry_lists_and_removes_clients(store_url: str) -> None:
    store = await Store.open(store_url)
    try:
        registry = ClientRegistry(store)
        await registry.create("A", "admin", client_id="admin-1")
        await registry.create("B", "platform", client_id="platform-1", scope="credit:public  credit:public")
        listed = await registry.list()
        assert [(c.client_id, c.kind, c.scope) for c in listed] == [
            ("admin-1", "admin", "admin credit:public credit:shared"),
            ("platform-1", "platform", "credit:public"),
        ]
        assert await registry.remove("admin-1") is True
        assert await registry.remove("admin-1") is False
        assert [c.client_id for c in await registry.list()] == ["platform-1"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"kind": "emperor"}, "unknown client kind", id="unknown-kind"),
        pytest.param({"kind": "bank", "scope": 'credit:"quoted"'}, "invalid scope token", id="bad-scope"),
        pytest.param({"kind": "bank", "scope": "  "}, "at least one scope", id="empty-scope"),
        pytest.param({"kind": "bank", "client_id": "has:colon"}, "client id", id="bad-client-id"),
        pytest.param({"kind": "bank", "secret": "short"}, "at least 16", id="short-secret"),
        pytest.param({"kind": "bank", "client_id": "taken"}, "already registered", id="taken-id"),
    ],
)
async def test_registry_refuses_bad_clients(sqlite_url: str, kwargs: dict[str, Any], message: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        registry = ClientRegistry(store)
        await registry.create("First", "bank", client_id="taken")
        with pytest.raises(ClientError, match=message):
            await registry.create("Second", **kwargs)
    finally:
        await store.close()


def test_default_scopes_by_kind() -> None:
    assert default_scope("department") == "credit:public credit:shared"
    assert default_scope("bank") == "credit:public credit:authorized"
    assert default_scope("admin") == "admin credit:public credit:shared"


def test_a_malformed_stored_hash_never_verifies() -> None:
    assert verify_secret("anything", "plain-text-secret") is False
    assert verify_secret("anything", "scrypt$n=3,r=8,p=1$AAAA$AAAA") is False
    assert verify_secret("anything", "") is False


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("XINLIAN_DATABASE_URL", "XINLIAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()  # a data directory that does not exist is a mistyped one: the CLI refuses it
    return data


def fields(output: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in output.splitlines() if line and not line.startswith("The "))


def test_cli_adds_lists_and_disables_clients(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clients", "add", "--name", "新城区税务局", "--kind", "department", "--data-dir", str(data_dir)]) == 0
    added = fields(capsys.readouterr().out)
    client_id, secret = added["client_id"], added["client_secret"]
    assert added["scope"] == "credit:public credit:shared"

    async def check() -> bool:
        store = await Store.open(settings_for(data_dir).database_url)
        try:
            return await ClientRegistry(store).authenticate(client_id, secret) is not None
        finally:
            await store.close()

    assert asyncio.run(check())

    assert main(["clients", "list", "--data-dir", str(data_dir)]) == 0
    listing = capsys.readouterr().out
    header, row = listing.splitlines()
    assert header.split() == ["CLIENT_ID", "NAME", "KIND", "SCOPE", "AUTH", "DISABLED"]
    assert row.split() == [
        client_id, "新城区税务局", "department", "credit:public", "credit:shared", "client_secret_basic", "false"
    ]
    assert secret not in listing

    assert main(["clients", "disable", client_id, "--data-dir", str(data_dir)]) == 0
    assert f"disabled {client_id}" in capsys.readouterr().out
    assert main(["clients", "list", "--json", "--data-dir", str(data_dir)]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["disabled"] is True and listed["auth"] == "client_secret_basic"
    assert "client_secret" not in listed and "secret_hash" not in listed and secret not in json.dumps(listed)
    assert not asyncio.run(check())


def test_cli_add_with_scope_and_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["clients", "add", "--name", "Bank", "--kind", "bank", "--scope", "credit:public", "--client-id", "bank-9"]
    assert main([*argv, "--json", "--data-dir", str(data_dir)]) == 0
    added = json.loads(capsys.readouterr().out)
    assert (added["client_id"], added["kind"], added["scope"]) == ("bank-9", "bank", "credit:public")
    assert len(added["client_secret"]) >= 43


def test_cli_refusals_have_nonzero_exit_codes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clients", "disable", "nobody", "--data-dir", str(data_dir)]) == 2  # refused: 2 (was 1)
    assert "no client 'nobody'" in capsys.readouterr().err
    base = ["clients", "add", "--name", "X", "--kind", "bank", "--client-id", "x-1", "--data-dir", str(data_dir)]
    assert main(base) == 0
    assert main(base) == 2  # refused: 2 (add is now an alias of create)
    assert "already registered" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["clients", "add", "--name", "X", "--kind", "emperor", "--data-dir", str(data_dir)])
    assert exited.value.code == 2


def test_cli_lists_keys(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "list", "--data-dir", str(data_dir)]) == 0
    assert "no keys" in capsys.readouterr().out
    assert not (data_dir / "keys").exists()

    keyring = Keyring.load_or_create(data_dir)
    assert main(["keys", "list", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["KID", "ALG", "CREATED", "VERIFY_UNTIL", "STATUS"]
    kid, alg, created, verify_until, status = out[2].split()
    assert (kid, alg, verify_until, status) == (keyring.kid, "ES256", "-", "active")
    assert created.endswith("Z")
    pem = (data_dir / "keys" / f"{keyring.kid}.pem").read_text()
    assert pem.splitlines()[1] not in "\n".join(out)  # no key material

    assert main(["keys", "list", "--json", "--data-dir", str(data_dir)]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listed["kid"], listed["status"]) == (keyring.kid, "active")
