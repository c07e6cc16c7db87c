"""The hub's signing keyring: ES256 keys in `<data-dir>/keys/`, the key that signs, the keys that verify, JWKS.

Layout of `<data-dir>/keys/` (directory 0700, every file 0600; never inside the repository):

    manifest.json      {"format": 1, "signing": KID, "keys": [KEY ENTRY, ...]}
    <kid>.pem          one PKCS#8 private key per entry (EC P-256), named by its kid
    .lock              taken (flock) while the keyring is created or changed

A key entry is `{"kid", "alg", "crv", "file", "created", "retired", "verify_until"}`, timestamps
ISO 8601 UTC or null. `kid` is the key's RFC 7638 JWK thumbprint (SHA-256), checked on every load.

Key life cycle, so that rotation (a later issue) fits without a new layout:
- `signing`: the one key that signs new tokens (the manifest's "signing" kid).
- `verifying`: published in the JWKS and accepted on tokens, but no longer (or not yet) signing:
  an entry with `retired` null, or retired with `verify_until` still in the future.
- `retired`: past its grace period; kept on disk for the record, no longer published or accepted.
Rotation will add a key, point "signing" at it and set the old key's `retired` and `verify_until`.

Only creation on first run and loading are implemented here; anything unexpected on disk (a
missing key file, a thumbprint that does not match, a corrupt manifest) raises `KeyringError`
rather than silently replacing keys, because new keys would invalidate every token in flight.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from joserfc.jwk import ECKey

try:  # POSIX: serialise first-run creation between processes sharing a data directory
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("xinlian.keys")

ALGORITHM = "ES256"
CURVE = "P-256"
MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = 1
DIR_MODE = 0o700
FILE_MODE = 0o600


class KeyringError(Exception):
    """The key directory is unreadable, inconsistent or tampered with."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KeyringError(f"{what} is not a timestamp")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise KeyringError(f"{what} is not a timestamp: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class KeyEntry:
    """One key of the manifest (its metadata; the key itself is in `file`)."""

    kid: str
    alg: str
    crv: str
    file: str
    created: dt.datetime
    retired: dt.datetime | None = None
    verify_until: dt.datetime | None = None

    def verifies_at(self, moment: dt.datetime) -> bool:
        """Whether tokens signed with this key are still accepted at `moment`."""
        if self.retired is None:
            return True
        return self.verify_until is not None and moment < self.verify_until

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "alg": self.alg,
            "crv": self.crv,
            "file": self.file,
            "created": _iso(self.created),
            "retired": _iso(self.retired),
            "verify_until": _iso(self.verify_until),
        }

    @classmethod
    def from_json(cls, raw: Any) -> "KeyEntry":
        if not isinstance(raw, dict):
            raise KeyringError("manifest key entry is not an object")
        kid, alg, crv, file = (raw.get(name) for name in ("kid", "alg", "crv", "file"))
        if not all(isinstance(v, str) and v for v in (kid, alg, crv, file)):
            raise KeyringError("manifest key entry lacks kid, alg, crv or file")
        if alg != ALGORITHM or crv != CURVE:
            raise KeyringError(f"key {kid}: unsupported algorithm {alg}/{crv} (expected {ALGORITHM}/{CURVE})")
        if Path(file).name != file or file.startswith("."):
            raise KeyringError(f"key {kid}: file name {file!r} must be a plain file in the key directory")
        created = _parse_time(raw.get("created"), f"key {kid} created")
        if created is None:
            raise KeyringError(f"key {kid}: missing created timestamp")
        return cls(
            kid=kid,
            alg=alg,
            crv=crv,
            file=file,
            created=created,
            retired=_parse_time(raw.get("retired"), f"key {kid} retired"),
            verify_until=_parse_time(raw.get("verify_until"), f"key {kid} verify_until"),
        )


