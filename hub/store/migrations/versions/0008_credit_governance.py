"""Credit governance: findings, red and black listings with their transitions, measure feedback,
rating snapshots and rating jobs; a department binding on clients.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Hub-owned decisions only (docs/governance.md): department records stay at their sources; a
finding or a listing names the records it rests on by family and key (transitions on one subject
are serialised by a per-subject lock: `Store.exclusive`). `credit_listings` and `credit_findings` are watched by
the change feed, so every hub process reloads its view of the current listings when they change
(hub/credit/standing.py). `clients.department` binds a department client to the connector of
its department.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

from xinlian.hub.store import change_triggers

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WATCHED = ("credit_listings", "credit_findings")


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("department", sa.String(64), nullable=True))
    op.create_table(
        "credit_findings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("basis", sa.String(64), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("measures", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_credit_findings_subject_status", "credit_findings", ["subject", "status"])
    op.create_table(
        "credit_listings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("list", sa.String(8), nullable=False),
        sa.Column("basis", sa.String(64), nullable=False),
        sa.Column("basis_text", sa.Text(), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("source_ref", sa.String(200), nullable=True),
        sa.Column("listed_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_credit_listings_list_status", "credit_listings", ["list", "status", "id"])
    op.create_index("ix_credit_listings_subject_status", "credit_listings", ["subject", "status"])
    op.create_table(
        "credit_listing_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_credit_listing_events_listing", "credit_listing_events", ["listing_id", "id"])
    op.create_table(
        "credit_measure_feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("measure", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("context", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("check_request_id", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_credit_measure_feedback_department", "credit_measure_feedback", ["department", "measure"])
    op.create_table(
        "credit_ratings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("industry", sa.String(100), nullable=False),
        sa.Column("level", sa.String(4), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("supervision_class", sa.String(1), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(32), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rated_on", sa.Date(), nullable=False),
    )
    op.create_index("ix_credit_ratings_subject_id", "credit_ratings", ["subject", "id"])
    op.create_table(
        "credit_rating_jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("cursor", sa.String(18), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    for table in WATCHED:
        change_triggers.watch(table)


def downgrade() -> None:
    for table in WATCHED:
        change_triggers.unwatch(table)
    for table in (
        "credit_rating_jobs", "credit_ratings", "credit_measure_feedback", "credit_listing_events",
        "credit_listings", "credit_findings",
    ):
        op.drop_table(table)
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("department")
