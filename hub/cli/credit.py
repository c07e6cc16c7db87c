"""`xinlian measures|findings|lists`: the measures catalogue, findings and the red and black lists.

- `measures list [--context C]` — the measures catalogue of the policy in force (失信惩戒措施清单
  / 守信激励措施清单); `measures check SUBJECT... --context C` — credit checks as the credit office;
  `measures feedback [--department D]` — 实施反馈 totals.
- `findings list [--subject S] [--department D]`, `findings record SUBJECT --basis B --department D
  --facts ... --legal-basis ... --decided-on YYYY-MM-DD` (the credit office entering a
  department's decision), `findings revoke ID --reason ...`.
- `lists show black|red [--first N] [--after ID]`, `lists history ID`, `lists add-red SUBJECT
  --basis B --department D --reason ... --listed-on YYYY-MM-DD`, `lists cancel ID --reason`
  (a court's cancellation), `lists expire` (record the expiries due today).

Changes go through the hub's `CreditGovernance` (a hub opened for the command: the same checks as
`/graphql` and the admin API, the subject's registered name looked up when not given, the
subject re-rated) and are audited as CLI entries (`admin_session.py`); refused input: stderr,
exit 2. Reads need only the hub store.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

from xinlian.hub.credit.checks import finding_until
from xinlian.hub.credit.feedback import FeedbackRegister
from xinlian.hub.credit.model import LIST_LABELS, CreditInputError, RecordRef
from xinlian.hub.credit.register import CreditRegister
from xinlian.policies.model import Policy

from .admin_session import AdminSession, add_common_arguments, run_admin
from .admin_session import policy_in_force as session_policy
from .tables import utc_text

if TYPE_CHECKING:
    from xinlian.hub.runtime import HubRuntime

T = TypeVar("T")

CHINA = dt.timezone(dt.timedelta(hours=8))


def today() -> dt.date:
    """Today in Hohhot, as the hub counts listing dates."""
    return dt.datetime.now(CHINA).date()


async def policy_in_force(session: AdminSession) -> Policy:
    """The store's active policy version (the configured file's before the hub first started)."""
    return await session_policy(session.settings, session.store)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    measures = sub.add_parser("measures", help="the measures catalogue of joint rewards and sanctions")
    m = measures.add_subparsers(dest="measures_command", required=True)
    ls = m.add_parser("list", help="the measures of the policy in force")
    ls.add_argument("--context", default=None, help="only measures applying in this context (e.g. bidding)")
    ls.add_argument("--json", action="store_true")
    add_common_arguments(ls, changes=False)
    ls.set_defaults(handler=run_measures)
    ck = m.add_parser("check", help="a credit check of subjects in a context (the credit office's view)")
    ck.add_argument("subjects", nargs="+", metavar="SUBJECT")
    ck.add_argument("--context", required=True, help="e.g. government-procurement, bidding, licensing, subsidies, lending")
    ck.add_argument("--json", action="store_true")
    add_common_arguments(ck)
    ck.set_defaults(handler=run_check)
    fb = m.add_parser("feedback", help="实施反馈 totals: measures applied per department")
    fb.add_argument("--department", default=None)
    fb.add_argument("--json", action="store_true")
    add_common_arguments(fb, changes=False)
    fb.set_defaults(handler=run_feedback)

    findings = sub.add_parser("findings", help="dishonesty findings (list, record, revoke)")
    f = findings.add_subparsers(dest="findings_command", required=True)
    fl = f.add_parser("list", help="findings, newest first")
    fl.add_argument("--subject", default=None)
    fl.add_argument("--department", default=None)
    fl.add_argument("--limit", type=int, default=100)
    fl.add_argument("--json", action="store_true")
    add_common_arguments(fl, changes=False)
    fl.set_defaults(handler=run_findings)
    fr = f.add_parser("record", help="record a department's finding (a serious one lists the subject)")
    fr.add_argument("subject", metavar="SUBJECT")
    fr.add_argument("--basis", required=True, help="a basis code of the policy's credit.bases")
    fr.add_argument("--department", required=True, help="the deciding department (its connector name)")
    fr.add_argument("--facts", required=True)
    fr.add_argument("--legal-basis", required=True)
    fr.add_argument("--decided-on", required=True, type=_date, metavar="YYYY-MM-DD")
    fr.add_argument("--record", action="append", default=[], metavar="FAMILY:KEY", help="a record it rests on (repeatable)")
    fr.add_argument("--measure", action="append", default=[], metavar="CODE", help="a proposed measure (repeatable)")
    fr.add_argument("--subject-name", default="")
    add_common_arguments(fr)
    fr.set_defaults(handler=run_record)
    rv = f.add_parser("revoke", help="revoke a finding (its listing is cancelled)")
    rv.add_argument("finding_id", type=int, metavar="ID")
    rv.add_argument("--reason", required=True)
    add_common_arguments(rv)
    rv.set_defaults(handler=run_revoke)

    lists = sub.add_parser("lists", help="the blacklist and the red list (show, history, cancel, expire)")
    li = lists.add_subparsers(dest="lists_command", required=True)
    sh = li.add_parser("show", help="current listings of a list, oldest first")
    sh.add_argument("list", choices=("black", "red"))
    sh.add_argument("--first", type=int, default=50)
    sh.add_argument("--after", type=int, default=None, metavar="ID", help="the last listing id of the previous page")
    sh.add_argument("--json", action="store_true")
    add_common_arguments(sh, changes=False)
    sh.set_defaults(handler=run_show)
    hi = li.add_parser("history", help="a listing's transitions")
    hi.add_argument("listing_id", type=int, metavar="ID")
    add_common_arguments(hi, changes=False)
    hi.set_defaults(handler=run_history)
    ar = li.add_parser("add-red", help="record a department's red-list entry on a red-list basis")
    ar.add_argument("subject", metavar="SUBJECT")
    ar.add_argument("--basis", required=True, help="a red-list basis code of the policy's credit.bases")
    ar.add_argument("--department", required=True)
    ar.add_argument("--reason", required=True)
    ar.add_argument("--listed-on", required=True, type=_date, metavar="YYYY-MM-DD")
    ar.add_argument("--subject-name", default="")
    add_common_arguments(ar)
    ar.set_defaults(handler=run_add_red)
    ca = li.add_parser("cancel", help="record a court's cancellation of a listing")
    ca.add_argument("listing_id", type=int, metavar="ID")
    ca.add_argument("--reason", required=True, help="the ruling, e.g. （2026）内0102执异12号")
    add_common_arguments(ca)
    ca.set_defaults(handler=run_cancel)
    ex = li.add_parser("expire", help="record the expiry of listings whose end date has passed")
    add_common_arguments(ex)
    ex.set_defaults(handler=run_expire)


def run_measures(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        rules = (await policy_in_force(session)).credit
        if args.context is not None and args.context not in rules.contexts:
            raise CreditInputError(f"unknown context {args.context!r} (one of {', '.join(rules.contexts)})")
        chosen = rules.measures if args.context is None else rules.measures_in(args.context)
        rows = [
            {"code": m.code, "effect": m.effect.value, "name": m.name, "contexts": list(m.contexts),
             "on": [str(t) for t in m.on], "department": m.department, "basis": m.basis}
            for m in chosen
        ]
        session.listing(rows, ("code", "effect", "name", "contexts", "on", "department"), args.json, "no measures")
        return 0

    return run_admin(args, "measures", show)


def run_feedback(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        rules = (await policy_in_force(session)).credit
        totals = await FeedbackRegister(session.store).totals(rules, args.department)
        rows = [vars(t) | {"last_applied_on": t.last_applied_on.isoformat()} for t in totals]
        session.listing(rows, ("department", "measure", "measure_name", "applied", "last_applied_on"), args.json, "no feedback")
        return 0

    return run_admin(args, "measures", show)


def _finding_row(f: Any, policy: Policy) -> dict[str, Any]:
    until = finding_until(policy.credit, f)
    return {
        "id": f.id, "subject": f.subject, "name": f.subject_name, "severity": f.severity, "basis": f.basis,
        "department": f.department, "decided_on": f.decided_on.isoformat(), "until": until.isoformat() if until else None,
        "status": f.status, "facts": f.facts,
    }


def run_findings(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        policy = await policy_in_force(session)
        if not 1 <= args.limit <= 10_000:
            raise CreditInputError("--limit: 1 to 10000")
        found = await CreditRegister(session.store).findings(args.subject, args.department, args.limit)
        rows = [_finding_row(f, policy) for f in found]
        session.listing(rows, ("id", "subject", "name", "severity", "basis", "department", "decided_on", "until", "status"),
                        args.json, "no findings")
        return 0

    return run_admin(args, "findings", show)


def _refs(texts: list[str]) -> list[RecordRef]:
    refs = []
    for text in texts:
        family, sep, key = text.partition(":")
        if not sep:
            raise CreditInputError(f"--record {text!r}: FAMILY:KEY, e.g. penalties:新市监罚〔2026〕12号")
        refs.append(RecordRef(family.strip(), key.strip()))
    return refs


async def governed(session: AdminSession, action: Callable[[HubRuntime], Awaitable[T]]) -> T:
    """Run a change through the hub's `CreditGovernance` (as /graphql and the admin API do: the
    subject's registered name looked up, the subject re-rated), on a hub opened for the command."""
    from xinlian.hub.runtime import HubRuntime

    runtime = await HubRuntime.open(session.settings, schedule=False)
    try:
        return await action(runtime)
    finally:
        await runtime.close()


