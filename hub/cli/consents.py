"""`xinlian consents list|grant|revoke`: natural persons' consents (授权书) to clients.

`grant SUBJECT CLIENT PURPOSE --days N | --until DATE` records a consent the way the admin API's
`registerConsent` does: the client and the purpose must exist and the purpose must be among the
client's purposes. `--until 2026-12-31` means through the end of that day (China Standard Time);
a full time (`2026-12-31T18:00+08:00`) is taken as given. `revoke ID` ends a consent from now on
(it stays on file). Changes are audited (`admin_session.py`). Refused input: stderr, exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from xinlian.hub.admin.operations import AdminInputError

from .admin_session import AdminSession, add_common_arguments, run_admin
from .tables import utc, utc_text

NAME = "consents"
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    consents = sub.add_parser(NAME, help="natural persons' consents to clients (list, grant, revoke)")
    actions = consents.add_subparsers(dest="consents_command", required=True)

    ls = actions.add_parser("list", help="list consents, newest first")
    ls.add_argument("--subject", default=None, metavar="ID", help="only this person's (resident ID)")
    ls.add_argument("--client", default=None, metavar="CLIENT_ID", help="only this client's")
    ls.add_argument("--json", action="store_true", help="one JSON object per consent and line")
    add_common_arguments(ls, changes=False)
    ls.set_defaults(handler=run_list)

    grant = actions.add_parser("grant", help="record a consent")
    grant.add_argument("subject", metavar="SUBJECT", help="the person's resident ID")
    grant.add_argument("client_id", metavar="CLIENT_ID")
    grant.add_argument("purpose", metavar="PURPOSE", help="one of the client's purposes")
    until = grant.add_mutually_exclusive_group(required=True)
    until.add_argument("--days", type=int, default=None, metavar="N", help="valid for N days from now")
    until.add_argument("--until", default=None, metavar="DATE", help="valid through DATE (YYYY-MM-DD, CST) or until a time")
    grant.add_argument("--reference", default="", help="the signed form's number")
    add_common_arguments(grant)
    grant.set_defaults(handler=run_grant)

    revoke = actions.add_parser("revoke", help="revoke a consent from now on")
    revoke.add_argument("consent_id", metavar="ID", type=int)
    add_common_arguments(revoke)
    revoke.set_defaults(handler=run_revoke)


def expiry(days: int | None, until: str | None, now: dt.datetime | None = None) -> dt.datetime:
    """When a consent granted now expires, from `--days` or `--until`."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if days is not None:
        if days < 1:
            raise AdminInputError("--days: at least 1")
        return now + dt.timedelta(days=days)
    text = (until or "").strip()
    try:
        if len(text) == 10:  # a date: through the end of that day in Hohhot
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), CHINA_STANDARD_TIME)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AdminInputError(f"--until: {until!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_STANDARD_TIME)


def _row(r: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc)
    in_force = utc(r.granted_at) <= now < utc(r.expires_at) and (r.revoked_at is None or utc(r.revoked_at) > now)
    return {
        "id": r.id, "subject": r.subject, "client_id": r.client_id, "purpose": r.purpose,
        "granted_at": utc_text(r.granted_at), "expires_at": utc_text(r.expires_at), "revoked_at": utc_text(r.revoked_at),
        "recorded_by": r.recorded_by, "reference": r.reference or "",
        "in_force": in_force,
    }


def run_list(args: argparse.Namespace) -> int:
    async def ls(session: AdminSession) -> int:
        records = await session.operations.consents.list(subject=args.subject, client_id=args.client)
        rows = [_row(r) for r in records]
        columns = ("id", "subject", "client_id", "purpose", "expires_at", "in_force", "reference")
        session.listing(rows, columns, args.json, "no consents")
        return 0

    return run_admin(args, NAME, ls)


def run_grant(args: argparse.Namespace) -> int:
    async def grant(session: AdminSession) -> int:
        expires = expiry(args.days, args.until)
        record = await session.operations.register_consent(
            args.subject, args.client_id, args.purpose, expires, args.reference
        )
        session.say(
            f"consent {record.id}: {record.subject} → {record.client_id} for {record.purpose}, "
            f"until {utc_text(record.expires_at)}"
        )
        return 0

    return run_admin(args, NAME, grant)


def run_revoke(args: argparse.Namespace) -> int:
    async def revoke(session: AdminSession) -> int:
        record = await session.operations.revoke_consent(args.consent_id)
        session.say(f"revoked consent {record.id} ({record.subject} → {record.client_id}, {record.purpose})")
        return 0

    return run_admin(args, NAME, revoke)
