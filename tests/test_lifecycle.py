"""Raw-event retention (docs/lifecycle.md): whole chunks dropped once expired (and archived),
rollups and metrics keep their history, ingestion refuses events before a dropped range, and
TimescaleDB's policies follow retention_mode. Both engines."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from pywrap.migrate import migrate_connection
from tests.conftest import App, create_app
from tests.helpers import track
from tests.test_rollups import ROLLUPS, refresh, rollups  # noqa: F401 - rollups is a fixture

NOW = datetime.now(timezone.utc)
GRACE_DAYS = 4  # the retention_grace setting's default


def old_events(days_ago: int, n: int, prefix: str) -> list[dict[str, Any]]:
    """n events in the UTC day `days_ago` days back, 10:00 to 10:00 + n hours, 3 users."""
    day = (NOW - timedelta(days=days_ago)).replace(hour=10, minute=0, second=0, microsecond=0)
    types = ["page_view", "screen_view", "button_click", "crash"]
    return [{"type": types[i % len(types)], "event_id": f"{prefix}-{days_ago}-{i}",
             "timestamp": (day + timedelta(hours=i % 12, minutes=i)).isoformat(),
             "user_id": f"u{i % 3}", "session_id": f"s{days_ago}-{i % 2}",
             "device": {"os": "iOS" if i % 2 else "Android", "app_version": "1.0"}}
            for i in range(n)]


def day_of(days_ago: int) -> date:
    return (NOW - timedelta(days=days_ago)).date()


def utc_day(d: date) -> tuple[datetime, datetime]:
    start = datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def rollup_rows(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {name: sorted(conn.execute(f"SELECT {columns} FROM analytics.{name}").fetchall())
            for name, (columns, _raw) in ROLLUPS.items()}


def raw_day_counts(conn: psycopg.Connection, app: App, d: date) -> dict[str, int]:
    """Per event type count, and distinct users, of one app's raw events on a UTC day."""
    start, end = utc_day(d)
    rows = conn.execute(
        "SELECT e.event_type, count(*) FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
        " WHERE a.identifier = %s AND e.\"timestamp\" >= %s AND e.\"timestamp\" < %s GROUP BY 1",
        [app.identifier, start, end]).fetchall()
    users = conn.execute(
        "SELECT count(DISTINCT coalesce(e.user_id, e.anonymous_id)) FROM analytics.tb_event e"
        " JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
        " WHERE a.identifier = %s AND e.\"timestamp\" >= %s AND e.\"timestamp\" < %s",
        [app.identifier, start, end]).fetchone()[0]
    return {**{t: n for t, n in rows}, "users": users}


def metrics_of_day(conn: psycopg.Connection, app: App, d: date) -> dict[str, int]:
    rows = conn.execute(
        "SELECT metric_type, value FROM analytics.fn_metrics(%s, %s, %s, 'day')", [app.identifier, d, d]).fetchall()
    values = {m: int(v) for m, v in rows}
    found = {m.removesuffix("_count"): v for m, v in values.items() if m.endswith("_count") and m != "crash_count"}
    if values.get("crash_count"):
        found["crash"] = values["crash_count"]
    found["users"] = values.get("unique_users", 0)
    return found


def chunk_rows(conn: psycopg.Connection, d: date) -> int:
    start, end = utc_day(d)
    return conn.execute("SELECT count(*) FROM analytics.tb_event WHERE \"timestamp\" >= %s AND \"timestamp\" < %s",
                        [start, end]).fetchone()[0]


def jobs(conn: psycopg.Connection, proc: str) -> list[tuple]:
    return conn.execute(
        "SELECT job_id, hypertable_name, config FROM timescaledb_information.jobs WHERE proc_name = %s ORDER BY 1",
        [proc]).fetchall()


def run_all_refresh_policies(conn: psycopg.Connection) -> None:
    """What TimescaleDB's background workers would do (the WASM build has none)."""
    for job_id, _name, _config in jobs(conn, "policy_refresh_continuous_aggregate"):
        conn.execute("CALL public.run_job(%s)", [job_id])


def settle(conn: psycopg.Connection, engine: str) -> None:
    """Partitions for the old days (PostgreSQL) and materialized rollups."""
    if engine == "postgresql":
        conn.execute("SELECT analytics.fn_create_partitions()")
    refresh(conn)


