"""Access governance: policy versions, purposes, consents, objections, subject index of the audit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Existing audit entries are indexed by subject here, so a subject's access log covers them too.
"""

from __future__ import annotations

import json
from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BACKFILL_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("purposes", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("subject_id", sa.String(length=18), nullable=True))
    op.create_table(
        "audit_subjects",
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.PrimaryKeyConstraint("subject", "seq"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("parent", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
        sa.UniqueConstraint("version"),
    )
    op.create_table(
        "policy_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "purposes",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=18), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consents_subject_client_purpose", "consents", ["subject", "client_id", "purpose"])
    op.create_table(
        "objections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=18), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("record_ref", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_by", sa.String(length=64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_objections_subject_family_status", "objections", ["subject", "family", "status"])
    _index_existing_audit_entries()


def _index_existing_audit_entries() -> None:
    bind = op.get_bind()
    entries = sa.table("audit_entries", sa.column("seq", SEQ), sa.column("content", sa.Text()))
    index = sa.table("audit_subjects", sa.column("subject", sa.String()), sa.column("seq", SEQ))
    last = -1
    while True:
        rows = bind.execute(
            sa.select(entries.c.seq, entries.c.content).where(entries.c.seq > last).order_by(entries.c.seq).limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        pairs: list[dict[str, object]] = []
        for seq, content in rows:
            last = seq
            try:
                subjects = json.loads(content).get("subjects") or []
            except (ValueError, AttributeError):
                continue  # an unreadable entry: `xinlian audit verify` reports it
            pairs.extend({"subject": str(s)[:32], "seq": seq} for s in dict.fromkeys(subjects))
        if pairs:
            bind.execute(sa.insert(index), pairs)


def downgrade() -> None:
    op.drop_index("ix_objections_subject_family_status", table_name="objections")
    op.drop_table("objections")
    op.drop_index("ix_consents_subject_client_purpose", table_name="consents")
    op.drop_table("consents")
    op.drop_table("purposes")
    op.drop_table("policy_activations")
    op.drop_table("policy_versions")
    op.drop_table("audit_subjects")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("subject_id")
        batch.drop_column("purposes")
