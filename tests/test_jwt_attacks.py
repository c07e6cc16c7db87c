"""The JWT attack suite: forged, stale, misused and replayed tokens and client assertions, against a real hub.

A real uvicorn server (tests/servers.py) serves the hub and `/whoami`, an entry point declared
like the hub's own, whose bearer tokens the gateway validates exactly as on `/graphql`
(signature, claims, revocation). Every attack goes over HTTP and must be refused with a clear reason:
access tokens with 401 `invalid_token` and an `error_description`; client assertions at the
token endpoint with 401 `invalid_client` and an `error_description`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from auth_fixture import AUDIENCE, ISSUER, auth_app, b64, settings_for, unb64
from hub_fixture import wait_until
from servers import serve_app
from xinlian.hub.auth import ClientRegistry
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring
from xinlian.keys.rotation import rotate

# joserfc warns that "EdDSA" is deprecated (RFC 9864); the hub accepts it on purpose (docs/auth.md).
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class KeyedClient:
    """A bank registered for private_key_jwt, with the private key only the bank holds."""

    client_id: str
    key: Key
    alg: str


@dataclass(frozen=True)
class AttackHub:
    url: str
    data_dir: Path
    bank_id: str
    bank_secret: str
    keyed: dict[str, KeyedClient]  # by algorithm

    @property
    def keyring(self) -> Keyring:
        return Keyring.load_or_create(self.data_dir)

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(self.bank_id, self.bank_secret)
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def whoami(self, token: str) -> httpx.Response:
        return httpx.get(f"{self.url}/whoami", headers={"Authorization": f"Bearer {token}"})

    def refused(self, token: str, reason: str) -> None:
        response = self.whoami(token)
        assert response.status_code == 401, response.text
        assert response.json() == {"error": "invalid_token", "error_description": reason}
        assert f'error_description="{reason}"' in response.headers["www-authenticate"]

    def accepted(self, token: str) -> dict[str, Any]:
        response = self.whoami(token)
        assert response.status_code == 200, response.text
        return response.json()


def _keyed_clients() -> dict[str, KeyedClient]:
    return {
        "ES256": KeyedClient("bank-es256", ECKey.generate_key("P-256", private=True), "ES256"),
        "RS256": KeyedClient("bank-rs256", RSAKey.generate_key(2048, private=True), "RS256"),
        "EdDSA": KeyedClient("bank-eddsa", OKPKey.generate_key("Ed25519", private=True), "EdDSA"),
    }


async def _seed(database_url: str, keyed: dict[str, KeyedClient]) -> tuple[str, str]:
    store = await Store.open(database_url)
    try:
        registry = ClientRegistry(store)
        bank = await registry.create("内蒙古银行新城支行", "bank", client_id="bank-secret")
        await registry.create("征信机构", "agency", client_id="agency-secret")
        for client in keyed.values():
            await registry.create_with_keys(
                "密钥银行", "bank", {"keys": [client.key.as_dict(private=False)]}, client_id=client.client_id
            )
    finally:
        await store.close()
    return bank


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttackHub]:
    settings = settings_for(tmp_path_factory.mktemp("attack-hub"))
    keyed = _keyed_clients()
    bank_id, bank_secret = asyncio.run(_seed(settings.database_url, keyed))
    with serve_app(auth_app(settings, key_reload_interval=0.1)) as url:
        yield AttackHub(url, settings.data_dir, bank_id, bank_secret, keyed)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bank-secret",
        "client_id": "bank-secret",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": "credit:public credit:authorized",
        "kind": "bank",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def forged(hub: AttackHub, payload: dict[str, Any], key: Key | None = None, **header: Any) -> str:
    """A token signed ES256 — by the hub's real signing key unless another key is given."""
    kid, signing = hub.keyring.signing_pair()
    head = {"typ": "at+jwt", "alg": "ES256", "kid": kid, **header}
    return jwt.encode(head, payload, key or signing, algorithms=["ES256"])


# --------------------------------------------------------------------------- access tokens


def test_a_real_token_is_accepted(hub: AttackHub) -> None:
    assert hub.accepted(hub.token())["client_id"] == "bank-secret"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(hub: AttackHub, alg: str) -> None:
    header, payload, _ = hub.token().split(".")
    unsigned = f"{b64({**unb64(header), 'alg': alg})}.{payload}."
    hub.refused(unsigned, "algorithm not allowed")


@pytest.mark.parametrize("public_form", ["pem", "jwk-json", "x-coordinate"])
def test_hs256_signed_with_the_public_key_is_refused(hub: AttackHub, public_form: str) -> None:
    kid = hub.keyring.kid
    public = hub.keyring.verification_keys()[kid]
    secret = {
        "pem": public.as_pem(private=False),
        "jwk-json": json.dumps(hub.keyring.jwks()["keys"][0]).encode(),
        "x-coordinate": public.as_dict()["x"].encode(),
    }[public_form]
    signing_input = f"{b64({'typ': 'at+jwt', 'alg': 'HS256', 'kid': kid})}.{b64(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    hub.refused(f"{signing_input}.{b64(mac)}", "algorithm not allowed")