def record_as_archived(conn: psycopg.Connection, start: datetime) -> None:
    """Ledger rows as `mobile-analytics archive` leaves them, for every app-day of a chunk
    (the objects themselves are tests/test_archive.py's business)."""
    for plan in conn.execute("SELECT app_id, day, row_count, id_checksum FROM analytics.fn_archive_plan(%s)",
                             [start]).fetchall():
        args = [start, str(plan[0]), plan[1], "file:///archive", f"events/{plan[0]}/{plan[1]}.parquet"]
        conn.execute("SELECT analytics.fn_archive_record(%s, %s, %s, 'pending', %s, %s)", args)
        conn.execute("SELECT analytics.fn_archive_record(%s, %s, %s, 'verified', %s, %s, %s, %s, 100, %s)",
                     [*args, plan[2], plan[3], "ab" * 32])


@pytest.fixture
def lifecycle(db, rollups, engine_name: str) -> Iterator[psycopg.Connection]:  # noqa: F811
    """Fresh rollups; afterwards retention_mode is archive again and, on TimescaleDB, the
    policies are as installed (no retention policy, refresh policies without start_offset),
    since the WASM engine's database is shared by the tests that follow. A test may close the
    connection (to leave the WASM engine's one connection to a subprocess)."""
    yield rollups
    with contextlib.ExitStack() as stack:
        conn = rollups if not rollups.closed else stack.enter_context(db.connect())
        conn.execute("TRUNCATE analytics_internal.tb_event_drop, analytics_internal.tb_archive_object")
        conn.execute("SELECT analytics.fn_set_retention_mode('keep')")
        conn.execute("TRUNCATE analytics_internal.tb_event_drop")  # the horizon a removed policy leaves
        conn.execute("SELECT analytics.fn_set_retention_mode('keep')")
        conn.execute("UPDATE analytics_internal.tb_setting SET value = 'archive' WHERE name = 'retention_mode'")


def test_metrics_for_a_day_120_days_back_answer_after_retention(lifecycle, engine_name):
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    for days_ago in (121, 120, 119):
        assert track(conn, app, old_events(days_ago, 12, "old"))["accepted"] == 12
    assert track(conn, app, old_events(1, 5, "new"))["accepted"] == 5
    settle(conn, engine_name)
    d = day_of(120)
    expected = raw_day_counts(conn, app, d)
    assert expected["users"] == 3 and sum(v for k, v in expected.items() if k != "users") == 12
    assert metrics_of_day(conn, app, d) == expected
    before = rollup_rows(conn)

    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")  # a DBA shortens the retention
    conn.execute("SELECT analytics.fn_set_retention_mode('drop')")
    if engine_name == "timescaledb":
        # The retention policy drops the chunks, as its background job would.
        [(job_id, _name, config)] = jobs(conn, "policy_retention")
        assert config["drop_after"] == f"{30 + GRACE_DAYS} days"
        conn.execute("CALL public.run_job(%s)", [job_id])
        # No refresh policy reaches back to what the retention policy may drop.
        for _job, _name, config in jobs(conn, "policy_refresh_continuous_aggregate"):
            assert config["start_offset"] == f"{30 + GRACE_DAYS} days"
    else:
        row = conn.execute("CALL analytics.prc_run_maintenance()").fetchone()
        assert row[3] == 3  # chunks_dropped: the three old days, whole
        kept = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'analytics.tb_event'::regclass"
                            " AND inhrelid::regclass::text LIKE %s", [f"%{d:%Y%m%d}"]).fetchone()[0]
        assert kept == 0
    for days_ago in (121, 120, 119):
        assert chunk_rows(conn, day_of(days_ago)) == 0
    assert chunk_rows(conn, day_of(1)) == 5

    # History stays, also through every later refresh.
    assert metrics_of_day(conn, app, d) == expected
    assert rollup_rows(conn) == before
    refresh(conn)
    if engine_name == "timescaledb":
        run_all_refresh_policies(conn)
    assert rollup_rows(conn) == before
    assert metrics_of_day(conn, app, d) == expected


