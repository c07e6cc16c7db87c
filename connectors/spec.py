"""What every connector kind is built from: a validated `ConnectorSpec` and its `ConnectorKind`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .contract import Connector
from .mapping import FamilyMapping, SearchField

if TYPE_CHECKING:
    from .resilience import ResiliencePolicy

DEFAULT_BATCH_SIZE = 200
DEFAULT_TIMEOUT = 3.0
COMMON_OPTIONS = frozenset(
    {"name", "kind", "department", "batch_size", "timeout", "search", "families", "resilience", "cache_ttl"}
)


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
    resilience: "ResiliencePolicy | None" = None  # the department link's protections
    cache_ttl: float = 0.0  # seconds the hub may keep PUBLIC records of this connector (0 = off)


@dataclass(frozen=True)
class ConnectorKind:
    """How to build one kind of connector, and which extra options it takes."""

    build: Callable[[ConnectorSpec, Path, str], Connector]
    options: frozenset[str]
    required: frozenset[str] = frozenset()
