"""The client registry: the hub's OAuth2 clients in the hub store, with hashed secrets.

Client kinds and the scopes each kind gets by default:

| kind         | who                                          | default scope                         |
|--------------|----------------------------------------------|---------------------------------------|
| `department` | government departments (政府部门)            | `credit:public credit:shared`         |
| `bank`       | banks (银行)                                 | `credit:public credit:authorized`     |
| `agency`     | credit agencies (征信机构)                   | `credit:public credit:authorized`     |
| `platform`   | the regional credit platform (自治区平台)    | `credit:public credit:shared`         |
| `admin`      | hub administrators (管理员)                  | `admin credit:public credit:shared`   |
| `subject`    | credit subjects (信用主体) through the portal | `credit:public`                       |

Only a scrypt hash of each secret is stored (`client_secrets`); the secret itself is returned
once, by `create`, and never again. A client registered with `create_with_keys` has no secret
at all: it authenticates with `private_key_jwt` (RFC 7523), JWT assertions signed by one of its
registered public keys (`client_keys`), which `set_keys` replaces when the client rotates them.

Two clients speak for someone: a `subject` client for the credit subject it is bound to
(`set_subject`), a `department` client for its department (`set_department`), named as the
department's connector is named in the federation (`market`, `tax`, ...): it records credit
findings and listings for that department only. Whether the name is one of the running hub's
connectors is the admin layer's check (hub/admin/operations.py); here only its form.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import time
from typing import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from xinlian.hub.store import Store
from xinlian.hub.store.core import changed
from xinlian.hub.store.models import ClientRecord

from .client_keys import ClientKeyError, canonical_jwks, parse_client_jwks
from .client_secrets import MIN_SECRET_LENGTH, generate_secret, hash_secret, verify_nothing, verify_secret
from .revocation import revocation_list

CLIENT_KINDS: tuple[str, ...] = ("department", "bank", "agency", "platform", "admin", "subject")
DEFAULT_SCOPES: dict[str, str] = {
    "department": "credit:public credit:shared",
    "bank": "credit:public credit:authorized",
    "agency": "credit:public credit:authorized",
    "platform": "credit:public credit:shared",
    "admin": "admin credit:public credit:shared",
    "subject": "credit:public",
}
DEPARTMENT_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")  # a connector's name, e.g. "market"
CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,64}")  # no ':' (HTTP Basic), URL-safe
SCOPE_TOKEN_PATTERN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token
MAX_NAME_LENGTH = 200
SECRET_METHOD = "client_secret_basic"  # registered for secret clients; client_secret_post is also accepted
PRIVATE_KEY_JWT = "private_key_jwt"
NO_SECRET = ""  # the secret_hash of a private_key_jwt client: never verifies


class ClientError(ValueError):
    """A client cannot be created as asked (bad kind, scope, id or secret; id already taken)."""


def default_scope(kind: str) -> str:
    """The scope a client of `kind` gets when none is given."""
    if kind not in DEFAULT_SCOPES:
        raise ClientError(f"unknown client kind {kind!r} (one of: {', '.join(CLIENT_KINDS)})")
    return DEFAULT_SCOPES[kind]


def normalise_scope(scope: str) -> str:
    """`scope` as space-separated, de-duplicated scope tokens, in the order given."""
    tokens = scope.split()
    for token in tokens:
        if not SCOPE_TOKEN_PATTERN.fullmatch(token):
            raise ClientError(f"invalid scope token {token!r}")
    return " ".join(dict.fromkeys(tokens))


def check_department(department: str) -> str:
    """`department` (surrounding blanks removed) if it has the form of a connector's name: a
    lower-case letter, then up to 63 of `a-z 0-9 _ -`; otherwise `ClientError`."""
    name = department.strip()
    if not DEPARTMENT_PATTERN.fullmatch(name):
        raise ClientError(
            f"invalid department {department!r}: a department is named by its connector's name, "
            "a lower-case letter then up to 63 of a-z 0-9 _ - (e.g. 'market')"
        )
    return name


def department_refused(client_id: str, kind: str) -> str:
    """Why a client of `kind` cannot be bound to a department."""
    return f"only a client of kind 'department' speaks for a department ({client_id!r} is {kind!r})"


class ClientRegistry:
    """Create, find, list, disable and authenticate the hub's clients."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(
        self,
        name: str,
        kind: str,
        scope: str | None = None,
        client_id: str | None = None,
        secret: str | None = None,
        department: str | None = None,
    ) -> tuple[str, str]:
        """Register a client; return `(client_id, secret)`. The secret is not recoverable later.

        `department`: the department a `department` client speaks for (see `set_department`).
        """
        record = self._new_record(name, kind, scope, client_id, department)
        if secret is None:
            secret = generate_secret()
        elif len(secret) < MIN_SECRET_LENGTH:
            raise ClientError(f"a client secret must be at least {MIN_SECRET_LENGTH} characters")
        record.secret_hash = await asyncio.to_thread(hash_secret, secret)
        await self._insert(record)
        return record.client_id, secret

    async def create_with_keys(
        self,
        name: str,
        kind: str,
        jwks: str | bytes | dict[str, object],
        scope: str | None = None,
        client_id: str | None = None,
        department: str | None = None,
    ) -> str:
        """Register a `private_key_jwt` client with its public JWK (Set); return its id. No secret."""
        record = self._new_record(name, kind, scope, client_id, department)
        record.secret_hash = NO_SECRET
        record.token_endpoint_auth_method = PRIVATE_KEY_JWT
        record.jwks = _checked_jwks(jwks)
        await self._insert(record)
        return record.client_id

    async def set_keys(self, client_id: str, jwks: str | bytes | dict[str, object]) -> bool:
        """Replace a `private_key_jwt` client's public keys. False if there is no such client.

        This is the keyed client's rotation (as `rotate_secret` is a secret client's): keys are
        replaced because the old private key may be lost, so tokens issued before are refused
        from then on (`tokens_valid_after`), like after a secret rotation.
        """
        stored = _checked_jwks(jwks)
        async with self.store.session() as session:
            record = await session.scalar(select(ClientRecord).where(ClientRecord.client_id == client_id))
            if record is None:
                return False
            if record.token_endpoint_auth_method != PRIVATE_KEY_JWT:
                raise ClientError(f"client {client_id!r} authenticates with a secret, not with keys")
            record.jwks = stored
            cutoff = _token_cutoff()
            record.tokens_valid_after = cutoff
            await session.commit()
        revocation_list(self.store).note_cutoff(client_id, cutoff.timestamp())
        await _cutoff_passed(cutoff)
        return True

    @staticmethod
    def _new_record(
        name: str, kind: str, scope: str | None, client_id: str | None, department: str | None = None
    ) -> ClientRecord:
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise ClientError(f"a client name must be 1 to {MAX_NAME_LENGTH} characters")
        kind_scope = default_scope(kind)  # also rejects an unknown kind
        scope = normalise_scope(kind_scope if scope is None else scope)
        if not scope:
            raise ClientError("a client needs at least one scope")
        if client_id is None:
            client_id = f"{kind}-{generate_secret()[:16]}"
        elif not CLIENT_ID_PATTERN.fullmatch(client_id):
            raise ClientError("a client id is 1 to 64 of A-Z a-z 0-9 . _ ~ -")
        if department is not None:
            if kind != "department":
                raise ClientError(department_refused(client_id, kind))
            department = check_department(department)
        return ClientRecord(
            client_id=client_id,
            name=name,
            kind=kind,
            secret_hash=NO_SECRET,
            scope=scope,
            disabled=False,
            created_at=dt.datetime.now(dt.timezone.utc),
            token_endpoint_auth_method=SECRET_METHOD,
            jwks=None,
            department=department,
        )

    async def _insert(self, record: ClientRecord) -> None:
        async with self.store.session() as session:
            session.add(record)
            try:
                await session.commit()
            except IntegrityError:
                raise ClientError(f"client id {record.client_id!r} is already registered") from None

    async def get(self, client_id: str) -> ClientRecord | None:
        """The client with this id, disabled or not."""
        async with self.store.session() as session:
            return await session.scalar(select(ClientRecord).where(ClientRecord.client_id == client_id))

    async def list(self) -> list[ClientRecord]:
        """Every client, oldest first."""
        async with self.store.session() as session:
            rows = await session.scalars(select(ClientRecord).order_by(ClientRecord.created_at, ClientRecord.id))
            return list(rows)

    async def rotate_secret(self, client_id: str, secret: str | None = None) -> str | None:
        """Give a secret client a new secret (the old one stops at once); None if no such client.

        Tokens issued before the rotation are refused from then on (`tokens_valid_after`: at once
        in this process, within the revocation refresh interval in others); tokens issued with
        the new secret work.
        """
        if secret is None:
            secret = generate_secret()
        elif len(secret) < MIN_SECRET_LENGTH:
            raise ClientError(f"a client secret must be at least {MIN_SECRET_LENGTH} characters")
        digest = await asyncio.to_thread(hash_secret, secret)
        async with self.store.session() as session:
            record = await session.scalar(select(ClientRecord).where(ClientRecord.client_id == client_id))
            if record is None:
                return None
            if record.token_endpoint_auth_method == PRIVATE_KEY_JWT:
                raise ClientError(f"client {client_id!r} authenticates with keys; use set_keys to rotate them")
            record.secret_hash = digest
            cutoff = _token_cutoff()
            record.tokens_valid_after = cutoff
            await session.commit()
        revocation_list(self.store).note_cutoff(client_id, cutoff.timestamp())
        await _cutoff_passed(cutoff)
        return secret

    async def set_scope(self, client_id: str, scope: str) -> bool:
        """Replace the scopes a client may ask for (new tokens only). False if no such client."""
        scope = normalise_scope(scope)
        if not scope:
            raise ClientError("a client needs at least one scope")
        return await self._set(client_id, scope=scope)

    async def set_purposes(self, client_id: str, purposes: Sequence[str]) -> bool:
        """Replace the purposes a client may declare (they must be defined and not retired)."""
        wanted = list(dict.fromkeys(p.strip() for p in purposes if p.strip()))
        if wanted:
            from xinlian.hub.governance.purposes import PurposeRegistry

            active = await PurposeRegistry(self.store).active_codes(wanted)
            unknown = [p for p in wanted if p not in active]
            if unknown:
                raise ClientError(f"unknown or retired purposes: {', '.join(unknown)}")
        return await self._set(client_id, purposes=" ".join(wanted))

    async def set_subject(self, client_id: str, subject_id: str | None) -> bool:
        """Bind a `subject` client to the credit subject it speaks for (validated USCC or resident ID)."""
        if subject_id is not None:
            from xinlian.hub.governance.objections import ObjectionError, check_subject

            try:
                subject_id = check_subject(subject_id)
            except ObjectionError as exc:
                raise ClientError(str(exc)) from None
            record = await self.get(client_id)
            if record is not None and record.kind != "subject":
                raise ClientError(f"only a client of kind 'subject' speaks for a subject ({client_id!r} is {record.kind!r})")
        return await self._set(client_id, subject_id=subject_id)

    async def set_department(self, client_id: str, department: str | None) -> bool:
        """Bind a `department` client to the department it speaks for (its connector's name in the
        federation, e.g. "market"), or unbind it (None). False if there is no such client.

        A client of another kind cannot be bound (`ClientError`); unbinding is always allowed.
        """
        if department is not None:
            department = check_department(department)
            record = await self.get(client_id)
            if record is not None and record.kind != "department":
                raise ClientError(department_refused(client_id, record.kind))
        return await self._set(client_id, department=department)

    async def enable(self, client_id: str) -> bool:
        """Accept a disabled client again. False if no such client."""
        return await self._set(client_id, disabled=False)

    async def _set(self, client_id: str, **values: object) -> bool:
        async with self.store.session() as session:
            result = await session.execute(update(ClientRecord).where(ClientRecord.client_id == client_id).values(**values))
            await session.commit()
            return changed(result)

    async def disable(self, client_id: str) -> bool:
        """Refuse this client from now on, and every token issued to it before now for good:
        enabling it again does not revive them (`tokens_valid_after`).

        Returns False if there is no such client.
        """
        cutoff = _token_cutoff()
        async with self.store.session() as session:
            result = await session.execute(
                update(ClientRecord).where(ClientRecord.client_id == client_id).values(disabled=True, tokens_valid_after=cutoff)
            )
            await session.commit()
            done = changed(result)
        if done:
            revocation_list(self.store).note_cutoff(client_id, cutoff.timestamp())
        await _cutoff_passed(cutoff)
        return done

    async def remove(self, client_id: str) -> bool:
        """Delete the client (the demo uses it to re-create its clients). False if absent."""
        async with self.store.session() as session:
            result = await session.execute(delete(ClientRecord).where(ClientRecord.client_id == client_id))
            await session.commit()
            return changed(result)

    async def authenticate(self, client_id: str, secret: str) -> ClientRecord | None:
        """The client if `secret` is its secret and it is not disabled; otherwise None."""
        record = await self.get(client_id)
        if record is None:
            await asyncio.to_thread(verify_nothing)
            return None
        matches = await asyncio.to_thread(verify_secret, secret, record.secret_hash)
        if not matches or record.disabled or record.token_endpoint_auth_method == PRIVATE_KEY_JWT:
            return None
        return record


def _token_cutoff() -> dt.datetime:
    """The cut-off for tokens issued until now: the next whole second.

    Token `iat`s are whole seconds (a token issued at 12.7 s says 12): every token issued until
    now has an `iat` before the next whole second, and `_cutoff_passed` makes every token issued
    after the change carry one at or after it.
    """
    now = time.time()
    return dt.datetime.fromtimestamp(math.floor(now) + 1, dt.timezone.utc)


async def _cutoff_passed(cutoff: dt.datetime) -> None:
    """Return once the clock has reached `cutoff` (at most a second): a token issued from then on is valid."""
    remaining = cutoff.timestamp() - time.time()
    if remaining > 0:
        await asyncio.sleep(remaining + 0.01)


def _checked_jwks(jwks: str | bytes | dict[str, object]) -> str:
    try:
        return canonical_jwks(parse_client_jwks(jwks))  # type: ignore[arg-type]
    except ClientKeyError as exc:
        raise ClientError(f"client keys refused: {exc}") from None
