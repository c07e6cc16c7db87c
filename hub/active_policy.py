"""`ActivePolicy`: the policy version in force in this process, and the public contract built from it.

The active version lives in the hub store (`hub.governance.policy_versions`); every hub process
follows it without restart:

* **Following the change feed, not refresh-on-read.** Endpoints read the policy synchronously
  (`runtime.policy`, `runtime.public_schema`), so the store cannot be asked on the read path.
  `follow(feed)` subscribes `refresh()` to the store's change feed (hub/cluster/changes.py):
  when `policy_activations` changes — in this process, another hub process or the CLI — the
  latest activation is read; when it names another version, that version is loaded, the public
  contract schema is rebuilt for it (only then: ~20 ms), and the pair is swapped in as one
  immutable `PolicyState` in a single assignment, then listeners are told (the runtime copies the
  pair onto itself). A request therefore sees one consistent (policy, schema) pair.
* **At once, in this process.** `await refresh()` does the same check immediately; the admin
  API calls it (through `HubRuntime.apply_activation()`) right after it activates a version, so
  its own process does not wait for the feed. Other processes follow within the feed's interval
  (1 s), or milliseconds on PostgreSQL (NOTIFY) or with Redis.
* **Failing safe.** If the store cannot be read, the version in force stays in force; the feed
  logs it and calls `refresh()` again on its next read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import strawberry

from xinlian.policies import Policy

from .governance.policy_versions import PolicyHistory

if TYPE_CHECKING:
    from .cluster.changes import ChangeFeed

log = logging.getLogger("xinlian.policy")

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
    ) -> None:
        self.history = history
        self.build_public_schema = build_public_schema
        self._state = state
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        history: PolicyHistory,
        build_public_schema: SchemaBuilder,
        *,
        seed: Policy,
        seed_by: str = "system",
        seed_reason: str = "initial policy",
    ) -> "ActivePolicy":
        """The store's active version (seeding an empty store with `seed` as v1), schema built."""
        stored = await history.seed(seed, seed_by, seed_reason)
        state = PolicyState(stored.number, stored.policy, build_public_schema(stored.policy))
        return cls(history, build_public_schema, state)

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

    def follow(self, feed: "ChangeFeed") -> None:
        """Re-read the activation whenever the store's `policy_activations` change."""
        feed.subscribe(["policy_activations"], self.refresh)