def run_record(args: argparse.Namespace) -> int:
    async def record(session: AdminSession) -> int:
        refs = _refs(args.record)
        outcome = await governed(session, lambda hub: hub.credit.record_finding(
            hub.policy, subject=args.subject, basis=args.basis, facts=args.facts, legal_basis=args.legal_basis,
            records=refs, department=args.department, decided_on=args.decided_on, measures=args.measure,
            by=session.by, today=hub.today(), subject_name=args.subject_name,
        ))
        finding = outcome.finding
        session.record("recordFinding", subject=finding.subject, finding=finding.id, basis=finding.basis,
                       department=finding.department, listing=outcome.listing.id if outcome.listing else None)
        session.say(f"finding {finding.id} recorded: {finding.subject} {finding.severity} ({finding.basis})")
        if outcome.listing is not None:
            listing = outcome.listing
            session.say(f"listing {listing.id}: {LIST_LABELS[listing.list]} {listing.listed_on} – {listing.ends_on}")
        return 0

    return run_admin(args, "findings", record)


def run_revoke(args: argparse.Namespace) -> int:
    async def revoke(session: AdminSession) -> int:
        finding = await governed(session, lambda hub: hub.credit.revoke_finding(
            hub.policy, args.finding_id, None, args.reason, session.by, hub.today()
        ))
        session.record("revokeFinding", subject=finding.subject, finding=finding.id, reason=args.reason)
        session.say(f"finding {finding.id} revoked; its listing (if any) cancelled")
        return 0

    return run_admin(args, "findings", revoke)


