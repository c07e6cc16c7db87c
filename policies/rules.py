"""Row rules and record annotations: the policy's rules about whole records, and their registry.

Field classes decide which *fields* of a record a caller receives. Row rules decide which
*records* a caller sees at all (the publicity window, the review gate, the validity window);
record annotations add a hub-computed value to each record shown (the objection flag). Both are
declared in the policy document, so they are versioned, diffed and audited like field classes:

    [[rows]]
    rule = "publicity-window"                 # the kind, as registered
    families = ["penalties"]                  # the record families it applies to
    applies_to = ["PUBLIC", "AUTHORIZED"]     # the audiences it applies to (default: outside government)
    show_minor = false                        # ... then the kind's own parameters
    max_months = { "轻微" = 3, "一般" = 12, "严重" = 36 }

    [[annotations]]
    rule = "objection-flag"
    families = ["licenses", "penalties"]

A kind is a class registered here by name (`register_row_rule`, `register_annotation`): it parses
and checks its parameters (`PolicyError` naming the place of fault), says which fields it reads
for a family (`reads`: the executor fetches them when the caller may receive them, and hides the
family's records when it may not — a rule that cannot be checked fails closed), and decides
(`RowRule.keep(record, today)`, or `RowRule.keeper` with the subject's hub-owned facts: the
publicity window ends a record's display on its approved credit repair) or computes
(`RecordAnnotation.annotate`). The executor knows only this interface, so a new kind is one
registered class. The kinds shipped are in `policies/rows.py`, `policies/review.py` (the review
before publication) and `policies/annotations.py`.

The audience of a rule is stated as for masks: the widest class a caller's scopes grant
(`Policy.audience`): SHARED (government), AUTHORIZED (banks, agencies), PUBLIC (everyone else).
Row rules apply by default to PUBLIC and AUTHORIZED, i.e. to every caller not granted SHARED;
annotations by default to every caller who receives the record.

A policy document without a `rows` (or `annotations`) section — every version stored before
rules were declared — has the standard ones (`STANDARD_ROWS`, `STANDARD_ANNOTATIONS`); an empty
array means none.
"""

from __future__ import annotations

import datetime as dt
import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Collection, Mapping, Protocol, Self, TypeVar

from xinlian.schema.catalogue import FAMILIES, RecordFamily

from .model import DisclosureClass, PolicyError

AUDIENCES = (DisclosureClass.PUBLIC, DisclosureClass.AUTHORIZED, DisclosureClass.SHARED)
OUTSIDE_GOVERNMENT = frozenset({DisclosureClass.PUBLIC, DisclosureClass.AUTHORIZED})
EVERYONE = frozenset(AUDIENCES)
COMMON_KEYS = ("rule", "families", "applies_to")


