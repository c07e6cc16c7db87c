"""The review before publication: new PUBLIC records queued until approved (hub/cases/review.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

One row per department record of a reviewed family, from its first sighting: `pending`, then
`approved` or `rejected` with who, when and why. Watched by the change feed (`review_items`), so
every hub process follows the decisions.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

from xinlian.hub.store import change_triggers

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("record_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ux_review_items_record", "review_items", ["department", "family", "subject", "record_key"], unique=True)
    op.create_index("ix_review_items_status", "review_items", ["status", "first_seen_at"])
    change_triggers.watch("review_items", ("INSERT", "UPDATE"))


def downgrade() -> None:
    change_triggers.unwatch("review_items")
    op.drop_table("review_items")
