"""`xinlian db upgrade|current`: apply the hub store's Alembic migrations, or show where it stands.

The hub also upgrades its store at start-up; `db upgrade` lets operators do it ahead of a
deployment (XINLIAN_DATABASE_URL selects PostgreSQL, otherwise `<data-dir>/hub.db`); it is the
one `db` command that creates a store. `db current` only reads: with no SQLite store where the
settings point (a mistyped `--data-dir`) it says "no hub store at <path>" and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from xinlian.hub.config import Settings
from xinlian.hub.store import Store

from .admin_session import missing_store


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


def _no_store(settings: Settings) -> Path | None:
    """The SQLite file `db current` would have to create (a mistyped --data-dir, or no store yet)."""
    missing = missing_store(settings)
    if missing is not None:
        return missing
    try:
        url = make_url(settings.database_url)
    except Exception:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).expanduser()
    return None if path.exists() else path


def current(args: argparse.Namespace) -> int:
    settings = Settings.from_env(data_dir=args.data_dir)
    path = _no_store(settings)
    if path is not None:  # reading where a store stands never creates one
        print(f"xinlian db current: no hub store at {path} (check --data-dir; `xinlian db upgrade` creates one)",
              file=sys.stderr)
        return 2
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
