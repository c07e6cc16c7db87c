"""The complaint fields of the GraphQL schemas (docs/cases.md): filled in by the complaint work."""

from __future__ import annotations

from typing import Any


def query_fields(public: bool) -> dict[str, Any]:
    return {}


def mutation_fields(public: bool) -> dict[str, Any]:
    return {}
