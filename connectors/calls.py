"""What every connector kind does with a `fetch` it receives, whatever the department runs.

It owns the bookkeeping around a call, not the reading: the distinct keys and fields asked
for (a field the connector does not map is the caller's bug, a `ValueError`), the bounded log
of recent calls each connector keeps in `calls` (tests and operators read it to see exactly
what was asked of a department), and the rule of the contract that a call raises only when
every subject it asked about failed.
"""

from __future__ import annotations

from typing import Collection, Sequence

from .contract import CallerInputError, ConnectorError, FetchCall, UpstreamInvalid, UpstreamUnavailable

CALL_LOG_LIMIT = 10_000  # `calls` keeps at most this many recent fetches (a long-running hub must not grow)

__all__ = ["CALL_LOG_LIMIT", "distinct_request", "log_call", "whole_call_failure"]


def distinct_request(
    connector: str, family: str, mapped: Collection[str], keys: Sequence[str], fields: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys and the fields of a `fetch`, each once and in order; `mapped` are the family's fields."""
    wanted = tuple(dict.fromkeys(fields))
    missing = [f for f in wanted if f not in mapped]
    if missing:
        raise ValueError(f"connector {connector} does not map {family}.{missing[0]}")
    return tuple(dict.fromkeys(keys)), wanted


def log_call(calls: list[FetchCall], call: FetchCall) -> None:
    """Add `call` to a connector's `calls`, dropping the oldest beyond `CALL_LOG_LIMIT`."""
    calls.append(call)
    del calls[:-CALL_LOG_LIMIT]


def whole_call_failure(
    department: str, keys: Sequence[str], failures: Sequence[ConnectorError]
) -> ConnectorError | None:
    """What to raise when every one of `keys` failed (`failures`, one each), else None.

    `UpstreamInvalid` when every failure was invalid data, `CallerInputError` when every one was
    the caller's input, else `UpstreamUnavailable`; the message and reason are the first failure's.
    """
    if not keys or len(failures) != len(keys):
        return None
    first = failures[0]
    kind: type[ConnectorError] = UpstreamUnavailable
    for candidate in (UpstreamInvalid, CallerInputError):
        if all(isinstance(f, candidate) for f in failures):
            kind = candidate
    return kind(department, first.message, first.reason)
