"""Two typed bridges to SQLAlchemy Core: a mapped class's `Table`, and whether a statement changed rows.

SQLAlchemy types `Model.__table__` as a `FromClause` and `session.execute()` as returning a
`Result` (without `rowcount`); these say what the hub relies on, checked at run time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult, Result, Table


def table_of(model: Any) -> Table:
    """The Core `Table` a declarative class is mapped to."""
    found = model.__table__
    if not isinstance(found, Table):
        raise TypeError(f"{model!r} is not mapped to a Table")
    return found


def changed(result: Result[Any]) -> bool:
    """Whether an UPDATE or DELETE changed at least one row."""
    return isinstance(result, CursorResult) and result.rowcount > 0
