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

A dry run does not count against X's anti-harvesting cap, and it is audited as its own entry
(the caller, `dry_run_entry`): the subject's access log lists it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from graphql import GraphQLError

from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.endpoints.graphql_http import format_error
from xinlian.hub.governance.policy_versions import PolicyHistory
from xinlian.hub.principal import Principal
from xinlian.policies.engine import decide
from xinlian.policies.model import Policy
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
    )
    return principal, bool(record.disabled)


async def dry_run(
    runtime: "HubRuntime", client_id: str, subject: str, policy_version: str | None = None, purpose: str | None = None
) -> DryRunOutcome:
    """Run the dry run (bad input: `AdminInputError`, nothing run)."""
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

    # a dry run is not X harvesting: it does not count against X's cap
    ctx = runtime.request_context(principal, public_endpoint=False, policy=policy, harvest_cap=False)
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
        data=jsonable(result.data),
        decisions=decisions,
        errors=jsonable(errors),
        released=sorted(findings.released),
        denied=sorted(findings.denied),
        masked=masked,
        row_rules=rules,
        rules_applied=sorted(findings.rules_applied),
    )
    codes = sorted({e["extensions"]["code"] for e in errors if "extensions" in e})
    return DryRunOutcome(dry, sorted(findings.subjects | {code}), dry.released, dry.denied, masked, codes)


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

