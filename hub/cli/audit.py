"""`xinlian audit verify|tail`: check the audit hash chain, and read its latest entries.

`verify` exits 0 when the chain is intact, 1 naming the first altered, removed or inserted
entry, 2 when the store cannot be read. `tail` prints the latest entries (`--json`: one JSON
object per line). Neither command migrates or writes the store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Coroutine

from sqlalchemy.engine import make_url

from xinlian.hub.audit import AuditTrail, StoredAuditEntry, verify_chain
from xinlian.hub.config import Settings
from xinlian.hub.store import Store

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"


class StoreMissing(Exception):
    pass


def _open_existing(settings: Settings) -> Store:
    """The store, without creating an empty SQLite file where none is."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).expanduser().exists():
            raise StoreMissing(f"no hub store at {url.database}")
    return Store(settings.database_url)


async def _verify(settings: Settings) -> int:
    store = _open_existing(settings)
    try:
        report = await verify_chain(store)
    finally:
        await store.close()
    if report.ok:
        print(f"audit chain intact: {report.checked} entries")
        print(f"head: seq {report.head_seq} hash {report.head_hash}")
        return 0
    print(f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem}")
    print(f"intact up to seq {report.head_seq} (hash {report.head_hash}); {report.checked} entries read")
    return 1


def _describe(stored: StoredAuditEntry) -> str:
    entry = stored.entry
    if entry is None:
        return f"#{stored.seq}  (content unreadable: run `xinlian audit verify`)\n    hash {stored.hash}"
    who = f"{entry.client_id} ({entry.client_kind})" if entry.client_id else "public"
    head = f"#{stored.seq}  {entry.at:%Y-%m-%d %H:%M:%S}Z  {entry.endpoint}  {who}  {entry.outcome}"
    lines = [head + (f"  op={entry.operation_name}" if entry.operation_name else "")]
    details = [
        ("purpose", [entry.purpose] if entry.purpose else []),
        ("subjects", entry.subjects),
        ("released", entry.released),
        ("denied", entry.denied),
        ("errors", entry.errors),
    ]
    lines += [f"    {name}: {', '.join(values)}" for name, values in details if values]
    lines.append(f"    request {entry.request_id}  from {entry.remote_addr or '-'}  policy {entry.policy_version}")
    lines.append(f"    hash {stored.hash}")
    return "\n".join(lines)


async def _tail(settings: Settings, n: int, as_json: bool) -> int:
    store = _open_existing(settings)
    try:
        entries = await AuditTrail(store).tail(n)
    finally:
        await store.close()
    for stored in entries:
        if as_json:
            print(json.dumps(stored.to_document(), ensure_ascii=False, sort_keys=True))
        else:
            print(_describe(stored))
    if not entries and not as_json:
        print("the audit trail is empty")
    return 0


def _run(name: str, coroutine: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coroutine)
    except StoreMissing as exc:
        print(f"xinlian audit {name}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an operator command: a sentence, not a stack trace
        print(f"xinlian audit {name}: cannot read the audit trail: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def verify(args: argparse.Namespace) -> int:
    return _run("verify", _verify(Settings.from_env(data_dir=args.data_dir)))


def tail(args: argparse.Namespace) -> int:
    return _run("tail", _tail(Settings.from_env(data_dir=args.data_dir), args.n, args.json))


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    check = commands.add_parser("verify", help="re-walk the hash chain; exit 0 if intact, 1 naming the first bad entry")
    check.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    check.set_defaults(handler=verify)
    latest = commands.add_parser("tail", help="print the latest entries")
    latest.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    latest.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    latest.add_argument("--json", action="store_true", help="one JSON object per line")
    latest.set_defaults(handler=tail)
