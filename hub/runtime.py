"""`HubRuntime`: the long-lived parts of a running hub, opened at start-up and closed at shutdown.

It owns the store, the keyring and bearer validator, the active policy, the federation of
connectors, the two schemas (authenticated full schema, public contract), the audit trail, and
the request guards (rate limiter, public safelist). Each schema carries its endpoint's query
limits and introspection switch as Strawberry extensions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache

from xinlian.connectors.contract import ReadModelConnector
from xinlian.keys.keyring import Keyring
from xinlian.policies import Policy, default_policy_path, load_policy
from xinlian.policies.engine import decide
from xinlian.policies.loader import policy_document
from xinlian.schema.graphql import build_schema

from .active_policy import ActivePolicy, PolicyState
from .audit.access_log import SubjectAccessLog
from .audit.checkpoint import checkpoint_directory
from .audit.checkpoint_writer import CheckpointWriter
from .audit.record import AccessRecord
from .audit.seal import HeadSealer
from .audit.trail import AuditTrail
from .auth.bearer import BearerValidator
from .auth.published_keys import TOPIC as PUBLISHED_KEYS
from .auth.published_keys import PublishedKeys, this_host
from .auth.revocation import revocation_list
from .auth.routes import authorization_server, token_workers
from .auth.server import HubAuthorizationServer
from .cases.attachments import AttachmentPolicy, LocalAttachments
from .cases.calendar import WorkingCalendar
from .cases.register import CaseRegister
from .cases.repairs import RepairRegister
from .cases.review import ReviewQueue
from .cluster.changes import ChangeFeed
from .cluster.members import ClusterMembers
from .config import Settings
from .credit.governance import CreditGovernance
from .executor import Federation, HubResolvers, RequestContext
from .executor.cache import PublicRecordCache
from .executor.request import RequestFindings, RequestInputs, RequestServices
from .gateway.addresses import ClientAddress
from .gateway.lockout import AuthenticationLockout
from .gateway.refusal_tally import RefusalTally
from .governance import ClientDirectory, ConsentBook, ObjectionRegister, PurposeRegistry
from .governance.policy_versions import PolicyHistory
from .guard import AUTHENTICATED_LIMITS, PUBLIC_LIMITS, QueryGuard, QueryLimits, RateLimiter, Safelist
from .guard.harvest import HarvestGuard
from .observability import tracing
from .observability.metrics import HubMetrics
from .principal import Principal
from .store import Store

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def tune_garbage_collector(threshold: int) -> None:
    """After start-up: collect once, move every object alive now (schema, policy, connectors,
    modules) out of the collector's reach (`gc.freeze`), and collect the youngest generation
    every `threshold` allocations instead of 700 (0: leave Python's defaults). About half of a
    1,000-subject batch's CPU was the cyclic collector re-scanning long-lived objects
    (docs/benchmarks.md, run 4); reference counting still frees everything without cycles at once."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(threshold, second, third)
log = logging.getLogger("xinlian.hub")
DEPARTMENT_SHARE = 0.9  # of the request timeout, for department calls


def _extensions(limits: QueryLimits, introspection: bool = True) -> list[Any]:
    """Per-request extension factories, in the order they must run.

    The token limit applies while parsing; `QueryGuard` (depth, aliases, root fields, cost) runs
    in the validation stage ahead of `ValidationCache`, so an over-limit document is neither
    validated nor executed. The caches are module-level LRUs keyed by document text.
    """
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: QueryGuard(limits),
        lambda: ValidationCache(maxsize=512),
    ]
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    extensions[:0] = tracing.schema_extensions()  # spans for parse, validate, execute while tracing is on
    return extensions


def public_contract(
    policy: Policy, resolvers: HubResolvers, introspection: bool = True, limits: QueryLimits = PUBLIC_LIMITS
) -> strawberry.Schema:
    """The public endpoint's schema: only fields PUBLIC under `policy` exist."""
    public = Principal.public(policy.public_scope)
    return build_schema(
        lambda family, field: decide(policy, public, family, field).allowed,
        resolvers,
        extensions=_extensions(limits, introspection),
    )


