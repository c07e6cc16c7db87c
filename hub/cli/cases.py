"""`xinlian cases list|show|assign`: the credit office's view of every case (docs/cases.md).

- `list [--kind K] [--status S] [--department D] [--overdue] [--due-soon] [--all] [--limit N] [--json]`
  — open cases (`--all`: closed ones too), **overdue first**, then by deadline; each with the
  working days left (negative: overdue by that many) counted with the data directory's calendar;
  `--due-soon`: open cases within the policy's reminder (`cases.deadlines.reminder`) of their
  deadline, not yet overdue.
- `show ID [--json]` — one case with its history and attachments.
- `assign ID DEPARTMENT [--note TEXT]` — send an objection or a complaint to the department that
  answers it (as the admin API's `assignCase`, audited as the CLI's `--by`).

Reads are audited like every CLI command (admin_session.py). Refused input: stderr, exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from xinlian.hub.cases.complaints import assign as assign_case
from xinlian.hub.cases.model import KINDS, Actor, Case, CaseInputError, hohhot_day

from .admin_session import AdminSession, add_common_arguments, policy_in_force, run_admin
from .client_admin import federation_departments
from .tables import utc_text

NAME = "cases"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    cases = sub.add_parser(NAME, help="objections, complaints and repair applications with their deadlines")
    actions = cases.add_subparsers(dest="cases_command", required=True)

    ls = actions.add_parser("list", help="open cases, overdue first, then by deadline")
    ls.add_argument("--kind", choices=KINDS, default=None)
    ls.add_argument("--status", default=None, help="only cases with this status (e.g. open, assigned, applied)")
    ls.add_argument("--department", default=None, help="only cases with this department (a connector name)")
    ls.add_argument("--overdue", action="store_true", help="only open cases past their deadline")
    ls.add_argument("--due-soon", action="store_true", help="only open cases within the reminder of their deadline")
    ls.add_argument("--all", action="store_true", help="closed cases too (after the open ones)")
    ls.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    ls.add_argument("--json", action="store_true", help="one JSON object per case and line")
    add_common_arguments(ls, changes=False)
    ls.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one case with its history")
    show.add_argument("case_id", metavar="ID", type=int)
    show.add_argument("--json", action="store_true")
    add_common_arguments(show, changes=False)
    show.set_defaults(handler=run_show)

    assign = actions.add_parser("assign", help="send an objection or a complaint to a department")
    assign.add_argument("case_id", metavar="ID", type=int)
    assign.add_argument("department", metavar="DEPARTMENT", help="the department's connector name (e.g. market, courts)")
    assign.add_argument("--note", default="", help="why this department")
    add_common_arguments(assign)
    assign.set_defaults(handler=run_assign)


def _row(case: Case, session: AdminSession, today: dt.date, reminder: int) -> dict[str, Any]:
    calendar = session.cases.calendar
    return {
        "id": case.id, "kind": case.kind, "status": case.status, "subject": case.subject or "",
        "subject_name": case.subject_name, "department": case.department or "(credit office)",
        "category": case.category, "filed_on": case.filed_on.isoformat(),
        "deadline": case.deadline.isoformat() if case.deadline else None, "left": case.working_days_left(today, calendar),
        "overdue": case.overdue(today), "due_soon": case.due_soon(today, calendar, reminder),
        "records": [f"{r.family}:{r.key}" for r in case.records], "provisional": case.deadline_provisional(calendar),
    }


def run_list(args: argparse.Namespace) -> int:
    async def ls(session: AdminSession) -> int:
        if args.limit < 1:
            raise CaseInputError("--limit: at least 1")
        today = hohhot_day(session.cases.clock())
        reminder = (await policy_in_force(session.settings, session.store)).cases.deadlines.reminder
        found = await session.cases.find(
            kind=args.kind, status=args.status, department=args.department, today=today,
            open_only=not args.all, overdue_only=args.overdue, limit=args.limit, with_history=False,
        )
        rows = [_row(c, session, today, reminder) for c in found]
        if args.due_soon:
            rows = [r for r in rows if r["due_soon"]]
        session.record("listCases", read=True, kind=args.kind, status=args.status, department=args.department, listed=len(rows))
        columns = ("id", "kind", "status", "subject", "department", "filed_on", "deadline", "left", "overdue")
        session.listing(rows, columns, args.json, "no cases")
        return 0

    return run_admin(args, NAME, ls)


def run_show(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        case = await session.cases.get(args.case_id)
        today = hohhot_day(session.cases.clock())
        reminder = (await policy_in_force(session.settings, session.store)).cases.deadlines.reminder
        row = _row(case, session, today, reminder)
        session.record("showCase", read=True, case=case.id, subject=case.subject)
        history = [
            {"at": utc_text(s.at), "action": s.action, "status": s.to_status, "by": s.by, "as": s.by_kind, "note": s.note}
            for s in case.history
        ]
        files = [{"filename": a.filename, "media_type": a.media_type, "size": a.size, "sha256": a.sha256} for a in case.attachments]
        if args.json:
            session.listing([{**row, "description": case.description, "history": history, "attachments": files}], (), True, "")
            return 0
        for key, value in row.items():
            session.say(f"{key:>12}  {value}")
        session.say(f"{'description':>12}  {case.description}")
        session.say("")
        session.listing(history, ("at", "action", "status", "by", "as", "note"), False, "no steps")
        if files:
            session.say("")
            session.listing(files, ("filename", "media_type", "size", "sha256"), False, "")
        return 0

    return run_admin(args, NAME, show)


def run_assign(args: argparse.Namespace) -> int:
    async def assign(session: AdminSession) -> int:
        known = federation_departments(session.settings)
        if known and args.department not in known:
            raise CaseInputError(f"department: one of {', '.join(sorted(known))}")
        case = await assign_case(session.cases, args.case_id, args.department, args.note, Actor.credit_office(session.by))
        session.record("assignCase", case=case.id, subject=case.subject, kind=case.kind, department=args.department)
        session.say(f"{case.kind} {case.id} assigned to {args.department}: due {case.deadline}")
        return 0

    return run_admin(args, NAME, assign)
