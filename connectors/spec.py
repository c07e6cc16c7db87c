"""What every connector kind is built from: a validated `ConnectorSpec` and its `ConnectorKind`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .contract import Connector
from .mapping import FamilyMapping, SearchField

DEFAULT_BATCH_SIZE = 200
DEFAULT_TIMEOUT = 3.0
COMMON_OPTIONS = frozenset({"name", "kind", "department", "batch_size", "timeout", "search", "families"})


@dataclass(frozen=True)
class ConnectorSpec:
    """One validated `[[connector]]` entry; `options` holds its kind's own settings."""

    name: str
    kind: str
    department: str
    families: Mapping[str, FamilyMapping]
    batch_size: int = DEFAULT_BATCH_SIZE
    timeout: float = DEFAULT_TIMEOUT
    search: SearchField | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectorKind:
    """How to build one kind of connector, and which extra options it takes."""

    build: Callable[[ConnectorSpec, Path, str], Connector]
    options: frozenset[str]
    required: frozenset[str] = frozenset()
