"""Dry run: what would client X receive for subject Y under policy version V (and purpose P)?

The answer is computed the way a real request is served, not simulated: the principal X would
have (its kind and scopes from its client record, its allowed purposes from the registry, P as
its declared purpose) runs a query selecting every catalogued field of every record family the
subject has, over the hub's own executor with policy V. Denied fields are therefore never
fetched — connectors are called only for the fields X may receive — and the result carries the
same data, FORBIDDEN errors and released/denied/masked fields X would get. Next to it come the
policy's decisions field by field (class, allowed, reason, mask), for the subject's kind and
consent situation, the row rules and record annotations V declares (`rowRules`: each with its
families, audiences, parameters and whether it applies to X) and the ones that ran over the
records X would receive (`rulesApplied`, "family:rule").

What the dry run returns is for the admin's eyes, so values are shown only as the admin's own
principal would receive them under the *active* policy (`admin_view`): a value the admin could
not receive (a class its scopes do not grant, AUTHORIZED without its own purpose and consent,
or CONFIDENTIAL under the active policy or under V) is replaced by its shape, the type name
(`"<string>"`, `"<date>"`, `"<decimal>"`, `"<int>"`), and a value the admin would receive
masked is masked with the admin's mask. A CONFIDENTIAL value is never returned, even through a
version V that was never activated and releases it to X. Decisions, masks, errors and the
released/denied/masked lists are X's.

The reads count against the *admin's* anti-harvesting cap: the admin is the one looking, and a
dry run must not be an unmetered way to read many subjects; charging X instead would let an
admin use up (and raise harvest alerts on) a bank's cap for reads the bank never made; a crossing
writes an alert entry naming the admin (`dry_run_alerts`). It is
audited as its own entry (the caller, `dry_run_entry`): the subject's access log lists it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.endpoints.graphql_http import format_error
from xinlian.hub.governance.policy_versions import PolicyHistory
from xinlian.hub.guard.harvest import alert_entry
from xinlian.hub.principal import Principal
from xinlian.policies.engine import decide
from xinlian.policies.model import DisclosureClass, Policy
from xinlian.schema.catalogue import SubjectKind, families_for
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id, validate_uscc

from .operations import AdminInputError
from .types import DryRun, FieldDecision, RuleInForce, jsonable

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

OPERATION = "DryRun"


def subject_kind(subject: str) -> tuple[str, SubjectKind]:
    """The normalised identifier and its kind: a USCC is a legal person, a resident ID a natural person."""
    text = (subject or "").strip()
    try:
        return validate_uscc(text), SubjectKind.LEGAL_PERSON
    except InvalidIdentifier:
        pass
    try:
        return validate_resident_id(text), SubjectKind.NATURAL_PERSON
    except InvalidIdentifier:
        raise AdminInputError(f"subject {subject!r} is neither a valid USCC nor a valid resident ID") from None


def dry_run_query(kind: SubjectKind) -> str:
    """A query selecting every catalogued field of every family a subject of `kind` has."""
    legal = kind is SubjectKind.LEGAL_PERSON
    root, argument, key = ("legalPerson", "uscc", "uscc") if legal else ("naturalPerson", "idNumber", "idNumber")
    parts = [key] + [
        f"{family.graphql_field} {{ {' '.join(spec.graphql_name for spec in family.fields)} }}"
        for family in families_for(kind)
    ]
    return f"query {OPERATION}($subject: String!) {{ {root}({argument}: $subject) {{ {' '.join(parts)} }} }}"


@dataclass
class DryRunOutcome:
    result: DryRun
    subjects: list[str]
    released: list[str]
    denied: list[str]
    masked: list[str]
    error_codes: list[str]
    alerts: list[dict[str, Any]]  # the admin's harvest cap crossed by this dry run's reads


async def _policy(runtime: "HubRuntime", version: str | None) -> Policy:
    if version is None or not version.strip():
        return runtime.policy
    stored = await PolicyHistory(runtime.store).get(version.strip())
    if stored is None:
        raise AdminInputError(f"no policy version {version!r} (versions are named v1, v2, ...)")
    return stored.policy


async def _principal(runtime: "HubRuntime", client_id: str, purpose: str | None) -> tuple[Principal, bool]:
    from xinlian.hub.auth.clients import ClientRegistry

    record = await ClientRegistry(runtime.store).get(client_id)
    if record is None:
        raise AdminInputError(f"no client {client_id!r}")
    declared = (record.purposes or "").split()
    allowed = await runtime.purposes.active_codes(declared) if declared else set()
    principal = Principal(
        client_id=record.client_id,
        kind=record.kind,
        scopes=frozenset((record.scope or "").split()),
        purpose=purpose.strip() if purpose and purpose.strip() else None,
        token_id=None,
        allowed_purposes=frozenset(allowed),
        subject_id=record.subject_id,
        department=record.department,
    )
    return principal, bool(record.disabled)


DRY_RUN_WITHOUT_ADMIN = "dry-run"  # the cap's key for a dry run made without an admin principal


def shape(type_name: str) -> str:
    """The placeholder that stands for a value the admin may not see: its type, e.g. `<string>`."""
    return f"<{type_name.lower()}>"


def admin_view(
    data: Any, kind: SubjectKind, active: Policy, version: Policy, admin: Principal | None, x: Principal, consented: bool
) -> Any:
    """X's result data as the admin may see it (see the module docstring); `admin` None: shapes only."""
    if not isinstance(data, dict):
        return data
    natural = kind is SubjectKind.NATURAL_PERSON
    root_name, key = ("legalPerson", "uscc") if kind is SubjectKind.LEGAL_PERSON else ("naturalPerson", "idNumber")
    root = data.get(root_name)
    if not isinstance(root, dict):
        return data
    families = {family.graphql_field: family for family in families_for(kind)}

    def field_view(family_name: str, field_name: str, type_name: str, value: Any) -> Any:
        if value is None:
            return None
        hidden = shape(type_name)
        if (
            version.class_of((family_name, field_name), x.kind) is DisclosureClass.CONFIDENTIAL
            or admin is None
            or active.class_of((family_name, field_name), admin.kind) is DisclosureClass.CONFIDENTIAL
        ):
            return hidden
        decision = decide(active, admin, family_name, field_name, natural_person=natural, consented=consented)
        if not decision.allowed:
            return hidden
        return decision.mask(value) if decision.mask is not None else value

    def record_view(family: Any, record: Any) -> Any:
        if not isinstance(record, dict):
            return record
        specs = {spec.graphql_name: spec for spec in family.fields}
        shown: dict[str, Any] = {}
        for name, value in record.items():
            spec = specs.get(name)
            if spec is None:
                shown[name] = None if value is None else shape("value")
            else:
                shown[name] = field_view(family.name, spec.name, spec.type.value, value)
        return shown

    view: dict[str, Any] = {}
    for name, value in root.items():
        family = families.get(name)
        if name == key:
            view[name] = value  # the subject asked about
        elif family is None:
            view[name] = None if value is None else shape("value")
        elif isinstance(value, list):
            view[name] = [record_view(family, record) for record in value]
        else:
            view[name] = record_view(family, value)
    return {**data, root_name: view}


