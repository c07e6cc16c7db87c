"""Client public keys for `private_key_jwt` (RFC 7523): checking a registered JWK Set, picking a key.

A bank registers one public JWK or a JWK Set (`{"keys": [...]}`) instead of receiving a secret.
Accepted at registration, each key:

- is public only (any private member — `d`, `p`, `q`, `k`, ... — is refused: the file handed
  over must never be the private key);
- is `EC` on P-256 (ES256), `RSA` of at least 2048 bits (RS256) or `OKP` Ed25519 (EdDSA);
  symmetric (`oct`) keys are refused, so HS256 assertions can never verify;
- has `use` "sig" or none, and an `alg`, if given, that fits the key type.

Keys are stored canonically with a `kid` (the RFC 7638 thumbprint when none was given).
An assertion's key is the one its header's `kid` names, or — without `kid` — the only
registered key that fits its `alg`.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from joserfc.errors import SecurityWarning
from joserfc.jwk import Key, KeySet, RSAKey, import_key

ASSERTION_ALGORITHMS: tuple[str, ...] = ("ES256", "RS256", "EdDSA", "Ed25519")
MIN_RSA_BITS = 2048
MAX_CLIENT_KEYS = 10
MAX_JWKS_BYTES = 64 * 1024
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPE_OF_ALG = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
    "Ed25519": ("OKP", "Ed25519"),
}
_EDDSA = frozenset({"EdDSA", "Ed25519"})  # RFC 9864 renamed EdDSA-with-Ed25519 to "Ed25519"

# joserfc warns that "EdDSA" is deprecated by RFC 9864; the hub accepts it deliberately (banks'
# libraries still emit it) next to the fully-specified "Ed25519".
warnings.filterwarnings("ignore", message=r"EdDSA is deprecated", category=SecurityWarning)


class ClientKeyError(ValueError):
    """A client's JWK Set cannot be registered; the message says why."""


def _members(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, (str, bytes)):
        if len(raw) > MAX_JWKS_BYTES:
            raise ClientKeyError(f"the JWK Set is over {MAX_JWKS_BYTES} bytes")
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ClientKeyError("the JWK Set is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ClientKeyError('expected a JWK or a JWK Set ({"keys": [...]}) object')
    members = raw["keys"] if "keys" in raw else [raw]
    if not isinstance(members, list) or not members:
        raise ClientKeyError("the JWK Set has no keys")
    if len(members) > MAX_CLIENT_KEYS:
        raise ClientKeyError(f"at most {MAX_CLIENT_KEYS} keys per client")
    if not all(isinstance(m, dict) for m in members):
        raise ClientKeyError("every key must be a JSON object")
    return members


def _fits(key: Key, alg: str) -> bool:
    """Whether `key` may verify an assertion signed with `alg`."""
    kty, curve = _KEY_TYPE_OF_ALG.get(alg, (None, None))
    if key.key_type != kty or (curve is not None and getattr(key, "curve_name", None) != curve):
        return False
    declared = key.get("alg")
    return declared is None or declared == alg or (declared in _EDDSA and alg in _EDDSA)


def _check(member: dict[str, Any]) -> Key:
    private = sorted(PRIVATE_MEMBERS & member.keys())
    if private:
        raise ClientKeyError(f"a key holds private members ({', '.join(private)}): register the PUBLIC key only")
    kty = member.get("kty")
    if kty not in ("EC", "RSA", "OKP"):
        raise ClientKeyError(f"unsupported key type {kty!r} (EC P-256, RSA or OKP Ed25519)")
    if member.get("use") not in (None, "sig"):
        raise ClientKeyError("a client key's use must be 'sig'")
    try:
        key = import_key(member)
    except Exception as exc:  # joserfc raises ValueError and its own errors for bad points/sizes
        raise ClientKeyError(f"not a valid {kty} key: {exc}") from None
    if key.is_private:
        raise ClientKeyError("register the PUBLIC key only")
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        raise ClientKeyError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    if not any(_fits(key, alg) for alg in ASSERTION_ALGORITHMS):
        raise ClientKeyError(f"the key does not fit any allowed algorithm ({', '.join(ASSERTION_ALGORITHMS)})")
    return key


def parse_client_jwks(raw: str | bytes | dict[str, Any]) -> KeySet:
    """The client's public keys, checked (see the module docstring); `ClientKeyError` if unfit."""
    keys = [_check(member) for member in _members(raw)]
    keyset = KeySet(keys)  # gives every key a kid (its thumbprint) if it had none
    kids = [key.kid for key in keyset]
    if len(set(kids)) != len(kids):
        raise ClientKeyError("two keys share a kid")
    return keyset


def canonical_jwks(keyset: KeySet) -> str:
    """The stored form: `{"keys": [public JWK with kid, ...]}` as compact JSON."""
    return json.dumps(keyset.as_dict(private=False), separators=(",", ":"), sort_keys=True)


def key_for_assertion(keyset: KeySet, header: dict[str, Any]) -> Key | None:
    """The registered key that verifies an assertion with this (already allow-listed) header, or None."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        return None
    candidates = [key for key in keyset if _fits(key, alg)]
    kid = header.get("kid")
    if kid is not None:
        candidates = [key for key in candidates if key.kid == kid]
    return candidates[0] if len(candidates) == 1 else None
