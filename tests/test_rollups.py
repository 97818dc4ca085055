"""Rollups (analytics.ca_*): every rollup equals the same aggregation of the raw events, in real
time, after a refresh, and after late events and another refresh, on both engines. Also the
refresh entry points, the invalidation log and the maintenance procedure."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywrap import sqlfiles
from tests.conftest import create_app
from tests.helpers import track

# Each rollup next to the raw query it must equal, written independently of the rollup's
# definition (date_trunc in UTC rather than time_bucket / date_bin, powers of two for bits).
UTC_HOUR = "date_trunc('hour', e.\"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
UTC_DAY = "date_trunc('day', e.\"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
EVENT_COLUMNS = (
    "bucket, fk_app, event_type, os, app_version, event_count, duration_ms_sum, duration_ms_count, crash_count"
)
RAW_EVENTS = """
    SELECT {bucket}, e.fk_app, e.event_type, coalesce(e.device ->> 'os', 'unknown'),
           coalesce(e.device ->> 'app_version', 'unknown'), count(*), coalesce(sum(e.duration_ms), 0),
           count(e.duration_ms), sum(CASE WHEN e.event_type IN ('crash', 'app_crash') THEN 1 ELSE 0 END)
    FROM analytics.tb_event e GROUP BY 1, 2, 3, 4, 5"""
SESSION_COLUMNS = "bucket, fk_app, session_id, user_key, event_count, started_at, ended_at"
RAW_SESSIONS = """
    SELECT {bucket}, e.fk_app, e.session_id, min(coalesce(e.user_id, e.anonymous_id)), count(*),
           min(e."timestamp"), max(e."timestamp")
    FROM analytics.tb_event e WHERE e.session_id IS NOT NULL GROUP BY 1, 2, 3"""
APP_COLUMNS = "bucket, fk_app, users"
RAW_APP_USERS = """
    SELECT {bucket}, e.fk_app, count(DISTINCT coalesce(e.user_id, e.anonymous_id))
    FROM analytics.tb_event e WHERE e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL GROUP BY 1, 2"""
# each session's span inside the bucket, summed per app and bucket
APP_SESSION_COLUMNS = "bucket, fk_app, sessions, session_seconds"
RAW_APP_SESSIONS = """
    SELECT s.bucket, s.fk_app, count(*), sum(extract(epoch FROM s.last - s.first))
    FROM (SELECT {bucket} AS bucket, e.fk_app, e.session_id, min(e."timestamp") AS first, max(e."timestamp") AS last
          FROM analytics.tb_event e WHERE e.session_id IS NOT NULL GROUP BY 1, 2, 3) s
    GROUP BY 1, 2"""
ROLLUPS: dict[str, tuple[str, str]] = {
    "ca_event_hourly": (EVENT_COLUMNS, RAW_EVENTS.format(bucket=UTC_HOUR)),
    "ca_event_daily": (EVENT_COLUMNS, RAW_EVENTS.format(bucket=UTC_DAY)),
    "ca_user_daily": (
        "bucket, fk_app, user_key, event_count, first_event_at, last_event_at, active_hours",
        f"""SELECT {UTC_DAY}, e.fk_app, coalesce(e.user_id, e.anonymous_id), count(*), min(e."timestamp"),
                   max(e."timestamp"), sum(DISTINCT (2 ^ date_part('hour', e."timestamp" AT TIME ZONE 'UTC'))::int)
            FROM analytics.tb_event e WHERE e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL
            GROUP BY 1, 2, 3""",
    ),
    "ca_session_hourly": (SESSION_COLUMNS, RAW_SESSIONS.format(bucket=UTC_HOUR)),
    "ca_session_daily": (SESSION_COLUMNS, RAW_SESSIONS.format(bucket=UTC_DAY)),
    "ca_app_daily": (APP_COLUMNS, RAW_APP_USERS.format(bucket=UTC_DAY)),
    "ca_app_hourly": (APP_COLUMNS, RAW_APP_USERS.format(bucket=UTC_HOUR)),
    "ca_app_session_daily": (APP_SESSION_COLUMNS, RAW_APP_SESSIONS.format(bucket=UTC_DAY)),
    "ca_app_session_hourly": (APP_SESSION_COLUMNS, RAW_APP_SESSIONS.format(bucket=UTC_HOUR)),
}
REFRESH_ORDER = list(ROLLUPS)


def reset_rollups(conn: psycopg.Connection, engine: str) -> None:
    """Empty the events and bring every rollup back to its just-installed state.

    TimescaleDB never moves a continuous aggregate's watermark back, and past events below it
    only show after a refresh: dropping and recreating the aggregates (by re-running
    sql/continuous_aggregates, as migrate does) starts each example from scratch.
    """
    conn.execute(
        "TRUNCATE analytics.tb_event, analytics_internal.tb_event_key, analytics_internal.tb_rollup_invalidation, "
        + ", ".join(f"analytics_internal.tb_{name}" for name in ROLLUPS)
    )
    if engine == "timescaledb":
        conn.execute("DROP VIEW IF EXISTS analytics.v_metric")
        for name in reversed(REFRESH_ORDER):  # hierarchical aggregates before their sources
            conn.execute(f"DROP MATERIALIZED VIEW IF EXISTS analytics.{name}")
        for f in sqlfiles.continuous_aggregates():
            conn.execute(f.text)
    else:
        conn.execute("UPDATE analytics_internal.tb_rollup SET watermark = '-infinity', refreshed_at = NULL")


@pytest.fixture
def rollups(conn, engine_name):
    """A connection whose rollups are freshly installed (see reset_rollups)."""
    reset_rollups(conn, engine_name)
    return conn


def refresh(conn: psycopg.Connection) -> None:
    conn.execute("CALL analytics.prc_refresh_rollups()")


def mismatches(conn: psycopg.Connection) -> dict[str, Any]:
    """{rollup: (rows only in the rollup, rows only in the raw query)} for rollups that differ."""
    found = {}
    for name, (columns, raw) in ROLLUPS.items():
        got = conn.execute(f"SELECT {columns} FROM analytics.{name}").fetchall()
        want = conn.execute(raw).fetchall()
        if sorted(got) != sorted(want):
            found[name] = (sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])
    return found


NOW = datetime.now(timezone.utc)
_MIDNIGHT = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
# [from, to) windows for the rollup readers: cut inside buckets, on bucket boundaries, around now.
READER_WINDOWS = [
    (NOW - timedelta(days=3, minutes=17), NOW - timedelta(days=1, minutes=-13)),
    (_MIDNIGHT - timedelta(days=2), _MIDNIGHT),
    (_MIDNIGHT - timedelta(hours=5), NOW + timedelta(hours=2)),
    (NOW - timedelta(days=10), NOW + timedelta(days=1)),
]


def reader_mismatches(conn: psycopg.Connection) -> list[tuple[str, int, datetime, datetime]]:
    """(rollup, app, from, to) where analytics_internal.fn_<rollup>_between differs from the
    view's rows of that app and range."""
    found = []
    apps = [r[0] for r in conn.execute("SELECT pk_app FROM analytics.tb_app").fetchall()]
    for name in ROLLUPS:
        for pk in apps:
            for start, end in READER_WINDOWS:
                got = conn.execute(f"SELECT * FROM analytics_internal.fn_{name}_between(%s, %s, %s)",
                                   [pk, start, end]).fetchall()
                want = conn.execute(f"SELECT * FROM analytics.{name} WHERE fk_app = %s AND bucket >= %s"
                                    " AND bucket < %s", [pk, start, end]).fetchall()
                if sorted(got) != sorted(want):
                    found.append((name, pk, start, end))
    return found


