"""The SQL functions behind the server's operations, called directly: live metrics, key
verification, rotation with a grace period, revocation and the app listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import create_app
from tests.helpers import track


def live(conn, app: str, interval: int) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM analytics.fn_live_metrics(%s, %s)", [app, interval], prepare=False).fetchone()


def test_live_metrics_counts_the_window_only(conn, app):
    now = datetime.now(UTC)

    def at(seconds_ago: float) -> str:
        return (now - timedelta(seconds=seconds_ago)).isoformat()

    result = track(conn, app, [
        {"type": "page_view", "user_id": "u1", "session_id": "s1", "timestamp": at(5)},
        {"type": "screen_view", "anonymous_id": "a1", "session_id": "s2", "timestamp": at(4)},
        {"type": "screen_view", "anonymous_id": "u1", "session_id": "s2", "timestamp": at(4)},  # user key u1 again
        {"type": "page_view", "user_id": "u2", "timestamp": at(3)},
        {"type": "crash", "user_id": "u1", "session_id": "s1", "timestamp": at(2)},
        {"type": "app_crash", "user_id": "u3", "session_id": "s3", "timestamp": at(1)},
        {"type": "button_click", "user_id": "u1", "session_id": "s1", "timestamp": at(40 * 60)},  # s1 began 40 min ago
        {"type": "page_view", "user_id": "u9", "session_id": "s9", "timestamp": at(120)},  # outside a 60 s window
    ])
    assert result["accepted"] == 8
    m = live(conn, "app123", 60)
    # users are coalesce(user_id, anonymous_id), as in the rollups: u1, a1, u2, u3
    assert (m["pageviews"], m["unique_users"], m["crash_count"]) == (4, 4, 2)
    assert m["window_end"] - m["window_start"] == timedelta(seconds=60)
    # sessions active in the window: s1 (40 min incl. its earlier event), s2 and s3 (0 s)
    assert m["avg_session_duration"] == pytest.approx((40 * 60 - 2) / 3, abs=1)
    wider = live(conn, app.id, 3600)
    assert (wider["pageviews"], wider["unique_users"]) == (5, 5)


def test_live_metrics_of_a_quiet_app_and_bad_arguments(conn, app):
    m = live(conn, "app123", 1)
    assert (m["pageviews"], m["unique_users"], m["crash_count"], m["avg_session_duration"]) == (0, 0, 0, None)
    for interval in (0, 3601, None):
        with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
            live(conn, "app123", interval)
        assert caught.value.diag.message_hint == "Use an interval from 1 to 3600 seconds."
    with pytest.raises(psycopg.errors.NoDataFound):
        live(conn, "nope", 60)


def authenticate(conn, app: str, key: str | None, kind: str):
    # prepare=False: the WASM engine keeps prepared statements across connections, so a
    # statement psycopg prepares here would collide with the next test's.
    return conn.execute("SELECT app_id::text, identifier FROM analytics.fn_authenticate_key(%s, %s, %s)",
                        [app, key, kind], prepare=False).fetchone()


def test_authenticate_key_names_the_app_or_refuses_alike(conn, app):
    other = create_app(conn, "other-app")
    assert authenticate(conn, "app123", app.read_key, "read") == (app.id, "app123")
    assert authenticate(conn, app.id.upper(), app.write_key, "write") == (app.id, "app123")
    messages = set()
    for ref, key in (("app123", None), ("app123", "mar_nope"), ("app123", other.read_key), ("nope", app.read_key)):
        with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as caught:
            authenticate(conn, ref, key, "read")
        messages.add(caught.value.diag.message_primary)
    assert messages == {"API key is not valid for this app"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        authenticate(conn, "app123", app.write_key, "read")


def test_rotation_retires_old_keys_after_the_grace_period(conn, app):
    row = conn.execute("SELECT key_id, kind, api_key, previous_keys_expire_at"
                       " FROM analytics.fn_rotate_api_key('app123', 'read', 3600)").fetchone()
    _key_id, kind, new_key, expires = row
    assert kind == "read" and new_key.startswith("mar_")
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    for key in (app.read_key, new_key):  # both work during the grace period
        assert authenticate(conn, "app123", key, "read")[1] == "app123"
    # a second rotation with no grace retires every other read key now, the first new one too
    newest = conn.execute("SELECT api_key FROM analytics.fn_rotate_api_key('app123', 'read')").fetchone()[0]
    for key in (app.read_key, new_key):
        with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification):
            authenticate(conn, "app123", key, "read")
    assert authenticate(conn, "app123", newest, "read")[1] == "app123"
    assert authenticate(conn, "app123", app.write_key, "write")[1] == "app123"  # the other kind is untouched
    for args, error in ((("nope", "read", 0), psycopg.errors.NoDataFound),
                        (("app123", "admin", 0), psycopg.errors.InvalidParameterValue),
                        (("app123", "read", -1), psycopg.errors.InvalidParameterValue)):
        with pytest.raises(error):
            conn.execute("SELECT * FROM analytics.fn_rotate_api_key(%s, %s, %s)", args)


def test_revoking_a_key_in_its_grace_period_revokes_it_now(conn, app):
    conn.execute("SELECT analytics.fn_rotate_api_key('app123', 'write', 3600)")
    key_id = conn.execute("SELECT id FROM analytics.tb_api_key WHERE key_prefix = left(%s, 12)",
                          [app.write_key]).fetchone()[0]
    revoked_at = conn.execute("SELECT analytics.fn_revoke_api_key(%s)", [key_id]).fetchone()[0]
    assert revoked_at <= datetime.now(UTC)
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification):
        track(conn, app, [{"type": "x"}])
    assert conn.execute("SELECT analytics.fn_revoke_api_key(%s)", [key_id]).fetchone()[0] == revoked_at


def test_list_apps(conn, app):
    create_app(conn, "other-app")
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cur.execute("SELECT * FROM analytics.fn_list_apps()").fetchall()
    assert [r["identifier"] for r in rows] == ["app123", "other-app"]
    keys = rows[0]["api_keys"]
    assert [k["kind"] for k in keys] == ["write", "read"] and keys[0]["key_prefix"] == app.write_key[:12]
    assert "key_hash" not in keys[0]
    assert [r["identifier"] for r in cur.execute("SELECT * FROM analytics.fn_list_apps(NULL, 1, 1)")] == ["other-app"]
    assert cur.execute("SELECT * FROM analytics.fn_list_apps(%s)", [app.id]).fetchone()["identifier"] == "app123"
    assert cur.execute("SELECT * FROM analytics.fn_list_apps('nope')").fetchall() == []
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        cur.execute("SELECT * FROM analytics.fn_list_apps(NULL, 1001)")
