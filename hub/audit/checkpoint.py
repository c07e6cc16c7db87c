"""Signed checkpoints of the audit trail: the chain head (seq and hash), signed by the hub's key.

A hash chain shows any change *inside* the trail, but not a cut tail, a trail rewritten from
some entry onward with fresh hashes, or an emptied table: anyone can compute SHA-256. A
checkpoint fixes the head at a moment with a signature only the hub's keyring can make (after
RFC 6962's signed tree head: tree size + root hash + timestamp, signed by the log; and X-Road's
message log, whose hash chains are anchored by signed timestamps). Kept outside the hub store,
and sent to a witness, it lets `xinlian audit verify` demand that the chain still holds entry
`seq` with exactly that hash.

Format: a JWS in compact serialisation, ES256, protected header
`{"alg": "ES256", "kid": <signing kid>, "typ": "xinlian-audit-checkpoint"}`, payload the canonical
JSON `{"at": "<UTC, Z, microseconds>", "hash": <hex>, "iss": <issuer>, "seq": <n>, "v": 1}`.
On disk: `<data-dir>/audit-checkpoints/<YYYY-MM>.jsonl`, append-only, one checkpoint a line:
`{"at": ..., "hash": ..., "jws": "<compact JWS>", "kid": ..., "seq": ...}` (the plain fields are a
convenience; only the signed payload counts, and they must agree with it). Directory 0700,
files 0600.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, Iterable, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from xinlian.keys.keyring import Keyring

from .entry import canonical_json, format_time, parse_time

CHECKPOINT_TYPE = "xinlian-audit-checkpoint"
ALGORITHM = "ES256"
FORMAT_VERSION = 1
DIRECTORY_NAME = "audit-checkpoints"
DIR_MODE = 0o700
FILE_MODE = 0o600


class CheckpointError(ValueError):
    """A checkpoint line that cannot be read as one."""


def checkpoint_directory(data_dir: Path | str) -> Path:
    """`<data-dir>/audit-checkpoints`, absolute."""
    return Path(data_dir).expanduser().resolve() / DIRECTORY_NAME


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint: the trail held entry `seq` with hash `hash` at `at`.

    `token` is the compact JWS; the other fields are read from its payload (unverified until
    `verify_signature` has said so).
    """

    seq: int
    hash: str
    at: dt.datetime
    kid: str
    issuer: str
    token: str
    run_from: int | None = None  # head seals only: the first entry of the hub's unbroken sealed run

    def to_line(self) -> str:
        """The JSON line written to the checkpoint files (and printed for a witness)."""
        document = {"at": format_time(self.at), "hash": self.hash, "jws": self.token, "kid": self.kid, "seq": self.seq}
        return json.dumps(document, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint as read from a file: where it came from, and it, or why it is unreadable."""

    source: str  # "path:line"
    checkpoint: Checkpoint | None
    problem: str | None = None


def sign_checkpoint(
    keyring: Keyring, seq: int, head_hash: str, *, issuer: str, at: dt.datetime | None = None, run_from: int | None = None
) -> Checkpoint:
    """Sign the head (`seq`, `head_hash`) with the keyring's current signing key; `run_from`
    (head seals, seal.py) adds the payload member `from`."""
    moment = (at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    payload: dict[str, Any] = {"at": format_time(moment), "hash": head_hash, "iss": issuer, "seq": seq, "v": FORMAT_VERSION}
    if run_from is not None:
        payload["from"] = run_from
    kid, key = keyring.signing_pair()
    header = {"alg": ALGORITHM, "kid": kid, "typ": CHECKPOINT_TYPE}
    token = jws.serialize_compact(header, canonical_json(payload).encode("utf-8"), key, algorithms=[ALGORITHM])
    return Checkpoint(
        seq=seq, hash=head_hash, at=parse_time(format_time(moment)), kid=kid, issuer=issuer, token=token, run_from=run_from
    )


def _b64_json(part: str) -> Any:
    import base64

    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a checkpoint line: the JSON line of the files, or a bare compact JWS. Not verified."""
    text = text.strip()
    plain: dict[str, Any] | None = None
    token = text
    if text.startswith("{"):
        try:
            plain = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(f"not JSON: {exc}") from None
        if not isinstance(plain, dict) or not isinstance(plain.get("jws"), str):
            raise CheckpointError("no 'jws' member")
        token = plain["jws"]
    parts = token.split(".")
    if len(parts) != 3:
        raise CheckpointError("not a compact JWS")
    try:
        header, payload = _b64_json(parts[0]), _b64_json(parts[1])
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise CheckpointError("header or payload is not a JSON object")
        if header.get("typ") != CHECKPOINT_TYPE or payload.get("v") != FORMAT_VERSION:
            raise CheckpointError("not an audit checkpoint (typ or version)")
        seq, head_hash, issuer = payload["seq"], payload["hash"], payload.get("iss", "")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(head_hash, str):
            raise CheckpointError("seq or hash malformed")
        run_from = payload.get("from")
        if run_from is not None and (not isinstance(run_from, int) or isinstance(run_from, bool) or not 1 <= run_from <= seq + 1):
            raise CheckpointError("from malformed")
        checkpoint = Checkpoint(
            seq=seq, hash=head_hash, at=parse_time(payload["at"]), kid=str(header.get("kid", "")),
            issuer=str(issuer), token=token, run_from=run_from,
        )
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise CheckpointError(f"unreadable JWS: {type(exc).__name__}") from None
    if plain is not None:
        shown = {k: plain.get(k) for k in ("seq", "hash", "kid", "at")}
        signed = {"seq": checkpoint.seq, "hash": checkpoint.hash, "kid": checkpoint.kid, "at": format_time(checkpoint.at)}
        if shown != signed:
            raise CheckpointError("its plain fields disagree with its signed payload")
    return checkpoint


class SigningKeys(Protocol):
    """What checks a checkpoint's signature: the hub's `Keyring`, or a witness's `PublicKeySet`."""

    def past_signing_key(self, kid: str, signed_at: dt.datetime) -> ECKey | None: ...


class PublicKeySet:
    """The hub's public keys with their lives, read from the JWKS `xinlian audit keys` prints.

    Applies the keyring's rule (`Keyring.past_signing_key`): the key `kid` verifies a checkpoint
    signed at `at` if it was created at or before `at` (one minute of skew) and, when retired,
    `at` is not after its `verify_until` (to the second). A key without `created` (a plain JWKS,
    such as the hub's `/.well-known/jwks.json`) has no known start; one without `retired` is in
    service.
    """

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise CheckpointError("not a JWKS: no 'keys' list")
        self.keys: dict[str, tuple[ECKey, dt.datetime | None, dt.datetime | None, dt.datetime | None]] = {}
        for number, raw in enumerate(document["keys"], start=1):
            if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str):
                raise CheckpointError(f"key {number} has no kid")
            if raw.get("kty") != "EC" or raw.get("crv") != "P-256" or raw.get("alg", ALGORITHM) != ALGORITHM:
                raise CheckpointError(f"key {raw['kid']!r} is not an ES256 (EC P-256) key")
            if "d" in raw:
                raise CheckpointError(f"key {raw['kid']!r} holds private key material: export public keys only")
            try:
                key = ECKey.import_key({k: raw[k] for k in ("kty", "crv", "x", "y")})
                life = [_key_time(raw.get(name)) for name in ("created", "retired", "verify_until")]
            except (ValueError, KeyError, TypeError, JoseError) as exc:
                raise CheckpointError(f"key {raw['kid']!r} is unreadable: {type(exc).__name__}") from None
            self.keys[raw["kid"]] = (key, life[0], life[1], life[2])

    @classmethod
    def from_file(cls, path: Path) -> "PublicKeySet":
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise CheckpointError(f"{path} is not JSON: {exc}") from None
        return cls(document)

    def past_signing_key(self, kid: str, signed_at: dt.datetime) -> ECKey | None:
        found = self.keys.get(kid)
        if found is None:
            return None
        key, created, retired, verify_until = found
        if created is not None and signed_at < created - dt.timedelta(minutes=1):
            return None
        if retired is not None and (verify_until is None or signed_at.replace(microsecond=0) > verify_until):
            return None
        return key


