"""Every SQL statement the server sends, one SQL function call each, with the row it returns.

A row dataclass's fields are the statement's column names (psycopg's class_row maps them by
name), so a renamed column fails loudly in tests instead of silently returning None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
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


FUNNEL = Query(
    "funnel",
    "SELECT breakdown, step, event_type, users, conversion_percent, dropoff_percent, median_seconds_from_previous"
    " FROM analytics.fn_funnel(%(app)s, %(steps)s, %(from)s, %(to)s, %(window)s, %(breakdown)s)",
)


@dataclass(frozen=True)
class FunnelStepRow:
    breakdown: str
    step: int
    event_type: str
    users: int
    conversion_percent: Decimal
    dropoff_percent: Decimal
    median_seconds_from_previous: float | None


# --- cohorts and retention ---------------------------------------------------------------

_COHORT_COLUMNS = "id, identifier, name, filter, user_count, retention_rate, created_at, refreshed_at"

LIST_COHORTS = Query(
    "list_cohorts",
    f"SELECT {_COHORT_COLUMNS} FROM analytics.fn_list_cohorts(%(app)s, %(limit)s)",
)
CREATE_COHORT = Query(
    "create_cohort",
    f"SELECT {_COHORT_COLUMNS} FROM analytics.fn_create_cohort(%(app)s, %(name)s, %(filter)s, %(identifier)s)",
)
REFRESH_COHORT = Query(
    "refresh_cohort",
    f"SELECT {_COHORT_COLUMNS} FROM analytics.fn_refresh_cohort(%(app)s, %(cohort)s)",
)


@dataclass(frozen=True)
class CohortRow:
    id: UUID
    identifier: str
    name: str
    filter: Any
    user_count: int
    retention_rate: Decimal | None
    created_at: datetime
    refreshed_at: datetime | None


DELETE_COHORT = Query(
    "delete_cohort",
    "SELECT analytics.fn_delete_cohort(%(app)s, %(cohort)s) AS deleted",
)


@dataclass(frozen=True)
class DeletedCohortRow:
    deleted: Any


COHORT_RETENTION = Query(
    "cohort_retention",
    "SELECT period, period_start, cohort_size, returning_users, retention_rate"
    " FROM analytics.fn_cohort_retention(%(app)s, %(cohort)s, %(interval)s, %(periods)s)",
)


@dataclass(frozen=True)
class CohortRetentionRow:
    period: int
    period_start: Any
    cohort_size: int
    returning_users: int
    retention_rate: Decimal | None


RETENTION = Query(
    "retention",
    "SELECT cohort_start, cohort_size, period, users, rate"
    " FROM analytics.fn_retention(%(app)s, %(from)s, %(to)s, %(interval)s, %(periods)s, %(mode)s)",
)


@dataclass(frozen=True)
class RetentionCellRow:
    cohort_start: date
    cohort_size: int
    period: int
    users: int
    rate: Decimal | None


# --- per-user deletion and export ----------------------------------------------------------

# The procedure, not fn_delete_user: on TimescaleDB it also refreshes the continuous aggregates
# over the deleted range (it commits, so the connection must be in autocommit, as the pool's are).
DELETE_USER = Query(
    "delete_user",
    "CALL analytics.prc_delete_user(%(app)s, %(user_id)s, %(anonymous_ids)s::text[], %(requested_by)s)",
)


@dataclass(frozen=True)
class DeletedUserRow:
    deletion_id: UUID
    deleted_events: int
    deleted_user_days: int
    deleted_cohort_memberships: int
    oldest_event_at: datetime | None


# In the select list, where the SQL function streams (see fn_export_user); as text, one JSON
# line per event, so that nothing is parsed and re-serialized on the way out.
EXPORT_USER = Query(
    "export_user",
    "SELECT analytics.fn_export_user(%(app)s, %(user_id)s, %(anonymous_ids)s::text[])::text AS line",
)


# --- data lifecycle: maintenance, retention, archive ---------------------------------------
# Run by the server's scheduler (pywrap.scheduler) and `mobile-analytics archive`
# (pywrap.archive) on their own connections; see docs/lifecycle.md.

RUN_MAINTENANCE = Query(
    "run_maintenance",
    "CALL analytics.prc_run_maintenance()",
)

REFRESH_ROLLUPS = Query("refresh_rollups", "CALL analytics.prc_refresh_rollups()")

ENGINE = Query("engine", "SELECT analytics.fn_engine() AS engine")

CREATE_PARTITIONS = Query("create_partitions", "SELECT analytics.fn_create_partitions() AS created")

# Session advisory lock: one archive at a time across servers and CLI runs (it is released
# when the session ends, e.g. when the process is killed).
ARCHIVE_LOCK = Query("archive_lock", "SELECT pg_catalog.pg_try_advisory_lock(%(key)s) AS locked")
ARCHIVE_UNLOCK = Query("archive_unlock", "SELECT pg_catalog.pg_advisory_unlock(%(key)s) AS unlocked")

RETENTION_STATUS = Query(
    "retention_status",
    "SELECT range_start, range_end, relation, apps, retention_days, expires_at, expired, unarchived_app_days, action"
    " FROM analytics.fn_retention_status(%(details)s)",
)

SET_RETENTION_MODE = Query("set_retention_mode", "SELECT analytics.fn_set_retention_mode(%(mode)s) AS previous")

APPLY_RETENTION = Query(
    "apply_retention",
    "SELECT range_start, range_end, action, detail, row_count FROM analytics.fn_apply_retention(%(range_start)s)",
)

ARCHIVE_PLAN = Query(
    "archive_plan",
    "SELECT fk_app, app_id, day, range_start, range_end, from_time, to_time, row_count, id_checksum, state,"
    " archived_rows, archived_checksum, object_key, target, matched"
    " FROM analytics.fn_archive_plan(%(range_start)s, %(app)s, %(day)s)",
)

# Column order is the Parquet schema's (pywrap.archive.SCHEMA).
ARCHIVE_ROWS = Query(
    "archive_rows",
    "SELECT event_id, client_event_id, app_id, event_type, \"timestamp\", received_at, timestamp_clamped,"
    " user_id, anonymous_id, session_id, path, label, duration_ms, device, metadata, sequence"
    " FROM analytics.fn_archive_rows(%(app)s, %(from)s, %(to)s)",
)

ARCHIVE_RECORD = Query(
    "archive_record",
    "SELECT analytics.fn_archive_record(%(range_start)s, %(app)s, %(day)s, %(state)s, %(target)s, %(object_key)s,"
    " %(row_count)s, %(id_checksum)s, %(byte_size)s, %(sha256)s)",
)

ARCHIVE_FORGET = Query(
    "archive_forget",
    "SELECT analytics.fn_archive_forget(%(range_start)s, %(app)s, %(day)s) AS forgotten",
)