def test_dropped_chunks_keep_rollups_through_later_refreshes(lifecycle, engine_name):
    """Dropping a chunk logs an invalidation over its range (TimescaleDB 2.x): a refresh that
    reached there would recompute its buckets from nothing. fn_apply_retention keeps every
    refresh window away, and migrate still works with the policies it changed."""
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    assert track(conn, app, old_events(100, 8, "old"))["accepted"] == 8
    assert track(conn, app, old_events(2, 4, "new"))["accepted"] == 4
    settle(conn, engine_name)
    before = rollup_rows(conn)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    conn.execute("SELECT analytics.fn_set_retention_mode('drop')")
    dropped = conn.execute("SELECT action FROM analytics.fn_apply_retention()").fetchall()
    assert dropped == [("dropped",)]
    horizon = utc_day(day_of(100))[1]
    assert conn.execute("SELECT max(range_end) FROM analytics_internal.tb_event_drop").fetchone()[0] == horizon
    if engine_name == "timescaledb":
        for _job, _name, config in jobs(conn, "policy_refresh_continuous_aggregate"):
            window_start = NOW - _interval_days(config["start_offset"])
            assert window_start >= horizon
        run_all_refresh_policies(conn)
        migrate_connection(conn)  # the rollup files keep the moved start_offset
    refresh(conn)
    assert rollup_rows(conn) == before


def _interval_days(text: str) -> timedelta:
    days, _, rest = text.partition(" days")
    hours = rest.strip().split(":")[0] if rest.strip() else "0"
    return timedelta(days=int(days), hours=int(hours or 0))


def test_a_chunk_stays_while_an_app_with_events_in_it_needs_it(lifecycle, engine_name):
    conn = lifecycle
    short = create_app(conn, "short", retention_days=200)
    long_ = create_app(conn, "long", retention_days=200)
    assert track(conn, short, old_events(100, 4, "s"))["accepted"] == 4   # only the short app
    assert track(conn, short, old_events(99, 4, "s"))["accepted"] == 4    # both apps
    assert track(conn, long_, old_events(99, 4, "l"))["accepted"] == 4
    settle(conn, engine_name)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30 WHERE identifier = 'short'")
    conn.execute("UPDATE analytics.tb_app SET retention_days = 150 WHERE identifier = 'long'")
    status = {r[0]: r[1:] for r in conn.execute(
        "SELECT range_start::date, apps, retention_days, expires_at, expired FROM analytics.fn_retention_status()"
        " WHERE range_start < now() - interval '50 days'").fetchall()}
    d100, d99 = day_of(100), day_of(99)
    if engine_name == "postgresql":
        # Rollups are invalidated per app: the day only the short app used expires with it.
        assert status[d100] == (["short"], 30, utc_day(d100)[1] + timedelta(days=30 + GRACE_DAYS), True)
    else:
        # Continuous aggregates are invalidated for all apps at once: the longest retention of all.
        assert status[d100] == (["short"], 150, utc_day(d100)[1] + timedelta(days=150 + GRACE_DAYS), False)
    assert status[d99] == (["short", "long"], 150, utc_day(d99)[1] + timedelta(days=150 + GRACE_DAYS), False)

    conn.execute("SELECT analytics.fn_set_retention_mode('drop')")
    conn.execute("SELECT * FROM analytics.fn_apply_retention()").fetchall()
    assert chunk_rows(conn, d100) == (0 if engine_name == "postgresql" else 4)
    assert chunk_rows(conn, d99) == 8


def test_archive_mode_drops_only_verified_unchanged_chunks(lifecycle, engine_name):
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    assert track(conn, app, old_events(100, 6, "old"))["accepted"] == 6
    settle(conn, engine_name)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    start = utc_day(day_of(100))[0]

    def apply() -> list[tuple]:
        return conn.execute("SELECT action, row_count FROM analytics.fn_apply_retention()").fetchall()

    assert apply() == [("archive first", None)]
    assert conn.execute("SELECT action, unarchived_app_days FROM analytics.fn_retention_status()"
                        " WHERE range_start = %s", [start]).fetchone() == ("archive", 1)

    record_as_archived(conn, start)
    # An event arriving after the export (a direct insert here) keeps the chunk.
    conn.execute("INSERT INTO analytics.tb_event (id, fk_app, event_type, \"timestamp\")"
                 " SELECT gen_random_uuid(), pk_app, 'late', %s FROM analytics.tb_app", [start + timedelta(hours=3)])
    settle(conn, engine_name)
    assert apply() == [("archive first", None)]
    assert chunk_rows(conn, day_of(100)) == 7

    record_as_archived(conn, start)
    assert apply() == [("dropped", 7)]
    assert chunk_rows(conn, day_of(100)) == 0


