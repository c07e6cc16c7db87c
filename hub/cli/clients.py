"""`xinlian clients add|list|disable|set-keys`: the hub's OAuth2 clients.

`add` prints the new client's id and secret (the secret is shown this once and only its hash is
stored) — or, with `--jwks-file`, registers the client's PUBLIC key(s) for `private_key_jwt` and
issues no secret; `list` never shows secrets; `disable` refuses a client from now on; `set-keys`
replaces a `private_key_jwt` client's public keys. Exit codes: 0 done, 1 refused (unknown
client, bad kind, scope or keys, id taken), 2 the store or the key file cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import unicodedata
from typing import Any, Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.auth.client_keys import MAX_JWKS_BYTES
from xinlian.hub.auth.clients import CLIENT_KINDS, DEFAULT_SCOPES, ClientError, ClientRegistry
from xinlian.hub.config import Settings
from xinlian.hub.store import Store

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    clients = sub.add_parser("clients", help="manage OAuth2 clients (add, list, disable)")
    actions = clients.add_subparsers(dest="clients_command", required=True)

    add = actions.add_parser("add", help="register a client and print its id and secret (shown once)")
    add.add_argument("--name", required=True, help="the client's name, e.g. the department's full name")
    add.add_argument("--kind", required=True, choices=CLIENT_KINDS, help="client kind")
    add.add_argument(
        "--scope",
        default=None,
        help="space-separated scopes (default by kind: "
        + "; ".join(f"{kind}: {scope}" for kind, scope in DEFAULT_SCOPES.items())
        + ")",
    )
    add.add_argument("--client-id", default=None, help="choose the client id (default: generated)")
    add.add_argument(
        "--jwks-file",
        default=None,
        metavar="FILE",
        help="the client's PUBLIC JWK or JWK Set: it authenticates with private_key_jwt, no secret is issued",
    )
    add.add_argument("--json", action="store_true", help="print the new client as JSON")
    add.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    add.set_defaults(handler=run_add)

    ls = actions.add_parser("list", help="list clients (never their secrets)")
    ls.add_argument("--json", action="store_true", help="one JSON object per client and line")
    ls.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    ls.set_defaults(handler=run_list)

    disable = actions.add_parser("disable", help="refuse a client's token requests from now on")
    disable.add_argument("client_id", metavar="CLIENT_ID")
    disable.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    disable.set_defaults(handler=run_disable)

    keys = actions.add_parser("set-keys", help="replace a private_key_jwt client's public keys")
    keys.add_argument("client_id", metavar="CLIENT_ID")
    keys.add_argument("--jwks-file", required=True, metavar="FILE", help="the client's PUBLIC JWK or JWK Set")
    keys.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    keys.set_defaults(handler=run_set_keys)


def _read_jwks_file(path: str) -> str | None:
    """The key file's text (the registry checks it), or None after printing why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(MAX_JWKS_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"xinlian clients: cannot read {path}: {exc}", file=sys.stderr)
        return None


def _with_registry(args: argparse.Namespace, action: Callable[[ClientRegistry], Awaitable[int]]) -> int:
    settings = Settings.from_env(args.data_dir)

    async def run() -> int:
        store = await Store.open(settings.database_url)
        try:
            return await action(ClientRegistry(store))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except ClientError as exc:
        print(f"xinlian clients: {exc}", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:  # the store is unreachable or unreadable
        print(f"xinlian clients: cannot use the hub store: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def run_add(args: argparse.Namespace) -> int:
    if args.jwks_file is not None:
        return run_add_with_keys(args)

    async def add(registry: ClientRegistry) -> int:
        client_id, secret = await registry.create(args.name, args.kind, args.scope, client_id=args.client_id)
        record = await registry.get(client_id)
        scope = record.scope if record else ""
        if args.json:
            print(json.dumps({"client_id": client_id, "client_secret": secret, "kind": args.kind, "scope": scope}))
        else:
            print(f"client_id      {client_id}")
            print(f"client_secret  {secret}")
            print(f"kind           {args.kind}")
            print(f"scope          {scope}")
            print("The secret is shown only this once; the hub keeps only its hash.")
        return 0

    return _with_registry(args, add)


def run_add_with_keys(args: argparse.Namespace) -> int:
    jwks = _read_jwks_file(args.jwks_file)
    if jwks is None:
        return 2

    async def add(registry: ClientRegistry) -> int:
        client_id = await registry.create_with_keys(args.name, args.kind, jwks, args.scope, client_id=args.client_id)
        record = await registry.get(client_id)
        scope = record.scope if record else ""
        kids = [key["kid"] for key in json.loads(record.jwks or "{}").get("keys", [])] if record else []
        method = "private_key_jwt"
        if args.json:
            shown = {"client_id": client_id, "kind": args.kind, "scope": scope}
            print(json.dumps({**shown, "token_endpoint_auth_method": method, "kids": kids}))
        else:
            print(f"client_id                   {client_id}")
            print(f"kind                        {args.kind}")
            print(f"scope                       {scope}")
            print(f"token_endpoint_auth_method  {method}")
            print(f"kids                        {' '.join(kids)}")
            print("No secret is issued: the client signs a JWT assertion with its private key (see docs/auth.md).")
        return 0

    return _with_registry(args, add)


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
    }


def _table(rows: list[dict[str, Any]]) -> str:
    columns = ("client_id", "name", "kind", "scope", "auth", "disabled")
    cells = [[str(row[c]).lower() if c == "disabled" else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(_width(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(_pad(c.upper(), w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(_pad(v, w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    async def ls(registry: ClientRegistry) -> int:
        rows = [_row(r) for r in await registry.list()]
        if args.json:
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        elif rows:
            print(_table(rows))
        else:
            print("no clients (add one with: xinlian clients add --name NAME --kind KIND)")
        return 0

    return _with_registry(args, ls)


def run_disable(args: argparse.Namespace) -> int:
    async def disable(registry: ClientRegistry) -> int:
        if not await registry.disable(args.client_id):
            print(f"xinlian clients: no client {args.client_id!r}", file=sys.stderr)
            return 1
        print(f"disabled {args.client_id}")
        return 0

    return _with_registry(args, disable)


def run_set_keys(args: argparse.Namespace) -> int:
    jwks = _read_jwks_file(args.jwks_file)
    if jwks is None:
        return 2

    async def set_keys(registry: ClientRegistry) -> int:
        if not await registry.set_keys(args.client_id, jwks):
            print(f"xinlian clients: no client {args.client_id!r}", file=sys.stderr)
            return 1
        print(f"replaced the public keys of {args.client_id}")
        return 0

    return _with_registry(args, set_keys)
