"""`xinlian clients add|list|show|disable|set-keys|create|rotate-secret|set-scope|set-purposes|set-subject|`
`set-department|enable`.

The hub's OAuth2 clients. `create` (alias `add`, one command) prints the new client's id and
secret (the secret is shown this once and only its hash is stored) — or, with `--jwks-file`,
registers the client's PUBLIC key(s) for `private_key_jwt` and issues no secret; `list` never
shows secrets; `disable` refuses a client from now on; `set-keys` replaces a `private_key_jwt`
client's public keys. Exit codes, for every `clients` command: 0 done, 2 refused (unknown client,
bad kind, unknown scope, an unconfirmed widening, bad keys, id taken: the reason on stderr,
nothing changed) or the store or the key file cannot be read. (`add` used to exit 1 when refused.)
`create`, `show`, `rotate-secret`, `set-scope`, `set-purposes`, `set-subject`, `set-department`
and `enable` are in `client_admin.py`. Every change is audited (`admin_session.py`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import unicodedata
from typing import Any, Awaitable, Callable

from xinlian.hub.auth.client_keys import MAX_JWKS_BYTES
from xinlian.hub.auth.clients import ClientRegistry

from .admin_session import BY_HELP, DEFAULT_BY, AdminSession, run_admin
from .client_admin import register_actions

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    clients = sub.add_parser("clients", help="manage OAuth2 clients (create, list, rotate-secret, disable, ...)")
    actions = clients.add_subparsers(dest="clients_command", required=True)

    ls = actions.add_parser("list", help="list clients (never their secrets)")
    ls.add_argument("--json", action="store_true", help="one JSON object per client and line")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.set_defaults(handler=run_list)

    disable = actions.add_parser("disable", help="refuse a client's token requests from now on")
    disable.add_argument("client_id", metavar="CLIENT_ID")
    disable.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    disable.add_argument("--by", default=DEFAULT_BY, metavar="NAME", help=BY_HELP)
    disable.set_defaults(handler=run_disable)

    keys = actions.add_parser("set-keys", help="replace a private_key_jwt client's public keys")
    keys.add_argument("client_id", metavar="CLIENT_ID")
    keys.add_argument("--jwks-file", required=True, metavar="FILE", help="the client's PUBLIC JWK or JWK Set")
    keys.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    keys.add_argument("--by", default=DEFAULT_BY, metavar="NAME", help=BY_HELP)
    keys.set_defaults(handler=run_set_keys)

    register_actions(actions)


def _read_jwks_file(path: str) -> str | None:
    """The key file's text (the registry checks it), or None after printing why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(MAX_JWKS_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"xinlian clients: cannot read {path}: {exc}", file=sys.stderr)
        return None


def _with_registry(
    args: argparse.Namespace, action: Callable[[ClientRegistry, AdminSession], Awaitable[int]]
) -> int:
    """Run `action` on the registry; its changes are audited and its output printed afterwards."""

    async def run(session: AdminSession) -> int:
        return await action(session.operations.registry, session)

    return run_admin(args, "clients", run)


def _utc(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _row(record: Any) -> dict[str, Any]:
    return {
        "client_id": record.client_id,
        "name": record.name,
        "kind": record.kind,
        "scope": record.scope,
        "auth": record.token_endpoint_auth_method,
        "disabled": bool(record.disabled),
        "created_at": _utc(record.created_at),
        "purposes": (getattr(record, "purposes", "") or "").split(),
        "subject_id": getattr(record, "subject_id", None),
        "department": getattr(record, "department", None),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ("client_id", "name", "kind", "scope", "auth", "disabled")
    cells = [[str(row[c]).lower() if c == "disabled" else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(_width(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(_pad(c.upper(), w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(_pad(v, w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    async def ls(registry: ClientRegistry, session: AdminSession) -> int:
        rows = [_row(r) for r in await registry.list()]
        if args.json:
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        elif rows:
            print(_table(rows))
        else:
            print("no clients (add one with: xinlian clients create NAME --kind KIND)")
        return 0

    return _with_registry(args, ls)


def run_disable(args: argparse.Namespace) -> int:
    async def disable(registry: ClientRegistry, session: AdminSession) -> int:
        if not await registry.disable(args.client_id):
            print(f"xinlian clients: no client {args.client_id!r}", file=sys.stderr)
            return 2
        session.record("disableClient", client_id=args.client_id)
        session.say(f"disabled {args.client_id}")
        return 0

    return _with_registry(args, disable)


def run_set_keys(args: argparse.Namespace) -> int:
    jwks = _read_jwks_file(args.jwks_file)
    if jwks is None:
        return 2

    async def set_keys(registry: ClientRegistry, session: AdminSession) -> int:
        if not await registry.set_keys(args.client_id, jwks):
            print(f"xinlian clients: no client {args.client_id!r}", file=sys.stderr)
            return 2
        session.record("setClientKeys", client_id=args.client_id)
        session.say(f"replaced the public keys of {args.client_id}")
        return 0

    return _with_registry(args, set_keys)
