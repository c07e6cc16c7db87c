"""`PolicyHistory`: the disclosure policy's versions in the hub store, and which one is active.

Every version is a whole policy document (the canonical JSON of
`policies.loader.policy_document`) numbered 1, 2, 3 ... and named "v1", "v2", "v3" ...; it records
who made it, when, why, its parent (the version it was derived from) and the "what changed"
lines against that parent (`policies.changes.describe_diff`). Versions are never edited or
deleted. Activating a version adds a row to the activation history; the active version is the
latest activation, so re-activating an earlier version is one more row, never a rewrite.

Writers (`seed`, `change`, `import_text`, `activate`) take the store's policy lock
(`Store.exclusive`: a PostgreSQL advisory lock, SQLite's single writer), so hub processes and
CLI invocations sharing a store number versions without gaps or clashes. A change is applied to
the base document, validated with `parse_policy` and only then stored: bad input changes nothing.

Running hubs follow the latest activation within about a second (`hub.active_policy`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.store import Store, as_utc
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import PolicyActivation, PolicyVersionRecord
from xinlian.policies.changes import PolicyChange, PolicyChangeError, apply_changes, describe_diff
from xinlian.policies.loader import parse_policy, policy_document
from xinlian.policies.model import Policy, PolicyError

POLICY_LOCK = "xinlian.hub.policy.versions"
VERSIONS = table_of(PolicyVersionRecord)
ACTIVATIONS = table_of(PolicyActivation)
VERSION_REF = re.compile(r"[vV]?([1-9][0-9]{0,8})")
MAX_ACTOR_LENGTH = 64  # created_by / activated_by columns
DOCUMENT_KEYS = frozenset(
    {"version", "public_scope", "scopes", "fields", "overrides", "masks", "rows", "annotations", "credit", "cases"}
)
WRITE_ATTEMPTS = 5  # on a unique-key clash (two writers without a shared lock, e.g. MariaDB)

__all__ = [
    "PolicyActivationInfo",
    "PolicyChangeError",
    "PolicyHistory",
    "PolicyHistoryEmpty",
    "PolicyVersionInfo",
    "StoredPolicy",
    "version_name",
    "version_number",
]

T = TypeVar("T")
# Called inside the policy lock with the active policy (None: none yet) and the policy a write
# would store (or, for an activation, put in force); raises to refuse, and nothing is written.
# What an administrator's change widens is decided here, against the version really in force.
Vet = Callable[[Policy | None, Policy], None]


class PolicyHistoryEmpty(LookupError):
    """The store holds no policy version yet (the hub seeds one when it first starts)."""


def version_name(number: int) -> str:
    return f"v{number}"


def version_number(ref: str | int) -> int | None:
    """The number a version reference names ("v3", "V3", "3" or 3), or None if it names none."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref if ref > 0 else None
    match = VERSION_REF.fullmatch(str(ref).strip())
    return int(match.group(1)) if match else None


def canonical_document_text(document: dict[str, Any]) -> str:
    """The stored form of a policy document: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class PolicyVersionInfo:
    """One stored version, without its document (for listings)."""

    number: int
    version: str
    parent: int | None
    created_at: dt.datetime
    created_by: str
    reason: str
    changes: list[str]
    active: bool

    def to_document(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "version": self.version,
            "parent": version_name(self.parent) if self.parent else None,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "created_by": self.created_by,
            "reason": self.reason,
            "changes": list(self.changes),
            "active": self.active,
        }


@dataclass(frozen=True)
class StoredPolicy(PolicyVersionInfo):
    """One stored version with its document and the `Policy` it parses to (`policy.version` == version)."""

    policy: Policy
    document: dict[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {**super().to_document(), "document": self.document}


@dataclass(frozen=True)
class PolicyActivationInfo:
    """One activation: a version made active, by whom, when and why."""

    id: int
    number: int
    version: str
    activated_at: dt.datetime
    activated_by: str
    reason: str

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "activated_at": self.activated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "activated_by": self.activated_by,
            "reason": self.reason,
        }


def _same_model_same_version(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A rating snapshot names its model by version: a model whose indicators, weights or
    thresholds change keeps no version it had, or two snapshots of one version would mean two
    models. The models are compared as parsed (a stored document's spelling does not count)."""
    try:
        before = parse_policy(old, "old").credit.rating
        after = parse_policy(new, "new").credit.rating
    except PolicyError:
        return  # the new document was checked before; an old one that no longer parses has no say
    if before.version == after.version and before != after:
        raise PolicyChangeError(
            f"the rating model changed but kept its version {after.version!r}: give credit.rating a new "
            "version (rating snapshots name the model by it)"
        )


def _info(row: Any, active: int | None) -> PolicyVersionInfo:
    return PolicyVersionInfo(
        number=row.number,
        version=row.version,
        parent=row.parent,
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        reason=row.reason,
        changes=list(json.loads(row.changes or "[]")),
        active=row.number == active,
    )


