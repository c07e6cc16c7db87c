"""The signed head of the audit chain, replaced with every batch of entries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`audit_head_seal`: one row, the last entry's seq and hash signed by the hub's key in the same
transaction as the entries (hub/audit/seal.py). Entries after the sealed head (and after the
newest checkpoint) were not written by the hub: `xinlian audit verify` reports them as appended.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_head_seal",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_head_seal")