def _listing_row(x: Any) -> dict[str, Any]:
    return {
        "id": x.id, "subject": x.subject, "name": x.subject_name, "basis": x.basis, "department": x.department,
        "listed_on": x.listed_on.isoformat(), "ends_on": x.ends_on.isoformat() if x.ends_on else None, "status": x.status,
    }


def run_show(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        items, more = await CreditRegister(session.store).page(args.list, today(), args.first, args.after)
        session.listing([_listing_row(x) for x in items], ("id", "subject", "name", "basis", "department", "listed_on", "ends_on"),
                        args.json, f"nobody on the {args.list} list")
        if more and not args.json:
            session.say(f"... more: --after {items[-1].id}")
        return 0

    return run_admin(args, "lists", show)


def run_history(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        register = CreditRegister(session.store)
        listing = await register.listing(args.listing_id)
        if listing is None:
            raise CreditInputError(f"no listing {args.listing_id}")
        session.say(f"listing {listing.id}: {listing.subject} {listing.subject_name} on the {listing.list} list "
                    f"({listing.basis}), {listing.status}")
        rows = [{"at": utc_text(t.at), "action": t.action, "by": t.by, "reason": t.reason}
                for t in await register.history(listing.id)]
        session.listing(rows, ("at", "action", "by", "reason"), False, "no transitions")
        return 0

    return run_admin(args, "lists", show)


def run_cancel(args: argparse.Namespace) -> int:
    async def cancel(session: AdminSession) -> int:
        listing = await governed(session, lambda hub: hub.credit.end_listing(
            hub.policy, args.listing_id, "cancelled", args.reason, session.by, hub.today(), None
        ))
        session.record("cancelListing", subject=listing.subject, listing=listing.id, reason=args.reason)
        session.say(f"listing {listing.id} cancelled ({listing.subject})")
        return 0

    return run_admin(args, "lists", cancel)


def run_expire(args: argparse.Namespace) -> int:
    async def expire(session: AdminSession) -> int:
        count = await governed(session, lambda hub: hub.credit.expire_due(hub.today(), session.by))
        session.record("expireListings", expired=count)
        session.say(f"{count} listing(s) expired")
        return 0

    return run_admin(args, "lists", expire)


def run_check(args: argparse.Namespace) -> int:
    async def check(session: AdminSession) -> int:
        results = await governed(session, lambda hub: hub.credit.check(hub.policy, args.subjects, args.context, hub.today()))
        for r in results:
            session.record("creditCheck", read=True, subject=r.subject, context=args.context, verdict=r.verdict.value)
        rows = [
            {"subject": r.subject, "verdict": r.verdict.value, "measures": [a.measure.code for a in r.measures],
             "rewards": [a.measure.code for a in r.rewards],
             "reasons": [f"{x.kind}:{x.id}:{x.basis}" for x in r.reasons]}
            for r in results
        ]
        session.listing(rows, ("subject", "verdict", "measures", "rewards", "reasons"), args.json, "no subjects")
        return 0

    return run_admin(args, "measures", check)


def run_add_red(args: argparse.Namespace) -> int:
    async def add(session: AdminSession) -> int:
        listing = await governed(session, lambda hub: hub.credit.red_list(
            hub.policy, subject=args.subject, basis=args.basis, reason=args.reason, department=args.department,
            listed_on=args.listed_on, by=session.by, today=hub.today(), subject_name=args.subject_name,
        ))
        session.record("addRedListing", subject=listing.subject, listing=listing.id, basis=listing.basis,
                       department=listing.department)
        session.say(f"listing {listing.id}: {LIST_LABELS[listing.list]} {listing.subject} {listing.listed_on} – {listing.ends_on}")
        return 0

    return run_admin(args, "lists", add)