def test_timescaledb_needs_materialized_aggregates_before_a_drop(lifecycle, engine_name):
    if engine_name != "timescaledb":
        pytest.skip("the PostgreSQL engine refreshes its rollups itself before a drop")
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    assert track(conn, app, old_events(100, 6, "old"))["accepted"] == 6
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    conn.execute("SELECT analytics.fn_set_retention_mode('drop')")
    [(action, detail)] = conn.execute("SELECT action, detail FROM analytics.fn_apply_retention()").fetchall()
    assert action == "refresh first" and "prc_refresh_rollups" in detail
    assert chunk_rows(conn, day_of(100)) == 6
    refresh(conn)
    assert conn.execute("SELECT action FROM analytics.fn_apply_retention()").fetchall() == [("dropped",)]


def test_ingestion_refuses_events_before_a_dropped_range(lifecycle, engine_name):
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    other = create_app(conn, "other", retention_days=200)
    assert track(conn, app, old_events(100, 3, "old"))["accepted"] == 3
    settle(conn, engine_name)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    record_as_archived(conn, utc_day(day_of(100))[0])  # mode archive: no retention policy involved
    assert conn.execute("SELECT action FROM analytics.fn_apply_retention()").fetchall() == [("dropped",)]

    conn.execute("UPDATE analytics.tb_app SET retention_days = 365")  # raised again afterwards
    late = old_events(101, 1, "late")
    result = track(conn, app, late)
    assert result["accepted"] == 0 and result["rejected"][0]["code"] == "too_old"
    assert "removed by retention" in result["rejected"][0]["message"]
    # The other app had no events in the dropped day: on PostgreSQL its late events still count
    # (its rollups are its own); TimescaleDB's continuous aggregates cover every app at once.
    accepted = track(conn, other, old_events(101, 1, "other"))["accepted"]
    assert accepted == (1 if engine_name == "postgresql" else 0)
    assert track(conn, app, old_events(90, 1, "newer"))["accepted"] == 1


def test_keep_mode_and_errors(lifecycle, engine_name):
    conn = lifecycle
    app = create_app(conn, "old-app", retention_days=200)
    assert track(conn, app, old_events(100, 3, "old"))["accepted"] == 3
    settle(conn, engine_name)
    conn.execute("UPDATE analytics.tb_app SET retention_days = 30")
    assert conn.execute("SELECT analytics.fn_set_retention_mode('keep')").fetchone()[0] == "archive"
    assert conn.execute("SELECT * FROM analytics.fn_apply_retention()").fetchall() == []
    assert conn.execute("SELECT action FROM analytics.fn_retention_status() WHERE expired").fetchall() == [("keep",)]
    if engine_name == "timescaledb":
        assert jobs(conn, "policy_retention") == []

    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        conn.execute("SELECT analytics.fn_set_retention_mode('forever')")
    assert err.value.diag.message_hint
    with pytest.raises(psycopg.errors.NoDataFound):
        conn.execute("SELECT * FROM analytics.fn_archive_plan('1999-01-01')")
    start = utc_day(day_of(100))[0]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT analytics.fn_archive_record(%s, 'old-app', %s, 'done', 's3://b', 'k')", [start, day_of(100)])
    with pytest.raises(psycopg.errors.InvalidParameterValue):  # verified without a pending row first
        conn.execute("SELECT analytics.fn_archive_record(%s, 'old-app', %s, 'verified', 's3://b', 'k', 1, 1, 1, %s)",
                     [start, day_of(100), "0" * 64])
    with pytest.raises(psycopg.errors.NoDataFound):
        conn.execute("SELECT analytics.fn_archive_plan(%s, 'nope')", [start])
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_archive_object").fetchone()[0] == 0
