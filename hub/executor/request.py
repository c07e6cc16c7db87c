"""`RequestContext`: everything one GraphQL request needs, and what it did (for the audit)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from xinlian.hub.principal import Principal
from xinlian.policies.engine import Decision, decide
from xinlian.policies.model import DisclosureClass, Policy
from xinlian.policies.rows import PublicityWindow

from .cache import PublicRecordCache
from .federation import Department, Federation
from .loader import FamilyLoader


@dataclass(frozen=True, slots=True)
class Denial:
    """A selected field the caller may not receive, at a generic response path."""

    path: tuple[str, ...]
    family: str
    field: str
    disclosure: str


@dataclass
class RequestContext:
    principal: Principal
    policy: Policy
    federation: Federation
    today: dt.date
    public_endpoint: bool  # serving /public/graphql (the public contract)
    deadline: float = float("inf")  # time.monotonic() by which every department call must end
    cache: PublicRecordCache | None = None
    batch_limit: int = 1000  # subjects per request, across all root fields
    search_limit: int = 50
    window: PublicityWindow = field(default_factory=PublicityWindow.standard)
    subjects: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)
    denials: dict[tuple[str, ...], Denial] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)  # "family.field", for the audit
    upstream_failures: set[str] = field(default_factory=set)
    _loaders: dict[tuple[str, str, bool], FamilyLoader] = field(default_factory=dict)
    _subjects_asked: int = 0
    _decisions: dict[tuple[str, str], Decision] = field(default_factory=dict)

    @functools.cached_property
    def applies_publicity_window(self) -> bool:
        """Row rules for disclosure to the public apply to every caller not sharing inside government."""
        return DisclosureClass.SHARED not in self.policy.granted(self.principal.scopes)

    def reserve_subjects(self, count: int) -> bool:
        """Count subjects asked for by this request; False once the request's budget is exceeded."""
        self._subjects_asked += count
        return self._subjects_asked <= self.batch_limit

    def loader(self, department: Department, family: str, fields: frozenset[str]) -> FamilyLoader:
        """The request's loader for a department and family (PUBLIC-only fetches may use the cache)."""
        cacheable = self.cache is not None and all(
            self.policy.class_of((family, f)) is DisclosureClass.PUBLIC for f in fields
        )
        key = (department.name, family, cacheable)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = FamilyLoader(department, family, self.deadline, self.cache, cacheable)
        return loader

    def decision(self, family: str, field_name: str) -> Decision:
        """The policy's decision on one field for this request's caller (decided once per request)."""
        key = (family, field_name)
        found = self._decisions.get(key)
        if found is None:
            found = self._decisions[key] = decide(self.policy, self.principal, family, field_name)
        return found

    def may_receive(self, family: str, field_name: str) -> bool:
        return self.decision(family, field_name).allowed

    def deny(self, path: tuple[str, ...], family: str, field_name: str) -> None:
        self.denied.add(f"{family}.{field_name}")
        if path not in self.denials:
            disclosure = self.decision(family, field_name).disclosure.value
            self.denials[path] = Denial(path, family, field_name, disclosure)

    def denial_errors(self) -> list[dict[str, Any]]:
        """GraphQL errors for selected fields filtered to null (one per generic path)."""
        return [
            {
                "message": f"Not authorized to receive {d.family}.{d.field} (disclosure class {d.disclosure})",
                "path": list(d.path),
                "extensions": {"code": "FORBIDDEN", "field": f"{d.family}.{d.field}", "disclosureClass": d.disclosure},
            }
            for d in self.denials.values()
        ]
