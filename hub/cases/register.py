"""`CaseRegister`: cases in the hub store — filing, the steps of `STEPS`, and reading them back.

- **Filing** (`file`) is one transaction: the case, its first step and its attachments' rows are
  stored together, and the attachments' files are durable (hub/cases/attachments.py) before it
  commits. A filing is acknowledged only once it is stored: `file` returns after the commit, and
  an error before it leaves nothing behind.
- **Steps** (`move`) are serialised per case: each is one transaction that first takes the
  case's lock (`Store.exclusive`: a PostgreSQL advisory lock, SQLite's single write lock), reads
  the case's status, checks the step against `STEPS` and the actor's role, writes the new status
  and the `case_events` row — and whatever the step does elsewhere in the store (`within`: a
  repair approval ending a listing), so all of it commits or none. Two departments answering
  one objection at once: the second is told what the first did.
- **Deadlines** are counted in working days (`WorkingCalendar`) from the filing day in Hohhot:
  the policy's `cases.deadlines` (an objection 10, a complaint's triage 3 and then 15 from its
  assignment, a repair 10). A case is overdue the day after its deadline while it is open.

Callers write the audit entry (the request's, through the pipeline); this register keeps the
case's own history.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence

from sqlalchemy import and_, false, func, insert, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.credit.model import CreditInputError
from xinlian.hub.credit.register import decision_text, subject_key
from xinlian.hub.store import Store
from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import CaseAttachment, CaseEvent, CaseRecord
from xinlian.policies.cases import CaseRules
from xinlian.schema.catalogue import FAMILIES

from .attachments import (
    AttachmentPolicy,
    AttachmentRefused,
    AttachmentStore,
    StoredAttachment,
    check_attachment,
    clean_filename,
)
from .calendar import WorkingCalendar
from .model import (
    COMPLAINT,
    FIRST_STATUS,
    KINDS,
    OPEN_STATUSES,
    STEPS,
    Actor,
    Attachment,
    Case,
    CaseForbidden,
    CaseInputError,
    CaseNotFound,
    CaseRef,
    CaseStep,
    Role,
    actions_of,
    hohhot_day,
)

CASES = table_of(CaseRecord)
EVENTS = table_of(CaseEvent)
ATTACHMENTS = table_of(CaseAttachment)
MAX_RECORDS = 20
Within = Callable[[AsyncConnection, Case], Awaitable[Mapping[str, Any] | None]]


def text(value: str | None, name: str, required: bool = True, limit: int = 4000, multiline: bool = True) -> str:
    """Checked text of a case (`decision_text`'s rules), or `CaseInputError`."""
    try:
        return decision_text(value, name, required=required, limit=limit, multiline=multiline)
    except CreditInputError as exc:
        raise CaseInputError(str(exc)) from None


def case_subject(subject: str) -> str:
    try:
        return subject_key(subject)
    except CreditInputError as exc:
        raise CaseInputError(str(exc)) from None


def case_records(refs: Sequence[CaseRef]) -> list[dict[str, str]]:
    if len(refs) > MAX_RECORDS:
        raise CaseInputError(f"records: at most {MAX_RECORDS}")
    out = []
    for ref in refs:
        spec = FAMILIES.get(ref.family)
        if spec is None or spec.record_key is None:
            keyed = ", ".join(n for n, f in FAMILIES.items() if f.record_key)
            raise CaseInputError(f"records: {ref.family!r} is not a family of keyed records ({keyed})")
        out.append({"family": ref.family, "key": text(ref.key, "records.key", limit=200, multiline=False)})
    return out


@dataclass(frozen=True)
class Upload:
    """An attachment as filed: its name, the media type the filer declared, its bytes."""

    filename: str
    media_type: str | None
    data: bytes


class CaseRegister:
    """Cases in the hub store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        calendar: WorkingCalendar,
        rules: Callable[[], CaseRules],
        attachments: AttachmentStore | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.store = store
        self.calendar = calendar
        self.rules = rules
        self.attachments = attachments
        self.clock = clock
        self.changed: list[Callable[[], None]] = []  # told after a committed change (the objection flags)

    def deadline_from(self, day: dt.date, days: int) -> dt.date:
        return self.calendar.add_working_days(day, days)

    def initial_days(self, kind: str) -> int:
        d = self.rules().deadlines
        return {"objection": d.objection, "complaint": d.complaint_triage, "repair": d.repair}[kind]

    # ---- filing ------------------------------------------------------------------------------
    async def file(
        self,
        kind: str,
        actor: Actor,
        *,
        category: str,
        description: str,
        subject: str | None,
        subject_name: str = "",
        department: str | None = None,
        records: Sequence[CaseRef] = (),
        detail: Mapping[str, Any] | None = None,
        tracking_hash: str | None = None,
        uploads: Sequence[Upload] = (),
        note: str = "",
        lock: str | None = None,
        check: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> Case:
        """Store a new case with its first step and attachments; returns it once committed.

        `lock`: a name the filing holds (`Store.exclusive`) while `check(conn)` looks at the store
        and the case is written — one open application per record, across hub processes."""
        if kind not in KINDS:
            raise CaseInputError(f"kind: one of {', '.join(KINDS)}")
        key = case_subject(subject) if subject is not None else None
        rows = case_records(records)
        described = text(description, "description")
        name = text(subject_name, "subjectName", required=False, limit=200, multiline=False)
        stored = await self._store_uploads(uploads)
        now = self.clock().astimezone(dt.timezone.utc)  # stored in UTC (SQLite keeps no offset)
        filed_on = hohhot_day(now)
        deadline = self.deadline_from(filed_on, self.initial_days(kind))
        status = FIRST_STATUS[kind]
        async with (self.store.exclusive(lock) if lock else self.store.engine.begin()) as conn:
            if check is not None:
                await check(conn)
            inserted = (await conn.execute(insert(CASES).values(
                kind=kind, subject=key, subject_name=name, status=status, department=department,
                filer_kind=actor.kind, filer=actor.id, tracking_hash=tracking_hash, category=category,
                records=json.dumps(rows, ensure_ascii=False), description=described,
                detail=json.dumps(dict(detail or {}), ensure_ascii=False, default=str), filed_at=now, filed_on=filed_on,
                deadline=deadline, closed_at=None, resolution="",
            ))).inserted_primary_key
            assert inserted is not None
            case_id = int(inserted[0])
            await self._event(conn, case_id, "filed", None, status, now, actor, note, deadline)
            for upload, saved in zip(uploads, stored):
                await conn.execute(insert(ATTACHMENTS).values(
                    case_id=case_id, filename=saved.filename, media_type=saved.media_type, size=saved.size,
                    sha256=saved.sha256, added_at=now, added_by=actor.id,
                ))
            found = await self._read(conn, case_id)
        self._announce()
        return found

    async def _store_uploads(self, uploads: Sequence[Upload]) -> list[StoredAttachment]:
        """Check every upload against the policy in force (`cases.attachments`: count, size, type
        by content) before any is written — a refused one leaves nothing — then store them."""
        if not uploads:
            return []
        limits = self.rules().attachments
        if len(uploads) > limits.max_per_case:
            raise CaseInputError(f"attachments: at most {limits.max_per_case} per case")
        if self.attachments is None:
            raise CaseInputError("attachments: this hub stores none (no attachment store configured)")
        policy = AttachmentPolicy.of(limits)
        for number, upload in enumerate(uploads, 1):
            try:
                clean_filename(upload.filename)
                check_attachment(upload.data, upload.media_type, policy)
            except AttachmentRefused as exc:
                raise CaseInputError(f"attachments #{number} ({upload.filename[:60]!r}): {exc}") from None
        out = []
        for upload in uploads:
            try:
                out.append(await self.attachments.put(upload.filename, upload.media_type, upload.data))
            except AttachmentRefused as exc:
                raise CaseInputError(f"attachments: {exc}") from None
        return out

    # ---- steps -------------------------------------------------------------------------------
    async def move(
        self,
        case_id: int,
        action: str,
        actor: Actor,
        note: str,
        *,
        kind: str | None = None,
        department: str | None = None,
        detail: Mapping[str, Any] | None = None,
        within: Within | None = None,
        note_required: bool = True,
    ) -> Case:
        """Take step `action` on the case, serialised with every other step on it."""
        note = text(note, "note", required=note_required)
        now = self.clock().astimezone(dt.timezone.utc)  # stored in UTC (SQLite keeps no offset)
        today = hohhot_day(now)
        async with self.store.exclusive(f"case:{case_id}") as conn:
            case = await self._read(conn, case_id)
            if kind is not None and case.kind != kind:
                raise CaseNotFound(f"no {kind} {case_id}")
            step = STEPS.get((case.kind, action))
            if step is None:
                raise CaseInputError(f"a {case.kind} has no step {action!r} (its steps: {', '.join(actions_of(case.kind))})")
            if not step.roles & self.roles(case, actor):
                raise CaseForbidden(f"{actor.kind} {actor.id} may not {action} {case.kind} {case_id}")
            if case.status not in step.starts:
                raise CaseInputError(f"{case.kind} {case_id} is {case.status}: it cannot be moved to {action}")
            values: dict[str, Any] = {"status": step.leads_to}
            deadline = case.deadline
            if action == "assign":
                if not department:
                    raise CaseInputError("department: the department the case goes to")
                values["department"] = department
                if case.kind == COMPLAINT:  # the department's time runs from the assignment
                    deadline = self.deadline_from(today, self.rules().deadlines.complaint)
                    values["deadline"] = deadline
            if step.leads_to not in OPEN_STATUSES[case.kind]:
                values["closed_at"] = now
                values["resolution"] = note
            merged = dict(case.detail)
            if detail:
                merged.update(detail)
            if within is not None:
                extra = await within(conn, case)
                if extra:
                    merged.update(extra)
            if merged != dict(case.detail):
                values["detail"] = json.dumps(merged, ensure_ascii=False, default=str)
            await conn.execute(update(CASES).where(CASES.c.id == case_id).values(**values))
            await self._event(conn, case_id, action, case.status, step.leads_to, now, actor, note, deadline)
            moved = await self._read(conn, case_id)
        self._announce()
        return moved

    def roles(self, case: Case, actor: Actor) -> frozenset[Role]:
        """As what `actor` stands to `case`."""
        roles: set[Role] = set()
        if actor.kind == "credit-office":
            roles.add(Role.CREDIT_OFFICE)
        if actor.kind == "department" and actor.department and case.department == actor.department:
            roles.add(Role.DEPARTMENT)
        if actor.kind == "subject":
            # a subject client speaks for its subject: it is the filer of that subject's own
            # cases, whoever filed them through it — never of another subject's, even one its
            # client id filed while bound elsewhere
            if case.filer_kind == "subject" and actor.subject is not None and actor.subject == case.subject:
                roles.add(Role.FILER)
        elif actor.kind != "public" and case.filer_kind == actor.kind and case.filer == actor.id:
            roles.add(Role.FILER)
        return frozenset(roles)

    def may_see(self, case: Case, actor: Actor) -> bool:
        """The credit office sees every case; a department the cases with it or filed by it; a
        subject its own objections and repair applications (never complaints about it: a report's
        filer is protected)."""
        if actor.kind == "credit-office":
            return True
        if self.roles(case, actor):
            return True
        return actor.kind == "subject" and case.kind != COMPLAINT and actor.subject == case.subject

    # ---- reads -------------------------------------------------------------------------------
    async def get(self, case_id: int) -> Case:
        async with self.store.engine.connect() as conn:
            return await self._read(conn, case_id)

    async def by_tracking(self, tracking_hash: str) -> Case | None:
        async with self.store.engine.connect() as conn:
            found = (await conn.execute(select(CASES.c.id).where(CASES.c.tracking_hash == tracking_hash))).scalar()
            return None if found is None else await self._read(conn, int(found))

    async def find(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        open_only: bool = False,
        department: str | None = None,
        subject: str | None = None,
        filer: tuple[str, str] | None = None,
        today: dt.date | None = None,
        overdue_only: bool = False,
        limit: int = 200,
        with_history: bool = True,
    ) -> list[Case]:
        """Cases, overdue first (when `today` is given), then by deadline and filing."""
        if limit < 1:
            raise CaseInputError("limit: at least 1")
        c = CASES.c
        where = []
        if kind is not None:
            where.append(c.kind == kind)
        if status is not None:
            where.append(c.status == status)
        if open_only or overdue_only:
            where.append(or_(*(and_(c.kind == k, c.status.in_(sorted(s))) for k, s in OPEN_STATUSES.items())))
        if department is not None:
            where.append(c.department == department)
        if subject is not None:
            where.append(c.subject == subject)
        if filer is not None:
            where.append(and_(c.filer_kind == filer[0], c.filer == filer[1]))
        if overdue_only and today is not None:
            where.append(c.deadline < today)
        order: list[Any] = []
        if today is not None:
            open_now = or_(*(and_(c.kind == k, c.status.in_(sorted(s))) for k, s in OPEN_STATUSES.items()))
            order.append(sql_case((and_(open_now, c.deadline < today), 0), else_=1))
            order.append(sql_case((open_now, 0), else_=1))
        order += [c.deadline.is_(None), c.deadline, c.id]
        query = select(CASES).where(*where).order_by(*order).limit(limit)
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            if not with_history:
                return [Case.of(r) for r in rows]
            histories = await self._histories(conn, [r.id for r in rows])
            files = await self._attachments(conn, [r.id for r in rows])
        return [Case.of(r, histories.get(r.id, ()), files.get(r.id, ())) for r in rows]

    async def counts(self, today: dt.date) -> dict[str, dict[str, int]]:
        """Per kind: open, overdue and closed cases."""
        c = CASES.c
        out = {k: {"open": 0, "overdue": 0, "closed": 0} for k in KINDS}
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(
                select(c.kind, c.status, (c.deadline < today).label("late"), func.count()).group_by(c.kind, c.status, "late")
            )).all()
        for kind, status, late, n in rows:
            if kind not in out:
                continue
            if status in OPEN_STATUSES[kind]:
                out[kind]["open"] += n
                if late:
                    out[kind]["overdue"] += n
            else:
                out[kind]["closed"] += n
        return out

    async def open_objection_records(self) -> list[tuple[str, str, str]]:
        """(subject, family, key) of every record under an open objection."""
        c = CASES.c
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(
                select(c.subject, c.records).where(c.kind == "objection", c.status.in_(sorted(OPEN_STATUSES["objection"])))
            )).all()
        out = []
        for subject, records in rows:
            for ref in json.loads(records or "[]"):
                out.append((subject or "", ref["family"], ref["key"]))
        return out

    async def tally(self, kind: str, today: dt.date, scopes: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """(open, overdue) cases of `kind` within any of `scopes` (each: `subject`, `department`
        and/or `filer` (kind, id)), counted once each; a scope naming none of them counts nothing
        (never the whole district)."""
        c = CASES.c

        def within(scope: Mapping[str, Any]) -> Any:
            parts = []
            if scope.get("subject") is not None:
                parts.append(c.subject == scope["subject"])
            if scope.get("department") is not None:
                parts.append(c.department == scope["department"])
            if scope.get("filer") is not None:
                parts.append(and_(c.filer_kind == scope["filer"][0], c.filer == scope["filer"][1]))
            return and_(*parts) if parts else false()

        where = [c.kind == kind, c.status.in_(sorted(OPEN_STATUSES[kind])), or_(*(within(x) for x in scopes))]
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(
                select(func.count(c.id), func.count(sql_case((c.deadline < today, 1)))).where(*where)
            )).one()
        return int(row[0]), int(row[1])

    async def open_version(self) -> tuple[int, int]:
        """(count, max id) of the open objections, which move on every filing and closing."""
        c = CASES.c
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(
                select(func.count(c.id), func.max(c.id)).where(c.kind == "objection", c.status.in_(sorted(OPEN_STATUSES["objection"])))
            )).one()
        return int(row[0]), int(row[1] or 0)

    @staticmethod
    async def open_cases(conn: AsyncConnection, kind: str, subject: str) -> list[Case]:
        """The subject's open cases of `kind`, read on `conn` (inside a filing's `check`)."""
        c = CASES.c
        rows = (await conn.execute(
            select(CASES).where(c.kind == kind, c.subject == subject, c.status.in_(sorted(OPEN_STATUSES[kind]))).order_by(c.id)
        )).all()
        return [Case.of(r) for r in rows]

    # ---- internals ---------------------------------------------------------------------------
    def _announce(self) -> None:
        for listener in self.changed:
            listener()

    @staticmethod
    async def _event(
        conn: AsyncConnection, case_id: int, action: str, before: str | None, after: str, at: dt.datetime,
        actor: Actor, note: str, deadline: dt.date | None,
    ) -> None:
        await conn.execute(insert(EVENTS).values(
            case_id=case_id, action=action, from_status=before, to_status=after, at=at, by=actor.id,
            by_kind=actor.kind, note=note, deadline=deadline,
        ))

    async def _read(self, conn: AsyncConnection, case_id: int) -> Case:
        row = (await conn.execute(select(CASES).where(CASES.c.id == case_id))).one_or_none()
        if row is None:
            raise CaseNotFound(f"no case {case_id}")
        history = (await self._histories(conn, [case_id])).get(case_id, ())
        files = (await self._attachments(conn, [case_id])).get(case_id, ())
        return Case.of(row, history, files)

    @staticmethod
    async def _histories(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[CaseStep, ...]]:
        if not ids:
            return {}
        rows = (await conn.execute(select(EVENTS).where(EVENTS.c.case_id.in_(ids)).order_by(EVENTS.c.id))).all()
        out: dict[int, list[CaseStep]] = {}
        for row in rows:
            out.setdefault(row.case_id, []).append(CaseStep.of(row))
        return {k: tuple(v) for k, v in out.items()}

    @staticmethod
    async def _attachments(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[Attachment, ...]]:
        if not ids:
            return {}
        rows = (await conn.execute(select(ATTACHMENTS).where(ATTACHMENTS.c.case_id.in_(ids)).order_by(ATTACHMENTS.c.id))).all()
        out: dict[int, list[Attachment]] = {}
        for row in rows:
            out.setdefault(row.case_id, []).append(Attachment.of(row))
        return {k: tuple(v) for k, v in out.items()}