def as_event(spec: dict[str, Any]) -> dict[str, Any]:
    """A fn_track_events event from a generated spec (absent fields left out)."""
    event: dict[str, Any] = {
        "type": spec["type"],
        "timestamp": (NOW - timedelta(minutes=spec["minutes_ago"])).isoformat(),
    }
    for field in ("user_id", "anonymous_id", "session_id", "duration"):
        if spec[field] is not None:
            event[field] = spec[field]
    device = {k: spec[k] for k in ("os", "app_version") if spec[k] is not None}
    if device:
        event["device"] = device
    return event


def events(min_minutes: int, max_minutes: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(["page_view", "button_click", "crash", "app_crash", "screen_time"]),
            "minutes_ago": st.integers(min_minutes, max_minutes),
            "user_id": st.none() | st.sampled_from(["u1", "u2", "u3"]),
            "anonymous_id": st.none() | st.sampled_from(["anon-1", "anon-2"]),
            "session_id": st.none() | st.sampled_from(["s1", "s2", "s3", "s4"]),
            "os": st.none() | st.sampled_from(["iOS", "Android"]),
            "app_version": st.none() | st.sampled_from(["1.0", "2.0"]),
            "duration": st.none() | st.integers(0, 10**7),
        }
    ).map(as_event)


DAYS = 24 * 60
# Recent events (the last hours, where TimescaleDB aggregates in real time) and older ones.
BATCH = st.lists(st.one_of(events(0, 90), events(0, 5 * DAYS)), min_size=1, max_size=30)
LATE = st.lists(events(DAYS, 6 * DAYS), min_size=1, max_size=12)


