"""`ObjectionRegister`: objections (异议) to single credit records — objection cases — and the
flag they raise.

An objection names the subject, the record family and the record's key (its decision or case
number: `RecordFamily.record_key`) and one of the grounds of `OBJECTION_GROUNDS`. It is a case
(hub/cases/: kind `objection`) with the providing department's deadline in working days (the
policy's `cases.deadlines.objection`, 10 by default). While it is open, every caller who
receives that record gets it with `underObjection: true`. Its outcomes: `corrected` (the
department corrected the record at its source; the hub records the correction), `upheld` (the
record stands) or `withdrawn` (the filer withdrew it); any of them removes the flag. Objections
are never deleted.

Reading the flags costs no query per request: the register keeps the open objections in memory
(`OpenObjections`). In a hub (`follow(feed)`) they are reloaded in the background whenever the
store's change feed (hub/cluster/changes.py) says `cases` changed — within the feed's interval
(1 s) in every hub process, milliseconds on PostgreSQL (NOTIFY) or with Redis. Without a
(current) feed, a request asks the store at most once a second whether they changed — one cheap
query (`count` and `max(id)` of the open objections, which move on every filing and closing) —
and reloads them only then. A filing or closing through this register shows at once in this
process.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Callable, Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.cases.calendar import WorkingCalendar
from xinlian.hub.cases.model import OBJECTION, OBJECTION_GROUNDS, Actor, Case, CaseInputError, CaseRef, hohhot_day
from xinlian.hub.cases.register import CaseRegister, Upload
from xinlian.hub.cluster.views import FollowedView
from xinlian.hub.store import Store
from xinlian.policies.cases import standard_case_rules
from xinlian.schema.catalogue import FAMILIES
from xinlian.schema.identifiers import InvalidIdentifier, validate_subject

OPEN = "open"
OUTCOMES = ("corrected", "upheld", "withdrawn")
ACTIONS = {"corrected": "correct", "upheld": "uphold", "withdrawn": "withdraw"}


class ObjectionError(CaseInputError):
    """An objection cannot be filed or closed as asked."""


def check_subject(subject: str) -> str:
    """A USCC or a resident ID, normalised; `ObjectionError` otherwise."""
    try:
        return validate_subject(subject)
    except InvalidIdentifier as exc:
        raise ObjectionError(str(exc)) from None


class OpenObjections(FollowedView):
    """The open objections in memory, revalidated against the store at most every `interval` s
    (hub/cluster/views.py)."""

    topics = ("cases",)

    def __init__(self, cases: CaseRegister, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(cases.store, interval, clock)
        self.cases = cases
        self._refs: dict[str, dict[str, set[str]]] = {}  # subject → family → record refs
        self._version: tuple[int, int] | None = None  # (count, max id) of the open objections

    async def refs(self, subjects: list[str]) -> dict[tuple[str, str], set[str]]:
        await self.fresh()
        out: dict[tuple[str, str], set[str]] = {}
        for subject in subjects:
            for family, refs in self._refs.get(subject, {}).items():
                out[(subject, family)] = set(refs)
        return out

    async def _revalidate(self) -> None:
        checked = self.clock()
        version = await self.cases.open_version()
        if version != self._version:
            refs: dict[str, dict[str, set[str]]] = {}
            for subject, family, ref in await self.cases.open_objection_records():
                refs.setdefault(subject, {}).setdefault(family, set()).add(ref)
            self._refs, self._version = refs, version
            self.reloads += 1
        self._checked_at(checked)


def _actor(by: Actor | str) -> Actor:
    return by if isinstance(by, Actor) else Actor.credit_office(by)


class ObjectionRegister:
    """Objection cases and the open objections' flag (see the module docstring)."""

    def __init__(self, cases: CaseRegister | Store, refresh_interval: float = 1.0) -> None:
        if isinstance(cases, Store):  # a register of its own (a command, a test): the shipped calendars and rules
            cases = CaseRegister(cases, WorkingCalendar.load(), standard_case_rules)
        self.cases = cases
        self.store = cases.store
        self.open_objections = OpenObjections(cases, refresh_interval)
        cases.changed.append(self.open_objections.invalidate)

    async def file(
        self,
        subject: str,
        family: str,
        record_ref: str,
        reason: str,
        filed_by: Actor | str,
        *,
        grounds: str = "wrong",
        department: str | None = None,
        subject_name: str = "",
        uploads: Sequence[Upload] = (),
    ) -> Case:
        """File an objection to one record; `department`: the department that provides it (None:
        with the credit office until it assigns one)."""
        spec = FAMILIES.get(family)
        if spec is None or spec.record_key is None:
            keyed = ", ".join(n for n, f in FAMILIES.items() if f.record_key)
            raise ObjectionError(f"objections can be filed against records of: {keyed}")
        record_ref = record_ref.strip()
        if not record_ref or len(record_ref) > 200:
            raise ObjectionError(f"record_ref: the record's {spec.record_key}, 1 to 200 characters")
        if grounds not in OBJECTION_GROUNDS:
            raise ObjectionError(f"grounds: one of {', '.join(OBJECTION_GROUNDS)}")
        if not reason.strip():
            raise ObjectionError("reason: say why the record is disputed")
        key = check_subject(subject)
        ref = CaseRef(family, record_ref)

        async def none_open(conn: AsyncConnection) -> None:
            for case in await CaseRegister.open_cases(conn, OBJECTION, key):
                if ref in case.records:
                    raise ObjectionError(
                        f"objection {case.id} against this record is open (filed {case.filed_on}, answer due "
                        f"{case.deadline}): add to it, or wait for its answer"
                    )

        # one open objection per record, across hub processes: the check and the filing hold the
        # subject's objection lock in one transaction
        return await self.cases.file(
            OBJECTION, _actor(filed_by), category=grounds, description=reason, subject=key, subject_name=subject_name,
            department=department, records=[ref], uploads=uploads, lock=f"objection:{key}", check=none_open,
        )

    async def close(self, objection_id: int, outcome: str, note: str, closed_by: Actor | str) -> Case:
        """Close an open objection as `corrected`, `upheld` or `withdrawn`."""
        if outcome not in OUTCOMES:
            raise ObjectionError(f"outcome must be one of {', '.join(OUTCOMES)}")
        return await self.cases.move(
            objection_id, ACTIONS[outcome], _actor(closed_by), note, kind=OBJECTION, note_required=outcome != "withdrawn"
        )

    async def assign(self, objection_id: int, department: str, note: str, by: Actor | str) -> Case:
        """The credit office sends an objection to the department that answers it."""
        return await self.cases.move(objection_id, "assign", _actor(by), note, kind=OBJECTION, department=department, note_required=False)

    async def list(
        self, subject: str | None = None, status: str | None = None, limit: int = 200, today: dt.date | None = None
    ) -> list[Case]:
        """Objections, overdue first (as of `today`, Hohhot; today by default), then by deadline."""
        return await self.cases.find(
            kind=OBJECTION, subject=subject, status=status, limit=limit, today=today or hohhot_day(self.cases.clock())
        )

    async def open_refs_by_family(self, subjects: Iterable[str]) -> dict[tuple[str, str], set[str]]:
        """{(subject, family): record refs} of the open objections against records of `subjects`."""
        wanted = list(dict.fromkeys(subjects))
        if not wanted:
            return {}
        return await self.open_objections.refs(wanted)
