"""`RequestContext`: one GraphQL request, in four parts with one job each.

- `RequestInputs` — what the request *is*: the caller, the policy version it runs under, the
  day, the endpoint, the deadline and the limits. Fixed when the request starts.
- `RequestServices` — the hub's long-lived services the executor reads through (federation,
  the PUBLIC cache, consents, objections, approved credit repairs, the harvest cap, the access log).
- `RequestFindings` — what the request *did*, for the audit: subjects, released / denied /
  masked fields, the row rules that ran ("family:rule", e.g. "penalties:publicity-window"),
  denials by path, departments that failed, harvest-cap alerts. On the data endpoints its sets
  are the request's `AccessRecord`'s own, so the gateway writes exactly what the executor found.
- `RequestCaches` — what is worked out once per request and reused: decisions, plans,
  loaders, consents, cap admissions, open objections, approved repairs, the records of reviewed
  families by key and department (the review before publication), the subject budget. Decisions and plans
  depend only on the policy version and the caller's kind, scopes and purposes, so they are
  kept across requests too (`DecisionBook`: one per policy version and caller, bounded).

The row rules and record annotations in force come from `policy` for the caller's `audience`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Collection, Mapping

from xinlian.hub.cases.review import ReviewSighting, Seen
from xinlian.hub.principal import Principal
from xinlian.policies.engine import Decision, Reason, decide
from xinlian.policies.model import DisclosureClass, Policy
from xinlian.policies.review import reviewed_families
from xinlian.schema.catalogue import FAMILIES

from .cache import PublicRecordCache
from .federation import Department, Federation
from .loader import FamilyLoader
from .plan import FamilyPlan, SubjectGrant, build_plan

if TYPE_CHECKING:
    from xinlian.hub.audit.access_log import SubjectAccessLog
    from xinlian.hub.audit.record import AccessRecord
    from xinlian.hub.cases.register import CaseRegister
    from xinlian.hub.cases.repairs import Repaired, RepairRegister
    from xinlian.hub.cases.review import ReviewQueue
    from xinlian.hub.credit.governance import CreditGovernance
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


@dataclass(frozen=True, slots=True)
class RequestInputs:
    """What the request is (fixed when it starts)."""

    principal: Principal
    policy: Policy
    today: dt.date
    public_endpoint: bool  # serving /public/graphql (the public contract)
    deadline: float = float("inf")  # time.monotonic() by which every department call must end
    batch_limit: int = 1000  # subjects per request, across all root fields
    search_limit: int = 50


@dataclass(frozen=True, slots=True)
class RequestServices:
    """The long-lived services a request reads through (None: not available to this request)."""

    federation: Federation
    cache: PublicRecordCache | None = None
    consents: "ConsentBook | None" = None
    objections: "ObjectionRegister | None" = None
    harvest: "HarvestGuard | None" = None  # None when the cap is off
    harvest_client: str | None = None  # whom the cap charges, if not the caller (a dry run: the admin)
    access_log: "SubjectAccessLog | None" = None
    credit: "CreditGovernance | None" = None  # findings, listings, checks, ratings (hub/credit/)
    cases: "CaseRegister | None" = None  # objections, complaints, repair applications (hub/cases/)
    repairs: "RepairRegister | None" = None  # credit repair, and the approved repairs the publicity window ends display on
    review: "ReviewQueue | None" = None  # the review before publication of new PUBLIC records (hub/cases/review.py)


@dataclass(slots=True)
class RequestFindings:
    """What the request did, for its audit entry."""

    subjects: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)  # "family.field"
    denied: set[str] = field(default_factory=set)  # "family.field"
    masked: set[str] = field(default_factory=set)  # "family.field" released through a mask
    rules_applied: set[str] = field(default_factory=set)  # "family:rule"
    denials: dict[tuple[str, ...], Denial] = field(default_factory=dict)  # by generic response path
    alerts: list[dict[str, Any]] = field(default_factory=list)  # harvest-cap crossings, audited apart
    detail: dict[str, Any] = field(default_factory=dict)  # more to say in the audit entry (a credit check's context)

    @classmethod
    def of(cls, record: "AccessRecord") -> "RequestFindings":
        """Findings kept in the request's audit record itself."""
        return cls(
            subjects=record.subjects, released=record.released, denied=record.denied, masked=record.masked,
            detail=record.detail,
        )


MAX_DECISION_BOOKS = 256  # (policy version, caller kind, scopes, purposes) whose decisions are kept


class DecisionBook:
    """The decisions and plans of one caller (kind, scopes, purpose, allowed purposes) under one
    policy version: what `decide` and `build_plan` depend on, and nothing else. Shared by that
    caller's requests, so a hot caller decides each field once, not once per request."""

    __slots__ = ("policy", "decisions", "plans")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy  # held, so the id in the book's key is not reused while it is kept
        self.decisions: dict[tuple[str, str, bool, bool], Decision] = {}
        self.plans: dict[tuple[str, tuple[str, ...], SubjectGrant], FamilyPlan] = {}


_BOOKS: OrderedDict[tuple[int, str, frozenset[str], str | None, frozenset[str]], DecisionBook] = OrderedDict()


