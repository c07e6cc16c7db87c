"""The record annotation kinds: values the hub adds to the records it shows.

Registered with `policies.rules` and declared in the policy document (`[[annotations]]`):

* `objection-flag` (`ObjectionFlag`): records of keyed families (licences and penalties by
  decision number, judgment debtors by case number, honours by name, tax credit by year, arrears
  by period: `RecordFamily.record_key`) carry `underObjection`, true while an objection (异议)
  against that record is open in the hub store, false otherwise, and null when the record's key
  could not be read (the caller may not receive the key field) or the open objections are not
  known. It applies by default to every caller who receives the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from xinlian.schema.catalogue import RecordFamily

from .rules import RecordAnnotation, SubjectFacts, register_annotation


@register_annotation
@dataclass(frozen=True)
class ObjectionFlag(RecordAnnotation):
    """`objection-flag`: is an objection against this record open?"""

    kind = "objection-flag"
    output = "under_objection"  # schema.graphql.OBJECTION_FLAG

    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        return (family.record_key,) if family.record_key is not None else ()

    def unfit(self, family: RecordFamily) -> str | None:
        return None if family.record_key is not None else "its records have no key an objection could name"

    def annotate(self, family: RecordFamily, record: Mapping[str, Any], facts: SubjectFacts) -> Any:
        return self.annotator(family, facts)(record)

    def annotator(self, family: RecordFamily, facts: SubjectFacts) -> Callable[[Mapping[str, Any]], Any]:
        """The subject's open objections are looked up once; each record is then a set look-up."""
        key = family.record_key
        disputed = facts.open_objections(family.name)
        if key is None or disputed is None:
            return lambda record: None

        def flag(record: Mapping[str, Any]) -> bool | None:
            ref = record.get(key)
            return None if ref is None else str(ref) in disputed

        return flag
