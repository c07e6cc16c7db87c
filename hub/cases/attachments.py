"""Attachments of cases: the proof documents and photos an objection, a complaint or a credit-repair
application carries.

What is accepted (`AttachmentPolicy`, built by the policy layer from policy data; `standard()` is
the default): at most 10 MB a file and 10 files a case, and only PDF, JPEG and PNG. The type is
read from the content's first bytes (`sniff_media_type`: `%PDF-`, `\\x89PNG\\r\\n\\x1a\\n`,
`\\xff\\xd8\\xff`), never taken from the name or the declared type: content the hub cannot recognise
is refused, and a declared type that says something else than the content is refused too. Every
refusal is an `AttachmentRefused` (a `ValueError`) saying what was wrong and what is allowed, and
it comes before anything is written.

The file name is metadata shown to people, never a path: `clean_filename` keeps its last path
component, drops control characters and the bidirectional controls that make `invoice<U+202E>fdp.exe`
read as `invoiceexe.pdf`, collapses whitespace, keeps CJK (`信用修复申请.pdf`), and refuses an empty
name or one over 200 characters.

GraphQL inputs carry an attachment as base64 (`decode_upload`): strictly decoded (no whitespace, no
data URL, correct padding), and refused unread when its length alone implies more than the limit.

Storage is an `AttachmentStore`: `put` checks and stores the bytes and answers a `StoredAttachment`
(key, cleaned file name, sniffed type, size, sha256), `get` gives the bytes of a key back,
`exists` says whether a key is stored. The store keeps bytes only; the file name and type belong
to the case's record of the attachment. The hub ships one store, `LocalAttachments`, on the local
disk (`<data-dir>/attachments`); any class implementing `AttachmentStore` can replace it, e.g. one
over an S3-compatible object store.

`LocalAttachments` is content-addressed: the key is the sha256 of the content (64 lowercase hex
digits) and the file is `<root>/ab/abcdef…` (the first two digits name the folder), so the same
content is stored once, however often it is filed. A filing is acknowledged only once stored:
`put` writes a temporary file in the target folder, fsyncs it, renames it into place
(`os.replace`) and fsyncs the folder before it returns. Folders are created 0700, files 0600.
`get` accepts only a well-formed key (nothing else reaches the file system, so no path traversal)
and checks that the content still has its sha256: a file changed on disk raises
`AttachmentCorrupted`; filing the same content again repairs it. File I/O runs in a worker thread
(`asyncio.to_thread`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from xinlian.policies.cases import AttachmentRules

MB = 1024 * 1024
DATA_DIR_FOLDER = "attachments"  # <data-dir>/attachments
DIR_MODE = 0o700
FILE_MODE = 0o600
MAX_FILENAME_CHARS = 200

# The types the hub recognises, by their first bytes, with the name people know them by.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_LABELS = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
RECOGNISED_TYPES = tuple(_LABELS)

# Bidirectional controls: embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069), the
# left-to-right and right-to-left marks (U+200E, U+200F) and the Arabic letter mark (U+061C).
_BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)] + ["\u200e", "\u200f", "\u061c"]
)
_KEY = re.compile(r"[0-9a-f]{64}")


class AttachmentRefused(ValueError):
    """An attachment (or a key) the hub does not accept; the message says what is wrong and what is allowed."""


class AttachmentCorrupted(RuntimeError):
    """A stored attachment whose content no longer has the sha256 it was stored under."""


class AttachmentMissing(LookupError):
    """No attachment is stored under a (well-formed) key."""


@dataclass(frozen=True)
class AttachmentPolicy:
    """What attachments a case accepts: the size of a file, the number a case, the types."""

    max_bytes: int = 10 * MB
    max_per_case: int = 10
    media_types: tuple[str, ...] = ("application/pdf", "image/jpeg", "image/png")

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_per_case"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
        if not self.media_types:
            raise ValueError("media_types must name at least one type")
        for media_type in self.media_types:
            if media_type not in RECOGNISED_TYPES:
                raise ValueError(f"media type {media_type!r} is not one the hub recognises "
                                 f"(only {', '.join(RECOGNISED_TYPES)})")

    @classmethod
    def standard(cls) -> AttachmentPolicy:
        """The default: 10 MB a file, 10 files a case, PDF, JPEG or PNG."""
        return cls()

    @classmethod
    def of(cls, rules: "AttachmentRules") -> AttachmentPolicy:
        """The policy document's `[cases.attachments]` as the checks take it."""
        return cls(max_bytes=rules.max_bytes, max_per_case=rules.max_per_case, media_types=rules.media_types)

    @classmethod
    def widest(cls) -> AttachmentPolicy:
        """What any policy may allow (policies/cases.py: at most 100 MB a file): the store's own
        bound; the policy in force is checked before the store is asked (hub/cases/register.py)."""
        return cls(max_bytes=100 * MB, max_per_case=100, media_types=RECOGNISED_TYPES)

    def describe_types(self) -> str:
        """The accepted types for people: "PDF, JPEG or PNG"."""
        labels = [_LABELS[t] for t in self.media_types]
        return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"

    def describe_limit(self) -> str:
        """The size limit for people: "10 MB (10485760 bytes)"."""
        return f"{self.max_bytes / MB:g} MB ({self.max_bytes} bytes)"


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment as stored: its key in the store, its cleaned name, its sniffed type, size and sha256."""

    key: str  # the storage key: the sha256 in lowercase hex
    filename: str
    media_type: str
    size: int
    sha256: str


@runtime_checkable
class AttachmentStore(Protocol):
    """Where attachments are kept. `LocalAttachments` ships; an S3-compatible store can replace it."""

    async def put(self, filename: str, declared_type: str | None, data: bytes) -> StoredAttachment:
        """Check `data` (refusing it with `AttachmentRefused`), store it durably, and say where it is."""
        ...

    async def get(self, key: str) -> bytes:
        """The content stored under `key`, checked against its sha256."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether content is stored under `key`."""
        ...


