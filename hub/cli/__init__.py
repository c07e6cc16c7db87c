"""The `xinlian` command line: `demo`, `serve`, `clients`, `keys`, `audit`, `db`, `policy`,
`purposes`, `consents`, `objections`, `access-log`.

Each sub-command group lives in its own module exposing `register(subparsers)`; the
registered handler receives the parsed arguments and returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

COMMAND_MODULES = ("demo", "clients", "keys", "audit", "db", "connectors", "policy",
                   "purposes", "consents", "objections", "access_log")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xinlian", description="Xinlian (信联) credit information hub")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code = args.handler(args)
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
