"""`HubRuntime`: the long-lived parts of a running hub, opened at start-up and closed at shutdown.

It owns the store, the keyring and bearer validator, the active policy, the federation of
connectors, the two schemas (authenticated full schema, public contract), the audit trail, and
the request guards (rate limiter, public safelist). Each schema carries its endpoint's query
limits and introspection switch as Strawberry extensions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache

from xinlian.keys.keyring import Keyring
from xinlian.policies import Policy, load_policy
from xinlian.policies.engine import decide
from xinlian.schema.graphql import build_schema

from .audit.trail import AuditTrail
from .auth.bearer import BearerValidator
from .auth.revocation import revocation_list
from .config import Settings
from .executor import Federation, HubResolvers
from .executor.cache import PublicRecordCache
from .guard import AUTHENTICATED_LIMITS, PUBLIC_LIMITS, QueryGuard, QueryLimits, RateLimiter, RateRules, Safelist
from .principal import Principal
from .store import Store

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


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
    return build_schema(lambda family, field: True, resolvers, extensions=_extensions(limits, introspection))


async def _warm_up(federation: Federation, seconds: float = 60.0) -> None:
    """Let connectors that keep a read model (file drops) build it before the first request."""
    refreshers = [c.refresh() for c in federation.connectors if callable(getattr(c, "refresh", None))]
    if refreshers:
        await asyncio.wait_for(asyncio.gather(*refreshers, return_exceptions=True), seconds)


@dataclass
class HubRuntime:
    settings: Settings
    store: Store
    keyring: Keyring
    validator: BearerValidator
    policy: Policy
    federation: Federation
    schema: strawberry.Schema
    public_schema: strawberry.Schema
    audit: AuditTrail
    cache: PublicRecordCache = field(default_factory=PublicRecordCache)
    rate_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(RateRules()))
    safelist: Safelist | None = None  # persisted-query safelist of /public/graphql

    @classmethod
    async def open(cls, settings: Settings) -> "HubRuntime":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        safelist = Safelist.load(settings.public_safelist_path) if settings.public_safelist_path else None
        store = await Store.open(settings.database_url)
        keyring = Keyring.load_or_create(settings.data_dir)
        policy = load_policy(settings.policy_path)
        federation = (
            Federation.from_config(settings.connectors_path, settings.data_dir)
            if settings.connectors_path and settings.connectors_path.exists()
            else Federation([])
        )
        await _warm_up(federation)
        resolvers = HubResolvers()
        audit = AuditTrail(store)
        await audit.start()
        rate_limiter = RateLimiter(settings.rate_limits, settings.redis_url, settings.redis_key_prefix)
        await rate_limiter.start()
        return cls(
            settings=settings,
            store=store,
            keyring=keyring,
            validator=BearerValidator(keyring, settings.issuer, settings.audience, revocations=revocation_list(store)),
            policy=policy,
            federation=federation,
            schema=full_schema(resolvers, settings.introspection, settings.query_limits),
            public_schema=public_contract(
                policy, resolvers, settings.public_introspection, settings.public_query_limits
            ),
            audit=audit,
            rate_limiter=rate_limiter,
            safelist=safelist,
        )

    def today(self) -> dt.date:
        """Today's date in Hohhot (China Standard Time), for publicity windows."""
        return dt.datetime.now(CHINA_STANDARD_TIME).date()

    async def close(self) -> None:
        await self.rate_limiter.close()
        await self.audit.stop()
        await self.federation.close()
        await self.store.close()