def test_an_expired_token_is_refused(hub: AttackHub) -> None:
    now = int(time.time())
    hub.refused(forged(hub, claims(iat=now - 900, nbf=now - 900, exp=now - 60)), "token expired")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_not_yet_valid_is_refused(hub: AttackHub, claim: str) -> None:
    hub.refused(forged(hub, claims(**{claim: int(time.time()) + 3600})), "token not yet valid")


def test_a_wrong_issuer_is_refused(hub: AttackHub) -> None:
    hub.refused(forged(hub, claims(iss="https://evil.example")), "wrong issuer")


@pytest.mark.parametrize("aud", ["another-api", ["another-api", "third-api"], ""])
def test_a_wrong_audience_is_refused(hub: AttackHub, aud: Any) -> None:
    hub.refused(forged(hub, claims(aud=aud)), "wrong audience")


@pytest.mark.parametrize("kid", ["stranger", "../../../../etc/passwd", "' OR 1=1 --", ""])
def test_an_unknown_kid_is_refused(hub: AttackHub, kid: str) -> None:
    stranger = ECKey.generate_key("P-256", private=True)
    hub.refused(forged(hub, claims(), key=stranger, kid=kid), "unknown key id")


def test_an_embedded_attacker_key_is_ignored(hub: AttackHub) -> None:
    """A `jwk` header naming the attacker's own key does not make the hub trust it."""
    stranger = ECKey.generate_key("P-256", private=True)
    token = forged(hub, claims(), key=stranger, jwk=stranger.as_dict(private=False))
    hub.refused(token, "bad signature")


@pytest.mark.parametrize(
    "escalation",
    [
        {"scope": "admin credit:public credit:shared credit:authorized"},
        {"kind": "admin"},
        {"client_id": "agency-secret", "sub": "agency-secret"},
        {"exp": int(time.time()) + 10 * 365 * 86400},
    ],
)
def test_a_tampered_payload_is_refused(hub: AttackHub, escalation: dict[str, Any]) -> None:
    header, payload, signature = hub.token().split(".")
    tampered = f"{header}.{b64({**unb64(payload), **escalation})}.{signature}"
    hub.refused(tampered, "bad signature")


def test_a_revoked_token_is_refused_at_once(hub: AttackHub) -> None:
    token = hub.token()
    hub.accepted(token)
    response = httpx.post(f"{hub.url}/oauth/revoke", data={"token": token}, auth=(hub.bank_id, hub.bank_secret))
    assert response.status_code == 200 and response.json() == {}
    hub.refused(token, "token revoked")


