"""analytics.fn_metrics and analytics.v_metric: every granularity and dimension equals the
documented definition computed from the raw events, in the app's time zone; errors."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import create_app
from tests.helpers import track
from tests.test_rollups import refresh, rollups  # noqa: F401 - rollups is a fixture

GRANULARITIES = ("hour", "day", "week", "month")
DIMENSIONS = ("none", "os", "app_version", "event_type")

# The definitions of docs/analytics.md, straight from analytics.tb_event.
RAW_METRICS = """
WITH e AS (
    SELECT e.*,
           CASE WHEN %(g)s = 'hour' THEN date_trunc('hour', e."timestamp" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                ELSE date_trunc(%(g)s, e."timestamp" AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s END AS period,
           CASE %(dim)s WHEN 'os' THEN coalesce(e.device ->> 'os', 'unknown')
                        WHEN 'app_version' THEN coalesce(e.device ->> 'app_version', 'unknown')
                        WHEN 'event_type' THEN e.event_type ELSE 'all' END AS dim
    FROM analytics.tb_event e
    WHERE e.fk_app = %(app)s
      AND e."timestamp" >= %(from)s::date::timestamp AT TIME ZONE %(tz)s
      AND e."timestamp" < (%(to)s::date + 1)::timestamp AT TIME ZONE %(tz)s
), s AS (
    SELECT period, session_id, max("timestamp") - min("timestamp") AS length
    FROM e WHERE session_id IS NOT NULL GROUP BY 1, 2
)
SELECT event_type || '_count', count(*)::numeric, dim, period FROM e WHERE event_type <> 'crash'
GROUP BY event_type, dim, period
UNION ALL
SELECT 'crash_count', count(*) FILTER (WHERE event_type IN ('crash', 'app_crash')), dim, period FROM e
GROUP BY dim, period
UNION ALL
SELECT 'unique_users', count(DISTINCT coalesce(user_id, anonymous_id)), 'all', period FROM e
WHERE coalesce(user_id, anonymous_id) IS NOT NULL GROUP BY period
UNION ALL
SELECT 'sessions', count(*), 'all', period FROM s GROUP BY period
UNION ALL
SELECT 'avg_session_duration', round(avg(extract(epoch FROM length)), 3), 'all', period FROM s GROUP BY period
"""

NOW = datetime.now(timezone.utc)


def random_events(seed: int, n: int, end: datetime) -> list[dict]:
    """n events over the 12 days before `end`: a few users and sessions (some spanning days), devices, crashes."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        event = {
            "type": rng.choice(["page_view", "page_view", "button_click", "crash", "app_crash", "purchase"]),
            "timestamp": (end - timedelta(minutes=rng.randrange(12 * 24 * 60))).isoformat(),
        }
        if rng.random() < 0.8:
            event["user_id" if rng.random() < 0.7 else "anonymous_id"] = f"user-{rng.randrange(9)}"
        if rng.random() < 0.7:
            event["session_id"] = f"session-{rng.randrange(14)}"
        device = {k: rng.choice(v) for k, v in (("os", ["iOS", "Android"]), ("app_version", ["1.0", "1.1"])) if rng.random() < 0.8}
        if device:
            event["device"] = device
        out.append(event)
    return out


def metrics(conn, app_ref: str, start: date, end: date, granularity: str, dimension: str, types=None) -> list[tuple]:
    return conn.execute(
        "SELECT metric_type, value, dimension, date FROM analytics.fn_metrics(%s, %s, %s, %s, %s, %s)",
        [app_ref, start, end, granularity, dimension, types],
    ).fetchall()


def raw_metrics(conn, pk_app: int, tz: str, start: date, end: date, granularity: str, dimension: str) -> list[tuple]:
    params = {"app": pk_app, "tz": tz, "from": start, "to": end, "g": granularity, "dim": dimension}
    return conn.execute(RAW_METRICS, params).fetchall()


def last_offset_change(tz: str) -> datetime:
    """The latest daylight-saving switch of zone tz before now (UTC midnight of its day)."""
    zone = ZoneInfo(tz)
    day = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    while day.astimezone(zone).utcoffset() == (day - timedelta(days=1)).astimezone(zone).utcoffset():
        day -= timedelta(days=1)
    return day


@pytest.fixture
def apps(rollups, app):  # noqa: F811 - rollups is the imported fixture
    """Three apps with the same kind of data, each with the last local date its data reaches:
    UTC (the last 12 days), America/New_York (12 days around its latest DST switch) and
    Asia/Kolkata, a half-hour zone (the last 12 days)."""
    conn = rollups
    nyc_end = last_offset_change("America/New_York") + timedelta(days=5)
    made = [
        (app, "UTC", NOW),
        (create_app(conn, "nyc", timezone="America/New_York", retention_days=3650), "America/New_York", nyc_end),
        (create_app(conn, "india", timezone="Asia/Kolkata"), "Asia/Kolkata", NOW),
    ]
    result = []
    for seed, (a, tz, end) in enumerate(made):
        events = random_events(seed, 250, end)
        assert track(conn, a, events)["accepted"] == len(events)
        pk = conn.execute("SELECT pk_app FROM analytics.tb_app WHERE identifier = %s", [a.identifier]).fetchone()[0]
        result.append((a, tz, pk, end.astimezone(ZoneInfo(tz)).date()))
    return conn, result


def test_every_granularity_and_dimension_equals_raw(apps, engine_name):
    conn, made = apps
    for refreshed in (False, True):
        if refreshed:
            refresh(conn)
        for a, tz, pk, end in made[:2]:
            start = end - timedelta(days=9)
            for g in GRANULARITIES:
                for dim in DIMENSIONS if refreshed or engine_name == "postgresql" else ("none",):
                    got = metrics(conn, a.identifier, start, end, g, dim)
                    want = raw_metrics(conn, pk, tz, start, end, g, dim)
                    assert sorted(got) == sorted(want), (tz, g, dim, refreshed)
                    assert got == sorted(got, key=lambda r: (r[3], r[0], r[2])), "ordered by date, metric, dimension"


def test_days_before_the_per_day_rollups_read_the_per_user_rollups(apps):
    """An install upgraded after retention dropped raw events has per-day rollups
    (ca_app_daily, ca_app_session_daily) only from app_daily_rollups_from on: fn_metrics reads
    ca_user_daily / ca_session_daily before it, with the same answers, and the per-day
    rollups' own rows after it (emptied here, they would show as missing days)."""
    conn, made = apps
    refresh(conn)
    a, tz, pk, end = made[0]
    start = end - timedelta(days=9)
    want = raw_metrics(conn, pk, tz, start, end, "day", "none")
    boundary = datetime.combine(end - timedelta(days=4), datetime.min.time(), timezone.utc)
    with conn.transaction():
        conn.execute("UPDATE analytics_internal.tb_setting SET value = %s WHERE name = 'app_daily_rollups_from'",
                     [boundary.isoformat()])
        assert sorted(metrics(conn, a.identifier, start, end, "day", "none")) == sorted(want)
        for name in ("ca_app_daily", "ca_app_session_daily"):
            conn.execute(f"DELETE FROM {storage(conn, name)} WHERE bucket < %s", [boundary])
        assert sorted(metrics(conn, a.identifier, start, end, "day", "none")) == sorted(want)
        conn.execute(f"DELETE FROM {storage(conn, 'ca_app_daily')} WHERE bucket >= %s", [boundary])
        got = metrics(conn, a.identifier, start, end, "day", "none")
        # (the current UTC day is never materialized: it is read live, whatever was deleted)
        today = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
        assert not [r for r in got if r[0] == "unique_users" and boundary <= r[3] < today]
        assert [r for r in got if r[0] == "unique_users" and r[3] < boundary]
        raise psycopg.Rollback()  # the setting and the rollups as they were


def test_hours_before_the_per_hour_rollup_read_the_per_user_rollup(apps):
    """Likewise at hour granularity: unique users and sessions from ca_app_hourly and
    ca_app_session_hourly from app_hourly_rollups_from on, from ca_user_daily's active hours and
    ca_session_hourly's rows before it."""
    conn, made = apps
    refresh(conn)
    a, tz, pk, end = made[1]  # New York: hours are UTC hours in every zone
    start = end - timedelta(days=3)
    want = raw_metrics(conn, pk, tz, start, end, "hour", "none")
    boundary = datetime.combine(end - timedelta(days=1), datetime.min.time(), timezone.utc)
    with conn.transaction():
        conn.execute("UPDATE analytics_internal.tb_setting SET value = %s WHERE name = 'app_hourly_rollups_from'",
                     [boundary.isoformat()])
        assert sorted(metrics(conn, a.identifier, start, end, "hour", "none")) == sorted(want)
        for name in ("ca_app_hourly", "ca_app_session_hourly"):
            conn.execute(f"DELETE FROM {storage(conn, name)} WHERE bucket < %s", [boundary])
        assert sorted(metrics(conn, a.identifier, start, end, "hour", "none")) == sorted(want)
        for name in ("ca_app_hourly", "ca_app_session_hourly"):
            conn.execute(f"DELETE FROM {storage(conn, name)} WHERE bucket >= %s", [boundary])
        got = metrics(conn, a.identifier, start, end, "hour", "none")
        for metric in ("unique_users", "sessions", "avg_session_duration"):
            hours = [r[3] for r in got if r[0] == metric]
            assert hours and max(hours) < boundary, metric  # the later hours come from the per-hour rollups alone
        raise psycopg.Rollback()  # the setting and the rollups as they were


def storage(conn, rollup: str) -> str:
    return conn.execute("SELECT analytics_internal.fn_rollup_storage(%s)::text", [rollup]).fetchone()[0]


def test_unique_users_are_exact_in_half_hour_zones(apps):
    conn, made = apps
    refresh(conn)
    a, tz, pk, end = made[2]
    for g in ("day", "week", "month"):
        got = metrics(conn, a.id, end - timedelta(days=9), end, g, "none", ["unique_users"])
        want = [r for r in raw_metrics(conn, pk, tz, end - timedelta(days=9), end, g, "none") if r[0] == "unique_users"]
        assert sorted(got) == sorted(want) and got, g


def test_metric_types_filter_and_empty_ranges(apps):
    conn, made = apps
    a, _, _, end = made[0]
    got = metrics(conn, a.identifier, end - timedelta(days=3), end, "day", "os", ["crash_count", "page_view_count"])
    assert got and {r[0] for r in got} == {"crash_count", "page_view_count"}
    assert metrics(conn, a.identifier, date(2001, 1, 1), date(2001, 1, 31), "day", "none") == []


def test_v_metric_keeps_the_seed_shape(apps):
    conn, made = apps
    rows = conn.execute("SELECT id, data, fk_app FROM analytics.v_metric").fetchall()
    want = conn.execute(
        """SELECT e.fk_app, (e."timestamp" AT TIME ZONE 'UTC')::date::text, m, coalesce(e.device ->> 'os', 'unknown'),
                  count(*)
           FROM analytics.tb_event e
           CROSS JOIN LATERAL (SELECT e.event_type || '_count' WHERE e.event_type <> 'crash'
                               UNION ALL SELECT 'crash_count' WHERE e.event_type IN ('crash', 'app_crash')) c(m)
           GROUP BY 1, 2, 3, 4"""
    ).fetchall()
    got = [(fk, d["date"], d["metric_type"], d["dimension"], d["value"]) for _, d, fk in rows]
    assert sorted(got) == sorted(want)
    assert all(str(i) == d["id"] for i, d, _ in rows) and len({i for i, _, _ in rows}) == len(rows)


@pytest.mark.parametrize(
    ("args", "sqlstate", "hint"),
    [
        (("nope", "2024-01-01", "2024-01-31", "day", "none"), "P0002", "identifier"),
        (("app123", "2024-01-01", "2024-01-31", "minute", "none"), "22023", "hour, day, week or month"),
        (("app123", "2024-01-01", "2024-01-31", "day", "country"), "22023", "none, os, app_version or event_type"),
        (("app123", "2024-02-01", "2024-01-01", "day", "none"), "22023", "Swap"),
        (("app123", "2023-01-01", "2024-02-04", "hour", "none"), "22023", "coarser"),
        (("app123", None, "2024-01-01", "day", "none"), "22023", "both dates"),
        (("app123", "-infinity", "2024-01-01", "day", "none"), "22023", "both dates"),
        (("app123", "2024-01-01", "2024-01-31", None, "none"), "22023", "hour, day"),
    ],
)
def test_errors_are_clear(conn, app, args, sqlstate, hint):
    with pytest.raises(psycopg.Error) as err:
        conn.execute("SELECT * FROM analytics.fn_metrics(%s, %s::date, %s::date, %s, %s)", list(args))
    assert err.value.sqlstate == sqlstate
    assert hint in (err.value.diag.message_hint or "")


def test_long_ranges_are_fine_at_coarse_granularity(conn, app):
    assert conn.execute(
        "SELECT count(*) FROM analytics.fn_metrics('app123', '2016-01-01', '2025-12-31', 'month')"
    ).fetchone()[0] == 0
