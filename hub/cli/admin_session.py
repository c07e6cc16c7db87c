"""What every administrative CLI command shares: open the hub store, make the change, audit it.

`run_admin(args, name, action)` opens the store of `--data-dir`, hands the command an
`AdminSession` (the store, `AdminOperations` acting as `--by`, an output buffer), and after the
command has made its change writes one audit entry per change — `endpoint` "cli", `client_kind`
"admin", `client_id` the `--by` name (default "cli"), `detail` the action (`{"action":
"createClient", "client_id": ...}`) — and only then prints what the command said (a new secret
is never shown for a change that could not be audited). Commands that read credit data (`cases list|show`,
`review list`, `index show|departments`, `measures check`, `supervision plan`: `record(...,
read=True)`) record their read the same way and show nothing when its entry cannot be written; listing the
hub's own configuration (`clients list`, `policy show`, ...) writes no entry.

Exit codes: 0 done; 2 refused (bad input: the message on stderr, nothing changed), the store
unreadable or missing, or the audit entry not written. A command never creates the store: when
the settings name the default SQLite file of the data directory and it does not exist (a mistyped
`--data-dir`), it says "no hub store at <path>" and exits 2, as `xinlian audit verify` does. Commands that predate this module keep their exit
code for refused input (`refused_exit`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from xinlian.hub.admin.operations import INPUT_ERRORS, AdminOperations
from xinlian.hub.audit.entry import AuditEntry
from xinlian.hub.audit.seal import HeadSealer
from xinlian.hub.audit.trail import AuditTrail, AuditUnavailable
from xinlian.hub.auth.published_keys import PublishedKeys
from xinlian.hub.cases.attachments import AttachmentPolicy, LocalAttachments
from xinlian.hub.cases.calendar import CalendarError, WorkingCalendar
from xinlian.hub.cases.register import CaseRegister
from xinlian.hub.config import Settings
from xinlian.hub.governance.objections import ObjectionRegister
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring
from xinlian.policies import Policy, load_policy

from .tables import table

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"
BY_HELP = "who makes the change, recorded in the audit entry (default: cli)"
DEFAULT_BY = "cli"
REFUSED = 2


def missing_store(settings: Settings) -> Path | None:
    """The default SQLite file of a data directory that does not exist (a mistyped --data-dir).

    A data directory that exists but has no store yet is a fresh install: the store is created
    there (as `xinlian db upgrade` would), so `xinlian clients add` works before the first start.
    """
    if Path(settings.data_dir).exists():
        return None
    default = Path(settings.data_dir) / "hub.db"
    try:
        url = make_url(settings.database_url)
    except Exception:  # an unparsable URL is the store's own error to report
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database).expanduser()
    if path.resolve() != default.resolve() or path.exists():
        return None
    return path


def refuse_missing_store(settings: Settings) -> bool:
    """Print why and return True when the hub store is missing (see `missing_store`)."""
    path = missing_store(settings)
    if path is None:
        return False
    print(f"no hub store at {path} (start the hub once, or check --data-dir)", file=sys.stderr)
    return True


def add_common_arguments(parser: argparse.ArgumentParser, changes: bool = True) -> None:
    """`--data-dir`, and `--by` for commands that change something."""
    parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    if changes:
        parser.add_argument("--by", default=DEFAULT_BY, metavar="NAME", help=BY_HELP)


@dataclass
class AdminSession:
    """One CLI command's view of the hub: the store, validated operations, and what to print."""

    settings: Settings
    store: Store
    by: str
    operations: AdminOperations
    output: list[str] = field(default_factory=list)
    reads: int = 0  # actions recorded as reads of credit data (`record(..., read=True)`)

    def say(self, text: str = "") -> None:
        """Print `text` once the command's changes are audited."""
        self.output.append(text)

    def listing(self, rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool, empty: str) -> None:
        """Print a listing: one JSON object per line, or a table, or `empty` when there are no rows."""
        if as_json:
            for row in rows:
                self.say(json.dumps(row, ensure_ascii=False))
        elif rows:
            self.say(table(rows, columns))
        else:
            self.say(empty)

    def record(self, action: str, *, read: bool = False, **targets: Any) -> None:
        """Note a change made without `operations`, or (`read`) a read of credit data: audited like theirs."""
        self.operations.actions.append({"action": action, **{k: v for k, v in targets.items() if v is not None}})
        self.reads += read

    @property
    def reads_only(self) -> bool:
        """Whether every action to audit is a read (its entry failing changes nothing)."""
        return self.reads == len(self.operations.actions)

    @property
    def cases(self) -> CaseRegister:
        """The hub's cases, counted with the data directory's calendar and the policy in force."""
        return self.operations.objections.cases


async def policy_in_force(settings: Settings, store: Store) -> Policy:
    """The store's active policy version (the configured file's before the hub first started)."""
    from xinlian.hub.governance.policy_versions import PolicyHistory, PolicyHistoryEmpty

    try:
        return (await PolicyHistory(store).active()).policy
    except PolicyHistoryEmpty:
        return load_policy(settings.policy_path)


