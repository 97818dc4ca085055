"""Helpers for the fn_track_events test files (validation, concurrency, partitions).

`send` is like tests.helpers.track, but it controls the exact JSON text of the batch: raw UTF-8
or \\u-escaped, lone surrogates written as escapes (Python strings may hold them), SQL NULL, or
a hand-written JSON text (`Raw`). It also lets a test pass NULL for the app or key.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb

TRACK_SQL = (
    "SELECT accepted, duplicates, clamped, rejected FROM analytics.fn_track_events("
    "%(app)s, %(key)s, %(events)s, %(sent_at)s, %(context)s)"
)

_DEFAULT = object()
SQL_NULL = object()  # pass as `events` to send SQL NULL instead of a JSON value
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Raw(str):
    """A JSON text sent exactly as written (for inputs Python's json module cannot produce)."""


def dumps(obj: Any, *, ascii_only: bool = False) -> str:
    """JSON text of obj; surrogate code points in Python strings become \\uXXXX escapes.

    With ascii_only every non-ASCII character is escaped (astral ones as surrogate pairs), as
    many SDKs do; otherwise the text is raw UTF-8. "\\ud83d\\ude00" in a Python string (two
    surrogate code points) is therefore written as a valid escaped pair.
    """
    text = json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def as_stored(text: str) -> str:
    """What the database stores for a Python string: surrogate pairs joined into one character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def _json_param(value: Any, *, binary: bool, ascii_only: bool = False) -> Any:
    if value is SQL_NULL:
        return None
    text = value if isinstance(value, Raw) else dumps(value, ascii_only=ascii_only)
    wrapper = Jsonb if binary else Json
    return wrapper(text, dumps=lambda t: t)


def send(
    conn: psycopg.Connection,
    app: Any,
    events: Any,
    *,
    sent_at: datetime | str | None = None,
    context: Any = None,
    key: Any = _DEFAULT,
    app_ref: Any = _DEFAULT,
    ascii_only: bool = False,
) -> dict[str, Any]:
    """Call fn_track_events once; returns {accepted, duplicates, clamped, rejected}."""
    params = {
        "app": app.identifier if app_ref is _DEFAULT else app_ref,
        "key": app.write_key if key is _DEFAULT else key,
        "events": _json_param(events, binary=False, ascii_only=ascii_only),
        "sent_at": sent_at,
        "context": None if context is None else _json_param(context, binary=True),
    }
    with conn.cursor(row_factory=dict_row) as cur:
        # Never prepared: the WASM engine's single backend would keep the statement after the
        # connection closes, and the next connection's first prepared statement would clash.
        cur.execute(TRACK_SQL, params, prepare=False)
        return cur.fetchone()


def stored_counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(rows in analytics.tb_event, rows in analytics_internal.tb_event_key)."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM analytics.tb_event),"
        " (SELECT count(*) FROM analytics_internal.tb_event_key)"
    ).fetchone()


def assert_refused(
    conn: psycopg.Connection,
    app: Any,
    error: type[psycopg.Error],
    events: Any,
    *,
    mentions: tuple[str, ...] = (),
    count: bool = True,
    label: str = "the batch",
    **kwargs: Any,
) -> psycopg.Error:
    """The whole batch fails with `error` and a HINT, and nothing at all is written.

    With count=False the caller checks the table counts itself (after many refusals)."""
    before = stored_counts(conn) if count else None
    try:
        send(conn, app, events, **kwargs)
    except error as exc:
        refusal = exc
    else:
        pytest.fail(f"{label} was accepted, expected SQLSTATE {error.sqlstate}")
    diag = refusal.diag
    assert diag.message_hint, f"{label}: {diag.sqlstate} {diag.message_primary!r} has no HINT"
    for text in mentions:
        assert text in diag.message_primary, label
    if count:
        assert stored_counts(conn) == before, label
    return refusal


def rows_by_case(conn: psycopg.Connection, app: Any) -> dict[str, dict[str, Any]]:
    """The stored events of an app, keyed by their metadata "case" marker."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT e.* FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
            " WHERE a.identifier = %s",
            [app.identifier],
        )
        rows = cur.fetchall()
    by_case = {row["metadata"].get("case"): row for row in rows}
    assert len(by_case) == len(rows), "two stored events carry the same case marker"
    return by_case


def rejected_pairs(result: dict[str, Any]) -> list[tuple[int, str]]:
    return [(r["index"], r["code"]) for r in result["rejected"]]


def assert_tables_intact(conn: psycopg.Connection) -> None:
    """The tables a hostile string might target are all still there."""
    names = ["analytics.tb_event", "analytics.tb_app", "analytics.tb_api_key", "analytics_internal.tb_event_key"]
    found = conn.execute("SELECT array_agg(to_regclass(n)::text) FROM unnest(%s::text[]) n", [names]).fetchone()[0]
    assert found == names
