"""`RestConnector`: a department's REST/JSON API read through httpx, mapped declaratively.

It owns turning a hub request into HTTP GETs: one request (plus its pages) per batch of keys
for a batch endpoint (`table = "/api/v1/dishonest?ids={keys}"`), or one request per key, at
most `key_concurrency` in flight, for a per-key endpoint (`table = "/api/v1/dishonest/{key}"`).
Records are found at a dotted path in each response (`rest.<family>.records`), attributed to
subjects by the family's `key` path and converted by its `FamilyMapping`, whose `column`s are
dotted paths here. `next` links or cursors are followed up to `max_pages` pages.

Failures: no answer, refused connections, resets, HTTP errors and refused credentials become
`UpstreamUnavailable`; bodies that are cut short, not JSON, of the wrong shape, or values that
do not convert become `UpstreamInvalid` naming the family and field. A value that does not
convert, or a per-key call that fails, fails only its own subject (`FetchResult`); the call
raises when its whole answer failed or every subject did. Messages (for the server log) never
carry URLs, query strings, host names or credentials. Credentials come from environment variables or
secret files, read (and TLS files loaded) when the configuration is loaded: the second half of
this module validates a `[[connector]]` of kind "rest" (docs/connectors-rest.md). Timeouts,
retries and breakers are the hub's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import json
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncGenerator, Mapping, Sequence
from urllib.parse import quote

import httpx

from .contract import ConnectorError, FetchResult, Health, Record, UpstreamInvalid, UpstreamUnavailable
from .credentials import secret
from .dotted import MISSING, DottedPath, ShapeError, describe
from .mapping import ConnectorConfigError, ConversionError, FamilyMapping, SearchField
from .spec import ConnectorKind, ConnectorSpec
from .sql import CALL_LOG_LIMIT, FetchCall

log = logging.getLogger("xinlian.connectors.rest")
# httpx logs every request URL at INFO, and these URLs carry subject identifiers (resident ID
# numbers among them). Unless the operator has configured that logger, keep it to warnings.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_PAGES = 50
MAX_BODY_BYTES = 32 * 1024 * 1024  # a larger answer is refused, not buffered
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

__all__ = ["KIND", "Credentials", "Endpoint", "FetchCall", "RestConnector", "build_rest", "render"]


@dataclass(frozen=True)
class Credentials:
    """What the hub presents to the department: secret headers and the TLS setup (never shown)."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    tls: bool | ssl.SSLContext = field(default=True, repr=False)  # True: the system's CAs (via httpx)


@dataclass(frozen=True)
class Endpoint:
    """How one record family is read: the path template, where records and subject keys are."""

    family: str
    path: str  # template with {keys} (batch) or {key} (per key), relative to the base URL
    key: DottedPath
    fields: Mapping[str, DottedPath]  # catalogue field → path inside a record (constants absent)
    records: DottedPath = DottedPath("", ())  # the list of records in a response ("" = the body)
    next: DottedPath | None = None  # the next page's URL (or cursor, with cursor_param)
    cursor_param: str | None = None
    search: str | None = None  # template with {text} and optionally {limit}
    where: tuple[tuple[DottedPath, tuple[Any, ...]], ...] = ()  # records kept only when every path matches

    @property
    def per_key(self) -> bool:
        return "{key}" in self.path


