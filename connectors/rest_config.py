"""Configuration of a `[[connector]]` of kind "rest" (docs/connectors-rest.md) → `RestConnector`.

It owns reading what the operator wrote: the base URL, credentials (`auth`: an API key header,
a bearer token, client certificates — secrets from environment variables or secret files, read
and TLS files loaded now, never later), extra headers, and per family an `Endpoint`: the path
template (`{keys}` for a batch endpoint, `{key}` for a per-key one), where records, subject keys,
fields and the next page are in each answer, and what `expect` and `where` demand. Every mistake
is a `ConnectorConfigError` naming the item, never a secret's value. `KIND` registers the kind
(`connectors.registry`, through `connectors.rest`, which re-exports it).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import httpx

from .credentials import secret
from .dotted import DottedPath
from .http import Credentials
from .mapping import ConnectorConfigError, parse_filters
from .spec import ConnectorKind, ConnectorSpec

if TYPE_CHECKING:
    from .rest import RestConnector

DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_PAGES = 50
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

__all__ = ["DEFAULT_MAX_CONCURRENCY", "DEFAULT_MAX_PAGES", "KIND", "PLACEHOLDER", "Endpoint", "build_rest", "render"]


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
    keys: str | None = None  # template with {after} and {limit}: a page of the subject keys, in key order
    where: tuple[tuple[DottedPath, tuple[Any, ...]], ...] = ()  # records kept only when every path matches

    @property
    def per_key(self) -> bool:
        return "{key}" in self.path


def render(template: str, **values: str) -> str:
    """`template` with each `{name}` replaced by `values[name]` (already percent-encoded by the caller)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


# ---- reading the [[connector]] table --------------------------------------------------------
AUTH_OPTIONS = {
    "api_key": frozenset({"type", "header", "value_env", "value_file"}),
    "bearer": frozenset({"type", "token_env", "token_file"}),
    "mtls": frozenset({"type", "cert_file", "key_file", "ca_file"}),
}
REST_OPTIONS = frozenset({"records", "next", "cursor_param", "search", "keys"})
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
    """`{path = value or [values]}` tables (`expect`): the shared filter rules, on dotted paths."""
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table {dotted.path = value or [values]}")
    return tuple((_path(path, f"{where}.{path}"), values) for path, values in parse_filters(raw, where))


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
        keys = settings.get("keys")
        out[family] = Endpoint(
            family=family, path=path, key=_path(mapping.key, f"{at}.key"),
            fields={n: _path(f.source, f"{at}.fields.{n}") for n, f in mapping.fields.items() if f.source is not None},
            records=_path(settings.get("records", ""), f"{where}.rest.{family}.records"),
            next=_path(settings["next"], f"{where}.rest.{family}.next") if "next" in settings else None,
            cursor_param=(_text(settings["cursor_param"], f"{where}.rest.{family}.cursor_param")
                          if "cursor_param" in settings else None),
            search=None if search is None else _template(
                search, f"{where}.rest.{family}.search", frozenset({"text", "limit"}), frozenset({"text"})),
            keys=None if keys is None else _template(
                keys, f"{where}.rest.{family}.keys", frozenset({"after", "limit"}), frozenset({"after", "limit"})),
            where=tuple((_path(c, f"{at}.where.{c}"), v) for c, v in mapping.where),
        )
    return out


def _count(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise _fail(where, "must be a whole number of at least 1")
    return raw


def build_rest(spec: ConnectorSpec, data_dir: Path, where: str) -> RestConnector:
    """A `RestConnector` from a validated spec: every file, variable and template checked now."""
    from .rest import RestConnector  # the runtime imports this module (for KIND): import it when building

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
