"""`xinlian review list|approve|reject`: the review before publication (预留审核环节).

- `list [--status pending|approved|rejected|all] [--department D] [--family F] [--limit N] [--json]`
  — the queue, oldest sighting first (pending by default);
- `approve ID [ID ...] [--note TEXT]` — the records show on `/public/graphql` (every hub process
  within the change feed's interval);
- `reject ID [ID ...] --note TEXT` — they never do.

Decisions are all or none (an item that is not pending refuses the lot, nothing changes) and
audited as the CLI's `--by` with the records' subjects. Refused input: stderr, exit 2.
"""

from __future__ import annotations

import argparse
from typing import Any

from xinlian.hub.cases.model import CaseInputError
from xinlian.hub.cases.review import ReviewItem, ReviewQueue

from .admin_session import AdminSession, add_common_arguments, run_admin
from .tables import utc_text

NAME = "review"


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    review = sub.add_parser(NAME, help="the review before publication of new PUBLIC records (list, approve, reject)")
    actions = review.add_subparsers(dest="review_command", required=True)

    ls = actions.add_parser("list", help="the queue, oldest sighting first")
    ls.add_argument("--status", default="pending", choices=("pending", "approved", "rejected", "all"))
    ls.add_argument("--department", default=None, help="a department's connector name (e.g. environment)")
    ls.add_argument("--family", default=None, help="a record family (e.g. penalties)")
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--json", action="store_true", help="one JSON object per item and line")
    add_common_arguments(ls, changes=False)
    ls.set_defaults(handler=run_list)

    for action, help_text in (("approve", "show the records on the public endpoint"), ("reject", "never show them")):
        parser = actions.add_parser(action, help=help_text)
        parser.add_argument("ids", metavar="ID", type=int, nargs="+")
        parser.add_argument("--note", default="", required=action == "reject", help="why (required to reject)")
        add_common_arguments(parser)
        parser.set_defaults(handler=run_decide, action=action)


def _row(item: ReviewItem) -> dict[str, Any]:
    k = item.key
    return {
        "id": item.id, "department": k.department, "family": k.family, "subject": k.subject, "record_key": k.record_key,
        "status": item.status, "first_seen_at": utc_text(item.first_seen_at), "decided_at": utc_text(item.decided_at),
        "decided_by": item.decided_by, "note": item.note,
    }


def run_list(args: argparse.Namespace) -> int:
    async def ls(session: AdminSession) -> int:
        status = None if args.status == "all" else args.status
        found = await ReviewQueue(session.store).find(status, args.department, args.family, args.limit)
        session.record("reviewItems", read=True, status=status, department=args.department, family=args.family, listed=len(found))
        columns = ("id", "department", "family", "subject", "record_key", "status", "first_seen_at")
        session.listing([_row(i) for i in found], columns, args.json, "the review queue is empty")
        return 0

    return run_admin(args, NAME, ls)


def run_decide(args: argparse.Namespace) -> int:
    async def decide(session: AdminSession) -> int:
        if args.action == "reject" and not args.note.strip():
            raise CaseInputError("--note: say why the records are rejected")
        decided = await ReviewQueue(session.store).decide(args.ids, args.action, args.note, session.by)
        for item in decided:
            session.record(f"{args.action}ReviewItem", id=item.id, subject=item.key.subject, family=item.key.family,
                           record_key=item.key.record_key, note=args.note.strip() or None)
        session.say(f"{len(decided)} item(s) {decided[0].status}: {', '.join(str(i.id) for i in decided)}")
        return 0

    return run_admin(args, NAME, decide)
