"""How the hub is put on the network: uvicorn's options, slow-client bounds, a redacted access log.

- **No proxy headers in uvicorn.** uvicorn would believe `X-Forwarded-For` from any loopback
  peer; the gateway applies the hub's own trusted-proxy rule instead (`hub/gateway/addresses.py`).
- **Headers in bounded time.** uvicorn closes an idle keep-alive connection but waits forever for
  the headers of a request that has begun (or of a connection that never sends anything).
  `BoundedH11Protocol` closes a connection whose request headers have not all arrived within
  `header_timeout` seconds of the connection opening, or of the previous response, and drops
  one whose client has read nothing of a response for `header_timeout` seconds (a slow reader,
  e.g. one that pipelines requests and never reads, would otherwise hold its requests and their
  responses for ever). The body is bounded by the gateway (`XINLIAN_BODY_TIMEOUT`).
- **The access log names no personal data.** A GET query string can carry resident ID numbers
  (in `variables` or the document) and `access_token=`; `AccessLogRedaction` masks both before
  uvicorn writes its access line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Settings
from .observability.logs import log_config

ACCESS_LOGGER = "uvicorn.access"
# 18 characters not inside a longer run of digits; a percent-escape (%22 for a quote) may precede
_RESIDENT_ID = re.compile(r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![0-9]))([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_SECRET_PARAMETER = re.compile(r"(?i)((?:access_token|client_secret|token|client_assertion)=)[^&\s]*")


def redact(text: str) -> str:
    """`text` with resident ID numbers masked (birth date and sequence) and token parameters removed."""
    text = _SECRET_PARAMETER.sub(r"\1[redacted]", text)
    return _RESIDENT_ID.sub(lambda m: f"{m.group(1)}********{'*' * 3}{m.group(2)[-1]}", text)


class AccessLogRedaction(logging.Filter):
    """Masks personal data and tokens in uvicorn's access lines (`client - "METHOD path HTTP/x" status`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Install `AccessLogRedaction` on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive in time,
    or whose client stops reading its response."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_write_timer()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading what we send: it has `header_timeout` seconds to start again."""
        super().pause_writing()
        self._cancel_write_timer()
        self._write_timer = self.loop.call_later(self.header_timeout, self._writes_stalled)

    def resume_writing(self) -> None:
        self._cancel_write_timer()
        super().resume_writing()

    def _cancel_write_timer(self) -> None:
        timer = self._write_timer
        if timer is not None:
            timer.cancel()
            self._write_timer = None

    def _writes_stalled(self) -> None:
        """A response the client has not read for `header_timeout` seconds: drop the connection
        (abort, not close: close would wait for the unread bytes), which frees the request."""
        self._write_timer = None
        self.logger.info("dropping a connection whose client stopped reading its response")
        self.transport.abort()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _cancel_header_timer(self) -> None:
        timer = self._header_timer
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        """No request under way (none started, or the last one answered): close the connection."""
        if self.cycle is None or self.cycle.response_complete:
            if not self.transport.is_closing():
                self.logger.info("closing a connection whose request headers did not arrive in time")
                self.transport.close()


def bounded_protocol(header_timeout: float) -> type[BoundedH11Protocol]:
    """A `BoundedH11Protocol` class with this header timeout (uvicorn instantiates the class)."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"header_timeout": header_timeout})


def uvicorn_options(settings: Settings, *, workers: int = 1) -> dict[str, Any]:
    """The uvicorn options every hub server uses (`xinlian serve`, `xinlian demo`, the tests' hubs).

    With several `workers` uvicorn hands the options to fresh processes, so the protocol is named
    by import path (the worker's app factory sets its header timeout: `app_from_serve_options`).
    """
    options: dict[str, Any] = {
        "http": bounded_protocol(settings.header_timeout) if workers == 1 else "xinlian.hub.serving:BoundedH11Protocol",
        "proxy_headers": False,  # the gateway decides which proxies to believe
        "server_header": False,
        "timeout_keep_alive": 5,
    }
    if settings.log_format == "json":
        options["log_config"] = log_config("json")
    return options