def full_schema(
    resolvers: HubResolvers, introspection: bool = True, limits: QueryLimits = AUTHENTICATED_LIMITS
) -> strawberry.Schema:
    """The authenticated endpoint's schema: every catalogued field exists; policy filters values."""
    return build_schema(
        lambda family, field: True, resolvers, include_access_log=True, extensions=_extensions(limits, introspection),
        public_contract=False,
    )


async def _warm_up(federation: Federation, seconds: float = 60.0) -> None:
    """Let connectors that keep a read model (file drops) build it before the first request."""
    refreshers = [c.refresh() for c in federation.connectors if isinstance(c, ReadModelConnector)]
    if refreshers:
        await asyncio.wait_for(asyncio.gather(*refreshers, return_exceptions=True), seconds)


@dataclass
class HubRuntime:
    """The hub's services, all built by `open()` (the one composition root), none optional.

    `policy` and `public_schema` are swapped together whenever `active_policy` sees another
    activation (hub/active_policy.py: on the store's change feed; `apply_activation()` at once).
    The change feed (`changes`) tells the caches of hub-owned state (policy, revocations, client
    facts, objections, published keys) when the store changed; `members` counts the hub
    processes sharing the store, and each department's concurrency budget is divided by it.
    """

    settings: Settings
    store: Store
    keyring: Keyring
    validator: BearerValidator
    oauth: HubAuthorizationServer
    policy: Policy
    federation: Federation
    schema: strawberry.Schema
    public_schema: strawberry.Schema
    audit: AuditTrail
    checkpoints: CheckpointWriter  # signed checkpoints of the audit chain head, kept outside the store
    refusals: RefusalTally
    rate_limiter: RateLimiter
    client_address: ClientAddress
    lockout: AuthenticationLockout
    harvest: HarvestGuard  # the anti-harvesting cap on AUTHORIZED data (`enabled` False when off)
    cache: PublicRecordCache
    purposes: PurposeRegistry
    consents: ConsentBook
    objections: ObjectionRegister
    clients: ClientDirectory
    access_log: SubjectAccessLog
    policy_history: PolicyHistory
    active_policy: ActivePolicy
    safelist: Safelist | None  # the persisted-query safelist of /public/graphql, when configured
    token_workers: anyio.CapacityLimiter  # worker threads of the OAuth form endpoints
    metrics: HubMetrics  # Prometheus metrics, served at /metrics (hub/observability/metrics.py)
    traces: tracing.Tracing | None  # OpenTelemetry traces when XINLIAN_TRACING is set (hub/observability/tracing.py)
    changes: ChangeFeed  # the store's change counters, followed (hub/cluster/changes.py)
    published_keys: PublishedKeys  # every host's public signing keys (hub/auth/published_keys.py)
    members: ClusterMembers  # the hub processes sharing the store (hub/cluster/members.py)
    credit: CreditGovernance  # findings, lists, checks, ratings, supervision plans (hub/credit/)
    calendar: WorkingCalendar  # working days for case deadlines: shipped + <data-dir>/calendars (hub/cases/calendar.py)
    cases: CaseRegister  # objections, complaints, repair applications with their deadlines (hub/cases/)
    repairs: RepairRegister  # credit repair, and the approved repairs in memory (hub/cases/repairs.py)
    review: ReviewQueue  # the review before publication of new PUBLIC records (hub/cases/review.py)

    @classmethod
    async def open(cls, settings: Settings, *, schedule: bool = True) -> "HubRuntime":
        """Build every service for `settings`, start the background ones, follow the active policy.

        `schedule` False: a hub opened for one command (the CLI, the demo's seeding, a benchmark)
        — no credit schedule (expiry sweep, district runs) starts in it."""
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        traces = tracing.start(settings)  # before the schemas are built: they trace while it is on
        try:
            return await cls._open(settings, traces, schedule)
        except BaseException:
            await tracing.stop(traces)  # a hub that did not start leaves no tracing behind
            raise

    @classmethod
    async def _open(cls, settings: Settings, traces: "tracing.Tracing | None", schedule: bool = True) -> "HubRuntime":
        safelist = Safelist.load(settings.public_safelist_path) if settings.public_safelist_path else None
        store = await Store.open(settings.database_url)
        keyring = Keyring.load_or_create(settings.data_dir, reload_interval=settings.key_reload_interval)
        published_keys = PublishedKeys(store, endorsement_key=settings.cluster_secret)
        await published_keys.publish(keyring, this_host())  # this host's public halves; reads every host's
        keyring.include_published(published_keys)  # verify with local + endorsed published keys; sign locally
        policy_file = settings.policy_path or default_policy_path()
        file_policy = load_policy(settings.policy_path)
        federation = (
            Federation.from_config(settings.connectors_path, settings.data_dir)
            if settings.connectors_path and settings.connectors_path.exists()
            else Federation([])
        )
        await _warm_up(federation)
        resolvers = HubResolvers()
        resolvers.planner.active = settings.planned_execution
        history = PolicyHistory(store)
        active_policy = await ActivePolicy.open(
            history,
            lambda p: public_contract(p, resolvers, settings.public_introspection, settings.public_query_limits),
            seed=file_policy,
            seed_by="system",
            seed_reason=f"initial policy from {policy_file.name}",
        )
        policy = active_policy.policy
        if policy_document(file_policy) != policy_document(policy):
            log.info(
                "policy file %s differs from the store's active version %s, which is in force "
                "(store it with `xinlian policy import %s --reason ...`)",
                policy_file, policy.version, policy_file,
            )
        audit = AuditTrail(store, sealer=HeadSealer(keyring, settings.issuer))
        await audit.start()
        rate_limiter = RateLimiter(settings.rate_limits, settings.redis_url, settings.redis_key_prefix)
        await rate_limiter.start()
        harvest = HarvestGuard.from_settings(settings)
        await harvest.start()
        refusals = RefusalTally(audit)
        refusals.start()
        built: dict[str, HubRuntime] = {}  # credit governance reads departments through the runtime's contexts
        credit = CreditGovernance(
            store, lambda principal: built["runtime"].request_context(principal, public_endpoint=False), audit=audit.record
        )
        calendar = WorkingCalendar.load(settings.data_dir)
        cases = CaseRegister(
            store, calendar, lambda: built["runtime"].policy.cases,
            attachments=LocalAttachments.in_data_dir(settings.data_dir, AttachmentPolicy.widest()),
        )
        runtime = built["runtime"] = cls(
            settings=settings,
            store=store,
            keyring=keyring,
            validator=BearerValidator(keyring, settings.issuer, settings.audience, revocations=revocation_list(store)),
            oauth=authorization_server(settings, store, keyring),
            policy=policy,
            federation=federation,
            schema=full_schema(resolvers, settings.introspection, settings.query_limits),
            public_schema=active_policy.public_schema,
            audit=audit,
            refusals=refusals,
            rate_limiter=rate_limiter,
            client_address=ClientAddress(settings.trusted_proxies),
            lockout=AuthenticationLockout(settings.auth_lockout),
            harvest=harvest,
            cache=PublicRecordCache(),
            purposes=PurposeRegistry(store),
            consents=ConsentBook(store),
            objections=ObjectionRegister(cases),
            clients=ClientDirectory(store),
            access_log=SubjectAccessLog(store),
            policy_history=history,
            active_policy=active_policy,
            safelist=safelist,
            token_workers=token_workers(),
            metrics=HubMetrics(),
            traces=traces,
            changes=ChangeFeed(
                store, interval=settings.change_feed_interval,
                redis_url=settings.redis_url, redis_prefix=settings.redis_key_prefix,
            ),
            members=ClusterMembers(store, heartbeat=settings.cluster_heartbeat),
            published_keys=published_keys,
            checkpoints=CheckpointWriter(
                store, keyring, checkpoint_directory(settings.data_dir),
                interval=settings.audit_checkpoint_interval, issuer=settings.issuer,
            ),
            credit=credit,
            calendar=calendar,
            cases=cases,
            repairs=RepairRegister(cases),
            review=ReviewQueue(store),
        )
        runtime.metrics.watch(federation, audit, runtime.cache)
        runtime.metrics.watch_cluster(runtime.changes, runtime.members)
        runtime.checkpoints.start()
        active_policy.subscribe(runtime._follow_policy)
        await runtime._follow_changes()
        if schedule:  # a serving hub; a command's hub (the CLI, the demo's seeding) runs no schedule
            credit.start(lambda: runtime.policy, runtime.today, settings.credit_run_hours)
        tune_garbage_collector(settings.gc_threshold)
        return runtime

    def request_context(
        self,
        principal: Principal,
        *,
        public_endpoint: bool,
        policy: Policy | None = None,
        access: AccessRecord | None = None,
        harvest_client: str | None = None,
    ) -> RequestContext:
        """A fresh `RequestContext` for one request (or a dry run: `policy` another version).

        Departments get `DEPARTMENT_SHARE` of the request's time, so that when one is too slow
        its fields come back as errors in a partial answer, not as a 504 for everything. What the
        request finds out for the audit (subjects, released, denied and masked fields) is kept in
        `access`, the request's audit record, when one is given. `harvest_client`: whom the
        anti-harvesting cap charges for the reads, when not the caller (a dry run: the admin).
        """
        deadline = time.monotonic() + self.settings.request_timeout * DEPARTMENT_SHARE
        inputs = RequestInputs(
            principal=principal,
            policy=policy or self.policy,
            today=self.today(),
            public_endpoint=public_endpoint,
            deadline=deadline,
            batch_limit=self.settings.batch_limit,
            search_limit=self.settings.search_limit,
        )
        services = RequestServices(
            federation=self.federation,
            cache=self.cache,
            consents=self.consents,
            objections=self.objections,
            harvest=self.harvest if self.harvest.enabled else None,
            harvest_client=harvest_client,
            access_log=self.access_log,
            credit=self.credit,
            cases=self.cases,
            repairs=self.repairs,
            review=self.review,
        )
        return RequestContext(inputs, services, RequestFindings.of(access) if access is not None else None)

    async def _follow_changes(self) -> None:
        """Subscribe the caches of hub-owned state to the change feed, start it, join the cluster."""
        self.active_policy.follow(self.changes)
        revocation_list(self.store).follow(self.changes)
        self.clients.follow(self.changes)
        self.objections.open_objections.follow(self.changes)
        self.repairs.approved.follow(self.changes)
        self.review.state.follow(self.changes)
        self.credit.follow(self.changes)
        self.changes.subscribe([PUBLISHED_KEYS], self._follow_keys)
        await self.changes.start()  # its first read calls every reader: nothing changed since opening goes unseen
        self.members.subscribe(self.federation.share_between)
        await self.members.join()

    async def _follow_keys(self) -> None:
        """A key was published or rotated (here, by another host, or by `xinlian keys rotate`):
        look at this host's manifest now rather than at its next check, re-read every host's."""
        if self.keyring.reload_if_changed(force=True):  # rotated on this host: publish it (endorsed)
            await self.published_keys.publish(self.keyring, this_host())
        await self.published_keys.refresh()

    def _follow_policy(self, state: PolicyState) -> None:
        """Another policy version is in force: swap the pair in one step, drop cached records."""
        self.policy, self.public_schema = state.policy, state.public_schema
        self.cache.clear()  # fields cached as PUBLIC may be PUBLIC no longer

    async def apply_activation(self) -> str:
        """Put the store's active policy version in force here at once (after an activation);
        other hub processes follow on the change feed. Returns the version in force."""
        await self.active_policy.refresh()
        return self.policy.version

    def today(self) -> dt.date:
        """Today's date in Hohhot (China Standard Time), for publicity windows."""
        return dt.datetime.now(CHINA_STANDARD_TIME).date()

    async def close(self) -> None:
        await self.credit.stop()  # with the re-ratings after repair decisions
        await self.members.leave()
        await self.changes.stop()
        await self.rate_limiter.close()
        await self.refusals.stop()
        await self.harvest.close()
        await self.audit.stop()
        await self.checkpoints.stop()  # after the trail has flushed: sign its final head
        await self.federation.close()
        await self.review.flush()  # the records the last reads queued are written before the store closes
        await self.store.close()
        await tracing.stop(self.traces)  # the spans left are sent
