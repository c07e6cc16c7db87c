"""Triggers that make the store announce its own changes: one generation counter per watched table.

`change_generations` holds one row per topic (a watched table's name) with a counter. A trigger
on each watched table bumps its topic's counter in the same transaction as the change, whoever
makes it (a hub process, the CLI, an admin at a SQL prompt), so a reader that sees the counter
unchanged knows the table is unchanged. On PostgreSQL the trigger also calls
`pg_notify('xinlian_changes', topic)`, which is delivered when the transaction commits, so
listening processes hear of a change in milliseconds (hub/cluster/changes.py).

Migrations call `watch(table, events)` to install a table's triggers and `unwatch(table)` to
remove them; both work on SQLite and PostgreSQL (the hub store's two dialects).
"""

from __future__ import annotations

from typing import Sequence

from alembic import op

CHANNEL = "xinlian_changes"  # the PostgreSQL notification channel
EVENTS = ("INSERT", "UPDATE", "DELETE")

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION xinlian_changed() RETURNS trigger AS $$
BEGIN
    UPDATE change_generations SET generation = generation + 1 WHERE topic = TG_ARGV[0];
    PERFORM pg_notify('{CHANNEL}', TG_ARGV[0]);
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def _dialect() -> str:
    return op.get_bind().dialect.name


def _name(table: str, event: str | None = None) -> str:
    return f"xinlian_changed_{table}" + (f"_{event.lower()}" if event else "")


def install_function() -> None:
    """The PostgreSQL trigger function (SQLite triggers carry their body inline)."""
    if _dialect() == "postgresql":
        op.execute(_PG_FUNCTION)


def watch(table: str, events: Sequence[str] = EVENTS) -> None:
    """Bump topic `table` whenever a statement inserts, updates or deletes (`events`) its rows."""
    unknown = set(events) - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown trigger events: {sorted(unknown)}")
    op.execute(f"INSERT INTO change_generations (topic, generation) VALUES ('{table}', 0)")
    if _dialect() == "postgresql":
        op.execute(
            f"CREATE TRIGGER {_name(table)} AFTER {' OR '.join(events)} ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION xinlian_changed('{table}')"
        )
        return
    for event in events:  # SQLite: one trigger per event, FOR EACH ROW only
        op.execute(
            f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} BEGIN "
            f"UPDATE change_generations SET generation = generation + 1 WHERE topic = '{table}'; END"
        )


def unwatch(table: str) -> None:
    """Remove a table's triggers and its counter."""
    if _dialect() == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_name(table)} ON {table}")
    else:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {_name(table, event)}")
    op.execute(f"DELETE FROM change_generations WHERE topic = '{table}'")
