"""Server settings, read once from the environment (and overridden by command-line options).

Every knob has a safe default, so that `mobile-analytics serve` works with no configuration.
Environment variables:

    DATABASE_URL                       libpq URL/conninfo; unset: the embedded cluster (serve only)
    MOBILE_ANALYTICS_ADMIN_TOKEN       token for app and key management; unset: admin operations
                                       are refused (the embedded server generates one)
    MOBILE_ANALYTICS_HOST / _PORT      where to listen (127.0.0.1:8000)
    MOBILE_ANALYTICS_POOL_MIN / _MAX   database connections (1 / 10; the WASM test engine needs 1 / 1)
    MOBILE_ANALYTICS_POOL_TIMEOUT      seconds a request waits for a free connection (10)
    MOBILE_ANALYTICS_PREPARE           1: server-side prepared statements for repeated calls (default);
                                       0: none (PgBouncer in transaction mode, the WASM test engine)
    MOBILE_ANALYTICS_MAX_BODY_BYTES    largest HTTP request body (10 MiB, as a batch may hold 10 MB)
    MOBILE_ANALYTICS_MAX_QUERY_CHARS   largest GraphQL document (1,000,000 characters)
    MOBILE_ANALYTICS_MAX_QUERY_TOKENS  most lexical tokens in a document (200,000)
    MOBILE_ANALYTICS_MAX_DEPTH         deepest selection nesting (15: the standard introspection
                                       query needs 13)
    MOBILE_ANALYTICS_MAX_FIELDS        most field selections once fragments are expanded (2,000)
    MOBILE_ANALYTICS_DOCUMENT_CACHE    parsed and validated documents kept (256)
    MOBILE_ANALYTICS_RATE_LIMIT        requests per second per API key (or per client address without
                                       a key), in this process (200; 0: no limit); over it: HTTP 429,
                                       extensions.code RATE_LIMITED and Retry-After
    MOBILE_ANALYTICS_RATE_LIMIT_BURST  requests a caller may send at once before the rate applies (400)
    MOBILE_ANALYTICS_LIVE_REAUTH_SECONDS  how often a running subscription re-checks its key (30):
                                       a revoked key's subscriptions end within this time
    MOBILE_ANALYTICS_SHUTDOWN_TIMEOUT  seconds in-flight requests get to finish on shutdown (30)
    MOBILE_ANALYTICS_LOG_LEVEL         debug, info, warning, error (info)
    MOBILE_ANALYTICS_DATA_DIR          the embedded cluster's directory (see pywrap.embedded)
    MOBILE_ANALYTICS_MAINTENANCE_INTERVAL  seconds between maintenance runs (300; 0: none), see
                                       pywrap.scheduler
    MOBILE_ANALYTICS_ARCHIVE_AT        daily archive time, HH:MM UTC (02:00; off: none); the target is
                                       MOBILE_ANALYTICS_ARCHIVE_{BUCKET,PREFIX,ENDPOINT_URL,REGION,DIR}
                                       (pywrap.archive; default: <data dir>/archive)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "MOBILE_ANALYTICS_"


class ConfigError(ValueError):
    """A setting has a value the server cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 10.0
    prepare: bool = True
    max_body_bytes: int = 10 * 1024 * 1024
    max_query_chars: int = 1_000_000
    max_query_tokens: int = 200_000
    max_depth: int = 15
    max_fields: int = 2_000
    document_cache: int = 256
    # Documents longer than this are parsed every time: a batch written as an inline literal
    # is rarely sent twice, and caching it would hold megabytes per entry.
    cacheable_query_chars: int = 20_000
    ws_init_timeout: float = 10.0
    ws_max_operations: int = 100
    rate_limit: float = 200.0
    rate_limit_burst: float = 400.0
    live_reauth_seconds: float = 30.0
    shutdown_timeout: float = 30.0
    log_level: str = "info"
    data_dir: Path | None = None
    maintenance_interval: float = 300.0
    archive_at: str = "02:00"

    def __post_init__(self) -> None:
        if self.pool_min < 0 or self.pool_max < 1 or self.pool_min > self.pool_max:
            raise ConfigError(
                f"pool sizes must satisfy 0 <= min <= max, max >= 1 (got {self.pool_min}..{self.pool_max})")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range")
        for name in ("max_body_bytes", "max_query_chars", "max_query_tokens", "max_depth", "max_fields"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be positive")
        if self.rate_limit < 0 or self.rate_limit_burst < 1:
            raise ConfigError("rate_limit must be >= 0 (0: off) and rate_limit_burst >= 1")
        if self.live_reauth_seconds <= 0:
            raise ConfigError("live_reauth_seconds must be positive")
        if self.maintenance_interval < 0:
            raise ConfigError("maintenance_interval must be >= 0 (0: no maintenance runs)")
        archive_at = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", self.archive_at)
        if self.archive_at.strip().lower() not in ("off", "", "none", "never") and (
                not archive_at or int(archive_at[1]) > 23 or int(archive_at[2]) > 59):
            # Checked here, not only by the scheduler, so that `serve` refuses it before starting.
            raise ConfigError(f"{ENV_PREFIX}ARCHIVE_AT={self.archive_at!r} is not HH:MM (UTC) or off")
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigError(f"log level {self.log_level!r} is not debug, info, warning or error")
        if self.admin_token is not None and len(self.admin_token) < 16:
            # A short token can be guessed; refuse rather than run with a weak one.
            raise ConfigError(f"{ENV_PREFIX}ADMIN_TOKEN must be at least 16 characters")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `env` (default os.environ); keyword overrides that are not None win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "DATABASE_URL" if f.name == "database_url" else ENV_PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _convert(name: str, raw: str, type_name: Any) -> Any:
    # `from __future__ import annotations` makes field types strings: dispatch on their text.
    text = str(type_name)
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
        if text.startswith("Path"):
            return Path(raw).expanduser()
        if text.startswith("bool"):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {text.split(' ')[0]}") from None
    return raw
