"""analytics.fn_retention and analytics.fn_cohort_retention on both engines, against an
independent Python computation of the definitions in docs/analytics.md#retention: random users
and events in several time zones, read before the per-user activity summary exists, from it,
with new events after its watermark (live), with late and deleted events (counted after the
next analytics.fn_refresh_user_activity), after a time zone change; cohort retention over a
cohort's members only; errors."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import create_app
from tests.test_rollups import refresh, rollups  # noqa: F401 - rollups is a fixture

UTC = timezone.utc
RETENTION = "SELECT cohort_start, cohort_size, period, users, rate FROM analytics.fn_retention(%s, %s, %s, %s, %s, %s)"
COHORT_RETENTION = (
    "SELECT period, period_start, cohort_size, returning_users, retention_rate"
    " FROM analytics.fn_cohort_retention(%s, %s, %s, %s)"
)


@dataclass(frozen=True)
class Ev:
    user: str
    ts: datetime
    type: str = "open"
    anonymous: bool = False


def insert(conn: psycopg.Connection, app: str, events: list[Ev]) -> None:
    """Store events as fn_track_events would, without its age check (events up to 70 days old)."""
    conn.execute(
        """INSERT INTO analytics.tb_event (id, fk_app, event_type, "timestamp", user_id, anonymous_id)
           SELECT gen_random_uuid(), a.pk_app, x.t, x.ts, CASE WHEN x.anon THEN NULL ELSE x.u END,
                  CASE WHEN x.anon THEN x.u END
           FROM analytics.tb_app a, unnest(%(t)s::text[], %(ts)s::timestamptz[], %(u)s::text[], %(anon)s::boolean[])
                AS x(t, ts, u, anon)
           WHERE a.identifier = %(app)s""",
        {"app": app, "t": [e.type for e in events], "ts": [e.ts for e in events],
         "u": [e.user for e in events], "anon": [e.anonymous for e in events]},
    )


def refresh_summary(conn: psycopg.Connection, app: str) -> tuple:
    return conn.execute("SELECT users, rebuilt FROM analytics.fn_refresh_user_activity(%s)", [app]).fetchone()


# --- the definitions, in Python -------------------------------------------------------------------


def add_months(d: date, months: int) -> date:
    """d + months as PostgreSQL adds an interval: the day of month is clamped to the month's end."""
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    for day in (d.day, 30, 29, 28):
        try:
            return date(y, m + 1, day)
        except ValueError:
            continue
    raise AssertionError(d)


def calendar_start(d: date, interval: str) -> date:
    return {"day": d, "week": d - timedelta(days=d.weekday()), "month": d.replace(day=1)}[interval]


def period_start(start: date, k: int, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=k)
    if interval == "week":
        return start + timedelta(days=7 * k)
    return add_months(start, k)


def period_index(start: date, d: date, interval: str) -> int:
    k = 0
    while period_start(start, k + 1, interval) <= d:
        k += 1
    while period_start(start, k, interval) > d:
        k -= 1
    return k


