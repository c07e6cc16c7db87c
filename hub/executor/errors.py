"""GraphQL errors the executor raises, each with a stable `extensions.code`."""

from __future__ import annotations

from typing import Iterable

from graphql import GraphQLError

from xinlian.connectors.contract import ConnectorError


def bad_user_input(message: str, **extra: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", **extra})


def forbidden(family: str, disclosure: str) -> GraphQLError:
    return GraphQLError(
        f"Not authorized to receive {family} (disclosure class {disclosure})",
        extensions={"code": "FORBIDDEN", "field": family, "disclosureClass": disclosure},
    )


def upstream(failures: Iterable[ConnectorError]) -> GraphQLError:
    """One error for a field whose sources failed, naming every failed department."""
    failures = list(failures)
    invalid = all(f.code == "UPSTREAM_INVALID" for f in failures)
    departments = sorted({f.department for f in failures})
    detail = "; ".join(f"{f.department}: {f.message}" for f in failures)
    return GraphQLError(
        f"Source department unavailable: {detail}" if not invalid else f"Source department sent invalid data: {detail}",
        extensions={
            "code": "UPSTREAM_INVALID" if invalid else "UPSTREAM_UNAVAILABLE",
            "department": departments[0] if len(departments) == 1 else departments,
            "departments": departments,
        },
    )