def test_a_token_of_a_retired_key_is_refused_after_its_grace(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    bank_id, bank_secret = asyncio.run(_seed(settings.database_url, {}))
    with serve_app(auth_app(settings, key_reload_interval=0.1)) as url:
        rotating = AttackHub(url, tmp_path, bank_id, bank_secret, {})
        old_keyring = Keyring.load_or_create(tmp_path)
        old_kid, old_key = old_keyring.signing_pair()
        before = rotating.token()

        done = rotate(tmp_path, grace=2)
        # the hub looks for a rotation every 0.1 s: wait until it signs with the new key
        wait_until(lambda: unb64(rotating.token().split(".")[0])["kid"] == done.new_kid, 5, "the rotation")
        rotating.accepted(before)  # inside the grace period

        while time.time() <= done.verify_until.timestamp() + 0.2:
            time.sleep(0.1)
        rotating.refused(before, "signing key retired (past its grace period)")
        resigned = jwt.encode(
            {"typ": "at+jwt", "alg": "ES256", "kid": old_kid}, claims(), old_key, algorithms=["ES256"]
        )
        rotating.refused(resigned, "signing key retired (past its grace period)")
        assert old_kid not in {k["kid"] for k in httpx.get(f"{url}/.well-known/jwks.json").json()["keys"]}


# --------------------------------------------------------------------------- client assertions


def assertion(client: KeyedClient, *, alg: str | None = None, key: Key | None = None, **changes: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    }
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode({"alg": alg or client.alg}, payload, key or client.key, algorithms=[alg or client.alg])


def token_with(hub: AttackHub, client_assertion: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
        **form,
    }
    return httpx.post(f"{hub.url}/oauth/token", data=data)


def refused_assertion(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert reason in body["error_description"]


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_a_valid_assertion_gets_a_token(hub: AttackHub, alg: str) -> None:
    client = hub.keyed[alg]
    response = token_with(hub, assertion(client), client_id=client.client_id)
    assert response.status_code == 200, response.text
    assert hub.accepted(response.json()["access_token"])["client_id"] == client.client_id


def test_the_issuer_is_also_an_accepted_audience(hub: AttackHub) -> None:
    response = token_with(hub, assertion(hub.keyed["ES256"], aud=ISSUER))
    assert response.status_code == 200, response.text


def test_a_replayed_assertion_is_refused(hub: AttackHub) -> None:
    once = assertion(hub.keyed["ES256"])
    assert token_with(hub, once).status_code == 200
    refused_assertion(token_with(hub, once), "already used (jti replayed)")


@pytest.mark.parametrize(
    "aud",
    [
        "https://another-authorization-server.example/oauth/token",
        f"{ISSUER}/oauth/revoke",
        [TOKEN_ENDPOINT, "https://another-authorization-server.example"],
        None,
    ],
)
def test_an_assertion_for_another_audience_is_refused(hub: AttackHub, aud: Any) -> None:
    refused_assertion(
        token_with(hub, assertion(hub.keyed["ES256"], aud=aud)), "aud must be the token endpoint URL or the issuer"
    )


@pytest.mark.parametrize("secret_form", ["jwk-json", "pem", "any-secret"])
def test_an_hs256_assertion_is_refused(hub: AttackHub, secret_form: str) -> None:
    client = hub.keyed["RS256"]
    public = client.key.as_dict(private=False)
    secret = {
        "jwk-json": json.dumps(public).encode(),
        "pem": RSAKey.import_key(public).as_pem(private=False),
        "any-secret": b"a-shared-secret-the-hub-never-issued",
    }[secret_form]
    now = int(time.time())
    payload = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": TOKEN_ENDPOINT,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    signing_input = f"{b64({'alg': 'HS256'})}.{b64(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    refused_assertion(token_with(hub, f"{signing_input}.{b64(mac)}"), "algorithm is not allowed")


def test_an_unsigned_assertion_is_refused(hub: AttackHub) -> None:
    client = hub.keyed["ES256"]
    signed = assertion(client)
    _, payload, _ = signed.split(".")
    refused_assertion(token_with(hub, f"{b64({'alg': 'none'})}.{payload}."), "algorithm is not allowed")


def test_an_expired_assertion_is_refused(hub: AttackHub) -> None:
    now = int(time.time())
    refused_assertion(token_with(hub, assertion(hub.keyed["ES256"], iat=now - 600, exp=now - 120)), "has expired")


def test_an_assertion_valid_for_too_long_is_refused(hub: AttackHub) -> None:
    refused_assertion(
        token_with(hub, assertion(hub.keyed["ES256"], exp=int(time.time()) + 3600)), "more than 300 s ahead"
    )


def test_an_assertion_issued_in_the_future_is_refused(hub: AttackHub) -> None:
    refused_assertion(token_with(hub, assertion(hub.keyed["ES256"], nbf=int(time.time()) + 600)), "not valid yet")


@pytest.mark.parametrize("changes", [{"iss": "bank-rs256"}, {"jti": None}, {"exp": None}])
def test_an_assertion_with_bad_claims_is_refused(hub: AttackHub, changes: dict[str, Any]) -> None:
    refused_assertion(token_with(hub, assertion(hub.keyed["ES256"], **changes)), "The client assertion")


@pytest.mark.parametrize(
    "who",
    ["attacker-key", "other-clients-key", "secret-client", "unknown-client"],
)
def test_an_assertion_that_does_not_verify_gets_the_one_answer(hub: AttackHub, who: str) -> None:
    target = hub.keyed["ES256"]
    if who == "attacker-key":
        forged_assertion = assertion(target, key=ECKey.generate_key("P-256", private=True))
    elif who == "other-clients-key":
        forged_assertion = assertion(target, alg="RS256", key=hub.keyed["RS256"].key)
    else:
        client_id = "bank-secret" if who == "secret-client" else "nobody"
        forged_assertion = assertion(KeyedClient(client_id, target.key, "ES256"))
    response = token_with(hub, forged_assertion)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": "Client authentication failed."}


def test_a_keyed_client_cannot_fall_back_to_a_secret(hub: AttackHub) -> None:
    response = httpx.post(
        f"{hub.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("bank-es256", "no-secret-was-ever-issued"),
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_an_assertion_with_a_secret_is_two_methods(hub: AttackHub) -> None:
    response = token_with(hub, assertion(hub.keyed["ES256"]), client_secret="x" * 20)
    assert response.status_code == 400
    assert "one client authentication method" in response.json()["error_description"]


def test_an_assertion_for_another_client_id_parameter_is_refused(hub: AttackHub) -> None:
    refused_assertion(token_with(hub, assertion(hub.keyed["ES256"]), client_id="bank-rs256"), "does not match")