def test_rollups_equal_raw_aggregation(conn, app, engine_name):
    other = create_app(conn, "other-app")  # rollups keep apps apart
    wasm = engine_name == "timescaledb"

    @settings(
        max_examples=5 if wasm else 30,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(first=BATCH, more=st.lists(events(0, 5 * DAYS), max_size=10), late=LATE)
    def check(first, more, late):
        reset_rollups(conn, engine_name)
        assert track(conn, app, first)["accepted"] == len(first)
        assert track(conn, other, more)["accepted"] == len(more)
        assert mismatches(conn) == {}, "real time, before any refresh"
        assert reader_mismatches(conn) == [], "readers, real time"

        refresh(conn)
        assert mismatches(conn) == {}, "after a refresh"

        assert track(conn, app, late)["accepted"] == len(late)
        if not wasm:
            # PostgreSQL reads invalidated buckets live; TimescaleDB shows events older than
            # its watermark only after the next refresh.
            assert mismatches(conn) == {}, "late events, before the refresh"
        assert reader_mismatches(conn) == [], "readers, late events before the refresh"
        refresh(conn)
        assert mismatches(conn) == {}, "late events, after the refresh"
        assert reader_mismatches(conn) == [], "readers, after the refresh"

    check()


def test_late_event_before_every_materialized_day_reaches_the_daily_rollups(rollups, app):
    # Found by the property test on TimescaleDB: refreshed in one CALL without a COMMIT
    # between them, ca_event_daily missed the invalidation that refreshing ca_event_hourly logged.
    conn = rollups
    track(conn, app, [{"type": "a", "session_id": "s", "timestamp": (NOW - timedelta(days=2)).isoformat()}])
    refresh(conn)
    track(conn, app, [{"type": "a", "session_id": "s", "timestamp": (NOW - timedelta(days=4)).isoformat()}])
    refresh(conn)
    assert mismatches(conn) == {}
    assert conn.execute("SELECT count(*) FROM analytics.ca_event_daily").fetchone()[0] == 2


def test_deleted_and_updated_events_are_reflected(rollups, app, engine_name):
    conn = rollups
    batch = [
        {"type": t, "timestamp": (NOW - timedelta(days=d, minutes=m)).isoformat(), "user_id": "u1",
         "session_id": "s1", "device": {"os": "iOS"}}
        for d, m, t in [(1, 0, "a"), (1, 5, "b"), (2, 0, "a"), (3, 0, "crash")]
    ]
    track(conn, app, batch)
    refresh(conn)
    conn.execute("DELETE FROM analytics.tb_event WHERE event_type = 'b'")
    conn.execute("""UPDATE analytics.tb_event SET device = '{"os": "Android"}', session_id = 's2' WHERE event_type = 'a'""")
    refresh(conn)
    assert mismatches(conn) == {}


@pytest.mark.pg_only
def test_postgresql_refresh_is_incremental_and_idempotent(rollups, app, engine_name):
    conn = rollups
    recent = [
        {"type": "a", "user_id": "u1", "session_id": "s1", "timestamp": (NOW - timedelta(hours=h)).isoformat()}
        for h in range(3, 40)
    ]
    track(conn, app, recent)
    # One log row per (app, hour) that the batch touched, written by one statement.
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_rollup_invalidation").fetchone()[0] == len(
        {datetime.fromisoformat(e["timestamp"]).replace(minute=0, second=0, microsecond=0) for e in recent}
    )
    first = conn.execute("SELECT * FROM analytics.fn_refresh_rollups()").fetchall()
    assert [r[0] for r in first] == REFRESH_ORDER and all(r[2] > 0 for r in first)
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_rollup_invalidation").fetchone()[0] == 0
    again = conn.execute("SELECT rollup, invalidated_buckets, materialized_rows FROM analytics.fn_refresh_rollups()")
    assert all(r[1:] == (0, 0) for r in again.fetchall())

    track(conn, app, [{"type": "late", "timestamp": (NOW - timedelta(days=4)).isoformat()}])
    late = dict(
        (r[0], r[1:])
        for r in conn.execute("SELECT rollup, invalidated_buckets, materialized_rows FROM analytics.fn_refresh_rollups()")
    )
    # Only the late event's hour (and its day) is re-materialized: one row each where it counts.
    assert late["ca_event_hourly"] == (1, 1) and late["ca_event_daily"] == (1, 1)
    assert late["ca_user_daily"] == (1, 0) and late["ca_session_hourly"] == (1, 0)
    assert mismatches(conn) == {}

    # The watermark never moves back; an earlier p_until re-materializes nothing new.
    marks = conn.execute("SELECT array_agg(watermark ORDER BY refresh_order) FROM analytics_internal.tb_rollup")
    conn.execute("SELECT * FROM analytics.fn_refresh_rollups(now() - interval '3 days')")
    assert conn.execute("SELECT array_agg(watermark ORDER BY refresh_order) FROM analytics_internal.tb_rollup").fetchone() == marks.fetchone()