def decision_book(policy: Policy, principal: Principal) -> DecisionBook:
    """The book of `principal`'s decisions under `policy` (least recently used books go first)."""
    key = (id(policy), principal.kind, principal.scopes, principal.purpose, principal.allowed_purposes)
    book = _BOOKS.get(key)
    if book is not None and book.policy is policy:
        _BOOKS.move_to_end(key)
        return book
    book = _BOOKS[key] = DecisionBook(policy)
    while len(_BOOKS) > MAX_DECISION_BOOKS:
        _BOOKS.popitem(last=False)
    return book


@dataclass(slots=True)
class RequestCaches:
    """Worked out once per request, reused by every resolver."""

    loaders: dict[tuple[str, str, bool, frozenset[str]], FamilyLoader] = field(default_factory=dict)
    decisions: dict[tuple[str, str, bool, bool], Decision] = field(default_factory=dict)
    plans: dict[tuple[str, tuple[str, ...], SubjectGrant], FamilyPlan] = field(default_factory=dict)
    consent: dict[str, bool] = field(default_factory=dict)
    admitted: dict[str, bool] = field(default_factory=dict)
    objections: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    objections_loaded: set[str] = field(default_factory=set)
    repairs: dict[str, "Repaired"] = field(default_factory=dict)  # subject → family → key → repair day
    repairs_loaded: set[str] = field(default_factory=set)
    # the review before publication: (subject, family) → (record key, department) → decision date,
    # noted by the loaders of reviewed families (hub/cases/review.py `ReviewSighting`)
    review: Seen = field(default_factory=dict)
    subjects_asked: int = 0
    called: set[str] = field(default_factory=set)  # departments called outside the loaders (a name search)