async def case_register(settings: Settings, store: Store) -> CaseRegister:
    """Cases as the hub keeps them: the data directory's calendar, the policy in force's rules,
    attachments in the data directory."""
    policy = await policy_in_force(settings, store)
    return CaseRegister(
        store, WorkingCalendar.load(settings.data_dir), lambda: policy.cases,
        attachments=LocalAttachments.in_data_dir(settings.data_dir, AttachmentPolicy.widest()),
    )


async def _policy_version(settings: Settings, store: Store) -> str:
    """The active policy version of the store (its file's version before the hub seeded one)."""
    try:
        from xinlian.hub.governance.policy_versions import PolicyHistory, version_name

        number = await PolicyHistory(store).active_number()
        if number is not None:
            return version_name(number)
    except (ImportError, SQLAlchemyError):
        pass
    try:
        from xinlian.policies import load_policy

        return load_policy(settings.policy_path).version
    except Exception:  # an unreadable policy file is not this command's concern
        return "unknown"


def audit_entry(action: dict[str, Any], by: str, policy_version: str) -> AuditEntry:
    subject = action.get("subject")
    return AuditEntry(
        at=dt.datetime.now(dt.timezone.utc),
        request_id=uuid.uuid4().hex,
        endpoint="cli",
        client_id=by,
        client_kind="admin",
        outcome="ok",
        policy_version=policy_version,
        subjects=[subject] if isinstance(subject, str) else [],
        operation_name=str(action.get("action")),
        detail=action,
    )


def sealed_trail(settings: Settings, store: Store) -> AuditTrail:
    """An audit trail for a CLI command's entries, sealed with the data directory's keyring as
    the hub seals its own (hub/audit/seal.py), so they never look appended from outside.

    The keyring also verifies with the keys other hosts published in the store, endorsed with
    `settings.cluster_secret` (hub/auth/published_keys.py): the chain writer looks the stored
    seal's key up before the first batch (`HeadSealer.know_signer`), so a command run after
    another host's batch continues that host's sealed run instead of starting a new one."""
    keyring = Keyring.load_or_create(settings.data_dir, reload_interval=3600.0)
    keyring.include_published(PublishedKeys(store, settings.cluster_secret))
    return AuditTrail(store, sealer=HeadSealer(keyring, settings.issuer))


async def _audit(session: AdminSession) -> None:
    actions = session.operations.actions
    if not actions:
        return
    version = await _policy_version(session.settings, session.store)
    trail = sealed_trail(session.settings, session.store)
    await trail.start()
    try:
        for action in actions:
            await trail.record(audit_entry(action, session.by, version))
    finally:
        await trail.stop()


def audit_actions(settings: Settings, by: str, actions: list[dict[str, Any]]) -> None:
    """Write one audit entry per action for a change made outside `run_admin` (e.g. `keys rotate`).

    Raises `AuditUnavailable`, `OSError` or `SQLAlchemyError` when the entries cannot be written.
    """

    async def write() -> None:
        store = await Store.open(settings.database_url)
        try:
            version = await _policy_version(settings, store)
            trail = sealed_trail(settings, store)
            await trail.start()
            try:
                for action in actions:
                    await trail.record(audit_entry(action, by, version))
            finally:
                await trail.stop()
        finally:
            await store.close()

    asyncio.run(write())


def run_admin(
    args: argparse.Namespace,
    name: str,
    action: Callable[[AdminSession], Awaitable[int]],
    refused_exit: int = REFUSED,
) -> int:
    """Run one administrative command (see the module docstring for what it guarantees)."""
    settings = Settings.from_env(getattr(args, "data_dir", None))
    by = (getattr(args, "by", None) or DEFAULT_BY).strip() or DEFAULT_BY
    if refuse_missing_store(settings):
        return REFUSED

    reads_only = False

    async def run() -> tuple[int, list[str]]:
        nonlocal reads_only
        store = await Store.open(settings.database_url)
        try:
            objections = ObjectionRegister(await case_register(settings, store))
            operations = AdminOperations(store, by, policy_path=settings.policy_path, objections=objections)
            session = AdminSession(settings, store, by, operations)
            code = await action(session)
            reads_only = session.reads_only
            await _audit(session)
            return code, session.output
        finally:
            await store.close()

    try:
        code, output = asyncio.run(run())
    except (*INPUT_ERRORS, CalendarError) as exc:
        print(f"xinlian {name}: {exc}", file=sys.stderr)
        return refused_exit
    except AuditUnavailable as exc:
        if reads_only:
            print(f"xinlian {name}: nothing is shown: the read's audit entry could not be written: {exc}", file=sys.stderr)
        else:
            print(f"xinlian {name}: the change was made but its audit entry could not be written: {exc}", file=sys.stderr)
        return 2
    except (OSError, SQLAlchemyError) as exc:  # the store is unreachable or unreadable
        print(f"xinlian {name}: cannot use the hub store: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for line in output:
        print(line)
    return code