def render(template: str, **values: str) -> str:
    """`template` with each `{name}` replaced by `values[name]` (already percent-encoded by the caller)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _same(value: Any, allowed: tuple[Any, ...]) -> bool:
    """Whether a JSON value equals one of the configured values (numbers and text compared as text too)."""
    if value is MISSING or isinstance(value, (dict, list)):
        return False
    return any(value == a or str(value) == str(a) for a in allowed)


def _status_failure(status: int) -> str:
    if status in (401, 403):
        return f"the department's API refused the hub's credentials (HTTP {status})"
    if status == 429:
        return "the department's API is limiting the hub's requests (HTTP 429)"
    if status >= 500:
        return f"the department's API failed (HTTP {status})"
    if 300 <= status < 400:
        return f"the department's API redirected the hub (HTTP {status}; redirects are not followed)"
    return f"the department's API answered HTTP {status}"


def _transport_failure(exc: httpx.HTTPError) -> tuple[str, str]:
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


class RestConnector:
    """A department's REST/JSON API serving some record families (see `connectors.contract`)."""

    kind = "rest"

    def __init__(
        self,
        name: str,
        department: str,
        base_url: str,
        mappings: Mapping[str, FamilyMapping],
        endpoints: Mapping[str, Endpoint],
        *,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        batch_size: int = 200,
        timeout: float = 3.0,
        key_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        max_pages: int = DEFAULT_MAX_PAGES,
        health_path: str = "",
        expect: Sequence[tuple[DottedPath, tuple[Any, ...]]] = (),
        search: SearchField | None = None,
    ) -> None:
        self.name = name
        self.department = department
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.mappings = dict(mappings)
        self.endpoints = dict(endpoints)
        self.families = frozenset(self.mappings)
        self.batch_size = batch_size
        self.timeout = timeout
        self.key_concurrency = max(1, key_concurrency)
        self.max_pages = max(1, max_pages)
        self.health_path = health_path
        self.expect = tuple(expect)
        self.search_field = search
        self.calls: list[FetchCall] = []
        self._credentials = credentials or Credentials()
        self._headers = {"Accept": "application/json", "User-Agent": "xinlian-hub", **(headers or {})}
        self._http: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"RestConnector(name={self.name!r}, department={self.department!r}, families={sorted(self.families)})"

    # ---- the contract ------------------------------------------------------------------
    def provides(self, family: str) -> frozenset[str]:
        mapping = self.mappings.get(family)
        return frozenset(mapping.fields) if mapping else frozenset()

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> FetchResult:
        """Records per key; a key whose own answer failed maps to its `ConnectorError` instead."""
        mapping, endpoint = self._family(family)
        wanted = tuple(dict.fromkeys(fields))
        missing = [f for f in wanted if f not in mapping.fields]
        if missing:
            raise ValueError(f"connector {self.name} does not map {family}.{missing[0]}")
        unique = tuple(dict.fromkeys(keys))
        paths = tuple(dict.fromkeys(endpoint.fields[f].text for f in wanted if f in endpoint.fields))
        self.calls.append(FetchCall(family, unique, wanted, paths))
        del self.calls[:-CALL_LOG_LIMIT]
        failures: dict[str, ConnectorError] = {}
        answers: list[tuple[str | None, list[Any]]] = []  # (the key a per-key call asked for, its records)
        if endpoint.per_key:
            per_key, failures = await self._per_key(endpoint, unique)
            answers.extend(per_key.items())
        else:
            size = max(1, self.batch_size)
            for start in range(0, len(unique), size):
                url = render(endpoint.path, keys=",".join(quote(k, safe="") for k in unique[start : start + size]))
                answers.append((None, [item async for document in self._pages(url, endpoint, missing_ok=False)
                                       for item in self._records(document, endpoint)]))
        requested = {k.strip().upper(): k for k in unique}
        out: dict[str, list[Record]] = {}
        for asked, items in answers:
            for item in items:
                try:
                    key = requested.get(self._key_of(item, endpoint).upper())
                except UpstreamInvalid as exc:
                    if asked is None:  # a batch answer whose records cannot be attributed fails as a whole
                        raise
                    failures[asked] = exc
                    continue
                if key is None or key in failures or asked not in (None, key):
                    continue  # another subject's record: dropped unread
                try:
                    if self._kept(item, endpoint):
                        out.setdefault(key, []).append(self._record(item, mapping, endpoint, wanted))
                except UpstreamInvalid as exc:  # one subject's bad value fails that subject only
                    failures[key] = exc
        if failures:
            log.warning("connector %s (%s): %d subject(s) failed: %s", self.name, self.department, len(failures),
                        next(iter(failures.values())).message)
        if unique and len(failures) == len(unique):  # nothing to return: the call failed as a whole
            first = next(iter(failures.values()))
            invalid = all(isinstance(f, UpstreamInvalid) for f in failures.values())
            kind = UpstreamInvalid if invalid else UpstreamUnavailable
            raise kind(self.department, first.message, first.reason)
        result: FetchResult = {k: v for k, v in out.items() if k not in failures}
        result.update(failures)
        return result

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        endpoint = self.endpoints.get(family)
        if endpoint is None or endpoint.search is None or limit <= 0 or not text.strip():
            return []
        url = render(endpoint.search, text=quote(text.strip(), safe=""), limit=str(limit))
        found: dict[str, None] = {}
        async with contextlib.aclosing(self._pages(url, endpoint, missing_ok=True)) as pages:
            async for document in pages:
                found.update((self._key_of(item, endpoint).upper(), None)
                             for item in self._records(document, endpoint) if self._kept(item, endpoint))
                if len(found) >= limit:
                    break
        return sorted(found)[:limit]

    async def health(self) -> Health:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            response = await self._client().get(self.health_path)
        except httpx.HTTPError as exc:
            return Health(False, _transport_failure(exc)[0], now)
        except Exception as exc:  # health never raises
            return Health(False, f"health probe failed ({type(exc).__name__})", now)
        if 200 <= response.status_code < 300:
            return Health(True, f"ok (HTTP {response.status_code})", now)
        return Health(False, _status_failure(response.status_code), now)

    async def close(self) -> None:
        client, self._http, self._slots = self._http, None, None
        if client is not None:
            await client.aclose()

    # ---- requests ----------------------------------------------------------------------
    def _family(self, family: str) -> tuple[FamilyMapping, Endpoint]:
        try:
            return self.mappings[family], self.endpoints[family]
        except KeyError:
            raise ValueError(f"connector {self.name} does not serve {family!r}") from None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            connections = max(100, self.key_concurrency)
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers={**self._headers, **self._credentials.headers},
                verify=self._credentials.tls,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=connections, max_keepalive_connections=min(connections, 20)),
                follow_redirects=False,  # a redirect could carry the credentials elsewhere
                trust_env=False,  # no proxies or CA bundles from the environment: the configuration says
            )
            self._slots = asyncio.Semaphore(self.key_concurrency)
        return self._http

    async def _per_key(
        self, endpoint: Endpoint, keys: Sequence[str]
    ) -> tuple[dict[str, list[Any]], dict[str, ConnectorError]]:
        """Each key's records (one request plus its pages per key, `key_concurrency` at a time), and failed keys."""
        self._client()
        assert self._slots is not None
        slots = self._slots

        async def one(key: str) -> list[Any]:
            async with slots:
                url = render(endpoint.path, key=quote(key, safe=""))
                return [item async for document in self._pages(url, endpoint, missing_ok=True)
                        for item in self._records(document, endpoint)]

        outcomes = await asyncio.gather(*(one(k) for k in keys), return_exceptions=True)
        answers: dict[str, list[Any]] = {}
        failures: dict[str, ConnectorError] = {}
        for key, outcome in zip(keys, outcomes):
            if isinstance(outcome, ConnectorError):
                failures[key] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome  # a bug or a cancellation, not a department failure
            else:
                answers[key] = outcome
        return answers, failures

    async def _pages(self, url: str, endpoint: Endpoint, *, missing_ok: bool) -> AsyncGenerator[Any, None]:
        """The decoded documents of `url` and the pages its `next` links lead to (at most `max_pages`)."""
        target: httpx.URL | str = url
        first: httpx.URL | None = None
        seen: set[str] = set()
        for _ in range(self.max_pages):
            answer = await self._get(target, endpoint.family, missing_ok=missing_ok and first is None)
            if answer is None:
                return
            document, at = answer
            first = first or at
            seen.add(str(at))
            yield document
            following = self._next(document, endpoint, first, at)
            if following is None:
                return
            if str(following) in seen:
                raise self._invalid(endpoint.family, f"pagination loops back to a page already read")
            target = following
        raise self._invalid(endpoint.family, f"more than {self.max_pages} pages (pagination does not end)")

    def _next(self, document: Any, endpoint: Endpoint, first: httpx.URL, current: httpx.URL) -> httpx.URL | None:
        if endpoint.next is None:
            return None
        link = self._read(document, endpoint.next, endpoint.family)
        if link is MISSING or link is None or link == "":
            return None
        if endpoint.cursor_param is not None:
            if isinstance(link, (dict, list, bool)):
                raise self._invalid(endpoint.family, f"next cursor ({endpoint.next}) is {describe(link)}")
            return first.copy_set_param(endpoint.cursor_param, str(link))
        if not isinstance(link, str):
            raise self._invalid(endpoint.family, f"next link ({endpoint.next}) is {describe(link)}")
        try:
            following = current.join(link.strip())
        except httpx.InvalidURL:
            raise self._invalid(endpoint.family, f"next link ({endpoint.next}) is not a URL") from None
        base = self.base_url
        if (following.scheme, following.host, following.port) != (base.scheme, base.host, base.port):
            raise self._invalid(endpoint.family, f"next link ({endpoint.next}) leaves the department's API")
        return following

    async def _get(self, url: httpx.URL | str, family: str, *, missing_ok: bool) -> tuple[Any, httpx.URL] | None:
        """One GET, decoded; None for a 404 when `missing_ok` (a per-key call for an unknown subject)."""
        try:
            async with self._client().stream("GET", url) as response:
                status = response.status_code
                if status == 404 and missing_ok:
                    return None
                if not 200 <= status < 300:
                    raise self._unavailable(_status_failure(status), "http_status")
                try:
                    body = await self._body(response, family)
                except httpx.RemoteProtocolError:
                    raise self._invalid(family, f"the response was cut short") from None
                document = self._decode(body, response.charset_encoding, family)
                for path, allowed in self.expect:
                    self._check(document, path, allowed, family)
                return document, response.url
        except httpx.HTTPError as exc:
            raise self._unavailable(*_transport_failure(exc)) from None

    async def _body(self, response: httpx.Response, family: str) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise self._invalid(family, f"the response exceeds {MAX_BODY_BYTES // 2**20} MiB")
            chunks.append(chunk)
        return b"".join(chunks)

    def _decode(self, body: bytes, charset: str | None, family: str) -> Any:
        declared = charset if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8") else None
        try:  # UTF-8 (with or without a byte order mark) unless the response declares another charset
            return json.loads(body.decode(declared or "utf-8-sig"), parse_float=decimal.Decimal)
        except (UnicodeDecodeError, LookupError):
            raise self._invalid(family, f"the response is not {declared or 'UTF-8'} text") from None
        except ValueError as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise self._invalid(family, f"the response is not valid JSON{where}") from None

    def _check(self, document: Any, path: DottedPath, allowed: tuple[Any, ...], family: str) -> None:
        value = self._read(document, path, family)
        if value is MISSING:
            raise self._invalid(family, f"the response has no {path}")
        if not _same(value, allowed):
            raise self._unavailable(f"the department's API reported {path} = {_short(value)}", "upstream_error")

    def _invalid(self, family: str, message: str) -> UpstreamInvalid:
        return UpstreamInvalid(self.department, f"{family}: {message}")

    def _unavailable(self, message: str, reason: str) -> UpstreamUnavailable:
        log.warning("connector %s (%s): %s", self.name, self.department, message)
        return UpstreamUnavailable(self.department, message, reason)

    # ---- mapping -------------------------------------------------------------------------
    def _read(self, document: Any, path: DottedPath, what: str) -> Any:
        try:
            return path.resolve(document)
        except ShapeError as exc:  # `what` names the family/field and path; the reason says where it broke
            raise UpstreamInvalid(self.department, f"{what}: {exc.reason}") from None

    def _records(self, document: Any, endpoint: Endpoint) -> list[Any]:
        where = endpoint.records.text or "the response"
        items = self._read(document, endpoint.records, endpoint.family)
        if items is MISSING:
            raise self._invalid(endpoint.family, f"the response has no {where}")
        if items is None:
            return []
        if not isinstance(items, list):
            raise self._invalid(endpoint.family, f"{where} is {describe(items)}, not a list of records")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self._invalid(endpoint.family, f"record {index} of {where} is {describe(item)}")
        return items

    def _kept(self, item: Any, endpoint: Endpoint) -> bool:
        """Whether a record passes the family's `where` filter (an absent value does not)."""
        where = f"{endpoint.family} where"
        return all(_same(self._read(item, path, where), allowed) for path, allowed in endpoint.where)

    def _key_of(self, item: Any, endpoint: Endpoint) -> str:
        value = self._read(item, endpoint.key, f"{endpoint.family} key")
        if value is MISSING or value is None or isinstance(value, (dict, list, bool)) or not str(value).strip():
            shown = "absent" if value is MISSING else describe(value) if not isinstance(value, str) else "blank"
            raise self._invalid(endpoint.family, f"a record's subject key ({endpoint.key}) is {shown}")
        return str(value).strip()

    def _record(self, item: Any, mapping: FamilyMapping, endpoint: Endpoint, fields: Sequence[str]) -> Record:
        """Exactly `fields`, converted; only their paths are read, so other values cannot fail."""
        out: Record = {}
        for name in fields:
            spec, path = mapping.fields[name], endpoint.fields.get(name)
            where = f"{endpoint.family}.{name} (path {path})"
            raw = None if path is None else self._read(item, path, where)
            if isinstance(raw, (dict, list)):
                raise UpstreamInvalid(self.department, f"{where}: {describe(raw)}, not a value")
            try:
                out[name] = spec.convert(None if raw is MISSING else raw)
            except ConversionError as exc:
                raise UpstreamInvalid(self.department, f"{where}: {exc.reason}") from None
        return out


