"""Hub settings: where the data directory is, which store to use, who the issuer is.

Settings come from arguments first, then `XINLIAN_*` environment variables, then defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    issuer: str
    audience: str = "xinlian-hub"
    access_token_ttl: int = 900  # seconds
    batch_limit: int = 1000  # legalPersons(usccs:) at most this many codes
    search_limit: int = 50  # searchLegalPersons(first:) at most this many
    public_introspection: bool = True
    request_timeout: float = 30.0  # seconds for one GraphQL request, all departments included
    policy_path: Path | None = None
    connectors_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls,
        data_dir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        database_url: str | None = None,
    ) -> "Settings":
        directory = Path(data_dir or os.environ.get("XINLIAN_DATA_DIR") or "./xinlian-data").resolve()
        url = database_url or os.environ.get("XINLIAN_DATABASE_URL") or f"sqlite+aiosqlite:///{directory / 'hub.db'}"
        issuer = os.environ.get("XINLIAN_ISSUER") or f"http://{host}:{port}"
        policy = os.environ.get("XINLIAN_POLICY")
        connectors = os.environ.get("XINLIAN_CONNECTORS")
        return cls(
            data_dir=directory,
            database_url=url,
            issuer=issuer,
            audience=os.environ.get("XINLIAN_AUDIENCE", "xinlian-hub"),
            access_token_ttl=int(os.environ.get("XINLIAN_TOKEN_TTL", "900")),
            batch_limit=int(os.environ.get("XINLIAN_BATCH_LIMIT", "1000")),
            public_introspection=_env_bool("XINLIAN_PUBLIC_INTROSPECTION", True),
            request_timeout=float(os.environ.get("XINLIAN_REQUEST_TIMEOUT", "30")),
            policy_path=Path(policy) if policy else None,
            connectors_path=Path(connectors) if connectors else directory / "connectors.toml",
        )
