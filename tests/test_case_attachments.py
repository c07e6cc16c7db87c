"""Attachments of cases (issue 12): only PDF, JPEG and PNG recognised by their first bytes, at most
the policy's size (exactly the limit accepted, one byte more refused with nothing written), a
declared type that contradicts the content refused, the same content stored once under its sha256
with private permissions and fsynced before `put` returns, corruption and malformed keys caught on
`get`, file names cleaned of paths and bidi controls (CJK kept), base64 uploads strictly decoded
and refused unread when too large.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from xinlian.hub.cases import attachments as attachments_module
from xinlian.hub.cases.attachments import (
    AttachmentCorrupted,
    AttachmentMissing,
    AttachmentPolicy,
    AttachmentRefused,
    AttachmentStore,
    LocalAttachments,
    StoredAttachment,
    check_attachment_count,
    clean_filename,
    decode_upload,
    sniff_media_type,
)

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
MB = 1024 * 1024


def files_under(path: Path) -> list[Path]:
    """Every file (not folder) below `path`, hidden temporary files included."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def pdf_of(size: int) -> bytes:
    """A PDF header padded to exactly `size` bytes."""
    return PDF + b"%" * (size - len(PDF))


@pytest.fixture
def store(tmp_path: Path) -> LocalAttachments:
    return LocalAttachments(tmp_path / "attachments", AttachmentPolicy(max_bytes=1000))


# --- the policy -----------------------------------------------------------------------------------


def test_standard_policy() -> None:
    policy = AttachmentPolicy.standard()
    assert policy == AttachmentPolicy(10 * MB, 10, ("application/pdf", "image/jpeg", "image/png"))
    assert policy.describe_types() == "PDF, JPEG or PNG"
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_bytes = 1  # type: ignore[misc]  # frozen


@pytest.mark.parametrize("kwargs", [
    {"max_bytes": 0}, {"max_per_case": 0}, {"max_bytes": True}, {"media_types": ()},
    {"media_types": ("image/gif",)},
])
def test_policy_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AttachmentPolicy(**kwargs)  # type: ignore[arg-type]


def test_attachments_per_case() -> None:
    policy = AttachmentPolicy(max_per_case=3)
    check_attachment_count(2, 1, policy)
    with pytest.raises(AttachmentRefused, match="at most 3 attachments"):
        check_attachment_count(3, 1, policy)
    with pytest.raises(AttachmentRefused):
        check_attachment_count(0, 4, policy)


# --- sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "expected"), [
    (PDF, "application/pdf"),
    (PNG, "image/png"),
    (JPEG, "image/jpeg"),
    (b"%PDF", None),  # no dash: cut short
    (b"\x89PNG\r\n", None),  # cut short
    (b"\xff\xd8", None),
    (b"GIF89a\x01\x00\x01\x00", None),
    (b"MZ\x90\x00", None),  # a Windows executable
    (b"<html><body>%PDF-1.7", None),  # the signature must come first
    (b"", None),
])
def test_sniff_media_type(data: bytes, expected: str | None) -> None:
    assert sniff_media_type(data) == expected


# --- file names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("证明材料.pdf", "证明材料.pdf"),
    ("C:\\Users\\王伟\\Desktop\\信用修复申请.pdf", "信用修复申请.pdf"),
    ("../../etc/passwd", "passwd"),
    ("/var/lib/xinlian/attachments/ab/x.png", "x.png"),
    ("invoice\u202egpj.exe", "invoicegpj.exe"),  # would read as invoiceexe.jpg
    ("\u2066a\u2067b\u2068c\u2069\u202a\u202b\u202c\u202d\u200e\u200f\u061cd.pdf", "abcd.pdf"),
    ("a\x00b\x1b[31mc\x7f\x9b.pdf", "ab[31mc.pdf"),
    ("  营业执照 \t 副本\n(2026).jpg  ", "营业执照 副本 (2026).jpg"),
    ("a\u3000\u3000b.png", "a b.png"),  # ideographic spaces collapse too
])
def test_clean_filename(raw: str, cleaned: str) -> None:
    assert clean_filename(raw) == cleaned


@pytest.mark.parametrize("raw", ["", "   ", "\t\n", "scans/", "a\\", "\u202e\u200f", "\x00", "..", "x/.."])
def test_clean_filename_refuses_empty(raw: str) -> None:
    with pytest.raises(AttachmentRefused, match="empty"):
        clean_filename(raw)


def test_clean_filename_length_counts_characters() -> None:
    assert clean_filename("证" * 196 + ".pdf") == "证" * 196 + ".pdf"  # 200 characters, 592 bytes
    assert clean_filename("dir/" * 100 + "a" * 200) == "a" * 200
    with pytest.raises(AttachmentRefused, match="201 characters"):
        clean_filename("证" * 197 + ".pdf")


# --- storing --------------------------------------------------------------------------------------


