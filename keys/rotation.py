"""Signing-key rotation: a new key signs from now on, the old one verifies until its grace ends.

`rotate(data_dir, grace)` (what `xinlian keys rotate` runs), under the key directory's lock:

1. reads the manifest and checks every key file (a broken keyring is not rotated);
2. generates a new ES256 key and writes its file;
3. marks the signing key `retired` = now and `verify_until` = now + `grace` (rounded up to the
   second, so the grace is never shortened), keeps every other entry as it was;
4. replaces the manifest atomically with the new key as "signing".

Tokens signed by the retired key stay valid until `verify_until`; give a grace of at least the
access-token lifetime plus the validator's clock-skew leeway so that no token in flight is cut
short (that is the CLI's default). `grace=0` stops the old key at once — for a compromised key.
Running hubs notice the new manifest within their keyring's reload interval (`keys.keyring`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

from .keyring import key_directory
from .manifest import (
    MANIFEST,
    KeyringError,
    Manifest,
    load_private_key,
    locked,
    new_key_entry,
    read_manifest,
    utcnow,
    write_private,
)

log = logging.getLogger("xinlian.keys")


@dataclasses.dataclass(frozen=True)
class Rotation:
    """What a rotation did: the key that signs now, and the key it replaced with its grace end."""

    new_kid: str
    retired_kid: str
    retired: dt.datetime
    verify_until: dt.datetime


def _grace_end(now: dt.datetime, grace: float) -> dt.datetime:
    if grace == 0:  # at once: the second already begun, so the key stops verifying now
        return now.replace(microsecond=0)
    end = now + dt.timedelta(seconds=grace)
    if end.microsecond:  # the manifest keeps seconds: round up, never shorten the grace
        end = end.replace(microsecond=0) + dt.timedelta(seconds=1)
    return end


def rotate(data_dir: Path | str, grace: float, *, now: dt.datetime | None = None) -> Rotation:
    """Make a new signing key and retire the current one with `grace` seconds of verification."""
    if grace < 0:
        raise ValueError("the grace period cannot be negative")
    directory = key_directory(data_dir)
    if not (directory / MANIFEST).exists():
        raise KeyringError(f"no keys in {directory} yet (the hub generates the first key when it first starts)")
    with locked(directory):
        manifest = read_manifest(directory)
        for entry in manifest.entries:  # refuse to rotate a keyring that does not load
            load_private_key(directory, entry)
        moment = (now or utcnow()).astimezone(dt.timezone.utc)
        retired_at = moment.replace(microsecond=0)
        verify_until = _grace_end(moment, grace)
        new = new_key_entry(directory, moment)
        entries = tuple(
            dataclasses.replace(e, retired=retired_at, verify_until=verify_until) if e.kid == manifest.signing else e
            for e in manifest.entries
        ) + (new,)
        write_private(directory / MANIFEST, Manifest(new.kid, entries).to_bytes())
    log.info("rotated signing key %s -> %s (old key verifies until %s)", manifest.signing, new.kid, verify_until)
    return Rotation(new_kid=new.kid, retired_kid=manifest.signing, retired=retired_at, verify_until=verify_until)
