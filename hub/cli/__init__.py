"""The `xinlian` command line: `demo`, `serve`, `clients`, `keys`, `audit`, `db`, `policy`,
`purposes`, `consents`, `objections`, `access-log`, credit governance: `measures`,
`findings`, `lists`, `ratings`, `supervision`, and cases: `calendar` (working days for deadlines), `cases`
(every case, overdue first), `review` (the review before publication), `index` (the credit environment index).

`xinlian` alone prints the help (every command); `xinlian --version` the installed version.
Each sub-command group lives in its own module exposing `register(subparsers)`; the
registered handler receives the parsed arguments and returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from xinlian.hub.config import SettingsError

COMMAND_MODULES = ("demo", "clients", "keys", "audit", "db", "connectors", "policy",
                   "purposes", "consents", "objections", "access_log", "credit", "ratings",
                   "calendar", "cases", "review", "index")


def version() -> str:
    """The installed distribution's version (importlib.metadata), or "unknown" when not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("xinlian")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xinlian", description="Xinlian (信联) credit information hub")
    parser.add_argument("--version", action="version", version=f"xinlian {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:  # `xinlian` alone: what it can do, not an error
        parser.print_help()
        return 0
    try:
        code = args.handler(args)
    except SettingsError as exc:  # a bad XINLIAN_* variable: say which, no traceback
        print(f"xinlian: configuration: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
