"""`RateLimiter`: per-IP and per-client request rates, with the `limits` library's moving window.

Three rules (docs/hardening.md), each a `limits` string such as "60/minute" or
"60/minute;1000/hour" (every part must hold), or "off":

* `public_ip` — `/public/graphql`, counted per client IP address;
* `graphql_ip` — `/graphql`, per client IP address, checked before the token (a looser cap);
* `client` — `/graphql` and `/admin/graphql`, per OAuth client, checked after authentication;
* `oauth_ip` — the OAuth endpoints (token, revocation, introspection), per client IP address;
* `meta_ip` — health, readiness, JWKS, metadata and the index page, per client IP address.

Every entry point names its rules in its profile (`hub/gateway/profile.py`); the gateway admits
a request against them before it looks at anything else.

Counts live in process memory, or in Redis when a URL is configured (`async+redis://` storage of
`limits`, through redis-py), so that every hub process shares them.

Redis down: the limiter fails *open to memory*. It keeps limiting, with counts in this process
only (N hub processes then admit up to N × the limit), logs the outage at ERROR once with the
cause, retries Redis every `retry_interval` seconds, logs the recovery, and reports
`state: "degraded"` in `status()` meanwhile. Availability wins over exact shared counting; the
limits still bound each process.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

log = logging.getLogger("xinlian.ratelimit")

REDIS_TIMEOUT = 0.5  # seconds to connect to or hear from Redis before failing over to memory
REDIS_ERRORS: tuple[type[BaseException], ...] = (StorageError, OSError, TimeoutError)
OFF = {"", "0", "off", "none", "unlimited"}

PUBLIC_IP = "public-ip"
GRAPHQL_IP = "ip"
CLIENT = "client"
OAUTH_IP = "oauth-ip"
META_IP = "meta-ip"


@dataclass(frozen=True)
class RateRules:
    """The configured rates, as `limits` strings (or "off")."""

    public_ip: str = "60/minute"
    graphql_ip: str = "1200/minute"
    client: str = "600/minute"
    oauth_ip: str = "600/minute"
    meta_ip: str = "1200/minute"

    def items(self) -> dict[str, tuple[RateLimitItem, ...]]:
        """Parsed rules by scope; a malformed rule is a ValueError (the hub does not start)."""
        parsed = {}
        rules = (
            (PUBLIC_IP, self.public_ip), (GRAPHQL_IP, self.graphql_ip), (CLIENT, self.client),
            (OAUTH_IP, self.oauth_ip), (META_IP, self.meta_ip),
        )
        for scope, text in rules:
            parsed[scope] = () if text.strip().lower() in OFF else tuple(parse_many(text))
        return parsed


@dataclass(frozen=True)
class Admission:
    """Whether one request may proceed; when not, how many seconds until it may."""

    allowed: bool
    retry_after: int = 0
    limit: str | None = None  # the rule that refused, e.g. "60 per 1 minute"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


class RateLimiter:
    """Admits or refuses requests by scope and key (an IP address or a client id)."""

    def __init__(
        self,
        rules: RateRules,
        redis_url: str | None = None,
        key_prefix: str = "xinlian",
        retry_interval: float = 5.0,
    ) -> None:
        self.rules = rules
        self._items = rules.items()
        self._memory_storage = MemoryStorage()
        self._memory = MovingWindowRateLimiter(self._memory_storage)
        self._redis: MovingWindowRateLimiter | None = None
        self._pool: Any = None
        if redis_url:
            storage, self._pool = _redis_storage(redis_url, f"{key_prefix}:rate")
            self._redis = MovingWindowRateLimiter(storage)
        self.retry_interval = retry_interval
        self.redis_failures = 0
        self._degraded_since: str | None = None
        self._next_probe = 0.0

    async def start(self) -> None:
        """Check that Redis answers (a failure is logged and reported, not fatal)."""
        if self._redis is not None and not await self._redis.storage.check():
            self._redis_failed(ConnectionError("Redis did not answer PING at start-up"))

    async def admit(self, scope: str, key: str) -> Admission:
        """Count one request of `key` under `scope`; refuse it when any of the scope's rules is spent."""
        items = self._items[scope]
        if not items:
            return Admission(True)
        if self._redis is not None and time.monotonic() >= self._next_probe:
            try:
                admission = await _admit(self._redis, items, scope, key)
            except REDIS_ERRORS as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return admission
        return await _admit(self._memory, items, scope, key)

    def status(self) -> dict[str, Any]:
        """What /readyz should show: where counts live, whether that store answers, the rules."""
        return {
            "storage": "redis" if self._redis is not None else "memory",
            "state": "degraded" if self._degraded_since else "ok",
            "degradedSince": self._degraded_since,
            "redisFailures": self.redis_failures,
            "limits": {
                "publicPerIp": self.rules.public_ip, "perIp": self.rules.graphql_ip, "perClient": self.rules.client,
                "oauthPerIp": self.rules.oauth_ip, "metaPerIp": self.rules.meta_ip,
            },
        }

    async def close(self) -> None:
        timer = getattr(self._memory_storage, "timer", None)
        if timer is not None:
            timer.cancel()
        if self._pool is not None:
            await self._pool.aclose()

    def _redis_failed(self, exc: BaseException) -> None:
        self.redis_failures += 1
        self._next_probe = time.monotonic() + self.retry_interval
        if self._degraded_since is None:
            self._degraded_since = _now()
            log.error(
                "rate limiter: Redis is unavailable (%s: %s); counting in process memory until it answers",
                type(exc).__name__, exc,
            )

    def _redis_answered(self) -> None:
        if self._degraded_since is not None:
            log.warning("rate limiter: Redis answers again (unavailable since %s)", self._degraded_since)
            self._degraded_since = None


async def _admit(strategy: MovingWindowRateLimiter, items: tuple[RateLimitItem, ...], scope: str, key: str) -> Admission:
    for item in items:
        if not await strategy.hit(item, scope, key):
            stats = await strategy.get_window_stats(item, scope, key)
            window = item.get_expiry()
            retry_after = min(window, max(1, math.ceil(stats.reset_time - time.time())))
            return Admission(False, retry_after, str(item))
    return Admission(True)


def _redis_storage(url: str, key_prefix: str) -> tuple[RedisStorage, Any]:
    """`limits`' async Redis storage over a redis-py pool the limiter owns (short timeouts)."""
    import redis.asyncio

    plain = url.removeprefix("async+")
    if not plain.startswith(("redis://", "rediss://")):
        raise ValueError("XINLIAN_REDIS_URL must be a redis:// or rediss:// URL")
    pool = redis.asyncio.ConnectionPool.from_url(
        plain, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    storage = RedisStorage(
        f"async+{plain}", implementation="redispy", key_prefix=key_prefix, wrap_exceptions=True,
        connection_pool=pool,  # type: ignore[arg-type]  # limits types **options as scalars; redis-py takes a pool
    )
    return storage, pool
