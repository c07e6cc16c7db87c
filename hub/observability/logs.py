"""Structured logs: one JSON object a line, each naming the request it belongs to.

`XINLIAN_LOG_FORMAT=json` (settings `log_format`) makes `xinlian serve` and `xinlian demo` log
through `JsonFormatter`: `{"at", "level", "logger", "message", "requestId"}` (plus `"error"`, the
exception's type and message, when one is logged). `requestId` is the hub's id of the request
being served (the `X-Request-Id` header, the audit entry's `request_id`), set by the gateway in
`REQUEST_ID` for the request's whole task; null outside one. The default, `text`, is uvicorn's.

No secrets or personal data: the hub's own messages name departments, connectors, fields and
error kinds, never token or secret values, subjects' identifiers or record values (the
connectors redact credentials; the access log masks resident ID numbers and token parameters,
`hub/serving.py`); tracebacks are not written in JSON mode — only the exception's type and
message — so no source line with a literal ends up in a log shipper.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("xinlian_request_id", default=None)
FORMATS = ("text", "json")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the request being served, or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "at": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "requestId": getattr(record, "request_id", None),
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            document["error"] = f"{type(error).__name__}: {error}"
        return json.dumps(document, ensure_ascii=False)


def log_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's `log_config`: the hub's and uvicorn's loggers
    to stderr, as JSON lines or as text, each record carrying the request id."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    formatter = (
        {"()": "xinlian.hub.observability.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "hub",
               "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "xinlian.hub.observability.logs.RequestIdFilter"}},
        "formatters": {"hub": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "": {"handlers": ["default"], "level": level},
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
    }
