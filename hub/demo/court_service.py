"""The court's enforcement information system (新城区人民法院 执行信息公开), as a small Starlette app.

It stands in for the court's own REST API in the demo and in tests, with the court's own JSON
shape rather than the hub's:

    GET /api/v1/sxbzxr?ids=<id>,<id>&page=1   batch lookup (at most MAX_IDS ids)
    GET /api/v1/sxbzxr/<id>?page=1            one subject (404 when the court has nothing)
    GET /api/v1/sxbzxr/search?mc=<text>&limit=10
    GET /api/v1/health

    {"code": 0, "msg": "success",
     "data": {"total": 1, "page": 1, "next": null, "next_page": null,
              "list": [{"ah": "（2025）内0102执123号", "zxfy": {"mc": "...人民法院"},
                        "bzxr": {"mc": "呼和浩特市新城区鑫达商贸有限公司", "zjhm": "91150102MA..."},
                        "larq": "2025-03-01", "fbrq": "2025-04-15",
                        "zxyj": {"wh": "（2024）内0102民初123号", "yw": "支付货款..."},
                        "lxqk": "0", "sxxwqx": ["违反财产报告制度"]}]}}

Every request needs the API key (`X-Api-Key`, or `Authorization: Bearer` with scheme="bearer").
Lists are paginated (`page_size`): `data.next` is the next page's link (relative to the host) and
`data.next_page` its number, for clients that page with `?page=N`.
`app.state.traffic` counts requests per endpoint and the most in flight at once;
`app.state.faults` makes the next N requests fail on purpose (HTTP 500, garbage JSON, a wrong
shape, a body shorter than its Content-Length, a hung answer, a reset connection, pagination
that never ends, loops or leads to another host; HTTP 200 with a non-zero `code`).
`serve_court_service` serves the demo district's courts database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets
import socket
import sqlite3
import struct
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_IDS = 200
API_KEY_FILE = "secrets/court-api-key"  # relative to the data directory
FAULTS = ("error", "busy", "garbage", "shape", "truncated", "hang", "reset", "endless", "loop", "offsite")
PAGINATION_FAULTS = ("endless", "loop", "offsite")


class Faults:
    """Failures for the next requests, in order: `inject("error", times=2)`; thread-safe."""

    def __init__(self, hang_seconds: float = 30.0) -> None:
        self.hang_seconds = hang_seconds
        self._queue: list[str] = []
        self._lock = threading.Lock()

    def inject(self, kind: str, times: int = 1) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (faults: {', '.join(FAULTS)})")
        with self._lock:
            self._queue.extend([kind] * times)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self) -> str | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None


class Traffic:
    """What the service was asked, counted server-side: requests per endpoint and peak concurrency."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # "batch" | "record" | "search" | "health" | "other"
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()

    def enter(self, endpoint: str) -> None:
        with self._lock:
            self.requests[endpoint] += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.peak_in_flight = self.in_flight


def _endpoint(path: str) -> str:
    if path == "/api/v1/sxbzxr":
        return "batch"
    if path == "/api/v1/sxbzxr/search":
        return "search"
    if path.startswith("/api/v1/sxbzxr/"):
        return "record"
    return "health" if path == "/api/v1/health" else "other"


