"""`ConsentBook`: natural persons' consents (授权书) to a client receiving their AUTHORIZED data.

A consent names the subject (a resident ID), the client, the purpose, when it was granted and
when it expires, who recorded it and the reference of the signed form. It is never deleted:
revoking sets `revoked_at`. A consent counts from `granted_at` until the earlier of
`expires_at` and `revoked_at`.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import or_, select, update

from xinlian.hub.store import Store, as_utc
from xinlian.hub.store.core import changed
from xinlian.hub.store.models import ConsentRecord
from xinlian.schema.identifiers import InvalidIdentifier, validate_resident_id

MAX_DAYS = 3 * 366  # a consent lasts at most about three years


class ConsentError(ValueError):
    """A consent cannot be recorded as asked."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ConsentBook:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def grant(
        self,
        subject: str,
        client_id: str,
        purpose: str,
        expires_at: dt.datetime,
        recorded_by: str,
        reference: str = "",
        granted_at: dt.datetime | None = None,
    ) -> ConsentRecord:
        """Record a consent. The caller checks that the client and purpose exist."""
        try:
            subject = validate_resident_id(subject)
        except InvalidIdentifier as exc:
            raise ConsentError(f"subject: {exc} (consents are for natural persons)") from None
        granted = as_utc(granted_at or _now())
        expires = as_utc(expires_at)
        if expires <= granted:
            raise ConsentError("a consent must expire after it is granted")
        if expires - granted > dt.timedelta(days=MAX_DAYS):
            raise ConsentError(f"a consent may last at most {MAX_DAYS} days")
        if len(reference) > 200:
            raise ConsentError("a consent reference is at most 200 characters")
        record = ConsentRecord(
            subject=subject,
            client_id=client_id,
            purpose=purpose,
            granted_at=granted,
            expires_at=expires,
            revoked_at=None,
            recorded_by=recorded_by,
            reference=reference,
        )
        async with self.store.session() as session:
            session.add(record)
            await session.commit()
            await session.refresh(record)
        return record

    async def revoke(self, consent_id: int, at: dt.datetime | None = None) -> bool:
        """Revoke a consent from `at` (now); False if there is no such consent or it was revoked."""
        async with self.store.session() as session:
            result = await session.execute(
                update(ConsentRecord)
                .where(ConsentRecord.id == consent_id, ConsentRecord.revoked_at.is_(None))
                .values(revoked_at=as_utc(at or _now()))
            )
            await session.commit()
            return changed(result)

    async def get(self, consent_id: int) -> ConsentRecord | None:
        async with self.store.session() as session:
            return await session.get(ConsentRecord, consent_id)

    async def list(self, subject: str | None = None, client_id: str | None = None, limit: int = 200) -> list[ConsentRecord]:
        """Consents, newest first, optionally for one subject and/or client."""
        query = select(ConsentRecord).order_by(ConsentRecord.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(ConsentRecord.subject == subject)
        if client_id is not None:
            query = query.where(ConsentRecord.client_id == client_id)
        async with self.store.session() as session:
            return list(await session.scalars(query))

    async def consenting(
        self, subjects: Iterable[str], client_id: str, purpose: str, at: dt.datetime | None = None
    ) -> set[str]:
        """Those of `subjects` with a consent for (client, purpose) in force at `at` (now)."""
        wanted = list(dict.fromkeys(subjects))
        if not wanted:
            return set()
        moment = as_utc(at or _now())
        c = ConsentRecord
        query = select(c.subject).where(
            c.subject.in_(wanted),
            c.client_id == client_id,
            c.purpose == purpose,
            c.granted_at <= moment,
            c.expires_at > moment,
            or_(c.revoked_at.is_(None), c.revoked_at > moment),
        )
        async with self.store.session() as session:
            return set(await session.scalars(query))
