"""`AdminOperations`: the administrative changes to clients, purposes, consents and objections.

The admin API (`/admin/graphql`) and the CLI (`xinlian clients|purposes|consents|objections`)
both change hub state through this one class, so they validate alike and record alike: every
input is checked before anything is written (bad input raises `AdminInputError` and changes
nothing), and every change appends an action — `{"action": "createClient", "client_id": ...}`
— to `actions`, which the caller writes into the audit entry of the request or command.

Scopes are checked against the known ones: the active policy's scopes plus `admin`
(`known_scopes`); `credit:autorized` is refused, naming the known ones. A client scope that
widens what the client may see — `admin` for a kind whose default lacks it, or scopes granting
a class the client's current scope (its kind's default, for a new client) does not — is refused
unless `confirm_widening=True` (CLI `--confirm-widening`, admin API `confirmWidening: true`); a
confirmed widening's action carries `warning`, which lands in the audit entry.

A `department` client speaks for one department, named by its connector's name in the
federation (`create_client(department=...)`, `set_client_department`). When the operations know
the federation's connector names (`departments`: the admin API passes the running hub's, the CLI
those of the data directory's connectors file), a name that is not one of them is refused,
naming the known ones; without connectors only the name's form is checked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from xinlian.hub.auth.clients import (
    CLIENT_KINDS,
    ClientError,
    ClientRegistry,
    check_department,
    default_scope,
    department_refused,
    normalise_scope,
)
from xinlian.hub.cases.model import Case, CaseInputError, CaseNotFound
from xinlian.hub.credit.model import CreditInputError
from xinlian.hub.governance import (
    ConsentBook,
    ConsentError,
    ObjectionError,
    ObjectionRegister,
    PurposeError,
    PurposeRegistry,
)
from xinlian.hub.governance.objections import check_subject
from xinlian.hub.governance.policy_versions import PolicyHistory, PolicyHistoryEmpty
from xinlian.hub.governance.purposes import check_code
from xinlian.hub.store import Store
from xinlian.hub.store.models import ClientRecord, ConsentRecord, PurposeRecord
from xinlian.policies import load_policy
from xinlian.policies.model import Policy

ClientChanged = Callable[[str], Awaitable[None]]
ADMIN_SCOPE = "admin"
CONFIRM_HINT = "confirm with --confirm-widening (admin API: confirmWidening: true)"


class AdminInputError(ValueError):
    """An administrative change refused as asked (unknown client, malformed code, ...): nothing changed."""


def _refused(exc: Exception) -> AdminInputError:
    return AdminInputError(str(exc))


INPUT_ERRORS = (ClientError, PurposeError, ConsentError, CaseInputError, AdminInputError, CreditInputError)


def split_codes(text: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Purpose codes from "a,b" / "a b" / a list, de-duplicated, in order."""
    if text is None:
        return []
    items = text if isinstance(text, (list, tuple)) else text.replace(",", " ").split()
    return list(dict.fromkeys(item.strip() for item in items if item and item.strip()))


