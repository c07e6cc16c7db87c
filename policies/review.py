"""The `publication-review` row rule: the review before publication (预留审核环节) as policy data.

Declared in the policy's `[[rows]]` (`rule = "publication-review"`, the families and audiences it
applies to — the public by default); its queue's parameters (which decision dates are new, which
departments are trusted or auto-approved after how many hours) are the policy's
`[cases.review]` section (policies/cases.py). A record is shown to the audiences it applies to
only when the hub's review queue says it is publishable (hub/cases/review.py: approved, from a
trusted department, waited long enough, or decided before `since`).

Whether a record is publishable depends on which department it came from and on the queue's
state, which only the hub knows: the request's loaders (hub/executor/loader.py) give each record
of a reviewed family the queue's verdict under `REVIEW_MARK` (on a copy; cached records are never
changed), and this rule keeps the records marked publishable. A record without a mark — read by a
path that did not consult the queue — is not shown: the rule fails closed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from xinlian.schema.catalogue import RecordFamily

from .model import DisclosureClass
from .rules import RowRule, register_row_rule

REVIEW_MARK = "__publishable"  # set by the loaders on copies of reviewed records; never a catalogue field


@register_row_rule
@dataclass(frozen=True)
class PublicationReview(RowRule):
    """`publication-review`: only records the review queue found publishable are shown."""

    kind = "publication-review"
    default_audience: ClassVar[frozenset[DisclosureClass]] = frozenset({DisclosureClass.PUBLIC})

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        """The record's key (the queue names records by it) and its date (older than `since`: not reviewed)."""
        return tuple(f for f in (family.record_key, family.recency) if f)

    def unfit(self, family: RecordFamily) -> str | None:
        return None if family.record_key else "its records have no key to review them by"

    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        return record.get(REVIEW_MARK) is True
