"""GraphQL errors the executor raises, each with a stable `extensions.code`."""

from __future__ import annotations

import logging
from typing import Iterable

from graphql import GraphQLError

from xinlian.connectors.contract import CallerInputError, ConnectorError

log = logging.getLogger("xinlian.executor")


def bad_user_input(message: str, **extra: object) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT", **extra})


def forbidden(family: str, disclosure: str, reason: str | None = None) -> GraphQLError:
    extensions: dict[str, object] = {"code": "FORBIDDEN", "field": family, "disclosureClass": disclosure}
    message = f"Not authorized to receive {family} (disclosure class {disclosure})"
    if reason:
        extensions["reason"] = reason
        message = f"Not authorized to receive {family} (disclosure class {disclosure}: {reason})"
    return GraphQLError(message, extensions=extensions)


def upstream(failures: Iterable[ConnectorError]) -> GraphQLError:
    """One error for a field whose sources failed, naming every failed department.

    The caller learns which departments failed and why in one word; the connector's detailed
    message (which may quote tables, columns or raw values) goes to the server log only.
    A `CallerInputError` (a value of the request a department cannot take) makes it BAD_USER_INPUT.
    """
    failures = list(failures)
    for failure in failures:
        level = logging.INFO if isinstance(failure, CallerInputError) else logging.WARNING
        log.log(level, "upstream %s (%s): %s", failure.department, failure.reason, failure.message)
    refused = sorted({f.department for f in failures if isinstance(f, CallerInputError)})
    if refused:  # the caller's input, not a department's failure: say so, without the driver's words
        return bad_user_input(
            f"The request holds a value the source department cannot take: {', '.join(refused)}",
            department=refused[0] if len(refused) == 1 else refused,
            departments=refused,
            reason="bad_input",
        )
    invalid = all(f.code == "UPSTREAM_INVALID" for f in failures)
    departments = sorted({f.department for f in failures})
    reasons = sorted({f.reason for f in failures})
    summary = "; ".join(f"{d} ({', '.join(sorted({f.reason for f in failures if f.department == d}))})" for d in departments)
    return GraphQLError(
        f"Source department sent data the hub could not read: {summary}"
        if invalid
        else f"Source department unavailable: {summary}",
        extensions={
            "code": "UPSTREAM_INVALID" if invalid else "UPSTREAM_UNAVAILABLE",
            "department": departments[0] if len(departments) == 1 else departments,
            "departments": departments,
            "reason": reasons[0] if len(reasons) == 1 else reasons,
        },
    )