def _key_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def verify_signature(checkpoint: Checkpoint, keyring: SigningKeys) -> str | None:
    """None if the hub's keyring signed this checkpoint (retired and expired keys included,
    as long as the key was in service at the checkpoint's time); otherwise what is wrong."""
    key = keyring.past_signing_key(checkpoint.kid, checkpoint.at)
    if key is None:
        return f"signed with key {checkpoint.kid!r}, which is not a key of the hub's keyring in service at {format_time(checkpoint.at)}"
    try:
        result = jws.deserialize_compact(checkpoint.token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError):
        return "its signature does not verify with the hub's key"
    if result.headers().get("alg") != ALGORITHM:
        return "its signature algorithm is not ES256"
    return None


def append_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Append one line to `<directory>/<YYYY-MM>.jsonl` (created 0600, directory 0700), fsynced."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIR_MODE)
    path = directory / f"{checkpoint.at:%Y-%m}.jsonl"
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, (checkpoint.to_line() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def read_checkpoint_file(path: Path) -> list[LoadedCheckpoint]:
    """Every non-empty line of a checkpoint file (ours, or a witness's copy), parsed, not verified."""
    loaded: list[LoadedCheckpoint] = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            source = f"{path}:{number}"
            try:
                loaded.append(LoadedCheckpoint(source, parse_checkpoint(line)))
            except CheckpointError as exc:
                loaded.append(LoadedCheckpoint(source, None, str(exc)))
    return loaded


def read_checkpoints(directory: Path, extra_files: Iterable[Path] = ()) -> list[LoadedCheckpoint]:
    """The checkpoints of `directory` (`*.jsonl`, oldest file first) and of any `extra_files`."""
    files = sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
    loaded: list[LoadedCheckpoint] = []
    for path in [*files, *extra_files]:
        loaded.extend(read_checkpoint_file(path))
    return loaded


def latest_valid(loaded: Iterable[LoadedCheckpoint], keyring: SigningKeys) -> Checkpoint | None:
    """The checkpoint with the highest seq (then the latest time) whose signature verifies."""
    valid = [c.checkpoint for c in loaded if c.checkpoint is not None and verify_signature(c.checkpoint, keyring) is None]
    return max(valid, key=lambda c: (c.seq, c.at), default=None)


@dataclass(frozen=True)
class WitnessReport:
    """What `verify_witness_copy` found in a witness's checkpoints, with only public keys."""

    read: int
    valid: list[Checkpoint]
    findings: list[str]

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def newest(self) -> Checkpoint | None:
        return max(self.valid, key=lambda c: (c.seq, c.at), default=None)


def verify_witness_copy(
    loaded: list[LoadedCheckpoint], keys: SigningKeys, *, head: tuple[int, str] | None = None
) -> WitnessReport:
    """Check a witness's checkpoints without the hub's chain: every signature (FORGED otherwise),
    no two valid checkpoints with the same seq and different hashes (a FORK: the hub signed two
    different histories), and seq and time moving together (a higher seq signed at an earlier
    time is NOT MONOTONIC). With `head` (the hub's current seq and hash, as a checkpoint it
    prints now): the head must not be behind the newest witnessed checkpoint, and must not
    contradict a witnessed checkpoint of the same seq. Whether the head *extends* the witnessed
    checkpoints needs the chain (`xinlian audit verify --checkpoint`)."""
    findings: list[str] = []
    valid: list[Checkpoint] = []
    sources: dict[int, str] = {}
    for item in loaded:
        if item.checkpoint is None:
            findings.append(f"checkpoint {item.source} is unreadable: {item.problem}")
            continue
        problem = verify_signature(item.checkpoint, keys)
        if problem is not None:
            findings.append(f"checkpoint {item.source} is FORGED: {problem}")
            continue
        valid.append(item.checkpoint)
        sources[id(item.checkpoint)] = item.source
    by_seq: dict[int, Checkpoint] = {}
    for checkpoint in valid:
        seen = by_seq.setdefault(checkpoint.seq, checkpoint)
        if seen.hash != checkpoint.hash:
            findings.append(
                f"FORK at entry {checkpoint.seq}: {sources[id(seen)]} signs hash {seen.hash}, "
                f"{sources[id(checkpoint)]} signs hash {checkpoint.hash}"
            )
    latest_lower: Checkpoint | None = None  # the latest-signed checkpoint of any lower seq
    for _, group in groupby(sorted(valid, key=lambda c: (c.seq, c.at)), key=lambda c: c.seq):
        members = list(group)
        early = members[0]
        if latest_lower is not None and early.at < latest_lower.at:
            findings.append(
                f"NOT MONOTONIC: {sources[id(early)]} anchors entry {early.seq} signed "
                f"{format_time(early.at)}, before {sources[id(latest_lower)]} anchoring the earlier "
                f"entry {latest_lower.seq} (signed {format_time(latest_lower.at)})"
            )
        if latest_lower is None or members[-1].at > latest_lower.at:
            latest_lower = members[-1]
    newest = max(valid, key=lambda c: (c.seq, c.at), default=None)
    if head is not None:
        head_seq, head_hash = head
        if newest is not None and head_seq < newest.seq:
            findings.append(
                f"the hub's head (entry {head_seq}) is BEHIND the witnessed checkpoint of entry {newest.seq} "
                f"signed {format_time(newest.at)}: entries were cut or the trail rolled back"
            )
        same = by_seq.get(head_seq)
        if same is not None and same.hash != head_hash:
            findings.append(
                f"FORK at entry {head_seq}: the hub's head has hash {head_hash}, the witnessed checkpoint "
                f"{sources[id(same)]} signs hash {same.hash}"
            )
    return WitnessReport(read=len(loaded), valid=valid, findings=findings)