@dataclass(frozen=True)
class KeyDescription:
    """What `xinlian keys list` shows about a key (never key material)."""

    kid: str
    alg: str
    created: dt.datetime
    retired: dt.datetime | None
    verify_until: dt.datetime | None
    status: str  # signing | verifying | retired
    path: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only, and make it durable."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tighten(path: Path, mode: int) -> None:
    """Restore owner-only permissions if someone loosened them."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current != mode:
        log.warning("%s had mode %o; setting %o", path, current, mode)
        os.chmod(path, mode)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class Keyring:
    """The hub's keys: one signs access tokens, every verifying key is published in the JWKS."""

    algorithm = ALGORITHM

    def __init__(self, directory: Path, signing: str, entries: list[KeyEntry], keys: dict[str, ECKey]) -> None:
        self.directory = directory
        self._signing = signing
        self._entries = entries
        self._keys = keys  # kid -> private ECKey (kid, alg and use set)
        self._public = {kid: ECKey.import_key(key.as_dict(private=False)) for kid, key in keys.items()}

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, data_dir: Path) -> "Keyring":
        """The keyring of `data_dir`, generating its first signing key if there is none yet."""
        directory = Path(data_dir).expanduser().resolve() / "keys"
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _tighten(directory, DIR_MODE)
        with _locked(directory):
            if not (directory / MANIFEST).exists():
                cls._create(directory)
            return cls._read(directory)

    @classmethod
    def load(cls, data_dir: Path) -> "Keyring | None":
        """The keyring of `data_dir` if it has one (never creates keys)."""
        directory = Path(data_dir).expanduser().resolve() / "keys"
        if not (directory / MANIFEST).exists():
            return None
        with _locked(directory):
            return cls._read(directory)

    @classmethod
    def _create(cls, directory: Path) -> None:
        strays = sorted(p.name for p in directory.glob("*.pem"))
        if strays:
            raise KeyringError(
                f"{directory} holds key files ({', '.join(strays)}) but no {MANIFEST}; "
                "refusing to generate new keys over them"
            )
        key = ECKey.generate_key(CURVE, private=True)
        kid = key.thumbprint()
        entry = KeyEntry(kid=kid, alg=ALGORITHM, crv=CURVE, file=f"{kid}.pem", created=_utcnow())
        _write_private(directory / entry.file, key.as_pem(private=True))
        manifest = {"format": FORMAT, "signing": kid, "keys": [entry.to_json()]}
        _write_private(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
        log.info("generated signing key %s in %s", kid, directory)

    @classmethod
    def _read(cls, directory: Path) -> "Keyring":
        manifest_path = directory / MANIFEST
        _tighten(manifest_path, FILE_MODE)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyringError(f"cannot read {manifest_path}: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise KeyringError(f"{manifest_path}: unknown manifest format")
        raw_entries = manifest.get("keys")
        if not isinstance(raw_entries, list) or not raw_entries:
            raise KeyringError(f"{manifest_path}: no keys listed")
        entries = [KeyEntry.from_json(raw) for raw in raw_entries]
        if len({e.kid for e in entries}) != len(entries):
            raise KeyringError(f"{manifest_path}: a kid is listed twice")
        keys = {entry.kid: cls._load_key(directory, entry) for entry in entries}
        signing = manifest.get("signing")
        by_kid = {e.kid: e for e in entries}
        if not isinstance(signing, str) or signing not in by_kid:
            raise KeyringError(f"{manifest_path}: the signing kid is not one of the listed keys")
        if by_kid[signing].retired is not None:
            raise KeyringError(f"{manifest_path}: the signing key {signing} is retired")
        return cls(directory, signing, entries, keys)

    @staticmethod
    def _load_key(directory: Path, entry: KeyEntry) -> ECKey:
        path = directory / entry.file
        try:
            _tighten(path, FILE_MODE)
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyringError(f"key {entry.kid}: cannot read {path}: {exc.strerror}") from None
        try:
            key = ECKey.import_key(pem, {"kid": entry.kid, "alg": ALGORITHM, "use": "sig"})
        except Exception:
            raise KeyringError(f"key {entry.kid}: {path} is not a valid EC private key") from None
        if not key.is_private or key.curve_name != CURVE:
            raise KeyringError(f"key {entry.kid}: {path} is not a {CURVE} private key")
        if key.thumbprint() != entry.kid:
            raise KeyringError(f"key {entry.kid}: {path} does not match its kid (thumbprint differs)")
        return key

    # -- use ------------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        """The kid of the key that signs new tokens."""
        return self._signing

    @property
    def signing_key(self) -> ECKey:
        """The private key that signs new tokens (kid, alg and use set)."""
        return self._keys[self._signing]

    def verification_keys(self, at: dt.datetime | None = None) -> dict[str, ECKey]:
        """Public keys whose signatures are accepted now (or at `at`), by kid."""
        moment = at or _utcnow()
        return {
            e.kid: self._public[e.kid]
            for e in self._entries
            if e.kid == self._signing or e.verifies_at(moment)
        }

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JSON Web Key Set of the verification keys: public members only, with kid, alg, use."""
        keys = []
        for kid, key in self.verification_keys().items():
            public = {k: v for k, v in key.as_dict(private=False).items() if k in ("kty", "crv", "x", "y")}
            keys.append({**public, "kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}

    def describe(self) -> list[KeyDescription]:
        """Every key in the manifest with its status, newest first."""
        now = _utcnow()
        out = []
        for e in self._entries:
            if e.kid == self._signing:
                status = "signing"
            elif e.verifies_at(now):
                status = "verifying"
            else:
                status = "retired"
            out.append(KeyDescription(e.kid, e.alg, e.created, e.retired, e.verify_until, status, self.directory / e.file))
        return sorted(out, key=lambda d: d.created, reverse=True)
