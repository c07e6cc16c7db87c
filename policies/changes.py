"""Changes to a policy document, and what changed between two documents, in words.

A policy change is a small value (`SetFieldClass`, `ClearOverride`, `SetMask`, `SetScope`) that
`apply_changes` applies to a policy *document* — the explicit dict of
`policies.loader.policy_document` — giving a new document. Everything here is pure: no store,
no clock. The hub's policy history (`hub.governance.policy_versions`) validates the result with
`parse_policy` and stores it as a new version; `describe_diff` gives the "what changed" lines
it records, one per leaf that differs:

    fields.penalties.case_handler: SHARED -> PUBLIC
    overrides.bank.tax_credit.level: (none) -> AUTHORIZED
    masks.tax_credit.tax_paid.AUTHORIZED: (none) -> round:10
    scopes.credit:x: (none) -> PUBLIC, SHARED
    rows.publicity-window.max_months.一般: 12 -> 6
    rows.validity-window.families: honors, licenses -> (none)

`(none)` means the document does not name the entry (an unnamed field is CONFIDENTIAL, an
absent override or mask does not apply, an absent scope grants nothing). Row rules and
annotations are named by their kind (`rows.review-gate...`; `rows.review-gate#2...` for the second
rule of a kind), one line per parameter; a document without a `rows` or `annotations` section
reads as the standard rules, as `parse_policy` reads it.

A change that is malformed (unknown family, field or class, a scope granting CONFIDENTIAL, a
mask spec that does not parse) or that would change nothing raises `PolicyChangeError`; the
input document is never modified.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, Union

from xinlian.schema.catalogue import FAMILIES

from .cases import cases_leaves
from .credit import credit_leaves
from .masking import parse_mask
from .model import DisclosureClass, PolicyError
from .rules import (
    parse_annotations,
    parse_row_rules,
    rules_document,
    standard_annotations,
    standard_row_rules,
)

NONE = "(none)"
ALL_FIELDS = "*"  # in a change: every field of the family
CLIENT_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 scope-token characters


class PolicyChangeError(PolicyError):
    """A policy change is malformed, unsafe, or changes nothing; nothing was changed."""


def _disclosure(value: DisclosureClass | str, where: str) -> DisclosureClass:
    if isinstance(value, DisclosureClass):
        return value
    try:
        return DisclosureClass(str(value).strip().upper())
    except ValueError:
        names = ", ".join(c.value for c in DisclosureClass)
        raise PolicyChangeError(f"{where}: {value!r} is not a disclosure class ({names})") from None


def _fields(family: str, field: str) -> tuple[str, ...]:
    """The field names a change addresses (`*`: all of the family's), checked against the catalogue."""
    spec = FAMILIES.get(family)
    if spec is None:
        raise PolicyChangeError(f"unknown record family {family!r} (one of: {', '.join(FAMILIES)})")
    if field == ALL_FIELDS:
        return tuple(spec.field_names)
    if field not in spec.field_names:
        raise PolicyChangeError(f"{family}: unknown field {field!r} (one of: {', '.join(spec.field_names)})")
    return (field,)


def _kind(kind: str) -> str:
    if not isinstance(kind, str) or not CLIENT_KIND.fullmatch(kind):
        raise PolicyChangeError(f"a client kind is a lower-case name such as 'bank', got {kind!r}")
    return kind


@dataclass(frozen=True)
class SetFieldClass:
    """Give a field (or `*`: every field of the family) a class: the base class when `kind` is
    None, otherwise an override for that client kind only."""

    family: str
    field: str
    disclosure: DisclosureClass
    kind: str | None = None

    def apply(self, document: dict[str, Any]) -> list[str]:
        names = _fields(self.family, self.field)
        where = f"fields.{self.family}.{self.field}" if self.kind is None else f"overrides.{self.kind}.{self.family}.{self.field}"
        value = _disclosure(self.disclosure, where).value
        if self.kind is None:
            table = document.setdefault("fields", {}).setdefault(self.family, {})
        else:
            table = document.setdefault("overrides", {}).setdefault(_kind(self.kind), {}).setdefault(self.family, {})
        changed = [name for name in names if table.get(name) != value]
        if not changed:
            raise PolicyChangeError(f"{where} is already {value}")
        for name in changed:
            table[name] = value
        return changed


@dataclass(frozen=True)
class ClearOverride:
    """Remove a client kind's override of a field (or `*`: of every field of the family)."""

    family: str
    field: str
    kind: str

    def apply(self, document: dict[str, Any]) -> list[str]:
        names = _fields(self.family, self.field)
        kind = _kind(self.kind)
        table = document.get("overrides", {}).get(kind, {}).get(self.family, {})
        present = [name for name in names if name in table]
        if not present:
            raise PolicyChangeError(f"overrides.{kind}.{self.family}.{self.field}: no such override")
        for name in present:
            del table[name]
        _prune(document.get("overrides", {}), kind, self.family)
        return present


@dataclass(frozen=True)
class SetMask:
    """Set the masking transform of a field for an audience class (`spec` None removes it)."""

    family: str
    field: str
    audience: DisclosureClass
    spec: str | None

    def apply(self, document: dict[str, Any]) -> list[str]:
        if self.field == ALL_FIELDS:
            raise PolicyChangeError("a mask is set field by field, not with '*'")
        (name,) = _fields(self.family, self.field)
        where = f"masks.{self.family}.{name}"
        audience = _disclosure(self.audience, where)
        if audience is DisclosureClass.CONFIDENTIAL:
            raise PolicyChangeError(f"{where}: CONFIDENTIAL is never an audience")
        where = f"{where}.{audience.value}"
        current = document.get("masks", {}).get(self.family, {}).get(name, {}).get(audience.value)
        if self.spec is None:
            if current is None:
                raise PolicyChangeError(f"{where}: no mask to remove")
            masks = document["masks"]
            del masks[self.family][name][audience.value]
            _prune(masks, self.family, name)
            return [name]
        try:
            spec = parse_mask(self.spec, where).spec
        except PolicyError as exc:
            raise PolicyChangeError(str(exc)) from None
        if current == spec:
            raise PolicyChangeError(f"{where} is already {spec}")
        per_audience = document.setdefault("masks", {}).setdefault(self.family, {}).setdefault(name, {})
        per_audience[audience.value] = spec
        return [name]


@dataclass(frozen=True)
class SetScope:
    """Set the classes an OAuth2 scope grants (`classes` None removes the scope)."""

    scope: str
    classes: frozenset[DisclosureClass] | None

    def apply(self, document: dict[str, Any]) -> list[str]:
        if not isinstance(self.scope, str) or not SCOPE_TOKEN.fullmatch(self.scope):
            raise PolicyChangeError(f"invalid scope token {self.scope!r}")
        where = f"scopes.{self.scope}"
        scopes = document.setdefault("scopes", {})
        if self.classes is None:
            if self.scope == document.get("public_scope", "credit:public"):
                raise PolicyChangeError(f"{where}: the public scope cannot be removed")
            if self.scope not in scopes:
                raise PolicyChangeError(f"{where}: no such scope")
            del scopes[self.scope]
            return [self.scope]
        granted = sorted({_disclosure(c, where).value for c in self.classes})
        if not granted:
            raise PolicyChangeError(f"{where}: a scope grants at least one class (remove the scope instead)")
        if DisclosureClass.CONFIDENTIAL.value in granted:
            raise PolicyChangeError(f"{where}: a scope may not grant CONFIDENTIAL, which never leaves its source")
        if sorted(scopes.get(self.scope) or []) == granted and self.scope in scopes:
            raise PolicyChangeError(f"{where} already grants {', '.join(granted)}")
        scopes[self.scope] = granted
        return [self.scope]


PolicyChange = Union[SetFieldClass, ClearOverride, SetMask, SetScope]


def _prune(table: dict[str, Any], *path: str) -> None:
    """Remove empty tables along `path` (deepest first), so a cleared entry leaves no trace."""
    nodes = [table]
    for key in path:
        node = nodes[-1].get(key)
        if not isinstance(node, dict):
            return
        nodes.append(node)
    for key, parent, node in zip(reversed(path), reversed(nodes[:-1]), reversed(nodes[1:])):
        if node:
            return
        del parent[key]


def apply_changes(document: dict[str, Any], changes: Sequence[PolicyChange]) -> dict[str, Any]:
    """A new document with `changes` applied in order (the input is left as it was).

    Each change must change something at its turn; `PolicyChangeError` otherwise. The result is
    not validated as a whole here: `parse_policy` does that (e.g. that the public scope exists).
    """
    if not changes:
        raise PolicyChangeError("no changes given")
    out = copy.deepcopy(document)
    for change in changes:
        if not isinstance(change, (SetFieldClass, ClearOverride, SetMask, SetScope)):
            raise PolicyChangeError(f"not a policy change: {change!r}")
        change.apply(out)
    return out


# --- what changed -------------------------------------------------------------------------------


def _field_leaves(prefix: str, table: Any) -> Iterable[tuple[str, str]]:
    """`{family: {field|"*": CLASS}}` as (path, CLASS) per field, "*" expanded over the catalogue."""
    for family_name, entries in sorted((table or {}).items()):
        if not isinstance(entries, dict):
            continue
        family = FAMILIES.get(family_name)
        names = list(family.field_names) if family is not None else [n for n in entries if n != ALL_FIELDS]
        default = entries.get(ALL_FIELDS)
        for name in sorted(names):
            value = entries.get(name, default)
            if value is not None:
                yield f"{prefix}.{family_name}.{name}", str(value).upper()


def _leaves(document: dict[str, Any]) -> dict[str, str]:
    """Every leaf of a policy document as a dotted path → display value."""
    out: dict[str, str] = {}
    if "public_scope" in document:
        out["public_scope"] = str(document["public_scope"])
    for scope, granted in sorted((document.get("scopes") or {}).items()):
        out[f"scopes.{scope}"] = ", ".join(sorted(str(c).upper() for c in granted or ()))
    out.update(_field_leaves("fields", document.get("fields")))
    for kind, table in sorted((document.get("overrides") or {}).items()):
        out.update(_field_leaves(f"overrides.{kind}", table))
    for family_name, entries in sorted((document.get("masks") or {}).items()):
        for name, per_audience in sorted((entries or {}).items()):
            for audience, spec in sorted((per_audience or {}).items()):
                out[f"masks.{family_name}.{name}.{str(audience).upper()}"] = str(spec)
    out.update(_rule_leaves("rows", document))
    out.update(_rule_leaves("annotations", document))
    out.update(credit_leaves(document))
    out.update(cases_leaves(document))
    return out


def _rule_entries(section: str, document: dict[str, Any]) -> list[Any]:
    """A section's rules as explicit entries (the standard ones when the section is absent)."""
    if section not in document:
        return rules_document(standard_row_rules() if section == "rows" else standard_annotations())
    raw = document[section]
    try:
        return rules_document(parse_row_rules(raw) if section == "rows" else parse_annotations(raw))
    except PolicyError:
        return list(raw) if isinstance(raw, list) else []  # not valid: compared as written


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            _flatten(f"{prefix}.{key}", value, out)
        else:
            out[f"{prefix}.{key}"] = _value(value)


def _rule_leaves(section: str, document: dict[str, Any]) -> dict[str, str]:
    """`rows.<kind>.<parameter>` per parameter of every rule (`<kind>#2` for a kind's second rule)."""
    entries = [e for e in _rule_entries(section, document) if isinstance(e, dict)]
    seen: dict[str, int] = {}
    out: dict[str, str] = {}
    for entry in entries:
        kind = str(entry.get("rule"))
        seen[kind] = seen.get(kind, 0) + 1
        name = kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"
        _flatten(f"{section}.{name}", {k: v for k, v in entry.items() if k != "rule"}, out)
    return out


_SECTIONS = ("public_scope", "scopes", "fields", "overrides", "masks", "rows", "annotations", "credit")


def _order(path: str) -> tuple[int, str]:
    head = path.split(".", 1)[0]
    return (_SECTIONS.index(head) if head in _SECTIONS else len(_SECTIONS), path)


def describe_diff(old_document: dict[str, Any], new_document: dict[str, Any]) -> list[str]:
    """One line per leaf that differs, `path: old -> new`, in a stable order (sections, then path)."""
    old, new = _leaves(old_document), _leaves(new_document)
    lines = []
    for path in sorted(old.keys() | new.keys(), key=_order):
        before, after = old.get(path, NONE), new.get(path, NONE)
        if before != after:
            lines.append(f"{path}: {before or NONE} -> {after or NONE}")
    return lines
