"""`xinlian clients create (alias add)|show|rotate-secret|set-scope|set-purposes|set-subject|set-department|enable`.

The client administration of the admin API (`createClient`, `rotateClientSecret`, ...) on the
command line, through the same `AdminOperations`: the same checks, the same audit actions
(`endpoint` "cli", `client_id` the `--by` name). A secret is printed once, after its audit entry
is written. Refused input: the reason on stderr, exit 2, nothing changed. Scopes must be known
(the policy's, plus `admin`); a widening (`admin` for a non-admin kind, more disclosure classes)
needs `--confirm-widening` and is recorded with `detail.warning` in its audit entry.

A `department` client speaks for one department (`--department`, `set-department`), named by its
connector's name in the federation; when the data directory's connectors file
(`$XINLIAN_CONNECTORS` or `<data-dir>/connectors.toml`) names connectors, the department must be
one of them, as the admin API checks against the running hub's federation.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from typing import Any

from xinlian.hub.admin.operations import AdminInputError, split_codes
from xinlian.hub.auth.clients import CLIENT_KINDS, DEFAULT_SCOPES
from xinlian.hub.config import Settings

from .admin_session import REFUSED, AdminSession, add_common_arguments, run_admin

NAME = "clients"
WIDENING_HELP = ("needed when the scope widens what the client may see (admin, or more disclosure classes "
                 "than its kind's default / its current scope); the audit entry carries a warning")


def register_actions(actions: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    create = actions.add_parser(
        "create", aliases=["add"], help="register a client (purposes, subject); print its secret once (alias: add)"
    )
    create.add_argument("name", metavar="NAME", nargs="?", default=None,
                        help="the client's name, e.g. the bank branch's full name (or --name)")
    create.add_argument("--name", dest="name_option", default=None, metavar="NAME", help="the client's name")
    create.add_argument("--kind", required=True, choices=CLIENT_KINDS, help="client kind")
    create.add_argument(
        "--scope", default=None,
        help="space-separated scopes, known to the policy (or admin); default by kind: "
        + "; ".join(f"{kind}: {scope}" for kind, scope in DEFAULT_SCOPES.items()),
    )
    create.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP)
    create.add_argument(
        "--jwks-file", default=None, metavar="FILE",
        help="the client's PUBLIC JWK or JWK Set: it authenticates with private_key_jwt, no secret is issued",
    )
    create.add_argument("--purposes", default=None, metavar="A,B", help="purposes it may declare (defined, not retired)")
    create.add_argument("--subject", default=None, metavar="ID", help="the credit subject a `subject` client speaks for")
    create.add_argument(
        "--department", default=None, metavar="NAME",
        help="the department a `department` client speaks for: its connector's name in the federation, e.g. market",
    )
    create.add_argument("--client-id", default=None, help="choose the client id (default: generated)")
    create.add_argument("--json", action="store_true", help="print the new client as JSON")
    add_common_arguments(create)
    create.set_defaults(handler=run_create)

    show = actions.add_parser("show", help="show one client (never its secret)")
    show.add_argument("client_id", metavar="CLIENT_ID")
    show.add_argument("--json", action="store_true", help="print the client as JSON")
    add_common_arguments(show, changes=False)
    show.set_defaults(handler=run_show)

    rotate = actions.add_parser("rotate-secret", help="give a client a new secret (the old one stops at once)")
    rotate.add_argument("client_id", metavar="CLIENT_ID")
    rotate.add_argument("--json", action="store_true", help="print the new secret as JSON")
    add_common_arguments(rotate)
    rotate.set_defaults(handler=run_rotate)

    scope = actions.add_parser("set-scope", help="replace the scopes a client may ask for (new tokens only)")
    scope.add_argument("client_id", metavar="CLIENT_ID")
    scope.add_argument("scope", metavar="SCOPE", help='space-separated scopes, e.g. "credit:public credit:authorized"')
    scope.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP)
    add_common_arguments(scope)
    scope.set_defaults(handler=run_set_scope)

    purposes = actions.add_parser("set-purposes", help="replace the purposes a client may declare ('' for none)")
    purposes.add_argument("client_id", metavar="CLIENT_ID")
    purposes.add_argument("purposes", metavar="A,B")
    add_common_arguments(purposes)
    purposes.set_defaults(handler=run_set_purposes)

    subject = actions.add_parser("set-subject", help="bind a `subject` client to its credit subject (omit to unbind)")
    subject.add_argument("client_id", metavar="CLIENT_ID")
    subject.add_argument("subject", metavar="SUBJECT", nargs="?", default=None, help="USCC or resident ID")
    add_common_arguments(subject)
    subject.set_defaults(handler=run_set_subject)

    department = actions.add_parser(
        "set-department", help="bind a `department` client to the department it speaks for (omit to unbind)"
    )
    department.add_argument("client_id", metavar="CLIENT_ID")
    department.add_argument(
        "department", metavar="DEPARTMENT", nargs="?", default=None,
        help="its connector's name in the federation, e.g. market",
    )
    add_common_arguments(department)
    department.set_defaults(handler=run_set_department)

    enable = actions.add_parser("enable", help="accept a disabled client again")
    enable.add_argument("client_id", metavar="CLIENT_ID")
    add_common_arguments(enable)
    enable.set_defaults(handler=run_enable)


def _describe(session: AdminSession, record: Any, secret: str | None = None) -> None:
    rows = [("client_id", record.client_id)]
    if secret is not None:
        rows.append(("client_secret", secret))
    rows += [
        ("name", record.name),
        ("kind", record.kind),
        ("scope", record.scope),
        ("purposes", record.purposes or "-"),
        ("subject", record.subject_id or "-"),
        ("department", record.department or "-"),
        ("disabled", str(bool(record.disabled)).lower()),
    ]
    for label, value in rows:
        session.say(f"{label:<14} {value}")


def _document(record: Any, secret: str | None = None) -> str:
    shown: dict[str, Any] = {"client_id": record.client_id}
    if secret is not None:
        shown["client_secret"] = secret
    shown.update(
        kind=record.kind, scope=record.scope, purposes=(record.purposes or "").split(), subject_id=record.subject_id,
        department=record.department,
    )
    return json.dumps(shown, ensure_ascii=False)


def federation_departments(settings: Settings) -> frozenset[str]:
    """The connector names of the connectors file the hub of these settings federates (empty
    without a file: then only a department's form is checked). `AdminInputError` if it cannot be read."""
    path = settings.connectors_path
    if path is None or not path.exists():
        return frozenset()
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AdminInputError(f"cannot read the connectors file {path} to check the department: {exc}") from None
    entries = document.get("connector", [])
    return frozenset(
        entry["name"] for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    )


def _knowing_departments(session: AdminSession, department: str | None) -> None:
    """Let the session's operations check `department` against the federation's connectors."""
    if department is not None and department.strip():
        session.operations.departments = federation_departments(session.settings)


def _warn(session: AdminSession) -> None:
    for action in session.operations.actions:
        if action.get("warning"):
            print(f"xinlian {NAME}: warning: {action['warning']} (recorded in the audit entry)", file=sys.stderr)


def run_create(args: argparse.Namespace) -> int:
    if args.name and args.name_option and args.name != args.name_option:
        print(f"xinlian {NAME}: two different names given ({args.name!r}, --name {args.name_option!r})", file=sys.stderr)
        return REFUSED
    name = args.name or args.name_option
    if not name:
        print(f"xinlian {NAME}: name the client (NAME or --name)", file=sys.stderr)
        return REFUSED
    if args.jwks_file is not None:
        return _create_with_keys(args, name)

    async def create(session: AdminSession) -> int:
        _knowing_departments(session, args.department)
        record, secret = await session.operations.create_client(
            name, args.kind, args.scope, split_codes(args.purposes), args.subject, args.client_id,
            department=args.department, confirm_widening=args.confirm_widening,
        )
        _warn(session)
        if args.json:
            session.say(_document(record, secret))
        else:
            _describe(session, record, secret)
            session.say("The secret is shown only this once; the hub keeps only its hash.")
        return 0

    return run_admin(args, NAME, create)


def _create_with_keys(args: argparse.Namespace, name: str) -> int:
    from .clients import _read_jwks_file

    if args.purposes or args.subject:
        print(f"xinlian {NAME}: --purposes and --subject are set afterwards for a --jwks-file client "
              "(set-purposes, set-subject)", file=sys.stderr)
        return REFUSED
    jwks = _read_jwks_file(args.jwks_file)
    if jwks is None:
        return REFUSED

    async def create(session: AdminSession) -> int:
        _knowing_departments(session, args.department)
        record = await session.operations.create_client_with_keys(
            name, args.kind, jwks, args.scope, args.client_id, department=args.department,
            confirm_widening=args.confirm_widening,
        )
        _warn(session)
        kids = [key["kid"] for key in json.loads(record.jwks or "{}").get("keys", [])]
        method = "private_key_jwt"
        if args.json:
            shown = {"client_id": record.client_id, "kind": record.kind, "scope": record.scope,
                     "department": record.department}
            session.say(json.dumps({**shown, "token_endpoint_auth_method": method, "kids": kids}))
        else:
            session.say(f"client_id                   {record.client_id}")
            session.say(f"kind                        {record.kind}")
            session.say(f"scope                       {record.scope}")
            if record.department:
                session.say(f"department                  {record.department}")
            session.say(f"token_endpoint_auth_method  {method}")
            session.say(f"kids                        {' '.join(kids)}")
            session.say("No secret is issued: the client signs a JWT assertion with its private key (see docs/auth.md).")
        return 0

    return run_admin(args, NAME, create)


def run_show(args: argparse.Namespace) -> int:
    async def show(session: AdminSession) -> int:
        record = await session.operations.client(args.client_id)
        if args.json:
            session.say(_document(record))
        else:
            _describe(session, record)
        return 0

    return run_admin(args, NAME, show)


def run_rotate(args: argparse.Namespace) -> int:
    async def rotate(session: AdminSession) -> int:
        secret = await session.operations.rotate_secret(args.client_id)
        if args.json:
            session.say(json.dumps({"client_id": args.client_id, "client_secret": secret}))
        else:
            session.say(f"client_id      {args.client_id}")
            session.say(f"client_secret  {secret}")
            session.say("The old secret no longer works; tokens already issued run until they expire.")
        return 0

    return run_admin(args, NAME, rotate)


def run_set_scope(args: argparse.Namespace) -> int:
    async def set_scope(session: AdminSession) -> int:
        record = await session.operations.set_client_scope(
            args.client_id, args.scope, confirm_widening=args.confirm_widening
        )
        _warn(session)
        session.say(f"{record.client_id} may now ask for: {record.scope}")
        return 0

    return run_admin(args, NAME, set_scope)


def run_set_purposes(args: argparse.Namespace) -> int:
    async def set_purposes(session: AdminSession) -> int:
        record = await session.operations.set_client_purposes(args.client_id, split_codes(args.purposes))
        session.say(f"{record.client_id} may now declare: {record.purposes or '(no purpose)'}")
        return 0

    return run_admin(args, NAME, set_purposes)


def run_set_subject(args: argparse.Namespace) -> int:
    async def set_subject(session: AdminSession) -> int:
        record = await session.operations.set_client_subject(args.client_id, args.subject)
        session.say(f"{record.client_id} speaks for: {record.subject_id or '(no subject)'}")
        return 0

    return run_admin(args, NAME, set_subject)


def run_set_department(args: argparse.Namespace) -> int:
    async def set_department(session: AdminSession) -> int:
        _knowing_departments(session, args.department)
        record = await session.operations.set_client_department(args.client_id, args.department)
        session.say(f"{record.client_id} speaks for: {record.department or '(no department)'}")
        return 0

    return run_admin(args, NAME, set_department)


def run_enable(args: argparse.Namespace) -> int:
    async def enable(session: AdminSession) -> int:
        record = await session.operations.enable_client(args.client_id)
        session.say(f"enabled {record.client_id}")
        return 0

    return run_admin(args, NAME, enable)