async def test_put_and_get(store: LocalAttachments) -> None:
    assert isinstance(store, AttachmentStore)
    stored = await store.put("../回执/证明.pdf", "application/pdf", PDF)
    digest = hashlib.sha256(PDF).hexdigest()
    assert stored == StoredAttachment(key=digest, filename="证明.pdf", media_type="application/pdf",
                                      size=len(PDF), sha256=digest)
    assert files_under(store.root) == [store.root / digest[:2] / digest]
    assert (store.root / digest[:2] / digest).read_bytes() == PDF
    assert await store.get(stored.key) == PDF
    assert await store.exists(stored.key)
    assert not await store.exists("0" * 64)


@pytest.mark.parametrize(("data", "media_type"), [(PNG, "image/png"), (JPEG, "image/jpeg")])
async def test_images_stored_with_sniffed_type(store: LocalAttachments, data: bytes, media_type: str) -> None:
    stored = await store.put("photo", None, data)  # no declared type, no extension: the content decides
    assert stored.media_type == media_type
    assert await store.get(stored.key) == data


async def test_declared_type_is_case_insensitive(store: LocalAttachments) -> None:
    stored = await store.put("a.png", "Image/PNG", PNG)
    assert stored.media_type == "image/png"


def test_in_data_dir(tmp_path: Path) -> None:
    store = LocalAttachments.in_data_dir(tmp_path, AttachmentPolicy.standard())
    assert store.root == tmp_path / "attachments"
    assert store.policy == AttachmentPolicy.standard()


async def test_exactly_max_bytes_accepted_one_more_refused(store: LocalAttachments) -> None:
    with pytest.raises(AttachmentRefused, match="1001 bytes"):
        await store.put("big.pdf", "application/pdf", pdf_of(1001))
    assert files_under(store.root.parent) == []  # nothing written, not even the folder
    stored = await store.put("fits.pdf", "application/pdf", pdf_of(1000))
    assert stored.size == 1000
    assert await store.get(stored.key) == pdf_of(1000)


async def test_standard_limit_is_ten_megabytes(tmp_path: Path) -> None:
    store = LocalAttachments(tmp_path / "attachments", AttachmentPolicy.standard())
    with pytest.raises(AttachmentRefused, match=r"10485761 bytes, over the limit of 10 MB \(10485760 bytes\)"):
        await store.put("scan.pdf", None, pdf_of(10 * MB + 1))
    assert files_under(tmp_path) == []
    stored = await store.put("scan.pdf", None, pdf_of(10 * MB))
    assert stored.size == 10 * MB
    assert (store.root / stored.key[:2] / stored.key).stat().st_size == 10 * MB


