"""The `publication-review` row rule: the review before publication (预留审核环节) as policy data.

The rule is the one source of truth for WHERE the review applies: the families in its
`[[rows]]` entry (`rule = "publication-review"`) are the reviewed ones — the hub queues their
records, and nothing else — and its audiences (the public by default) are those who see only
publishable records. The policy's `[cases.review]` section (policies/cases.py) holds only the
queue's parameters: which decision dates are new (`since`), which departments are trusted or
auto-approved after how many hours, and `enabled` (false: every record is publishable, nothing is
queued). A policy version without the rule — every version stored before the review existed —
has no review: its records are shown as they were then.

Whether a record is publishable depends on which department it came from and on the queue's
state, which only the hub knows. The request's loaders (hub/executor/loader.py) note, per
subject and family, each record's key and department; the request's `SubjectFacts.publication`
answers {record key: publishable} from them and the queue (hub/cases/review.py), and this rule
keeps the records whose key is publishable. No record is copied or marked. A record without a
key, or a subject whose publication is not known (read by a path that did not consult the queue),
is not shown: the rule fails closed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Collection, Mapping

from xinlian.schema.catalogue import RecordFamily

from .model import DisclosureClass
from .rules import RowRule, SubjectFacts, register_row_rule

KIND = "publication-review"
MAX_KEY = 200  # the queue names a record by at most this many characters of its key


def review_key(value: Any) -> str | None:
    """How the queue names a record by its key field's value (None: the record has no key)."""
    if value is None:
        return None
    key = str(value).strip()[:MAX_KEY]
    return key or None


def reviewed_families(rows: Collection[RowRule]) -> frozenset[str]:
    """The families a policy's row rules put under the review before publication (any audience)."""
    return frozenset(f for r in rows if r.kind == KIND for f in r.families)


def _hidden(record: Mapping[str, Any]) -> bool:
    return False


def _shown(record: Mapping[str, Any]) -> bool:
    return True


@register_row_rule
@dataclass(frozen=True)
class PublicationReview(RowRule):
    """`publication-review`: only records the review queue found publishable are shown."""

    kind = KIND
    default_audience: ClassVar[frozenset[DisclosureClass]] = frozenset({DisclosureClass.PUBLIC})

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        """The record's key (the queue names records by it) and its date (older than `since`: not reviewed)."""
        return tuple(f for f in (family.record_key, family.recency) if f)

    def unfit(self, family: RecordFamily) -> str | None:
        return None if family.record_key else "its records have no key to review them by"

    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        """Without the subject's facts nothing can be told: not shown (the executor uses `keeper`)."""
        return False

    def keeper(self, family: RecordFamily, facts: SubjectFacts, today: dt.date) -> Callable[[Mapping[str, Any]], bool]:
        """The records whose key the queue found publishable (looked up once per subject); the
        review off: every record; not known: none."""
        verdicts = facts.publication(family.name)
        if verdicts is None or verdicts is False or family.record_key is None:
            return _hidden
        if verdicts is True:
            return _shown
        key_field, found = family.record_key, verdicts
        return lambda record: found.get(review_key(record.get(key_field)) or "") is True
