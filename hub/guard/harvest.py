"""`HarvestGuard`: the anti-harvesting cap on distinct subjects a client receives AUTHORIZED data of.

A bank or agency with a legitimate purpose asks about the subjects it does business with; one
that walks through the whole register is harvesting it. The cap bounds, per client and per fixed
window, the number of *distinct* subjects whose AUTHORIZED fields it may receive
(`XINLIAN_AUTHORIZED_SUBJECT_CAP`, default "500/day"; docs/hardening.md):

* a subject already counted in the current window is always admitted again;
* the first `cap` distinct subjects are admitted and counted;
* the (cap+1)-th distinct subject, and every new one after it, is refused; the first refusal of
  a client in a window has `crossed=True` (exactly once per client per window, across every hub
  process sharing Redis), so that the caller writes ONE alert entry (`alert_entry`).

Windows are fixed, aligned to China Standard Time (UTC+8): a "day" runs from 00:00 to 24:00 in
Hohhot, an "hour" from the full hour. A refusal lasts until the window ends.

Counts live in process memory, or in Redis when `XINLIAN_REDIS_URL` is set (one set of subjects
per client and window, changed by one Lua script so that concurrent hub processes never admit
more than `cap` together). Redis down: like the rate limiter, the guard fails open to memory
(each process still enforces the cap on what it sees), logs the outage once and retries Redis
every `retry_interval` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from redis.exceptions import RedisError

from xinlian.hub.audit.entry import AuditEntry

log = logging.getLogger("xinlian.harvest")

REDIS_TIMEOUT = 2.0  # seconds to connect to or hear from Redis (a cap is worth a longer wait than a rate limit)
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
REDIS_CONNECTIONS = 20  # per process; a burst of admits waits for a free connection ...
REDIS_POOL_WAIT = 5.0  # ... this long, rather than failing over to memory at once
OFF = {"", "0", "off", "none", "unlimited"}
WINDOWS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
WINDOW_OFFSET = 8 * 3600  # windows start at midnight / the full hour in China Standard Time
KEY_GRACE = 60  # seconds a window's Redis keys outlive the window
ALERT_CODE = "HARVEST_CAP_EXCEEDED"
ALERT_NAME = "authorized-subject-cap"
_RULE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
_MEMORY_PRUNE_AT = 10_000  # clients tracked in memory before stale windows are dropped


@dataclass(frozen=True)
class HarvestCap:
    """A parsed cap: at most `limit` distinct subjects per `window` ("day", "hour", ...)."""

    limit: int
    window: str

    @property
    def seconds(self) -> int:
        return WINDOWS[self.window]

    def __str__(self) -> str:
        return f"{self.limit}/{self.window}"


def parse_cap(text: str | None) -> HarvestCap | None:
    """ "500/day" → HarvestCap(500, "day"); "0" or "off" → None (no cap); anything else ValueError."""
    if text is None or text.strip().lower() in OFF:
        return None
    match = _RULE.match(text)
    if match is None:
        raise ValueError(
            f"XINLIAN_AUTHORIZED_SUBJECT_CAP: {text!r} is not a cap; write N/second, N/minute, N/hour "
            "or N/day (e.g. 500/day), or 0 / off to turn the cap off"
        )
    limit, window = int(match.group(1)), match.group(2).lower()
    if limit == 0:
        return None
    return HarvestCap(limit, window)


@dataclass(frozen=True)
class HarvestAdmission:
    """Whether a client may receive a subject's AUTHORIZED data now.

    `count`: distinct subjects counted for the client in the current window (with this one when
    admitted); `cap`: the cap (0 when there is none); `crossed`: this is the client's first
    refusal in the window — write the alert entry.
    """

    allowed: bool
    count: int
    cap: int
    crossed: bool = False


def alert_entry(
    client_id: str,
    client_kind: str | None,
    cap: int,
    window: str,
    policy_version: str,
    request_id: str,
    *,
    at: dt.datetime | None = None,
    purpose: str | None = None,
    remote_addr: str | None = None,
    endpoint: str = "/graphql",
) -> AuditEntry:
    """The audit entry recording that `client_id` crossed the authorized-subject cap.

    Outcome "alert", no subjects (the alert is about the client, not about a subject), error
    code `HARVEST_CAP_EXCEEDED`, and `detail` {"alert": "authorized-subject-cap", "cap", "window"}.
    """
    return AuditEntry(
        at=at or dt.datetime.now(dt.timezone.utc),
        request_id=request_id,
        endpoint=endpoint,
        client_id=client_id,
        client_kind=client_kind,
        outcome="alert",
        policy_version=policy_version,
        purpose=purpose,
        errors=[ALERT_CODE],
        remote_addr=remote_addr,
        detail={"alert": ALERT_NAME, "cap": cap, "window": window},
    )


# KEYS[1] the window's subject set, KEYS[2] its "crossed" flag; ARGV subject, cap, ttl seconds.
# Returns {allowed 0|1, count, crossed 0|1}. One script: atomic across every process on Redis.
_ADMIT_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return {1, redis.call('SCARD', KEYS[1]), 0}
end
local count = redis.call('SCARD', KEYS[1])
if count < tonumber(ARGV[2]) then
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {1, count + 1, 0}
end
local first = redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3])
if first then
  return {0, count, 1}
end
return {0, count, 0}
"""


