"""The on-disk layout of `<data-dir>/keys/`: the manifest, its key entries, owner-only files, the lock.

Layout (directory 0700, every file 0600; never inside the repository):

    manifest.json      {"format": 1, "signing": KID, "keys": [KEY ENTRY, ...]}
    <kid>.pem          one PKCS#8 private key per entry (EC P-256), named by its kid
    .lock              taken (flock) while the keyring is created, rotated or read

A key entry is `{"kid", "alg", "crv", "file", "created", "retired", "verify_until"}`, timestamps
ISO 8601 UTC or null. `kid` is the key's RFC 7638 JWK thumbprint (SHA-256), checked on every load.

Writers replace files atomically (`os.replace` of a fsynced temporary file), key file first and
manifest last, so a reader never sees a manifest naming a key file that is not there yet.
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

try:  # POSIX: serialise creation and rotation between processes sharing a data directory
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


ACTIVE = "active"  # the key that signs new tokens; it also verifies
VERIFYING = "verifying"  # not retired, not signing: accepted
RETIRED_VERIFYING = "retired-verifying"  # retired, inside its grace period: accepted
EXPIRED = "expired"  # past its grace period: no longer accepted on tokens
ACCEPTED = frozenset({ACTIVE, VERIFYING, RETIRED_VERIFYING})
SKEW = dt.timedelta(minutes=1)  # a signature may be dated this much before its key's creation


class KeyringError(Exception):
    """The key directory is unreadable, inconsistent or tampered with."""


def life_status(signing: bool, retired: dt.datetime | None, verify_until: dt.datetime | None, moment: dt.datetime) -> str:
    """A key's status at `moment` (`ACTIVE`, `VERIFYING`, `RETIRED_VERIFYING`, `EXPIRED`) from its life:
    the same rule for a key of the local manifest and for a key another host published."""
    if signing and retired is None:
        return ACTIVE
    if retired is None:
        return VERIFYING
    return RETIRED_VERIFYING if verify_until is not None and moment < verify_until else EXPIRED


def signed_in_life(
    created: dt.datetime, retired: dt.datetime | None, verify_until: dt.datetime | None, signed_at: dt.datetime
) -> bool:
    """Whether a key with this life could have made a signature dated `signed_at` (audit
    checkpoints and head seals, which outlive grace periods): created at or before `signed_at`
    (`SKEW` allowed) and, if retired, `signed_at` not after its `verify_until` (to the second:
    lives are kept in whole seconds, so a signature made in the second of a retirement counts)."""
    if signed_at < created - SKEW:
        return False
    return retired is None or (verify_until is not None and signed_at.replace(microsecond=0) <= verify_until)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(moment: dt.datetime | None) -> str | None:
    """`moment` as ISO 8601 UTC with a 'Z', to the second (None stays None)."""
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
            "created": iso(self.created),
            "retired": iso(self.retired),
            "verify_until": iso(self.verify_until),
        }

    @classmethod
    def from_json(cls, raw: Any) -> "KeyEntry":
        if not isinstance(raw, dict):
            raise KeyringError("manifest key entry is not an object")
        kid, alg, crv, file = (raw.get(name) for name in ("kid", "alg", "crv", "file"))
        if not (isinstance(kid, str) and isinstance(alg, str) and isinstance(crv, str) and isinstance(file, str)):
            raise KeyringError("manifest key entry lacks kid, alg, crv or file")
        if not (kid and alg and crv and file):
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
class Manifest:
    """The parsed `manifest.json`: which key signs, and every key with its life-cycle dates."""

    signing: str
    entries: tuple[KeyEntry, ...]

    def to_bytes(self) -> bytes:
        document = {"format": FORMAT, "signing": self.signing, "keys": [e.to_json() for e in self.entries]}
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def read_manifest(directory: Path) -> Manifest:
    """Parse and check `<directory>/manifest.json` (not the key files)."""
    path = directory / MANIFEST
    tighten(path, FILE_MODE)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyringError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeyringError(f"{path}: unknown manifest format")
    raw_entries = document.get("keys")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise KeyringError(f"{path}: no keys listed")
    entries = tuple(KeyEntry.from_json(raw) for raw in raw_entries)
    by_kid = {e.kid: e for e in entries}
    if len(by_kid) != len(entries):
        raise KeyringError(f"{path}: a kid is listed twice")
    signing = document.get("signing")
    if not isinstance(signing, str) or signing not in by_kid:
        raise KeyringError(f"{path}: the signing kid is not one of the listed keys")
    if by_kid[signing].retired is not None:
        raise KeyringError(f"{path}: the signing key {signing} is retired")
    return Manifest(signing, entries)


def load_private_key(directory: Path, entry: KeyEntry) -> ECKey:
    """The private key of `entry`, checked against its kid (thumbprint) and curve."""
    path = directory / entry.file
    try:
        tighten(path, FILE_MODE)
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


def new_key_entry(directory: Path, created: dt.datetime) -> KeyEntry:
    """Generate an ES256 key, write its PEM file (0600) and return its manifest entry."""
    key = ECKey.generate_key(CURVE, private=True)
    kid = key.thumbprint()
    entry = KeyEntry(kid=kid, alg=ALGORITHM, crv=CURVE, file=f"{kid}.pem", created=created)
    write_private(directory / entry.file, key.as_pem(private=True))
    return entry


def manifest_signature(directory: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of the manifest: changes whenever a writer replaces it."""
    try:
        info = (directory / MANIFEST).stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def write_private(path: Path, data: bytes) -> None:
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


def tighten(path: Path, mode: int) -> None:
    """Restore owner-only permissions if someone loosened them."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current != mode:
        log.warning("%s had mode %o; setting %o", path, current, mode)
        os.chmod(path, mode)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the key directory's lock (exclusive flock on `.lock`) for the block."""
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