# ---- configuration: a [[connector]] of kind "rest" → RestConnector -----------------------
AUTH_OPTIONS = {
    "api_key": frozenset({"type", "header", "value_env", "value_file"}),
    "bearer": frozenset({"type", "token_env", "token_file"}),
    "mtls": frozenset({"type", "cert_file", "key_file", "ca_file"}),
}
REST_OPTIONS = frozenset({"records", "next", "cursor_param", "search"})
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


def _fail(where: str, message: str) -> ConnectorConfigError:
    return ConnectorConfigError(f"{where}: {message}")


def _text(raw: Any, where: str, what: str = "a non-empty string") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _fail(where, f"must be {what}")
    return raw.strip()


def _header_value(value: str, where: str, what: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise _fail(where, f"{what} is not a valid HTTP header value (printable ASCII)")
    return value


def _local_file(raw: Any, data_dir: Path, where: str) -> Path:
    path = Path(_text(raw, where, "a file path").replace("{data_dir}", str(data_dir))).expanduser()
    path = path if path.is_absolute() else data_dir / path
    if not path.is_file():
        raise _fail(where, f"no such file: {path}")
    return path


def _secret(table: Mapping[str, Any], stem: str, data_dir: Path, where: str) -> str:
    """A credential from `<stem>_env` or `<stem>_file` (`connectors.credentials`), fit for a header."""
    env_key, file_key = f"{stem}_env", f"{stem}_file"
    if (env_key in table) == (file_key in table):
        raise _fail(where, f"give exactly one of {env_key!r} (an environment variable) or {file_key!r} (a secret file)")
    given = env_key if env_key in table else file_key
    file = table.get(file_key)
    if isinstance(file, str):
        file = file.replace("{data_dir}", str(data_dir))
    value = secret(table.get(env_key), file, where=f"{where}.{given}", base=data_dir).strip()
    what = f"environment variable {table[env_key]}" if given == env_key else "the secret file"
    if not value:
        raise _fail(f"{where}.{given}", f"{what} holds only white space")
    return _header_value(value, f"{where}.{given}", f"the value of {what}")


def _auth(raw: Any, data_dir: Path, where: str) -> tuple[dict[str, str], dict[str, Path] | None]:
    """Secret headers and the client certificate files, from `auth` (one table or a list of them)."""
    headers: dict[str, str] = {}
    mtls: dict[str, Path] | None = None
    tables = raw if isinstance(raw, list) else [raw]
    if not tables:
        raise _fail(where, "give at least one auth table (or leave auth out)")
    seen: set[str] = set()
    for index, table in enumerate(tables):
        at = f"{where}[{index}]" if isinstance(raw, list) else where
        kind = table.get("type") if isinstance(table, dict) else None
        if kind not in AUTH_OPTIONS:
            raise _fail(at, "auth is a table with type = \"api_key\", \"bearer\" or \"mtls\"")
        if kind in seen:
            raise _fail(at, f"auth type {kind!r} is given twice")
        seen.add(kind)
        unknown = sorted(set(table) - AUTH_OPTIONS[kind])
        if unknown:
            known = ", ".join(sorted(AUTH_OPTIONS[kind]))
            raise _fail(at, f"unknown option {unknown[0]!r} for {kind} (options: {known})")
        if kind == "api_key":
            name = _text(table.get("header", "X-Api-Key"), f"{at}.header")
            if not HEADER_NAME.fullmatch(name):
                raise _fail(f"{at}.header", "must be an HTTP header name (letters, digits and -)")
            headers[name] = _secret(table, "value", data_dir, at)
        elif kind == "bearer":
            headers["Authorization"] = "Bearer " + _secret(table, "token", data_dir, at)
        else:
            mtls = {k: _local_file(table.get(f"{k}_file"), data_dir, f"{at}.{k}_file") for k in ("cert", "key")}
            if "ca_file" in table:
                mtls["ca"] = _local_file(table["ca_file"], data_dir, f"{at}.ca_file")
    if len([n for n in headers if n.lower() == "authorization"]) > 1:
        raise _fail(where, "api_key and bearer both use the Authorization header")
    return headers, mtls


def _tls(verify: Any, mtls: dict[str, Path] | None, data_dir: Path, where: str) -> bool | ssl.SSLContext:
    """True (the system's CAs) or an `ssl.SSLContext` trusting a given CA and/or presenting a client certificate."""
    ca: Path | None = None
    if verify is not True:
        if not isinstance(verify, str):
            raise _fail(f"{where}.verify", "give true or the path of a CA bundle (verification cannot be switched off)")
        ca = _local_file(verify, data_dir, f"{where}.verify")
    if mtls is not None and "ca" in mtls:
        if ca is not None:
            raise _fail(where, "give the CA bundle once: in verify or in the mtls auth's ca_file")
        ca = mtls["ca"]
    if ca is None and mtls is None:
        return True
    try:
        context = ssl.create_default_context(cafile=str(ca)) if ca else httpx.create_ssl_context()
        if mtls is not None:  # an encrypted key fails here instead of prompting for a passphrase
            context.load_cert_chain(str(mtls["cert"]), str(mtls["key"]), password=lambda: b"")
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise _fail(where, f"cannot load the TLS files ({type(exc).__name__}: {exc})") from None
    return context


def _base_url(raw: Any, mtls: bool, where: str) -> str:
    text = _text(raw, where, "an http:// or https:// URL")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise _fail(where, "must be an http:// or https:// URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise _fail(where, "must be an http:// or https:// URL")
    if url.userinfo:
        raise _fail(where, "must not carry credentials: give them in auth")
    if url.query or url.fragment:
        raise _fail(where, "must not have a query or fragment (put them in the path templates)")
    if mtls and url.scheme != "https":
        raise _fail(where, "mutual TLS needs an https:// URL")
    return text


def _template(raw: Any, where: str, allowed: frozenset[str], required: frozenset[str]) -> str:
    text = _text(raw, where, "a path template")
    if "://" in text or text.startswith("//"):
        raise _fail(where, "must be a path relative to base_url, not a full URL")
    names = set(PLACEHOLDER.findall(text))
    if "{" in PLACEHOLDER.sub("", text) or "}" in PLACEHOLDER.sub("", text):
        raise _fail(where, "has an unmatched brace")
    if names - allowed or not required <= names:
        wanted = " and ".join("{" + n + "}" for n in sorted(required)) or "only " + ", ".join(sorted(allowed))
        raise _fail(where, f"must use {wanted} (placeholders: {', '.join('{' + n + '}' for n in sorted(allowed))})")
    return text


def _path(raw: Any, where: str) -> DottedPath:
    if not isinstance(raw, str):
        raise _fail(where, "must be a dotted path (e.g. \"data.list\")")
    try:
        return DottedPath.parse(raw)
    except ValueError as exc:
        raise _fail(where, str(exc)) from None


def _matches(raw: Any, where: str) -> tuple[tuple[DottedPath, tuple[Any, ...]], ...]:
    """`{path = value or [values]}` tables (`expect`, a family's `where`)."""
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table {dotted.path = value or [values]}")
    out = []
    for path, value in raw.items():
        values = tuple(value) if isinstance(value, list) else (value,)
        if not values or any(isinstance(v, (dict, list)) for v in values):
            raise _fail(f"{where}.{path}", "a value is a string, number or boolean, or a list of them")
        out.append((_path(path, f"{where}.{path}"), values))
    return tuple(out)


def _endpoints(spec: ConnectorSpec, raw: Any, where: str) -> dict[str, Endpoint]:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise _fail(f"{where}.rest", "must be a table of record families")
    for family in raw:
        if family not in spec.families:
            raise _fail(f"{where}.rest.{family}", f"family {family!r} is not mapped by this connector")
    out: dict[str, Endpoint] = {}
    for family, mapping in spec.families.items():
        at, settings = f"{where}.families.{family}", raw.get(family, {})
        if mapping.schema is not None:
            raise _fail(at, "schema does not apply to a rest connector")
        per_key = "{key}" in mapping.table
        path = _template(mapping.table, f"{at}.table", frozenset({"key" if per_key else "keys"}),
                         frozenset({"key" if per_key else "keys"}))
        if not isinstance(settings, dict):
            raise _fail(f"{where}.rest.{family}", "must be a table")
        unknown = sorted(set(settings) - REST_OPTIONS)
        if unknown:
            known = ", ".join(sorted(REST_OPTIONS))
            raise _fail(f"{where}.rest.{family}", f"unknown option {unknown[0]!r} (options: {known})")
        if "cursor_param" in settings and "next" not in settings:
            raise _fail(f"{where}.rest.{family}", "cursor_param needs next (the path of the cursor)")
        search = settings.get("search")
        out[family] = Endpoint(
            family=family, path=path, key=_path(mapping.key, f"{at}.key"),
            fields={n: _path(f.source, f"{at}.fields.{n}") for n, f in mapping.fields.items() if f.source is not None},
            records=_path(settings.get("records", ""), f"{where}.rest.{family}.records"),
            next=_path(settings["next"], f"{where}.rest.{family}.next") if "next" in settings else None,
            cursor_param=(_text(settings["cursor_param"], f"{where}.rest.{family}.cursor_param")
                          if "cursor_param" in settings else None),
            search=None if search is None else _template(
                search, f"{where}.rest.{family}.search", frozenset({"text", "limit"}), frozenset({"text"})),
            where=tuple((_path(c, f"{at}.where.{c}"), v) for c, v in mapping.where),
        )
    return out


def _count(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise _fail(where, "must be a whole number of at least 1")
    return raw


def build_rest(spec: ConnectorSpec, data_dir: Path, where: str) -> RestConnector:
    """A `RestConnector` from a validated spec: every file, variable and template checked now."""
    options, data_dir = spec.options, Path(data_dir)
    secret_headers, mtls = _auth(options["auth"], data_dir, f"{where}.auth") if "auth" in options else ({}, None)
    base_url = _base_url(options["base_url"], mtls is not None, f"{where}.base_url")
    tls = _tls(options.get("verify", True), mtls, data_dir, where)
    headers = options.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _fail(f"{where}.headers", "must be a table {Header-Name = \"value\"}")
    reserved = {"authorization", "proxy-authorization", "host", *(n.lower() for n in secret_headers)}
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise _fail(f"{where}.headers", f"{name!r} is not an HTTP header name")
        if name.lower() in reserved:
            raise _fail(f"{where}.headers.{name}", "credentials and transport headers belong in auth")
        _header_value(value, f"{where}.headers.{name}", "the value")
    endpoints = _endpoints(spec, options.get("rest"), where)
    if spec.search is not None and endpoints[spec.search.family].search is None:
        raise _fail(f"{where}.search", f"a rest connector searches through rest.{spec.search.family}.search "
                                       "(a path template with {text}); add one")
    health_path = options.get("health_path", "")
    if not isinstance(health_path, str) or "://" in health_path:
        raise _fail(f"{where}.health_path", "must be a path relative to base_url")
    return RestConnector(
        spec.name, spec.department, base_url, spec.families, endpoints,
        credentials=Credentials(secret_headers, tls), headers=headers,
        batch_size=spec.batch_size, timeout=spec.timeout,
        key_concurrency=_count(options.get("key_concurrency", DEFAULT_MAX_CONCURRENCY), f"{where}.key_concurrency"),
        max_pages=_count(options.get("max_pages", DEFAULT_MAX_PAGES), f"{where}.max_pages"),
        health_path=health_path.strip(),
        expect=_matches(options["expect"], f"{where}.expect") if "expect" in options else (),
        search=spec.search,
    )


KIND = ConnectorKind(
    build_rest,
    options=frozenset({"base_url", "auth", "verify", "headers", "key_concurrency", "max_pages",
                       "health_path", "expect", "rest"}),
    required=frozenset({"base_url"}),
)
