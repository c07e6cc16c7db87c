"""`MeasureFeedback` (实施反馈): the measures a unit actually applied after a credit check.

A unit that ran a check (a procurement office, a licensing desk, a bank) records which measure
of the catalogue it applied to which subject, in which context, on which day, quoting the
check's request id. The credit office reads the totals per department and measure: the joint
sanctions and rewards the district actually applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import MeasureFeedback
from xinlian.policies.credit import CreditRules

from .model import CreditInputError
from .register import decision_text, subject_key

FEEDBACK = table_of(MeasureFeedback)


@dataclass(frozen=True)
class FeedbackTotal:
    department: str
    measure: str
    measure_name: str
    applied: int
    last_applied_on: dt.date


class FeedbackRegister:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(
        self, rules: CreditRules, *, measure: str, subject: str, context: str, applied_on: dt.date, client_id: str,
        department: str, today: dt.date, check_request_id: str = "", note: str = "",
    ) -> int:
        """Store one feedback row; returns its id. The measure must apply in the context."""
        found = next((m for m in rules.measures if m.code == measure), None)
        if found is None:
            raise CreditInputError(f"measure: unknown {measure!r} (see `xinlian measures list`)")
        if context not in found.contexts:
            raise CreditInputError(f"measure {measure} does not apply in {context!r} (its contexts: {', '.join(found.contexts)})")
        if applied_on > today:
            raise CreditInputError(f"appliedOn: {applied_on} is in the future")
        values = {
            "measure": measure, "subject": subject_key(subject), "context": context, "client_id": client_id,
            "department": department, "applied_on": applied_on,
            "check_request_id": decision_text(check_request_id, "checkRequestId", required=False, limit=64),
            "note": decision_text(note, "note", required=False), "recorded_at": dt.datetime.now(dt.timezone.utc),
        }
        async with self.store.session() as session:
            new_id = (await session.execute(insert(FEEDBACK).values(**values).returning(FEEDBACK.c.id))).scalar_one()
            await session.commit()
        return int(new_id)

    async def totals(self, rules: CreditRules, department: str | None = None) -> list[FeedbackTotal]:
        c = FEEDBACK.c
        query = (
            select(c.department, c.measure, func.count(), func.max(c.applied_on))
            .group_by(c.department, c.measure)
            .order_by(c.department, c.measure)
        )
        if department is not None:
            query = query.where(c.department == department)
        names = {m.code: m.name for m in rules.measures}
        async with self.store.session() as session:
            rows = await session.execute(query)
            return [FeedbackTotal(d, m, names.get(m, m), int(n), last) for d, m, n, last in rows]