@pytest.mark.parametrize(("data", "declared", "message"), [
    (b"", None, "empty"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00", "image/gif", "only PDF, JPEG or PNG"),
    (b"hello, this is text", None, "only PDF, JPEG or PNG"),
    (b"MZ\x90\x00" + PDF, "application/pdf", "only PDF, JPEG or PNG"),
    (PNG, "application/pdf", "declared as 'application/pdf' but its content is a PNG"),
    (PDF, "image/jpeg", "declared as 'image/jpeg' but its content is a PDF"),
    (JPEG, "image/png", "declared as 'image/png' but its content is a JPEG"),
    (JPEG, "", "declared as ''"),
])
async def test_refused_before_anything_is_written(store: LocalAttachments, data: bytes, declared: str | None,
                                                  message: str) -> None:
    with pytest.raises(AttachmentRefused, match=message):
        await store.put("file.pdf", declared, data)
    assert files_under(store.root.parent) == []


async def test_policy_types_restrict(tmp_path: Path) -> None:
    store = LocalAttachments(tmp_path / "a", AttachmentPolicy(media_types=("application/pdf",)))
    with pytest.raises(AttachmentRefused, match="a PNG file: only PDF files are accepted"):
        await store.put("x.png", "image/png", PNG)
    assert files_under(tmp_path) == []
    assert (await store.put("x.pdf", None, PDF)).media_type == "application/pdf"


async def test_bad_filename_refused_before_writing(store: LocalAttachments) -> None:
    with pytest.raises(AttachmentRefused):
        await store.put("uploads/", None, PDF)
    assert files_under(store.root.parent) == []


async def test_same_content_stored_once(store: LocalAttachments) -> None:
    first = await store.put("回执.pdf", "application/pdf", PDF)
    second = await store.put("copy of receipt.pdf", None, PDF)
    assert first.key == second.key
    assert (first.filename, second.filename) == ("回执.pdf", "copy of receipt.pdf")
    assert len(files_under(store.root)) == 1
    other = await store.put("photo.png", None, PNG)
    assert other.key != first.key
    assert len(files_under(store.root)) == 2


async def test_permissions(tmp_path: Path) -> None:
    old = os.umask(0o000)  # even with a permissive umask
    try:
        store = LocalAttachments(tmp_path / "attachments", AttachmentPolicy.standard())
        stored = await store.put("a.pdf", None, PDF)
    finally:
        os.umask(old)
    path = store.root / stored.key[:2] / stored.key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


async def test_durable_before_put_returns(store: LocalAttachments, monkeypatch: pytest.MonkeyPatch) -> None:
    """The content is fsynced before the rename into place, and the folder after it, all off the event loop."""
    events: list[str] = []
    loop_thread = threading.get_ident()
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        assert threading.get_ident() != loop_thread, "file I/O on the event loop's thread"
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    await store.put("a.pdf", None, PDF)
    assert "replace" in events
    before, after = events[:events.index("replace")], events[events.index("replace") + 1:]
    assert "fsync file" in before
    assert after == ["fsync dir"]
    assert [p.name for p in files_under(store.root)] == [hashlib.sha256(PDF).hexdigest()]  # no temporary left


async def test_failed_write_leaves_no_temporary(store: LocalAttachments, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def broken(fd: int) -> None:  # the disk fails while the content is made durable
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        await store.put("a.pdf", None, PDF)
    monkeypatch.undo()
    assert store.root.is_dir()  # it got as far as the folders
    assert files_under(store.root) == []  # but the temporary file is gone and nothing is in place
    assert not await store.exists(hashlib.sha256(PDF).hexdigest())


# --- reading back ---------------------------------------------------------------------------------


async def test_corruption_detected_and_repaired(store: LocalAttachments) -> None:
    stored = await store.put("a.png", None, PNG)
    path = store.root / stored.key[:2] / stored.key
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(AttachmentCorrupted, match=stored.key):
        await store.get(stored.key)
    await store.put("a.png", None, PNG)  # filing the original again repairs the copy
    assert await store.get(stored.key) == PNG
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_missing_key(store: LocalAttachments) -> None:
    with pytest.raises(AttachmentMissing):
        await store.get(hashlib.sha256(b"never stored").hexdigest())


@pytest.mark.parametrize("key", [
    "../secret",
    "../../etc/passwd",
    "/etc/passwd",
    "ab/" + "a" * 61,
    "A" * 64,  # uppercase
    "a" * 63,
    "a" * 65,
    "a" * 64 + "\n",
    "g" * 64,
    "..%2f" + "a" * 59,
    "",
])
async def test_malformed_keys_refused(store: LocalAttachments, key: str) -> None:
    secret = store.root.parent / "secret"
    secret.write_bytes(PDF)
    with pytest.raises(AttachmentRefused, match="not an attachment key"):
        await store.get(key)
    with pytest.raises(AttachmentRefused, match="not an attachment key"):
        await store.exists(key)


async def test_traversal_key_cannot_reach_a_file_with_matching_hash(store: LocalAttachments) -> None:
    """Even a file whose content matches the name part of the key stays out of reach outside the layout."""
    digest = hashlib.sha256(PDF).hexdigest()
    (store.root.parent / digest).write_bytes(PDF)
    with pytest.raises(AttachmentRefused):
        await store.get(f"../{digest}")
    with pytest.raises(AttachmentMissing):
        await store.get(digest)


# --- base64 uploads -------------------------------------------------------------------------------


def test_decode_upload() -> None:
    policy = AttachmentPolicy(max_bytes=1000)
    assert decode_upload(base64.b64encode(PDF).decode(), policy) == PDF
    for size in (998, 999, 1000):  # each padding: ==, =, none
        assert decode_upload(base64.b64encode(pdf_of(size)).decode(), policy) == pdf_of(size)


@pytest.mark.parametrize("text", [
    "not base64!",
    base64.b64encode(PDF).decode()[:-1],  # padding cut
    base64.b64encode(PDF).decode() + "\n",
    "JVBE Ri0x",  # a space
    "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
    base64.urlsafe_b64encode(b"\xff\xd8\xff\xfe\xfb").decode(),  # URL-safe alphabet
    "证明",
    "",
    "====",
])
def test_decode_upload_refuses_invalid(text: str) -> None:
    with pytest.raises(AttachmentRefused):
        decode_upload(text, AttachmentPolicy(max_bytes=1000))


@pytest.mark.parametrize("size", [1001, 1002, 1003, 5000])
def test_decode_upload_refuses_oversized(size: int) -> None:
    with pytest.raises(AttachmentRefused, match="over the limit of"):
        decode_upload(base64.b64encode(pdf_of(size)).decode(), AttachmentPolicy(max_bytes=1000))


def test_decode_upload_refuses_oversized_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an upload already known to be too large")

    monkeypatch.setattr(attachments_module.base64, "b64decode", no_decoding)
    with pytest.raises(AttachmentRefused, match="over the limit of 10 MB"):
        decode_upload("A" * (14 * MB), AttachmentPolicy.standard())
