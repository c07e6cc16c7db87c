"""`Federation`: the configured departments, each a connector behind its `DepartmentLink`.

The links (bulkhead, retries, circuit breaker) live as long as the hub, so their state is
shared by every request; `sources(family)` says which departments serve a record family.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from xinlian.connectors.contract import Connector, EnumeratingConnector
from xinlian.connectors.mapping import ConnectorConfigError
from xinlian.connectors.registry import load_configured
from xinlian.connectors.resilience import DepartmentLink, LinkStatus, ResiliencePolicy

from .registries import DEFAULT_REGISTRIES, parse_registries

log = logging.getLogger("xinlian.executor")


@dataclass(frozen=True)
class Department:
    """One federated department system."""

    connector: Connector
    link: DepartmentLink
    cache_ttl: float = 0.0

    @property
    def name(self) -> str:
        return self.connector.name


class Federation:
    """The department systems the hub federates."""

    def __init__(
        self,
        connectors: Iterable[Connector],
        resilience: Mapping[str, ResiliencePolicy] | None = None,
        cache_ttl: Mapping[str, float] | None = None,
        registries: Mapping[str, tuple[str, ...] | None] | None = None,
    ) -> None:
        resilience, cache_ttl = resilience or {}, cache_ttl or {}
        # registration authority → the connectors whose registry confirms a subject (registries.py)
        self.registries: dict[str, tuple[str, ...] | None] = dict(
            DEFAULT_REGISTRIES if registries is None else registries
        )
        self.departments: list[Department] = [
            Department(c, DepartmentLink(c, resilience.get(c.name)), cache_ttl.get(c.name, 0.0)) for c in connectors
        ]
        names = [d.name for d in self.departments]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"connector names must be unique: {sorted(duplicates)}")
        self._by_name = {d.name: d for d in self.departments}

    @classmethod
    def from_config(cls, path: Path, data_dir: Path) -> "Federation":
        configured = load_configured(path, data_dir)
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))  # valid: load_configured read it
        try:
            registries = parse_registries(document.get("registries"), [s.name for _, s in configured])
        except ValueError as exc:
            raise ConnectorConfigError(f"{path}: {exc}") from None
        return cls(
            (c for c, _ in configured),
            resilience={s.name: s.resilience for _, s in configured if s.resilience is not None},
            cache_ttl={s.name: s.cache_ttl for _, s in configured},
            registries=registries,
        )

    @property
    def connectors(self) -> list[Connector]:
        return [d.connector for d in self.departments]

    def department(self, name: str) -> Department:
        return self._by_name[name]

    def sources(self, family: str) -> list[Department]:
        """Departments that serve a family, in configuration order."""
        return [d for d in self.departments if family in d.connector.families]

    def enumerators(self, family: str) -> list[Department]:
        """Departments serving `family` that can page through their subjects' keys."""
        return [
            d for d in self.sources(family)
            if isinstance(d.connector, EnumeratingConnector) and d.connector.enumerates(family)
        ]

    def departments_for(self, family: str, field: str) -> list[str]:
        """Departments that supply one field of a family."""
        return [d.connector.department for d in self.sources(family) if field in d.connector.provides(family)]

    def status(self) -> list[LinkStatus]:
        return [d.link.status() for d in self.departments]

    def share_between(self, processes: int) -> None:
        """`processes` hub processes share the departments: each link takes its share of its
        department's concurrency budget (`DepartmentLink.share_between`)."""
        for department in self.departments:
            department.link.share_between(processes)

    async def close(self) -> None:
        for department in self.departments:
            try:
                await department.connector.close()
            except Exception:  # one connector failing to close must not keep the others open
                log.exception("closing connector %s failed", department.name)
