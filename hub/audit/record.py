"""`AccessRecord`: what one request did, collected while it runs, written as its audit entry.

The gateway opens one record per audited request before any handler runs and writes it (with
any extra entries the handler left: dry runs, alerts) before the response is sent. Handlers and
resolvers only add to it: the principal once authenticated, subjects, released / denied /
masked fields, the operation, error codes, and free `detail`. `entries()` turns it into the
`AuditEntry` objects that the trail stores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from xinlian.hub.principal import Principal

from .entry import AuditEntry


@dataclass
class AccessRecord:
    """One request's audit record, filled in by the stages and the handler."""

    endpoint: str
    request_id: str
    remote_addr: str | None
    policy_version: str
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    principal: Principal | None = None
    purpose: str | None = None
    outcome: str = "ok"
    errors: set[str] = field(default_factory=set)
    operation_name: str | None = None
    subjects: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    masked: set[str] = field(default_factory=set)
    detail: dict[str, Any] = field(default_factory=dict)
    extra: list[AuditEntry] = field(default_factory=list)  # written with this one (dry runs, alerts)

    def authenticated(self, principal: Principal) -> None:
        """The caller is known (its purpose may still be refused): attribute the entry to it."""
        self.principal = principal
        if principal.purpose is not None:
            self.purpose = principal.purpose

    def refused(self, code: str, outcome: str = "rejected") -> None:
        self.outcome = outcome
        self.errors.add(code)

    def entry(self) -> AuditEntry:
        """The request's own entry."""
        principal = self.principal
        return AuditEntry(
            at=self.at,
            request_id=self.request_id,
            endpoint=self.endpoint,
            client_id=principal.client_id if principal else None,
            client_kind=principal.kind if principal else None,
            purpose=self.purpose,
            subjects=sorted(self.subjects),
            released=sorted(self.released),
            denied=sorted(self.denied),
            outcome=self.outcome,
            policy_version=self.policy_version,
            masked=sorted(self.masked),
            operation_name=self.operation_name,
            errors=sorted(self.errors),
            remote_addr=self.remote_addr,
            detail=dict(self.detail) or None,
        )

    def entries(self) -> list[AuditEntry]:
        """Every entry this request must leave in the trail before it answers."""
        return [*self.extra, self.entry()]

    def side_entry(self, outcome: str, detail: dict[str, Any], **fields: Any) -> AuditEntry:
        """An entry of its own about this request (an alert, a mutation's intent), same caller and place."""
        principal = self.principal
        return AuditEntry(
            at=dt.datetime.now(dt.timezone.utc),
            request_id=self.request_id,
            endpoint=self.endpoint,
            client_id=principal.client_id if principal else None,
            client_kind=principal.kind if principal else None,
            purpose=self.purpose,
            outcome=outcome,
            policy_version=self.policy_version,
            remote_addr=self.remote_addr,
            detail=detail,
            **fields,
        )