@pytest.mark.pg_only
def test_postgresql_concurrent_ingest_and_refresh_lose_nothing(db, app, conn, engine_name):
    reset_rollups(conn, engine_name)
    errors: list[BaseException] = []
    stop = threading.Event()

    def ingest(n: int) -> None:
        try:
            with db.connect() as c:
                for i in range(12):
                    batch = [
                        {"type": f"t{k % 3}", "user_id": f"u{n}-{k % 4}", "session_id": f"s{n}",
                         "timestamp": (NOW - timedelta(hours=(i * 7 + k) % 60)).isoformat()}
                        for k in range(25)
                    ]
                    assert track(c, app, batch)["accepted"] == 25
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def refresher() -> None:
        try:
            with db.connect() as c:
                while not stop.is_set():
                    c.execute("SELECT * FROM analytics.fn_refresh_rollups()").fetchall()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writers = [threading.Thread(target=ingest, args=(n,)) for n in range(4)]
    refreshers = [threading.Thread(target=refresher) for _ in range(2)]
    for t in writers + refreshers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in refreshers:
        t.join()
    assert errors == []
    assert mismatches(conn) == {}, "real time, with refreshes racing the writers"
    refresh(conn)
    assert mismatches(conn) == {}
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_rollup_invalidation").fetchone()[0] == 0


def test_refresh_procedure_runs_from_autocommit_on_both_engines(rollups, app, engine_name):
    conn = rollups
    track(conn, app, [{"type": "a", "timestamp": (NOW - timedelta(days=2)).isoformat()}])
    refresh(conn)
    refresh(conn)
    assert mismatches(conn) == {}
    if engine_name == "timescaledb":
        # Materialized: the continuous aggregate holds the bucket itself.
        assert conn.execute(
            "SELECT count(*) FROM analytics.ca_event_hourly WHERE bucket < now() - interval '1 day'"
        ).fetchone()[0] == 1
        with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
            conn.execute("SELECT * FROM analytics.fn_refresh_rollups()")
        assert "prc_refresh_rollups" in err.value.diag.message_hint
        with pytest.raises(psycopg.errors.ActiveSqlTransaction):
            with conn.transaction():
                refresh(conn)
    else:
        assert conn.execute("SELECT count(*) FROM analytics_internal.tb_ca_event_hourly").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("SELECT * FROM analytics.fn_refresh_rollups('infinity')")


def test_timescaledb_has_real_time_aggregates_and_policies(conn, engine_name):
    if engine_name != "timescaledb":
        pytest.skip("continuous aggregates exist on TimescaleDB only")
    reset_rollups(conn, engine_name)
    rows = conn.execute(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
        " WHERE view_schema = 'analytics' ORDER BY 1"
    ).fetchall()
    assert rows == sorted((name, False) for name in ROLLUPS)
    jobs = conn.execute(
        "SELECT hypertable_name, config ->> 'end_offset', config ->> 'start_offset' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY 1"
    ).fetchall()
    assert jobs == sorted((name, "01:00:00", None) for name in ROLLUPS)
    # A policy run (what the background worker does) refreshes like the procedure.
    job = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE hypertable_name = 'ca_event_hourly'"
    ).fetchone()[0]
    conn.execute("CALL public.run_job(%s)", [job])


