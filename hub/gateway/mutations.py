"""The discipline every endpoint that changes hub state applies to a mutation, before it runs.

A mutation selects exactly one root field, directly (`one_change`): a failing second change
could otherwise leave a first one applied. Its intent — the operation and the root field — is
written to the audit trail before it executes (`record_intent`); if that entry cannot be
stored, nothing runs (`AuditUnavailable`, answered 503 AUDIT_UNAVAILABLE by the gateway). The
request's own entry, written before the answer, then says what the change did. Used by the
admin API (`/admin/graphql`) and by `/graphql` (credit governance changes by departments).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xinlian.hub.audit.record import AccessRecord
from xinlian.hub.audit.trail import AuditUnavailable

from .refusal import Refusal

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime


def one_change(fields: tuple[str, ...], through_fragments: bool) -> None:
    """A mutation selects exactly one root field, directly; else 400 BAD_USER_INPUT, nothing changed."""
    if through_fragments:
        raise Refusal(400, "BAD_USER_INPUT", "a mutation must select its one root field directly, not through a fragment")
    if len(fields) > 1:
        raise Refusal(
            400, "BAD_USER_INPUT",
            f"one change per request: this mutation selects {len(fields)} root fields ({', '.join(fields)}); "
            "send each as its own request. Nothing was changed.",
        )


async def record_intent(runtime: "HubRuntime", record: AccessRecord, operation: str | None, fields: list[str]) -> None:
    """Write the mutation's intent entry before it runs; `AuditUnavailable` if it is lost."""
    entry = record.side_entry(
        "ok", {"intent": True, "operation": operation, "fields": fields}, operation_name=operation, subjects=[]
    )
    try:
        await runtime.audit.record(entry)
    except AuditUnavailable:
        raise
    except Exception as exc:
        raise AuditUnavailable(f"audit entry not stored: {type(exc).__name__}") from exc
