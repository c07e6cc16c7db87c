"""`xinlian keys list`: the signing keys in `<data-dir>/keys/` (kid, algorithm, created, status).

Never prints key material. Does not create keys: the hub generates its first key when it starts.
Exit codes: 0 listed (or no keys yet), 2 the key directory is unreadable or inconsistent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from xinlian.hub.config import Settings
from xinlian.keys.keyring import KeyDescription, Keyring, KeyringError

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = sub.add_parser("keys", help="inspect the signing keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    ls = actions.add_parser("list", help="list the signing keys: kid, algorithm, created, status")
    ls.add_argument("--json", action="store_true", help="one JSON object per key and line")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.set_defaults(handler=run_list)


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
    print(f"{'KID':<{kid_width}}  ALG    CREATED               STATUS")
    for key in described:
        print(f"{key.kid:<{kid_width}}  {key.alg:<5}  {_when(key.created):<20}  {key.status}")
    return 0
