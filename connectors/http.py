"""The wire to a department's HTTP service, shared by the REST and GraphQL connector kinds.

It owns what both must do alike: the `Credentials` the hub presents (secret headers, the TLS
setup) and keeping their values out of any text shown; the httpx client (redirects never
followed: one could carry the credentials to another host); and reading a streamed body under
a size ceiling (`read_body`). It also names what went wrong on the wire without URLs, host
names or anything sent (`status_failure`, `transport_failure`): the REST kind's wording, which
the GraphQL kind does not use yet (its terser messages are documented and tested as they are).
The reasons agree: "timeout", "unreachable", "http_status". What an answer means — JSON
records, GraphQL `data` and `errors` — is each connector's own business.

Two clients: the REST kind still uses httpx (`open_client`, `read_body`, `transport_failure`);
the GraphQL kind uses aiohttp (`open_session`, `read_limited`, `session_failure`), whose client
costs a quarter of httpx's CPU per call on loopback (0.26–0.29 ms against 0.9–1.2 ms,
docs/benchmarks.md run 6) — the department calls were the largest share of the hub's CPU. Same
rules for both: credentials last in the headers, redirects never followed, the body read under
a ceiling and dropped past it, failures named without URLs or host names.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Mapping

import aiohttp
import httpx

__all__ = [
    "BodyTooLarge", "Credentials", "clip", "open_client", "open_session", "read_body", "read_limited",
    "session_failure", "status_failure", "transport_failure",
]


@dataclass(frozen=True)
class Credentials:
    """What the hub presents to the department: secret headers and the TLS setup (never shown)."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    tls: bool | ssl.SSLContext = field(default=True, repr=False)  # True: the system's CAs (via httpx)

    def redact(self, text: str) -> str:
        """`text` with every secret value (a bearer token without its scheme) replaced by ***."""
        for value in self.headers.values():
            if value:
                text = text.replace(value.removeprefix("Bearer "), "***")
        return text


def clip(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with "..." where it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def open_client(
    credentials: Credentials,
    headers: Mapping[str, str],
    timeout: float,
    *,
    base_url: httpx.URL | str = "",
    connections: int = 100,
    transport: httpx.AsyncBaseTransport | None = None,
    trust_env: bool = False,
) -> httpx.AsyncClient:
    """A client sending `headers`, then the credentials' secret ones.

    `trust_env=False` (the default) ignores proxies and CA bundles from the environment: the
    configuration says where the department is and whom to trust.
    """
    return httpx.AsyncClient(
        base_url=base_url,
        headers={**headers, **credentials.headers},
        verify=credentials.tls,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=min(connections, 20)),
        follow_redirects=False,  # a redirect could carry the credentials elsewhere
        trust_env=trust_env,
        transport=transport,
    )


class BodyTooLarge(Exception):
    """A response body passed the ceiling; it was not buffered further.

    It carries only the ceiling: no part of the body, no response, no cause or context.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"exceeds {limit // 2**20} MiB")
        self.limit = limit


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response; `BodyTooLarge` as soon as it passes `limit` bytes.

    Past the ceiling nothing more is read: what was buffered is dropped and the response is
    closed before `BodyTooLarge` is raised, so neither the exception nor its traceback (this
    frame's locals) keeps the body alive. A connection closed before the whole body arrived
    raises httpx's `RemoteProtocolError` (a body cut short), the buffer dropped likewise.
    """
    chunks: list[bytes] = []
    size, chunk = 0, b""
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    finally:  # whatever leaves this frame, the frame (kept by a traceback) holds no body
        chunks.clear()
        chunk = b""
    await response.aclose()
    raise BodyTooLarge(limit) from None


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


def transport_failure(exc: httpx.HTTPError) -> tuple[str, str]:
    """What went wrong on the wire (message, reason), without URLs, host names or anything sent."""
    causes: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in causes:  # httpx → httpcore → anyio → the OS error
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    text, kind = " ".join(str(c).lower() for c in causes), type(exc).__name__

    def seen(*types: type[BaseException]) -> bool:
        return any(isinstance(c, types) for c in causes)

    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from the department's API in time ({kind})", "timeout"
    if seen(ssl.SSLError) or any(word in text for word in ("ssl", "certificate", "tls")):
        return f"TLS with the department's API failed ({kind})", "unreachable"
    if seen(ConnectionRefusedError):
        return "the department's API refused the connection", "unreachable"
    if seen(socket.gaierror):
        return "the department's API host could not be resolved", "unreachable"
    if seen(ConnectionResetError, ConnectionAbortedError, BrokenPipeError) or "reset" in text:
        return f"the connection to the department's API was reset ({kind})", "unreachable"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to the department's API ({kind})", "unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the department's API closed the connection without answering", "unreachable"
    return f"the department's API could not be reached ({kind})", "unreachable"


# ---- aiohttp (the GraphQL kind) -----------------------------------------------------------------


def open_session(
    credentials: Credentials,
    headers: Mapping[str, str],
    timeout: float,
    *,
    connections: int = 100,
    trust_env: bool = False,
) -> aiohttp.ClientSession:
    """An aiohttp session sending `headers`, then the credentials' secret ones; `timeout` bounds
    each whole call (connect, send, answer). Redirects are refused per call (`allow_redirects=False`).
    `trust_env`: honour HTTP(S)_PROXY and the environment's CA settings. Call inside the event loop
    that will use it."""
    return aiohttp.ClientSession(
        headers={**headers, **credentials.headers},
        timeout=aiohttp.ClientTimeout(total=timeout),
        connector=aiohttp.TCPConnector(limit=connections, ssl=credentials.tls),
        trust_env=trust_env,
        skip_auto_headers=("User-Agent",),
    )


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


def session_failure(exc: BaseException) -> tuple[str, str]:
    """What went wrong on an aiohttp call (message, reason), without URLs or host names."""
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return "no answer in time", "timeout"
    if isinstance(exc, aiohttp.ClientSSLError) or isinstance(getattr(exc, "os_error", None), ssl.SSLError):
        return "TLS with the service failed", "unreachable"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return "the service refused the connection", "unreachable"
        if isinstance(cause, socket.gaierror):
            return "the service's host could not be resolved", "unreachable"
        return "cannot connect to the service", "unreachable"
    if isinstance(exc, aiohttp.ServerDisconnectedError) or isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "the service closed the connection without answering", "unreachable"
    return f"the service could not be reached ({type(exc).__name__})", "unreachable"
