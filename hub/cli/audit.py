"""`xinlian audit verify|checkpoint|tail`: check the audit trail, sign its head, read its latest entries.

`verify` exits 0 when the trail is intact (chain, signed checkpoints, subject index), 1 for any
tamper finding (the first altered, removed or inserted entry; a cut tail, a rewrite or an emptied
trail against a signed checkpoint; a forged checkpoint; a subject index that differs from the
entries), 2 when the store (or a named checkpoint file) cannot be read. It says which entries
are not yet anchored by a checkpoint. `checkpoint` signs the head now (`--print`: prints the
latest checkpoint for a witness). `tail` prints the latest entries (`--json`: one JSON object
per line). `keys` prints the public keys that may have signed checkpoints (expired ones
included, with their lives) as a JWKS for a witness; `verify-checkpoints --jwks FILE --checkpoint
FILE` checks a witness's copy with only that file (no data directory, no store): signatures,
forks, seq and time in step; exit 0 if so, 1 naming the finding, 2 when a file cannot be read.
No command migrates or writes the store.

Several hosts sharing the store: signatures are checked with this host's keys and the public
keys the other hosts published in the store (keys/published.py) — only those endorsed with the
cluster secret (`XINLIAN_CLUSTER_SECRET_FILE` / `XINLIAN_CLUSTER_SECRET`, the same on every host;
without it, this host's keys only, and ignored rows are noted on stderr) — so a seal or
checkpoint signed on another host verifies here (its key is named with its host), while a key
someone wrote into the store does not; `keys` exports both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Coroutine

from sqlalchemy.engine import make_url

from xinlian.hub.audit import AuditTrail, StoredAuditEntry
from xinlian.hub.audit.checkpoint import (
    CheckpointError,
    PublicKeySet,
    checkpoint_directory,
    latest_valid,
    read_checkpoint_file,
    read_checkpoints,
    verify_witness_copy,
)
from xinlian.hub.audit.checkpoint_writer import ChainDoesNotExtend, CheckpointWriter
from xinlian.hub.audit.entry import format_time
from xinlian.hub.audit.verify import verify_trail
from xinlian.hub.auth.published_keys import include_published_keys
from xinlian.hub.config import Settings
from xinlian.hub.store import Store
from xinlian.keys.keyring import Keyring

DATA_DIR_HELP = "data directory (default: $XINLIAN_DATA_DIR or ./xinlian-data)"


class StoreMissing(Exception):
    pass


def _open_existing(settings: Settings) -> Store:
    """The store, without creating an empty SQLite file where none is."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).expanduser().exists():
            raise StoreMissing(f"no hub store at {url.database}")
    return Store(settings.database_url)


def _keyring(settings: Settings) -> Keyring | None:
    return Keyring.load(settings.data_dir, reload_interval=3600.0)


async def _with_published(settings: Settings, keyring: Keyring | None, store: Store) -> None:
    """Let `keyring` verify with the keys other hosts published in `store` too, those endorsed with
    the cluster secret only (said on stderr when they cannot be read, e.g. a store older than the
    hub, or when rows are ignored: this host's keys only)."""
    if keyring is None:
        return
    published = await include_published_keys(keyring, store, settings.cluster_secret)
    if published is None:
        print("note: keys published by other hosts not read; only this host's keys are used", file=sys.stderr)
        return
    local = {key.kid for key in keyring.describe()}
    ignored = {kid: why for kid, why in published.ignored().items() if kid not in local}
    if ignored and not published.endorses:
        print(f"note: {len(ignored)} key(s) published by other hosts ignored: XINLIAN_CLUSTER_SECRET is not set "
              "(their seals and checkpoints do not verify here)", file=sys.stderr)
    elif ignored:
        for kid, (host, why) in sorted(ignored.items()):
            print(f"note: published key {kid!r} of host {host!r} ignored: {why}", file=sys.stderr)


def _signer(keyring: Keyring | None, kid: str) -> str:
    """`kid`, with the host that published it when it is another host's key."""
    host = keyring.published_host(kid) if keyring is not None else None
    return kid if host is None else f"{kid} (host {host})"