def _stored(row: Any, active: int | None) -> StoredPolicy:
    document = json.loads(row.document)
    info = _info(row, active)
    return StoredPolicy(**vars(info), policy=parse_policy(document, row.version), document=document)


def _check_actor(by: str, reason: str) -> tuple[str, str]:
    by = (by or "").strip()
    reason = (reason or "").strip()
    if not by:
        raise PolicyChangeError("say who makes the change")
    if len(by) > MAX_ACTOR_LENGTH:
        raise PolicyChangeError(f"who makes the change: at most {MAX_ACTOR_LENGTH} characters")
    if not reason:
        raise PolicyChangeError("a policy change needs a reason")
    return by, reason


class PolicyHistory:
    """The policy versions of one hub store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- reading ---------------------------------------------------------------------------

    async def active_number(self) -> int | None:
        """The number of the active version (the latest activation), or None for an empty store."""
        async with self.store.engine.connect() as conn:
            return await self._active_number(conn)

    async def active(self) -> StoredPolicy:
        """The active version; `PolicyHistoryEmpty` if the store holds none."""
        async with self.store.engine.connect() as conn:
            number = await self._active_number(conn)
            row = await self._row(conn, number) if number is not None else None
        if row is None:
            raise PolicyHistoryEmpty("no policy version is active yet")
        return _stored(row, number)

    async def get(self, version: str | int) -> StoredPolicy | None:
        """A version by reference ("v3", "3" or 3), or None if there is no such version."""
        number = version_number(version)
        if number is None:
            return None
        async with self.store.engine.connect() as conn:
            row = await self._row(conn, number)
            active = await self._active_number(conn) if row is not None else None
        return _stored(row, active) if row is not None else None

    async def versions(self) -> list[PolicyVersionInfo]:
        """Every version, newest first, marking the active one."""
        v = VERSIONS.c
        query = select(v.number, v.version, v.parent, v.created_at, v.created_by, v.reason, v.changes)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(v.number.desc()))).all()
            active = await self._active_number(conn)
        return [_info(row, active) for row in rows]

    async def activations(self) -> list[PolicyActivationInfo]:
        """The activation history, newest first (the first one listed is in force)."""
        a = ACTIVATIONS.c
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(select(ACTIVATIONS).order_by(a.id.desc()))).all()
        return [
            PolicyActivationInfo(
                id=row.id,
                number=row.number,
                version=version_name(row.number),
                activated_at=as_utc(row.activated_at),
                activated_by=row.activated_by,
                reason=row.reason,
            )
            for row in rows
        ]

    async def diff(self, a: str | int, b: str | int) -> list[str]:
        """What changed from version `a` to version `b`, one line per leaf."""
        first, second = await self._require(a), await self._require(b)
        return describe_diff(first.document, second.document)

    # --- writing ---------------------------------------------------------------------------

    async def seed(self, policy: Policy, by: str, reason: str) -> StoredPolicy:
        """Store `policy` as v1 and activate it if the store holds no version; else the active one.

        Idempotent, and safe when several processes start on an empty store together: they
        take the policy lock in turn, and a unique-key clash is read as "someone else seeded".
        """
        try:
            return await self.active()
        except PolicyHistoryEmpty:
            pass
        by, reason = _check_actor(by, reason)
        document = policy_document(policy)
        parse_policy(document, version_name(1))  # the file's policy round-trips, or we stop here

        async def write(conn: AsyncConnection) -> None:
            if await self._active_number(conn) is not None:
                return
            latest = await self._latest_number(conn)
            if latest is None:
                await self._insert_version(conn, 1, document, None, by, reason, [])
                latest = 1
            await self._insert_activation(conn, latest, by, reason)  # a version without activation: activate it

        await self._locked(write)
        return await self.active()

    async def change(
        self,
        changes: Sequence[PolicyChange],
        by: str,
        reason: str,
        activate: bool = True,
        base: str | int | None = None,
        vet: Vet | None = None,
    ) -> StoredPolicy:
        """Apply `changes` to `base` (the active version by default) and store the next version.

        `PolicyChangeError` (nothing stored) for an empty reason, no changes, a change that
        changes nothing, an unknown family, field, class or version, or a result that is not a
        valid policy (e.g. a scope granting CONFIDENTIAL).
        """
        by, reason = _check_actor(by, reason)
        if not changes:
            raise PolicyChangeError("no changes given")

        async def write(conn: AsyncConnection) -> int:
            base_row = await self._base_row(conn, base)
            old = json.loads(base_row.document)
            new = apply_changes(old, changes)
            return await self._store_next(conn, old, new, base_row.number, by, reason, activate, vet)

        return await self._get_written(await self._locked(write))

    async def import_text(
        self, toml_text: str, by: str, reason: str, activate: bool = True, vet: Vet | None = None
    ) -> StoredPolicy:
        """Store a whole policy document (TOML) as the next version; its parent is the active one.

        The document's own `version` key, if any, is ignored: the store names versions.
        """
        by, reason = _check_actor(by, reason)
        try:
            document = tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyChangeError(f"policy TOML: {exc}") from None
        unknown = sorted(set(document) - DOCUMENT_KEYS)
        if unknown:
            raise PolicyChangeError(f"policy TOML: unknown top-level keys {unknown} (expected {sorted(DOCUMENT_KEYS)})")

        async def write(conn: AsyncConnection) -> int:
            base_row = await self._base_row(conn, None)
            return await self._store_next(
                conn, json.loads(base_row.document), document, base_row.number, by, reason, activate, vet
            )

        return await self._get_written(await self._locked(write))

    async def activate(self, version: str | int, by: str, reason: str, vet: Vet | None = None) -> StoredPolicy:
        """Make a stored version the active one (a new activation row); `PolicyChangeError` if it
        does not exist or is already active."""
        by, reason = _check_actor(by, reason)
        number = version_number(version)
        if number is None:
            raise PolicyChangeError(f"not a policy version: {version!r} (e.g. v3)")

        async def write(conn: AsyncConnection) -> int:
            target = await self._row(conn, number)
            if target is None:
                raise PolicyChangeError(f"no policy version {version_name(number)}")
            if await self._active_number(conn) == number:
                raise PolicyChangeError(f"{version_name(number)} is already active")
            if vet is not None:
                vet(await self._active_policy(conn), parse_policy(json.loads(target.document), version_name(number)))
            await self._insert_activation(conn, number, by, reason)
            return number

        return await self._get_written(await self._locked(write))

    # --- internals -------------------------------------------------------------------------

    async def _locked(self, write: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `write` in one transaction under the policy lock, retrying a unique-key clash."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                async with self.store.exclusive(POLICY_LOCK) as conn:
                    return await write(conn)
            except IntegrityError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.02 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_written(self, number: int) -> StoredPolicy:
        stored = await self.get(number)
        assert stored is not None
        return stored

    async def _require(self, ref: str | int) -> StoredPolicy:
        stored = await self.get(ref)
        if stored is None:
            raise PolicyChangeError(f"no policy version {ref!r}")
        return stored

    async def _base_row(self, conn: AsyncConnection, base: str | int | None) -> Any:
        if base is None:
            number = await self._active_number(conn)
            if number is None:
                raise PolicyHistoryEmpty("no policy version is active yet")
        else:
            number = version_number(base)
            if number is None:
                raise PolicyChangeError(f"not a policy version: {base!r} (e.g. v3)")
        row = await self._row(conn, number)
        if row is None:
            raise PolicyChangeError(f"no policy version {version_name(number)}")
        return row

    async def _store_next(
        self,
        conn: AsyncConnection,
        old: dict[str, Any],
        new: dict[str, Any],
        parent: int,
        by: str,
        reason: str,
        activate: bool,
        vet: Vet | None = None,
    ) -> int:
        number = (await self._latest_number(conn) or 0) + 1
        try:
            policy = parse_policy(new, version_name(number))
        except PolicyError as exc:
            raise PolicyChangeError(f"the changed policy is not valid: {exc}") from None
        if vet is not None:
            vet(await self._active_policy(conn), policy)
        document = policy_document(policy)
        lines = describe_diff(old, document)
        if not lines:
            raise PolicyChangeError(f"nothing changes: the result equals {version_name(parent)}")
        _same_model_same_version(old, document)
        await self._insert_version(conn, number, document, parent, by, reason, lines)
        if activate:
            await self._insert_activation(conn, number, by, reason)
        return number

    async def _insert_version(
        self,
        conn: AsyncConnection,
        number: int,
        document: dict[str, Any],
        parent: int | None,
        by: str,
        reason: str,
        lines: list[str],
    ) -> None:
        await conn.execute(
            insert(VERSIONS).values(
                number=number,
                version=version_name(number),
                document=canonical_document_text(document),
                parent=parent,
                created_at=dt.datetime.now(dt.timezone.utc),
                created_by=by,
                reason=reason,
                changes=json.dumps(lines, ensure_ascii=False),
            )
        )

    @staticmethod
    async def _insert_activation(conn: AsyncConnection, number: int, by: str, reason: str) -> None:
        await conn.execute(
            insert(ACTIVATIONS).values(
                number=number, activated_at=dt.datetime.now(dt.timezone.utc), activated_by=by, reason=reason
            )
        )

    @staticmethod
    async def _active_number(conn: AsyncConnection) -> int | None:
        a = ACTIVATIONS.c
        return (await conn.execute(select(a.number).order_by(a.id.desc()).limit(1))).scalar()

    async def _active_policy(self, conn: AsyncConnection) -> Policy | None:
        number = await self._active_number(conn)
        row = None if number is None else await self._row(conn, number)
        return None if row is None else parse_policy(json.loads(row.document), version_name(row.number))

    @staticmethod
    async def _latest_number(conn: AsyncConnection) -> int | None:
        return (await conn.execute(select(func.max(VERSIONS.c.number)))).scalar()

    @staticmethod
    async def _row(conn: AsyncConnection, number: int) -> Any:
        return (await conn.execute(select(VERSIONS).where(VERSIONS.c.number == number))).first()
