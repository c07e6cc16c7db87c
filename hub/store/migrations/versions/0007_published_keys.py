"""Published keys: the public half of every hub host's signing keys, for hosts that share no disk.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

`published_keys`: one row per key of any host's keyring: kid (the RFC 7638 thumbprint), the
public JWK (kty, crv, x, y only), alg, the host that holds the private key, whether it signs,
its life (created, retired, verify_until), when it was published, and its `endorsement`: the hex
HMAC-SHA256 of the row's canonical statement with the hosts' cluster secret ("" when the
publishing host has none), without which no host accepts the key (hub/auth/published_keys.py,
keys/published.py). Private keys and the secret never enter the store. Watched by the change feed, so every hub process re-reads
the table when a host starts or rotates (hub/store/change_triggers.py).
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

from xinlian.hub.store import change_triggers

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "published_keys"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("kid", sa.String(128), primary_key=True),
        sa.Column("jwk", sa.Text(), nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("signing", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verify_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endorsement", sa.String(64), nullable=False, server_default=""),
    )
    change_triggers.watch(TABLE)


def downgrade() -> None:
    change_triggers.unwatch(TABLE)
    op.drop_table(TABLE)
