"""`xinlian db upgrade|current`: apply the hub store's Alembic migrations, or show where it stands.

The hub also upgrades its store at start-up; `db upgrade` lets operators do it ahead of a
deployment (XINLIAN_DATABASE_URL selects PostgreSQL, otherwise `<data-dir>/hub.db`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from xinlian.hub.config import Settings
from xinlian.hub.store import Store


async def _upgrade(settings: Settings) -> int:
    store = await Store.open(settings.database_url)
    try:
        revision = await store.current_revision()
        print(f"hub store {store.display_url} at revision {revision} (head)")
        return 0
    finally:
        await store.close()


async def _current(settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        revision, head = await store.current_revision(), Store.head_revision()
        state = "up to date" if revision == head else "needs `xinlian db upgrade`"
        print(f"hub store {store.display_url} at revision {revision} (head {head}): {state}")
        return 0 if revision == head else 1
    finally:
        await store.close()


def upgrade(args: argparse.Namespace) -> int:
    settings = Settings.from_env(data_dir=args.data_dir)
    try:
        return asyncio.run(_upgrade(settings))
    except Exception as exc:  # an operator command: a sentence, not a stack trace
        print(f"xinlian db upgrade: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def current(args: argparse.Namespace) -> int:
    settings = Settings.from_env(data_dir=args.data_dir)
    try:
        return asyncio.run(_current(settings))
    except Exception as exc:
        print(f"xinlian db current: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db = sub.add_parser("db", help="the hub store: migrations")
    commands = db.add_subparsers(dest="db_command", required=True)
    up = commands.add_parser("upgrade", help="apply migrations up to head and print the revision")
    up.add_argument("--data-dir", default=None, help="data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)")
    up.set_defaults(handler=upgrade)
    cur = commands.add_parser("current", help="print the store's revision and the head revision")
    cur.add_argument("--data-dir", default=None, help="data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)")
    cur.set_defaults(handler=current)