class FaultInjection:
    """ASGI middleware: counts traffic, adds latency, and plays the next injected fault."""

    def __init__(self, app: ASGIApp, faults: Faults, traffic: Traffic, latency: float = 0.0) -> None:
        self.app, self.faults, self.traffic, self.latency = app, faults, traffic, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.traffic.enter(_endpoint(scope["path"]))
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            fault = self.faults.take()
            if fault is None or fault in PAGINATION_FAULTS:
                scope["court.fault"] = fault  # pagination faults are played by the endpoints
                await self.app(scope, receive, send)
            else:
                await self._play(fault, scope, receive, send)
        finally:
            self.traffic.leave()

    async def _play(self, fault: str, scope: Scope, receive: Receive, send: Send) -> None:
        if fault == "error":
            await JSONResponse({"code": 500, "msg": "系统繁忙，请稍后再试"}, status_code=500)(scope, receive, send)
        elif fault == "busy":  # the court's own way of saying no: HTTP 200 with a non-zero code
            await JSONResponse({"code": 1001, "msg": "系统繁忙，请稍后再试"})(scope, receive, send)
        elif fault == "garbage":
            await _raw(send, 200, b'{"code": 0, "data": {"list": [{"ah": "\xef\xbc\x88', len_extra=0)
        elif fault == "shape":
            await JSONResponse({"code": 0, "msg": "success", "data": {"list": "系统维护中"}})(scope, receive, send)
        elif fault == "hang":
            await _hang(receive, self.faults.hang_seconds)
            await JSONResponse({"code": 504, "msg": "处理超时"}, status_code=504)(scope, receive, send)
        else:  # "truncated": the headers and part of the body, then the connection closes;
            # "reset": the connection is reset before any answer (RST, not FIN)
            if fault == "truncated":
                body = b'{"code": 0, "msg": "success", "data": {"list": [{"ah": "(2025)'
                await _raw(send, 200, body, len_extra=4096, complete=False)
            transport = getattr(getattr(receive, "__self__", None), "transport", None)
            if transport is None:  # not under uvicorn: let the server drop the connection
                raise RuntimeError(f"court service fault {fault!r}")
            if fault == "reset":
                sock = transport.get_extra_info("socket")
                if sock is not None:  # RST instead of FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
            await asyncio.sleep(0.05)  # let the server see the connection gone before the app returns


async def _raw(send: Send, status: int, body: bytes, *, len_extra: int, complete: bool = True) -> None:
    length = str(len(body) + len_extra).encode()
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", length)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": not complete})


async def _hang(receive: Receive, seconds: float) -> None:
    """Wait until the client gives up (disconnects) or `seconds` pass."""
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass


def court_app(records_by_key: Mapping[str, list[dict[str, Any]]], api_key: str, *, scheme: str = "api_key",
              page_size: int = 50, latency: float = 0.0, hang_seconds: float = 30.0) -> Starlette:
    """The court's API serving `records_by_key` (subject ID → entries in the court's JSON shape)."""
    if scheme not in ("api_key", "bearer"):
        raise ValueError("scheme is 'api_key' or 'bearer'")
    store = {key.strip().upper(): list(entries) for key, entries in records_by_key.items()}
    expected = f"Bearer {api_key}" if scheme == "bearer" else api_key
    header = "authorization" if scheme == "bearer" else "x-api-key"

    def refused(request: Request) -> JSONResponse | None:
        if hmac.compare_digest(request.headers.get(header, "").encode(), expected.encode()):
            return None
        return JSONResponse({"code": 401, "msg": "访问密钥无效"}, status_code=401)

    def page(request: Request, entries: list[dict[str, Any]], link: str) -> JSONResponse:
        try:
            number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            return JSONResponse({"code": 400, "msg": "page 参数无效"}, status_code=400)
        fault = request.scope.get("court.fault")
        chunk = entries[(number - 1) * page_size : number * page_size]
        more = number * page_size < len(entries) or fault in PAGINATION_FAULTS
        following = number if fault == "loop" else number + 1
        data = {"total": len(entries), "page": number, "list": chunk, "next_page": following if more else None,
                "next": f"{link}page={following}" if more else None}
        if fault == "offsite":
            data["next"] = f"http://court-mirror.example{link}page={following}"
        return JSONResponse({"code": 0, "msg": "success", "data": data})

    async def batch(request: Request) -> JSONResponse:
        if (denied := refused(request)) is not None:
            return denied
        asked = request.query_params.get("ids", "").split(",")
        ids = list(dict.fromkeys(i.strip().upper() for i in asked if i.strip()))
        if not ids or len(ids) > MAX_IDS:
            return JSONResponse({"code": 400, "msg": f"ids 须为 1 至 {MAX_IDS} 个证件号码"}, status_code=400)
        entries = [entry for i in ids for entry in store.get(i, [])]
        return page(request, entries, f"/api/v1/sxbzxr?ids={quote(','.join(ids), safe=',')}&")

    async def record(request: Request) -> JSONResponse:
        if (denied := refused(request)) is not None:
            return denied
        subject = request.path_params["zjhm"].strip().upper()
        if subject not in store or not store[subject]:
            return JSONResponse({"code": 404, "msg": "未查询到失信被执行人信息"}, status_code=404)
        return page(request, store[subject], f"/api/v1/sxbzxr/{quote(subject, safe='')}?")

    async def search(request: Request) -> JSONResponse:
        if (denied := refused(request)) is not None:
            return denied
        text = request.query_params.get("mc", "").strip()
        try:
            limit = min(50, max(1, int(request.query_params.get("limit", "10"))))
        except ValueError:
            return JSONResponse({"code": 400, "msg": "limit 参数无效"}, status_code=400)
        found = [e for entries in store.values() for e in entries
                 if text and text in str(e.get("bzxr", {}).get("mc", ""))]
        data = {"total": len(found), "list": found[:limit], "next": None, "next_page": None}
        return JSONResponse({"code": 0, "msg": "success", "data": data})

    async def keys(request: Request) -> JSONResponse:
        """The debtors after `after` in id order, `limit` at a time: how the hub pages through them."""
        if (denied := refused(request)) is not None:
            return denied
        after = request.query_params.get("after", "")
        try:
            limit = min(500, max(1, int(request.query_params.get("limit", "100"))))
        except ValueError:
            return JSONResponse({"code": 400, "msg": "limit 参数无效"}, status_code=400)
        ids = sorted(k for k in store if k > after)[:limit]
        found = [store[k][0] for k in ids if store[k]]
        data = {"total": len(found), "list": found, "next": None, "next_page": None}
        return JSONResponse({"code": 0, "msg": "success", "data": data})

    async def health(request: Request) -> JSONResponse:
        return refused(request) or JSONResponse({"code": 0, "msg": "ok"})

    faults, traffic = Faults(hang_seconds), Traffic()
    app = Starlette(
        routes=[Route("/api/v1/health", health), Route("/api/v1/sxbzxr", batch), Route("/api/v1/sxbzxr/keys", keys),
                Route("/api/v1/sxbzxr/search", search), Route("/api/v1/sxbzxr/{zjhm}", record)],
        middleware=[Middleware(FaultInjection, faults=faults, traffic=traffic, latency=latency)],
    )
    app.state.faults, app.state.traffic, app.state.records = faults, traffic, store
    return app


