"""`xinlian keys list|rotate`: the signing keys in `<data-dir>/keys/`.

`list` shows each key's kid, algorithm, creation time, grace end and status (`active`,
`retired-verifying`, `expired`); it never prints key material and does not create keys.
`rotate` makes a new signing key and retires the current one, which keeps verifying for
`--grace` seconds (default: the access-token lifetime plus the validator's clock-skew leeway,
so every token it signed stays valid until it expires). Running hubs pick the new key up within
a few seconds, without restart. A rotation is audited: one entry (`endpoint` "cli", `client_id`
the `--by` name, `detail.action` "rotateSigningKey" with the new and retired kid). Exit codes: 0 done (or no keys yet, for `list`), 1 nothing to
rotate, 2 the key directory is unreadable or inconsistent, no hub store, or the audit entry
could not be written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.auth.bearer import LEEWAY
from xinlian.hub.config import Settings
from xinlian.keys.keyring import KeyDescription, Keyring, KeyringError, key_directory
from xinlian.keys.manifest import MANIFEST
from xinlian.keys.rotation import rotate

from .admin_session import BY_HELP, DEFAULT_BY, audit_actions, refuse_missing_store

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the grace period cannot be negative")
    return value


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = sub.add_parser("keys", help="inspect and rotate the signing keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    ls = actions.add_parser("list", help="list the signing keys: kid, algorithm, created, status")
    ls.add_argument("--json", action="store_true", help="one JSON object per key and line")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.set_defaults(handler=run_list)

    rot = actions.add_parser("rotate", help="make a new signing key; the old one verifies until its grace ends")
    rot.add_argument(
        "--grace",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long the retired key keeps verifying (default: access-token TTL + leeway; 0 = at once)",
    )
    rot.add_argument("--json", action="store_true", help="print the result as JSON")
    rot.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    rot.add_argument("--by", default=DEFAULT_BY, metavar="NAME", help=BY_HELP)
    rot.set_defaults(handler=run_rotate)


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def _as_json(key: KeyDescription) -> str:
    return json.dumps(
        {
            "kid": key.kid,
            "alg": key.alg,
            "created": _when(key.created),
            "retired": key.retired and _when(key.retired),
            "verify_until": key.verify_until and _when(key.verify_until),
            "status": key.status,
            "path": str(key.path),
        }
    )


def run_list(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.data_dir)
    try:
        keyring = Keyring.load(settings.data_dir)
    except (KeyringError, OSError) as exc:
        print(f"xinlian keys: {exc}", file=sys.stderr)
        return 2
    if keyring is None:
        print(f"no keys in {settings.data_dir / 'keys'} yet (the hub generates one when it first starts)")
        return 0
    described = keyring.describe()
    if args.json:
        for key in described:
            print(_as_json(key))
        return 0
    kid_width = max(len("KID"), *(len(k.kid) for k in described))
    print(f"keys in {keyring.directory}")
    print(f"{'KID':<{kid_width}}  ALG    CREATED               VERIFY_UNTIL          STATUS")
    for key in described:
        print(
            f"{key.kid:<{kid_width}}  {key.alg:<5}  {_when(key.created):<20}  "
            f"{_when(key.verify_until):<20}  {key.status}"
        )
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.data_dir)
    grace = args.grace if args.grace is not None else settings.access_token_ttl + LEEWAY
    if not (key_directory(settings.data_dir) / MANIFEST).exists():
        print(
            f"xinlian keys: no keys in {settings.data_dir / 'keys'} yet (the hub generates one when it first starts)",
            file=sys.stderr,
        )
        return 1
    if refuse_missing_store(settings):  # the rotation is audited: the store must be there first
        return 2
    try:
        done = rotate(settings.data_dir, grace)
    except (KeyringError, OSError) as exc:
        print(f"xinlian keys: {exc}", file=sys.stderr)
        return 2
    by = (args.by or DEFAULT_BY).strip() or DEFAULT_BY
    action = {
        "action": "rotateSigningKey", "new_kid": done.new_kid, "retired_kid": done.retired_kid,
        "verify_until": _when(done.verify_until), "grace_seconds": grace,
    }
    try:
        audit_actions(settings, by, [action])
    except (AuditUnavailable, OSError, SQLAlchemyError) as exc:
        print(f"xinlian keys: the key was rotated but its audit entry could not be written: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "active": done.new_kid,
                    "retired": done.retired_kid,
                    "verify_until": _when(done.verify_until),
                    "grace_seconds": grace,
                }
            )
        )
        return 0
    print(f"active   {done.new_kid}  (signs new tokens from now on)")
    print(f"retired  {done.retired_kid}  (verifies until {_when(done.verify_until)}, grace {grace} s)")
    print("Running hubs pick up the new key within a few seconds; no restart needed.")
    return 0
