"""The admin API's GraphQL types, and their construction from hub store records."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import strawberry
from strawberry.scalars import JSON

from xinlian.hub.cases.model import Case
from xinlian.hub.governance.policy_versions import PolicyActivationInfo, PolicyHistory, PolicyVersionInfo, StoredPolicy
from xinlian.hub.store import as_utc
from xinlian.hub.store.models import ClientRecord, ConsentRecord, PurposeRecord
from xinlian.policies.model import DisclosureClass
from xinlian.policies.rules import DeclaredRule
from xinlian.schema.graphql import AccessLogEntry

from .policy_text import policy_toml


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Times as UTC-aware datetimes (SQLite hands back naive ones; the store writes UTC)."""
    return None if moment is None else as_utc(moment)


@strawberry.type(description="An OAuth2 client of the hub (its secret is never shown after creation).")
class Client:
    client_id: str
    name: str
    kind: str = strawberry.field(description="department, bank, agency, platform, admin or subject.")
    scopes: list[str] = strawberry.field(description="The scopes the client may ask for.")
    purposes: list[str] = strawberry.field(description="Purposes the client may declare for AUTHORIZED data.")
    subject_id: Optional[str] = strawberry.field(description="The credit subject a `subject` client speaks for.")
    department: Optional[str] = strawberry.field(
        description="The department a `department` client speaks for (its connector's name, e.g. market)."
    )
    disabled: bool
    auth_method: str = strawberry.field(description="client_secret_basic or private_key_jwt.")
    created_at: dt.datetime

    @classmethod
    def of(cls, record: ClientRecord) -> "Client":
        return cls(
            client_id=record.client_id,
            name=record.name,
            kind=record.kind,
            scopes=(record.scope or "").split(),
            purposes=(record.purposes or "").split(),
            subject_id=record.subject_id,
            department=record.department,
            disabled=bool(record.disabled),
            auth_method=record.token_endpoint_auth_method,
            created_at=utc(record.created_at),  # type: ignore[arg-type]
        )


@strawberry.type(description="A client and its secret: shown this once, only its hash is kept.")
class ClientWithSecret:
    client: Client
    client_secret: str


@strawberry.type(description="A purpose (用途) a client may declare, e.g. loan-review 贷款审批.")
class Purpose:
    code: str
    label: str
    description: str
    retired: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, record: PurposeRecord) -> "Purpose":
        return cls(
            code=record.code, label=record.label, description=record.description or "",
            retired=bool(record.retired), created_at=utc(record.created_at),  # type: ignore[arg-type]
        )


@strawberry.type(description="A natural person's consent (授权书) that a client receive its AUTHORIZED data.")
class Consent:
    id: int
    subject: str
    client_id: str
    purpose: str
    granted_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: Optional[dt.datetime]
    recorded_by: str
    reference: str
    in_force: bool = strawberry.field(description="Granted, not expired and not revoked, now.")

    @classmethod
    def of(cls, record: ConsentRecord) -> "Consent":
        now = dt.datetime.now(dt.timezone.utc)
        granted, expires, revoked = utc(record.granted_at), utc(record.expires_at), utc(record.revoked_at)
        assert granted is not None and expires is not None
        return cls(
            id=record.id, subject=record.subject, client_id=record.client_id, purpose=record.purpose,
            granted_at=granted, expires_at=expires, revoked_at=revoked, recorded_by=record.recorded_by,
            reference=record.reference or "",
            in_force=granted <= now < expires and (revoked is None or revoked > now),
        )


@strawberry.type(description="An objection (异议) to one credit record: an objection case (docs/cases.md).")
class Objection:
    id: int
    subject: str
    family: str
    record_ref: str
    status: str = strawberry.field(description="open, corrected (the record was corrected at its source), upheld (the record stands) or withdrawn.")
    grounds: str = strawberry.field(description="wrong, incomplete, duplicate, should-not-be-public, past-publicity-period, inconsistent-with-decision.")
    reason: str
    department: Optional[str] = strawberry.field(description="The department that answers it (null: with the credit office).")
    deadline: Optional[dt.date] = strawberry.field(description="The day the answer is due: working days from filing (Hohhot).")
    filed_at: dt.datetime
    filed_by: str
    closed_at: Optional[dt.datetime]
    closed_by: Optional[str]
    outcome: Optional[str] = strawberry.field(description="The note recorded when it was closed.")

    @classmethod
    def of(cls, case: Case) -> "Objection":
        record = case.records[0] if case.records else None
        closing = case.history[-1] if case.closed_at is not None and case.history else None
        return cls(
            id=case.id, subject=case.subject or "", family=record.family if record else "",
            record_ref=record.key if record else "", status=case.status, grounds=case.category,
            reason=case.description, department=case.department, deadline=case.deadline, filed_at=case.filed_at,
            filed_by=case.filer, closed_at=case.closed_at, closed_by=closing.by if closing else None,
            outcome=case.resolution if case.closed_at is not None else None,
        )