# ---- the demo district's court, served over HTTP ------------------------------------------
def _iso(text: str | None) -> str | None:
    """'2025年03月01日' (the court database) → '2025-03-01' (the court API)."""
    if not text:
        return None
    return dt.datetime.strptime(text.strip(), "%Y年%m月%d日").date().isoformat()


def court_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the courts database's `sxbzxr` table, in the court API's JSON shape."""
    return {"ah": row["ah"], "zxfy": {"mc": row["zxfy"]}, "bzxr": {"mc": row["bzxrmc"], "zjhm": row["zjhm"]},
            "larq": _iso(row["larq"]), "fbrq": _iso(row["fbrq"]),
            "zxyj": {"wh": row["zxyjwh"], "yw": row["yw"]}, "lxqk": row["lxqk"], "sxxwqx": [row["sxxw"]]}


def load_court_records(database: Path) -> dict[str, list[dict[str, Any]]]:
    """The entries currently on the list (`zt = '1'`) of a courts database, by subject ID."""
    conn = sqlite3.connect(f"file:{Path(database)}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM sxbzxr WHERE zt = '1' ORDER BY zjhm, id").fetchall()
    finally:
        conn.close()
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row["zjhm"]).strip().upper(), []).append(court_entry(row))
    return out


def court_api_key(data_dir: Path) -> str:
    """The demo court's API key, kept in `<data_dir>/secrets/court-api-key` (created once, mode 0600)."""
    path = Path(data_dir) / API_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


class RunningService(NamedTuple):
    """A service running in a background thread: where it answers and how to stop it."""

    base_url: str
    stop: Callable[[], None]


def run_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any) -> RunningService:
    """Serve `app` under uvicorn in a daemon thread (port 0: a free port); TLS via ssl_* options."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio then sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "lifespan": "off", **uvicorn_options}
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"court-service-{port}", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(10)
        sock.close()

    deadline = time.monotonic() + 15
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            stop()
            why = failure[0] if failure else "it exited or timed out"
            raise RuntimeError(f"the court service did not start: {why}")
        time.sleep(0.01)
    scheme = "https" if uvicorn_options.get("ssl_certfile") else "http"
    return RunningService(f"{scheme}://{host}:{port}", stop)


def serve_court_service(data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> RunningService:
    """Serve `<data_dir>/departments/courts.db` as the court's API; the key is in `<data_dir>/secrets/court-api-key`."""
    records = load_court_records(Path(data_dir) / "departments" / "courts.db")
    return run_in_thread(court_app(records, court_api_key(Path(data_dir))), host, port)