def sniff_media_type(data: bytes) -> str | None:
    """The type of `data` by its first bytes: application/pdf, image/png or image/jpeg; None for anything else."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    return None


def clean_filename(name: str) -> str:
    """The file name to show: the last path component, without control or bidi characters, whitespace collapsed.

    Raises `AttachmentRefused` when nothing is left or more than 200 characters are."""
    if not isinstance(name, str):
        raise AttachmentRefused(f"a file name must be text, not {type(name).__name__}")
    kept = "".join(c for c in name
                   if c not in _BIDI_CONTROLS and (c.isspace() or unicodedata.category(c) != "Cc"))
    last = re.split(r"[/\\]", kept)[-1]
    cleaned = " ".join(last.split())
    if cleaned in ("", ".", ".."):
        raise AttachmentRefused(f"the file name {name!r} is empty once cleaned: give the file a name, "
                                "e.g. 证明材料.pdf")
    if len(cleaned) > MAX_FILENAME_CHARS:
        raise AttachmentRefused(f"the file name is {len(cleaned)} characters long; "
                                f"at most {MAX_FILENAME_CHARS} are allowed")
    return cleaned


def check_attachment(data: bytes, declared_type: str | None, policy: AttachmentPolicy) -> str:
    """Check `data` against `policy` and the declared type; its sniffed type, or `AttachmentRefused`."""
    if not isinstance(data, bytes):
        raise AttachmentRefused(f"an attachment's content must be bytes, not {type(data).__name__}")
    if not data:
        raise AttachmentRefused("the file is empty: attach a PDF, JPEG or PNG file with content")
    if len(data) > policy.max_bytes:
        raise AttachmentRefused(f"the file is {len(data)} bytes, over the limit of {policy.describe_limit()}")
    sniffed = sniff_media_type(data)
    if sniffed is None:
        raise AttachmentRefused(f"the file is not a PDF, JPEG or PNG file: only {policy.describe_types()} "
                                "files are accepted")
    if sniffed not in policy.media_types:
        raise AttachmentRefused(f"the file is a {_LABELS[sniffed]} file: only {policy.describe_types()} "
                                "files are accepted")
    if declared_type is not None:
        declared = declared_type.split(";", 1)[0].strip().lower()
        if declared != sniffed:
            raise AttachmentRefused(f"the file is declared as {declared_type!r} but its content is a "
                                    f"{_LABELS[sniffed]} file ({sniffed}): declare {sniffed}, or no type")
    return sniffed


def check_attachment_count(existing: int, adding: int, policy: AttachmentPolicy) -> None:
    """Refuse adding `adding` attachments to a case that has `existing` when that passes `max_per_case`."""
    if existing + adding > policy.max_per_case:
        raise AttachmentRefused(f"a case takes at most {policy.max_per_case} attachments; it has {existing}, "
                                f"and {adding} more would make {existing + adding}")


def decode_upload(content_base64: str, policy: AttachmentPolicy) -> bytes:
    """The bytes of an attachment sent as base64 (GraphQL inputs), strictly decoded.

    Refused (`AttachmentRefused`) without decoding when the length alone implies more than
    `policy.max_bytes`; refused when it is not valid base64 (standard alphabet, padded, no
    whitespace) or is empty."""
    if not isinstance(content_base64, str):
        raise AttachmentRefused(f"an upload must be base64 text, not {type(content_base64).__name__}")
    length = len(content_base64)
    padding = min(2, length - len(content_base64.rstrip("=")))
    implied = length * 3 // 4 - padding  # exact for valid base64
    if implied > policy.max_bytes:
        raise AttachmentRefused(f"the upload is about {implied} bytes, over the limit of {policy.describe_limit()}")
    try:
        data = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentRefused("the upload is not valid base64: send the file's bytes in standard base64 "
                                "(A–Z, a–z, 0–9, + and /, padded with =, no spaces or line breaks)") from None
    if not data:
        raise AttachmentRefused("the upload is empty: attach a PDF, JPEG or PNG file with content")
    return data


def check_key(key: str) -> str:
    """`key` if it is a storage key (64 lowercase hex digits), else `AttachmentRefused`."""
    if not isinstance(key, str) or _KEY.fullmatch(key) is None:
        raise AttachmentRefused(f"{key!r} is not an attachment key: a key is 64 lowercase hexadecimal digits "
                                "(the sha256 of the content)")
    return key


class LocalAttachments:
    """Attachments on the local disk, content-addressed: `<root>/ab/abcdef…` holds the content whose sha256 is `abcdef…`."""

    def __init__(self, root: Path, policy: AttachmentPolicy) -> None:
        self.root = Path(root)
        self.policy = policy

    @classmethod
    def in_data_dir(cls, data_dir: Path, policy: AttachmentPolicy) -> LocalAttachments:
        """The store of the hub's data directory: `<data_dir>/attachments`."""
        return cls(Path(data_dir) / DATA_DIR_FOLDER, policy)

    def path_for(self, key: str) -> Path:
        """Where the content of `key` is (or would be) stored; refuses a malformed key."""
        key = check_key(key)
        return self.root / key[:2] / key

    async def put(self, filename: str, declared_type: str | None, data: bytes) -> StoredAttachment:
        """Check the attachment, store it (once per content) and return it once it is durable on disk."""
        name = clean_filename(filename)
        media_type = check_attachment(data, declared_type, self.policy)
        digest = await asyncio.to_thread(self._store, data)
        return StoredAttachment(key=digest, filename=name, media_type=media_type, size=len(data), sha256=digest)

    async def get(self, key: str) -> bytes:
        """The content of `key`; `AttachmentMissing` if none, `AttachmentCorrupted` if it changed on disk."""
        path = self.path_for(key)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise AttachmentMissing(f"no attachment is stored under {key}") from None
        if hashlib.sha256(data).hexdigest() != key:
            raise AttachmentCorrupted(f"attachment {key} is corrupted: {path} no longer has the sha256 it was "
                                      "stored under (restore it from a backup, or file the original again)")
        return data

    async def exists(self, key: str) -> bool:
        """Whether content is stored under `key` (refuses a malformed key)."""
        path = self.path_for(key)
        return await asyncio.to_thread(path.is_file)

    def _store(self, data: bytes) -> str:
        """Write `data` under its sha256 unless it is already there intact; fsynced. Runs in a worker thread."""
        digest = hashlib.sha256(data).hexdigest()
        folder = self.root / digest[:2]
        target = folder / digest
        if _make_dir(self.root):
            _fsync_dir(self.root.parent)
        if _make_dir(folder):
            _fsync_dir(self.root)
        if _holds(target, digest):
            _fsync_dir(folder)  # in case the rename that put it there was not made durable yet
            return digest
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), FILE_MODE)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(folder)
        return digest


def _make_dir(path: Path) -> bool:
    """Create `path` (0700) if it is missing; whether it was created."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
    except FileExistsError:
        return False
    os.chmod(path, DIR_MODE)  # mkdir's mode is narrowed by the umask; make it exactly 0700
    return True


def _holds(path: Path, digest: str) -> bool:
    """Whether `path` exists and its content has sha256 `digest` (a damaged copy is written again)."""
    try:
        with open(path, "rb") as stored:
            return hashlib.file_digest(stored, "sha256").hexdigest() == digest
    except FileNotFoundError:
        return False


def _fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