@strawberry.type(description="One version of the disclosure policy.")
class PolicyVersion:
    version: str = strawberry.field(description="v1, v2, ...")
    number: int
    parent: Optional[str] = strawberry.field(description="The version this one was derived from.")
    at: dt.datetime = strawberry.field(description="When it was made.")
    by: str = strawberry.field(description="Who made it (an admin client id, or the CLI's --by).")
    reason: str
    changes: list[str] = strawberry.field(description="What changed against the parent, one line per entry.")
    active: bool
    _history: strawberry.Private[PolicyHistory]
    _stored: strawberry.Private[Optional[StoredPolicy]] = None

    @classmethod
    def of(cls, info: PolicyVersionInfo, history: PolicyHistory) -> "PolicyVersion":
        return cls(
            version=info.version, number=info.number, parent=f"v{info.parent}" if info.parent else None,
            at=info.created_at, by=info.created_by, reason=info.reason, changes=list(info.changes),
            active=info.active, _history=history, _stored=info if isinstance(info, StoredPolicy) else None,
        )

    async def _load(self) -> StoredPolicy:
        if self._stored is None:
            self._stored = await self._history.get(self.number)
        assert self._stored is not None
        return self._stored

    @strawberry.field(description="The whole policy document as JSON (every field spelled out).")
    async def document(self) -> JSON:
        return JSON((await self._load()).document)

    @strawberry.field(description="The whole policy document as TOML (importPolicy reads it back).")
    async def toml(self) -> str:
        stored = await self._load()
        return policy_toml(stored.document, stored.version)


@strawberry.type(description="A policy version made active: by whom, when and why.")
class PolicyActivation:
    version: str
    at: dt.datetime
    by: str
    reason: str

    @classmethod
    def of(cls, info: PolicyActivationInfo) -> "PolicyActivation":
        return cls(version=info.version, at=info.activated_at, by=info.activated_by, reason=info.reason)


@strawberry.type(description="What changed from one policy version to another.")
class PolicyDiff:
    a: str
    b: str
    changes: list[str] = strawberry.field(description="`path: old -> new`, one line per entry that differs.")


@strawberry.type(description="The policy's decision on one field in a dry run.")
class FieldDecision:
    family: str
    field: str = strawberry.field(description="The field's policy key (snake_case).")
    graphql_name: str
    disclosure_class: str = strawberry.field(description="The field's class for the client's kind.")
    allowed: bool
    reason: str = strawberry.field(description="granted, or why not.")
    mask: Optional[str] = strawberry.field(description="The masking transform applied, if any.")


@strawberry.type(description="A row rule or record annotation declared in a policy version (policies/rules.py).")
class RuleInForce:
    rule: str = strawberry.field(description="The rule kind, e.g. publicity-window, review-gate, validity-window, objection-flag.")
    section: str = strawberry.field(description="rows (which records are shown at all) or annotations (values added to records).")
    families: list[str]
    applies_to: list[str] = strawberry.field(description="The audiences it applies to: PUBLIC, AUTHORIZED, SHARED.")
    applies_to_client: bool = strawberry.field(description="It applies to the client's audience (the widest class its scopes grant).")
    parameters: JSON = strawberry.field(description="The kind's own parameters, e.g. max_months.")

    @classmethod
    def of(cls, rule: DeclaredRule, section: str, audience: DisclosureClass) -> "RuleInForce":
        document = rule.document()
        return cls(
            rule=rule.kind, section=section, families=list(rule.families), applies_to=document["applies_to"],
            applies_to_client=rule.applies(audience),
            parameters=jsonable({k: v for k, v in document.items() if k not in ("rule", "families", "applies_to")}),
        )


@strawberry.type(description="What a client would receive for a subject under a policy version.")
class DryRun:
    client_id: str
    client_kind: str
    client_disabled: bool = strawberry.field(description="A disabled client receives nothing at all today.")
    subject: str
    subject_kind: str = strawberry.field(description="legal_person or natural_person.")
    policy_version: str
    purpose: Optional[str]
    purpose_allowed: bool = strawberry.field(description="The purpose is among the client's allowed purposes.")
    consented: bool = strawberry.field(description="A natural person's consent for the client and purpose is in force.")
    query: str = strawberry.field(description="The query that was run as the client.")
    data: Optional[JSON] = strawberry.field(description="The data the client would receive.")
    decisions: list[FieldDecision]
    errors: JSON = strawberry.field(description="The GraphQL errors the client would receive (FORBIDDEN for denied fields).")
    released: list[str]
    denied: list[str]
    masked: list[str]
    row_rules: list[RuleInForce] = strawberry.field(
        description="The row rules and record annotations of the policy version, and whether each applies to the client."
    )
    rules_applied: list[str] = strawberry.field(
        description="family:rule for each rule that ran over records the client would receive (as its audit entry names them)."
    )


def jsonable(value: Any) -> Any:
    """Lists and dicts as JSON-able values (for the JSON scalar)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@strawberry.type(description="A page of a subject's access log, newest first.")
class AccessLogPage:
    items: list[AccessLogEntry]
    next_before: Optional[int] = strawberry.field(description="Pass as `before` for the next (older) page; null at the end.")