async def _verify(settings: Settings, witness_files: list[Path]) -> int:
    for path in witness_files:
        if not path.is_file():
            raise StoreMissing(f"no checkpoint file at {path}")
    store = _open_existing(settings)
    directory = checkpoint_directory(settings.data_dir)
    keyring: Keyring | None = None
    try:
        keyring = _keyring(settings)
        await _with_published(settings, keyring, store)
        loaded = read_checkpoints(directory, witness_files)
        report = await verify_trail(store, loaded, keyring)
    finally:
        await store.close()
    chain = report.chain
    if chain.ok:
        print(f"audit chain intact: {chain.checked} entries")
        print(f"head: seq {chain.head_seq} hash {chain.head_hash}")
    else:
        print(f"audit chain BROKEN at entry {chain.first_bad_seq}: {chain.problem}")
        print(f"intact up to seq {chain.head_seq} (hash {chain.head_hash}); {chain.checked} entries read")
    sources = f"{directory}" + "".join(f", {p}" for p in witness_files)
    if not loaded:
        print(f"checkpoints: none found in {sources}")
    else:
        print(f"checkpoints: {report.checkpoints_read} read from {sources}, {report.checkpoints_valid} with a valid signature")
    if report.newest is not None:
        newest = report.newest
        print(f"newest checkpoint: entry {newest.seq} hash {newest.hash}, signed {format_time(newest.at)} "
              f"by key {_signer(keyring, newest.kid)}")
    if report.anchored_seq > 0:
        print(f"anchored: entries 1-{report.anchored_seq} match the signed checkpoints")
    if report.unanchored is not None:
        first, last = report.unanchored
        span = f"entry {first}" if first == last else f"entries {first}-{last}"
        head_seal = report.seal.seal if report.seal is not None else None
        if report.sealed_seq >= last and head_seal is not None and (head_seal.run_from or 1) <= first:
            print(f"NOT YET ANCHORED: {span} (no checkpoint outside the store covers them yet; the hub's head "
                  "seal in the store vouches for them until the next checkpoint)")
        else:
            print(f"NOT YET ANCHORED: {span} (no signed checkpoint covers them yet)")
    snapshot = report.seal
    if snapshot is not None and snapshot.seal is not None and snapshot.problem is None:
        sealed = snapshot.seal
        print(f"head seal: entry {sealed.seq}, signed {format_time(sealed.at)} by key {_signer(keyring, sealed.kid)}"
              + ("" if report.sealed_seq else " (does NOT match the chain)"))
    elif snapshot is not None and snapshot.seal is None and snapshot.problem is None:
        print("head seal: none (no batch written by this version of the hub yet)")
    print(f"subject index: {report.index_rows} rows, {report.index_differences} difference(s) from the entries")
    findings = [f for f in report.findings if not f.startswith("audit chain BROKEN")]
    for finding in findings:
        print(f"TAMPERED: {finding}")
    if report.ok:
        print("audit trail intact")
        return 0
    return 1


async def _checkpoint(settings: Settings, print_only: bool) -> int:
    keyring = _keyring(settings)
    if keyring is None:
        raise StoreMissing(f"no keyring in {settings.data_dir} (the hub creates it when it first starts)")
    directory = checkpoint_directory(settings.data_dir)
    if print_only:
        latest = latest_valid(read_checkpoints(directory), keyring)
        if latest is None:
            print(f"xinlian audit checkpoint: no valid checkpoint in {directory}", file=sys.stderr)
            return 1
        print(latest.to_line())
        return 0
    store = _open_existing(settings)
    try:
        await _with_published(settings, keyring, store)
        writer = CheckpointWriter(store, keyring, directory, interval=0, issuer=settings.issuer)
        try:
            written = await writer.checkpoint_now()
        except ChainDoesNotExtend as exc:
            print(f"xinlian audit checkpoint: NOT signed: the chain does not extend the last checkpoint: {exc}",
                  file=sys.stderr)
            return 1
    finally:
        await store.close()
    latest = written or writer.last
    if latest is None:
        print("xinlian audit checkpoint: the audit trail is empty; nothing to sign", file=sys.stderr)
        return 1
    print(latest.to_line())
    return 0


async def _keys(settings: Settings) -> int:
    keyring = _keyring(settings)
    if keyring is None:
        raise StoreMissing(f"no keyring in {settings.data_dir} (the hub creates it when it first starts)")
    try:
        store: Store | None = _open_existing(settings)
    except StoreMissing:
        store = None  # no store here: this host's keys only
    if store is not None:
        try:
            await _with_published(settings, keyring, store)
        finally:
            await store.close()
    print(json.dumps(keyring.history_jwks(), indent=2, sort_keys=True))
    return 0


def verify_checkpoints(args: argparse.Namespace) -> int:
    """A witness's check, with only the hub's public keys: no data directory, no store."""
    name = "verify-checkpoints"
    if (args.head_seq is None) != (args.head_hash is None):
        print(f"xinlian audit {name}: give --head-seq and --head-hash together", file=sys.stderr)
        return 2
    files = [Path(p) for p in args.checkpoint]
    try:
        keys = PublicKeySet.from_file(Path(args.jwks))
        loaded = [item for path in files for item in read_checkpoint_file(path)]
    except (OSError, CheckpointError) as exc:
        print(f"xinlian audit {name}: {exc}", file=sys.stderr)
        return 2
    head = (args.head_seq, args.head_hash) if args.head_seq is not None else None
    report = verify_witness_copy(loaded, keys, head=head)
    print(f"checkpoints: {report.read} read from {', '.join(map(str, files))}, "
          f"{len(report.valid)} with a valid signature ({len(keys.keys)} public key(s) from {args.jwks})")
    newest = report.newest
    if newest is not None:
        print(f"newest checkpoint: entry {newest.seq} hash {newest.hash}, signed {format_time(newest.at)} by key {newest.kid}")
    if head is not None:
        print(f"hub head: entry {head[0]} hash {head[1]} (whether it extends the checkpoints needs the chain: "
              "`xinlian audit verify --checkpoint` on the hub)")
    for finding in report.findings:
        print(f"TAMPERED: {finding}")
    if report.ok:
        print("witness checkpoints intact")
        return 0
    return 1


