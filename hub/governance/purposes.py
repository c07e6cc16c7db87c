"""`PurposeRegistry`: the purposes (用途) a client may declare when it asks for AUTHORIZED data.

A purpose has a code (`loan-review`), a label (贷款审批) and a description. Clients are
registered for some purposes (`ClientRegistry.set_purposes`); a request declares one with the
`Xinlian-Purpose` header or a token bound to it. A retired purpose can no longer be given to
clients, and a declared retired purpose grants nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Collection

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from xinlian.hub.store import Store
from xinlian.hub.store.core import changed
from xinlian.hub.store.models import PurposeRecord

PURPOSE_CODE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class PurposeError(ValueError):
    """A purpose cannot be defined or used as asked."""


def check_code(code: str) -> str:
    if not isinstance(code, str) or not PURPOSE_CODE.fullmatch(code):
        raise PurposeError(f"a purpose code is 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit), got {code!r}")
    return code


class PurposeRegistry:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def define(self, code: str, label: str, description: str = "") -> PurposeRecord:
        """Add a purpose; `PurposeError` if the code is taken or malformed."""
        label = label.strip()
        if not label or len(label) > 200:
            raise PurposeError("a purpose label is 1 to 200 characters")
        record = PurposeRecord(
            code=check_code(code),
            label=label,
            description=description.strip(),
            created_at=dt.datetime.now(dt.timezone.utc),
            retired=False,
        )
        async with self.store.session() as session:
            session.add(record)
            try:
                await session.commit()
            except IntegrityError:
                raise PurposeError(f"purpose {code!r} is already defined") from None
        return record

    async def get(self, code: str) -> PurposeRecord | None:
        async with self.store.session() as session:
            return await session.get(PurposeRecord, code)

    async def list(self, include_retired: bool = False) -> list[PurposeRecord]:
        query = select(PurposeRecord).order_by(PurposeRecord.code)
        if not include_retired:
            query = query.where(PurposeRecord.retired.is_(False))
        async with self.store.session() as session:
            return list(await session.scalars(query))

    async def retire(self, code: str) -> bool:
        """Retire a purpose; False if there is no such purpose."""
        async with self.store.session() as session:
            result = await session.execute(update(PurposeRecord).where(PurposeRecord.code == code).values(retired=True))
            await session.commit()
            return changed(result)

    async def active_codes(self, codes: Collection[str]) -> set[str]:
        """Those of `codes` that are defined and not retired."""
        if not codes:
            return set()
        async with self.store.session() as session:
            rows = await session.scalars(
                select(PurposeRecord.code).where(PurposeRecord.code.in_(list(codes)), PurposeRecord.retired.is_(False))
            )
            return set(rows)
