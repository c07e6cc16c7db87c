"""Disclosure classes and the policy that assigns them to fields and grants them to scopes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .cases import CaseRules
    from .credit import CreditRules
    from .masking import Mask
    from .rules import RecordAnnotation, RowRule


class DisclosureClass(enum.Enum):
    """信息使用范围: how far a field may travel."""

    PUBLIC = "PUBLIC"  # 公示: anyone, within the publicity window
    SHARED = "SHARED"  # 内部共享: government departments
    AUTHORIZED = "AUTHORIZED"  # 授权查询: named scopes, with a declared purpose
    CONFIDENTIAL = "CONFIDENTIAL"  # 不予公开: never leaves its source through the hub

    @property
    def label(self) -> str:
        return {"PUBLIC": "公示", "SHARED": "内部共享", "AUTHORIZED": "授权查询", "CONFIDENTIAL": "不予公开"}[self.value]


class PolicyError(ValueError):
    """A policy document is malformed or unsafe (e.g. a scope granting CONFIDENTIAL)."""


FieldKey = tuple[str, str]  # (family name, field name)


def _standard_rows() -> "tuple[RowRule, ...]":
    from .rules import standard_row_rules

    return standard_row_rules()


def _standard_annotations() -> "tuple[RecordAnnotation, ...]":
    from .rules import standard_annotations

    return standard_annotations()


def _standard_credit() -> "CreditRules":
    from .credit import standard_credit_rules

    return standard_credit_rules()


def _standard_cases() -> "CaseRules":
    from .cases import standard_case_rules

    return standard_case_rules()


@dataclass(frozen=True)
class Policy:
    """An immutable policy version.

    `classes` maps (family, field) to its disclosure class; `kind_overrides` maps a client kind
    to per-field classes that replace the default for that kind only; `scopes` maps an OAuth2
    scope to the classes it grants; `masks` maps (family, field) to the masking transform applied
    for each audience (see `audience`). `rows` are the row rules (which records a caller sees at
    all) and `annotations` the record annotations (e.g. the objection flag), `policies.rules`;
    both default to the standard ones. `credit` holds the credit governance rules (finding bases,
    list rules, measures catalogue, rating model, supervision classes: `policies.credit`),
    the shipped ones (policies/credit.toml) by default; `cases` the case rules (deadlines,
    complaint categories, credit repair, attachments, the review before publication:
    `policies.cases`), the shipped ones (policies/cases.toml) by default.
    """

    version: str
    classes: Mapping[FieldKey, DisclosureClass]
    scopes: Mapping[str, frozenset[DisclosureClass]]
    kind_overrides: Mapping[str, Mapping[FieldKey, DisclosureClass]] = field(default_factory=dict)
    public_scope: str = "credit:public"
    masks: Mapping[FieldKey, Mapping[DisclosureClass, "Mask"]] = field(default_factory=dict)
    rows: "tuple[RowRule, ...]" = field(default_factory=_standard_rows)
    annotations: "tuple[RecordAnnotation, ...]" = field(default_factory=_standard_annotations)
    credit: "CreditRules" = field(default_factory=_standard_credit)
    cases: "CaseRules" = field(default_factory=_standard_cases)

    def __post_init__(self) -> None:
        for scope, granted in self.scopes.items():
            if DisclosureClass.CONFIDENTIAL in granted:
                raise PolicyError(f"scope {scope!r} grants CONFIDENTIAL, which never leaves its source")
        if self.public_scope not in self.scopes:
            raise PolicyError(f"the public scope {self.public_scope!r} is not defined")

    def class_of(self, key: FieldKey, kind: str | None = None) -> DisclosureClass:
        """The class of a field for a client kind; unnamed fields are CONFIDENTIAL."""
        if kind is not None:
            override = self.kind_overrides.get(kind, {}).get(key)
            if override is not None:
                return override
        return self.classes.get(key, DisclosureClass.CONFIDENTIAL)

    def granted(self, scopes: frozenset[str]) -> frozenset[DisclosureClass]:
        """The classes a set of scopes grants together."""
        out: set[DisclosureClass] = set()
        for scope in scopes:
            out |= self.scopes.get(scope, frozenset())
        return frozenset(out)

    def audience(self, scopes: frozenset[str]) -> DisclosureClass:
        """The audience a caller belongs to, for masking: the widest class its scopes grant.

        SHARED (government) ranks above AUTHORIZED (banks, agencies), which ranks above PUBLIC.
        """
        granted = self.granted(scopes)
        for candidate in (DisclosureClass.SHARED, DisclosureClass.AUTHORIZED):
            if candidate in granted:
                return candidate
        return DisclosureClass.PUBLIC

    def mask_for(self, key: FieldKey, audience: DisclosureClass) -> "Mask | None":
        """The transform applied to a field for an audience, or None (the value goes out in clear).

        An AUTHORIZED audience (banks, agencies) that the policy gives no mask of its own gets the
        PUBLIC mask: it never sees more of a field than the public does unless the policy says so
        (with its own mask, or `clear`). SHARED (government) gets only a mask named for SHARED.
        """
        masks = self.masks.get(key)
        if not masks:
            return None
        found = masks.get(audience)
        if found is None and audience is DisclosureClass.AUTHORIZED:
            found = masks.get(DisclosureClass.PUBLIC)
        if found is not None and found.spec == "clear":
            return None
        return found

    def row_rules(self, family: str, audience: DisclosureClass) -> "tuple[RowRule, ...]":
        """The row rules in force on a family's records for an audience (see `audience`)."""
        return tuple(r for r in self.rows if family in r.families and r.applies(audience))

    def record_annotations(self, family: str, audience: DisclosureClass) -> "tuple[RecordAnnotation, ...]":
        """The record annotations in force on a family's records for an audience."""
        return tuple(a for a in self.annotations if family in a.families and a.applies(audience))
