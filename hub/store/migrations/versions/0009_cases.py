"""Cases: objections, complaints and reports, credit repair applications — with their steps and
attachments; the objections of the earlier register become objection cases.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

`cases` holds every case (hub/cases/, docs/cases.md) with its deadline in working days;
`case_events` each step (who, as what, when, why); `case_attachments` the files filed with one.
The `objections` table's rows move into `cases` as objection cases, with the outcomes renamed as
issue 12 names them: `upheld` there (the record was corrected or withdrawn at its source) is
`corrected`, `dismissed` (the record stands) is `upheld`; each gets its filing step and, if
closed, its closing step. `cases` is watched by the change feed (the open objections' flag
follows it in every hub process), as `objections` was.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Sequence

import sqlalchemy as sa
from alembic import op

from xinlian.hub.store import change_triggers

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMED = {"open": "open", "upheld": "corrected", "dismissed": "upheld"}
BACK = {"open": "open", "corrected": "upheld", "upheld": "dismissed", "withdrawn": "dismissed"}
HOHHOT = dt.timezone(dt.timedelta(hours=8))


def _aware(moment: dt.datetime | str) -> dt.datetime:
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


def upgrade() -> None:
    cases = op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(18), nullable=True),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("filer_kind", sa.String(16), nullable=False),
        sa.Column("filer", sa.String(64), nullable=False),
        sa.Column("tracking_hash", sa.String(64), nullable=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
    )
    op.create_index("ix_cases_kind_status", "cases", ["kind", "status", "deadline"])
    op.create_index("ix_cases_subject_kind", "cases", ["subject", "kind", "status"])
    op.create_index("ix_cases_department_status", "cases", ["department", "status", "deadline"])
    op.create_index("ix_cases_tracking_hash", "cases", ["tracking_hash"], unique=True)
    events = op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("by_kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "id"])
    op.create_table(
        "case_attachments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
    )
    op.create_index("ix_case_attachments_case", "case_attachments", ["case_id", "id"])
    bind = op.get_bind()
    old = bind.execute(sa.text(
        "SELECT id, subject, family, record_ref, status, reason, filed_at, filed_by, closed_at, closed_by, outcome "
        "FROM objections ORDER BY id"
    )).all()
    case_rows, event_rows = [], []
    for row in old:
        filed_at = _aware(row.filed_at)
        status = RENAMED.get(row.status, row.status)
        closed_at = _aware(row.closed_at) if row.closed_at is not None else None
        case_rows.append({
            "id": row.id, "kind": "objection", "subject": row.subject, "subject_name": "", "status": status,
            "department": None, "filer_kind": "credit-office", "filer": row.filed_by, "tracking_hash": None,
            "category": "wrong", "records": json.dumps([{"family": row.family, "key": row.record_ref}], ensure_ascii=False),
            "description": row.reason, "detail": "{}", "filed_at": filed_at, "filed_on": filed_at.astimezone(HOHHOT).date(),
            "deadline": None, "closed_at": closed_at, "resolution": row.outcome or "",
        })
        event_rows.append({
            "case_id": row.id, "action": "filed", "from_status": None, "to_status": "open", "at": filed_at,
            "by": row.filed_by, "by_kind": "credit-office", "note": "moved from the objection register", "deadline": None,
        })
        if closed_at is not None:
            event_rows.append({
                "case_id": row.id, "action": status, "from_status": "open", "to_status": status, "at": closed_at,
                "by": row.closed_by or "", "by_kind": "credit-office", "note": row.outcome or "", "deadline": None,
            })
    if case_rows:
        op.bulk_insert(cases, case_rows)
        op.bulk_insert(events, event_rows)
        if bind.dialect.name == "postgresql":
            op.execute("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
    change_triggers.unwatch("objections")
    op.drop_table("objections")
    change_triggers.watch("cases")


def downgrade() -> None:
    change_triggers.unwatch("cases")
    objections = op.create_table(
        "objections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(18), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("record_ref", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_by", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
    )
    op.create_index("ix_objections_subject_family_status", "objections", ["subject", "family", "status"])
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, subject, records, status, description, filed_at, filer, closed_at, resolution FROM cases "
        "WHERE kind = 'objection' ORDER BY id"
    )).all()
    back = []
    for row in rows:
        record = (json.loads(row.records) or [{"family": "", "key": ""}])[0]
        back.append({
            "id": row.id, "subject": row.subject or "", "family": record["family"], "record_ref": record["key"],
            "status": BACK.get(row.status, "open" if row.closed_at is None else "dismissed"), "reason": row.description,
            "filed_at": _aware(row.filed_at), "filed_by": row.filer,
            "closed_at": _aware(row.closed_at) if row.closed_at is not None else None,
            "closed_by": None, "outcome": row.resolution or None,
        })
    if back:
        op.bulk_insert(objections, back)
    op.drop_table("case_attachments")
    op.drop_table("case_events")
    op.drop_table("cases")
    change_triggers.watch("objections")
