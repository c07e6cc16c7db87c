"""`GraphQLConnector`: a department that already speaks GraphQL, asked one query per batch.

It owns turning a hub request into one GraphQL document per batch, built as a graphql-core AST
(keys are never pasted into the text): subject keys travel only as variables, either as one list
argument (`enterprises(codes: $keys)`, mode "list") or as one aliased root field per key
(`k0: enterprise(code: $k0)`, mode "alias"). The selection set holds only the key path and the
paths of the requested fields (data minimisation). Answers are mapped by the family's
`FamilyMapping`: field sources are dotted paths inside each item, or inside the item's `records`
(a list of records, or one record object; null means none).

Failures: transport errors, timeouts and non-2xx answers are `UpstreamUnavailable`; non-JSON, a
missing `data` or a mis-shaped answer is `UpstreamInvalid`. An upstream error whose `path`
points at one subject fails only that subject: `fetch` maps its key to the `ConnectorError`
instead of a list of records (docs/connectors-graphql.md), and raises only when every key of the
call failed. Credentials come from environment variables or secret files and never appear in
messages or logs. A body cut short (the connection closed before it all arrived) or over the
ceiling is `UpstreamInvalid` (the service answered, unusably: not retried); the buffer is dropped
and the exception raised chains nothing that holds it.
Search text holding a character no department is sent (NUL, a control character, a lone
surrogate), or any value that cannot be encoded as UTF-8, is `CallerInputError` and is not sent.
The wire (client, credentials, body ceiling) is `connectors.http`'s; reading the
`[[connector]]` table is `connectors.graphql_config`'s, whose `KIND` this module re-exports.
Timeouts around each call, retries and breakers belong to the hub.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from typing import Any, Iterable, Mapping, Sequence

import aiohttp
from graphql import parse_type, print_ast
from graphql.language import ast

from .calls import distinct_request, log_call, whole_call_failure
from .contract import (
    CallerInputError,
    ConnectorError,
    FetchCall,
    FetchResult,
    Health,
    Record,
    UpstreamInvalid,
    UpstreamUnavailable,
    caller_text,
)
from .graphql_config import KIND, GraphQLSearch, Path_, RootField
from .http import (
    BodyTooLarge,
    Credentials,
    LoopSession,
    clip,
    environment_proxy,
    open_session,
    read_limited,
    session_failure,
    traced,
)
from .mapping import ConversionError, FamilyMapping

log = logging.getLogger("xinlian.connectors.graphql")
MAX_RESPONSE_BYTES = 16 * 2**20
JSON_CONTENT = {"Content-Type": "application/json"}

__all__ = ["KIND", "MAX_RESPONSE_BYTES", "FetchCall", "GraphQLConnector", "GraphQLSearch", "RootField"]


class _Shape(ValueError):
    """An item does not have the shape the mapping expects (→ `UpstreamInvalid`)."""


def _field(name: str, tree: Mapping[str, Any], alias: str | None = None, args: Mapping[str, str] = {}) -> ast.FieldNode:
    """A field node selecting `tree` ({name: subtree}); `args` maps argument → variable name."""
    return ast.FieldNode(
        alias=ast.NameNode(value=alias) if alias else None, name=ast.NameNode(value=name), directives=(),
        arguments=tuple(
            ast.ArgumentNode(name=ast.NameNode(value=a), value=ast.VariableNode(name=ast.NameNode(value=v)))
            for a, v in args.items()
        ),
        selection_set=ast.SelectionSetNode(selections=tuple(_field(n, t) for n, t in tree.items())) if tree else None,
    )


def _tree(paths: Iterable[Path_]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def _document(operation: str, variables: Mapping[str, str], roots: Sequence[ast.FieldNode]) -> str:
    """The printed query document; `variables` maps variable name → GraphQL type."""
    definitions = tuple(
        ast.VariableDefinitionNode(variable=ast.VariableNode(name=ast.NameNode(value=name)), type=parse_type(kind),
                                   directives=())
        for name, kind in variables.items()
    )
    op = ast.OperationDefinitionNode(
        operation=ast.OperationType.QUERY, name=ast.NameNode(value=operation), directives=(),
        variable_definitions=definitions, selection_set=ast.SelectionSetNode(selections=tuple(roots)),
    )
    return print_ast(ast.DocumentNode(definitions=(op,)))


@functools.lru_cache(maxsize=512)
def _batch_query(operation: str, root: RootField, paths: tuple[Path_, ...], count: int) -> str:
    """The document of one batch: for a family, its requested paths and (alias mode) the number
    of keys, the text is always the same, so it is built and printed once (keys are variables)."""
    tree = _tree(paths)
    if root.mode == "list":
        roots = [_field(root.field, tree, args={root.argument: "keys"})]
        names = ["keys"]
    else:
        names = [f"k{i}" for i in range(count)]
        roots = [_field(root.field, tree, alias=a, args={root.argument: a}) for a in names]
    return _document(operation, dict.fromkeys(names, root.argument_type), roots)


def _at(item: Any, path: Path_, *, container: bool = False) -> Any:
    """The value at `path` (None if a step is null): a plain value, or a list/object if `container`."""
    for depth, part in enumerate(path):
        if item is None:
            return None
        if not isinstance(item, dict):
            raise _Shape(f"{'.'.join(path[:depth]) or 'the item'} is not an object")
        item = item.get(part)
    if (not isinstance(item, (list, dict, type(None)))) if container else isinstance(item, (dict, list)):
        raise _Shape(f"{'.'.join(path)} is not {'a list or object' if container else 'a plain value'}")
    return item


def _key(item: Any, path: Path_) -> str | None:
    try:
        value = _at(item, path)
    except _Shape:
        return None
    return str(value).strip() if value is not None else None


class GraphQLConnector:
    """A department's GraphQL service serving some record families (see `connectors.contract`)."""

    kind = "graphql"

    def __init__(
        self, name: str, department: str, endpoint: str, mappings: Mapping[str, FamilyMapping],
        roots: Mapping[str, RootField], *, batch_size: int = 200, timeout: float = 3.0,
        headers: Mapping[str, str] | None = None, auth: Mapping[str, str] | None = None,
        search: GraphQLSearch | None = None,
    ) -> None:
        self.name = name
        self.department = department
        self.endpoint = endpoint
        self.mappings = dict(mappings)
        self.roots = dict(roots)
        self.families = frozenset(self.mappings)
        self.batch_size = batch_size
        self.timeout = timeout
        self.search_spec = search
        self.calls: list[FetchCall] = []
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._credentials = Credentials(dict(auth or {}))  # their values never appear in messages
        self._sessions = LoopSession(lambda: open_session(self._credentials, self._headers, self.timeout))
        self._proxy: str | None = None

    def __repr__(self) -> str:
        return f"GraphQLConnector(name={self.name!r}, department={self.department!r}, families={sorted(self.families)})"

    # ---- the contract ------------------------------------------------------------------
    def provides(self, family: str) -> frozenset[str]:
        mapping = self.mappings.get(family)
        return frozenset(mapping.fields) if mapping else frozenset()

    async def fetch(self, family: str, keys: Sequence[str], fields: Sequence[str]) -> FetchResult:
        """Records per key; a key whose subject failed upstream maps to its `ConnectorError`."""
        if family not in self.mappings:
            raise ValueError(f"connector {self.name} does not serve {family!r}")
        mapping, root = self.mappings[family], self.roots[family]
        unique, wanted = distinct_request(self.name, family, mapping.fields, keys, fields)
        inner = [tuple(s.split(".")) for s in (mapping.fields[f].source for f in wanted) if s is not None]
        if root.records and not inner:
            inner = [("__typename",)]  # a list of records still needs a selection
        paths = tuple(dict.fromkeys([root.key, *(root.records + p for p in inner)]))
        log_call(self.calls, FetchCall(family, unique, wanted, tuple(".".join(p) for p in paths)))
        out: FetchResult = {}
        size = max(1, self.batch_size)
        for start in range(0, len(unique), size):
            out.update(await self._fetch_batch(family, mapping, root, unique[start : start + size], wanted, paths))
        failures = [v for v in out.values() if isinstance(v, ConnectorError)]
        whole = whole_call_failure(self.department, unique, failures)
        if whole is not None:  # nothing to return: the call failed as a whole
            raise whole
        return out

    async def search(self, family: str, text: str, limit: int) -> list[str]:
        spec = self.search_spec
        if spec is None or family not in self.families or spec.family not in (None, family) or limit <= 0 or not text:
            return []
        caller_text(self.department, text)
        variables, args = {"text": "String!"}, {spec.arg: "text"}
        if spec.limit_arg:
            variables["limit"], args[spec.limit_arg] = "Int!", "limit"
        query = _document("xinlian_search", variables, [_field(spec.field, _tree([spec.key]), args=args)])
        data = self._whole(await self._post(query, {"text": text, "limit": limit}, "xinlian_search"))
        items = data.get(spec.field)
        if not isinstance(items, list):
            raise UpstreamInvalid(self.department, f"search: {spec.field} is not a list")
        return sorted({key for item in items if (key := _key(item, spec.key))})[:limit]

    async def health(self) -> Health:
        now = dt.datetime.now(dt.timezone.utc)
        try:
            self._whole(await self._post("query xinlian_health { __typename }", {}, "xinlian_health"))
        except ConnectorError as exc:
            return Health(False, exc.message, now)
        except Exception as exc:  # a probe never raises
            return Health(False, f"health probe failed ({type(exc).__name__})", now)
        return Health(True, "ok", now)

    async def close(self) -> None:
        await self._sessions.close()

    # ---- one batch ---------------------------------------------------------------------
    async def _fetch_batch(
        self, family: str, mapping: FamilyMapping, root: RootField, keys: Sequence[str],
        wanted: Sequence[str], paths: Sequence[Path_],
    ) -> FetchResult:
        operation = f"xinlian_{family}"
        if root.mode == "list":
            variables: dict[str, Any] = {"keys": list(keys)}
        else:
            variables = {f"k{i}": key for i, key in enumerate(keys)}
        query = _batch_query(operation, root, tuple(paths), 1 if root.mode == "list" else len(keys))
        body = await self._post(query, variables, operation)
        data = body.get("data")
        if not isinstance(data, dict):
            raise UpstreamInvalid(self.department, f"{family}: the answer has no data{self._first_error(body)}")
        items, failures = self._attribute(family, root, data, body.get("errors") or [], keys)
        out: FetchResult = {}
        for key, found in items.items():
            try:
                records = [r for item in found for r in _records(mapping, root, item, wanted)]
            except ConversionError as exc:
                failures[key] = UpstreamInvalid(self.department, f"{family}.{exc.field} ({exc.source}): {exc.reason}")
            except _Shape as exc:
                failures[key] = UpstreamInvalid(self.department, f"{family}: {exc}")
            else:
                if records:
                    out[key] = records
        if failures:
            first = next(iter(failures.values())).message
            log.warning("connector %s (%s): %d subject(s) failed: %s", self.name, self.department, len(failures), first)
        return {**out, **failures}

    def _attribute(
        self, family: str, root: RootField, data: dict[str, Any], errors: Any, keys: Sequence[str],
    ) -> tuple[dict[str, list[Any]], dict[str, ConnectorError]]:
        """Items per key, and failed keys: an error fails the one subject its `path` points at."""
        aliases = {f"k{i}": i for i in range(len(keys))}
        failed_at: dict[int, ConnectorError] = {}
        for error in errors if isinstance(errors, list) else [errors]:
            path = error.get("path") if isinstance(error, dict) else None
            path = path if isinstance(path, list) and path else [None, None]
            if root.mode == "alias":
                slot = aliases.get(path[0]) if isinstance(path[0], str) else None
            else:
                slot = path[1] if len(path) > 1 and path[0] == root.field and isinstance(path[1], int) else None
            if slot is None:  # not about one subject: the whole batch failed
                raise self._reported(family, error)
            failed_at.setdefault(slot, self._reported(family, error))
        if root.mode == "alias":
            if any(alias not in data for alias in aliases):
                raise UpstreamInvalid(self.department, f"{family}: the answer lacks {root.field} for a subject")
            slots: list[tuple[str | None, Any]] = [(key, data[f"k{i}"]) for i, key in enumerate(keys)]
        elif isinstance(data.get(root.field), list):
            slots = [(None, item) for item in data[root.field]]
        else:
            raise UpstreamInvalid(self.department, f"{family}: {root.field} is not a list")
        wanted, items, failures = set(keys), dict[str, list[Any]](), dict[str, ConnectorError]()
        unattributed = [e for slot, e in failed_at.items() if not 0 <= slot < len(slots)]
        for slot, (asked, item) in enumerate(slots):
            answered = _key(item, root.key)
            key = asked or answered
            if slot in failed_at:
                if key in wanted:
                    failures.setdefault(key, failed_at[slot])
                else:
                    unattributed.append(failed_at[slot])
            elif item is None:
                continue
            elif key is None:
                raise UpstreamInvalid(self.department, f"{family}: an item has no {'.'.join(root.key)}")
            elif asked is not None and answered is not None and answered != asked:
                failures[asked] = UpstreamInvalid(self.department, f"{family}: the answer is about another subject")
            elif key in wanted:
                items.setdefault(key, []).append(item)
        if unattributed:  # whose it was cannot be told: every key without an answer fails
            for key in keys:
                if key not in items and key not in failures:
                    failures[key] = UpstreamUnavailable(self.department, unattributed[0].message, "upstream_error")
        return {k: v for k, v in items.items() if k not in failures}, failures

    # ---- transport ---------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return clip(" ".join(self._credentials.redact(text).split()), 160)

    def _first_error(self, body: Mapping[str, Any]) -> str:
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return f" ({self._redact(str(errors[0].get('message') or 'an error'))})"
        return ""

    def _reported(self, family: str, error: Any) -> UpstreamUnavailable:
        message = error.get("message") if isinstance(error, dict) else None
        detail = self._redact(str(message or "an unspecified error"))
        message = f"{family}: the service reported an error ({detail})"
        return UpstreamUnavailable(self.department, message, "upstream_error")

    def _whole(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`data` of an answer that must succeed as a whole (search, health)."""
        data = body.get("data")
        if not isinstance(data, dict):
            raise UpstreamInvalid(self.department, f"the answer has no data{self._first_error(body)}")
        if body.get("errors"):
            message = f"the service reported an error{self._first_error(body)}"
            raise UpstreamUnavailable(self.department, message, "upstream_error")
        return data

    def _session(self) -> aiohttp.ClientSession:
        session, opened = self._sessions.get()
        if opened:  # the environment's proxy applies here, unlike the REST kind: read once, not per request
            self._proxy = environment_proxy(self.endpoint)
        return session

    async def _post(self, query: str, variables: Mapping[str, Any], operation: str) -> dict[str, Any]:
        payload = {"query": query, "variables": dict(variables), "operationName": operation}
        try:
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # a value of the request (a lone surrogate) cannot become UTF-8 JSON
            failure: ConnectorError = CallerInputError(self.department, f"{operation}: a variable cannot be encoded as UTF-8")
            log.warning("connector %s (%s): %s", self.name, self.department, failure.message)
            raise failure from None
        raw: bytes | None = None
        try:
            session = self._session()
            async with session.post(
                self.endpoint, data=data, headers=traced(JSON_CONTENT), allow_redirects=False, proxy=self._proxy
            ) as response:
                if not 200 <= response.status < 300:
                    status = response.status
                    raise UpstreamUnavailable(self.department, f"the service answered HTTP {status}", "http_status")
                try:
                    raw = await read_limited(response, MAX_RESPONSE_BYTES)
                except aiohttp.ClientPayloadError:  # closed before the whole body arrived: it answered, unusably
                    raw = None
        except ConnectorError as exc:
            failure = exc
        except BodyTooLarge:
            failure = UpstreamInvalid(self.department, f"the answer exceeds {MAX_RESPONSE_BYTES // 2**20} MiB")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            failure = UpstreamUnavailable(self.department, f"no answer within {self.timeout:g} s", "timeout")
        except (aiohttp.ClientError, OSError) as exc:
            message, reason = session_failure(exc)
            failure = UpstreamUnavailable(self.department, message, reason)
        else:
            body = None
            if raw is not None:
                try:
                    body = json.loads(raw)
                except ValueError:
                    pass
            if isinstance(body, dict):
                return body
            what = "was cut short" if raw is None else "is not a GraphQL response (JSON object)"
            failure = UpstreamInvalid(self.department, f"the answer {what}")
        log.warning("connector %s (%s): %s", self.name, self.department, failure.message)
        raise failure from None


def _records(mapping: FamilyMapping, root: RootField, item: Any, wanted: Sequence[str]) -> list[Record]:
    """The records one item holds, with exactly the `wanted` fields, converted."""
    elements = _at(item, root.records, container=True) if root.records else [item]
    if isinstance(elements, dict):  # a single record
        elements = [elements]
    out = []
    for element in elements or []:
        if element is None:
            continue
        if not isinstance(element, dict):
            raise _Shape(f"{'.'.join(root.records) or 'the item'} holds a value that is not an object")
        sources = ((f, mapping.fields[f].source) for f in wanted)
        out.append({f: mapping.fields[f].convert(_at(element, tuple(s.split("."))) if s else None) for f, s in sources})
    return out

