"""`ComplaintDesk`: complaints and reports (投诉举报) — filing with a tracking code, triage by the
credit office, resolution by the department, and what the filer sees.

- **Filing** is open to anyone, anonymously: a category of the policy's
  `cases.complaint_categories`, a description, the target (a USCC or resident ID, checked with its
  check character, and/or the target's name), optionally the records concerned, attachments and a
  contact (name, phone, email). The contact is kept in the case's `detail` for the credit office
  only. The filer gets a **tracking code** (`TS-XXXXX-XXXXX-XXXXX-XXXXX`): 19 random Crockford
  base-32 characters from `secrets` (95 bits) and a Luhn mod 32 check character, so a mistyped
  character is caught before any lookup. Only its SHA-256 is stored (`tracking_hash`): the hub
  cannot tell anyone a code, only recognise one.
- **Triage** by the credit office within `cases.deadlines.complaint_triage` working days:
  `assign` to a department (its own `cases.deadlines.complaint` working days run from the
  assignment) or `reject` (not within scope, a duplicate). Triage is optimistic: the office says
  which department it saw the complaint with (`from_department`, None: still with the office), and
  a step taken on anything else is refused — of two triage decisions made at once, one wins.
- **Resolution** by the assigned department (or the credit office): `substantiated` or
  `unsubstantiated`, with the answer to the filer; a substantiated complaint may cite the finding
  of dishonesty it led to, which must be the resolving department's own, on the complaint's
  subject, and not revoked — checked inside the step's transaction.
- **The public view** (`public_view`): status, category, dates, the steps without who took them or
  their notes, and once closed the answer and the outcome.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from xinlian.hub.store.core import table_of
from xinlian.hub.store.models import FindingRecord

from .model import COMPLAINT, Actor, Case, CaseForbidden, CaseInputError, CaseRef, hohhot_day
from .register import CaseRegister, Upload, text

FINDINGS = table_of(FindingRecord)
OUTCOMES = ("substantiated", "unsubstantiated")
STATUSES = ("filed", "assigned", "resolved", "rejected")
PUBLIC_ACTIONS = ("filed", "assign", "reject", "resolve")

# ---- tracking codes ---------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32: no I, L, O, U
PREFIX = "TS"  # 投诉
GROUPS, GROUP = 4, 5
RANDOM_CHARS = GROUPS * GROUP - 1  # 19 × 5 = 95 bits; the 20th character is the check
LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_.·]+")
CODE_SHAPE = "TS-XXXXX-XXXXX-XXXXX-XXXXX"


def _luhn(chars: str, checked: bool) -> int:
    """Luhn mod 32 over `chars`: the sum that a valid code (`checked`) makes divisible by 32."""
    total, double = 0, not checked
    for ch in reversed(chars):
        value = ALPHABET.index(ch) * (2 if double else 1)
        total += value // 32 + value % 32
        double = not double
    return total


def check_character(payload: str) -> str:
    """The Luhn mod 32 check character of `payload` (Crockford characters)."""
    return ALPHABET[(32 - _luhn(payload, checked=False) % 32) % 32]


def _formatted(body: str) -> str:
    return "-".join([PREFIX, *(body[i:i + GROUP] for i in range(0, len(body), GROUP))])


def new_tracking_code() -> str:
    """A fresh tracking code: 95 random bits from `secrets`, a check character, in groups."""
    while True:  # a code never begins with `TS` itself, so a typed code's prefix is never ambiguous
        payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS))
        if not payload.startswith(PREFIX):
            return _formatted(payload + check_character(payload))


def normalise_tracking_code(typed: str) -> str | None:
    """The canonical form of a typed code (any case, full-width characters, spaces or dashes
    anywhere, O/I/L for 0/1, with or without `TS`), or None when it is not a tracking code."""
    if not isinstance(typed, str) or len(typed) > 80:
        return None
    compact = SEPARATORS.sub("", unicodedata.normalize("NFKC", typed)).upper()
    if compact.startswith(PREFIX):  # no code begins with TS: this is the prefix, and the rest must be whole
        compact = compact[len(PREFIX):]
    body = compact.translate(LOOKALIKES)
    if len(body) != GROUPS * GROUP or any(ch not in ALPHABET for ch in body):
        return None
    if _luhn(body, checked=True) % 32:
        return None
    return _formatted(body)


def tracking_hash(code: str) -> str:
    """The SHA-256 (hex) of a canonical tracking code: all the store keeps of it."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


# ---- the filer's contact ----------------------------------------------------------------------

