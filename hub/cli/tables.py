"""Plain-text tables for the CLI's listings (CJK characters take two terminal columns)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any, Sequence

from xinlian.hub.store import as_utc as utc


def utc_text(moment: dt.datetime | None) -> str | None:
    """A stored time as `YYYY-MM-DDTHH:MM:SSZ`."""
    return None if moment is None else utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    """`text` followed by spaces up to `columns` display columns."""
    return text + " " * max(0, columns - width(text))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """`rows` as aligned columns under upper-case headers."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(width(c), *(width(r[i]) for r in cells)) for i, c in enumerate(columns)]
    pad = lambda text, w: text + " " * (w - width(text))  # noqa: E731
    lines = ["  ".join(pad(c.upper(), w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(pad(v, w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)
