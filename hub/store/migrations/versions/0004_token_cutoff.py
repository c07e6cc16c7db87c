"""Tokens issued before a client was disabled or its secret rotated stay refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

`clients.tokens_valid_after`: the bearer validator refuses a token of the client whose `iat`
is before it (set by `disable` and `rotate_secret`; NULL: no cut-off).
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("tokens_valid_after")