class RequestContext:
    """The context every resolver of one request gets (see the module docstring)."""

    def __init__(
        self, inputs: RequestInputs, services: RequestServices, findings: RequestFindings | None = None
    ) -> None:
        self.inputs = inputs
        self.services = services
        self.findings = findings if findings is not None else RequestFindings()
        book = decision_book(inputs.policy, inputs.principal)
        self.caches = RequestCaches(decisions=book.decisions, plans=book.plans)

    # what resolvers read most, named as before
    @property
    def principal(self) -> Principal:
        return self.inputs.principal

    @property
    def policy(self) -> Policy:
        return self.inputs.policy

    @property
    def today(self) -> dt.date:
        return self.inputs.today

    @property
    def public_endpoint(self) -> bool:
        return self.inputs.public_endpoint

    @property
    def deadline(self) -> float:
        return self.inputs.deadline

    @property
    def batch_limit(self) -> int:
        return self.inputs.batch_limit

    @property
    def search_limit(self) -> int:
        return self.inputs.search_limit

    @property
    def federation(self) -> Federation:
        return self.services.federation

    @property
    def objections(self) -> "ObjectionRegister | None":
        return self.services.objections

    @functools.cached_property
    def audience(self) -> DisclosureClass:
        """The caller's audience (the widest class its scopes grant): whom row rules apply to, and masks."""
        return self.policy.audience(self.principal.scopes)

    def reserve_subjects(self, count: int) -> bool:
        """Count subjects asked for by this request; False once the request's budget is exceeded."""
        self.caches.subjects_asked += count
        return self.caches.subjects_asked <= self.batch_limit

    def loader(self, department: Department, family: str, fields: frozenset[str]) -> FamilyLoader:
        """The request's loader for a department and family (PUBLIC-only fetches may use the cache)."""
        cacheable = self.services.cache is not None and all(
            self.policy.class_of((family, f)) is DisclosureClass.PUBLIC for f in fields
        )
        # keyed by the field set too: subjects under different grants (consent, the cap) are
        # never fetched together, so no subject's fetch carries a field another one was granted
        key = (department.name, family, cacheable, fields)
        loader = self.caches.loaders.get(key)
        if loader is None:
            loader = self.caches.loaders[key] = FamilyLoader(
                department, family, self.deadline, self.services.cache, cacheable, review=self.review_sighting(family)
            )
        return loader

    def departments_asked(self) -> list[str]:
        """The departments (as errors name them: `connector.department`) this request called: through
        its loaders (not those whose records all came from the cache) and by name search."""
        return sorted(self.caches.called | {
            loader.department.connector.department for loader in self.caches.loaders.values() if loader.asked})

    def review_sighting(self, family: str) -> ReviewSighting | None:
        """The review before publication for a family the policy's `publication-review` rule names
        (for any audience: every read queues new records): the loader notes each record's key and
        department for `publication` and queues new ones (hub/cases/review.py). None when the policy
        has no such rule for it, `[cases.review] enabled` is false, or the hub has no queue."""
        queue, rules = self.services.review, self.policy.cases.review
        if queue is None or not rules.enabled or family not in reviewed_families(self.policy.rows):
            return None
        return ReviewSighting(queue, rules, FAMILIES[family], self.caches.review)

    def publication(self, subject: str, family: str) -> Mapping[str, bool] | bool | None:
        """Record key → publishable now, for the subject's records of `family` this request read
        (`SubjectFacts.publication`): True when `[cases.review]` is off; None when they were not
        looked up in the queue (the rule then shows none: fail closed)."""
        queue, rules = self.services.review, self.policy.cases.review
        if not rules.enabled:
            return True
        seen = self.caches.review.get((subject, family))
        if queue is None or seen is None:
            return None
        return queue.verdicts(rules, family, subject, seen)

    def review_rejected(self, subject: str, family: str) -> set[str]:
        """Keys of the subject's records of `family` read in this request that a reviewer rejected
        (none when the review is off or they were not looked up)."""
        queue, seen = self.services.review, self.caches.review.get((subject, family))
        if queue is None or seen is None or not self.policy.cases.review.enabled:
            return set()
        return queue.rejected(family, subject, seen)

    def decision(self, family: str, field_name: str, natural_person: bool = False, consented: bool = False) -> Decision:
        """The policy's decision on one field for this request's caller (decided once per request).

        `natural_person` and `consented` describe the subject the field is about (consent matters
        only for AUTHORIZED data about natural persons).
        """
        key = (family, field_name, natural_person, consented)
        found = self.caches.decisions.get(key)
        if found is None:
            found = self.caches.decisions[key] = decide(
                self.policy, self.principal, family, field_name, natural_person=natural_person, consented=consented
            )
        return found

    def plan(self, family: Any, selected: tuple[str, ...], grant: SubjectGrant) -> FamilyPlan:
        """The plan for a family field under a subject's grant (built once per request and shape)."""
        key = (family.name, selected, grant)
        found = self.caches.plans.get(key)
        if found is None:
            found = self.caches.plans[key] = build_plan(self, family, selected, grant)
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
        found = self.caches.consent.get(subject)
        if found is None:
            principal = self.principal
            found = False
            if self.services.consents is not None and principal.client_id and principal.purpose_allowed:
                assert principal.purpose is not None
                found = subject in await self.services.consents.consenting([subject], principal.client_id, principal.purpose)
            self.caches.consent[subject] = found
        return found

    async def admit_authorized(self, subject: str) -> bool:
        """Count `subject` against the client's anti-harvesting cap for AUTHORIZED data."""
        found = self.caches.admitted.get(subject)
        if found is None:
            found = True
            charged = self.services.harvest_client or self.principal.client_id
            if self.services.harvest is not None and charged:
                admission = await self.services.harvest.admit(charged, subject)
                found = admission.allowed
                if admission.crossed:
                    self.findings.alerts.append({"cap": admission.cap, "count": admission.count, "subject": subject})
            self.caches.admitted[subject] = found
        return found

    async def load_subject_facts(self, subjects: list[str]) -> None:
        """Read the open objections against records of `subjects` (one query per root field), and
        their approved credit repairs (`load_repairs`): the hub-owned facts about a subject that
        annotations and row rules use, loaded when the subject is admitted."""
        await self.load_repairs(subjects)
        wanted = [s for s in subjects if s not in self.caches.objections_loaded]
        if not wanted or self.services.objections is None:
            return
        found = await self.services.objections.open_refs_by_family(wanted)
        self.caches.objections_loaded.update(wanted)
        for (subject, family), refs in found.items():
            self.caches.objections.setdefault((subject, family), set()).update(refs)

    def disputed(self, subject: str, family: str) -> set[str]:
        """Keys of the subject's records in `family` under an open objection (loaded beforehand)."""
        return self.caches.objections.get((subject, family), set())

    def objections_known(self, subject: str) -> bool:
        return self.services.objections is None or subject in self.caches.objections_loaded

    async def load_repairs(self, subjects: list[str]) -> None:
        """Read the approved credit repairs of `subjects`' records (held in memory: no query in
        steady state)."""
        wanted = [s for s in subjects if s not in self.caches.repairs_loaded]
        if not wanted or self.services.repairs is None:
            return
        self.caches.repairs.update(await self.services.repairs.repaired(wanted))
        self.caches.repairs_loaded.update(wanted)

    def repaired(self, subject: str, family: str) -> Mapping[str, dt.date] | None:
        """Record key → repair day of the subject's repaired records in `family`; None if not loaded
        (the publicity window then shows none of them: fail closed)."""
        if subject not in self.caches.repairs_loaded:
            return None
        return self.caches.repairs.get(subject, {}).get(family, {})

    def facts(self, subject: str) -> "SubjectFacts":
        """What record annotations may know about `subject` in this request."""
        return SubjectFacts(self, subject)

    def deny(
        self, path: tuple[str, ...], family: str, field_name: str, reason: str | None = None, disclosure: str | None = None
    ) -> None:
        """Record a selected field filtered to null (its reason and class default to the plain decision)."""
        self.findings.denied.add(f"{family}.{field_name}")
        if path not in self.findings.denials:
            decision = self.decision(family, field_name)
            self.findings.denials[path] = Denial(
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
            for d in self.findings.denials.values()
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

    def repairs(self, family: str) -> Mapping[str, dt.date] | None:
        return self.ctx.repaired(self.subject, family)

    def publication(self, family: str) -> Mapping[str, bool] | bool | None:
        return self.ctx.publication(self.subject, family)
