"""The demo's live department services: the court's REST API, started next to the hub.

`start_demo_services(data_dir)` serves the court's stand-in API on a free loopback port and
points the `courts` connector of `<data_dir>/connectors.toml` at it (the demo owns that file;
an operator's real connectors file has no port to rewrite). Call `stop()` when the hub stops.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .court_service import court_api_key, court_app, load_court_records, run_in_thread

COURTS = "courts"


@dataclass(frozen=True)
class DemoServices:
    court_url: str | None
    stop: Callable[[], None]
    court: Any = None  # the court's Starlette app (its `state.faults` and `state.traffic`)


def _court_is_rest(connectors_path: Path) -> bool:
    document = tomllib.loads(connectors_path.read_text(encoding="utf-8"))
    return any(c.get("name") == COURTS and c.get("kind") == "rest" for c in document.get("connector", []))


def point_court_connector(connectors_path: Path, base_url: str) -> None:
    """Rewrite the `base_url` of the `courts` connector (only that line, comments kept)."""
    text = connectors_path.read_text(encoding="utf-8")
    block = re.search(r'(?ms)^\[\[connector\]\]\s*\nname = "courts"\n.*?(?=^\[\[connector\]\]|\Z)', text)
    if block is None:
        raise ValueError(f"{connectors_path}: no courts connector")
    section, count = re.subn(r'(?m)^base_url = "[^"]*"', f'base_url = "{base_url}"', block.group(0), count=1)
    if count != 1:
        raise ValueError(f"{connectors_path}: the courts connector has no base_url line")
    connectors_path.write_text(text[: block.start()] + section + text[block.end() :], encoding="utf-8")


def start_demo_services(data_dir: Path) -> DemoServices:
    """Start the court's API if the demo's courts connector is a REST one; else nothing to start."""
    connectors_path = Path(data_dir) / "connectors.toml"
    if not connectors_path.exists() or not _court_is_rest(connectors_path):
        return DemoServices(None, lambda: None)
    data_dir = Path(data_dir)
    app = court_app(load_court_records(data_dir / "departments" / "courts.db"), court_api_key(data_dir))
    court = run_in_thread(app)
    try:
        point_court_connector(connectors_path, court.base_url)
    except Exception:
        court.stop()
        raise
    return DemoServices(court.base_url, court.stop, app)
