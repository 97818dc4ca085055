"""The local-day summary of apps outside UTC (analytics.fn_refresh_local_days): fn_metrics answers
from it exactly as from the rollups and the raw events, in whole-hour, half-hour and 45-minute
zones and across a daylight-saving switch; late and deleted events count after the next refresh;
a time-zone change is never answered from a summary of the old zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import create_app
from tests.helpers import track
from tests.test_metrics import DIMENSIONS, GRANULARITIES, NOW, last_offset_change, metrics, random_events, raw_metrics
from tests.test_rollups import refresh, rollups  # noqa: F401 - rollups is a fixture

# America/Havana changes its clocks at midnight: one local midnight a year does not exist, one
# occurs twice.
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "America/Havana")


@pytest.fixture
def zoned(rollups):  # noqa: F811 - rollups is the imported fixture
    """One app per zone of ZONES with 12 days of events; New York's and Havana's around their latest
    DST switch."""
    conn = rollups
    made = []
    for seed, tz in enumerate(ZONES):
        end = last_offset_change(tz) + timedelta(days=5) if tz in ("America/New_York", "America/Havana") else NOW
        a = create_app(conn, f"app-{seed}", timezone=tz, retention_days=3650)
        events = random_events(100 + seed, 250, end)
        assert track(conn, a, events)["accepted"] == len(events)
        pk = conn.execute("SELECT pk_app FROM analytics.tb_app WHERE identifier = %s", [a.identifier]).fetchone()[0]
        made.append((a, tz, pk, end.astimezone(ZoneInfo(tz)).date()))
    return conn, made


WHOLE_HOUR = {"Europe/Berlin", "America/New_York", "America/Havana", "Asia/Tokyo", "UTC"}


def answers(conn, made, granularities=GRANULARITIES, dimensions=DIMENSIONS) -> dict:
    """fn_metrics for 13 local days up to each app's last one, by (zone, granularity, dimension)."""
    got = {}
    for a, tz, _, end in made:
        for g in granularities:
            for dim in dimensions:
                got[tz, g, dim] = sorted(metrics(conn, a.identifier, end - timedelta(days=12), end, g, dim))
    return got


def assert_equals_raw(conn, made, granularities=GRANULARITIES, dimensions=DIMENSIONS) -> None:
    """fn_metrics equals the definition over the raw events: every metric in zones at whole-hour
    offsets, unique_users in the others (where event counts and sessions cut periods at the UTC
    hour that holds local midnight, as documented)."""
    for a, tz, pk, end in made:
        start = end - timedelta(days=12)
        for g in granularities:
            for dim in dimensions:
                got = metrics(conn, a.identifier, start, end, g, dim)
                want = raw_metrics(conn, pk, tz, start, end, g, dim)
                if tz not in WHOLE_HOUR:
                    got, want = ([r for r in rows if r[0] == "unique_users"] for rows in (got, want))
                assert sorted(got) == sorted(want), (tz, g, dim)


def summary(conn, pk: int) -> tuple[int, int, datetime | None]:
    return conn.execute(
        """SELECT (SELECT count(*) FROM analytics_internal.tb_local_day_event WHERE fk_app = %(pk)s),
                  (SELECT count(*) FROM analytics_internal.tb_local_day_activity WHERE fk_app = %(pk)s),
                  (SELECT watermark FROM analytics_internal.tb_local_day_state WHERE fk_app = %(pk)s)""",
        {"pk": pk},
    ).fetchone()


def refresh_local(conn, app_ref: str | None = None) -> list[tuple]:
    return conn.execute("SELECT app, days, rebuilt, watermark FROM analytics.fn_refresh_local_days(%s)",
                        [app_ref]).fetchall()


def test_summarized_days_answer_like_the_rollups(zoned, engine_name):
    conn, made = zoned
    dims = DIMENSIONS if engine_name == "postgresql" else ("none", "os")
    assert_equals_raw(conn, made, dimensions=dims)  # live, before any summary
    conn.execute("CALL analytics.prc_refresh_rollups()")
    conn.execute("DELETE FROM analytics_internal.tb_local_day_state")  # (prc_refresh_rollups made one)
    live = answers(conn, made)  # from the refreshed rollups, without a summary
    refresh_local(conn)
    for a, tz, pk, end in made:
        events, days, watermark = summary(conn, pk)
        assert events > 0 and days > 0, tz
        # the watermark is the local midnight that starts the app's current day
        local_now = datetime.now(ZoneInfo(tz))
        assert watermark == local_now.replace(hour=0, minute=0, second=0, microsecond=0), tz
    assert answers(conn, made) == live
    assert_equals_raw(conn, made)
    # a second refresh has nothing to do (bar the day that now() may have moved into)
    again = {r[0]: r for r in refresh_local(conn)}
    assert all(again[a.identifier][1] <= 1 and not again[a.identifier][2] for a, *_ in made)


