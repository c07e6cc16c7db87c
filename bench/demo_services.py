"""Run the demo district's live department services (e.g. the court's REST API) in their own process.

`xinlian demo` starts these next to the hub; `xinlian serve` does not. The benchmarks start
them here, in a process of their own, so a department's CPU is neither the hub's nor the load
generator's. Usage (the benchmarks do this for you):

    python bench/demo_services.py DATA_DIR [--nodelay]

It points `<DATA_DIR>/connectors.toml` at the services, prints one JSON line
(`{"court_url": ...}`; null values when the district has no live service or this version of
the hub has none), then serves until its standard input closes or it receives SIGINT/SIGTERM.

`--nodelay` is a what-if: the demo court service binds its listening socket as
`socket.socket(AF_INET, SOCK_STREAM)` (protocol 0), and asyncio only turns Nagle's algorithm
off (TCP_NODELAY) for sockets whose protocol is IPPROTO_TCP. Every keep-alive request then
waits ~40 ms for the client's delayed ACK. With `--nodelay` this process creates such sockets
with IPPROTO_TCP, so asyncio sets TCP_NODELAY as it does for `xinlian serve`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator


def _tcp_sockets() -> None:
    """Make `socket.socket(AF_INET, SOCK_STREAM)` in this process a TCP-protocol socket."""
    import socket

    base = socket.socket

    class TcpSocket(base):  # type: ignore[misc, valid-type]
        def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
            if fileno is None and family in (socket.AF_INET, socket.AF_INET6) and type == socket.SOCK_STREAM and proto in (-1, 0):
                proto = socket.IPPROTO_TCP
            super().__init__(family, type, proto, fileno)

    socket.socket = TcpSocket  # type: ignore[misc]


def main(argv: list[str]) -> int:
    nodelay = "--nodelay" in argv
    argv = [a for a in argv if a != "--nodelay"]
    if len(argv) != 1:
        print("usage: demo_services.py DATA_DIR [--nodelay]", file=sys.stderr)
        return 2
    if nodelay:
        _tcp_sockets()
    try:
        from xinlian.hub.demo.services import start_demo_services
    except ImportError:  # a hub without live demo services: nothing to run
        print(json.dumps({"court_url": None}), flush=True)
        return 0
    services = start_demo_services(Path(argv[0]))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent went away or closed the pipe
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(json.dumps({"court_url": services.court_url, "nodelay": nodelay}), flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        services.stop()
    return 0


@contextlib.contextmanager
def running(data_dir: Path, log_path: Path | None = None, nodelay: bool = False) -> Iterator[dict[str, Any]]:
    """Start this script for `data_dir` in a child process; yield its JSON line; stop it after."""
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(data_dir), *(["--nodelay"] if nodelay else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            raise RuntimeError(f"demo services exited with {process.returncode} before starting"
                               + (f"; see {log_path}" if log_path else ""))
        info = json.loads(line)
        info["pid"] = process.pid
        yield info
    finally:
        if process.poll() is None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if log_path:
            log.close()  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
