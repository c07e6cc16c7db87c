"""The configured connectors: `connectors.toml` → validated `Connector` objects.

Each `[[connector]]` entry has the settings every kind shares (name, kind, department,
batch_size, timeout, search, `[connector.families.<family>]` mappings) and the options of its
kind (`url` for "sql"). Everything is validated at load time; a mistake is a
`ConnectorConfigError` naming the file, the connector and the item. A kind is a module of
this package exposing `KIND: ConnectorKind`, listed in `KIND_MODULES`.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any, Mapping

from .contract import Connector
from .mapping import ConnectorConfigError, parse_families, parse_search
from .resilience import parse_resilience
from .spec import COMMON_OPTIONS, DEFAULT_BATCH_SIZE, DEFAULT_TIMEOUT, ConnectorKind, ConnectorSpec

# kind name → module of this package exposing `KIND: ConnectorKind` (imported on first use, so a
# broken or absent optional kind cannot stop the others from loading)
KIND_MODULES: dict[str, str] = {"sql": "sql", "rest": "rest", "graphql": "graphql", "filedrop": "filedrop"}


def connector_kind(name: str, where: str) -> ConnectorKind:
    """The `ConnectorKind` registered under `name`."""
    module = KIND_MODULES.get(name)
    if module is None:
        raise ConnectorConfigError(f"{where}: unknown kind {name!r} (kinds: {', '.join(sorted(KIND_MODULES))})")
    kind = getattr(importlib.import_module(f".{module}", __package__), "KIND", None)
    if not isinstance(kind, ConnectorKind):
        raise ConnectorConfigError(f"{where}: connector kind {name!r} is not available in this build")
    return kind


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConnectorConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def parse_connector(entry: Any, where: str) -> tuple[ConnectorSpec, ConnectorKind]:
    """Validate one `[[connector]]` table (everything but building it)."""
    if not isinstance(entry, dict):
        raise ConnectorConfigError(f"{where}: a connector is a table")
    name = _text(entry, "name", where)
    where = f"{where} ({name})"
    kind_name = _text(entry, "kind", where)
    kind = connector_kind(kind_name, where)
    unknown = sorted(set(entry) - COMMON_OPTIONS - kind.options)
    if unknown:
        raise ConnectorConfigError(f"{where}: unknown option {unknown[0]!r} for a {kind_name} connector")
    absent = sorted(kind.required - set(entry))
    if absent:
        raise ConnectorConfigError(f"{where}: a {kind_name} connector needs {absent[0]!r}")
    batch_size = entry.get("batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConnectorConfigError(f"{where}: batch_size must be a whole number of at least 1")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConnectorConfigError(f"{where}: timeout must be a positive number of seconds")
    cache_ttl = entry.get("cache_ttl", 0)
    if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, (int, float)) or not 0 <= cache_ttl <= 3600:
        raise ConnectorConfigError(f"{where}: cache_ttl must be between 0 and 3600 seconds")
    families = parse_families(entry.get("families"), f"{where}.families")
    spec = ConnectorSpec(
        name=name,
        kind=kind_name,
        department=_text(entry, "department", where),
        families=families,
        batch_size=batch_size,
        timeout=float(timeout),
        search=parse_search(entry.get("search"), families, f"{where}.search"),
        options={k: entry[k] for k in kind.options if k in entry},
        resilience=parse_resilience(entry.get("resilience"), f"{where}.resilience", timeout=float(timeout)),
        cache_ttl=float(cache_ttl),
    )
    return spec, kind


def load_connectors(path: Path, data_dir: Path) -> list[Connector]:
    """The connectors configured in `path`; `{data_dir}` in URLs means `data_dir`."""
    return [connector for connector, _ in load_configured(path, data_dir)]


def load_configured(path: Path, data_dir: Path) -> list[tuple[Connector, ConnectorSpec]]:
    """The connectors configured in `path`, each with the spec it was built from."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConnectorConfigError(f"{path}: not valid TOML ({exc})") from None
    entries = document.get("connector", [])
    if not isinstance(entries, list):
        raise ConnectorConfigError(f"{path}: connectors are [[connector]] entries")
    connectors: list[tuple[Connector, ConnectorSpec]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{path}: connector[{index}]"
        spec, kind = parse_connector(entry, where)
        if spec.name in seen:
            raise ConnectorConfigError(f"{where}: duplicate connector name {spec.name!r}")
        seen.add(spec.name)
        connectors.append((kind.build(spec, Path(data_dir), f"{where} ({spec.name})"), spec))
    return connectors
