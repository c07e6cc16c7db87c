"""Reading policy documents (TOML) into `Policy` objects, with errors that name the line of fault."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from xinlian.schema.catalogue import FAMILIES

from . import annotations as _annotations  # noqa: F401  (registers the annotation kinds)
from . import review as _review  # noqa: F401  (registers the publication-review row rule)
from . import rows as _rows  # noqa: F401  (registers the row rule kinds)
from .cases import cases_document, parse_cases
from .credit import credit_document, parse_credit
from .masking import Mask, parse_mask
from .model import DisclosureClass, FieldKey, Policy, PolicyError
from .rules import parse_annotations, parse_row_rules, rules_document


def default_policy_path() -> Path:
    """The policy shipped with the hub."""
    return Path(__file__).with_name("default.toml")


def _class(value: Any, where: str) -> DisclosureClass:
    try:
        return DisclosureClass(str(value).upper())
    except ValueError:
        names = ", ".join(c.value for c in DisclosureClass)
        raise PolicyError(f"{where}: {value!r} is not a disclosure class ({names})") from None


def _field_classes(table: Any, where: str) -> dict[FieldKey, DisclosureClass]:
    """Parse `{family: {"*": CLASS, field: CLASS}}` into per-field classes."""
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: expected a table of record families")
    out: dict[FieldKey, DisclosureClass] = {}
    for family_name, entries in table.items():
        family = FAMILIES.get(family_name)
        if family is None:
            raise PolicyError(f"{where}: unknown record family {family_name!r}")
        if not isinstance(entries, dict):
            raise PolicyError(f"{where}.{family_name}: expected a table of field = class")
        default = entries.get("*")
        for name in entries:
            if name != "*" and name not in family.field_names:
                raise PolicyError(f"{where}.{family_name}: unknown field {name!r}")
        for name in family.field_names:
            value = entries.get(name, default)
            if value is not None:
                out[(family_name, name)] = _class(value, f"{where}.{family_name}.{name}")
    return out


def _masks(table: Any) -> dict[FieldKey, dict[DisclosureClass, Mask]]:
    """Parse `{family: {field: {AUDIENCE: "spec"}}}` (AUDIENCE is PUBLIC, AUTHORIZED or SHARED)."""
    if not isinstance(table, dict):
        raise PolicyError("masks: expected a table of record families")
    out: dict[FieldKey, dict[DisclosureClass, Mask]] = {}
    for family_name, entries in table.items():
        family = FAMILIES.get(family_name)
        if family is None:
            raise PolicyError(f"masks: unknown record family {family_name!r}")
        if not isinstance(entries, dict):
            raise PolicyError(f"masks.{family_name}: expected a table of field = {{ AUDIENCE = mask }}")
        for name, per_audience in entries.items():
            where = f"masks.{family_name}.{name}"
            if name not in family.field_names:
                raise PolicyError(f"masks.{family_name}: unknown field {name!r}")
            if not isinstance(per_audience, dict) or not per_audience:
                raise PolicyError(f"{where}: expected {{ PUBLIC = \"mask\" }} (a mask per audience class)")
            masks: dict[DisclosureClass, Mask] = {}
            for audience, spec in per_audience.items():
                disclosure = _class(audience, where)
                if disclosure is DisclosureClass.CONFIDENTIAL:
                    raise PolicyError(f"{where}: CONFIDENTIAL is never an audience")
                masks[disclosure] = parse_mask(spec, f"{where}.{audience}")
            out[(family_name, name)] = masks
    return out


def parse_policy(document: dict[str, Any], version: str) -> Policy:
    """Build a `Policy` from a parsed TOML document."""
    scopes_table = document.get("scopes")
    if not isinstance(scopes_table, dict) or not scopes_table:
        raise PolicyError("policy has no [scopes] table")
    scopes: dict[str, frozenset[DisclosureClass]] = {}
    for scope, granted in scopes_table.items():
        if not isinstance(granted, list):
            raise PolicyError(f"scopes.{scope}: expected an array of disclosure classes")
        scopes[scope] = frozenset(_class(c, f"scopes.{scope}") for c in granted)
    classes = _field_classes(document.get("fields", {}), "fields")
    overrides_table = document.get("overrides", {})
    if not isinstance(overrides_table, dict):
        raise PolicyError("overrides: expected a table of client kinds")
    overrides = {kind: _field_classes(table, f"overrides.{kind}") for kind, table in overrides_table.items()}
    # a document without these sections (stored before rules were declared) keeps `Policy`'s
    # defaults, the standard rules
    rules: dict[str, Any] = {}
    if "rows" in document:
        rules["rows"] = parse_row_rules(document["rows"])
    if "annotations" in document:
        rules["annotations"] = parse_annotations(document["annotations"])
    if "credit" in document:  # absent: the shipped credit rules (policies/credit.toml)
        # a scope credit.access names but [scopes] does not declare can be granted to no client
        # (clients' scopes are checked against the declared ones): it opens nothing
        rules["credit"] = parse_credit(document["credit"])
    if "cases" in document:  # absent: the shipped case rules (policies/cases.toml)
        rules["cases"] = parse_cases(document["cases"])
    return Policy(
        version=version,
        classes=classes,
        scopes=scopes,
        kind_overrides=overrides,
        public_scope=document.get("public_scope", "credit:public"),
        masks=_masks(document.get("masks", {})),
        **rules,
    )


def policy_document(policy: Policy) -> dict[str, Any]:
    """The policy as an explicit document (every named field spelled out, no "*"), for storage.

    `parse_policy(policy_document(p), p.version)` gives back an equal policy.
    """
    def by_family(classes: Any) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for (family_name, name), disclosure in sorted(classes.items()):
            out.setdefault(family_name, {})[name] = disclosure.value
        return out

    masks: dict[str, dict[str, dict[str, str]]] = {}
    for (family_name, name), per_audience in sorted(policy.masks.items()):
        masks.setdefault(family_name, {})[name] = {a.value: m.spec for a, m in sorted(per_audience.items(), key=lambda i: i[0].value)}
    return {
        "public_scope": policy.public_scope,
        "scopes": {scope: sorted(c.value for c in granted) for scope, granted in sorted(policy.scopes.items())},
        "fields": by_family(policy.classes),
        "overrides": {kind: by_family(table) for kind, table in sorted(policy.kind_overrides.items()) if table},
        "masks": masks,
        "rows": rules_document(policy.rows),
        "annotations": rules_document(policy.annotations),
        "credit": credit_document(policy.credit),
        "cases": cases_document(policy.cases),
    }


def parse_policy_text(text: str, version: str | None = None, where: str = "policy") -> Policy:
    """A policy from TOML text (its own `version` unless one is given)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    return parse_policy(document, version or str(document.get("version", where)))


def load_policy(path: Path | None = None, version: str | None = None) -> Policy:
    """Load a policy file (the shipped default when `path` is None)."""
    path = path or default_policy_path()
    text = path.read_text(encoding="utf-8")
    if version is None:
        try:
            version = str(tomllib.loads(text).get("version", path.stem))
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: {exc}") from None
    return parse_policy_text(text, version, str(path))