class Parameters:
    """The raw parameters of one declared rule, read with checks that name the place of fault.

    Each getter marks its key as read; `finish()` refuses keys no getter asked for.
    """

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        self.table = table
        self.where = where
        self._read: set[str] = set(COMMON_KEYS)

    def error(self, message: str) -> PolicyError:
        return PolicyError(f"{self.where}: {message}")

    def raw(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        return self.table.get(name, default)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.error(f"{name} must be true or false, got {value!r}")
        return value

    def string(self, name: str, default: str | None = None) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{name} must be a non-empty string, got {value!r}")
        return value

    def strings(self, name: str, default: Collection[str] | None = None) -> tuple[str, ...]:
        """A non-empty array of distinct non-empty strings."""
        value = self.raw(name, None if default is None else list(default))
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.error(f"{name} must be a non-empty array of strings, got {value!r}")
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise self.error(f"{name} names {', '.join(repeated)} more than once")
        return tuple(value)

    def finish(self, kind: str) -> None:
        unknown = sorted(set(self.table) - self._read)
        if unknown:
            expected = ", ".join(k for k in sorted(self._read) if k not in COMMON_KEYS) or "none"
            raise self.error(f"unknown parameter {', '.join(map(repr, unknown))} for rule {kind!r} (its parameters: {expected})")


@dataclass(frozen=True)
class DeclaredRule(ABC):
    """What every declared rule has: its families and the audiences it applies to.

    A kind without parameters of its own needs neither `parse` nor `parameters`: the defaults
    take none (any parameter given is refused as unknown) and spell out none.
    """

    kind: ClassVar[str] = ""
    default_audience: ClassVar[frozenset[DisclosureClass]] = OUTSIDE_GOVERNMENT

    families: tuple[str, ...]
    applies_to: frozenset[DisclosureClass]

    @classmethod
    def parse(cls, params: Parameters, families: tuple[str, ...], applies_to: frozenset[DisclosureClass]) -> Self:
        """The rule from its parameters (families and audience already read); `PolicyError` if bad."""
        return cls(families, applies_to)

    def parameters(self) -> dict[str, Any]:
        """The kind's own parameters, spelled out (the document form, for storage and diffs)."""
        return {}

    @abstractmethod
    def reads(self, family: RecordFamily) -> tuple[str, ...]:
        """The fields of `family` the rule reads (fetched for it when the caller may receive them)."""

    def unfit(self, family: RecordFamily) -> str | None:
        """Why the rule cannot apply to `family` (checked when the policy is read), or None."""
        return None

    def applies(self, audience: DisclosureClass) -> bool:
        return audience in self.applies_to

    def document(self) -> dict[str, Any]:
        """The rule as a policy document entry: rule, families, applies_to, then its parameters."""
        order = {c: i for i, c in enumerate(AUDIENCES)}
        return {
            "rule": self.kind,
            "families": list(self.families),
            "applies_to": [c.value for c in sorted(self.applies_to, key=order.__getitem__)],
            **self.parameters(),
        }


class SubjectFacts(Protocol):
    """Hub-owned facts about the subject whose records are shown (the executor provides them)."""

    def open_objections(self, family: str) -> Collection[str] | None:
        """Keys of the subject's records in `family` under an open objection; None if not known."""
        ...

    def repairs(self, family: str) -> Mapping[str, dt.date] | None:
        """The subject's records in `family` repaired by an approved credit repair (信用修复): record key
        → the day of the approval; None if not known."""
        ...

    def publication(self, family: str) -> Mapping[str, bool] | bool | None:
        """The review before publication (预留审核环节) of the subject's records in `family`: record key →
        whether it may be shown to the public now; True when the review is off (every record may);
        None if not known (the records were not looked up in the review queue)."""
        ...


class RowRule(DeclaredRule):
    """A rule deciding which records of a family a caller sees at all."""

    @abstractmethod
    def keep(self, record: Mapping[str, Any], today: dt.date) -> bool:
        """Whether the record may be shown on `today` (fail closed: False when it cannot be told)."""

    def keeper(self, family: RecordFamily, facts: SubjectFacts, today: dt.date) -> Callable[[Mapping[str, Any]], bool]:
        """`keep` for every record of one subject's family: a kind that also depends on hub-owned facts
        about the subject (the publicity window on approved credit repairs) overrides this to look
        them up once, not once per record. The executor calls this; `keep` alone knows no facts."""
        return lambda record: self.keep(record, today)


class RecordAnnotation(DeclaredRule):
    """A value the hub adds to every record of a family it shows (e.g. the objection flag)."""

    default_audience: ClassVar[frozenset[DisclosureClass]] = EVERYONE
    output: ClassVar[str] = ""  # the record field it sets (schema/graphql.py declares it)

    @abstractmethod
    def annotate(self, family: RecordFamily, record: Mapping[str, Any], facts: SubjectFacts) -> Any:
        """The annotation's value for one record (None when it cannot be told)."""

    def annotator(self, family: RecordFamily, facts: SubjectFacts) -> Callable[[Mapping[str, Any]], Any]:
        """`annotate` for every record of one subject's family: a kind that looks something up per
        subject (open objections) overrides this to look it up once, not once per record."""
        return lambda record: self.annotate(family, record, facts)


R = TypeVar("R", bound=DeclaredRule)
_ROW_RULES: dict[str, type[RowRule]] = {}
_ANNOTATIONS: dict[str, type[RecordAnnotation]] = {}


def _register(registry: dict[str, type[R]], cls: type[R]) -> type[R]:
    if not cls.kind or cls.kind in registry and registry[cls.kind] is not cls:
        raise ValueError(f"rule kind {cls.kind!r} is empty or already registered")
    registry[cls.kind] = cls
    return cls


def register_row_rule(cls: type[RowRule]) -> type[RowRule]:
    """Class decorator: make a row rule kind available to policy documents under `cls.kind`."""
    _register(_ROW_RULES, cls)
    return cls


def register_annotation(cls: type[RecordAnnotation]) -> type[RecordAnnotation]:
    """Class decorator: make a record annotation kind available to policy documents under `cls.kind`."""
    _register(_ANNOTATIONS, cls)
    return cls


def row_rule_kinds() -> dict[str, type[RowRule]]:
    """The registered row rule kinds by name."""
    return dict(_ROW_RULES)


def annotation_kinds() -> dict[str, type[RecordAnnotation]]:
    """The registered record annotation kinds by name."""
    return dict(_ANNOTATIONS)


def _audience(params: Parameters, default: frozenset[DisclosureClass]) -> frozenset[DisclosureClass]:
    names = params.strings("applies_to", [c.value for c in AUDIENCES if c in default])
    out: set[DisclosureClass] = set()
    for name in names:
        try:
            disclosure = DisclosureClass(name.strip().upper())
        except ValueError:
            disclosure = None
        if disclosure not in AUDIENCES:
            raise params.error(f"applies_to: {name!r} is not an audience (PUBLIC, AUTHORIZED or SHARED)")
        assert disclosure is not None
        out.add(disclosure)
    return frozenset(out)


def _parse_one(registry: Mapping[str, type[R]], entry: Any, where: str) -> R:
    if not isinstance(entry, dict):
        raise PolicyError(f"{where}: expected a table with rule = \"...\" and families = [...]")
    kind = entry.get("rule")
    cls = registry.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise PolicyError(f"{where}: unknown rule {kind!r} (one of: {', '.join(sorted(registry)) or 'none'})")
    params = Parameters(entry, f"{where} ({kind})")
    families = params.strings("families")
    for name in families:
        if name not in FAMILIES:
            raise params.error(f"unknown record family {name!r}")
    rule = cls.parse(params, tuple(sorted(families)), _audience(params, cls.default_audience))
    params.finish(cls.kind)
    for name in rule.families:
        why = rule.unfit(FAMILIES[name])
        if why is not None:
            raise params.error(f"cannot apply to {name}: {why}")
    return rule


def _parse_all(registry: Mapping[str, type[R]], value: Any, where: str) -> tuple[R, ...]:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected an array of tables ([[{where}]])")
    return tuple(_parse_one(registry, entry, f"{where}[{i}]") for i, entry in enumerate(value))


def parse_row_rules(value: Any, where: str = "rows") -> tuple[RowRule, ...]:
    """Row rules from a document's `rows` array."""
    return _parse_all(_ROW_RULES, value, where)


def parse_annotations(value: Any, where: str = "annotations") -> tuple[RecordAnnotation, ...]:
    """Record annotations from a document's `annotations` array."""
    return _parse_all(_ANNOTATIONS, value, where)


def rules_document(rules: Collection[DeclaredRule]) -> list[dict[str, Any]]:
    """Rules as the explicit document entries stored in the hub store."""
    return [rule.document() for rule in rules]


# The standard rules: what a policy document without a `rows` / `annotations` section has. Each
# kind's parameters default to the standard values (the measures' windows, the reviewed statuses).
STANDARD_ROWS: tuple[Mapping[str, Any], ...] = (
    {"rule": "publicity-window", "families": ["major_tax_violations", "penalties"]},
    {"rule": "review-gate", "families": ["honors", "judgment_debtor_records", "licenses", "penalties"]},
    {"rule": "publication-review", "families": ["licenses", "penalties"]},
    {"rule": "validity-window", "families": ["honors", "licenses"]},
)
STANDARD_ANNOTATIONS: tuple[Mapping[str, Any], ...] = (
    {
        "rule": "objection-flag",
        "families": sorted(f.name for f in FAMILIES.values() if f.record_key is not None),
    },
)


@functools.cache
def standard_row_rules() -> tuple[RowRule, ...]:
    """The standard row rules (`STANDARD_ROWS`), parsed."""
    return parse_row_rules([dict(entry) for entry in STANDARD_ROWS], "standard rows")


@functools.cache
def standard_annotations() -> tuple[RecordAnnotation, ...]:
    """The standard record annotations (`STANDARD_ANNOTATIONS`), parsed."""
    return parse_annotations([dict(entry) for entry in STANDARD_ANNOTATIONS], "standard annotations")