PHONE = re.compile(r"\+?[0-9][0-9 ()\-]*(?:(?:转|ext\.?|x)[0-9]{1,6})?", re.IGNORECASE)
EMAIL = re.compile(r"[^\s@]{1,64}@[^\s@]+\.[^\s@]+")


@dataclass(frozen=True)
class Contact:
    """How the credit office may reach the filer: seen by the credit office only."""

    name: str = ""
    phone: str = ""
    email: str = ""

    @classmethod
    def checked(cls, name: str | None, phone: str | None, email: str | None) -> "Contact":
        """A contact with at least one of its parts, each checked; `CaseInputError` otherwise."""
        shown_name = _line(name, "contact.name", 50)
        shown_phone = _line(phone, "contact.phone", 30)
        shown_email = _line(email, "contact.email", 254)
        if shown_phone:
            digits = sum(ch.isdigit() for ch in shown_phone)
            if not PHONE.fullmatch(shown_phone) or not 5 <= digits <= 20:
                raise CaseInputError("contact.phone: digits, spaces, +, - and parentheses (5 to 20 digits), e.g. 0471-6123456")
        if shown_email and not EMAIL.fullmatch(shown_email):
            raise CaseInputError("contact.email: an address such as name@example.cn")
        if not (shown_name or shown_phone or shown_email):
            raise CaseInputError("contact: give a name, a phone or an email — or leave contact out to file anonymously")
        return cls(shown_name, shown_phone, shown_email)

    def detail(self) -> dict[str, str]:
        return {k: v for k, v in (("name", self.name), ("phone", self.phone), ("email", self.email)) if v}

    @classmethod
    def of(cls, case: Case) -> "Contact | None":
        """The contact a complaint was filed with, or None (filed anonymously)."""
        raw = case.detail.get("contact")
        if not isinstance(raw, dict):
            return None
        return cls(str(raw.get("name", "")), str(raw.get("phone", "")), str(raw.get("email", "")))


def _line(value: str | None, name: str, limit: int) -> str:
    """One line of a contact: `text`'s rules, and no tab either."""
    line = text(value, name, required=False, limit=limit, multiline=False)
    if "\t" in line:
        raise CaseInputError(f"{name}: one line without tabs")
    return line


# ---- what the filer sees ----------------------------------------------------------------------


@dataclass(frozen=True)
class PublicStep:
    """A step as the filer sees it: what happened and when — never who, never the note."""

    action: str
    status: str
    at: dt.datetime


@dataclass(frozen=True)
class PublicComplaint:
    """A complaint as its tracking code shows it."""

    status: str
    category: str
    filed_on: dt.date
    deadline: dt.date | None
    closed_on: dt.date | None
    history: tuple[PublicStep, ...]
    resolution: str | None  # the answer, once resolved or rejected
    outcome: str | None  # substantiated / unsubstantiated, once resolved


def public_view(case: Case) -> PublicComplaint:
    closed = not case.is_open
    return PublicComplaint(
        status=case.status, category=case.category, filed_on=case.filed_on, deadline=case.deadline,
        closed_on=hohhot_day(case.closed_at) if case.closed_at else None,
        history=tuple(PublicStep(s.action, s.to_status, s.at) for s in case.history if s.action in PUBLIC_ACTIONS),
        resolution=case.resolution if closed else None,
        outcome=outcome_of(case),
    )


def outcome_of(case: Case) -> str | None:
    value = case.detail.get("outcome")
    return value if case.status == "resolved" and isinstance(value, str) else None


def finding_of(case: Case) -> int | None:
    value = case.detail.get("finding")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Filed:
    """A stored complaint and its tracking code (shown once, to the filer; never stored)."""

    case: Case
    tracking_code: str


# ---- the desk ---------------------------------------------------------------------------------


