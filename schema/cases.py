"""GraphQL types of cases (docs/cases.md): objections, complaints and reports, credit repair.

A case's own fields are fixed here (they are the hub's records, not department data); who may
see and move which case is decided in hub/executor/case_fields.py and hub/cases/. Every case
shows `id`, `status`, `deadline` (a date counted in working days) and `history`. The public sees
a complaint only through its tracking code, as `PublicComplaint`: its status, dates and steps
without who took them or the department's notes.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

import strawberry


@strawberry.type(description="A record a case concerns: its family and its key (decision number, case number, ...).")
class CaseRecord:
    family: str
    key: str


@strawberry.type(description="One step of a case: who (and as what), when, why, and the deadline it set.")
class CaseStep:
    action: str = strawberry.field(description="filed, assign, correct, uphold, withdraw, reject, resolve, approve, refuse.")
    from_status: Optional[str]
    status: str = strawberry.field(description="The status the step led to.")
    at: dt.datetime
    by: str = strawberry.field(description="The client (or the credit office's administrator) who took it.")
    by_kind: str = strawberry.field(description="subject, department, credit-office or public.")
    note: str
    deadline: Optional[dt.date] = strawberry.field(description="The case's deadline after this step.")


@strawberry.type(description="A file filed with a case (PDF, JPEG or PNG), checked and stored by the hub.")
class CaseAttachment:
    id: int
    filename: str
    media_type: str
    size: int
    sha256: str


@strawberry.type(name="Case", description="A case: an objection (异议), a complaint or report (投诉举报), or a credit repair application (信用修复).")
class CaseView:
    id: int
    kind: str = strawberry.field(description="objection, complaint or repair.")
    status: str = strawberry.field(description=(
        "objection: open, corrected, upheld, withdrawn; complaint: filed, assigned, resolved, rejected; "
        "repair: applied, approved, refused, withdrawn."
    ))
    subject: Optional[str] = strawberry.field(description="The subject concerned (USCC or resident ID).")
    subject_name: str
    department: Optional[str] = strawberry.field(description="The department that answers it; null while with the credit office.")
    category: str = strawberry.field(description="The objection's grounds, the complaint's category, or the repair's target (record, listing).")
    records: list[CaseRecord]
    description: str
    filed_by_kind: str = strawberry.field(description="subject, department, credit-office or public.")
    filed_at: dt.datetime
    filed_on: dt.date = strawberry.field(description="The filing day in Hohhot (the deadline counts from it).")
    deadline: Optional[dt.date] = strawberry.field(description="The day the answer is due: the n-th working day after filing (or assignment).")
    deadline_provisional: bool = strawberry.field(description=(
        "The deadline was counted across a year without a holiday calendar (weekends only, e.g. 2027 until its "
        "notice is loaded): it may move once the calendar is loaded."
    ))
    working_days_left: Optional[int] = strawberry.field(description="Working days to the deadline (0: due today; negative: overdue by that many, at least -1 after the deadline); null once closed.")
    overdue: bool
    due_soon: bool = strawberry.field(description="Open and due within the policy's reminder (cases.deadlines.reminder working days), not yet overdue.")
    closed_at: Optional[dt.datetime]
    resolution: str = strawberry.field(description="The note of the step that closed it.")
    history: list[CaseStep]
    attachments: list[CaseAttachment]


@strawberry.input(description="A file to attach: its name, its media type and its content in base64 (at most the policy's size).")
class AttachmentInput:
    filename: str
    media_type: str = strawberry.field(description="application/pdf, image/jpeg or image/png (checked against the content).")
    content_base64: str


@strawberry.input(description="An objection (异议) to one record.")
class ObjectionInput:
    family: str = strawberry.field(description="The record's family: penalties, licenses, judgment_debtor_records, ...")
    record_key: str = strawberry.field(description="The record's key: its decision or case number.")
    grounds: str = strawberry.field(description="wrong, incomplete, duplicate, should-not-be-public, past-publicity-period, inconsistent-with-decision.")
    reason: str = strawberry.field(description="Why the record is disputed.")
    subject: Optional[str] = strawberry.field(default=None, description="The subject (a subject client: its own, the default; a department: required).")
    attachments: Optional[list[AttachmentInput]] = None


@strawberry.type(description="A page of cases, overdue first, then by deadline.")
class CasePage:
    items: list[CaseView]
    total_open: int = strawberry.field(description="Open cases of this kind the caller may see.")
    total_overdue: int