def test_late_and_deleted_events_count_after_the_next_refresh(zoned):
    conn, made = zoned
    refresh(conn)
    a, tz, pk, end = made[0]  # Berlin
    day = end - timedelta(days=3)
    before = metrics(conn, a.identifier, day, day, "day", "none")
    # late offline events for a summarized day: a new user, and an event at local 00:30
    late_at = datetime(day.year, day.month, day.day, 0, 30, tzinfo=ZoneInfo(tz))
    late = [{"type": "late_open", "timestamp": late_at.isoformat(), "user_id": "late-user", "session_id": "late-s"},
            {"type": "page_view", "timestamp": (late_at + timedelta(hours=20)).isoformat(), "user_id": "late-user",
             "session_id": "late-s"}]
    assert track(conn, a, late)["accepted"] == 2
    deleted = conn.execute("SELECT deleted_events FROM analytics.fn_delete_user(%s, 'user-3', ARRAY['user-3'])",
                           [a.identifier]).fetchone()[0]
    assert deleted > 0
    # the summarized day answers as before until the next refresh
    assert metrics(conn, a.identifier, day, day, "day", "none") == before
    refresh(conn)
    after = metrics(conn, a.identifier, day, day, "day", "none")
    assert after != before and ("late_open_count", 1, "all") in {r[:3] for r in after}
    assert_equals_raw(conn, made[:1])
    assert_equals_raw(conn, made[1:], granularities=("day",), dimensions=("none",))


def test_a_new_time_zone_is_never_answered_from_the_old_ones_summary(zoned):
    conn, made = zoned
    refresh(conn)
    a, _, pk, _ = made[2]  # Kolkata
    conn.execute("UPDATE analytics.tb_app SET timezone = 'Asia/Tokyo' WHERE pk_app = %s", [pk])
    moved = [(a, "Asia/Tokyo", pk, datetime.now(ZoneInfo("Asia/Tokyo")).date())]
    assert_equals_raw(conn, moved, dimensions=("none",))  # live: the summary is in the old zone
    [(app, days, rebuilt, watermark)] = refresh_local(conn, a.identifier)
    assert (app, rebuilt) == (a.identifier, True) and days >= 12
    assert watermark.astimezone(ZoneInfo("Asia/Tokyo")).hour == 0
    assert_equals_raw(conn, moved)
    # in UTC the daily rollups serve: the summary goes
    conn.execute("UPDATE analytics.tb_app SET timezone = 'UTC' WHERE pk_app = %s", [pk])
    assert refresh_local(conn, a.identifier) == [(a.identifier, 0, False, None)]
    assert summary(conn, pk) == (0, 0, None)
    assert_equals_raw(conn, [(a, "UTC", pk, NOW.date())], granularities=("day", "week"), dimensions=("none",))


def test_refresh_errors(conn):
    with pytest.raises(psycopg.Error) as err:
        refresh_local(conn, "nope")
    assert err.value.sqlstate == "P0002"


def test_maintenance_refreshes_the_summary(zoned):
    conn, made = zoned
    conn.execute("CALL analytics.prc_run_maintenance()")
    for _, tz, pk, _ in made:
        assert summary(conn, pk)[2] is not None, tz
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_local_day_state s"
                        " JOIN analytics.tb_app a ON a.pk_app = s.fk_app WHERE a.timezone = 'UTC'").fetchone()[0] == 0
    assert datetime.now(timezone.utc) - conn.execute(
        "SELECT min(refreshed_at) FROM analytics_internal.tb_local_day_state").fetchone()[0] < timedelta(minutes=5)


def test_weekly_and_monthly_users_from_the_per_user_summary(zoned, app):
    """With the per-user activity summary (fn_refresh_user_activity) in the app's zone, weekly and
    monthly unique users count its users active in the period plus the live user-days after its
    watermark: the same numbers as the raw events, today's new users at once, late events for
    summarized days after the next refresh."""
    conn, made = zoned
    utc = [(app, "UTC", conn.execute("SELECT pk_app FROM analytics.tb_app WHERE identifier = %s",
                                     [app.identifier]).fetchone()[0], NOW.date())]
    assert track(conn, app, random_events(7, 250, NOW))["accepted"] == 250
    apps = made + utc
    conn.execute("CALL analytics.prc_run_maintenance()")
    for _, tz, pk, _ in apps:
        assert conn.execute("SELECT timezone FROM analytics_internal.tb_user_activity_state WHERE fk_app = %s",
                            [pk]).fetchone() == (tz,)
    assert_equals_raw(conn, apps, granularities=("week", "month"), dimensions=("none",))
    # today (after the summary's watermark): a new user, and an old one, count at once
    a, tz, pk, end = made[0]
    now = datetime.now(timezone.utc)
    assert track(conn, a, [{"type": "open", "timestamp": now.isoformat(), "user_id": "brand-new"},
                           {"type": "open", "timestamp": now.isoformat(), "user_id": "user-1"}])["accepted"] == 2
    today = now.astimezone(ZoneInfo(tz)).date()
    assert_equals_raw(conn, [(a, tz, pk, today)], granularities=("week", "month"), dimensions=("none",))
    # a late event of a new user 10 days ago: in the summarized days, so after the next refresh
    late_at = now - timedelta(days=10)
    assert track(conn, a, [{"type": "open", "timestamp": late_at.isoformat(), "user_id": "late-new"}])["accepted"] == 1
    week = late_at.astimezone(ZoneInfo(tz)).date()
    before = {r[3]: r[1] for r in metrics(conn, a.identifier, week, week, "week", "none", ["unique_users"])}
    conn.execute("SELECT * FROM analytics.fn_refresh_user_activity(%s)", [a.identifier]).fetchall()
    after = {r[3]: r[1] for r in metrics(conn, a.identifier, week, week, "week", "none", ["unique_users"])}
    assert [after[k] - before.get(k, 0) for k in after] == [1]
    refresh_local(conn)  # (the late event's count, in the local-day summary)
    assert_equals_raw(conn, [(a, tz, pk, today)], granularities=("week", "month"), dimensions=("none",))
