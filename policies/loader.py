"""Reading policy documents (TOML) into `Policy` objects, with errors that name the line of fault."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from xinlian.schema.catalogue import FAMILIES

from .model import DisclosureClass, FieldKey, Policy, PolicyError


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
    return Policy(
        version=version,
        classes=classes,
        scopes=scopes,
        kind_overrides=overrides,
        public_scope=document.get("public_scope", "credit:public"),
    )


def load_policy(path: Path | None = None, version: str | None = None) -> Policy:
    """Load a policy file (the shipped default when `path` is None)."""
    path = path or default_policy_path()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: {exc}") from None
    return parse_policy(document, version or document.get("version", path.stem))
