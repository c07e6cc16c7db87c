"""`xinlian keys list|rotate|publish`: the signing keys in `<data-dir>/keys/`, and those other hosts published.

`list` shows each key's kid, algorithm, creation time, grace end and status (`active`,
`retired-verifying`, `expired`); it never prints key material and does not create keys. When
the hub store can be read, the keys other hosts published there follow under their own heading,
each with its HOST (`--json`: `"host"` set, `"path"` null).
`rotate` makes a new signing key and retires the current one, which keeps verifying for
`--grace` seconds (default: the access-token lifetime plus the validator's clock-skew leeway,
so every token it signed stays valid until it expires). Running hubs pick the new key up within
a few seconds, without restart; the new state is published in the hub store at once, so hubs on
other hosts accept the new key's tokens, seals and checkpoints. A rotation is audited: one entry
(`endpoint` "cli", `client_id` the `--by` name, `detail.action` "rotateSigningKey" with the new
and retired kid). `publish` publishes this host's keys again (after a rotation whose
publication failed, or once XINLIAN_CLUSTER_SECRET is set; a hub also publishes at start-up).
Published rows are endorsed with the cluster secret (`XINLIAN_CLUSTER_SECRET_FILE` /
`XINLIAN_CLUSTER_SECRET`, the same on every host); other hosts accept only endorsed rows, so
`list` shows only those (rows it does not accept are named on stderr), and `rotate`/`publish`
say on stderr when no secret is set (the rows are then unendorsed).
Exit codes: 0 done (or no keys yet, for `list`), 1 nothing to rotate or publish, 2 the key
directory is unreadable or inconsistent, no hub store, the audit entry could not be written, or
the keys could not be published.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.auth.bearer import LEEWAY
from xinlian.hub.auth.published_keys import PublishedKeys, this_host
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.keys.keyring import KeyDescription, Keyring, KeyringError, key_directory
from xinlian.keys.manifest import MANIFEST, utcnow
from xinlian.keys.published import PublishedKey
from xinlian.keys.rotation import rotate

from .admin_session import BY_HELP, DEFAULT_BY, audit_actions, refuse_missing_store

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"
UNENDORSED = (
    "note: XINLIAN_CLUSTER_SECRET is not set: the keys are published unendorsed, so hubs on other hosts do not "
    "accept them (set the same secret on every host, then `xinlian keys publish`; one host needs none)"
)


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

    pub = actions.add_parser("publish", help="publish this host's public keys in the hub store for the other hosts")
    pub.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    pub.set_defaults(handler=run_publish)


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def _as_json(key: KeyDescription | PublishedKey, status: str | None = None) -> str:
    """One line of `keys list --json`: a local key (with its file) or another host's (with its host)."""
    local = isinstance(key, KeyDescription)
    return json.dumps(
        {
            "kid": key.kid,
            "alg": key.alg,
            "created": _when(key.created),
            "retired": key.retired and _when(key.retired),
            "verify_until": key.verify_until and _when(key.verify_until),
            "status": key.status if isinstance(key, KeyDescription) else status,
            "path": str(key.path) if isinstance(key, KeyDescription) else None,
            **({} if local else {"host": getattr(key, "host", None)}),
        }
    )