def _describe(stored: StoredAuditEntry) -> str:
    entry = stored.entry
    if entry is None:
        return f"#{stored.seq}  (content unreadable: run `xinlian audit verify`)\n    hash {stored.hash}"
    who = f"{entry.client_id} ({entry.client_kind})" if entry.client_id else "public"
    head = f"#{stored.seq}  {entry.at:%Y-%m-%d %H:%M:%S}Z  {entry.endpoint}  {who}  {entry.outcome}"
    lines = [head + (f"  op={entry.operation_name}" if entry.operation_name else "")]
    details = [
        ("purpose", [entry.purpose] if entry.purpose else []),
        ("subjects", entry.subjects),
        ("released", entry.released),
        ("denied", entry.denied),
        ("errors", entry.errors),
    ]
    lines += [f"    {name}: {', '.join(values)}" for name, values in details if values]
    lines.append(f"    request {entry.request_id}  from {entry.remote_addr or '-'}  policy {entry.policy_version}")
    lines.append(f"    hash {stored.hash}")
    return "\n".join(lines)


async def _tail(settings: Settings, n: int, as_json: bool) -> int:
    store = _open_existing(settings)
    try:
        entries = await AuditTrail(store).tail(n)
    finally:
        await store.close()
    for stored in entries:
        if as_json:
            print(json.dumps(stored.to_document(), ensure_ascii=False, sort_keys=True))
        else:
            print(_describe(stored))
    if not entries and not as_json:
        print("the audit trail is empty")
    return 0


def _run(name: str, coroutine: Coroutine[Any, Any, int]) -> int:
    try:
        return asyncio.run(coroutine)
    except StoreMissing as exc:
        print(f"xinlian audit {name}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an operator command: a sentence, not a stack trace
        print(f"xinlian audit {name}: cannot read the audit trail: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def verify(args: argparse.Namespace) -> int:
    witness = [Path(p) for p in args.checkpoint or ()]
    return _run("verify", _verify(Settings.from_env(data_dir=args.data_dir), witness))


def checkpoint(args: argparse.Namespace) -> int:
    return _run("checkpoint", _checkpoint(Settings.from_env(data_dir=args.data_dir), args.print_only))


def keys(args: argparse.Namespace) -> int:
    return _run("keys", _keys(Settings.from_env(data_dir=args.data_dir)))


def tail(args: argparse.Namespace) -> int:
    return _run("tail", _tail(Settings.from_env(data_dir=args.data_dir), args.n, args.json))


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    check = commands.add_parser("verify", help="check the chain, signed checkpoints and subject index; exit 0 if intact, 1 naming what was tampered with")
    check.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    check.add_argument(
        "--checkpoint", action="append", metavar="FILE",
        help="also check these signed checkpoints (a witness's copy: JSON lines or bare JWS lines); repeatable",
    )
    check.set_defaults(handler=verify)
    sign = commands.add_parser(
        "checkpoint", help="sign the chain head now and print the checkpoint (--print: only print the latest)"
    )
    sign.add_argument("--print", dest="print_only", action="store_true",
                      help="print the latest signed checkpoint, for a witness, without writing one")
    sign.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    sign.set_defaults(handler=checkpoint)
    export = commands.add_parser(
        "keys", help="print the public keys that may have signed checkpoints (expired ones too) as a JWKS, for a witness"
    )
    export.add_argument("--print", dest="print_only", action="store_true",
                        help="print the JWKS to stdout (the default; nothing is written)")
    export.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    export.set_defaults(handler=keys)
    witness = commands.add_parser(
        "verify-checkpoints",
        help="check a witness's checkpoint copy with only the hub's public keys (no data dir, no store)",
    )
    witness.add_argument("--jwks", required=True, metavar="FILE", help="the JWKS printed by `xinlian audit keys`")
    witness.add_argument("--checkpoint", required=True, action="append", metavar="FILE",
                         help="the witness's checkpoints (JSON lines or bare JWS lines); repeatable")
    witness.add_argument("--head-seq", type=int, default=None, metavar="N",
                         help="the hub's current head seq (with --head-hash): must not be behind the checkpoints")
    witness.add_argument("--head-hash", default=None, metavar="H", help="the hub's current head hash")
    witness.set_defaults(handler=verify_checkpoints)
    latest = commands.add_parser("tail", help="print the latest entries")
    latest.add_argument("-n", type=int, default=20, help="how many entries (default 20)")
    latest.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    latest.add_argument("--json", action="store_true", help="one JSON object per line")
    latest.set_defaults(handler=tail)
