"""`DepartmentLink`: the hub's guarded line to one department system, the same for every kind.

Every call the hub makes to a connector (fetch, search, health) goes through the connector's
link, which applies, in this order:

1. **circuit breaker** — after `failure_threshold` consecutive failures the circuit opens and
   calls fail fast with `CallRejected("circuit open")`, without touching the department, for
   `reset_timeout` seconds; then it is half-open and lets exactly one probe call through: a
   success closes it, a failure opens it again for another `reset_timeout`.
2. **bulkhead** — at most `max_concurrency` calls in flight to the department; further callers
   wait for a slot, but never past the request's deadline (then `CallRejected("busy")`). The
   budget is the whole cluster's: when N hub processes share the store, each takes
   `max_concurrency // N` slots, at least one (`share_between`, fed by hub/cluster/members.py).
3. **timeout** — each attempt gets `timeout` seconds, cut short by the request's deadline.
4. **retries** — reads are idempotent, so an attempt that failed with `UpstreamUnavailable` is
   retried (at most `retries` times, opt-out per call) after an exponential backoff with jitter,
   and only when the backoff plus a full further attempt fits before the deadline.

`UpstreamInvalid` (the department answered with data the mapping cannot convert) is passed to
the caller unchanged and never retried: bad data does not get better by asking again. It does
not count towards opening the circuit either — a department that answers is up, and failing
fast would not protect it — but it is recorded (`last_error`, `invalid`) and makes the link
show as degraded. `CallerInputError` (the caller's input cannot be sent: a lone surrogate, a NUL,
a character outside the department's character set) is the caller's fault, not the
department's: it is passed on unchanged, never retried, counted (`bad_input`) and leaves the
breaker, the failure count and `last_error` alone — otherwise three hostile requests could
switch a department off for everyone. Any other exception escaping a connector (a bug, a stray
`TimeoutError`) is converted to `UpstreamUnavailable` with a short message and counts as a failure.

The link's state is published as a frozen `LinkStatus` snapshot for `/readyz` and the CLI.
Configuration is a frozen `ResiliencePolicy`, read from a connector's optional
`[connector.resilience]` table by `parse_resilience`. Clock, wall clock, sleep and the jitter's
random source are injectable so tests can drive time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import math
import random as _random
import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, Awaitable, Callable, Protocol, Sequence, TypeVar

from .contract import (
    CallerInputError,
    Connector,
    ConnectorError,
    FetchResult,
    Health,
    UpstreamInvalid,
    UpstreamUnavailable,
)
from .mapping import ConnectorConfigError
from .spec import DEFAULT_TIMEOUT

log = logging.getLogger("xinlian.connectors.resilience")
T = TypeVar("T")


# ---- configuration -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    """How the hub protects itself from one department (and the department from the hub)."""

    timeout: float = DEFAULT_TIMEOUT  # seconds per attempt (the connector's own `timeout` option)
    max_concurrency: int = 8  # calls in flight to this department at once (bulkhead)
    retries: int = 1  # further attempts after an `UpstreamUnavailable`, for reads that allow it
    backoff_base: float = 0.1  # seconds before the first retry; doubles per retry
    backoff_max: float = 2.0  # the longest backoff, before jitter
    failure_threshold: int = 5  # consecutive failures that open the circuit
    reset_timeout: float = 30.0  # seconds the circuit stays open before one probe is let through

    def backoff(self, retry: int, draw: float) -> float:
        """Seconds to wait before retry number `retry` (0-based); `draw` in [0, 1) is the jitter.

        Exponential, capped at `backoff_max`, with "equal jitter": between half and all of it,
        so callers that failed together do not come back together.
        """
        # 2.0, not 2: int ** int is typed Any (a negative exponent gives a float); float ** int is float.
        ceiling = min(self.backoff_max, self.backoff_base * (2.0 ** retry))
        return ceiling * (0.5 + 0.5 * draw)


RESILIENCE_OPTIONS = frozenset(f.name for f in dataclass_fields(ResiliencePolicy)) - {"timeout"}


def _number(raw: Any, where: str, name: str, *, whole: bool, minimum: float, inclusive: bool) -> Any:
    wrong_type = isinstance(raw, bool) or not isinstance(raw, int if whole else (int, float))
    too_small = not wrong_type and (raw < minimum if inclusive else raw <= minimum)
    if wrong_type or too_small or (not wrong_type and not math.isfinite(raw)):
        kind = "a whole number" if whole else "a number of seconds"
        bound = f"at least {minimum:g}" if inclusive else f"greater than {minimum:g}"
        raise ConnectorConfigError(f"{where}.{name}: must be {kind} {bound}")
    return int(raw) if whole else float(raw)


def parse_resilience(raw: Any, where: str, *, timeout: float = DEFAULT_TIMEOUT) -> ResiliencePolicy:
    """The policy of one connector from its optional `[connector.resilience]` table.

    `timeout` is the connector's own `timeout` option (one place to set it, not two): the
    table takes `max_concurrency`, `retries`, `backoff_base`, `backoff_max`,
    `failure_threshold` and `reset_timeout`. A missing table means the defaults.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConnectorConfigError(f"{where}: resilience is a table of settings")
    if "timeout" in raw:
        raise ConnectorConfigError(f"{where}.timeout: set the timeout on the connector itself (timeout = ...)")
    unknown = sorted(set(raw) - RESILIENCE_OPTIONS)
    if unknown:
        raise ConnectorConfigError(
            f"{where}: unknown option {unknown[0]!r} (options: {', '.join(sorted(RESILIENCE_OPTIONS))})"
        )
    defaults = ResiliencePolicy()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ConnectorConfigError(f"{where}: the connector's timeout must be a positive number of seconds")
    values: dict[str, Any] = {"timeout": float(timeout)}
    rules = {
        "max_concurrency": (True, 1, True),
        "retries": (True, 0, True),
        "backoff_base": (False, 0, True),
        "backoff_max": (False, 0, True),
        "failure_threshold": (True, 1, True),
        "reset_timeout": (False, 0, False),
    }
    for name, (whole, minimum, inclusive) in rules.items():
        value = raw.get(name, getattr(defaults, name))
        values[name] = _number(value, where, name, whole=whole, minimum=minimum, inclusive=inclusive)
    if values["backoff_max"] < values["backoff_base"]:
        raise ConnectorConfigError(f"{where}.backoff_max: must be at least backoff_base ({values['backoff_base']:g})")
    return ResiliencePolicy(**values)


