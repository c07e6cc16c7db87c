"""Configuration of a `[[connector]]` of kind "graphql" (docs/connectors-graphql.md) → `GraphQLConnector`.

It owns reading what the operator wrote: the endpoint URL, the credential header (`auth`: a
bearer token or an API key, its secret from an environment variable or a secret file, read
now), extra headers, and per family a `RootField` (the upstream root field, its key argument
and type, "list" or "alias" mode, where the records are), checked against the family's
mapping so that no path is both a value and an object; and `graphql.search` (`GraphQLSearch`).
Every mistake is a `ConnectorConfigError` naming the item, never a secret's value. `KIND`
registers the kind (`connectors.registry`, through `connectors.graphql`, which re-exports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import httpx
from graphql import GraphQLError, parse_type, print_ast

from .contract import Connector
from .credentials import secret_option
from .mapping import ConnectorConfigError, FamilyMapping
from .spec import ConnectorKind, ConnectorSpec

GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")
Path_ = tuple[str, ...]

__all__ = ["KIND", "GraphQLSearch", "Path_", "RootField"]


@dataclass(frozen=True, slots=True)
class RootField:
    """How one family is asked for: the upstream root field, its key argument, the item shape."""

    field: str  # the family mapping's `table`
    argument: str
    argument_type: str  # GraphQL type of the key variable(s)
    mode: str  # "list": one list argument; "alias": one aliased root field per key
    key: Path_  # the family mapping's `key`, inside each item
    records: Path_ = ()  # the record(s) inside each item (a list, an object or null); empty: the item


@dataclass(frozen=True, slots=True)
class GraphQLSearch:
    """`graphql.search`: a root field taking the search text, returning subjects with a key path."""

    field: str
    arg: str
    key: Path_
    family: str | None = None  # None: any family this connector serves
    limit_arg: str | None = None


def _fail(where: str, message: str) -> ConnectorConfigError:
    return ConnectorConfigError(f"{where}: {message}")


def _path(value: Any, where: str, *, single: bool = False) -> Path_:
    parts = tuple(value.split(".")) if isinstance(value, str) else ()
    if not parts or not all(GRAPHQL_NAME.match(p) for p in parts) or (single and len(parts) > 1):
        raise _fail(where, f"{value!r} is not {'a GraphQL name' if single else 'a dotted path of GraphQL field names'}")
    return parts


def _type(value: Any, where: str) -> str:
    try:
        return print_ast(parse_type(value))
    except (GraphQLError, TypeError):
        raise _fail(where, f"{value!r} is not a GraphQL type such as '[String!]!'") from None


def _table(raw: Any, allowed: Iterable[str], required: Iterable[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table")
    unknown, absent = sorted(set(raw) - set(allowed)), [r for r in required if r not in raw]
    if unknown or absent:
        problem = f"unknown option {unknown[0]!r}" if unknown else f"{absent[0]!r} is required"
        raise _fail(where, f"{problem} (options: {', '.join(sorted(allowed))})")
    return raw


def _root(mapping: FamilyMapping, raw: Any, where: str) -> RootField:
    raw = _table(raw, ("mode", "argument", "argument_type", "records"), ["argument"], where)
    mode = raw.get("mode", "list")
    argument_type = raw.get("argument_type", "[String!]!" if mode == "list" else "String!")
    if mode not in ("list", "alias"):
        raise _fail(f"{where}.mode", "must be 'list' or 'alias'")
    records = _path(raw["records"], f"{where}.records") if "records" in raw else ()
    root = RootField(
        field=_path(mapping.table, f"{where} (table)", single=True)[0],
        argument=_path(raw["argument"], f"{where}.argument", single=True)[0],
        argument_type=_type(argument_type, f"{where}.argument_type"),
        mode=mode, key=_path(mapping.key, f"{where} (key)"), records=records,
    )
    sources = (records + _path(f.source, f"{where} (field {f.name})") for f in mapping.fields.values() if f.source)
    leaves = [root.key, *sources]
    branches = {p[:i] for p in leaves for i in range(1, len(p))} | ({records} if records else set())
    clash = next((p for p in leaves if p in branches), None)
    if clash is not None:
        raise _fail(where, f"{'.'.join(clash)} cannot be both a value and an object")
    if records and root.key[: len(records)] == records:
        raise _fail(where, f"the key {'.'.join(root.key)} must lie outside records")
    return root


def _auth(raw: Any, data_dir: Path, where: str) -> dict[str, str]:
    """The credential header; its secret comes from `<stem>_env` or `<stem>_file` (`connectors.credentials`)."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in ("bearer", "api_key"):
        raise _fail(where, "auth is {type = 'bearer', token_env = ...} or {type = 'api_key', header = ..., "
                           "value_env = ...} (or token_file / value_file)")
    stem = "token" if kind == "bearer" else "value"
    _table(raw, ("type", f"{stem}_env", f"{stem}_file", *(("header",) if kind == "api_key" else ())), (), where)
    value = secret_option(raw, stem, where, base=data_dir)
    if value is None:
        raise _fail(where, f"give {stem}_env or {stem}_file")
    if kind == "bearer":
        return {"Authorization": f"Bearer {value}"}
    header = raw.get("header")
    if not isinstance(header, str) or not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise _fail(f"{where}.header", "must be an HTTP header name")
    return {header: value}


def _search(raw: Any, roots: Mapping[str, RootField], where: str) -> GraphQLSearch:
    raw = _table(raw, ("field", "arg", "key", "family", "limit_arg"), ["field", "arg"], where)
    family = raw.get("family")
    if family is not None and family not in roots:
        raise _fail(f"{where}.family", f"{family!r} is not served by this connector")
    name = {n: _path(raw[n], f"{where}.{n}", single=True)[0] for n in ("field", "arg", "limit_arg") if n in raw}
    key = _path(raw["key"], f"{where}.key") if "key" in raw else roots[family or next(iter(roots))].key
    return GraphQLSearch(name["field"], name["arg"], key, family=family, limit_arg=name.get("limit_arg"))


def _build_graphql(spec: ConnectorSpec, data_dir: Path, where: str) -> Connector:
    from .graphql import GraphQLConnector  # the runtime imports this module (for KIND): import it when building

    options = spec.options
    try:
        url = httpx.URL(options["endpoint"]) if isinstance(options["endpoint"], str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise _fail(f"{where}.endpoint", "must be an http(s) URL")
    if url.userinfo:
        raise _fail(f"{where}.endpoint", "put credentials in 'auth', not in the URL")
    if spec.search is not None:
        raise _fail(f"{where}.search", "a graphql connector searches with graphql.search = { field = ..., arg = ... }")
    headers = options.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _fail(f"{where}.headers", "must be a table of header = text")
    table = _table(options["graphql"], [*spec.families, "search"], spec.families, f"{where}.graphql")
    roots = {}
    for family, mapping in spec.families.items():
        if mapping.schema is not None or mapping.where:
            raise _fail(f"{where}.families.{family}", "'schema' and 'where' do not apply to a graphql connector")
        roots[family] = _root(mapping, table[family], f"{where}.graphql.{family}")
    return GraphQLConnector(
        spec.name, spec.department, str(url), spec.families, roots, batch_size=spec.batch_size, timeout=spec.timeout,
        headers=headers, auth=_auth(options["auth"], data_dir, f"{where}.auth") if "auth" in options else None,
        search=_search(table["search"], roots, f"{where}.graphql.search") if "search" in table else None,
    )


KIND = ConnectorKind(
    _build_graphql, options=frozenset({"endpoint", "auth", "headers", "graphql"}),
    required=frozenset({"endpoint", "graphql"}),
)
