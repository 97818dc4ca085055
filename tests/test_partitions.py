"""Day partitions of analytics.tb_event on the PostgreSQL engine.

Migrations create partitions around today; an event for an older day (still within retention)
lands in the default partition until analytics.fn_create_partitions() moves it into a
partition of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.conftest import create_app
from tests.ingest_support import send, stored_counts

pytestmark = pytest.mark.pg_only

DEFAULT = "analytics.tb_event_default"


def day_partition(moment: datetime) -> str:
    return f"analytics.tb_event_p{moment.astimezone(timezone.utc):%Y%m%d}"


def partition_of_each_event(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT client_event_id, tableoid::regclass::text FROM analytics.tb_event").fetchall()
    return dict(rows)


def create_partitions(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT analytics.fn_create_partitions()").fetchone()[0]


@pytest.fixture
def pg_conn(db):
    with db.connect() as conn:
        yield conn


def test_events_are_stored_in_day_partitions(pg_conn):
    app = create_app(pg_conn)
    now = datetime.now(timezone.utc)
    send(pg_conn, app, [{"type": "t", "event_id": "now"}, {"type": "t", "event_id": "yesterday",
                                                           "timestamp": (now - timedelta(days=1)).isoformat()}])
    assert partition_of_each_event(pg_conn) == {
        "now": day_partition(now),
        "yesterday": day_partition(now - timedelta(days=1)),
    }


def test_old_event_moves_from_default_into_its_own_partition(pg_conn):
    app = create_app(pg_conn)
    now = datetime.now(timezone.utc)
    old, older = now - timedelta(days=10), now - timedelta(days=40)
    batch = [
        {"type": "t", "event_id": "old", "timestamp": old.isoformat()},
        {"type": "t", "event_id": "old-2", "timestamp": old.isoformat(), "label": "same time, other id"},
        {"type": "t", "event_id": "older", "timestamp": older.isoformat()},
        {"type": "t", "event_id": "now"},
    ]
    assert send(pg_conn, app, batch)["accepted"] == 4
    strays = {"old": DEFAULT, "old-2": DEFAULT, "older": DEFAULT}
    assert partition_of_each_event(pg_conn) == {**strays, "now": day_partition(now)}
    counts = stored_counts(pg_conn)

    assert create_partitions(pg_conn) >= 2  # one per stray day (plus any new day ahead after midnight)
    moved = {"old": day_partition(old), "old-2": day_partition(old), "older": day_partition(older),
             "now": day_partition(now)}
    assert partition_of_each_event(pg_conn) == moved
    assert pg_conn.execute(f"SELECT count(*) FROM {DEFAULT}").fetchone()[0] == 0
    assert stored_counts(pg_conn) == counts

    assert create_partitions(pg_conn) == 0  # idempotent
    assert partition_of_each_event(pg_conn) == moved
    assert stored_counts(pg_conn) == counts

    # Exactly-once survives the move; a later event of that day goes straight to its partition.
    retry = send(pg_conn, app, [batch[0], {"type": "t", "event_id": "old-3", "timestamp": old.isoformat()}])
    assert (retry["accepted"], retry["duplicates"]) == (1, 1)
    assert partition_of_each_event(pg_conn)["old-3"] == day_partition(old)


def test_moved_rows_keep_every_column(pg_conn):
    app = create_app(pg_conn)
    old = (datetime.now(timezone.utc) - timedelta(days=12)).isoformat()
    event = {"type": "t", "event_id": "full", "timestamp": old, "user_id": "u", "session_id": "s", "path": "/p",
             "label": "l", "duration": 5, "device": {"os": "iOS"}, "metadata": {"k": [1, "v"]}}
    send(pg_conn, app, [event])
    query = "SELECT * FROM analytics.tb_event"
    before = pg_conn.execute(query).fetchall()
    create_partitions(pg_conn)
    assert pg_conn.execute(query).fetchall() == before
