"""The credit environment index fields of the GraphQL schemas (docs/cases.md): filled in by the index work."""

from __future__ import annotations

from typing import Any


def query_fields(public: bool) -> dict[str, Any]:
    return {}
