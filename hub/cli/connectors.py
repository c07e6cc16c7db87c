"""`xinlian connectors check`: probe every configured department system and print a table.

Columns are aligned by display width (CJK department names take two columns per character);
each failure is shown once, in the table (the connectors' own log lines are kept off stderr
during the check). Exit codes: 0 all healthy, 1 some department down, 2 no or bad connectors file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from xinlian.hub.config import Settings

from .tables import pad, width


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    group = sub.add_parser("connectors", help="the configured department connectors")
    commands = group.add_subparsers(dest="connectors_command", required=True)
    check = commands.add_parser("check", help="probe every connector and print its state")
    check.add_argument("--data-dir", default=None)
    check.add_argument("--config", default=None, help="connectors file (default <data-dir>/connectors.toml)")
    check.add_argument("--timeout", type=float, default=5.0, help="seconds per probe")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=run_check)


async def probe_all(config: Path, data_dir: Path, timeout: float) -> list[dict[str, Any]]:
    """Each department's health, probed concurrently through its link."""
    from xinlian.hub.executor.federation import Federation

    federation = Federation.from_config(config, data_dir)

    async def probe(department: Any) -> dict[str, Any]:
        started = time.monotonic()
        health = await department.link.check(deadline=department.link.deadline_in(timeout))
        return {
            "connector": department.name,
            "department": department.connector.department,
            "families": sorted(department.connector.families),
            "healthy": health.healthy,
            "detail": health.detail,
            "circuit": department.link.state.value,
            "ms": round((time.monotonic() - started) * 1000, 1),
        }

    try:
        return list(await asyncio.gather(*(probe(d) for d in federation.departments)))
    finally:
        await federation.close()


def run_check(args: argparse.Namespace) -> int:
    from xinlian.connectors.mapping import ConnectorConfigError

    settings = Settings.from_env(args.data_dir)
    config = Path(args.config) if args.config else settings.connectors_path
    if config is None or not config.exists():
        print(f"xinlian connectors check: no connectors file at {config}", file=sys.stderr)
        return 2
    quiet = logging.getLogger("xinlian.connectors")
    saved = quiet.propagate, quiet.handlers[:]
    # the table shows each failure once; the connectors' own WARNING lines would repeat it on stderr
    quiet.propagate, quiet.handlers[:] = False, [logging.NullHandler()]
    try:
        rows = asyncio.run(probe_all(config, settings.data_dir, args.timeout))
    except ConnectorConfigError as exc:
        print(f"xinlian connectors check: {exc}", file=sys.stderr)
        return 2
    finally:
        quiet.propagate, quiet.handlers[:] = saved
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(check_table(rows))
    return 0 if all(r["healthy"] for r in rows) else 1


def check_table(rows: list[dict[str, Any]]) -> str:
    """The probe results aligned by display width (a CJK character takes two columns)."""
    cells = [[row["connector"], "healthy" if row["healthy"] else "DOWN", f"{row['ms']}", row["department"],
              ", ".join(row["families"])] for row in rows]
    heads = ["connector", "state", "ms", "department", "families / detail"]
    widths = [max([width(heads[i]), *(width(r[i]) for r in cells)]) for i in range(4)]

    def line(values: list[str]) -> str:
        name, state, ms, department, rest = values
        return "  ".join([pad(name, widths[0]), pad(state, widths[1]), " " * (widths[2] - width(ms)) + ms,
                          pad(department, widths[3]), rest]).rstrip()

    lines = [line(heads)]
    indent = sum(widths) + 2 * 4
    for row, values in zip(rows, cells):
        lines.append(line(values))
        if row["detail"]:
            lines.append(" " * indent + str(row["detail"]))
    return "\n".join(lines)
