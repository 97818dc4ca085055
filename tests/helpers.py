"""Small helpers the tests share: calling fn_track_events and reading events back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb

TRACK = (
    "SELECT accepted, duplicates, clamped, rejected FROM analytics.fn_track_events("
    "%(app)s, %(key)s, %(events)s, %(sent_at)s, %(context)s)"
)


def track(
    conn: psycopg.Connection,
    app: Any,
    events: Any,
    *,
    sent_at: datetime | str | None = None,
    context: dict | None = None,
    key: str | None = None,
    app_ref: str | None = None,
) -> dict[str, Any]:
    """Send one batch; returns {accepted, duplicates, clamped, rejected}."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            TRACK,
            {
                "app": app_ref if app_ref is not None else app.identifier,
                "key": key if key is not None else app.write_key,
                "events": Json(events),
                "sent_at": sent_at,
                "context": Jsonb(context) if context is not None else None,
            },
        )
        return cur.fetchone()


def events_of(conn: psycopg.Connection, app: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT e.* FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
            " WHERE a.identifier = %s ORDER BY e.pk_event",
            [app.identifier],
        )
        return cur.fetchall()


def count_events(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0]