def _existing_store(settings: Settings) -> Store | None:
    """The hub store, if there is one to read (never creates an SQLite file, never migrates)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:") or not Path(url.database).expanduser().exists():
            return None
    return Store(settings.database_url)


def _others(settings: Settings, local: set[str]) -> list[PublishedKey]:
    """The keys other hosts published in the hub store (none when it cannot be read: said on stderr)."""

    async def read() -> list[PublishedKey]:
        store = _existing_store(settings)
        if store is None:
            return []
        try:
            published = PublishedKeys(store, settings.cluster_secret)
            await published.refresh()
        finally:
            await store.close()
        ignored = {kid: why for kid, why in published.ignored().items() if kid not in local}
        if ignored and not published.endorses:
            print(f"xinlian keys: {len(ignored)} key(s) published by other hosts not shown and not accepted: "
                  "XINLIAN_CLUSTER_SECRET is not set", file=sys.stderr)
        else:
            for kid, (host, why) in sorted(ignored.items()):
                print(f"xinlian keys: published key {kid!r} of host {host!r} not accepted: {why}", file=sys.stderr)
        return [k for kid, k in published.published().items() if kid not in local]

    try:
        others = asyncio.run(read())
    except (OSError, SQLAlchemyError) as exc:
        print(f"xinlian keys: keys published by other hosts not shown (hub store: {type(exc).__name__})", file=sys.stderr)
        return []
    return sorted(others, key=lambda k: (k.host, k.created), reverse=True)


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
    others = _others(settings, {k.kid for k in described})
    now = utcnow()
    if args.json:
        for key in described:
            print(_as_json(key))
        for other in others:
            print(_as_json(other, other.status(now)))
        return 0
    kid_width = max(len("KID"), *(len(k.kid) for k in described), *(len(o.kid) for o in others))
    header = f"{'KID':<{kid_width}}  ALG    CREATED               VERIFY_UNTIL          STATUS"
    print(f"keys in {keyring.directory}")
    print(header)
    for key in described:
        print(
            f"{key.kid:<{kid_width}}  {key.alg:<5}  {_when(key.created):<20}  "
            f"{_when(key.verify_until):<20}  {key.status}"
        )
    if others:
        print()
        print("keys published by other hosts (hub store; public halves only)")
        print(f"{header}             HOST")
        for other in others:
            print(
                f"{other.kid:<{kid_width}}  {other.alg:<5}  {_when(other.created):<20}  "
                f"{_when(other.verify_until):<20}  {other.status(now):<17}  {other.host}"
            )
    return 0


def publish_keys(settings: Settings) -> tuple[int, int]:
    """Publish the keyring of `settings.data_dir` in the hub store as this host's: (rows written,
    keys). Raises `KeyringError`, `OSError` or `SQLAlchemyError`."""
    keyring = Keyring.load(settings.data_dir, reload_interval=3600.0)
    if keyring is None:
        raise KeyringError(f"no keys in {key_directory(settings.data_dir)} yet")

    async def run() -> int:
        store = await Store.open(settings.database_url)
        try:
            return await PublishedKeys(store, settings.cluster_secret).publish(keyring, this_host())
        finally:
            await store.close()

    return asyncio.run(run()), len(keyring.describe())


def run_publish(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.data_dir)
    if not (key_directory(settings.data_dir) / MANIFEST).exists():
        print(
            f"xinlian keys: no keys in {settings.data_dir / 'keys'} yet (the hub generates one when it first starts)",
            file=sys.stderr,
        )
        return 1
    if refuse_missing_store(settings):
        return 2
    try:
        written, total = publish_keys(settings)
    except (KeyringError, OSError, SQLAlchemyError) as exc:
        print(f"xinlian keys: not published: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"published the public halves of {total} key(s) as host {this_host()} ({written} row(s) written)")
    if settings.cluster_secret is None:
        print(UNENDORSED, file=sys.stderr)
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
    try:  # at once: other hosts then know the new key before this host's hubs (which look every few s) sign with it
        publish_keys(settings)
        unpublished: str | None = None
    except (KeyringError, OSError, SQLAlchemyError) as exc:
        unpublished = f"{type(exc).__name__}: {exc}"
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
                    "published": unpublished is None,
                }
            )
        )
    else:
        print(f"active   {done.new_kid}  (signs new tokens from now on)")
        print(f"retired  {done.retired_kid}  (verifies until {_when(done.verify_until)}, grace {grace} s)")
        print("Running hubs pick up the new key within a few seconds; no restart needed.")
    if unpublished is None and settings.cluster_secret is None:
        print(UNENDORSED, file=sys.stderr)
    if unpublished is not None:
        print(
            f"xinlian keys: the key was rotated but not published in the hub store ({unpublished}); hubs on other "
            "hosts will refuse its tokens until `xinlian keys publish` (or a restart of this host's hub) publishes it",
            file=sys.stderr,
        )
        return 2
    return 0
