"""The admin API's schema (`/admin/graphql`): clients, purposes, consents, objections, policy
versions, subjects' access logs and dry runs.

Queries read; every mutation changes one thing through `AdminOperations` / `PolicyOperations`,
which check all input first (bad input: a GraphQL error with `extensions.code` BAD_USER_INPUT,
nothing changed) and record the change for the request's audit entry. Policy mutations need a
non-empty `reason`; each makes (or activates) a version and takes effect in this process at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Optional

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.types.execution import ExecutionContext

from xinlian.hub.audit.access_log import MAX_FIRST, SubjectAccessLog
from xinlian.hub.executor.access_log_field import to_graphql
from xinlian.hub.governance.objections import OUTCOMES, ObjectionError, check_subject
from xinlian.hub.guard import AUTHENTICATED_LIMITS, QueryGuard

from .cases import CaseAdminMutation, CaseAdminQuery
from .complaints import ComplaintAdminMutation, ComplaintAdminQuery
from .context import AdminContext
from .credit import CreditAdminMutation, CreditAdminQuery
from .dry_run import dry_run, dry_run_alerts, dry_run_entry
from .index import IndexAdminMutation, IndexAdminQuery
from .operations import AdminInputError, AdminOperations
from .repairs import RepairAdminMutation, RepairAdminQuery
from .review import ReviewAdminMutation, ReviewAdminQuery
from .types import (
    AccessLogPage,
    Client,
    ClientWithSecret,
    Consent,
    DryRun,
    Objection,
    PolicyActivation,
    PolicyDiff,
    PolicyVersion,
    Purpose,
)

log = logging.getLogger("xinlian.admin")


def _ctx(info: strawberry.Info) -> AdminContext:
    return info.context


def _client_operations(info: strawberry.Info) -> AdminOperations:
    """The request's operations, knowing the running hub's connectors: a department client may
    speak only for one of them (when the federation has any)."""
    ctx = _ctx(info)
    operations = ctx.operations
    operations.departments = frozenset(c.name for c in ctx.runtime.federation.connectors)
    return operations


def _subject(subject: str) -> str:
    try:
        return check_subject(subject)
    except ObjectionError as exc:
        raise AdminInputError(str(exc)) from None


@strawberry.type(description="Xinlian administration: read.")
class Query(CreditAdminQuery, CaseAdminQuery, ComplaintAdminQuery, RepairAdminQuery, IndexAdminQuery, ReviewAdminQuery):
    @strawberry.field(description="Every client, oldest first (never a secret).")
    async def clients(self, info: strawberry.Info) -> list[Client]:
        ctx = _ctx(info)
        ctx.note("clients")
        return [Client.of(r) for r in await ctx.operations.registry.list()]

    @strawberry.field(description="One client, or null.")
    async def client(self, info: strawberry.Info, client_id: str) -> Optional[Client]:
        ctx = _ctx(info)
        ctx.note("client", client_id=client_id)
        record = await ctx.operations.registry.get(client_id)
        return Client.of(record) if record else None

    @strawberry.field(description="The purposes clients may declare (with retired ones if asked).")
    async def purposes(self, info: strawberry.Info, include_retired: bool = False) -> list[Purpose]:
        ctx = _ctx(info)
        ctx.note("purposes")
        return [Purpose.of(r) for r in await ctx.runtime.purposes.list(include_retired)]

    @strawberry.field(description="Consents on file, newest first, for a subject and/or a client.")
    async def consents(
        self, info: strawberry.Info, subject: Optional[str] = None, client_id: Optional[str] = None
    ) -> list[Consent]:
        ctx = _ctx(info)
        code = _subject(subject) if subject else None
        ctx.note("consents", subject=code, client_id=client_id)
        return [Consent.of(r) for r in await ctx.runtime.consents.list(subject=code, client_id=client_id)]

    @strawberry.field(description="Objections, overdue first, for a subject and/or with a status (open, corrected, upheld, withdrawn).")
    async def objections(
        self, info: strawberry.Info, subject: Optional[str] = None, status: Optional[str] = None
    ) -> list[Objection]:
        ctx = _ctx(info)
        code = _subject(subject) if subject else None
        if status is not None and status not in ("open", *OUTCOMES):
            raise AdminInputError(f"status: open, {', '.join(OUTCOMES)}")
        ctx.note("objections", subject=code, status=status)
        found = await ctx.runtime.cases.find(kind="objection", subject=code, status=status, today=ctx.runtime.today())
        return [Objection.of(r) for r in found]

    @strawberry.field(description="Every policy version, newest first.")
    async def policy_versions(self, info: strawberry.Info) -> list[PolicyVersion]:
        ctx = _ctx(info)
        ctx.note("policyVersions")
        history = ctx.policy.history
        return [PolicyVersion.of(v, history) for v in await history.versions()]

    @strawberry.field(description="One policy version (v1, v2, ...), or null.")
    async def policy_version(self, info: strawberry.Info, version: str) -> Optional[PolicyVersion]:
        ctx = _ctx(info)
        ctx.note("policyVersion", version=version)
        stored = await ctx.policy.history.get(version)
        return PolicyVersion.of(stored, ctx.policy.history) if stored else None

    @strawberry.field(description="The active policy version (the latest activation).")
    async def active_policy(self, info: strawberry.Info) -> PolicyVersion:
        ctx = _ctx(info)
        ctx.note("activePolicy")
        return PolicyVersion.of(await ctx.policy.history.active(), ctx.policy.history)

    @strawberry.field(description="The activation history, newest first.")
    async def policy_activations(self, info: strawberry.Info) -> list[PolicyActivation]:
        ctx = _ctx(info)
        ctx.note("policyActivations")
        return [PolicyActivation.of(a) for a in await ctx.policy.history.activations()]

    @strawberry.field(description="What changed from version a to version b.")
    async def policy_diff(self, info: strawberry.Info, a: str, b: str) -> PolicyDiff:
        ctx = _ctx(info)
        ctx.note("policyDiff", a=a, b=b)
        return PolicyDiff(a=a, b=b, changes=await ctx.policy.diff(a, b))

    @strawberry.field(description="Who accessed a subject's data, newest first (on the subject's behalf).")
    async def subject_access_log(
        self, info: strawberry.Info, subject: str, first: int = 50, before: Optional[int] = None
    ) -> AccessLogPage:
        ctx = _ctx(info)
        code = _subject(subject)
        if not 1 <= first <= MAX_FIRST:
            raise AdminInputError(f"first: between 1 and {MAX_FIRST}")
        if before is not None and before < 1:
            raise AdminInputError("before: the seq of an entry (a positive integer)")
        ctx.note("subjectAccessLog", subject=code)
        page = await SubjectAccessLog(ctx.runtime.store).entries(code, first=first, before_seq=before)
        return AccessLogPage(items=[to_graphql(i) for i in page.items], next_before=page.next_before)

    @strawberry.field(description="What client X would receive for subject Y under policy version V (default: active).")
    async def dry_run(
        self,
        info: strawberry.Info,
        client_id: str,
        subject: str,
        policy_version: Optional[str] = None,
        purpose: Optional[str] = None,
    ) -> DryRun:
        ctx = _ctx(info)
        outcome = await dry_run(ctx.runtime, client_id, subject, policy_version, purpose, admin=ctx.principal)
        ctx.note(
            "dryRun", subject=outcome.result.subject, as_client=client_id,
            policy_version=outcome.result.policy_version, purpose=outcome.result.purpose,
        )
        ctx.entries.append(dry_run_entry(outcome, ctx.principal, ctx.request_id, ctx.remote_addr))
        ctx.entries.extend(dry_run_alerts(outcome, ctx.principal, ctx.runtime, ctx.request_id, ctx.remote_addr))
        return outcome.result


@strawberry.type(description="Xinlian administration: change. Every change is audited.")
class Mutation(
    CreditAdminMutation, CaseAdminMutation, ComplaintAdminMutation, RepairAdminMutation, IndexAdminMutation,
    ReviewAdminMutation,
):
    # ---- clients ----------------------------------------------------------------------
    @strawberry.mutation(description="Register a client; its secret is in the answer, this once.")
    async def create_client(
        self,
        info: strawberry.Info,
        name: str,
        kind: str,
        scope: Optional[str] = None,
        purposes: Optional[list[str]] = None,
        subject_id: Optional[str] = None,
        department: Annotated[
            Optional[str],
            strawberry.argument(description="A `department` client's department: a connector of the federation, e.g. market."),
        ] = None,
        client_id: Optional[str] = None,
        confirm_widening: bool = False,
    ) -> ClientWithSecret:
        record, secret = await _client_operations(info).create_client(
            name, kind, scope, purposes, subject_id, client_id, department=department, confirm_widening=confirm_widening
        )
        return ClientWithSecret(client=Client.of(record), client_secret=secret)

    @strawberry.mutation(description="Give a client a new secret (the old one stops at once); shown this once.")
    async def rotate_client_secret(self, info: strawberry.Info, client_id: str) -> ClientWithSecret:
        ops = _ctx(info).operations
        secret = await ops.rotate_secret(client_id)
        return ClientWithSecret(client=Client.of(await ops.client(client_id)), client_secret=secret)

    @strawberry.mutation(description="Refuse a client from now on (its tokens too, within about a second).")
    async def disable_client(self, info: strawberry.Info, client_id: str) -> Client:
        return Client.of(await _ctx(info).operations.disable_client(client_id))

    @strawberry.mutation(description="Accept a disabled client again.")
    async def enable_client(self, info: strawberry.Info, client_id: str) -> Client:
        return Client.of(await _ctx(info).operations.enable_client(client_id))

    @strawberry.mutation(description="Replace the scopes a client may ask for (new tokens only).")
    async def set_client_scope(
        self, info: strawberry.Info, client_id: str, scope: str, confirm_widening: bool = False
    ) -> Client:
        ops = _ctx(info).operations
        return Client.of(await ops.set_client_scope(client_id, scope, confirm_widening=confirm_widening))

    @strawberry.mutation(description="Replace the purposes a client may declare (defined, not retired).")
    async def set_client_purposes(self, info: strawberry.Info, client_id: str, purposes: list[str]) -> Client:
        return Client.of(await _ctx(info).operations.set_client_purposes(client_id, purposes))

    @strawberry.mutation(description="Bind a `subject` client to the credit subject it speaks for (null unbinds).")
    async def set_client_subject(self, info: strawberry.Info, client_id: str, subject_id: Optional[str] = None) -> Client:
        return Client.of(await _ctx(info).operations.set_client_subject(client_id, subject_id))

    @strawberry.mutation(
        description="Bind a `department` client to the department it speaks for: a connector of the hub's "
        "federation, e.g. market (null unbinds)."
    )
    async def set_client_department(
        self, info: strawberry.Info, client_id: str, department: Optional[str] = None
    ) -> Client:
        return Client.of(await _client_operations(info).set_client_department(client_id, department))

    # ---- purposes ---------------------------------------------------------------------
    @strawberry.mutation(description="Define a purpose (code: a-z 0-9 . _ -).")
    async def define_purpose(self, info: strawberry.Info, code: str, label: str, description: str = "") -> Purpose:
        return Purpose.of(await _ctx(info).operations.define_purpose(code, label, description))

    @strawberry.mutation(description="Retire a purpose: no longer given to clients; declaring it grants nothing.")
    async def retire_purpose(self, info: strawberry.Info, code: str) -> Purpose:
        return Purpose.of(await _ctx(info).operations.retire_purpose(code))

    # ---- consents ---------------------------------------------------------------------
    @strawberry.mutation(description="Record a natural person's consent; the purpose must be among the client's.")
    async def register_consent(
        self,
        info: strawberry.Info,
        subject: str,
        client_id: str,
        purpose: str,
        expires_at: dt.datetime,
        reference: str = "",
    ) -> Consent:
        return Consent.of(await _ctx(info).operations.register_consent(subject, client_id, purpose, expires_at, reference))

    @strawberry.mutation(description="Revoke a consent from now on (it stays on file).")
    async def revoke_consent(self, info: strawberry.Info, id: int) -> Consent:
        return Consent.of(await _ctx(info).operations.revoke_consent(id))

    # ---- objections -------------------------------------------------------------------
    @strawberry.mutation(description="File an objection to one record on the subject's behalf (the record is flagged).")
    async def file_objection(
        self, info: strawberry.Info, subject: str, family: str, record_ref: str, reason: str, grounds: str = "wrong",
        department: Optional[str] = None,
    ) -> Objection:
        return Objection.of(
            await _ctx(info).operations.file_objection(subject, family, record_ref, reason, grounds=grounds, department=department)
        )

    @strawberry.mutation(description="Close an open objection: corrected, upheld (the record stands) or withdrawn, with a note.")
    async def close_objection(self, info: strawberry.Info, id: int, outcome: str, note: str = "") -> Objection:
        return Objection.of(await _ctx(info).operations.close_objection(id, outcome, note))

    # ---- policy -----------------------------------------------------------------------
    @strawberry.mutation(description="Set a field's class (`*`: the whole family); with `kind`, for that client kind only.")
    async def set_field_class(
        self,
        info: strawberry.Info,
        family: str,
        field: str,
        disclosure_class: str,
        reason: str,
        kind: Optional[str] = None,
        confirm_widening: bool = False,
    ) -> PolicyVersion:
        ctx = _ctx(info)
        stored = await ctx.policy.set_field_class(
            family, field, disclosure_class, kind, reason, confirm_widening=confirm_widening
        )
        return PolicyVersion.of(stored, ctx.policy.history)

    @strawberry.mutation(description="Remove a client kind's override of a field (`*`: the whole family).")
    async def clear_override(
        self, info: strawberry.Info, family: str, field: str, kind: str, reason: str, confirm_widening: bool = False
    ) -> PolicyVersion:
        ctx = _ctx(info)
        stored = await ctx.policy.clear_override(family, field, kind, reason, confirm_widening=confirm_widening)
        return PolicyVersion.of(stored, ctx.policy.history)

    @strawberry.mutation(description="Set (or, with mask null, remove) a field's masking transform for an audience.")
    async def set_mask(
        self, info: strawberry.Info, family: str, field: str, audience: str, reason: str, mask: Optional[str] = None
    ) -> PolicyVersion:
        ctx = _ctx(info)
        return PolicyVersion.of(await ctx.policy.set_mask(family, field, audience, mask, reason), ctx.policy.history)

    @strawberry.mutation(description="Set the classes a scope grants (classes null removes the scope).")
    async def set_scope_classes(
        self, info: strawberry.Info, scope: str, reason: str, classes: Optional[list[str]] = None,
        confirm_widening: bool = False,
    ) -> PolicyVersion:
        ctx = _ctx(info)
        stored = await ctx.policy.set_scope_classes(scope, classes, reason, confirm_widening=confirm_widening)
        return PolicyVersion.of(stored, ctx.policy.history)

    @strawberry.mutation(
        description="Store a whole policy document (TOML) as the next version, activated; one that widens "
        "disclosure needs confirmWidening: true."
    )
    async def import_policy(
        self, info: strawberry.Info, toml: str, reason: str, confirm_widening: bool = False
    ) -> PolicyVersion:
        ctx = _ctx(info)
        stored = await ctx.policy.import_policy(toml, reason, confirm_widening=confirm_widening)
        return PolicyVersion.of(stored, ctx.policy.history)

    @strawberry.mutation(
        description="Make a stored version the active one again (a new activation); one that widens disclosure "
        "against the active version needs confirmWidening: true."
    )
    async def activate_policy_version(
        self, info: strawberry.Info, version: str, reason: str, confirm_widening: bool = False
    ) -> PolicyVersion:
        ctx = _ctx(info)
        stored = await ctx.policy.activate(version, reason, confirm_widening=confirm_widening)
        return PolicyVersion.of(stored, ctx.policy.history)


def bad_user_input(error: GraphQLError) -> dict[str, Any] | None:
    """The formatted error for refused input (`AdminInputError`), else None."""
    if not isinstance(error.original_error, AdminInputError):
        return None
    formatted: dict[str, Any] = {"message": str(error.original_error), "extensions": {"code": "BAD_USER_INPUT"}}
    if error.path:
        formatted["path"] = list(error.path)
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    return formatted


class AdminSchema(strawberry.Schema):
    """Logs only unexpected errors: refused input is part of the answer, not of the server log."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, (GraphQLError, AdminInputError)):
                log.error("unexpected error at %s", error.path, exc_info=original)


def _extensions() -> list[Any]:
    limits = AUTHENTICATED_LIMITS
    return [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: QueryGuard(limits),
        lambda: ValidationCache(maxsize=256),
    ]


ADMIN_SCHEMA = AdminSchema(query=Query, mutation=Mutation, extensions=_extensions())

