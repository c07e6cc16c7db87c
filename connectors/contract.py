"""The connector contract: what the hub asks of a department system, and nothing more.

A connector serves some record families for one department. The hub calls

- ``fetch(family, keys, fields)`` with a batch of subject keys (USCCs or resident IDs, at most
  ``batch_size``) and *only the fields the caller may receive*; it returns, for each key that
  has records, the list of records as ``{field name: value}`` dicts in the catalogue's field
  names and value types (str, datetime.date, decimal.Decimal, int). Keys with no records may
  be absent from the result. A key whose own answer failed (one bad row, one upstream error
  for one subject) may map to its `ConnectorError` instead: only that subject's field fails.
- ``provides(family)``: the fields of a family this connector maps; the hub never asks
  for others, and lists the connector's department as a source of exactly these fields.
- ``search(family, text, limit)`` for subject keys whose searchable field contains `text`.
- ``health()`` for a cheap liveness probe.
- optionally (`EnumeratingConnector`), ``subject_keys(family, after, limit)``: a page of the keys
  of the subjects it holds records of, in key order — how district-wide jobs (ratings, list
  rules) learn the district's subjects from the registry.

Connectors know nothing about policies or principals. They raise `UpstreamUnavailable` when
the department cannot be reached in time and `UpstreamInvalid` when it answers with data that
cannot be mapped; the hub turns both into per-field GraphQL errors. `CallerInputError` is the
caller's fault, not the department's: a value of the request (search text, a key) that the
department's driver, database or API cannot take. It fails that one call, is never retried and
never counts toward the department's circuit breaker; the hub answers it as BAD_USER_INPUT.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from xinlian.schema.text import refused_character

Record = dict[str, Any]


class ConnectorError(Exception):
    """A department system failed; `department` names it for the caller.

    `message` is for the server log (it may name tables, columns or values); callers receive
    only the department, the code and the short `reason` (e.g. "timeout", "circuit_open").
    """

    code = "UPSTREAM_UNAVAILABLE"
    default_reason = "unavailable"

    def __init__(self, department: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.department = department
        self.message = message
        self.reason = reason or self.default_reason


class UpstreamUnavailable(ConnectorError):
    """The department did not answer (down, refused, timed out)."""

    code = "UPSTREAM_UNAVAILABLE"


class UpstreamInvalid(ConnectorError):
    """The department answered with data the mapping cannot convert."""

    code = "UPSTREAM_INVALID"
    default_reason = "invalid_data"


class CallerInputError(ConnectorError):
    """The caller's input cannot be sent to the department: the call failed, the department did not.

    E.g. a lone surrogate the driver cannot encode, a NUL PostgreSQL refuses, a character outside
    the department database's character set. Not retried, not a breaker failure (see
    `connectors.resilience`); `message` is for the server log, callers get BAD_USER_INPUT.
    """

    code = "BAD_USER_INPUT"
    default_reason = "bad_input"


def caller_text(department: str, value: str, what: str = "search text") -> str:
    """`value` unchanged, or `CallerInputError` when it holds a character no department is sent.

    The rule is `schema.text` (NUL and other control characters, lone surrogates), the same the
    hub applies before any connector is called; connectors check again before using a value.
    """
    if not isinstance(value, str):
        raise CallerInputError(department, f"{what} refused: it is not text")
    refused = refused_character(value)
    if refused is not None:
        raise CallerInputError(department, f"{what} refused: it contains {refused}")
    return value


# What `fetch` returns: per key its records, or — when one subject's answer failed but the
# others' did not — that key's `ConnectorError`. A connector raises only when the whole call failed.
FetchResult = dict[str, "list[Record] | ConnectorError"]


@dataclass(frozen=True, slots=True)
class FetchCall:
    """One `fetch` as a connector received it, and what it read upstream for it.

    `columns` names what was selected upstream in the kind's own terms: columns of a table or a
    drop file, dotted paths inside a JSON or GraphQL answer. Each connector keeps its recent
    calls in `calls` (bounded by `connectors.calls.log_call`).
    """

    family: str
    keys: tuple[str, ...]
    fields: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    detail: str = ""
    checked_at: dt.datetime | None = None


@runtime_checkable
class Connector(Protocol):
    """One department system, serving one or more record families."""

    name: str  # stable identifier, e.g. "market"
    department: str  # the department's name, shown to callers in errors and the catalogue
    families: frozenset[str]
    batch_size: int
    timeout: float  # seconds per call

    def provides(self, family: str) -> frozenset[str]:
        """The fields of `family` this connector maps (the hub asks for no others)."""
        ...

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> FetchResult: ...

    async def search(self, family: str, text: str, limit: int) -> list[str]: ...

    async def health(self) -> Health: ...

    async def close(self) -> None: ...


@runtime_checkable
@runtime_checkable
class EnumeratingConnector(Protocol):
    """A connector that can page through the keys of the subjects it holds records of (for the
    families `enumerates` says: an SQL table by its key column, a REST API with a `keys` template)."""

    def enumerates(self, family: str) -> bool: ...

    async def subject_keys(self, family: str, after: str, limit: int) -> list[str]: ...


@runtime_checkable
class ReadModelConnector(Protocol):
    """A connector that keeps a read model of its department (a file drop's index) and can
    build it ahead of the first request."""

    async def refresh(self) -> Any: ...
