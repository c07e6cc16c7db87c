"""The bounded-body stage: at most `limit` bytes, read within `seconds`, or a refusal.

A declared `Content-Length` over the limit is refused before reading (413). A body still
arriving after `seconds` is refused (408 `BODY_TIMEOUT`): a client that sends half a request and
waits cannot hold a worker. A client that goes away mid-body raises `ClientDisconnect`, which
the gateway records as "abandoned" (not as an error of ours).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from .refusal import Refusal


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "PAYLOAD_TOO_LARGE", f"request body over {limit} bytes")


async def read_body(request: Request, limit: int, seconds: float) -> bytes:
    """The request body, bounded in size and time."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()

    async def read() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise _too_large(limit)

    try:
        await asyncio.wait_for(read(), timeout=seconds)
    except (asyncio.TimeoutError, TimeoutError):
        raise Refusal(408, "BODY_TIMEOUT", f"the request body did not arrive within {seconds:g} s",
                      headers={"Connection": "close"}) from None
    return bytes(body)
