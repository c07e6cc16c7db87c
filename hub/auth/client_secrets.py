"""Client secrets: generating them, and storing only a salted scrypt hash.

A stored hash is self-describing, so parameters can be raised later without breaking old ones:

    scrypt$n=16384,r=8,p=1$<salt, base64url>$<derived key, base64url>

Verification is constant time in the secret (`hmac.compare_digest`), and `verify_nothing()` lets
callers spend the same work when there is no client to check against, so response times do not
tell which client ids exist.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # 16 MiB of memory per hash (128 * r * n)
SALT_BYTES = 16
KEY_BYTES = 32
SECRET_BYTES = 32  # 256 bits of randomness in a generated secret
MAX_MEMORY = 64 * 1024 * 1024
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 512


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=KEY_BYTES)


def generate_secret() -> str:
    """A new client secret (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """The storable, self-describing scrypt hash of `secret` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}$n={N},r={R},p={P}${_b64(salt)}${_b64(_derive(secret, salt, N, R, P))}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, params, salt, key = stored.split("$")
        if scheme != SCHEME:
            return None
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
            return None
        return n, r, p, _unb64(salt), _unb64(key)
    except (ValueError, KeyError):
        return None


def verify_secret(secret: str, stored: str) -> bool:
    """Whether `secret` matches the stored hash (False for a malformed hash, never an exception)."""
    parsed = _parse(stored)
    if parsed is None or not isinstance(secret, str) or len(secret) > MAX_SECRET_LENGTH:
        verify_nothing()
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_derive(secret, salt, n, r, p), expected)


@functools.lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return hash_secret(generate_secret())


def verify_nothing() -> None:
    """Spend the work of one verification, for a client that does not exist or cannot log in."""
    parsed = _parse(_decoy_hash())
    assert parsed is not None
    n, r, p, salt, _ = parsed
    _derive("decoy", salt, n, r, p)
