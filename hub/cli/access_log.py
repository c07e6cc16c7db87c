"""`xinlian access-log SUBJECT [--first N] [--before SEQ] [--json]`: who accessed a subject's data.

A subject's view of the audit trail (`hub.audit.access_log.SubjectAccessLog`), newest first: when,
which client, for what purpose, which fields were released, masked or denied. Read only (it
writes no audit entry). The admin API's `subjectAccessLog` gives the same on the subject's behalf.
"""

from __future__ import annotations

import argparse
import json

from xinlian.hub.admin.operations import AdminInputError
from xinlian.hub.audit.access_log import DEFAULT_FIRST, MAX_FIRST, SubjectAccessLog
from xinlian.hub.governance.objections import ObjectionError, check_subject

from .admin_session import AdminSession, add_common_arguments, run_admin

NAME = "access-log"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    log = sub.add_parser(NAME, help="who accessed a subject's data (the subject's access log)")
    log.add_argument("subject", metavar="SUBJECT", help="USCC or resident ID")
    log.add_argument(
        "--first", type=int, default=DEFAULT_FIRST, metavar="N", help=f"how many, 1 to {MAX_FIRST} (default {DEFAULT_FIRST})"
    )
    log.add_argument("--before", type=int, default=None, metavar="SEQ", help="only entries older than this one (paging)")
    log.add_argument("--json", action="store_true", help="one JSON object per access and line")
    add_common_arguments(log, changes=False)
    log.set_defaults(handler=run_access_log)


def run_access_log(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        try:
            subject = check_subject(args.subject)
        except ObjectionError as exc:
            raise AdminInputError(str(exc)) from None
        if not 1 <= args.first <= MAX_FIRST:
            raise AdminInputError(f"--first: between 1 and {MAX_FIRST}")
        page = await SubjectAccessLog(session.store).entries(subject, first=args.first, before_seq=args.before)
        for item in page.items:
            if args.json:
                session.say(json.dumps(item.to_document(), ensure_ascii=False))
                continue
            who = f"{item.client_name or item.client_id} ({item.client_kind})" if item.client_id else "public"
            purpose = f"  purpose {item.purpose}" if item.purpose else ""
            session.say(f"#{item.seq}  {item.at:%Y-%m-%d %H:%M:%S}Z  {item.endpoint}  {who}  {item.outcome}{purpose}")
            for label, fields in (("released", item.released), ("masked", item.masked), ("denied", item.denied)):
                if fields:
                    session.say(f"    {label}: {', '.join(fields)}")
        if not args.json:
            if not page.items:
                session.say(f"no accesses of {subject}'s data on record")
            elif page.next_before is not None:
                session.say(f"(older: --before {page.next_before})")
        return 0

    return run_admin(args, NAME, show)