def rate(n: int, size: int) -> Decimal | None:
    return None if size == 0 else (Decimal(n) / Decimal(size)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def local_days(events: list[Ev], tz: str) -> dict[str, set[date]]:
    days: dict[str, set[date]] = defaultdict(set)
    for e in events:
        days[e.user].add(e.ts.astimezone(ZoneInfo(tz)).date())
    return days


def today(tz: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(tz)).date()


def expected_matrix(events: list[Ev], tz: str, start: date, end: date, interval: str, periods: int,
                    mode: str) -> list[tuple]:
    """Cohorts = calendar periods holding start .. end; first_time: users whose first local day
    falls in the cohort; recurring: users active in it. Cells whose period has started."""
    first = calendar_start(start, interval)
    n = period_index(first, end, interval) + 1
    active = {u: {period_index(first, d, interval) for d in ds} for u, ds in local_days(events, tz).items()}
    members: dict[int, set[str]] = defaultdict(set)
    for user, ps in active.items():
        if mode == "first_time":
            if 0 <= min(ps) < n:
                members[min(ps)].add(user)
        else:
            for c in ps:
                if 0 <= c < n:
                    members[c].add(user)
    now = today(tz)
    rows = []
    for c in range(n):
        for k in range(periods):
            if period_start(first, c + k, interval) > now:
                continue
            users = sum(1 for u in members[c] if c + k in active[u])
            rows.append((period_start(first, c, interval), len(members[c]), k, users, rate(users, len(members[c]))))
    return rows


def expected_cohort_retention(events: list[Ev], members: set[str], tz: str, interval: str, periods: int) -> list[tuple]:
    """Each member from their own first local day; period k counts members whose period k ended."""
    days = {u: ds for u, ds in local_days(events, tz).items() if u in members}
    if not days:
        return []
    now = today(tz)
    first = {u: min(ds) for u, ds in days.items()}
    ended = {u: period_index(first[u], now, interval) for u in days}
    rows = []
    for k in range(periods):
        eligible = [u for u in days if ended[u] > k]
        back = sum(1 for u in eligible if any(period_index(first[u], d, interval) == k for d in days[u]))
        rows.append((k, period_start(min(first.values()), k, interval), len(eligible), back, rate(back, len(eligible))))
    return rows


# --- data -------------------------------------------------------------------------------------


def random_events(seed: int, users: int = 14, days: int = 66) -> list[Ev]:
    """Users arriving over `days` days, active on some later days at random hours, some of them
    anonymous (no user id), a few of them today."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    events = []
    for u in range(users):
        arrival = rng.randrange(days)
        life = rng.choice([0, 1, 3, 10, 30, 70])
        for back in range(arrival, max(-1, arrival - life - 1), -1):
            if back != arrival and rng.random() > 0.45:
                continue
            for _ in range(rng.choice([1, 1, 2, 3])):
                ts = now - timedelta(days=back, minutes=rng.randrange(24 * 60))
                events.append(Ev(f"user-{u}", min(ts, now - timedelta(seconds=1)), rng.choice(["open", "open", "purchase"]),
                                 anonymous=u % 5 == 4))
    return events


def since_watermark(conn: psycopg.Connection, app: str, rng: random.Random, users: list[str], n: int) -> list[Ev]:
    """Events between the summary's watermark (today's UTC midnight) and now: they count at once."""
    mark = conn.execute(
        "SELECT s.watermark FROM analytics_internal.tb_user_activity_state s JOIN analytics.tb_app a ON a.pk_app = s.fk_app"
        " WHERE a.identifier = %s", [app]).fetchone()[0]
    span = (datetime.now(UTC) - mark).total_seconds()
    return [Ev(rng.choice(users), mark + timedelta(seconds=rng.random() * span * 0.99)) for _ in range(n)]


def queries(tz: str) -> list[tuple]:
    now = today(tz)
    return [
        (now - timedelta(days=20), now - timedelta(days=8), "day", 12, "first_time"),
        (now - timedelta(days=9), now, "day", 5, "recurring"),
        (now - timedelta(days=56), now - timedelta(days=7), "week", 8, "first_time"),
        (now - timedelta(days=49), now, "week", 4, "recurring"),
        (now - timedelta(days=65), now, "month", 3, "first_time"),
        (now - timedelta(days=40), now - timedelta(days=30), "month", 2, "recurring"),
    ]


def check_matrices(conn: psycopg.Connection, app: str, tz: str, events: list[Ev], stage: str) -> None:
    for start, end, interval, periods, mode in queries(tz):
        got = conn.execute(RETENTION, [app, start, end, interval, periods, mode]).fetchall()
        want = expected_matrix(events, tz, start, end, interval, periods, mode)
        assert got == want, f"{stage}: {interval} {mode} {start}..{end}"


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_retention_matrix_equals_the_definition(rollups, engine_name, tz):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "ret", timezone=tz).identifier
    other = create_app(conn, "ret-other").identifier  # apps stay apart
    rng = random.Random(f"{tz}-matrix")
    events = random_events(rng.randrange(1000))
    insert(conn, app, events)
    insert(conn, other, random_events(7, users=5))
    refresh(conn)
    check_matrices(conn, app, tz, events, "no summary yet: from ca_user_daily")

    assert refresh_summary(conn, app)[1] is True
    check_matrices(conn, app, tz, events, "from the summary")

    users = sorted({e.user for e in events}) + ["newcomer-1", "newcomer-2"]
    new = since_watermark(conn, app, rng, users, 12)
    insert(conn, app, new)
    events += new
    check_matrices(conn, app, tz, events, "summary + events after its watermark, no refresh")

    # Late events (days before the watermark) count after the next summary refresh.
    late = [Ev(rng.choice(users), datetime.now(UTC) - timedelta(days=rng.randrange(2, 40), hours=rng.random() * 20))
            for _ in range(8)]
    insert(conn, app, late)
    refresh(conn)
    check_matrices(conn, app, tz, events, "late events, before the summary refresh")
    events += late
    # re-summarized: every user with events on the late events' (UTC) days
    late_days = {e.ts.astimezone(UTC).date() for e in late}
    assert refresh_summary(conn, app) == (len({e.user for e in events if e.ts.astimezone(UTC).date() in late_days}), False)
    check_matrices(conn, app, tz, events, "late events, after the summary refresh")


def test_deleted_events_and_time_zone_change(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "ret", timezone="Europe/Berlin").identifier
    events = random_events(11)
    insert(conn, app, events)
    refresh(conn)
    refresh_summary(conn, app)
    check_matrices(conn, app, "Europe/Berlin", events, "summary")

    # A user's events deleted (as fn_delete_user does): gone from the summary at its next refresh.
    gone = events[0].user
    conn.execute("DELETE FROM analytics.tb_event WHERE coalesce(user_id, anonymous_id) = %s", [gone])
    refresh(conn)
    users, rebuilt = refresh_summary(conn, app)
    assert not rebuilt and users >= 1
    events = [e for e in events if e.user != gone]
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_user_activity WHERE user_key = %s",
                        [gone]).fetchone()[0] == 0
    check_matrices(conn, app, "Europe/Berlin", events, "after a deletion")

    # Another zone: the summary (built for Berlin) is ignored at once and rebuilt by the refresh.
    conn.execute("UPDATE analytics.tb_app SET timezone = 'Pacific/Auckland' WHERE identifier = %s", [app])
    check_matrices(conn, app, "Pacific/Auckland", events, "zone changed, summary ignored")
    assert refresh_summary(conn, app)[1] is True
    check_matrices(conn, app, "Pacific/Auckland", events, "zone changed, summary rebuilt")


def test_refresh_is_incremental(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "ret").identifier
    events = random_events(5)
    insert(conn, app, events)
    refresh(conn)
    users = len({e.user for e in events if e.ts < datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)})
    assert refresh_summary(conn, app) == (users, True)
    assert refresh_summary(conn, app) == (0, False), "nothing changed: nothing to do"
    # a late event on a day without other events: only its user is re-summarized
    insert(conn, app, [Ev("user-1", datetime.now(UTC) - timedelta(days=80))])
    refresh(conn)
    assert refresh_summary(conn, app) == (1, False), "only the late event's user"
    # maintenance refreshes the summary of every app
    insert(conn, app, [Ev("user-2", datetime.now(UTC) - timedelta(days=81))])
    refresh(conn)
    conn.execute("CALL analytics.prc_run_maintenance()")
    assert refresh_summary(conn, app) == (0, False)


def test_summary_rows(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "ret", timezone="America/New_York").identifier
    t = datetime(2026, 1, 30, 15, tzinfo=UTC)  # a Friday, 10:00 in New York
    # 2026-01-31 04:30 UTC is still the 30th in New York; 2026-03-02 is a Monday.
    insert(conn, app, [Ev("u", t), Ev("u", t + timedelta(hours=13, minutes=30)), Ev("u", datetime(2026, 3, 2, 17, tzinfo=UTC))])
    refresh(conn)
    refresh_summary(conn, app)
    row = conn.execute(
        "SELECT first_day, first_week, first_month, days::text, weeks::text, months::text"
        " FROM analytics_internal.tb_user_activity").fetchone()
    assert row == (date(2026, 1, 30), (date(2026, 1, 26) - date(2000, 1, 3)).days // 7, 26 * 12 + 0,
                   "1" + "0" * 30 + "1", "100001", "101")


@pytest.mark.parametrize("interval", ["day", "week", "month"])
def test_cohort_retention_counts_members_only(rollups, engine_name, interval):  # noqa: F811 - fixture
    conn = rollups
    tz = "America/New_York"
    app = create_app(conn, "ret", timezone=tz).identifier
    events = random_events(23, users=16)
    insert(conn, app, events)
    refresh(conn)
    cohort = conn.execute("SELECT identifier FROM analytics.fn_create_cohort(%s, 'Buyers', %s)",
                          [app, Jsonb({"event": "purchase"})]).fetchone()[0]
    members = {e.user for e in events if e.type == "purchase"}
    assert 0 < len(members) < len({e.user for e in events})
    periods = {"day": 20, "week": 6, "month": 3}[interval]
    want = expected_cohort_retention(events, members, tz, interval, periods)
    assert conn.execute(COHORT_RETENTION, [app, cohort, interval, periods]).fetchall() == want, "no summary"
    refresh_summary(conn, app)
    assert conn.execute(COHORT_RETENTION, [app, cohort, interval, periods]).fetchall() == want, "from the summary"

    # Activity after the watermark counts at once; non-members' never does.
    rng = random.Random(3)
    new = since_watermark(conn, app, rng, sorted({e.user for e in events}), 10)
    insert(conn, app, new)
    events += new
    want = expected_cohort_retention(events, members, tz, interval, periods)
    assert conn.execute(COHORT_RETENTION, [app, cohort, interval, periods]).fetchall() == want, "live"

    if interval == "week":
        # the list's retention_rate is the week-1 rate (period 1 of 'week') at the refresh
        rows = conn.execute("SELECT user_count, retention_rate FROM analytics.fn_refresh_cohort(%s, %s)",
                            [app, cohort]).fetchone()
        assert rows == (len(members), expected_cohort_retention(events, members, tz, "week", 2)[1][4])


def test_one_day_cohort_and_empty_cohort(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "ret").identifier
    events = random_events(41, users=20)
    insert(conn, app, events)
    refresh(conn)
    refresh_summary(conn, app)
    days = local_days(events, "UTC")
    day = sorted(min(ds) for ds in days.values())[len(days) // 2]
    members = {u for u, ds in days.items() if min(ds) == day}
    cohort = conn.execute("SELECT identifier FROM analytics.fn_create_cohort(%s, 'One day', %s)",
                          [app, Jsonb({"first_seen": {"from": day.isoformat(), "to": day.isoformat()}})]).fetchone()[0]
    got = conn.execute(COHORT_RETENTION, [app, cohort, "week", 8]).fetchall()
    assert got == expected_cohort_retention(events, members, "UTC", "week", 8)
    assert all(r[1] == day + timedelta(days=7 * r[0]) for r in got), "one first day: period_start is each period's"

    empty = conn.execute("SELECT identifier FROM analytics.fn_create_cohort(%s, 'Nobody', %s)",
                         [app, Jsonb({"event": "no-such-event"})]).fetchone()[0]
    assert conn.execute(COHORT_RETENTION, [app, empty, "day", 8]).fetchall() == []
    start = today("UTC") - timedelta(days=400)
    rows = conn.execute(RETENTION, [app, start, start + timedelta(days=2), "day", 2, "first_time"]).fetchall()
    assert rows == [(start + timedelta(days=c), 0, k, 0, None) for c in range(3) for k in range(2)]


def test_errors(conn, app):
    def fails(sql: str, params: list, state: str, hint: str) -> None:
        with pytest.raises(psycopg.Error) as err:
            conn.execute(sql, params)
        assert err.value.sqlstate == state and hint in err.value.diag.message_hint, err.value.diag.message_primary

    d = date(2026, 1, 1)
    fails(RETENTION, ["nope", d, d, "week", 8, "first_time"], "P0002", "identifier")
    fails(RETENTION, [app.identifier, d, d, "year", 8, "first_time"], "22023", "day, week or month")
    fails(RETENTION, [app.identifier, d, d, "week", 8, "sometimes"], "22023", "first_time")
    fails(RETENTION, [app.identifier, None, d, "week", 8, "first_time"], "22023", "both dates")
    fails(RETENTION, [app.identifier, d, date(2025, 1, 1), "week", 8, "first_time"], "22023", "Swap")
    fails(RETENTION, [app.identifier, d, d, "week", 0, "first_time"], "22023", "1 to 400")
    fails(RETENTION, [app.identifier, d, d, "week", 401, "first_time"], "22023", "1 to 400")
    fails(RETENTION, [app.identifier, date(2020, 1, 1), d, "day", 8, "first_time"], "22023", "shorter range")
    fails(COHORT_RETENTION, [app.identifier, "missing", "day", 8], "P0002", "fn_list_cohorts")
    conn.execute("SELECT * FROM analytics.fn_create_cohort(%s, 'All', '{}', 'all')", [app.identifier])
    fails(COHORT_RETENTION, [app.identifier, "all", "fortnight", 8], "22023", "day, week or month")
    fails(COHORT_RETENTION, [app.identifier, "all", "day", 0], "22023", "1 to 400")
    fails("SELECT * FROM analytics.fn_refresh_user_activity(%s)", ["nope"], "P0002", "identifier")