async def dry_run(
    runtime: "HubRuntime",
    client_id: str,
    subject: str,
    policy_version: str | None = None,
    purpose: str | None = None,
    *,
    admin: Principal | None = None,
) -> DryRunOutcome:
    """Run the dry run (bad input: `AdminInputError`, nothing run).

    `admin` is the admin asking: values are shown only as it would receive them, and the reads
    count against its anti-harvesting cap. Without it, values are shown as shapes only.
    """
    code, kind = subject_kind(subject)
    policy = await _policy(runtime, policy_version)
    principal, disabled = await _principal(runtime, client_id, purpose)
    natural = kind is SubjectKind.NATURAL_PERSON
    consented = False
    if principal.purpose_allowed and principal.purpose is not None:
        consented = code in await runtime.consents.consenting([code], client_id, principal.purpose)

    decisions = []
    for family in families_for(kind):
        for spec in family.fields:
            decision = decide(policy, principal, family.name, spec.name, natural_person=natural, consented=consented)
            decisions.append(
                FieldDecision(
                    family=family.name,
                    field=spec.name,
                    graphql_name=spec.graphql_name,
                    disclosure_class=decision.disclosure.value,
                    allowed=decision.allowed,
                    reason=decision.reason.value,
                    mask=decision.mask.spec if decision.mask is not None else None,
                )
            )

    audience = policy.audience(principal.scopes)
    rules = [RuleInForce.of(rule, "rows", audience) for rule in policy.rows]
    rules += [RuleInForce.of(rule, "annotations", audience) for rule in policy.annotations]

    admin_consented = False
    if admin is not None and admin.client_id and admin.purpose_allowed and admin.purpose is not None:
        admin_consented = code in await runtime.consents.consenting([code], admin.client_id, admin.purpose)

    # the reads count against the admin's cap (it is the admin looking), never against X's; without
    # an admin (no one to charge) only shapes are shown, so nothing is charged either
    charged = admin.client_id if admin is not None and admin.client_id else DRY_RUN_WITHOUT_ADMIN
    ctx = runtime.request_context(principal, public_endpoint=False, policy=policy, harvest_client=charged)
    query = dry_run_query(kind)
    try:
        result = await asyncio.wait_for(
            runtime.schema.execute(query, variable_values={"subject": code}, context_value=ctx, operation_name=OPERATION),
            timeout=runtime.settings.request_timeout,
        )
    except (asyncio.TimeoutError, TimeoutError):
        raise GraphQLError(
            f"the dry run did not complete within {runtime.settings.request_timeout:g} s",
            extensions={"code": "REQUEST_TIMEOUT"},
        ) from None
    errors = [format_error(e) for e in result.errors or []] + ctx.denial_errors()
    findings = ctx.findings
    masked = sorted(findings.masked)
    dry = DryRun(
        client_id=client_id,
        client_kind=principal.kind,
        client_disabled=disabled,
        subject=code,
        subject_kind=kind.value,
        policy_version=policy.version,
        purpose=principal.purpose,
        purpose_allowed=principal.purpose_allowed,
        consented=consented,
        query=query,
        data=jsonable(admin_view(result.data, kind, runtime.policy, policy, admin, principal, admin_consented)),
        decisions=decisions,
        errors=jsonable(errors),
        released=sorted(findings.released),
        denied=sorted(findings.denied),
        masked=masked,
        row_rules=rules,
        rules_applied=sorted(findings.rules_applied),
    )
    codes = sorted({e["extensions"]["code"] for e in errors if "extensions" in e})
    return DryRunOutcome(
        dry, sorted(findings.subjects | {code}), dry.released, dry.denied, masked, codes, list(findings.alerts)
    )


