"""`xinlian purposes list|define|retire`: the purposes (用途) clients may declare for AUTHORIZED data.

`define` and `retire` go through `AdminOperations` like the admin API's `definePurpose` and
`retirePurpose`, and are audited (`admin_session.py`). Refused input: stderr, exit 2.
"""

from __future__ import annotations

import argparse

from .admin_session import AdminSession, add_common_arguments, run_admin
from .tables import utc_text

NAME = "purposes"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    purposes = sub.add_parser(NAME, help="purposes clients may declare (list, define, retire)")
    actions = purposes.add_subparsers(dest="purposes_command", required=True)

    ls = actions.add_parser("list", help="list the purposes")
    ls.add_argument("--all", action="store_true", help="include retired purposes")
    ls.add_argument("--json", action="store_true", help="one JSON object per purpose and line")
    add_common_arguments(ls, changes=False)
    ls.set_defaults(handler=run_list)

    define = actions.add_parser("define", help="define a purpose")
    define.add_argument("code", metavar="CODE", help="a-z 0-9 . _ -, e.g. loan-review")
    define.add_argument("label", metavar="LABEL", help="e.g. 贷款审批")
    define.add_argument("--description", default="", help="what the purpose covers")
    add_common_arguments(define)
    define.set_defaults(handler=run_define)

    retire = actions.add_parser("retire", help="retire a purpose (declaring it grants nothing from now on)")
    retire.add_argument("code", metavar="CODE")
    add_common_arguments(retire)
    retire.set_defaults(handler=run_retire)


def run_list(args: argparse.Namespace) -> int:
    async def ls(session: AdminSession) -> int:
        records = await session.operations.purposes.list(include_retired=args.all)
        rows = [
            {"code": r.code, "label": r.label, "description": r.description or "", "retired": bool(r.retired),
             "created_at": utc_text(r.created_at)}
            for r in records
        ]
        empty = "no purposes (define one with: xinlian purposes define CODE LABEL)"
        session.listing(rows, ("code", "label", "retired", "description"), args.json, empty)
        return 0

    return run_admin(args, NAME, ls)


def run_define(args: argparse.Namespace) -> int:
    async def define(session: AdminSession) -> int:
        record = await session.operations.define_purpose(args.code, args.label, args.description)
        session.say(f"defined {record.code} ({record.label})")
        return 0

    return run_admin(args, NAME, define)


def run_retire(args: argparse.Namespace) -> int:
    async def retire(session: AdminSession) -> int:
        record = await session.operations.retire_purpose(args.code)
        session.say(f"retired {record.code}: clients declaring it receive no AUTHORIZED data for it")
        return 0

    return run_admin(args, NAME, retire)