class ComplaintDesk:
    """Complaints over the case register (see the module docstring)."""

    def __init__(self, cases: CaseRegister) -> None:
        self.cases = cases

    async def file(
        self,
        *,
        category: str,
        categories: Mapping[str, str],
        description: str,
        subject: str | None,
        subject_name: str | None,
        records: Sequence[CaseRef] = (),
        contact: Contact | None = None,
        uploads: Sequence[Upload] = (),
        filer: Actor | None = None,
    ) -> Filed:
        """Store a complaint (anonymous unless `contact`); returns it once committed, with its code."""
        if category not in categories:
            raise CaseInputError(f"category: one of {', '.join(categories)}")
        key = subject.strip() if subject and subject.strip() else None
        if key is None and not (subject_name or "").strip():
            raise CaseInputError("subjectName: required when no subject code (USCC or resident ID) is given")
        code = new_tracking_code()
        case = await self.cases.file(
            COMPLAINT, filer or Actor.public(), category=category, description=description, subject=key,
            subject_name=subject_name or "", records=records, detail={"contact": contact.detail()} if contact else {},
            tracking_hash=tracking_hash(code), uploads=uploads,
        )
        return Filed(case, code)

    async def follow(self, typed_code: str) -> Case | None:
        """The complaint of a tracking code, or None; `CaseInputError` when it is no tracking code."""
        code = normalise_tracking_code(typed_code)
        if code is None:
            raise CaseInputError(f"trackingCode: not a tracking code ({CODE_SHAPE}); check what was typed")
        found = await self.cases.by_tracking(tracking_hash(code))
        return found if found is not None and found.kind == COMPLAINT else None

    async def assign(self, case_id: int, department: str, note: str, by: Actor, from_department: str | None = None) -> Case:
        """Triage: send the complaint to `department` (from the credit office, or from `from_department`)."""

        async def as_seen(conn: AsyncConnection, case: Case) -> None:
            _as_seen(case, from_department)
            if case.department == department:
                raise CaseInputError(f"complaint {case.id} is already with {department}")

        return await self.cases.move(
            case_id, "assign", by, note, kind=COMPLAINT, department=department, within=as_seen, note_required=False
        )

    async def reject(self, case_id: int, note: str, by: Actor, from_department: str | None = None) -> Case:
        """Triage: close the complaint as not within scope (or a duplicate); `note` is the answer to the filer."""

        async def as_seen(conn: AsyncConnection, case: Case) -> None:
            _as_seen(case, from_department)

        return await self.cases.move(case_id, "reject", by, note, kind=COMPLAINT, within=as_seen)

    async def resolve(self, case_id: int, outcome: str, note: str, by: Actor, finding_id: int | None = None) -> Case:
        """Close an assigned complaint with its outcome; `note` is the answer to the filer."""
        if outcome not in OUTCOMES:
            raise CaseInputError(f"outcome: {' or '.join(OUTCOMES)}")
        if finding_id is not None and outcome != "substantiated":
            raise CaseInputError("findingId: only a substantiated complaint leads to a finding")

        async def outcome_detail(conn: AsyncConnection, case: Case) -> dict[str, Any]:
            if finding_id is None:
                return {"outcome": outcome}
            await _check_finding(conn, case, finding_id, by)
            return {"outcome": outcome, "finding": finding_id}

        return await self.cases.move(case_id, "resolve", by, note, kind=COMPLAINT, within=outcome_detail)


async def assign(cases: CaseRegister, case_id: int, department: str, note: str, by: Actor) -> Case:
    """The credit office assigns any case (`assignCase`, `xinlian cases assign`): a complaint from
    where it is now (`ComplaintDesk.assign`, so that two triages at once do not both pass), an
    objection as it is."""
    found = await cases.get(case_id)
    if found.kind == COMPLAINT:
        return await ComplaintDesk(cases).assign(case_id, department, note, by, from_department=found.department)
    return await cases.move(case_id, "assign", by, note, department=department, note_required=False)


def _as_seen(case: Case, from_department: str | None) -> None:
    """Refuse a triage step taken on another state than the one the credit office saw."""
    if from_department is None and case.status != "filed":
        raise CaseInputError(
            f"complaint {case.id} is no longer with the credit office: it is {case.status} to {case.department} "
            f"(to move it on, say from which department)"
        )
    if from_department is not None and case.department != from_department:
        where = f"with {case.department}" if case.department else "with the credit office"
        raise CaseInputError(f"complaint {case.id} is {where}, not with {from_department}")


async def _check_finding(conn: AsyncConnection, case: Case, finding_id: int, by: Actor) -> None:
    """The cited finding: on the complaint's subject, by the resolving department, not revoked."""
    if case.subject is None:
        raise CaseInputError("findingId: the complaint names no subject code, so no finding can be linked to it")
    row = (await conn.execute(select(FINDINGS).where(FINDINGS.c.id == finding_id))).one_or_none()
    if row is None or row.subject != case.subject:
        raise CaseInputError(f"findingId: {finding_id} is not a finding on {case.subject}")
    department = by.department if by.kind == "department" else case.department
    if row.department != department:
        raise CaseForbidden(f"findingId: finding {finding_id} was recorded by {row.department}, not by {department}")
    if row.status == "revoked":
        raise CaseInputError(f"findingId: finding {finding_id} was revoked")
