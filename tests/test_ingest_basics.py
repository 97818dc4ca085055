"""fn_track_events: the seed's batch, partial acceptance, dedup, context and clock skew."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.helpers import count_events, events_of, track

SEED_BATCH = [
    {"type": "page_view", "path": "/home", "metadata": {"referrer": "/search"}},
    {"type": "button_click", "label": "Sign Up", "metadata": {"screen": "onboarding"}},
    {"type": "screen_time", "duration": 45000},
]


def test_seed_batch_keeps_every_field(conn, app):
    result = track(conn, app, SEED_BATCH)
    assert result == {"accepted": 3, "duplicates": 0, "clamped": 0, "rejected": []}
    rows = events_of(conn, app)
    assert [r["event_type"] for r in rows] == ["page_view", "button_click", "screen_time"]
    assert rows[0]["path"] == "/home" and rows[0]["metadata"] == {"referrer": "/search"}
    assert rows[1]["label"] == "Sign Up" and rows[1]["metadata"] == {"screen": "onboarding"}
    assert rows[2]["duration_ms"] == 45000
    assert all(r["client_event_id"] is None and r["id"] is not None for r in rows)
    assert len({r["id"] for r in rows}) == 3


def test_app_can_be_named_by_uuid(conn, app):
    assert track(conn, app, [{"type": "a"}], app_ref=app.id.upper())["accepted"] == 1


def test_retry_is_counted_as_duplicate(conn, app):
    batch = [{"type": "purchase", "event_id": "order-1"}, {"type": "purchase", "event_id": "9b2f6c1e-4d6a-4c47-9a53-2f4b8d0c7e11"}]
    assert track(conn, app, batch)["accepted"] == 2
    now = datetime.now(timezone.utc)
    again = track(conn, app, batch, sent_at=now + timedelta(minutes=5))
    assert again == {"accepted": 0, "duplicates": 2, "clamped": 0, "rejected": []}
    assert count_events(conn) == 2
    rows = events_of(conn, app)
    assert str(rows[1]["id"]) == "9b2f6c1e-4d6a-4c47-9a53-2f4b8d0c7e11"



@pytest.mark.parametrize("taken", ["first", "others"])
def test_batch_partly_stored_before_stores_only_the_new_events(conn, app, taken):
    # fn_track_events sends a batch whose FIRST event is already stored straight to the general
    # path (a likely retry); both shapes of overlap must store exactly the new events
    upper = "5D8A4C1E-2B3F-4A6D-9E7C-1F2A3B4C5D6E"  # a uuid key in another case is the same key
    old = [{"type": "old", "event_id": upper if taken == "first" else "b-old"}]
    if taken == "others":
        old.append({"type": "old", "event_id": upper})
    assert track(conn, app, old)["accepted"] == len(old)
    new = [{"type": "new", "event_id": "n-1"}, {"type": "new"}, {"type": "new", "event_id": "n-2"}]
    batch = [{**old[0], "event_id": old[0]["event_id"].lower()}, *new] if taken == "first" else [new[0], *old, *new[1:]]
    result = track(conn, app, batch, sent_at=datetime.now(timezone.utc) + timedelta(minutes=1))
    assert result == {"accepted": 3, "duplicates": len(old), "clamped": 0, "rejected": []}
    assert sorted(r["event_type"] for r in events_of(conn, app)) == ["new"] * 3 + ["old"] * len(old)
    assert track(conn, app, batch) == {"accepted": 1, "duplicates": len(batch) - 1, "clamped": 0, "rejected": []}

def test_same_id_twice_in_one_batch_stores_the_first(conn, app):
    result = track(conn, app, [{"type": "first", "event_id": "x"}, {"type": "second", "event_id": "x"}])
    assert (result["accepted"], result["duplicates"]) == (1, 1)
    assert [r["event_type"] for r in events_of(conn, app)] == ["first"]


def test_bad_event_does_not_block_the_batch(conn, app):
    result = track(conn, app, [{"type": "ok"}, {"type": ""}, 42, {"type": "fine", "user_id": {"a": 1}}])
    assert result["accepted"] == 1
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [
        (1, "invalid_field"),
        (2, "not_an_object"),
        (3, "invalid_field"),
    ]
    assert all('"' in r["message"] or "object" in r["message"] for r in result["rejected"])


def test_context_fills_gaps_and_event_values_win(conn, app):
    context = {"user_id": "ctx-user", "session_id": "ctx-session", "device": {"os": "iOS", "app_version": "1.0"}}
    track(conn, app, [{"type": "a"}, {"type": "b", "user_id": "own", "device": {"app_version": "2.0"}}], context=context)
    first, second = events_of(conn, app)
    assert (first["user_id"], first["session_id"], first["device"]) == ("ctx-user", "ctx-session", {"os": "iOS", "app_version": "1.0"})
    assert (second["user_id"], second["device"]) == ("own", {"os": "iOS", "app_version": "2.0"})


def test_clock_skew_is_corrected_with_sent_at(conn, app):
    # The device clock runs 2 hours fast: the event happened 10 minutes before sending.
    device_now = datetime.now(timezone.utc) + timedelta(hours=2)
    event_time = device_now - timedelta(minutes=10)
    track(conn, app, [{"type": "a", "timestamp": event_time.isoformat()}], sent_at=device_now)
    (row,) = events_of(conn, app)
    assert abs((row["received_at"] - row["timestamp"]) - timedelta(minutes=10)) < timedelta(seconds=1)
    assert row["timestamp_clamped"] is False


def test_far_future_event_is_clamped_and_flagged(conn, app):
    result = track(conn, app, [{"type": "a", "timestamp": "2999-01-01T00:00:00Z"}])
    assert (result["accepted"], result["clamped"]) == (1, 1)
    (row,) = events_of(conn, app)
    assert row["timestamp"] == row["received_at"] and row["timestamp_clamped"] is True


def test_event_older_than_retention_is_rejected(conn, app):
    old = (datetime.now(timezone.utc) - timedelta(days=91)).isoformat()
    result = track(conn, app, [{"type": "a", "timestamp": old}, {"type": "b", "timestamp": 1_700_000_000_000}])
    assert result["accepted"] == 0
    assert [r["code"] for r in result["rejected"]] == ["too_old", "too_old"]
    assert "retention of 90 days" in result["rejected"][0]["message"]


@pytest.mark.parametrize("key_kind", ["wrong", "read", "revoked", "other-app"])
def test_bad_keys_are_refused(conn, app, key_kind):
    from tests.conftest import create_app

    key = {"wrong": "maw_" + "0" * 64, "read": app.read_key}.get(key_kind, app.write_key)
    if key_kind == "revoked":
        conn.execute(
            "SELECT analytics.fn_revoke_api_key(id) FROM analytics.tb_api_key WHERE kind = 'write'"
        )
    if key_kind == "other-app":
        key = create_app(conn, "other").write_key
    expected = psycopg.errors.InsufficientPrivilege if key_kind == "read" else psycopg.errors.InvalidAuthorizationSpecification
    with pytest.raises(expected) as info:
        track(conn, app, [{"type": "a"}], key=key)
    assert info.value.diag.message_hint
    assert count_events(conn) == 0
