"""The `myAccessLog` root field: a subject's own client reads who accessed the subject's data.

Only a client of kind `subject` that the registry binds to a credit subject (`Principal.subject_id`)
may call it; anyone else gets `FORBIDDEN`. It exists on the authenticated full schema only (the
public contract has no such field). The rows come from `SubjectAccessLog`
(`hub/audit/access_log.py`), which the request context carries as `access_log`.

Reading one's own access log does not name the subject in the audit entry of that request, so
looking at the log does not add to it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

import strawberry
from graphql import GraphQLError

from xinlian.hub.audit.access_log import DEFAULT_FIRST, MAX_FIRST, AccessLogItem
from xinlian.schema.graphql import AccessLogEntry

from .errors import bad_user_input

if TYPE_CHECKING:
    from .request import RequestContext

SUBJECT_KIND = "subject"
FIELD = "myAccessLog"


def not_a_subject() -> GraphQLError:
    return GraphQLError(
        "Only a subject's own client (kind `subject`, bound to a credit subject) may read its access log",
        extensions={"code": "FORBIDDEN", "field": FIELD},
    )


def access_log_unavailable() -> GraphQLError:
    return GraphQLError(
        "The access log is not available on this hub",
        extensions={"code": "INTERNAL_SERVER_ERROR", "field": FIELD},
    )


def to_graphql(item: AccessLogItem) -> AccessLogEntry:
    """The GraphQL view of an access-log item (the two carry the same fields)."""
    return AccessLogEntry(**{f.name: getattr(item, f.name) for f in dataclasses.fields(item)})


async def my_access_log(
    info: strawberry.Info, first: Optional[int] = DEFAULT_FIRST, before: Optional[int] = None
) -> list[AccessLogEntry]:
    """The calling subject's access log, newest first (`before`: the last `seq` of the previous page)."""
    ctx: RequestContext = info.context
    principal = ctx.principal
    if principal.kind != SUBJECT_KIND or not principal.subject_id:
        raise not_a_subject()
    limit = DEFAULT_FIRST if first is None else first
    if not 1 <= limit <= MAX_FIRST:
        raise bad_user_input(f"first: between 1 and {MAX_FIRST}", argument="first")
    if before is not None and before < 1:
        raise bad_user_input("before: the seq of an entry (a positive integer)", argument="before")
    log = ctx.services.access_log
    if log is None:
        raise access_log_unavailable()
    page = await log.entries(principal.subject_id, first=limit, before_seq=before)
    return [to_graphql(item) for item in page.items]