class AdminOperations:
    """Validated changes on the hub store made by one administrator (`by`, a client id or "cli")."""

    def __init__(
        self,
        store: Store,
        by: str,
        on_client_change: ClientChanged | None = None,
        actions: list[dict[str, Any]] | None = None,
        policy_path: Path | None = None,
        objections: ObjectionRegister | None = None,
        departments: Iterable[str] | None = None,
    ) -> None:
        self.store = store
        self.by = by
        self.registry = ClientRegistry(store)
        self.purposes = PurposeRegistry(store)
        self.consents = ConsentBook(store)
        # the hub's own register (its open-objection flags change at once), or one of the CLI's
        self.objections = objections or ObjectionRegister(store)
        self.actions: list[dict[str, Any]] = [] if actions is None else actions
        self._on_client_change = on_client_change
        self._policy_path = policy_path  # the policy file the hub seeds from, for a store without versions
        # the federation's connector names a department client may speak for (None or empty: not checked)
        self.departments: frozenset[str] = frozenset(departments or ())

    async def _policy(self) -> Policy:
        try:
            return (await PolicyHistory(self.store).active()).policy
        except PolicyHistoryEmpty:
            return load_policy(self._policy_path)

    async def known_scopes(self) -> list[str]:
        """The scopes a client may be given: the active policy's, plus `admin`."""
        return sorted({*(await self._policy()).scopes, ADMIN_SCOPE})

    async def _checked_scope(self, scope: str, before: str, who: str, confirm: bool) -> tuple[str, str | None]:
        """`scope` normalised and checked against the known scopes, and the widening warning (if confirmed)."""
        try:
            scope = normalise_scope(scope)
        except ClientError as exc:
            raise _refused(exc) from None
        policy = await self._policy()
        known = {*policy.scopes, ADMIN_SCOPE}
        unknown = [t for t in scope.split() if t not in known]
        if unknown:
            raise AdminInputError(
                f"unknown scope {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
            )
        new, old = frozenset(scope.split()), frozenset(before.split())
        wider: list[str] = []
        if ADMIN_SCOPE in new - old:
            wider.append(f"{who} becomes an administrator (scope admin)")
        more = policy.granted(new) - policy.granted(old)
        if more:
            wider.append(f"{who} may now see {', '.join(sorted(c.value for c in more))} fields")
        if not wider:
            return scope, None
        text = "widens access: " + "; ".join(wider)
        if not confirm:
            raise AdminInputError(f"{text}; {CONFIRM_HINT}")
        return scope, text

    def _record(self, action: str, **targets: Any) -> None:
        self.actions.append({"action": action, **{k: v for k, v in targets.items() if v is not None}})

    async def _changed(self, client_id: str) -> None:
        if self._on_client_change is not None:
            await self._on_client_change(client_id)

    async def client(self, client_id: str) -> ClientRecord:
        record = await self.registry.get(client_id)
        if record is None:
            raise AdminInputError(f"no client {client_id!r}")
        return record

    async def _active_purposes(self, codes: list[str]) -> list[str]:
        for code in codes:
            try:
                check_code(code)
            except PurposeError as exc:
                raise _refused(exc) from None
        active = await self.purposes.active_codes(codes)
        unknown = [c for c in codes if c not in active]
        if unknown:
            raise AdminInputError(f"unknown or retired purposes: {', '.join(unknown)}")
        return codes

    def _checked_department(self, department: str) -> str:
        """`department` in its stored form, and one of the federation's connectors if they are known."""
        try:
            name = check_department(department)
        except ClientError as exc:
            raise _refused(exc) from None
        if self.departments and name not in self.departments:
            raise AdminInputError(
                f"unknown department {name!r}: not a connector of this hub's federation "
                f"(known: {', '.join(sorted(self.departments))})"
            )
        return name

    # ---- clients -----------------------------------------------------------------------
    async def create_client(
        self,
        name: str,
        kind: str,
        scope: str | None = None,
        purposes: list[str] | None = None,
        subject_id: str | None = None,
        client_id: str | None = None,
        *,
        department: str | None = None,
        confirm_widening: bool = False,
    ) -> tuple[ClientRecord, str]:
        """Register a client with its purposes and subject or department; return it and its secret (shown once)."""
        if kind not in CLIENT_KINDS:
            raise AdminInputError(f"unknown client kind {kind!r} (one of: {', '.join(CLIENT_KINDS)})")
        scope, warning = await self._checked_scope(
            default_scope(kind) if scope is None else scope, default_scope(kind), f"a new {kind} client", confirm_widening
        )
        wanted = await self._active_purposes(split_codes(purposes))
        if subject_id is not None:
            if kind != "subject":
                raise AdminInputError(f"only a client of kind 'subject' speaks for a subject (this one is {kind!r})")
            try:
                subject_id = check_subject(subject_id)
            except ObjectionError as exc:
                raise _refused(exc) from None
        department = self._new_department(kind, department)
        try:
            new_id, secret = await self.registry.create(name, kind, scope, client_id=client_id, department=department)
        except ClientError as exc:
            raise _refused(exc) from None
        try:
            if wanted:
                await self.registry.set_purposes(new_id, wanted)
            if subject_id is not None:
                await self.registry.set_subject(new_id, subject_id)
        except BaseException as exc:
            await self.registry.remove(new_id)  # all or nothing
            if isinstance(exc, ClientError):
                raise _refused(exc) from None
            raise
        self._record(
            "createClient", client_id=new_id, kind=kind, scope=scope, purposes=wanted or None, subject_id=subject_id,
            department=department, warning=warning,
        )
        return await self.client(new_id), secret

    def _new_department(self, kind: str, department: str | None) -> str | None:
        """A new client's department, checked (None: none given, or only blanks)."""
        if department is None or not department.strip():
            return None
        if kind != "department":
            raise AdminInputError(f"only a client of kind 'department' speaks for a department (this one is {kind!r})")
        return self._checked_department(department)

    async def create_client_with_keys(
        self, name: str, kind: str, jwks: str, scope: str | None = None, client_id: str | None = None, *,
        department: str | None = None, confirm_widening: bool = False,
    ) -> ClientRecord:
        """Register a `private_key_jwt` client with its PUBLIC key(s): no secret is issued."""
        if kind not in CLIENT_KINDS:
            raise AdminInputError(f"unknown client kind {kind!r} (one of: {', '.join(CLIENT_KINDS)})")
        scope, warning = await self._checked_scope(
            default_scope(kind) if scope is None else scope, default_scope(kind), f"a new {kind} client", confirm_widening
        )
        department = self._new_department(kind, department)
        try:
            new_id = await self.registry.create_with_keys(
                name, kind, jwks, scope, client_id=client_id, department=department
            )
        except ClientError as exc:
            raise _refused(exc) from None
        record = await self.client(new_id)
        kids = [key["kid"] for key in json.loads(record.jwks or "{}").get("keys", [])]
        self._record(
            "createClient", client_id=new_id, kind=kind, scope=record.scope, auth_method="private_key_jwt", kids=kids,
            department=department, warning=warning,
        )
        return record

    async def rotate_secret(self, client_id: str) -> str:
        await self.client(client_id)
        try:
            secret = await self.registry.rotate_secret(client_id)
        except ClientError as exc:
            raise _refused(exc) from None
        if secret is None:
            raise AdminInputError(f"no client {client_id!r}")
        self._record("rotateClientSecret", client_id=client_id)
        await self._changed(client_id)
        return secret

    async def disable_client(self, client_id: str) -> ClientRecord:
        if not await self.registry.disable(client_id):
            raise AdminInputError(f"no client {client_id!r}")
        self._record("disableClient", client_id=client_id)
        await self._changed(client_id)
        return await self.client(client_id)

    async def enable_client(self, client_id: str) -> ClientRecord:
        if not await self.registry.enable(client_id):
            raise AdminInputError(f"no client {client_id!r}")
        self._record("enableClient", client_id=client_id)
        await self._changed(client_id)
        return await self.client(client_id)

    async def set_client_scope(self, client_id: str, scope: str, *, confirm_widening: bool = False) -> ClientRecord:
        current = await self.client(client_id)
        scope, warning = await self._checked_scope(
            scope, current.scope or "", f"client {client_id!r} ({current.kind})", confirm_widening
        )
        try:
            changed = await self.registry.set_scope(client_id, scope)
        except ClientError as exc:
            raise _refused(exc) from None
        if not changed:
            raise AdminInputError(f"no client {client_id!r}")
        record = await self.client(client_id)
        self._record("setClientScope", client_id=client_id, scope=record.scope, warning=warning)
        await self._changed(client_id)
        return record

    async def set_client_purposes(self, client_id: str, purposes: list[str] | str) -> ClientRecord:
        await self.client(client_id)
        wanted = await self._active_purposes(split_codes(purposes))
        try:
            await self.registry.set_purposes(client_id, wanted)
        except ClientError as exc:
            raise _refused(exc) from None
        self._record("setClientPurposes", client_id=client_id, purposes=wanted)
        await self._changed(client_id)
        return await self.client(client_id)

    async def set_client_subject(self, client_id: str, subject_id: str | None) -> ClientRecord:
        await self.client(client_id)
        subject_id = subject_id.strip() if subject_id and subject_id.strip() else None
        try:
            await self.registry.set_subject(client_id, subject_id)
        except ClientError as exc:
            raise _refused(exc) from None
        record = await self.client(client_id)
        self._record("setClientSubject", client_id=client_id, subject_id=record.subject_id or "")
        await self._changed(client_id)
        return record

    async def set_client_department(self, client_id: str, department: str | None) -> ClientRecord:
        """Bind a `department` client to the department it speaks for; None (or blanks) unbinds."""
        current = await self.client(client_id)
        wanted: str | None = None
        if department is not None and department.strip():
            if current.kind != "department":
                raise AdminInputError(department_refused(client_id, current.kind))
            wanted = self._checked_department(department)
        try:
            await self.registry.set_department(client_id, wanted)
        except ClientError as exc:
            raise _refused(exc) from None
        record = await self.client(client_id)
        self._record("setClientDepartment", client_id=client_id, department=record.department or "")
        await self._changed(client_id)
        return record

    # ---- purposes ----------------------------------------------------------------------
    async def define_purpose(self, code: str, label: str, description: str = "") -> PurposeRecord:
        try:
            record = await self.purposes.define(code, label, description)
        except PurposeError as exc:
            raise _refused(exc) from None
        self._record("definePurpose", code=record.code, label=record.label)
        return record

    async def retire_purpose(self, code: str) -> PurposeRecord:
        if not await self.purposes.retire(code):
            raise AdminInputError(f"no purpose {code!r}")
        self._record("retirePurpose", code=code)
        record = await self.purposes.get(code)
        assert record is not None
        return record

    # ---- consents ----------------------------------------------------------------------
    async def register_consent(
        self, subject: str, client_id: str, purpose: str, expires_at: dt.datetime, reference: str = ""
    ) -> ConsentRecord:
        """Record a natural person's consent; the purpose must be among the client's purposes."""
        record = await self.client(client_id)
        found = await self.purposes.get(purpose)
        if found is None or found.retired:
            raise AdminInputError(f"no purpose {purpose!r}" if found is None else f"purpose {purpose!r} is retired")
        if purpose not in (record.purposes or "").split():
            raise AdminInputError(
                f"purpose {purpose!r} is not among client {client_id!r}'s purposes "
                f"({record.purposes or 'none'}); set them first"
            )
        try:
            consent = await self.consents.grant(subject, client_id, purpose, expires_at, self.by, reference.strip())
        except ConsentError as exc:
            raise _refused(exc) from None
        self._record(
            "registerConsent", consent_id=consent.id, subject=consent.subject, client_id=client_id,
            purpose=purpose, reference=consent.reference or None,
        )
        return consent

    async def revoke_consent(self, consent_id: int) -> ConsentRecord:
        found = await self.consents.get(consent_id)
        if found is None:
            raise AdminInputError(f"no consent {consent_id}")
        if not await self.consents.revoke(consent_id):
            raise AdminInputError(f"consent {consent_id} was already revoked")
        self._record("revokeConsent", consent_id=consent_id, subject=found.subject, client_id=found.client_id)
        consent = await self.consents.get(consent_id)
        assert consent is not None
        return consent

    # ---- objections --------------------------------------------------------------------
    async def file_objection(
        self, subject: str, family: str, record_ref: str, reason: str, *, grounds: str = "wrong", department: str | None = None
    ) -> Case:
        """The credit office files an objection on the subject's behalf (an objection case)."""
        if department is not None and self.departments and department not in self.departments:
            raise AdminInputError(f"department: one of {', '.join(sorted(self.departments))}")
        try:
            objection = await self.objections.file(
                subject, family, record_ref, reason, self.by, grounds=grounds, department=department
            )
        except CaseInputError as exc:
            raise _refused(exc) from None
        self._record(
            "fileObjection", objection_id=objection.id, subject=objection.subject, family=family,
            record_ref=record_ref.strip(), reason=objection.description, grounds=grounds, department=department,
        )
        return objection

    async def close_objection(self, objection_id: int, outcome: str, note: str = "") -> Case:
        try:
            closed = await self.objections.close(objection_id, outcome, note, self.by)
        except CaseNotFound:
            raise AdminInputError(f"no objection {objection_id}") from None
        except CaseInputError as exc:
            raise _refused(exc) from None
        self._record(
            "closeObjection", objection_id=objection_id, subject=closed.subject, outcome=outcome, note=note.strip() or None
        )
        return closed

    async def objection(self, objection_id: int) -> Case:
        try:
            found = await self.objections.cases.get(objection_id)
        except CaseNotFound:
            found = None
        if found is None or found.kind != "objection":
            raise AdminInputError(f"no objection {objection_id}")
        return found
