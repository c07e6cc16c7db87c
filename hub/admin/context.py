"""`AdminContext`: what one `/admin/graphql` request carries through its resolvers, and what it did.

Resolvers reach the runtime and the administrator's principal through it, make their changes
through its `operations` / `policy` (which append every change to `actions`), name the subjects
they touched in `subjects`, and leave extra audit entries (one per dry run) in `entries`. The
endpoint writes all of them before it answers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.principal import Principal

from .operations import AdminOperations
from .policy_admin import PolicyOperations

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime


async def client_changed(runtime: "HubRuntime", client_id: str) -> None:
    """After a client's record changed: forget its cached facts, re-read disabled clients now."""
    runtime.clients.forget(client_id)
    revocations = runtime.validator.revocations
    if revocations is not None:
        await revocations.refresh()


@dataclass
class AdminContext:
    runtime: "HubRuntime"
    principal: Principal
    request_id: str
    remote_addr: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)
    entries: list[AuditEntry] = field(default_factory=list)

    @property
    def by(self) -> str:
        return self.principal.client_id or "admin"

    def note(self, action: str, subject: str | None = None, **targets: Any) -> None:
        """Record a read (or anything not made through `operations`/`policy`) for the audit entry."""
        if subject:
            self.subjects.add(subject)
        shown = {k: v for k, v in targets.items() if v is not None}
        self.actions.append({"action": action, **({"subject": subject} if subject else {}), **shown})

    @functools.cached_property
    def operations(self) -> AdminOperations:
        async def changed(client_id: str) -> None:
            await client_changed(self.runtime, client_id)

        return AdminOperations(
            self.runtime.store, self.by, on_client_change=changed, actions=self.actions, objections=self.runtime.objections
        )

    @functools.cached_property
    def policy(self) -> PolicyOperations:
        async def take_effect() -> None:
            # in force here at once; other hub processes follow within their polling interval
            await self.runtime.apply_activation()

        return PolicyOperations(self.runtime.store, self.by, take_effect=take_effect, actions=self.actions)