def test_maintenance_purges_expired_event_ids(rollups, app, engine_name):
    conn = rollups
    conn.execute("UPDATE analytics.tb_app SET retention_days = 10")
    conn.execute(
        "INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, \"timestamp\")"
        " SELECT 1, gen_random_uuid(), now() - make_interval(days => d, hours => -12) FROM generate_series(1, 20) d"
    )
    row = conn.execute("CALL analytics.prc_run_maintenance()").fetchone()
    assert row[2] == 10
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_event_key").fetchone()[0] == 10
    if engine_name == "postgresql":
        assert row[1] == len(ROLLUPS)
        assert conn.execute("SELECT count(*) FROM analytics_internal.tb_rollup WHERE refreshed_at IS NULL").fetchone()[0] == 0
    else:
        assert row[:2] == (0, 0)


# The ledger is a plain table on both engines; the WASM build's statistics views stay at zero.
@pytest.mark.pg_only
def test_maintenance_reads_only_the_expired_event_ids(rollups, app):
    """The purge is an index range per app (migration 0012), not a read of the whole ledger."""
    conn = rollups
    conn.execute("UPDATE analytics.tb_app SET retention_days = 10")
    conn.execute(
        "INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, \"timestamp\")"
        " SELECT 1, gen_random_uuid(), now() - CASE WHEN i <= 5 THEN interval '11 days' ELSE interval '1 day' END"
        " FROM generate_series(1, 20000) i"
    )
    conn.execute("ANALYZE analytics_internal.tb_event_key")

    def scans() -> tuple[int, int]:
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT t.seq_scan, i.idx_scan FROM pg_stat_user_tables t"
            " JOIN pg_stat_user_indexes i ON i.relid = t.relid AND i.indexrelname = 'tb_event_key_app_time_idx'"
            " WHERE t.relid = 'analytics_internal.tb_event_key'::regclass").fetchone()

    seq_before, idx_before = scans()
    conn.execute("SELECT pg_stat_force_next_flush()")
    assert conn.execute("CALL analytics.prc_run_maintenance()").fetchone()[2] == 5
    seq_after, idx_after = scans()
    assert (seq_after - seq_before, idx_after - idx_before) == (0, 1)


@pytest.mark.pg_only
def test_maintenance_runs_once_at_a_time(db, conn, engine_name):
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    with db.connect() as other:
        other.execute("SELECT pg_advisory_lock(7346221903)")
        assert conn.execute("CALL analytics.prc_run_maintenance()").fetchone() == (0, 0, 0, 0)
        assert any("already running" in n for n in notices)
        other.execute("SELECT pg_advisory_unlock(7346221903)")
    assert conn.execute("CALL analytics.prc_run_maintenance()").fetchone()[1] == len(ROLLUPS)
    # The lock is released afterwards, also when a step fails.
    conn.execute("UPDATE analytics_internal.tb_setting SET value = 'nonsense' WHERE name = 'chunk_interval'")
    with pytest.raises(psycopg.Error):
        conn.execute("CALL analytics.prc_run_maintenance()")
    with db.connect() as other:
        assert other.execute("SELECT pg_try_advisory_lock(7346221903)").fetchone()[0] is True


def test_changed_rollup_definition_is_refused(rollups):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as err:
        rollups.execute(
            "SELECT analytics_internal.fn_rollup_register('ca_event_daily', '1 day', 20, 'analytics.ca_event_hourly',"
            " 'bucket', ARRAY['fk_app'], ARRAY['sum(event_count)::bigint AS event_count'])"
        )
    assert "migration" in err.value.diag.message_hint


def test_a_reader_granted_only_the_views_can_read_every_rollup(rollups, app, engine_name):
    """docs/analytics.md "For DBAs": SELECT on the views is all an analyst needs, including
    ca_app_session_daily, whose view calls an aggregate of the package."""
    conn = rollups
    track(conn, app, [{"type": "page_view", "session_id": "s1", "user_id": "u1"}])
    role = "ma_test_analyst"
    conn.execute(f"DROP ROLE IF EXISTS {role}")
    conn.execute(f"CREATE ROLE {role}")
    try:
        conn.execute(f"GRANT USAGE ON SCHEMA analytics TO {role}")
        conn.execute(f"GRANT SELECT ON {', '.join('analytics.' + name for name in ROLLUPS)} TO {role}")
        with conn.transaction():
            conn.execute(f"SET LOCAL ROLE {role}")
            for name in ROLLUPS:
                assert conn.execute(f"SELECT count(*) FROM analytics.{name}").fetchone()[0] == 1, name
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM analytics_internal.tb_ca_user_daily")
            raise psycopg.Rollback()
    finally:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")
