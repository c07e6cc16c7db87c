"""Audit entries for tests: `make_entry(i, **changes)`, a full entry about `SUBJECTS`, seconds apart.

A fixtures module: test files import it instead of importing each other.
"""

from __future__ import annotations

import datetime as dt

from xinlian.hub.audit.entry import AuditEntry

UTC = dt.timezone.utc
SUBJECTS = ["91350100M000100Y43", "91110000600037341L"]


def make_entry(i: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = dict(
        at=dt.datetime(2026, 4, 1, 8, 0, tzinfo=UTC) + dt.timedelta(seconds=i),
        request_id=f"req-{i:04d}",
        endpoint="/graphql",
        client_id="bank-hohhot",
        client_kind="bank",
        purpose="贷款审查",
        subjects=SUBJECTS,
        released=["registration.name", "taxCredit.level"],
        denied=["penalties.facts"],
        outcome="partial",
        policy_version="2026.1",
        operation_name="Profile",
        errors=["FORBIDDEN"],
        remote_addr="10.0.0.7",
    )
    fields.update(changes)
    return AuditEntry(**fields)  # type: ignore[arg-type]
