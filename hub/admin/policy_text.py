"""A stored policy document written back as TOML, in the layout of `policies/default.toml`.

`policy_toml(document, version)` is what `policyVersion { toml }` shows: the document
`hub.governance.policy_versions` stores (every field spelled out, no "*"), as text that
`PolicyHistory.import_text` and `policies.loader.parse_policy_text` read back to the same policy
(row rules and annotations as `[[rows]]` / `[[annotations]]`, their parameters inline; the credit
governance rules as `[credit.*]` tables and `[[credit.*]]` arrays, as in policies/credit.toml; the
case rules as `[cases.*]` tables, as in policies/cases.toml).
"""

from __future__ import annotations

import json
import re
from typing import Any

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _string(value: Any) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's; non-ASCII kept as is)."""
    return json.dumps(str(value), ensure_ascii=False)


def _key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else _string(name)


def _table(path: list[str]) -> str:
    return "[" + ".".join(_key(p) for p in path) + "]"


def _field_tables(prefix: list[str], table: dict[str, Any], lines: list[str]) -> None:
    for family, fields in sorted((table or {}).items()):
        if not fields:
            continue
        lines += ["", _table(prefix + [family])]
        lines += [f"{_key(name)} = {_string(value)}" for name, value in sorted(fields.items())]


def _value(value: Any) -> str:
    """A parameter of a row rule or annotation as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    return _string(value)


def _rules(section: str, entries: Any, lines: list[str]) -> None:
    """`[[rows]]` / `[[annotations]]` (an empty array is written among the top-level keys)."""
    for entry in entries or ():
        lines += ["", f"[[{section}]]"]
        lines += [f"{_key(str(name))} = {_value(value)}" for name, value in entry.items()]


def _is_array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _tables(path: list[str], table: dict[str, Any], lines: list[str]) -> None:
    """A nested table as `[a.b]` with its plain keys, then its arrays of tables (`[[a.b.c]]`, each
    entry's values inline), then its sub-tables: the `[credit]` section's layout (policies/credit.toml)."""
    lines += ["", _table(path)]
    lines += [
        f"{_key(str(k))} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict) and not _is_array_of_tables(v)
    ]
    for name, value in table.items():
        if _is_array_of_tables(value):
            for entry in value:
                lines += ["", "[" + _table(path + [name]) + "]"]
                lines += [f"{_key(str(k))} = {_value(v)}" for k, v in entry.items()]
    for name, value in table.items():
        if isinstance(value, dict):
            _tables(path + [name], value, lines)


def policy_toml(document: dict[str, Any], version: str | None = None) -> str:
    """The policy document as TOML text (sections: scopes, fields, overrides, masks, rows, annotations)."""
    lines = ["# Xinlian disclosure policy" + (f" {version}" if version else "")]
    if version:
        lines.append(f"version = {_string(version)}")
    lines.append(f"public_scope = {_string(document.get('public_scope', 'credit:public'))}")
    for section, nothing in (("rows", "no row rules"), ("annotations", "no record annotations")):
        if section in document and not document[section]:
            lines.append(f"{section} = []  # {nothing} at all")
    lines += ["", "[scopes]"]
    for scope, granted in sorted((document.get("scopes") or {}).items()):
        lines.append(f"{_key(scope)} = [{', '.join(_string(c) for c in granted)}]")
    _field_tables(["fields"], document.get("fields") or {}, lines)
    for kind, table in sorted((document.get("overrides") or {}).items()):
        _field_tables(["overrides", kind], table, lines)
    for family, fields in sorted((document.get("masks") or {}).items()):
        if not fields:
            continue
        lines += ["", _table(["masks", family])]
        for name, per_audience in sorted(fields.items()):
            inline = ", ".join(f"{_key(a)} = {_string(spec)}" for a, spec in sorted(per_audience.items()))
            lines.append(f"{_key(name)} = {{ {inline} }}")
    _rules("rows", document.get("rows"), lines)
    _rules("annotations", document.get("annotations"), lines)
    for section in ("credit", "cases"):  # policies/credit.toml, policies/cases.toml
        if document.get(section):
            _tables([section], document[section], lines)
    return "\n".join(lines) + "\n"
