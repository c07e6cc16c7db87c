"""`RestConnector`: a department's REST/JSON API read through aiohttp, mapped declaratively.

It owns turning a hub request into HTTP GETs: one request (plus its pages) per batch of keys
for a batch endpoint (`table = "/api/v1/dishonest?ids={keys}"`), or one request per key, at
most `key_concurrency` in flight, for a per-key endpoint (`table = "/api/v1/dishonest/{key}"`).
Records are found at a dotted path in each response (`rest.<family>.records`), attributed to
subjects by the family's `key` path and converted by its `FamilyMapping`, whose `column`s are
dotted paths here. `next` links or cursors are followed up to `max_pages` pages.

Failures: no answer, refused connections, resets, HTTP errors and refused credentials become
`UpstreamUnavailable`; bodies that are not JSON, too large, cut short (the connection closed
before the whole body arrived: the department answered, but not usably), of the wrong shape,
or values that do not convert become `UpstreamInvalid` naming the family and field (not
retried). A too large body is dropped as soon as it passes the ceiling, and the exception
raised holds no part of it. A
value that does not convert, or a per-key call that fails, fails only its own subject
(`FetchResult`); the call raises when its whole answer failed or every subject did. A key or
search text holding a character no department is sent (NUL, a control character, a lone
surrogate) becomes `CallerInputError` before any request is made. Messages
(for the server log) never carry URLs, query strings, host names or credentials. The wire
itself (client, credentials, body ceiling, naming failures) is `connectors.http`'s; reading the
`[[connector]]` table is `connectors.rest_config`'s, whose `KIND` and `build_rest` this module
re-exports. Timeouts, retries and breakers are the hub's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import json
import logging
from typing import Any, AsyncGenerator, Mapping, Sequence
from urllib.parse import quote

import aiohttp
from yarl import URL

from .calls import distinct_request, log_call, whole_call_failure
from .contract import (
    ConnectorError,
    FetchCall,
    FetchResult,
    Health,
    Record,
    UpstreamInvalid,
    UpstreamUnavailable,
    caller_text,
)
from .dotted import MISSING, DottedPath, ShapeError, describe
from .http import (
    BodyTooLarge,
    Credentials,
    LoopSession,
    clip,
    open_session,
    read_limited,
    session_failure,
    status_failure,
    traced,
)
from .mapping import ConversionError, FamilyMapping, SearchField
from .rest_config import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_PAGES, KIND, Endpoint, build_rest, render

log = logging.getLogger("xinlian.connectors.rest")
MAX_BODY_BYTES = 32 * 1024 * 1024  # a larger answer is refused, not buffered
API = "the department's API"  # how failures name the other side (connectors.http.session_failure)

__all__ = ["KIND", "Credentials", "Endpoint", "FetchCall", "RestConnector", "build_rest", "render"]


def _short(value: Any) -> str:
    return clip(repr(value), 40)


def _same(value: Any, allowed: tuple[Any, ...]) -> bool:
    """Whether a JSON value equals one of the configured values (numbers and text compared as text too)."""
    if value is MISSING or isinstance(value, (dict, list)):
        return False
    return any(value == a or str(value) == str(a) for a in allowed)


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
        self.base_url = URL(base_url.rstrip("/") + "/", encoded=True)
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
        self._sessions = LoopSession(
            lambda: open_session(self._credentials, self._headers, self.timeout, connections=max(100, self.key_concurrency))
        )
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
        unique, wanted = distinct_request(self.name, family, mapping.fields, keys, fields)
        paths = tuple(dict.fromkeys(endpoint.fields[f].text for f in wanted if f in endpoint.fields))
        log_call(self.calls, FetchCall(family, unique, wanted, paths))
        failures: dict[str, ConnectorError] = {}
        answers: list[tuple[str | None, list[Any]]] = []  # (the key a per-key call asked for, its records)
        if endpoint.per_key:
            per_key, failures = await self._per_key(endpoint, unique)
            answers.extend(per_key.items())
        else:
            size = max(1, self.batch_size)
            for start in range(0, len(unique), size):
                url = render(endpoint.path, keys=",".join(self._in_url(k, "key") for k in unique[start : start + size]))
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
        whole = whole_call_failure(self.department, unique, list(failures.values()))
        if whole is not None:  # nothing to return: the call failed as a whole
            raise whole
        result: FetchResult = {k: v for k, v in out.items() if k not in failures}
        result.update(failures)
        return result

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        endpoint = self.endpoints.get(family)
        if endpoint is None or endpoint.search is None or limit <= 0 or not text.strip():
            return []
        url = render(endpoint.search, text=self._in_url(text.strip(), "search text"), limit=str(limit))
        return sorted(await self._keys_at(url, endpoint, limit))[:limit]

    async def _keys_at(self, url: str, endpoint: Endpoint, limit: int, lenient: bool = False) -> set[str]:
        """The subject keys of the records a GET of `url` answers (its pages followed), at least
        `limit` of them when there are that many. `lenient`: a record whose key cannot be read is
        left out (and counted in the log) instead of failing the call; a missing endpoint (404)
        is then an error, not "no keys"."""
        found: dict[str, None] = {}
        unreadable = 0
        async with contextlib.aclosing(self._pages(url, endpoint, missing_ok=not lenient)) as pages:
            async for document in pages:
                for item in self._records(document, endpoint):
                    if not self._kept(item, endpoint):
                        continue
                    try:
                        found[self._key_of(item, endpoint).upper()] = None
                    except UpstreamInvalid:
                        if not lenient:
                            raise
                        unreadable += 1
                if len(found) >= limit:
                    break
        if unreadable:
            log.warning("%s: %d record(s) without a readable key left out of a key page", self.department, unreadable)
        return set(found)

    def enumerates(self, family: str) -> bool:
        """Whether the API pages through `family`'s subject keys (`rest.<family>.keys`)."""
        endpoint = self.endpoints.get(family)
        return endpoint is not None and endpoint.keys is not None

    async def subject_keys(self, family: str, after: str, limit: int) -> list[str]:
        """A page of the keys of the subjects with records of `family` after `after`, in key order
        (the `keys` template's answer, its records' keys; pages followed as for a batch)."""
        endpoint = self.endpoints.get(family)
        if endpoint is None or endpoint.keys is None or limit <= 0:
            return []
        url = render(endpoint.keys, after=self._in_url(after, "key") if after else "", limit=str(limit))
        return sorted(k for k in await self._keys_at(url, endpoint, limit, lenient=True) if k > after)[:limit]

    async def health(self) -> Health:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            async with self._client().get(self._url(self.health_path), headers=traced(), allow_redirects=False) as response:
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Health(False, session_failure(exc, API)[0], now)
        except Exception as exc:  # health never raises
            return Health(False, f"health probe failed ({type(exc).__name__})", now)
        if 200 <= status < 300:
            return Health(True, f"ok (HTTP {status})", now)
        return Health(False, status_failure(status), now)

    async def close(self) -> None:
        self._slots = None
        await self._sessions.close()

    # ---- requests ----------------------------------------------------------------------
    def _family(self, family: str) -> tuple[FamilyMapping, Endpoint]:
        try:
            return self.mappings[family], self.endpoints[family]
        except KeyError:
            raise ValueError(f"connector {self.name} does not serve {family!r}") from None

    def _client(self) -> aiohttp.ClientSession:
        session, opened = self._sessions.get()
        if opened or self._slots is None:  # the per-key concurrency belongs to the session's loop too
            self._slots = asyncio.Semaphore(self.key_concurrency)
        return session

    def _url(self, path: str) -> URL:
        """`path` (a rendered, percent-encoded template) under the base URL, as httpx's `base_url`
        joined it: appended to the base path, a leading slash or not."""
        return URL(str(self.base_url) + path.lstrip("/"), encoded=True)

    async def _per_key(
        self, endpoint: Endpoint, keys: Sequence[str]
    ) -> tuple[dict[str, list[Any]], dict[str, ConnectorError]]:
        """Each key's records (one request plus its pages per key, `key_concurrency` at a time), and failed keys."""
        self._client()
        assert self._slots is not None
        slots = self._slots

        async def one(key: str) -> list[Any]:
            async with slots:
                url = render(endpoint.path, key=self._in_url(key, "key"))
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
        target: URL = self._url(url)
        first: URL | None = None
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
                raise self._invalid(endpoint.family, "pagination loops back to a page already read")
            target = following
        raise self._invalid(endpoint.family, f"more than {self.max_pages} pages (pagination does not end)")

    def _next(self, document: Any, endpoint: Endpoint, first: URL, current: URL) -> URL | None:
        if endpoint.next is None:
            return None
        link = self._read(document, endpoint.next, endpoint.family)
        if link is MISSING or link is None or link == "":
            return None
        if endpoint.cursor_param is not None:
            if isinstance(link, (dict, list, bool)):
                raise self._invalid(endpoint.family, f"next cursor ({endpoint.next}) is {describe(link)}")
            return first.update_query({endpoint.cursor_param: str(link)})
        if not isinstance(link, str):
            raise self._invalid(endpoint.family, f"next link ({endpoint.next}) is {describe(link)}")
        try:
            following = current.join(URL(link.strip()))
            following.port  # noqa: B018 — an unreadable port raises here
        except ValueError:
            raise self._invalid(endpoint.family, f"next link ({endpoint.next}) is not a URL") from None
        base = self.base_url
        if (following.scheme, following.host, following.port) != (base.scheme, base.host, base.port):
            raise self._invalid(endpoint.family, f"next link ({endpoint.next}) leaves the department's API")
        return following

    async def _get(self, url: URL, family: str, *, missing_ok: bool) -> tuple[Any, URL] | None:
        """One GET, decoded; None for a 404 when `missing_ok` (a per-key call for an unknown subject)."""
        try:
            async with self._client().get(url, headers=traced(), allow_redirects=False) as response:
                status = response.status
                if status == 404 and missing_ok:
                    return None
                if not 200 <= status < 300:
                    raise self._unavailable(status_failure(status), "http_status")
                body, failure = await self._body(response, family)
                if failure is not None:  # raised outside any handler: no context chained to it
                    raise failure
                document = self._decode(body, response.charset, family)
                for path, allowed in self.expect:
                    self._check(document, path, allowed, family)
                return document, response.url
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self._unavailable(*session_failure(exc, API)) from None

    async def _body(self, response: aiohttp.ClientResponse, family: str) -> tuple[bytes, UpstreamInvalid | None]:
        """The body under the ceiling, or why the department's answer is unusable.

        Too large, or cut short (the connection closed before the whole body arrived): the
        department did answer, with a body the hub cannot use, so `UpstreamInvalid` (not retried,
        not counted against the department's availability). The failure is built after the
        handler ends, so it chains no exception and no traceback holding the body or response.
        """
        try:
            return await read_limited(response, MAX_BODY_BYTES), None
        except BodyTooLarge:
            message = f"the response exceeds {MAX_BODY_BYTES // 2**20} MiB"
        except aiohttp.ClientPayloadError:
            message = "the response was cut short"
        return b"", self._invalid(family, message)

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

    def _in_url(self, value: str, what: str) -> str:
        """`value` percent-encoded for a URL, or `CallerInputError` (the caller's fault, not the department's)."""
        return quote(caller_text(self.department, value, what), safe="")

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

