"""`Federation`: the configured connectors, indexed by the record families they serve."""

from __future__ import annotations

from typing import Iterable

from xinlian.connectors.contract import Connector


class Federation:
    """The department systems the hub federates."""

    def __init__(self, connectors: Iterable[Connector]) -> None:
        self.connectors: list[Connector] = list(connectors)
        names = [c.name for c in self.connectors]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"connector names must be unique: {sorted(duplicates)}")

    def sources(self, family: str) -> list[Connector]:
        """Connectors that serve a family, in configuration order."""
        return [c for c in self.connectors if family in c.families]

    def departments(self, family: str, field: str) -> list[str]:
        """Departments that supply one field of a family."""
        return [c.department for c in self.sources(family) if field in c.provides(family)]

    async def close(self) -> None:
        for connector in self.connectors:
            await connector.close()
