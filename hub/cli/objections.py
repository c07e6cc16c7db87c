"""`xinlian objections list|file|close`: objections (异议) to single credit records.

`file SUBJECT FAMILY REF --reason TEXT` records an objection on the subject's behalf (the record
is served flagged `underObjection` while it is open); `close ID corrected|upheld|withdrawn --note TEXT`
closes it. The same checks and audit actions as the admin API's `fileObjection` and
`closeObjection` (`admin_session.py`). Refused input: stderr, exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from xinlian.hub.cases.model import OBJECTION_GROUNDS, Case
from xinlian.hub.governance.objections import OUTCOMES

from .admin_session import AdminSession, add_common_arguments, run_admin
from .tables import utc_text

NAME = "objections"
STATUSES = ("open", *OUTCOMES)


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    objections = sub.add_parser(NAME, help="objections to credit records (list, file, close)")
    actions = objections.add_subparsers(dest="objections_command", required=True)

    ls = actions.add_parser("list", help="list objections, overdue first, then by deadline")
    ls.add_argument("--subject", default=None, metavar="ID", help="only this subject's (USCC or resident ID)")
    ls.add_argument("--status", default=None, choices=STATUSES)
    ls.add_argument("--json", action="store_true", help="one JSON object per objection and line")
    add_common_arguments(ls, changes=False)
    ls.set_defaults(handler=run_list)

    file = actions.add_parser("file", help="file an objection to one record on the subject's behalf")
    file.add_argument("subject", metavar="SUBJECT", help="USCC or resident ID")
    file.add_argument("family", metavar="FAMILY", help="record family, e.g. penalties")
    file.add_argument("record_ref", metavar="REF", help="the record's key, e.g. its decision number")
    file.add_argument("--reason", required=True, help="why the record is disputed")
    file.add_argument("--grounds", default="wrong", choices=tuple(OBJECTION_GROUNDS), help="the objection's grounds")
    file.add_argument("--department", default=None, help="the department that answers it (a connector name)")
    add_common_arguments(file)
    file.set_defaults(handler=run_file)

    close = actions.add_parser("close", help="close an open objection")
    close.add_argument("objection_id", metavar="ID", type=int)
    close.add_argument("outcome", choices=OUTCOMES)
    close.add_argument("--note", default="", help="what was found")
    add_common_arguments(close)
    close.set_defaults(handler=run_close)


def _row(r: Case) -> dict[str, Any]:
    record = r.records[0] if r.records else None
    return {
        "id": r.id, "subject": r.subject, "family": record.family if record else "", "record_ref": record.key if record else "",
        "status": r.status, "grounds": r.category, "department": r.department,
        "deadline": r.deadline.isoformat() if r.deadline else None, "reason": r.description,
        "filed_at": utc_text(r.filed_at), "filed_by": r.filer, "closed_at": utc_text(r.closed_at),
        "outcome": r.resolution if r.closed_at else None,
    }


def run_list(args: argparse.Namespace) -> int:
    async def ls(session: AdminSession) -> int:
        subject = args.subject.strip().upper() if args.subject else None
        rows = [_row(r) for r in await session.operations.objections.list(subject=subject, status=args.status)]
        columns = ("id", "subject", "family", "record_ref", "status", "deadline", "filed_at", "reason")
        session.listing(rows, columns, args.json, "no objections")
        return 0

    return run_admin(args, NAME, ls)


def run_file(args: argparse.Namespace) -> int:
    async def file(session: AdminSession) -> int:
        record = await session.operations.file_objection(
            args.subject, args.family, args.record_ref, args.reason, grounds=args.grounds, department=args.department
        )
        session.say(
            f"objection {record.id} filed: {record.subject} {args.family} {args.record_ref.strip()} "
            f"(open, answer due {record.deadline})"
        )
        return 0

    return run_admin(args, NAME, file)


def run_close(args: argparse.Namespace) -> int:
    async def close(session: AdminSession) -> int:
        record = await session.operations.close_objection(args.objection_id, args.outcome, args.note)
        session.say(f"objection {record.id} closed: {record.status}")
        return 0

    return run_admin(args, NAME, close)
