"""Hub settings: where the data directory is, which store to use, who the issuer is.

Settings come from arguments first, then `XINLIAN_*` environment variables, then defaults.
Request hardening (query limits, rates, Redis, the public safelist) is described in docs/hardening.md.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .gateway.addresses import Network, parse_networks
from .gateway.lockout import LockoutRules
from .guard.query_limits import AUTHENTICATED_LIMITS, PUBLIC_LIMITS, QueryLimits
from .guard.rate_limits import RateRules
from .observability.tracing import tracing_mode


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_query_limits(prefix: str, defaults: QueryLimits) -> QueryLimits:
    """Query limits from `{prefix}MAX_DEPTH`, `{prefix}MAX_ALIASES`, ... (e.g. XINLIAN_PUBLIC_MAX_COST)."""
    values = {}
    for spec in dataclasses.fields(QueryLimits):
        raw = os.environ.get(f"{prefix}{spec.name.upper()}")
        values[spec.name] = int(raw) if raw is not None else getattr(defaults, spec.name)
    return QueryLimits(**values)


def _env_rate_rules() -> RateRules:
    defaults = RateRules()
    return RateRules(
        public_ip=os.environ.get("XINLIAN_RATE_PUBLIC", defaults.public_ip),
        graphql_ip=os.environ.get("XINLIAN_RATE_IP", defaults.graphql_ip),
        client=os.environ.get("XINLIAN_RATE_CLIENT", defaults.client),
        oauth_ip=os.environ.get("XINLIAN_RATE_OAUTH", defaults.oauth_ip),
        meta_ip=os.environ.get("XINLIAN_RATE_META", defaults.meta_ip),
    )


def _env_subject_cap() -> str:
    """XINLIAN_AUTHORIZED_SUBJECT_CAP ("N/second|minute|hour|day", "0"/"off"), checked now: a bad one stops the hub."""
    from .guard.harvest import parse_cap  # imported here: it needs the audit entry type

    text = os.environ.get("XINLIAN_AUTHORIZED_SUBJECT_CAP", "500/day")
    parse_cap(text)
    return text


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
    introspection: bool = True  # on /graphql
    request_timeout: float = 30.0  # seconds for one GraphQL request, all departments included
    policy_path: Path | None = None
    connectors_path: Path | None = None
    max_body_bytes: int = 64 * 1024  # a larger GraphQL request body is refused (413)
    # the same on /graphql, for token holders only (read after authentication): a creditChecks
    # batch of 10,000 codes is about 220 KB
    max_batch_body_bytes: int = 512 * 1024
    query_limits: QueryLimits = AUTHENTICATED_LIMITS  # /graphql
    public_query_limits: QueryLimits = PUBLIC_LIMITS  # /public/graphql
    rate_limits: RateRules = field(default_factory=RateRules)
    redis_url: str | None = None  # rate-limit counts shared through Redis; process memory when None
    redis_key_prefix: str = "xinlian"
    public_safelist_path: Path | None = None  # persisted-query safelist for /public/graphql
    # distinct subjects whose AUTHORIZED data one client may receive per window (hub/guard/harvest.py)
    authorized_subject_cap: str = "500/day"
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (none by default; hub/gateway/addresses.py)
    trusted_proxies: tuple[Network, ...] = ()
    # addresses that may read /readyz in detail without an admin token (none by default)
    monitoring_addresses: tuple[Network, ...] = ()
    header_timeout: float = 10.0  # seconds for a request's headers to arrive (hub/serving.py)
    body_timeout: float = 10.0  # seconds for a request's body to arrive (then 408 BODY_TIMEOUT)
    auth_lockout: LockoutRules = field(default_factory=LockoutRules)  # failed client authentications
    key_reload_interval: float = 2.0  # seconds between looks for a key rotation (keys/keyring.py)
    # seconds between two reads of the store's change counters (hub/cluster/changes.py)
    change_feed_interval: float = 1.0
    planned_execution: bool = True  # hot shapes along a plan (hub/executor/planned.py); False: graphql-core only
    cluster_heartbeat: float = 5.0  # seconds between heartbeats of this process (hub/cluster/members.py)
    # the hosts' shared secret that endorses published signing keys (hub/auth/published_keys.py);
    # None: only this host's own keys verify (one host, or hosts sharing `keys/`)
    cluster_secret: bytes | None = field(default=None, repr=False)
    # seconds between signed checkpoints of the audit chain head (hub/audit/checkpoint_writer.py); <= 0: at shutdown only
    audit_checkpoint_interval: float = 60.0
    log_format: str = "text"  # "json": one JSON object a line with the request id (hub/observability/logs.py)
    tracing: str = "off"  # OpenTelemetry traces: "otlp", "console" or "off" (hub/observability/tracing.py)
    # hours between district-wide credit runs (list rules and re-rating, hub/credit/district.py): a run
    # starts when the store's newest job started that long ago; 0: none scheduled (`xinlian ratings
    # run` by hand). Listing expiry is recorded hourly either way.
    credit_run_hours: float = 24.0
    # allocations between young-generation collections after start-up (hub/runtime.py tune_garbage_collector); 0: Python's
    gc_threshold: int = 50_000
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
        safelist = os.environ.get("XINLIAN_PUBLIC_SAFELIST")
        return cls(
            data_dir=directory,
            database_url=url,
            issuer=issuer,
            audience=os.environ.get("XINLIAN_AUDIENCE", "xinlian-hub"),
            access_token_ttl=int(os.environ.get("XINLIAN_TOKEN_TTL", "900")),
            batch_limit=int(os.environ.get("XINLIAN_BATCH_LIMIT", "1000")),
            public_introspection=_env_bool("XINLIAN_PUBLIC_INTROSPECTION", True),
            introspection=_env_bool("XINLIAN_INTROSPECTION", True),
            request_timeout=float(os.environ.get("XINLIAN_REQUEST_TIMEOUT", "30")),
            policy_path=Path(policy) if policy else None,
            connectors_path=Path(connectors) if connectors else directory / "connectors.toml",
            max_body_bytes=int(os.environ.get("XINLIAN_MAX_BODY_BYTES", str(64 * 1024))),
            max_batch_body_bytes=int(os.environ.get("XINLIAN_MAX_BATCH_BODY_BYTES", str(512 * 1024))),
            query_limits=_env_query_limits("XINLIAN_", AUTHENTICATED_LIMITS),
            public_query_limits=_env_query_limits("XINLIAN_PUBLIC_", PUBLIC_LIMITS),
            rate_limits=_env_rate_rules(),
            redis_url=os.environ.get("XINLIAN_REDIS_URL") or None,
            redis_key_prefix=os.environ.get("XINLIAN_REDIS_KEY_PREFIX", "xinlian"),
            public_safelist_path=Path(safelist) if safelist else None,
            authorized_subject_cap=_env_subject_cap(),
            trusted_proxies=parse_networks(os.environ.get("XINLIAN_TRUSTED_PROXIES", "").split(",")),
            monitoring_addresses=parse_networks(os.environ.get("XINLIAN_MONITORING_ADDRESSES", "").split(",")),
            header_timeout=float(os.environ.get("XINLIAN_HEADER_TIMEOUT", "10")),
            body_timeout=float(os.environ.get("XINLIAN_BODY_TIMEOUT", "10")),
            auth_lockout=LockoutRules(
                threshold=int(os.environ.get("XINLIAN_AUTH_LOCKOUT_AFTER", "5")),
                per_address=int(os.environ.get("XINLIAN_AUTH_FAILURES_PER_IP", "30")),
            ),
            audit_checkpoint_interval=float(os.environ.get("XINLIAN_AUDIT_CHECKPOINT_INTERVAL", "60")),
            change_feed_interval=_env_positive("XINLIAN_CHANGE_FEED_INTERVAL", 1.0),
            cluster_heartbeat=_env_positive("XINLIAN_CLUSTER_HEARTBEAT", 5.0),
            planned_execution=_env_switch("XINLIAN_PLANNED_EXECUTION", True),
            cluster_secret=_env_cluster_secret(),
            log_format=_env_log_format(),
            tracing=tracing_mode(os.environ.get("XINLIAN_TRACING")),
            gc_threshold=int(os.environ.get("XINLIAN_GC_THRESHOLD", "50000")),
            credit_run_hours=_env_hours("XINLIAN_CREDIT_RUN_HOURS"),
        )


class SettingsError(ValueError):
    """An environment variable holds a value the hub cannot use (the message names it)."""


MIN_CLUSTER_SECRET = 32  # bytes


def _env_cluster_secret() -> bytes | None:
    """`XINLIAN_CLUSTER_SECRET_FILE` (a file holding the secret; preferred: it stays out of the
    process environment) or `XINLIAN_CLUSTER_SECRET`: at least 32 bytes, surrounding whitespace
    ignored. None when neither is set."""
    path = os.environ.get("XINLIAN_CLUSTER_SECRET_FILE", "").strip()
    if path:
        try:
            raw = Path(path).read_bytes().strip()
        except OSError as exc:
            raise SettingsError(f"XINLIAN_CLUSTER_SECRET_FILE: cannot read {path}: {exc.strerror}") from None
        where = "XINLIAN_CLUSTER_SECRET_FILE"
    else:
        raw = os.environ.get("XINLIAN_CLUSTER_SECRET", "").strip().encode("utf-8")
        where = "XINLIAN_CLUSTER_SECRET"
    if not raw:
        return None
    if len(raw) < MIN_CLUSTER_SECRET:
        raise SettingsError(f"{where}: at least {MIN_CLUSTER_SECRET} bytes (e.g. `openssl rand -hex 32`)")
    return raw


def _env_switch(name: str, default: bool) -> bool:
    """`on` or `off` (also true/false, 1/0, yes/no) from the environment variable `name`."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise SettingsError(f"{name}: on or off, not {raw!r}")


def _env_hours(name: str, default: float = 24.0) -> float:
    """A number of hours from 0 (off) to 8,760 (a year) from the environment variable `name`."""
    return _env_number(name, default, "hours", lambda v: 0 <= v <= 8760, "between 0 (off) and 8760 hours")


def _env_number(name: str, default: float, unit: str, fits: Callable[[float], bool], bounds: str) -> float:
    """A number from the environment variable `name` (`default` when unset) that `fits`."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: a number of {unit}, not {raw!r}") from None
    if not fits(value):
        raise SettingsError(f"{name}: {bounds}, not {raw}")
    return value


def _env_positive(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable `name`."""
    return _env_number(name, default, "seconds", lambda v: 0 < v < 3600, "between 0 and 3600 seconds")


def _env_log_format() -> str:
    """`XINLIAN_LOG_FORMAT`: text (default) or json."""
    value = os.environ.get("XINLIAN_LOG_FORMAT", "text").strip().lower() or "text"
    if value not in ("text", "json"):
        raise SettingsError(f"XINLIAN_LOG_FORMAT must be text or json, not {value!r}")
    return value
