"""`xinlian policy ...`: the disclosure policy's versions in the hub store.

Reading: `list` (every version, newest first, `*` marks the active one), `activations` (who
activated what, when, why), `show [VERSION] [--format toml|json]` (the active version by
default; the TOML can be edited and stored again with `import`), `diff A B`.

Changing (each needs `--reason`; `--by` names who, default "cli"): `set-class`, `clear-override`,
`set-mask`, `set-scope`, `import FILE` store a new version derived from the active one and
activate it (`--no-activate`: store only); `activate VERSION` puts an earlier (or not yet
active) version back in force. Versions are never edited or deleted. Running hubs follow the
active version within a second, without restart. Changes go through `PolicyOperations`, the
service the admin API uses, so both check names, classes and reasons alike (families and fields
may be named by their policy keys or GraphQL names). Every change also writes an entry to the audit
trail (endpoint "cli", `detail.action` "policy.<command>"). On a store that holds no version yet,
a change first stores the configured policy file as v1, as the hub does when it first starts.

A change, import or activation that widens disclosure (a field to a wider class, a scope granting
more classes) is refused unless `--confirm-widening` is given; a confirmed one is audited with
`detail.warning` listing what widened. `import --no-activate` needs no confirmation (it warns
what activating would widen); the later `activate` does.

Exit codes: 0 done; 2 refused or failed (unknown version, family, field or class, a change that
changes nothing, a scope granting CONFIDENTIAL, an unconfirmed widening, an unreadable file or
store) — nothing changed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import uuid
from typing import Any, Awaitable, Callable

import tomli_w
from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.admin.operations import AdminInputError
from xinlian.hub.admin.policy_admin import PolicyOperations
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.trail import AuditUnavailable
from xinlian.hub.config import Settings
from xinlian.hub.governance.policy_versions import PolicyHistory, PolicyHistoryEmpty, StoredPolicy, version_name
from xinlian.hub.store import Store
from xinlian.policies import DisclosureClass, PolicyError, default_policy_path, load_policy

from .admin_session import refuse_missing_store, sealed_trail

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"
CLASSES = [c.value for c in DisclosureClass]
AUDIENCES = [c.value for c in DisclosureClass if c is not DisclosureClass.CONFIDENTIAL]
PROG = "xinlian policy"
NOT_SEEDED = "the hub stores its policy file as v1 when it first starts, and so does the first change"


def _upper(text: str) -> str:
    return text.strip().upper()


WIDENING_HELP = ("needed when the change widens disclosure (a field to a wider class, a scope granting more "
                 "classes); the audit entry carries a warning")
WIDENING_HELP_VERSION = ("needed when the version that would come into force widens disclosure against the active "
                         "one (a field to a wider class, a scope granting more classes); the audit entry carries "
                         "a warning")

def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    policy = sub.add_parser("policy", help="disclosure policy versions: list, show, diff, change, activate")
    actions = policy.add_subparsers(dest="policy_command", required=True)

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, description=help)
        parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
        parser.set_defaults(handler=handler)
        return parser

    def change_options(parser: argparse.ArgumentParser, can_defer: bool = True) -> None:
        parser.add_argument("--reason", required=True, help="why (recorded with the version and in the audit trail)")
        parser.add_argument("--by", default="cli", help="who makes the change (default: cli)")
        if can_defer:
            parser.add_argument("--no-activate", action="store_true", help="store the new version without activating it")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    ls = command("list", "list the versions, newest first (* = active)", run_list)
    ls.add_argument("--json", action="store_true", help="one JSON object per version and line")

    history = command("activations", "the activation history, newest first", run_activations)
    history.add_argument("--json", action="store_true", help="one JSON object per activation and line")

    show = command("show", "print a version (default: the active one)", run_show)
    show.add_argument("version", nargs="?", default=None, metavar="VERSION", help="e.g. v3 (default: active)")
    show.add_argument("--format", choices=("toml", "json"), default="toml", help="toml (default) or json")

    diff = command("diff", "what changed from version A to version B", run_diff)
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--json", action="store_true", help="print the lines as a JSON array")

    set_class = command("set-class", "give a field ('*': every field of the family) a disclosure class", run_set_class)
    set_class.add_argument("family", metavar="FAMILY", help="record family, e.g. penalties")
    set_class.add_argument("field", metavar="FIELD", help="field, e.g. case_handler, or '*'")
    set_class.add_argument("disclosure", metavar="CLASS", type=_upper, choices=CLASSES, help=" | ".join(CLASSES))
    set_class.add_argument("--kind", default=None, help="only for this client kind (an override), e.g. bank")
    set_class.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP)
    change_options(set_class)

    clear = command("clear-override", "remove a client kind's override of a field", run_clear_override)
    clear.add_argument("family", metavar="FAMILY")
    clear.add_argument("field", metavar="FIELD", help="field, or '*' for every override of the family")
    clear.add_argument("--kind", required=True, help="the client kind, e.g. bank")
    clear.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP)
    change_options(clear)

    mask = command("set-mask", "set (or remove: none) the masking transform of a field for an audience", run_set_mask)
    mask.add_argument("family", metavar="FAMILY")
    mask.add_argument("field", metavar="FIELD")
    mask.add_argument("audience", metavar="AUDIENCE", type=_upper, choices=AUDIENCES, help=" | ".join(AUDIENCES))
    mask.add_argument("spec", metavar="SPEC", help="resident_id | uscc | name | phone | redact | round:N | none")
    change_options(mask)

    scope = command("set-scope", "set the classes an OAuth2 scope grants (none: remove the scope)", run_set_scope)
    scope.add_argument("scope", metavar="SCOPE", help="e.g. credit:shared")
    scope.add_argument("classes", metavar="CLASS", nargs="+", help="classes it grants (PUBLIC SHARED ...), or none")
    scope.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP)
    change_options(scope)

    imp = command("import", "store a whole policy file (TOML) as the next version", run_import)
    imp.add_argument("file", metavar="FILE", help="a policy TOML file (e.g. edited output of `show`)")
    imp.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP_VERSION)
    change_options(imp)

    act = command("activate", "put a stored version in force (e.g. back to an earlier one)", run_activate)
    act.add_argument("version", metavar="VERSION", help="e.g. v1")
    act.add_argument("--confirm-widening", action="store_true", help=WIDENING_HELP_VERSION)
    change_options(act, can_defer=False)


# --- running against the store ------------------------------------------------------------------


class CommandFailed(Exception):
    """A refusal found by the CLI itself (an unreadable file, an unknown version)."""


def _with_history(args: argparse.Namespace, action: Callable[[PolicyHistory, Settings], Awaitable[int]]) -> int:
    settings = Settings.from_env(args.data_dir)
    if refuse_missing_store(settings):  # never an empty store in a mistyped data directory
        return 2

    async def run() -> int:
        store = await Store.open(settings.database_url)
        try:
            return await action(PolicyHistory(store), settings)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (PolicyError, PolicyHistoryEmpty, CommandFailed, AdminInputError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
    except AuditUnavailable as exc:
        print(f"{PROG}: the change was stored, but its audit entry could not be written: {exc}", file=sys.stderr)
    except (OSError, SQLAlchemyError) as exc:  # the store is unreachable or unreadable
        print(f"{PROG}: cannot use the hub store: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=None))


# --- reading ------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    async def ls(history: PolicyHistory, settings: Settings) -> int:
        versions = await history.versions()
        if args.json:
            for info in versions:
                _print_json(info.to_document())
            return 0
        if not versions:
            print(f"no policy versions yet ({NOT_SEEDED})")
            return 0
        rows = [
            (
                ("* " if info.active else "  ") + info.version,
                _when(info.created_at),
                info.created_by,
                version_name(info.parent) if info.parent else "-",
                str(len(info.changes)),
                _one_line(info.reason),
            )
            for info in versions
        ]
        header = ("  VERSION", "CREATED", "BY", "PARENT", "CHANGES", "REASON")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:-1])]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1])
        return 0

    return _with_history(args, ls)


def run_activations(args: argparse.Namespace) -> int:
    async def ls(history: PolicyHistory, settings: Settings) -> int:
        activations = await history.activations()
        for item in activations:
            if args.json:
                _print_json(item.to_document())
            else:
                print(f"{_when(item.activated_at)}  {item.version:<6}  {item.activated_by:<12}  {_one_line(item.reason)}")
        if not activations and not args.json:
            print("no policy version activated yet")
        return 0

    return _with_history(args, ls)


def policy_toml(stored: StoredPolicy) -> str:
    """A version as a policy file: comments saying what it is, then the document (importable)."""
    state = "active" if stored.active else "not active"
    lines = [
        f"# Xinlian disclosure policy {stored.version} ({state})",
        f"# created {_when(stored.created_at)} by {_one_line(stored.created_by)}: {_one_line(stored.reason)}",
    ]
    if stored.parent:
        lines.append(f"# changes against {version_name(stored.parent)}:")
        lines += [f"#   {_one_line(line)}" for line in stored.changes]
    lines.append("# `xinlian policy import FILE --reason ...` stores an edited copy as the next version.")
    order = ("public_scope", "scopes", "fields", "overrides", "masks")
    ordered = {k: stored.document[k] for k in order if k in stored.document}
    ordered.update(stored.document)  # anything else, after
    document = {"version": stored.version, **{k: v for k, v in ordered.items() if v != {}}}
    return "\n".join(lines) + "\n" + tomli_w.dumps(document)


def run_show(args: argparse.Namespace) -> int:
    async def show(history: PolicyHistory, settings: Settings) -> int:
        try:
            stored = await (history.get(args.version) if args.version else history.active())
        except PolicyHistoryEmpty:
            raise CommandFailed(f"no policy version yet ({NOT_SEEDED})") from None
        if stored is None:
            raise CommandFailed(f"no policy version {args.version!r} (see `xinlian policy list`)")
        if args.format == "json":
            print(json.dumps(stored.to_document(), ensure_ascii=False, indent=2))
        else:
            sys.stdout.write(policy_toml(stored))
        return 0

    return _with_history(args, show)


def run_diff(args: argparse.Namespace) -> int:
    async def diff(history: PolicyHistory, settings: Settings) -> int:
        for ref in (args.a, args.b):
            if await history.get(ref) is None:
                raise CommandFailed(f"no policy version {ref!r} (see `xinlian policy list`)")
        lines = await history.diff(args.a, args.b)
        if args.json:
            _print_json(lines)
        elif lines:
            print("\n".join(lines))
        else:
            print(f"{args.a} and {args.b} are the same policy")
        return 0

    return _with_history(args, diff)


# --- changing -----------------------------------------------------------------------------------


async def _seed(history: PolicyHistory, settings: Settings) -> None:
    """An empty store gets the configured policy file as v1 first, as the hub does at start-up."""
    path = settings.policy_path or default_policy_path()
    await history.seed(load_policy(settings.policy_path), "system", f"initial policy from {path.name}")


async def _audit(
    history: PolicyHistory, settings: Settings, args: argparse.Namespace, action: str, stored: StoredPolicy,
    active: str, warning: str | None = None,
) -> None:
    detail: dict[str, object] = {
        "action": f"policy.{action}",
        "version": stored.version,
        "activated": stored.active,
        "changes": list(stored.changes) if action != "activate" else [],
        "reason": args.reason.strip(),
    }
    if warning:
        detail["warning"] = warning  # a confirmed widening
    trail = sealed_trail(settings, history.store)
    await trail.start()
    try:
        await trail.record(
            AuditEntry(
                at=dt.datetime.now(dt.timezone.utc),
                request_id=uuid.uuid4().hex,
                endpoint="cli",
                client_id=args.by or "cli",
                client_kind="admin",
                outcome="ok",
                policy_version=active,
                detail=detail,
            )
        )
    finally:
        await trail.stop()


def _changing(
    args: argparse.Namespace, action: str, make: Callable[[PolicyOperations], Awaitable[StoredPolicy]]
) -> int:
    """Make one change through `PolicyOperations` (the admin API's checks), audit it, say what happened."""

    async def run(history: PolicyHistory, settings: Settings) -> int:
        await _seed(history, settings)
        operations = PolicyOperations(history.store, args.by or "cli")
        stored = await make(operations)
        active = (await history.active()).version
        warning = next((a["warning"] for a in operations.actions if a.get("warning")), None)
        await _audit(history, settings, args, action, stored, active, warning)
        if warning:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        if args.json:
            _print_json({k: v for k, v in stored.to_document().items() if k != "document"})
            return 0
        if action == "activate":
            print(f"{stored.version} is active")
        elif stored.active:
            print(f"{stored.version} stored and active (from {version_name(stored.parent or 0)})")
        else:
            print(f"{stored.version} stored, not active ({active} stays in force)")
        if action != "activate":
            for line in stored.changes:
                print(f"  {line}")
        if stored.active:
            print("Running hubs follow within a second; no restart needed.")
        else:
            print(f"Activate it with: xinlian policy activate {stored.version} --reason ...")
        return 0

    return _with_history(args, run)


def run_set_class(args: argparse.Namespace) -> int:
    return _changing(args, "set-class", lambda ops: ops.set_field_class(
        args.family, args.field, args.disclosure, args.kind, args.reason, activate=not args.no_activate,
        confirm_widening=args.confirm_widening))


def run_clear_override(args: argparse.Namespace) -> int:
    return _changing(args, "clear-override", lambda ops: ops.clear_override(
        args.family, args.field, args.kind, args.reason, activate=not args.no_activate,
        confirm_widening=args.confirm_widening))


def run_set_mask(args: argparse.Namespace) -> int:
    spec = None if args.spec.strip().lower() == "none" else args.spec.strip()
    return _changing(args, "set-mask", lambda ops: ops.set_mask(
        args.family, args.field, args.audience, spec, args.reason, activate=not args.no_activate))


def run_set_scope(args: argparse.Namespace) -> int:
    names = [part for item in args.classes for part in item.replace(",", " ").split()]
    classes: list[str] | None = None
    if [n.lower() for n in names] != ["none"]:
        if any(n.upper() not in CLASSES for n in names):
            print(f"{PROG}: classes are {', '.join(CLASSES)} (or none to remove the scope), got {names}", file=sys.stderr)
            return 2
        classes = [n.upper() for n in names]
    return _changing(args, "set-scope", lambda ops: ops.set_scope_classes(
        args.scope, classes, args.reason, activate=not args.no_activate, confirm_widening=args.confirm_widening))


def run_import(args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{PROG}: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    return _changing(args, "import", lambda ops: ops.import_policy(
        text, args.reason, activate=not args.no_activate, confirm_widening=args.confirm_widening))


def run_activate(args: argparse.Namespace) -> int:
    return _changing(args, "activate", lambda ops: ops.activate(
        args.version, args.reason, confirm_widening=args.confirm_widening))
