"""The wire to a department's HTTP service, shared by the REST and GraphQL connector kinds.

It owns what both must do alike: the `Credentials` the hub presents (secret headers, the TLS
setup) and keeping their values out of any text shown; the client session (redirects never
followed: one could carry the credentials to another host); reading a body under a size
ceiling (`read_limited`); and naming what went wrong on the wire without URLs, host names or
anything sent (`status_failure`, `session_failure`, each kind naming the other side its own
way). The reasons agree: "timeout", "unreachable", "http_status". What an answer means — JSON
records, GraphQL `data` and `errors` — is each connector's own business.

The client is aiohttp (`open_session`, `read_limited`, `session_failure`), for both kinds: it
costs a quarter of httpx's CPU per call on loopback (0.26–0.29 ms against 0.9–1.2 ms,
docs/benchmarks.md run 6), and the department calls were the largest share of the hub's CPU.
Credentials go last in the headers, redirects are never followed, the body is read under a
ceiling and dropped past it, failures are named without URLs or host names.

Trace context: while the hub traces (OpenTelemetry, off by default), `TRACE_HEADERS` gives the
W3C `traceparent` of the department call's span and `traced(headers)` adds it to a request's
headers, so a department's own tracing can join the hub's trace; while it is None (tracing off)
`traced` hands the headers back unchanged.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

__all__ = [
    "BodyTooLarge", "Credentials", "LoopSession", "TRACE_HEADERS", "clip", "environment_proxy", "open_session",
    "read_limited", "session_failure", "status_failure", "traced",
]

# Set while tracing is on (hub/observability/tracing.py): the current span's trace context headers.
TRACE_HEADERS: Callable[[], Mapping[str, str]] | None = None


def traced(headers: Mapping[str, str] | None = None) -> Mapping[str, str] | None:
    """`headers` plus the current trace context (`traceparent`) while tracing is on; else `headers`."""
    source = TRACE_HEADERS
    if source is None:
        return headers
    return {**(headers or {}), **source()}


@dataclass(frozen=True)
class Credentials:
    """What the hub presents to the department: secret headers and the TLS setup (never shown)."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    tls: bool | ssl.SSLContext = field(default=True, repr=False)  # True: the system's CAs

    def redact(self, text: str) -> str:
        """`text` with every secret value (a bearer token without its scheme) replaced by ***."""
        for value in self.headers.values():
            if value:
                text = text.replace(value.removeprefix("Bearer "), "***")
        return text


def clip(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with "..." where it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BodyTooLarge(Exception):
    """A response body passed the ceiling; it was not buffered further.

    It carries only the ceiling: no part of the body, no response, no cause or context.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"exceeds {limit // 2**20} MiB")
        self.limit = limit


def status_failure(status: int) -> str:
    """What a non-2xx status means, for the server log."""
    if status in (401, 403):
        return f"the department's API refused the hub's credentials (HTTP {status})"
    if status == 429:
        return "the department's API is limiting the hub's requests (HTTP 429)"
    if status >= 500:
        return f"the department's API failed (HTTP {status})"
    if 300 <= status < 400:
        return f"the department's API redirected the hub (HTTP {status}; redirects are not followed)"
    return f"the department's API answered HTTP {status}"


# ---- the client -------------------------------------------------------------------------------


def open_session(
    credentials: Credentials,
    headers: Mapping[str, str],
    timeout: float,
    *,
    connections: int = 100,
) -> aiohttp.ClientSession:
    """An aiohttp session sending `headers`, then the credentials' secret ones; `timeout` bounds
    each whole call (connect, send, answer). Redirects are refused per call (`allow_redirects=False`).
    The environment is not consulted (`environment_proxy` reads a proxy once). Call inside the
    event loop that will use it."""
    session = aiohttp.ClientSession(
        headers={**headers, **credentials.headers},
        timeout=aiohttp.ClientTimeout(total=timeout),
        connector=aiohttp.TCPConnector(limit=connections, ssl=credentials.tls),
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )
    # aiohttp silently repeats a GET whose connection was reset; retries are the hub's business
    # (DepartmentLink: counted, backed off, within the request's deadline). No public switch
    # exists; aiohttp's own test client sets the same attribute. tests/test_rest_connector.py
    # ("reset") fails if this stops working.
    session._retry_connection = False
    return session


class LoopSession:
    """A connector's aiohttp session: opened on first use, one per event loop (a session cannot
    cross loops; tests run connectors in several), closed quietly even after its loop ended."""

    def __init__(self, opener: Callable[[], aiohttp.ClientSession]) -> None:
        self._opener = opener
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> tuple[aiohttp.ClientSession, bool]:
        """The running loop's session, and whether it was opened just now."""
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop and not self._session.closed:
            return self._session, False
        self._session, self._loop = self._opener(), loop
        return self._session, True

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except RuntimeError:  # made in an event loop that has ended: nothing left to close there
                pass


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (HTTP_PROXY / HTTPS_PROXY, NO_PROXY) names for `url`, or None.

    Read once when a connector opens its session: aiohttp's `trust_env` looks the environment
    (and ~/.netrc) up again on every request, in a worker thread — about a sixth of the hub's
    samples in the peer benchmark's profile."""
    parsed = urlsplit(url)
    if parsed.hostname and proxy_bypass(parsed.hostname):
        return None
    return getproxies().get(parsed.scheme) or None


async def read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of `response`; `BodyTooLarge` as soon as it passes `limit` bytes (what was read is
    dropped and the connection closed first, so nothing keeps the body alive). A body cut short
    raises aiohttp's `ClientPayloadError`."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise BodyTooLarge(limit) from None
    chunks: list[bytes] = []
    size, chunk = 0, b""
    try:
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    finally:  # whatever leaves this frame, the frame (kept by a traceback) holds no body
        chunks.clear()
        chunk = b""
    response.close()
    raise BodyTooLarge(limit) from None


def session_failure(exc: BaseException, who: str = "the service") -> tuple[str, str]:
    """What went wrong on an aiohttp call (message, reason), without URLs or host names; `who`
    names the other side ("the service", "the department's API")."""
    kind = type(exc).__name__
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return f"no answer from {who} in time", "timeout"
    if isinstance(exc, aiohttp.ClientSSLError) or isinstance(getattr(exc, "os_error", None), ssl.SSLError):
        return f"TLS with {who} failed ({kind})", "unreachable"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return f"{who} refused the connection", "unreachable"
        if isinstance(cause, socket.gaierror):
            return f"{who}'s host could not be resolved", "unreachable"
        return f"cannot connect to {who} ({kind})", "unreachable"
    reset = isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
    if reset or isinstance(exc, (aiohttp.ServerDisconnectedError, ConnectionResetError, BrokenPipeError)):
        return f"the connection to {who} was reset or closed without an answer ({kind})", "unreachable"
    return f"{who} could not be reached ({kind})", "unreachable"