# ---- state ---------------------------------------------------------------------------------


class CircuitState(str, enum.Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls fail fast
    HALF_OPEN = "half_open"  # one probe call decides


class CallRejected(UpstreamUnavailable):
    """The link refused a call without asking the department: circuit open, busy, or out of time."""

    def __init__(self, department: str, message: str, reason: str) -> None:
        super().__init__(department, message)
        self.reason = reason  # "circuit_open" | "busy" | "deadline"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """A snapshot of one link, for `/readyz` and `xinlian connectors check`."""

    connector: str
    department: str
    state: CircuitState
    consecutive_failures: int
    last_error: str | None  # the last failure's message (already free of credentials)
    last_error_at: dt.datetime | None  # wall-clock times, UTC
    last_success_at: dt.datetime | None
    opened_at: dt.datetime | None  # when the circuit last opened, while it is open or half-open
    calls: int  # calls made through the link
    attempts: int  # times the department was actually asked (retries included)
    failures: int  # attempts that failed (unavailable, timed out, connector error)
    invalid: int  # attempts answered with data that could not be converted
    rejected: int  # calls refused without asking the department
    retries: int  # attempts that were retries
    in_flight: int
    max_concurrency: int  # the department's budget, for the whole cluster
    bad_input: int = 0  # attempts refused because of the caller's input (not the department's fault)
    slots: int | None = None  # this process's share of `max_concurrency` (None: all of it)

    @property
    def condition(self) -> str:
        """One word for `/readyz`: healthy, degraded (failing lately, half-open, bad data last) or open."""
        if self.state is CircuitState.OPEN:
            return "open"
        if self.state is CircuitState.HALF_OPEN or self.consecutive_failures:
            return "degraded"
        if self.last_error_at and (self.last_success_at is None or self.last_error_at > self.last_success_at):
            return "degraded"
        return "healthy"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


_Attempt = tuple[T | None, ConnectorError | None, bool]  # (result, error, retryable)


class AttemptTracer(Protocol):
    """Runs one attempt (`retry` 0 for the first) inside a trace span and returns its outcome."""

    def __call__(self, link: "DepartmentLink", retry: int, attempt: Awaitable[_Attempt[T]]) -> Awaitable[_Attempt[T]]: ...


# Set while OpenTelemetry tracing is on (hub/observability/tracing.py): a span per attempt. None: no cost.
TRACE_ATTEMPT: AttemptTracer | None = None


class _Outcome(enum.Enum):
    SUCCESS = "success"  # the department answered
    FAILURE = "failure"  # the department is unreachable, slow or broken
    INVALID = "invalid"  # it answered with bad data: up, but not useful
    NEUTRAL = "neutral"  # cut short by the caller's deadline: says nothing about the department
    BAD_INPUT = "bad_input"  # the caller's input could not be sent: the caller's fault, not the department's


# ---- the link ------------------------------------------------------------------------------


class DepartmentLink:
    """Timeout, bulkhead, retries and circuit breaker around one connector (one per connector)."""

    def __init__(
        self,
        connector: Connector,
        policy: ResiliencePolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.connector = connector
        self.policy = policy or ResiliencePolicy(timeout=float(getattr(connector, "timeout", DEFAULT_TIMEOUT)))
        self._clock, self._wall, self._sleep, self._random = clock, wall_clock, sleep, random
        self._state = CircuitState.CLOSED
        self._consecutive = 0
        self._opened_mono: float | None = None
        self._opened_at: dt.datetime | None = None
        self._probing = False
        self._last_error: str | None = None
        self._last_error_at: dt.datetime | None = None
        self._last_success_at: dt.datetime | None = None
        self._counts = dict.fromkeys(
            ("calls", "attempts", "failures", "invalid", "rejected", "retries", "bad_input"), 0
        )
        self._in_flight = 0
        # called after each attempt that reached the department: (outcome, seconds) — the hub's metrics
        self.observer: Callable[[str, float], None] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._share = self.policy.max_concurrency  # this process's slots (`share_between`)

    def __repr__(self) -> str:
        return f"DepartmentLink(connector={self.connector.name!r}, state={self.state.value})"

    @property
    def department(self) -> str:
        return self.connector.department

    @property
    def state(self) -> CircuitState:
        """The circuit's state; an open circuit whose reset timeout has passed reads half-open."""
        if self._state is CircuitState.OPEN and self._probe_due():
            return CircuitState.HALF_OPEN
        return self._state

    def deadline_in(self, seconds: float) -> float:
        """A deadline `seconds` from now on this link's clock."""
        return self._clock() + seconds

    def status(self) -> LinkStatus:
        return LinkStatus(
            connector=self.connector.name,
            department=self.department,
            state=self.state,
            consecutive_failures=self._consecutive,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            last_success_at=self._last_success_at,
            opened_at=self._opened_at if self.state is not CircuitState.CLOSED else None,
            in_flight=self._in_flight,
            max_concurrency=self.policy.max_concurrency,
            slots=self._share,
            **self._counts,
        )

    # ---- calling -----------------------------------------------------------------------
    async def call(self, operation: Callable[[], Awaitable[T]], *, deadline: float, retry: bool = True) -> T:
        """Run `operation()` (a fresh awaitable per attempt) under the link's protections.

        `deadline` is the request's deadline on this link's clock (`time.monotonic` unless
        injected): nothing runs past it. Returns the result or raises a `ConnectorError`:
        `UpstreamInvalid` and `CallerInputError` as the connector raised them,
        `UpstreamUnavailable` for everything else (`CallRejected` when the department was not
        asked at all).
        """
        if not callable(operation):
            raise TypeError("DepartmentLink.call takes a function returning an awaitable, e.g. lambda: c.fetch(...)")
        self._counts["calls"] += 1
        retried = 0
        while True:
            attempt: Awaitable[_Attempt[T]] = self._attempt(operation, deadline)
            if TRACE_ATTEMPT is not None:  # tracing on: the attempt in a span of its own
                attempt = TRACE_ATTEMPT(self, retried, attempt)
            result, error, retryable = await attempt
            if error is None:
                return result  # type: ignore[return-value]
            if not (retry and retryable) or retried >= self.policy.retries or self._state is not CircuitState.CLOSED:
                raise error  # not worth asking again, out of retries, or the circuit opened
            delay = self.policy.backoff(retried, self._random())
            if self._clock() + delay + self.policy.timeout > deadline:
                raise error  # no room for a backoff and a full further attempt
            retried += 1
            self._counts["retries"] += 1
            log.info("connector %s: retry %d in %.3f s after: %s", self.connector.name, retried, delay, error.message)
            await self._sleep(delay)

    async def fetch(
        self, family: str, keys: Sequence[str], fields: Sequence[str], *, deadline: float, retry: bool = True
    ) -> FetchResult:
        """`connector.fetch` through the link."""
        return await self.call(lambda: self.connector.fetch(family, keys, fields), deadline=deadline, retry=retry)

    async def search(self, family: str, text: str, limit: int, *, deadline: float, retry: bool = True) -> list[str]:
        """`connector.search` through the link."""
        return await self.call(lambda: self.connector.search(family, text, limit), deadline=deadline, retry=retry)

    async def subject_keys(self, family: str, after: str, limit: int, *, deadline: float) -> list[str]:
        """`connector.subject_keys` through the link (an `EnumeratingConnector` only)."""
        enumerate_keys = getattr(self.connector, "subject_keys")
        return await self.call(lambda: enumerate_keys(family, after, limit), deadline=deadline)

    async def check(self, *, deadline: float) -> Health:
        """Probe the department with `connector.health()` through the link; never raises.

        An unhealthy answer counts as a failure (it is the department saying it is down).
        """
        async def probe() -> Health:
            health = await self.connector.health()
            if not health.healthy:
                raise UpstreamUnavailable(self.department, health.detail or "unhealthy")
            return health

        try:
            return await self.call(probe, deadline=deadline, retry=False)
        except ConnectorError as exc:
            return Health(False, exc.message, self._wall())

    # ---- one attempt -------------------------------------------------------------------
    async def _attempt(self, operation: Callable[[], Awaitable[T]], deadline: float) -> _Attempt[T]:
        """One attempt: (result, None, _) or (None, error, retryable); `CallRejected` if refused."""
        self._refuse_if_open()
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise self._reject("deadline", "no time left in the request for this department")
        slots = self._slots_for_this_loop()
        # Wait for a slot no longer than one call may take: a slow department must answer
        # "busy" quickly rather than hold the caller until the whole request times out.
        wait = min(remaining, self.policy.timeout)
        try:
            async with asyncio.timeout(wait):
                await slots.acquire()
        except TimeoutError:
            raise self._reject(
                "busy", f"busy: {self._share} calls already in flight, no slot within {wait:.2g} s"
            ) from None
        self._in_flight += 1
        probe = recorded = False
        try:
            probe = self._admit()
            budget = min(self.policy.timeout, deadline - self._clock())
            if budget <= 0:
                raise self._reject("deadline", "no time left in the request for this department")
            self._counts["attempts"] += 1
            started = time.perf_counter()
            outcome, result, error, retryable = await self._run(operation, budget)
            if self.observer is not None:
                self.observer(outcome.value, time.perf_counter() - started)
            self._record(outcome, error, probe)
            recorded = True
        finally:
            self._in_flight -= 1
            slots.release()
            if probe and not recorded:
                self._probing = False  # cancelled or refused mid-probe: the next call may probe
        return result, error, retryable

    async def _run(
        self, operation: Callable[[], Awaitable[T]], budget: float
    ) -> tuple[_Outcome, T | None, ConnectorError | None, bool]:
        """(outcome, result, error, retryable) of calling the department within `budget` seconds."""
        department = self.department
        try:
            async with asyncio.timeout(budget):
                return _Outcome.SUCCESS, await operation(), None, False
        except UpstreamInvalid as exc:  # bad data does not get better by asking again
            return _Outcome.INVALID, None, exc, False
        except CallerInputError as exc:  # the caller's input, not the department: neither retried nor counted
            return _Outcome.BAD_INPUT, None, exc, False
        except UpstreamUnavailable as exc:
            return _Outcome.FAILURE, None, exc, True
        except ConnectorError as exc:  # another kind of ConnectorError: the department failed
            return _Outcome.FAILURE, None, UpstreamUnavailable(exc.department, exc.message, exc.reason), True
        except TimeoutError:
            if budget < self.policy.timeout:  # the request ran out of time, not the department
                message = f"no answer before the request's deadline ({budget:.2g} s)"
                return _Outcome.NEUTRAL, None, UpstreamUnavailable(department, message, "deadline"), False
            error = UpstreamUnavailable(department, f"no answer within {budget:g} s", "timeout")
            return _Outcome.FAILURE, None, error, True
        except Exception as exc:  # a connector bug must not take the request down; asking again won't help
            log.exception("connector %s failed", self.connector.name)
            error = UpstreamUnavailable(department, f"connector failed ({type(exc).__name__})", "connector_error")
            return _Outcome.FAILURE, None, error, False

    # ---- the breaker -------------------------------------------------------------------
    def _probe_due(self) -> bool:
        return self._opened_mono is not None and self._clock() - self._opened_mono >= self.policy.reset_timeout

    def _refuse_if_open(self) -> None:
        """Fail fast (before waiting for a slot) while the circuit is open or already probing."""
        if self._state is CircuitState.OPEN and not self._probe_due():
            wait = self.policy.reset_timeout - (self._clock() - (self._opened_mono or 0.0))
            raise self._reject(
                "circuit_open",
                f"circuit open after {self._consecutive} consecutive failures; next probe in {max(wait, 0):.0f} s",
            )
        if self._probing:
            raise self._reject("circuit_open", "circuit open; a probe call is in progress")

    def _admit(self) -> bool:
        """Let this attempt through (True if it is the half-open probe), or refuse it."""
        self._refuse_if_open()
        if self._state is CircuitState.OPEN:  # the reset timeout has passed: this call probes
            self._state = CircuitState.HALF_OPEN
        if self._state is CircuitState.HALF_OPEN:
            self._probing = True
            log.info("connector %s: circuit half-open, probing", self.connector.name)
            return True
        return False

    def _record(self, outcome: _Outcome, error: ConnectorError | None, probe: bool) -> None:
        if probe:
            self._probing = False
        if outcome is _Outcome.BAD_INPUT:  # says nothing about the department: not its last error either
            self._counts["bad_input"] += 1
            log.info("connector %s: refused the caller's input: %s", self.connector.name, error and error.message)
            return
        now = self._wall()
        if error is not None:
            self._last_error, self._last_error_at = error.message, now
        if outcome is _Outcome.NEUTRAL:
            return
        if outcome is _Outcome.FAILURE:
            self._counts["failures"] += 1
            self._consecutive += 1
            if probe or (self._state is CircuitState.CLOSED and self._consecutive >= self.policy.failure_threshold):
                self._open()
            return
        # SUCCESS or INVALID: the department answered, so it is up.
        if outcome is _Outcome.INVALID:
            self._counts["invalid"] += 1
        else:
            self._last_success_at = now
        if self._state is CircuitState.CLOSED or probe:
            if probe:
                log.info("connector %s: probe answered, circuit closed", self.connector.name)
            self._state, self._consecutive = CircuitState.CLOSED, 0
            self._opened_mono = self._opened_at = None

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_mono, self._opened_at = self._clock(), self._wall()
        log.warning(
            "connector %s (%s): circuit open after %d consecutive failures (last: %s)",
            self.connector.name, self.department, self._consecutive, self._last_error,
        )

    def _reject(self, reason: str, message: str) -> CallRejected:
        self._counts["rejected"] += 1
        return CallRejected(self.department, message, reason)

    def share_between(self, processes: int) -> int:
        """Take this process's share of the department's budget when `processes` hub processes
        share it: `max_concurrency // processes`, at least one. Calls in flight keep the slots
        they hold; new calls wait for the new share. Returns the share."""
        share = max(1, self.policy.max_concurrency // max(1, processes))
        if share != self._share:
            self._share, self._slots = share, None  # the next call makes a semaphore of the new size
        return share

    def _slots_for_this_loop(self) -> asyncio.Semaphore:
        """The bulkhead's semaphore, made anew if the link is used from another event loop."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self._share), loop
        return self._slots
