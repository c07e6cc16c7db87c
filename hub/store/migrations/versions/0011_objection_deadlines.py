"""The deadlines of the objections migration 0009 moved into `cases`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Migration 0009 moved the old objection register's rows into `cases` without a deadline, so an
old open objection was never overdue. Each objection case still without a deadline gets the
standard one: the 10th working day after its filing day (Hohhot), counted on the calendars
shipped with the hub (a data directory's own calendar files are not known to a migration; the
shipped files are data that is only ever added to, for years not yet published). Objections
filed since 0009 always have a deadline and are left alone. Downgrading leaves the deadlines:
0009's downgrade drops the table anyway.
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

from xinlian.hub.cases.calendar import WorkingCalendar

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OBJECTION_DAYS = 10  # the standard answer time (policies/cases.toml `[cases.deadlines] objection`)


def upgrade() -> None:
    bind = op.get_bind()
    cases = sa.table("cases", sa.column("id", sa.Integer()), sa.column("kind", sa.String()),
                     sa.column("filed_on", sa.Date()), sa.column("deadline", sa.Date()))
    rows = bind.execute(sa.select(cases.c.id, cases.c.filed_on).where(
        cases.c.kind == "objection", cases.c.deadline.is_(None))).all()
    if not rows:
        return
    calendar = WorkingCalendar.load()
    for row in rows:
        bind.execute(sa.update(cases).where(cases.c.id == row.id).values(
            deadline=calendar.add_working_days(row.filed_on, OBJECTION_DAYS)))


def downgrade() -> None:
    pass
