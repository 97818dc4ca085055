"""Every SQL statement the server sends, one SQL function call each, with the row it returns.

A row dataclass's fields are the statement's column names (psycopg's class_row maps them by
name), so a renamed column fails loudly in tests instead of silently returning None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from .db import Query

# --- ingestion ---------------------------------------------------------------------------

TRACK_EVENTS = Query(
    "track_events",
    "SELECT accepted, duplicates, clamped, rejected"
    " FROM analytics.fn_track_events(%(app)s, %(api_key)s, %(events)s, %(sent_at)s, %(context)s)",
)


@dataclass(frozen=True)
class TrackEventsRow:
    accepted: int
    duplicates: int
    clamped: int
    rejected: list[dict[str, Any]]


# --- authorization -----------------------------------------------------------------------

AUTHENTICATE_KEY = Query(
    "authenticate_key",
    "SELECT app_id, identifier FROM analytics.fn_authenticate_key(%(app)s, %(api_key)s, %(kind)s)",
)


# The admin's way to name an app (no key to check): the first row of the app listing.
RESOLVE_APP = Query(
    "resolve_app",
    "SELECT app_id, identifier FROM analytics.fn_list_apps(%(app)s, 1, 0)",
)


@dataclass(frozen=True)
class AppRef:
    app_id: UUID
    identifier: str


# --- apps and keys -----------------------------------------------------------------------

LIST_APPS = Query(
    "list_apps",
    "SELECT app_id, identifier, name, owner_id, timezone, retention_days, created_at, api_keys"
    " FROM analytics.fn_list_apps(%(app)s, %(limit)s, %(offset)s)",
)


@dataclass(frozen=True)
class AppRow:
    app_id: UUID
    identifier: str
    name: str
    owner_id: UUID
    timezone: str
    retention_days: int
    created_at: datetime
    api_keys: list[dict[str, Any]]


CREATE_APP = Query(
    "create_app",
    "SELECT app_id, identifier, write_key, read_key"
    " FROM analytics.fn_create_app(%(identifier)s, %(name)s, %(owner_id)s, %(timezone)s, %(retention_days)s)",
)


@dataclass(frozen=True)
class CreatedAppRow:
    app_id: UUID
    identifier: str
    write_key: str
    read_key: str


ROTATE_API_KEY = Query(
    "rotate_api_key",
    "SELECT key_id, kind, api_key, previous_keys_expire_at"
    " FROM analytics.fn_rotate_api_key(%(app)s, %(kind)s, %(grace_seconds)s)",
)


@dataclass(frozen=True)
class RotatedKeyRow:
    key_id: UUID
    kind: str
    api_key: str
    previous_keys_expire_at: datetime | None


REVOKE_API_KEY = Query(
    "revoke_api_key",
    # text in, cast in SQL: a malformed id is the function's 22P02 (BAD_USER_INPUT), not a
    # client-side adaptation error.
    "SELECT analytics.fn_revoke_api_key(%(key_id)s::uuid) AS revoked_at",
)


@dataclass(frozen=True)
class RevokedKeyRow:
    revoked_at: datetime


# --- live metrics ------------------------------------------------------------------------

LIVE_METRICS = Query(
    "live_metrics",
    "SELECT window_start, window_end, pageviews, unique_users, crash_count, avg_session_duration"
    " FROM analytics.fn_live_metrics(%(app)s, %(interval)s)",
)


@dataclass(frozen=True)
class LiveMetricsRow:
    window_start: datetime
    window_end: datetime
    pageviews: int
    unique_users: int
    crash_count: int
    avg_session_duration: float | None


# --- analytics ---------------------------------------------------------------------------

METRICS = Query(
    "metrics",
    "SELECT metric_type, value, dimension, date"
    " FROM analytics.fn_metrics(%(app)s, %(from)s, %(to)s, %(granularity)s, %(dimension)s, %(metric_types)s)",
)


@dataclass(frozen=True)
class MetricRow:
    metric_type: str
    value: Decimal
    dimension: str
    date: datetime

