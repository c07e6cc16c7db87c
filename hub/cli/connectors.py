"""`xinlian connectors check`: probe every configured department system and print a table."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from xinlian.hub.config import Settings


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
        print(f"xinlian connectors check: no connectors file at {config}")
        return 2
    try:
        rows = asyncio.run(probe_all(config, settings.data_dir, args.timeout))
    except ConnectorConfigError as exc:
        print(f"xinlian connectors check: {exc}")
        return 2
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(f"{'connector':<14}{'state':<10}{'ms':>8}  {'department':<28}families / detail")
        for row in rows:
            state = "healthy" if row["healthy"] else "DOWN"
            print(f"{row['connector']:<14}{state:<10}{row['ms']:>8}  {row['department']:<28}{', '.join(row['families'])}")
            if row["detail"]:
                print(f"{'':<34}{row['detail']}")
    return 0 if all(r["healthy"] for r in rows) else 1
