"""TimescaleDB compression of raw events (migration 0006): the policy and its settings, and the
same answers from every query before and after chunks are compressed, including ingestion
(exactly-once on an old event id, late events into a compressed chunk) and per-user deletion."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
import pytest

from tests.conftest import create_app
from tests.helpers import track
from tests.test_rollups import mismatches, refresh, rollups  # noqa: F401 - rollups is a fixture
from tests.test_user_data import NOW, export, population, user_key


def compression_job(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression' AND hypertable_schema = 'analytics' AND hypertable_name = 'tb_event'"
    ).fetchone()[0]


def chunk_states(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT range_end, is_compressed FROM timescaledb_information.chunks"
        " WHERE hypertable_schema = 'analytics' AND hypertable_name = 'tb_event' ORDER BY range_start"
    ).fetchall()


@pytest.fixture
def timescaledb(engine_name):
    if engine_name != "timescaledb":
        pytest.skip("compression is TimescaleDB's; on PostgreSQL migration 0006 sets up nothing for it")


def test_policy_compresses_chunks_older_than_7_days_segmented_by_app(timescaledb, conn):
    config = conn.execute(
        "SELECT config ->> 'compress_after' FROM timescaledb_information.jobs WHERE job_id = %s",
        [compression_job(conn)]).fetchone()[0]
    assert config == "7 days"
    settings = conn.execute(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
        " WHERE hypertable = 'analytics.tb_event'::regclass"
    ).fetchone()
    assert settings == ("fk_app", '"timestamp" DESC')


def snapshot(conn: psycopg.Connection, apps: list) -> dict:
    """Every kind of answer the package gives, for comparison before and after compression."""
    start, end = (NOW - timedelta(days=21)).date(), NOW.date()
    out: dict = {"rollups": mismatches(conn)}
    for a in apps:
        for granularity, dimension in (("day", "none"), ("week", "os"), ("hour", "event_type")):
            out[a.identifier, "metrics", granularity] = conn.execute(
                "SELECT * FROM analytics.fn_metrics(%s, %s, %s, %s, %s) ORDER BY 1, 3, 4",
                [a.identifier, start, end, granularity, dimension]).fetchall()
        out[a.identifier, "export"] = export(conn, a.identifier, "u1", ["dev1"])
    out["raw"] = conn.execute(
        "SELECT fk_app, date_trunc('day', \"timestamp\" AT TIME ZONE 'UTC'), event_type, count(*),"
        " count(DISTINCT coalesce(user_id, anonymous_id)), sum(duration_ms)"
        " FROM analytics.tb_event GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    return out


def test_answers_are_the_same_on_compressed_chunks(timescaledb, rollups, app):  # noqa: F811
    conn = rollups
    other = create_app(conn, "other-app")
    events = population(21, 300, max_days=20)
    assert track(conn, app, events)["accepted"] == len(events)
    assert track(conn, other, population(22, 100, max_days=20))["accepted"] == 100
    refresh(conn)
    before = snapshot(conn, [app, other])
    assert before["rollups"] == {} and len(before["app123", "export"]) > 0
    assert not any(compressed for _, compressed in chunk_states(conn))

    conn.execute("CALL public.run_job(%s)", [compression_job(conn)])

    states = chunk_states(conn)
    week_ago = NOW - timedelta(days=7)
    assert any(compressed for _, compressed in states)
    assert all(compressed == (range_end <= week_ago) for range_end, compressed in states), states
    assert snapshot(conn, [app, other]) == before

    # Exactly-once still holds for an event stored in a compressed chunk...
    old = next(e for e in events if datetime.fromisoformat(e["timestamp"]) < NOW - timedelta(days=18))
    assert track(conn, app, [old]) == {"accepted": 0, "duplicates": 1, "clamped": 0, "rejected": []}
    # ...and a late event lands in one and counts everywhere after the refresh.
    late = {"type": "purchase", "event_id": "late-1", "user_id": "u1", "session_id": "s-late",
            "timestamp": (NOW - timedelta(days=15)).isoformat()}
    assert track(conn, app, [late])["accepted"] == 1
    refresh(conn)
    assert mismatches(conn) == {}
    assert any(line for line in export(conn, app.identifier, "u1") if '"late-1"' in line)

    # Per-user deletion on compressed data: exactly the person's events go, the rollups follow.
    kept = conn.execute(
        "SELECT e.id FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
        " WHERE coalesce(e.user_id, e.anonymous_id, '') NOT IN ('u1', 'dev1') OR a.identifier <> 'app123' ORDER BY 1"
    ).fetchall()
    report = conn.execute("CALL analytics.prc_delete_user('app123', 'u1', ARRAY['dev1'])").fetchone()
    assert report[1] == sum(1 for e in events if user_key(e) in ("u1", "dev1")) + 1
    assert conn.execute("SELECT id FROM analytics.tb_event ORDER BY id").fetchall() == kept
    assert mismatches(conn) == {}
    assert export(conn, "other-app", "u1", ["dev1"]) == before["other-app", "export"]
    # The deletion decompressed the app's segments in those chunks; the policy compresses them again.
    conn.execute("CALL public.run_job(%s)", [compression_job(conn)])
    assert mismatches(conn) == {}
    assert conn.execute("SELECT id FROM analytics.tb_event ORDER BY id").fetchall() == kept


def test_compression_of_a_whole_day_keeps_metrics(timescaledb, rollups, app):  # noqa: F811
    # Nothing materialized yet: fn_metrics reads the continuous aggregates' real-time part, i.e.
    # aggregates the raw rows themselves, before and after they are compressed.
    conn = rollups
    events = population(23, 120, min_days=8, max_days=12)
    track(conn, app, events)
    day: date = (NOW - timedelta(days=10)).date()
    live_before = conn.execute("SELECT * FROM analytics.fn_metrics('app123', %s, %s) ORDER BY 1, 3, 4",
                               [day - timedelta(days=2), day + timedelta(days=2)]).fetchall()
    assert live_before
    conn.execute("CALL public.run_job(%s)", [compression_job(conn)])
    assert all(c for end, c in chunk_states(conn) if end <= NOW - timedelta(days=7))
    assert conn.execute("SELECT * FROM analytics.fn_metrics('app123', %s, %s) ORDER BY 1, 3, 4",
                        [day - timedelta(days=2), day + timedelta(days=2)]).fetchall() == live_before
    refresh(conn)
    assert mismatches(conn) == {}
