"""`RequestContext`: everything one GraphQL request needs, and what it did (for the audit).

The row rules and record annotations in force come from `policy` (the version the request runs
under) for the caller's `audience`; `rules_applied` names those that ran over records the
request read, as "family:rule" (e.g. "penalties:publicity-window"), for the audit entry.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Collection

from xinlian.hub.principal import Principal
from xinlian.policies.engine import Decision, Reason, decide
from xinlian.policies.model import DisclosureClass, Policy

from .cache import PublicRecordCache
from .federation import Department, Federation
from .loader import FamilyLoader
from .plan import FamilyPlan, SubjectGrant, build_plan

if TYPE_CHECKING:
    from xinlian.hub.governance import ConsentBook, ObjectionRegister
    from xinlian.hub.guard.harvest import HarvestGuard


@dataclass(frozen=True, slots=True)
class Denial:
    """A selected field the caller may not receive, at a generic response path."""

    path: tuple[str, ...]
    family: str
    field: str
    disclosure: str
    reason: str


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
    subjects: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)
    denials: dict[tuple[str, ...], Denial] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)  # "family.field", for the audit
    upstream_failures: set[str] = field(default_factory=set)
    masked: set[str] = field(default_factory=set)  # "family.field" released through a mask
    rules_applied: set[str] = field(default_factory=set)  # "family:rule", row rules and annotations that ran
    consents: "ConsentBook | None" = None
    objections: "ObjectionRegister | None" = None
    harvest: "HarvestGuard | None" = None
    access_log: Any = None  # SubjectAccessLog, for myAccessLog
    alerts: list[dict[str, Any]] = field(default_factory=list)  # harvest-cap crossings, audited apart
    _loaders: dict[tuple[str, str, bool, frozenset[str]], FamilyLoader] = field(default_factory=dict)
    _subjects_asked: int = 0
    _decisions: dict[tuple[str, str, bool, bool], Decision] = field(default_factory=dict)
    _consent: dict[str, bool] = field(default_factory=dict)
    _admitted: dict[str, bool] = field(default_factory=dict)
    _objections: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    _objections_loaded: set[str] = field(default_factory=set)
    _plans: dict[tuple[str, tuple[str, ...], SubjectGrant], FamilyPlan] = field(default_factory=dict)

    @functools.cached_property
    def audience(self) -> DisclosureClass:
        """The caller's audience (the widest class its scopes grant): whom row rules apply to, and masks."""
        return self.policy.audience(self.principal.scopes)

    def reserve_subjects(self, count: int) -> bool:
        """Count subjects asked for by this request; False once the request's budget is exceeded."""
        self._subjects_asked += count
        return self._subjects_asked <= self.batch_limit

    def loader(self, department: Department, family: str, fields: frozenset[str]) -> FamilyLoader:
        """The request's loader for a department and family (PUBLIC-only fetches may use the cache)."""
        cacheable = self.cache is not None and all(
            self.policy.class_of((family, f)) is DisclosureClass.PUBLIC for f in fields
        )
        # keyed by the field set too: subjects under different grants (consent, the cap) are
        # never fetched together, so no subject's fetch carries a field another one was granted
        key = (department.name, family, cacheable, fields)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = FamilyLoader(department, family, self.deadline, self.cache, cacheable)
        return loader

    def decision(self, family: str, field_name: str, natural_person: bool = False, consented: bool = False) -> Decision:
        """The policy's decision on one field for this request's caller (decided once per request).

        `natural_person` and `consented` describe the subject the field is about (consent matters
        only for AUTHORIZED data about natural persons).
        """
        key = (family, field_name, natural_person, consented)
        found = self._decisions.get(key)
        if found is None:
            found = self._decisions[key] = decide(
                self.policy, self.principal, family, field_name, natural_person=natural_person, consented=consented
            )
        return found

    def plan(self, family: Any, selected: tuple[str, ...], grant: SubjectGrant) -> FamilyPlan:
        """The plan for a family field under a subject's grant (built once per request and shape)."""
        key = (family.name, selected, grant)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = build_plan(self, family, selected, grant)
        return found

    def may_receive(self, family: str, field_name: str, natural_person: bool = False, consented: bool = False) -> bool:
        return self.decision(family, field_name, natural_person, consented).allowed

    def needs_consent(self, family: str, fields: Any) -> bool:
        """Whether a natural person's consent would change a decision on any of `fields`."""
        if not self.principal.purpose_allowed:
            return False  # without an allowed purpose, AUTHORIZED fields are denied anyway
        return any(
            self.decision(family, f, True, False).reason is Reason.NO_CONSENT for f in fields
        )

    async def consented(self, subject: str) -> bool:
        """A consent of `subject` for this client and its declared purpose is in force (once per request)."""
        found = self._consent.get(subject)
        if found is None:
            principal = self.principal
            found = False
            if self.consents is not None and principal.client_id and principal.purpose_allowed:
                assert principal.purpose is not None
                found = subject in await self.consents.consenting([subject], principal.client_id, principal.purpose)
            self._consent[subject] = found
        return found

    async def admit_authorized(self, subject: str) -> bool:
        """Count `subject` against the client's anti-harvesting cap for AUTHORIZED data."""
        found = self._admitted.get(subject)
        if found is None:
            found = True
            if self.harvest is not None and self.principal.client_id:
                admission = await self.harvest.admit(self.principal.client_id, subject)
                found = admission.allowed
                if admission.crossed:
                    self.alerts.append({"cap": admission.cap, "count": admission.count, "subject": subject})
            self._admitted[subject] = found
        return found

    async def load_objections(self, subjects: list[str]) -> None:
        """Read the open objections against records of `subjects` (one query per root field)."""
        wanted = [s for s in subjects if s not in self._objections_loaded]
        if not wanted or self.objections is None:
            return
        found = await self.objections.open_refs_by_family(wanted)
        self._objections_loaded.update(wanted)
        for (subject, family), refs in found.items():
            self._objections.setdefault((subject, family), set()).update(refs)

    def disputed(self, subject: str, family: str) -> set[str]:
        """Keys of the subject's records in `family` under an open objection (loaded beforehand)."""
        return self._objections.get((subject, family), set())

    def objections_known(self, subject: str) -> bool:
        return self.objections is None or subject in self._objections_loaded

    def facts(self, subject: str) -> "SubjectFacts":
        """What record annotations may know about `subject` in this request."""
        return SubjectFacts(self, subject)

    def deny(
        self, path: tuple[str, ...], family: str, field_name: str, reason: str | None = None, disclosure: str | None = None
    ) -> None:
        """Record a selected field filtered to null (its reason and class default to the plain decision)."""
        self.denied.add(f"{family}.{field_name}")
        if path not in self.denials:
            decision = self.decision(family, field_name)
            self.denials[path] = Denial(
                path, family, field_name, disclosure or decision.disclosure.value, reason or decision.reason.value
            )

    def denial_errors(self) -> list[dict[str, Any]]:
        """GraphQL errors for selected fields filtered to null (one per generic path)."""
        return [
            {
                "message": f"Not authorized to receive {d.family}.{d.field} (disclosure class {d.disclosure}: {d.reason})",
                "path": list(d.path),
                "extensions": {
                    "code": "FORBIDDEN",
                    "field": f"{d.family}.{d.field}",
                    "disclosureClass": d.disclosure,
                    "reason": d.reason,
                },
            }
            for d in self.denials.values()
        ]



@dataclass(frozen=True, slots=True)
class SubjectFacts:
    """`policies.rules.SubjectFacts` for one subject of a request."""

    ctx: RequestContext
    subject: str

    def open_objections(self, family: str) -> Collection[str] | None:
        if self.ctx.objections is None or not self.ctx.objections_known(self.subject):
            return None
        return self.ctx.disputed(self.subject, family)