def dry_run_entry(outcome: DryRunOutcome, admin: Principal, request_id: str, remote_addr: str | None) -> AuditEntry:
    """The dry run's own audit entry: the admin, the subject, what X would have been given."""
    dry = outcome.result
    return AuditEntry(
        at=dt.datetime.now(dt.timezone.utc),
        request_id=request_id,
        endpoint="/admin/graphql",
        client_id=admin.client_id,
        client_kind=admin.kind,
        outcome="partial" if outcome.error_codes else "ok",
        policy_version=dry.policy_version,
        subjects=outcome.subjects,
        released=outcome.released,
        denied=outcome.denied,
        masked=outcome.masked,
        purpose=dry.purpose,  # the subject's access log shows it
        operation_name="dryRun",
        errors=outcome.error_codes,
        remote_addr=remote_addr,
        detail={
            "action": "dryRun",
            "dryRun": True,  # the subject's access log lists admin entries marked so
            "as_client": dry.client_id,
            "policy_version": dry.policy_version,
            "purpose": dry.purpose,
            "rules_applied": dry.rules_applied,
        },
    )



def dry_run_alerts(
    outcome: DryRunOutcome, admin: Principal, runtime: "HubRuntime", request_id: str, remote_addr: str | None
) -> list[AuditEntry]:
    """One alert entry if this dry run's reads made the admin cross its anti-harvesting cap."""
    cap = runtime.harvest.cap
    if not outcome.alerts or cap is None:
        return []
    return [
        alert_entry(
            admin.client_id or "", admin.kind, cap.limit, cap.window, outcome.result.policy_version, request_id,
            remote_addr=remote_addr, endpoint="/admin/graphql",
        )
    ]
