"""Per-user deletion and export (analytics.fn_delete_user / prc_delete_user / fn_export_user) on
both engines: exactly the person's events go, every rollup equals the raw aggregation
afterwards, per-user rows of days past retention go too, cohorts and the audit log follow."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from tests.conftest import create_app
from tests.helpers import track
from tests.test_rollups import ROLLUPS, mismatches, refresh, rollups  # noqa: F401 - rollups is a fixture

NOW = datetime.now(timezone.utc)
DELETE = "CALL analytics.prc_delete_user(%s, %s, %s::text[], %s)"
EXPORT = "SELECT analytics.fn_export_user(%s, %s, %s::text[])::text"


def user_key(event: dict[str, Any]) -> str | None:
    return event.get("user_id") or event.get("anonymous_id")


def population(seed: int, n: int, *, min_days: float = 0, max_days: float = 6) -> list[dict[str, Any]]:
    """Events of a few people: u1 signed in on device dev1, which also shows anonymous (before
    sign-in) and u2 (a second account on the same device); dev2 never signed in; some events
    have no user at all. Sessions are shared between people now and then."""
    rng = random.Random(seed)
    people = [("u1", "dev1"), (None, "dev1"), ("u2", "dev1"), ("u2", None), (None, "dev2"), ("u3", "dev3"),
              (None, None)]
    out = []
    for i in range(n):
        user_id, anonymous_id = rng.choice(people)
        event: dict[str, Any] = {
            "type": rng.choice(["page_view", "button_click", "crash", "screen_time"]),
            "event_id": f"e-{seed}-{i}",
            "timestamp": (NOW - timedelta(days=rng.uniform(min_days, max_days))).isoformat(),
            "session_id": rng.choice([f"s-{user_id or anonymous_id}", "s-shared", None]),
            "device": {"os": rng.choice(["iOS", "Android"])},
            "metadata": {"n": i, "text": "line\nbreak \"quoted\""},
        }
        if user_id:
            event["user_id"] = user_id
        if anonymous_id:
            event["anonymous_id"] = anonymous_id
        if event["type"] == "screen_time":
            event["duration"] = rng.randint(0, 90_000)
        out.append(event)
    return out


def stored_keys(conn: psycopg.Connection, app: Any) -> list[tuple[str, str | None]]:
    return conn.execute(
        "SELECT e.client_event_id, coalesce(e.user_id, e.anonymous_id) FROM analytics.tb_event e"
        " JOIN analytics.tb_app a ON a.pk_app = e.fk_app WHERE a.identifier = %s ORDER BY 1",
        [app.identifier],
    ).fetchall()


def user_days(conn: psycopg.Connection, app: Any, keys: list[str]) -> int:
    return conn.execute(
        "SELECT count(*) FROM analytics.ca_user_daily u JOIN analytics.tb_app a ON a.pk_app = u.fk_app"
        " WHERE a.identifier = %s AND u.user_key = ANY (%s)",
        [app.identifier, keys],
    ).fetchone()[0]


def delete_user(conn: psycopg.Connection, app: Any, user: str, anonymous_ids: list[str] | None = None,
                requested_by: str | None = "test") -> dict[str, Any]:
    cur = conn.execute(DELETE, [app.identifier, user, anonymous_ids, requested_by])
    return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))


def export(conn: psycopg.Connection, app_ref: str, user: str, anonymous_ids: list[str] | None = None) -> list[str]:
    """Through a server-side cursor, in small batches, as a client streaming it would."""
    with conn.transaction(), conn.cursor(name="export") as cur:
        cur.itersize = 7
        cur.execute(EXPORT, [app_ref, user, anonymous_ids])
        return [line for (line,) in cur]


def test_delete_removes_exactly_the_person_and_rollups_follow(rollups, app, engine_name):  # noqa: F811
    conn = rollups
    other = create_app(conn, "other-app")
    events = population(1, 160)
    assert track(conn, app, events)["accepted"] == len(events)
    assert track(conn, other, population(2, 40))["accepted"] == 40
    refresh(conn)  # most buckets materialized: the deletion must correct them, not just live data
    keys = ["u1", "dev1"]
    expected_days = user_days(conn, app, keys)
    other_before = stored_keys(conn, other)
    assert expected_days > 0 and any(k == "u1" for _, k in other_before)

    report = delete_user(conn, app, "u1", ["dev1"])

    gone = [e for e in events if user_key(e) in keys]
    kept = sorted((e["event_id"], user_key(e)) for e in events if user_key(e) not in keys)
    assert stored_keys(conn, app) == kept
    assert any(e.get("user_id") == "u2" and e.get("anonymous_id") == "dev1" for e in events)  # kept: u2's
    assert stored_keys(conn, other) == other_before  # the same user id in another app is another person
    assert report["deleted_events"] == len(gone)
    assert report["deleted_user_days"] == expected_days
    assert report["oldest_event_at"] == min(datetime.fromisoformat(e["timestamp"]) for e in gone)
    assert user_days(conn, app, keys) == 0
    # PostgreSQL: right at once (the views aggregate invalidated buckets live); TimescaleDB: the
    # procedure has refreshed the continuous aggregates over the deleted range.
    assert mismatches(conn) == {}
    refresh(conn)
    assert mismatches(conn) == {}

    audit = conn.execute(
        "SELECT d.id, d.fk_app, d.requested_by, d.user_key_count, d.deleted_events, d.deleted_user_days,"
        " d.deleted_cohort_memberships, d.db_role, to_jsonb(d)::text FROM analytics_internal.tb_user_deletion d"
    ).fetchall()
    assert [a[:8] for a in audit] == [(report["deletion_id"], 1, "test", 2, len(gone), expected_days, 0, "postgres")]
    assert "u1" not in audit[0][8] and "dev1" not in audit[0][8]

    # Again: nothing left, zeros, and logged as well.
    again = delete_user(conn, app, "u1", ["dev1"])
    assert (again["deleted_events"], again["deleted_user_days"], again["oldest_event_at"]) == (0, 0, None)
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_user_deletion").fetchone()[0] == 2


def test_anonymous_person_alone_and_retries_stay_deleted(rollups, app, engine_name):  # noqa: F811
    conn = rollups
    events = population(3, 80)
    track(conn, app, events)
    refresh(conn)
    report = delete_user(conn, app, "dev2")  # a device that never signed in: its anonymous id
    assert report["deleted_events"] == sum(1 for e in events if user_key(e) == "dev2") > 0
    assert [k for _, k in stored_keys(conn, app)].count("dev2") == 0
    assert mismatches(conn) == {}
    # The SDK retries an old batch: the deleted events' ids are still known, so they stay out.
    retried = [e for e in events if user_key(e) == "dev2"]
    result = track(conn, app, retried)
    assert (result["accepted"], result["duplicates"]) == (0, len(retried))
    # New events of the same device are stored as usual.
    assert track(conn, app, [{"type": "page_view", "anonymous_id": "dev2"}])["accepted"] == 1


def drop_raw_events_before(conn: psycopg.Connection, engine: str, cutoff: datetime) -> None:
    """What retention does: raw events go, the rollups keep their materialized history."""
    if engine == "timescaledb":
        conn.execute("SELECT public.drop_chunks('analytics.tb_event', older_than => %s)", [cutoff])
    else:
        # Partitions are detached and dropped, which fires no trigger: no invalidation.
        conn.execute('DELETE FROM analytics.tb_event WHERE "timestamp" < %s', [cutoff])
        conn.execute("DELETE FROM analytics_internal.tb_rollup_invalidation")


def refresh_since(conn: psycopg.Connection, engine: str, start: datetime) -> None:
    """A refresh that leaves the days before `start` alone. On TimescaleDB drop_chunks logs the
    dropped range as invalidated, and a refresh over it would empty those days of every
    continuous aggregate: retention must never refresh before its horizon (docs/lifecycle.md)."""
    if engine == "postgresql":
        refresh(conn)
        return
    for name in ROLLUPS:  # in refresh order
        conn.execute("CALL public.refresh_continuous_aggregate(%s::regclass, %s, now() - interval '1 hour')",
                     [f"analytics.{name}", start])


def test_per_user_rows_past_retention_go_and_anonymous_counts_stay(rollups, app, engine_name):  # noqa: F811
    conn = rollups
    old = population(4, 120, min_days=10, max_days=14)
    recent = population(5, 60, min_days=0.1, max_days=3)
    track(conn, app, old + recent)
    refresh(conn)
    cutoff = (NOW - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    drop_raw_events_before(conn, engine_name, cutoff)
    assert conn.execute('SELECT min("timestamp") FROM analytics.tb_event').fetchone()[0] >= cutoff

    def old_rows(sql: str) -> list[tuple]:
        return sorted(conn.execute(sql + " WHERE bucket < %s", [cutoff]).fetchall())

    users_sql = "SELECT bucket, user_key, event_count FROM analytics.ca_user_daily"
    sessions_sql = "SELECT bucket, session_id, user_key FROM analytics.ca_session_hourly"
    counts_sql = "SELECT bucket, event_type, os, event_count FROM analytics.ca_event_daily"
    old_users, old_sessions, old_counts = old_rows(users_sql), old_rows(sessions_sql), old_rows(counts_sql)
    assert any(r[1] == "u1" for r in old_users) and any(r[2] == "u1" for r in old_sessions)
    # The per-day rollups hold no user key; past retention they must agree with the per-user rows.
    days_sql = "SELECT bucket, users FROM analytics.ca_app_daily"
    days_from_users = ("SELECT bucket, count(*) FROM analytics.ca_user_daily WHERE bucket < %s GROUP BY bucket")
    session_days_sql = "SELECT bucket, sessions, session_seconds FROM analytics.ca_app_session_daily"
    session_days_from_sessions = (
        "SELECT bucket, count(*), sum(extract(epoch FROM ended_at - started_at)) FROM analytics.ca_session_daily"
        " WHERE bucket < %s GROUP BY bucket")

    hours_sql = "SELECT bucket, users FROM analytics.ca_app_hourly"
    hours_from_users = ("SELECT u.bucket + make_interval(hours => h), count(*) FROM analytics.ca_user_daily u"
                        " CROSS JOIN generate_series(0, 23) AS h WHERE u.bucket < %s AND u.active_hours & (1 << h) <> 0"
                        " GROUP BY 1")

    session_hours_sql = "SELECT bucket, sessions, session_seconds FROM analytics.ca_app_session_hourly"
    session_hours_from_sessions = (
        "SELECT bucket, count(*), sum(extract(epoch FROM ended_at - started_at)) FROM analytics.ca_session_hourly"
        " WHERE bucket < %s GROUP BY bucket")

    def per_day_rollups() -> tuple[list[tuple], ...]:
        return old_rows(days_sql), old_rows(session_days_sql), old_rows(hours_sql), old_rows(session_hours_sql)

    def expected_per_day() -> tuple[list[tuple], ...]:
        return (sorted(conn.execute(days_from_users, [cutoff]).fetchall()),
                sorted(conn.execute(session_days_from_sessions, [cutoff]).fetchall()),
                sorted(conn.execute(hours_from_users, [cutoff]).fetchall()),
                sorted(conn.execute(session_hours_from_sessions, [cutoff]).fetchall()))

    before_days = per_day_rollups()
    assert before_days == expected_per_day() and all(before_days)

    report = delete_user(conn, app, "u1")

    assert report["deleted_events"] == sum(1 for e in recent if user_key(e) == "u1")
    assert report["deleted_user_days"] == len({(r[0], r[1]) for r in old_users if r[1] == "u1"}) + len(
        {datetime.fromisoformat(e["timestamp"]).date() for e in recent if user_key(e) == "u1"})
    # Past retention: the person's user-days and sessions are gone, everyone else's stay...
    assert old_rows(users_sql) == [r for r in old_users if r[1] != "u1"]
    assert old_rows(sessions_sql) == [r for r in old_sessions if r[2] != "u1"]
    # ...and the anonymous counts, which cannot be recomputed, are as they were (documented).
    assert old_rows(counts_sql) == old_counts
    # The per-day users and sessions, and the per-hour users, past retention are lowered by the
    # person's share.
    assert per_day_rollups() == expected_per_day() != before_days
    refresh_since(conn, engine_name, cutoff)
    assert old_rows(users_sql) == [r for r in old_users if r[1] != "u1"]
    assert per_day_rollups() == expected_per_day()
    assert old_rows(counts_sql) == old_counts
    # Within retention every rollup equals the raw events.
    for name, (columns, raw) in ROLLUPS.items():
        got = conn.execute(f"SELECT {columns} FROM analytics.{name} WHERE bucket >= %s", [cutoff]).fetchall()
        want = conn.execute(f"SELECT * FROM ({raw}) AS r(bucket) WHERE r.bucket >= %s", [cutoff]).fetchall()
        assert sorted(got) == sorted(want), name


def test_cohort_memberships_are_removed(rollups, app):  # noqa: F811
    conn = rollups
    track(conn, app, population(6, 40))
    other = create_app(conn, "other-app")
    cohorts = []
    for a, ident, members in [(app, "c1", ["u1", "u2", "dev1"]), (app, "c2", ["u3"]), (other, "c3", ["u1"])]:
        pk = conn.execute(
            "INSERT INTO analytics.tb_cohort (identifier, fk_app, name, user_count)"
            " SELECT %s, pk_app, %s, %s FROM analytics.tb_app WHERE identifier = %s RETURNING pk_cohort",
            [ident, ident, len(members), a.identifier]).fetchone()[0]
        conn.execute("INSERT INTO analytics_internal.tb_cohort_member (fk_cohort, user_key)"
                     " SELECT %s, unnest(%s::text[])", [pk, members])
        cohorts.append(pk)

    report = delete_user(conn, app, "u1", ["dev1"])

    assert report["deleted_cohort_memberships"] == 2
    members = conn.execute(
        "SELECT c.identifier, c.user_count, array_agg(m.user_key ORDER BY m.user_key) FROM analytics.tb_cohort c"
        " JOIN analytics_internal.tb_cohort_member m ON m.fk_cohort = c.pk_cohort GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    assert members == [("c1", 1, ["u2"]), ("c2", 1, ["u3"]), ("c3", 1, ["u1"])]


@pytest.mark.parametrize(
    ("args", "sqlstate", "hint"),
    [
        (("nope", "u1", None, None), "P0002", "identifier"),
        (("app123", "", None, None), "22023", "user_id"),
        (("app123", None, None, None), "22023", "user_id"),
        (("app123", "x" * 257, None, None), "22023", "user_id"),
        (("app123", "u1", [""], None), "22023", "empty"),
        (("app123", "u1", [f"d{i}" for i in range(101)], None), "22023", "Split"),
        (("app123", "u1", None, "r" * 201), "22023", "ticket"),
    ],
)
def test_bad_arguments_delete_nothing(conn, app, args, sqlstate, hint):
    track(conn, app, population(7, 20))
    before = stored_keys(conn, app)
    with pytest.raises(psycopg.Error) as err:
        conn.execute(DELETE, list(args))
    assert err.value.sqlstate == sqlstate and hint in err.value.diag.message_hint
    if args[3] is None:
        with pytest.raises(psycopg.Error) as err:
            export(conn, *args[:3])
        assert err.value.sqlstate == sqlstate
    assert stored_keys(conn, app) == before
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_user_deletion").fetchone()[0] == 0


def test_export_returns_every_event_of_the_person_as_json(conn, app):
    other = create_app(conn, "other-app")
    events = population(8, 90)
    track(conn, app, events)
    track(conn, other, population(9, 20))
    stored = {r[0]: r[1:] for r in conn.execute(
        "SELECT e.client_event_id, e.id::text FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
        " WHERE a.identifier = %s", [app.identifier]).fetchall()}

    lines = export(conn, app.id, "u1", ["dev1"])  # the app by uuid this time

    mine = [e for e in events if user_key(e) in ("u1", "dev1")]
    assert len(lines) == len(mine) > 7  # more than one batch of the cursor
    got = [json.loads(line) for line in lines]
    assert all("\n" not in line for line in lines)
    times = [datetime.fromisoformat(g["timestamp"]) for g in got]
    assert times == sorted(times)
    by_id = {e["event_id"]: e for e in mine}
    assert sorted(g["event_id"] for g in got) == sorted(by_id)
    for g in got:
        sent = by_id[g["event_id"]]
        assert g["id"] == stored[g["event_id"]][0]
        assert datetime.fromisoformat(g["timestamp"]) == datetime.fromisoformat(sent["timestamp"])
        assert g["timestamp"].endswith("+00:00")  # UTC whatever the session's time zone
        assert (g["type"], g["user_id"], g["anonymous_id"], g["session_id"], g["duration_ms"]) == (
            sent["type"], sent.get("user_id"), sent.get("anonymous_id"), sent.get("session_id"), sent.get("duration"))
        assert (g["device"], g["metadata"]) == (sent["device"], sent["metadata"])
        assert set(g) == {"id", "event_id", "type", "timestamp", "received_at", "timestamp_clamped", "user_id",
                          "anonymous_id", "session_id", "path", "label", "duration_ms", "device", "metadata"}
    # A user id alone: their signed-in events only, not the device's anonymous ones.
    assert len(export(conn, app.identifier, "u1")) == sum(1 for e in events if e.get("user_id") == "u1")
    assert export(conn, app.identifier, "nobody") == []


def test_procedure_in_a_transaction_block(conn, app, engine_name):
    track(conn, app, population(10, 30))
    before = stored_keys(conn, app)
    if engine_name == "timescaledb":
        # It must commit before refreshing: inside a transaction block it fails, deleting nothing.
        with pytest.raises(psycopg.errors.InvalidTransactionTermination), conn.transaction():
            conn.execute(DELETE, [app.identifier, "u1", None, None])
        assert stored_keys(conn, app) == before
    else:
        # PostgreSQL needs no refresh: the procedure is just the function, and rolls back with its caller.
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute(DELETE, [app.identifier, "u1", None, None])
            assert [k for _, k in stored_keys(conn, app)].count("u1") == 0
            raise RuntimeError("roll back")
        assert stored_keys(conn, app) == before


def test_activity_summary_forgets_the_person(rollups, app):  # noqa: F811
    """The per-user summary behind fn_retention: the person's row goes at once, and the next
    refresh leaves the summary as a rebuild from scratch would make it."""
    conn = rollups
    track(conn, app, population(13, 150, min_days=1.5, max_days=12))
    refresh(conn)
    conn.execute("SELECT * FROM analytics.fn_refresh_user_activity('app123')").fetchall()
    summary = ("SELECT user_key, first_seen_at, days::text, weeks::text, months::text"
               " FROM analytics_internal.tb_user_activity")
    assert {"u1", "dev1"} <= {r[0] for r in conn.execute(summary).fetchall()}

    delete_user(conn, app, "u1", ["dev1"])
    assert not {"u1", "dev1"} & {r[0] for r in conn.execute(summary).fetchall()}
    conn.execute("SELECT * FROM analytics.fn_refresh_user_activity('app123')").fetchall()
    refreshed = sorted(conn.execute(summary).fetchall())
    assert not {"u1", "dev1"} & {r[0] for r in refreshed}
    for table in ("tb_user_activity", "tb_user_activity_bucket", "tb_user_activity_state"):
        conn.execute(f"DELETE FROM analytics_internal.{table}")
    conn.execute("SELECT * FROM analytics.fn_refresh_user_activity('app123')").fetchall()
    assert sorted(conn.execute(summary).fetchall()) == refreshed
