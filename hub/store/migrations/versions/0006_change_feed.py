"""The change feed: a generation counter per watched table, bumped by triggers; the cluster's members.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

`change_generations`: one row per watched table, its counter bumped by a trigger in the same
transaction as every change (hub/store/change_triggers.py); on PostgreSQL the trigger also
notifies channel `xinlian_changes`. Hub processes follow the counters instead of polling each
table (hub/cluster/changes.py).

`cluster_members`: each running hub process, with a heartbeat; the live count divides the
per-department concurrency budget between processes (hub/cluster/members.py).
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

from xinlian.hub.store import change_triggers

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED: dict[str, tuple[str, ...]] = {
    "clients": change_triggers.EVENTS,  # scopes, purposes, subject, disabling, secret rotation
    "purposes": change_triggers.EVENTS,  # a retired purpose stops counting
    "revoked_tokens": ("INSERT",),  # deletions only purge expired rows
    "policy_activations": ("INSERT",),
    "objections": ("INSERT", "UPDATE"),
}


def upgrade() -> None:
    op.create_table(
        "change_generations",
        sa.Column("topic", sa.String(64), primary_key=True),
        sa.Column("generation", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    )
    op.create_table(
        "cluster_members",
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    change_triggers.install_function()
    for table, events in WATCHED.items():
        change_triggers.watch(table, events)


def downgrade() -> None:
    for table in WATCHED:
        change_triggers.unwatch(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS xinlian_changed()")
    op.drop_table("cluster_members")
    op.drop_table("change_generations")