@dataclass
class _Window:
    index: int
    subjects: set[str]
    crossed: bool = False


class HarvestGuard:
    """Counts distinct subjects per client and window; refuses beyond the cap (docs/hardening.md)."""

    def __init__(
        self,
        cap: HarvestCap | str | None,
        redis_url: str | None = None,
        key_prefix: str = "xinlian",
        *,
        clock: Callable[[], float] = time.time,
        retry_interval: float = 5.0,
    ) -> None:
        self.cap: HarvestCap | None = parse_cap(cap) if isinstance(cap, str) or cap is None else cap
        self.clock = clock
        self.key_prefix = key_prefix
        self.retry_interval = retry_interval
        self.redis_failures = 0
        self._memory: dict[str, _Window] = {}
        self._pool: Any = None
        self._client: Any = None
        self._script: Any = None
        self._degraded_since: str | None = None
        self._next_probe = 0.0
        if redis_url and self.cap is not None:
            self._pool, self._client, self._script = _redis_script(redis_url)

    @classmethod
    def from_settings(cls, settings: Any) -> "HarvestGuard":
        """The guard a hub's `Settings` describe (cap, Redis URL, key prefix)."""
        return cls(settings.authorized_subject_cap, settings.redis_url, settings.redis_key_prefix)

    @property
    def enabled(self) -> bool:
        return self.cap is not None

    async def start(self) -> None:
        """Check that Redis answers (a failure is logged and reported, not fatal)."""
        if self._script is None:
            return
        try:
            await self._client.ping()
        except REDIS_ERRORS as exc:
            self._redis_failed(exc)

    async def admit(self, client_id: str, subject: str) -> HarvestAdmission:
        """Count `subject` for `client_id` in the current window; refuse a new one beyond the cap."""
        cap = self.cap
        if cap is None:
            return HarvestAdmission(True, 0, 0)
        now = self.clock()
        index = math.floor((now + WINDOW_OFFSET) / cap.seconds)
        if self._script is not None and time.monotonic() >= self._next_probe:
            try:
                admission = await self._admit_redis(cap, index, now, client_id, subject)
            except REDIS_ERRORS as exc:  # Redis errors, timeouts, lost connections
                self._redis_failed(exc)
            else:
                self._redis_answered()
                return admission
        return self._admit_memory(cap, index, client_id, subject)

    def status(self) -> dict[str, Any]:
        """For /readyz: where counts live, whether that store answers, and the cap."""
        return {
            "storage": "redis" if self._script is not None else "memory",
            "state": "degraded" if self._degraded_since else "ok",
            "degradedSince": self._degraded_since,
            "redisFailures": self.redis_failures,
            "cap": str(self.cap) if self.cap else "off",
        }

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    # ---- backends -----------------------------------------------------------------------
    def _admit_memory(self, cap: HarvestCap, index: int, client_id: str, subject: str) -> HarvestAdmission:
        window = self._memory.get(client_id)
        if window is None or window.index != index:
            if len(self._memory) >= _MEMORY_PRUNE_AT:
                self._memory = {c: w for c, w in self._memory.items() if w.index == index}
            window = self._memory[client_id] = _Window(index, set())
        if subject in window.subjects:
            return HarvestAdmission(True, len(window.subjects), cap.limit)
        if len(window.subjects) < cap.limit:
            window.subjects.add(subject)
            return HarvestAdmission(True, len(window.subjects), cap.limit)
        crossed = not window.crossed
        window.crossed = True
        return HarvestAdmission(False, len(window.subjects), cap.limit, crossed)

    async def _admit_redis(self, cap: HarvestCap, index: int, now: float, client_id: str, subject: str) -> HarvestAdmission:
        base = f"{self.key_prefix}:harvest:{{{client_id}:{index}}}"
        window_end = (index + 1) * cap.seconds - WINDOW_OFFSET
        ttl = max(1, math.ceil(window_end - now)) + KEY_GRACE
        allowed, count, crossed = await self._script(keys=[f"{base}:subjects", f"{base}:crossed"], args=[subject, cap.limit, ttl])
        return HarvestAdmission(bool(allowed), int(count), cap.limit, bool(crossed))

    def _redis_failed(self, exc: BaseException) -> None:
        self.redis_failures += 1
        self._next_probe = time.monotonic() + self.retry_interval
        if self._degraded_since is None:
            self._degraded_since = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
            log.error(
                "harvest guard: Redis is unavailable (%s: %s); counting subjects in process memory until it answers",
                type(exc).__name__, exc,
            )

    def _redis_answered(self) -> None:
        if self._degraded_since is not None:
            log.warning("harvest guard: Redis answers again (unavailable since %s)", self._degraded_since)
            self._degraded_since = None


def _redis_script(url: str) -> tuple[Any, Any, Any]:
    """A redis-py pool the guard owns (short timeouts), a client over it, and the admit script."""
    import redis.asyncio

    plain = url.removeprefix("async+")
    if not plain.startswith(("redis://", "rediss://")):
        raise ValueError("XINLIAN_REDIS_URL must be a redis:// or rediss:// URL")
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        plain,
        max_connections=REDIS_CONNECTIONS,
        timeout=REDIS_POOL_WAIT,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
    )
    client = redis.asyncio.Redis(connection_pool=pool)
    return pool, client, client.register_script(_ADMIT_SCRIPT)
