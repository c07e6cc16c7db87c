"""Real HTTP servers for tests: `serve_app(app)` runs an ASGI app under uvicorn on 127.0.0.1.

    from servers import serve_app

    with serve_app(app) as base_url:          # e.g. "http://127.0.0.1:54321"
        httpx.get(f"{base_url}/healthz")

The server runs in a background thread with its own event loop, so anything the app needs that
is bound to an event loop (a `Store`, connectors) must be opened in the app's lifespan, not in
the test. The socket is bound before the thread starts (port 0: the OS picks a free port, no
race), startup failures are raised in the test, and the server is shut down on exit.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator

import uvicorn

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 10.0


@contextlib.contextmanager
def serve_app(app: Any, *, lifespan: str = "on", log_level: str = "warning", **options: Any) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 for the duration of the block; yield its base URL.

    `options` are further uvicorn options (the hub's own: `xinlian.hub.serving.uvicorn_options`).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, lifespan=lifespan, **options)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # surfaced in the test thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"the test server did not start: {failure[0] if failure else 'it exited'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start within {STARTUP_TIMEOUT} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
