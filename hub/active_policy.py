"""`ActivePolicy`: the policy version in force in this process, and the public contract built from it.

The active version lives in the hub store (`hub.governance.policy_versions`); every hub process
follows it without restart:

* **Polling, not refresh-on-read.** Endpoints read the policy synchronously (`runtime.policy`,
  `runtime.public_schema`), so the store cannot be asked on the read path. A background asyncio
  task (`start()` / `stop()`) instead reads the latest activation every `interval` seconds (1 s:
  one indexed single-row query). When it names another version, that version is loaded, the
  public contract schema is rebuilt for it (only then: ~20 ms), and the pair is swapped in as one
  immutable `PolicyState` in a single assignment, then listeners are told (the runtime copies the
  pair onto itself). A request therefore sees one consistent (policy, schema) pair.
* **At once, in this process.** `await refresh()` does the same check immediately; the admin
  API calls it (through `HubRuntime.apply_activation()`) right after it activates a version, so
  its own process does not wait for the next poll. Other processes follow within `interval`.
* **Failing safe.** If the store cannot be read, the version in force stays in force and a
  warning is logged once per failure streak; polling goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Callable

import strawberry

from xinlian.policies import Policy

from .governance.policy_versions import PolicyHistory

log = logging.getLogger("xinlian.policy")
REFRESH_INTERVAL = 1.0  # seconds between two reads of the latest activation

SchemaBuilder = Callable[[Policy], strawberry.Schema]
Listener = Callable[["PolicyState"], None]


@dataclass(frozen=True)
class PolicyState:
    """A policy version and the public contract derived from it, swapped in together."""

    number: int
    policy: Policy
    public_schema: strawberry.Schema

    @property
    def version(self) -> str:
        return self.policy.version


class ActivePolicy:
    """The active policy version of a store, as this process holds it."""

    def __init__(
        self,
        history: PolicyHistory,
        build_public_schema: SchemaBuilder,
        state: PolicyState,
        *,
        interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.history = history
        self.build_public_schema = build_public_schema
        self.interval = interval
        self._state = state
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @classmethod
    async def open(
        cls,
        history: PolicyHistory,
        build_public_schema: SchemaBuilder,
        *,
        seed: Policy,
        seed_by: str = "system",
        seed_reason: str = "initial policy",
        interval: float = REFRESH_INTERVAL,
    ) -> "ActivePolicy":
        """The store's active version (seeding an empty store with `seed` as v1), schema built."""
        stored = await history.seed(seed, seed_by, seed_reason)
        state = PolicyState(stored.number, stored.policy, build_public_schema(stored.policy))
        return cls(history, build_public_schema, state, interval=interval)

    # --- what is in force ------------------------------------------------------------------

    @property
    def state(self) -> PolicyState:
        return self._state

    @property
    def policy(self) -> Policy:
        return self._state.policy

    @property
    def public_schema(self) -> strawberry.Schema:
        return self._state.public_schema

    @property
    def version(self) -> str:
        return self._state.version

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(state)` (synchronously, on the event loop) whenever the version changes."""
        self._listeners.append(listener)

    # --- following the store ---------------------------------------------------------------

    async def refresh(self) -> bool:
        """Re-read the latest activation now; switch to it if it changed. True if it switched."""
        async with self._lock:
            number = await self.history.active_number()
            if number is None or number == self._state.number:
                return False
            stored = await self.history.get(number)
            if stored is None:  # pragma: no cover - versions are never deleted
                return False
            state = PolicyState(stored.number, stored.policy, self.build_public_schema(stored.policy))
            previous, self._state = self._state, state
            for listener in self._listeners:
                listener(state)
            log.info("policy %s in force (was %s)", state.version, previous.version)
            return True

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start polling the store every `interval` seconds (idempotent)."""
        if not self.running:
            self._task = asyncio.create_task(self._poll(), name="xinlian-active-policy")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is unreachable: keep the version in force
                if not self._failing:
                    log.warning("cannot read the active policy version (keeping %s): %r", self.version, exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("reading the active policy version again")
                self._failing = False
