"""Secrets for connecting to department systems, named in `connectors.toml`, never written there.

A connector's configuration names *where* a secret is — an environment variable or a secret
file — and this module reads it when the connectors are loaded:

    [[connector]]
    kind = "sql"
    url = "postgresql+asyncpg://reader:{password}@10.0.0.5:5432/djxt"
    password_env = "MARKET_DB_PASSWORD"        # or: password_file = "secrets/market-db-password"

Every kind can take a secret this way with `secret_option(options, "password", where)`, which
reads `<stem>_env` / `<stem>_file` (exactly one of them). Errors name the variable or the file,
never the value. A secret file's trailing newline is dropped (as `echo` and editors leave one);
a relative path is taken from the hub's data directory. Secrets are read once, at load time:
after rotating one, restart (or reload) the hub.

For URLs, `with_password(url, password)` fills the `{password}` placeholder with the
URL-quoted secret, so any character is safe. The resulting URL must not be logged or shown:
`connectors.sql` keeps it only inside its engine URL, which SQLAlchemy renders with the
password hidden, and strips the password from every error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from .mapping import ConnectorConfigError

PASSWORD_PLACEHOLDER = "{password}"


def secret(
    value_env: str | None = None,
    value_file: str | Path | None = None,
    *,
    where: str,
    base: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The secret held by environment variable `value_env` or in file `value_file` (exactly one).

    Raises `ConnectorConfigError` naming the variable or file (never its content) when it is
    unset, unreadable or empty. `base` anchors a relative `value_file`; `environ` defaults to
    `os.environ`.
    """
    if (value_env is None) == (value_file is None):
        raise ConnectorConfigError(f"{where}: name the secret's environment variable or its file (exactly one)")
    if value_env is not None:
        if not isinstance(value_env, str) or not value_env.strip():
            raise ConnectorConfigError(f"{where}: the environment variable's name must be a non-empty string")
        name = value_env.strip()
        value = (os.environ if environ is None else environ).get(name)
        if value is None:
            raise ConnectorConfigError(f"{where}: environment variable {name} is not set")
        if not value:
            raise ConnectorConfigError(f"{where}: environment variable {name} is empty")
        return value
    if not isinstance(value_file, (str, Path)) or not str(value_file).strip():
        raise ConnectorConfigError(f"{where}: the secret file's path must be a non-empty string")
    path = Path(str(value_file).strip()).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        value = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConnectorConfigError(f"{where}: cannot read secret file {path} ({reason})") from None
    except UnicodeDecodeError:
        raise ConnectorConfigError(f"{where}: secret file {path} is not UTF-8 text") from None
    value = value.rstrip("\r\n")
    if not value:
        raise ConnectorConfigError(f"{where}: secret file {path} is empty")
    return value


def secret_option(
    options: Mapping[str, Any],
    stem: str,
    where: str,
    *,
    base: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The secret a connector's options name by `<stem>_env` or `<stem>_file`; None if neither.

    Giving both is an error. E.g. `secret_option(spec.options, "password", where)` reads
    `password_env` / `password_file`; a REST kind might use `"api_key"` or `"token"`.
    """
    env_key, file_key = f"{stem}_env", f"{stem}_file"
    has_env, has_file = env_key in options, file_key in options
    if has_env and has_file:
        raise ConnectorConfigError(f"{where}: give {env_key} or {file_key}, not both")
    if not (has_env or has_file):
        return None
    where = f"{where}.{env_key if has_env else file_key}"
    return secret(
        options[env_key] if has_env else None,
        options[file_key] if has_file else None,
        where=where, base=base, environ=environ,
    )


def with_password(url: str, password: str) -> str:
    """`url` with every `{password}` replaced by the URL-quoted password (safe for @ : / % ...)."""
    return url.replace(PASSWORD_PLACEHOLDER, quote(password, safe=""))
