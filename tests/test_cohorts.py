"""Cohorts on both engines: the JSON filter language (docs/analytics.md#cohort-filters) against an
independent Python evaluation on random users and events, hostile strings, every validation
error (SQLSTATE 22023 and the JSON path of the bad part in the HINT), and fn_create_cohort,
fn_refresh_cohort, fn_refresh_cohorts, fn_list_cohorts and fn_delete_cohort."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import create_app
from tests.test_rollups import refresh, rollups  # noqa: F401 - rollups is a fixture

UTC = timezone.utc
CREATE = ("SELECT id, identifier, name, filter, user_count, retention_rate, created_at, refreshed_at"
          " FROM analytics.fn_create_cohort(%s, %s, %s, %s)")


@dataclass(frozen=True)
class Ev:
    user: str
    ts: datetime
    type: str = "open"
    device: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def insert(conn: psycopg.Connection, app: str, events: list[Ev]) -> None:
    """Store events as fn_track_events would (device without nulls), without its checks."""
    conn.execute(
        """INSERT INTO analytics.tb_event (id, fk_app, event_type, "timestamp", user_id, device, metadata)
           SELECT gen_random_uuid(), a.pk_app, x.t, x.ts, x.u, x.d, x.m
           FROM analytics.tb_app a, unnest(%(t)s::text[], %(ts)s::timestamptz[], %(u)s::text[], %(d)s::jsonb[], %(m)s::jsonb[])
                AS x(t, ts, u, d, m)
           WHERE a.identifier = %(app)s""",
        {"app": app, "t": [e.type for e in events], "ts": [e.ts for e in events], "u": [e.user for e in events],
         "d": [Jsonb({k: v for k, v in e.device.items() if v is not None}) for e in events],
         "m": [Jsonb(e.metadata) for e in events]},
    )


def members(conn: psycopg.Connection, cohort_id: Any) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT m.user_key FROM analytics_internal.tb_cohort_member m JOIN analytics.tb_cohort c ON c.pk_cohort = m.fk_cohort"
        " WHERE c.id = %s", [cohort_id]).fetchall()}


def create(conn: psycopg.Connection, app: str, flt: Any, name: str = "Cohort", identifier: str | None = None) -> tuple:
    return conn.execute(CREATE, [app, name, Jsonb(flt) if flt is not None else None, identifier]).fetchone()


# --- the filter language, in Python ---------------------------------------------------------

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?")
OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
       "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


def version_key(text: str) -> tuple | None:
    m = re.match(r"[0-9]+(\.[0-9]+)*", text)
    if not m:
        return None
    parts = [int(p) for p in m.group(0).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def as_text(stored: Any) -> str | None:
    """A stored string, or a number as jsonb prints it."""
    if isinstance(stored, bool) or not isinstance(stored, (str, int, float)):
        return None
    return stored if isinstance(stored, str) else str(stored)


def compare(stored: Any, op: str, value: Any, version: bool) -> bool:
    if version:
        text = as_text(stored)
        key = version_key(text) if text is not None else None
        return key is not None and OPS[op](key, version_key(value))
    if isinstance(value, bool):
        return isinstance(stored, bool) and OPS[op](stored, value)
    if isinstance(value, str):
        text = as_text(stored)
        return text is not None and OPS[op](text.encode(), value.encode())
    if isinstance(stored, bool):
        return False
    if isinstance(stored, (int, float)):
        number = Decimal(str(stored))
    elif isinstance(stored, str) and NUMBER.fullmatch(stored):
        number = Decimal(stored)
    else:
        return False
    return OPS[op](number, Decimal(str(value)))


def in_window(node: dict, ts: datetime, tz: str, now: datetime) -> bool:
    local = ts.astimezone(ZoneInfo(tz)).date()
    if "within_days" in node and ts < now - timedelta(days=node["within_days"]):
        return False
    if "from" in node and local < date.fromisoformat(node["from"]):
        return False
    return not ("to" in node and local > date.fromisoformat(node["to"]))


def evaluate(node: dict, events: list[Ev], tz: str, now: datetime) -> set[str]:
    by_user: dict[str, list[Ev]] = defaultdict(list)
    for e in events:
        by_user[e.user].append(e)
    everyone = set(by_user)
    if not node:
        return everyone
    if "and" in node:
        return set.intersection(*(evaluate(n, events, tz, now) for n in node["and"]))
    if "or" in node:
        return set.union(*(evaluate(n, events, tz, now) for n in node["or"]))
    if "not" in node:
        return everyone - evaluate(node["not"], events, tz, now)
    if "event" in node:
        return {u for u, evs in by_user.items()
                if sum(1 for e in evs if e.type == node["event"] and in_window(node, e.ts, tz, now)) >= node.get("min_count", 1)}
    if "first_seen" in node:
        return {u for u, evs in by_user.items() if in_window(node["first_seen"], min(e.ts for e in evs), tz, now)}
    prop = node["property"]
    source, key = ("device", "app_version") if prop == "app_version" else prop.split(".", 1)
    version = key == "app_version" and source == "device"
    found = set()
    for u, evs in by_user.items():
        carrying = [e for e in evs if getattr(e, source).get(key) is not None and in_window(node, e.ts, tz, now)]
        if not carrying:
            continue
        last = getattr(max(carrying, key=lambda e: e.ts), source)[key]
        values = node["value"] if node["op"] == "in" else [node["value"]]
        if any(compare(last, "eq" if node["op"] == "in" else node["op"], v, version) for v in values):
            found.add(u)
    return found


# --- random data and filters ------------------------------------------------------------------

OS = ["iOS", "Android", None, "ios"]
VERSIONS = ["1.9", "1.10", "1.10.0", "2", "2.0.1", "unknown", None, 3]
PLANS = ["pro", "free", None]
SCORES = [1, 5, "7", "x", 2.5, True, None, "10"]


def random_events(rng: random.Random, users: int = 12) -> list[Ev]:
    """Events at least 6 hours away from any whole number of days before now, so that
    within_days windows (which end at the cohort's refresh) never cut close to one."""
    now = datetime.now(UTC)
    events = []
    for u in range(users):
        for i in range(rng.randrange(1, 9)):
            ts = now - timedelta(days=rng.randrange(40), hours=6 + rng.random() * 12, microseconds=i)
            events.append(Ev(f"u{u}", ts, rng.choice(["open", "open", "purchase", "share"]),
                             {"os": rng.choice(OS), "app_version": rng.choice(VERSIONS)},
                             {k: v for k, v in (("plan", rng.choice(PLANS)), ("score", rng.choice(SCORES))) if v is not None}))
    return events


def leaves(rng: random.Random, tz: str) -> list[dict]:
    today = datetime.now(UTC).astimezone(ZoneInfo(tz)).date()
    d1, d2 = sorted(today - timedelta(days=rng.randrange(40)) for _ in range(2))
    return [
        {"event": "purchase"},
        {"event": "purchase", "min_count": 2},
        {"event": "open", "min_count": 3, "within_days": rng.choice([5, 10, 20])},
        {"event": "share", "from": d1.isoformat(), "to": d2.isoformat()},
        {"event": "open", "from": d1.isoformat()},
        {"property": "device.os", "op": "eq", "value": "iOS"},
        {"property": "device.os", "op": "ne", "value": "iOS"},
        {"property": "device.os", "op": "in", "value": ["iOS", "ios"]},
        {"property": "app_version", "op": "gte", "value": "1.10"},
        {"property": "device.app_version", "op": "lt", "value": "2"},
        {"property": "app_version", "op": "eq", "value": "2.0"},
        {"property": "app_version", "op": "in", "value": ["1.9", "2.0.1", "3"]},
        {"property": "app_version", "op": "ne", "value": "1.10"},
        {"property": "metadata.plan", "op": "eq", "value": "pro", "within_days": 20},
        {"property": "metadata.plan", "op": "ne", "value": "pro", "to": d2.isoformat()},
        {"property": "metadata.score", "op": "gt", "value": 2},
        {"property": "metadata.score", "op": "lte", "value": "5"},
        {"property": "metadata.score", "op": "eq", "value": True},
        {"property": "metadata.score", "op": "in", "value": [5, "x", 10]},
        {"first_seen": {"from": d1.isoformat(), "to": d2.isoformat()}},
        {"first_seen": {"within_days": 15}},
    ]


def random_filter(rng: random.Random, pool: list[dict], depth: int = 0) -> dict:
    if depth >= 2 or rng.random() < 0.4:
        return rng.choice(pool)
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        return {"not": random_filter(rng, pool, depth + 1)}
    return {kind: [random_filter(rng, pool, depth + 1) for _ in range(rng.randrange(1, 4))]}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_members_equal_the_definition(rollups, engine_name, tz):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "coh", timezone=tz).identifier
    other = create_app(conn, "coh-other").identifier  # never mixed in
    rng = random.Random(f"members-{tz}")
    events = random_events(rng)
    insert(conn, app, events)
    insert(conn, other, random_events(random.Random(1), users=4))
    refresh(conn)
    pool = leaves(rng, tz)
    filters = [{}] + [{"and": [leaf]} for leaf in pool] + [random_filter(rng, pool) for _ in range(8)]
    if engine_name == "timescaledb":  # slower engine: the leaves and a few combinations
        filters = filters[: len(pool) + 4]
    now = datetime.now(UTC)
    for flt in filters:
        row = create(conn, app, flt)
        want = evaluate(flt, events, tz, now)
        assert (members(conn, row[0]), row[4]) == (want, len(want)), flt


def test_refresh_follows_new_and_late_events(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "coh").identifier
    now = datetime.now(UTC)
    insert(conn, app, [Ev("a", now - timedelta(days=2), "purchase", {"os": "iOS"}),
                       Ev("b", now - timedelta(days=3), "open", {"os": "iOS"})])
    refresh(conn)
    flt = {"and": [{"event": "purchase"}, {"property": "device.os", "op": "eq", "value": "iOS"}]}
    cohort = create(conn, app, flt, "iOS buyers", "ios-buyers")
    assert members(conn, cohort[0]) == {"a"}
    # b buys (a late event, days old) and a moves to Android: the cohort changes at its refresh
    insert(conn, app, [Ev("b", now - timedelta(days=5), "purchase"),
                       Ev("a", now - timedelta(hours=1), "open", {"os": "Android"})])
    refresh(conn)
    assert members(conn, cohort[0]) == {"a"}, "members are a snapshot"
    again = conn.execute("SELECT user_count, refreshed_at FROM analytics.fn_refresh_cohort(%s, %s)",
                         [app, str(cohort[0]).upper()]).fetchone()
    assert members(conn, cohort[0]) == {"b"} and again[0] == 1 and again[1] > cohort[7]


def test_hostile_strings_are_values_not_sql(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "coh").identifier
    now = datetime.now(UTC)
    nasty = ["it's", "x'); DROP TABLE analytics.tb_event; --", "$$; SELECT 1; $$", "back\\slash", 'quote"d', "%s %L %I",
             "名前", "a\u00a0b", "' OR '1'='1"]
    events = [Ev(f"user {n}", now - timedelta(days=1, minutes=i), n, {"os": n}, {n: n, "plain": n})
              for i, n in enumerate(nasty)]
    insert(conn, app, events)
    refresh(conn)
    for i, n in enumerate(nasty):
        for flt in ({"event": n}, {"property": "device.os", "op": "eq", "value": n},
                    {"property": f"metadata.{n}", "op": "eq", "value": n},
                    {"property": "metadata.plain", "op": "in", "value": [n, "zzz"]},
                    {"not": {"property": "metadata.plain", "op": "gte", "value": n}}):
            row = create(conn, app, flt, f"hostile {i}")
            assert members(conn, row[0]) == evaluate(flt, events, "UTC", now), flt
            assert conn.execute("SELECT filter FROM analytics.tb_cohort WHERE id = %s", [row[0]]).fetchone()[0] == flt
    assert conn.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0] == len(events)


# --- validation ---------------------------------------------------------------------------------

LEAF = {"event": "a"}
INVALID: list[tuple[Any, str]] = [
    (None, "$"),
    ([], "$"),
    ("purchase", "$"),
    ({"evnt": "x"}, "$.evnt"),
    ({"and": []}, "$.and"),
    ({"or": {"event": "a"}}, "$.or"),
    ({"and": [LEAF] * 51}, "$.and"),
    ({"and": [LEAF, 5]}, "$.and[1]"),
    ({"and": [LEAF, {}]}, "$.and[1]"),
    ({"or": [LEAF, {"and": [LEAF, {"event": ""}]}]}, "$.or[1].and[1].event"),
    ({"not": [LEAF]}, "$.not"),
    ({"event": "a", "property": "device.os"}, "$.property"),
    ({"and": [LEAF], "x": 1}, "$.x"),
    ({"event": 5}, "$.event"),
    ({"event": "x" * 129}, "$.event"),
    ({"event": "a", "min_count": -1}, "$.min_count"),
    ({"event": "a", "min_count": 0}, "$.min_count"),
    ({"event": "a", "min_count": 1.5}, "$.min_count"),
    ({"event": "a", "min_count": "2"}, "$.min_count"),
    ({"event": "a", "count": 2}, "$.count"),
    ({"event": "a", "within_days": 0}, "$.within_days"),
    ({"event": "a", "within_days": 3651}, "$.within_days"),
    ({"event": "a", "within_days": None}, "$.within_days"),
    ({"event": "a", "from": "2026-02-30"}, "$.from"),
    ({"event": "a", "from": "2026-2-3"}, "$.from"),
    ({"event": "a", "from": "1969-12-31"}, "$.from"),
    ({"event": "a", "to": 20260101}, "$.to"),
    ({"event": "a", "from": "2026-02-03", "to": "2026-02-01"}, "$.to"),
    ({"event": "a", "within_days": 3, "from": "2026-01-01"}, "$.within_days"),
    ({"property": "device.ram", "op": "eq", "value": 1}, "$.property"),
    ({"property": "metadata.", "op": "eq", "value": 1}, "$.property"),
    ({"property": "user_id", "op": "eq", "value": 1}, "$.property"),
    ({"property": "device.os", "value": "iOS"}, "$.op"),
    ({"property": "device.os", "op": "like", "value": "iOS"}, "$.op"),
    ({"property": "device.os", "op": "eq"}, "$.value"),
    ({"property": "device.os", "op": "eq", "value": {"a": 1}}, "$.value"),
    ({"property": "device.os", "op": "eq", "value": None}, "$.value"),
    ({"property": "device.os", "op": "gt", "value": True}, "$.value"),
    ({"property": "device.os", "op": "in", "value": []}, "$.value"),
    ({"property": "device.os", "op": "in", "value": "iOS"}, "$.value"),
    ({"property": "device.os", "op": "in", "value": ["iOS", None]}, "$.value[1]"),
    ({"property": "app_version", "op": "gte", "value": 1.1}, "$.value"),
    ({"property": "app_version", "op": "in", "value": ["1.0", "v2"]}, "$.value[1]"),
    ({"property": "device.os", "op": "eq", "value": "iOS", "within_days": -3}, "$.within_days"),
    ({"property": "device.os", "op": "eq", "value": "iOS", "since": "2026-01-01"}, "$.since"),
    ({"first_seen": {}}, "$.first_seen"),
    ({"first_seen": "2026-01-01"}, "$.first_seen"),
    ({"first_seen": {"from": "2026-01-01", "until": "2026-01-02"}}, "$.first_seen.until"),
    ({"first_seen": {"to": "2026-13-01"}}, "$.first_seen.to"),
    ({"first_seen": {"within_days": 2, "to": "2026-01-01"}}, "$.first_seen.within_days"),
    ({"not": {"not": {"not": {"not": {"not": {"not": LEAF}}}}}}, "$.not.not.not.not.not.not"),
    ({"and": [{"or": [LEAF] * 50}, {"or": [LEAF] * 50}, LEAF]}, "$"),
    ({"and": [{"ev\"il'); DROP TABLE x; --": 1}]}, '$.and[0]["ev\\"il\'); DROP TABLE x; --"]'),
]


def test_every_invalid_filter_is_refused_with_its_path(conn, app):
    for flt, path in INVALID:
        for sql, params in (("SELECT analytics.fn_validate_cohort_filter(%s)", [Jsonb(flt) if flt is not None else None]),
                            (CREATE, [app.identifier, "Bad", Jsonb(flt) if flt is not None else None, None])):
            with pytest.raises(psycopg.Error) as err:
                conn.execute(sql, params)
            diag = err.value.diag
            assert (err.value.sqlstate, diag.message_hint.split(": ", 1)[0]) == ("22023", path), (flt, diag.message_primary)
            assert f" at {path}: " in diag.message_primary
    assert conn.execute("SELECT count(*) FROM analytics.tb_cohort").fetchone()[0] == 0
    # the valid corners of the same rules
    for flt in ({}, {"not": {"not": {"not": {"not": {"not": LEAF}}}}}, {"and": [LEAF] * 50},
                {"event": "a", "min_count": 1000000, "within_days": 3650}, {"event": "a", "min_count": 2.0},
                {"property": "metadata.any key: at all", "op": "in", "value": ["x", 1, True]},
                {"property": "device.screen_width", "op": "gte", "value": 1000},
                {"first_seen": {"from": "2026-01-01"}}):
        conn.execute("SELECT analytics.fn_validate_cohort_filter(%s)", [Jsonb(flt)])


# --- the functions ------------------------------------------------------------------------------


def fails(conn: psycopg.Connection, sql: str, params: list, state: str, hint: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(sql, params)
    assert err.value.sqlstate == state and hint in err.value.diag.message_hint, err.value.diag.message_primary


def test_create_list_refresh_delete(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "coh").identifier
    now = datetime.now(UTC)
    insert(conn, app, [Ev("a", now - timedelta(days=1)), Ev("b", now - timedelta(days=1), "purchase")])
    refresh(conn)

    first = create(conn, app, {"event": "purchase"}, "Buyers", "buyers")
    assert first[1:6] == ("buyers", "Buyers", {"event": "purchase"}, 1, None) and first[7] is not None
    fails(conn, CREATE, [app, "Buyers again", Jsonb({}), "buyers"], "23505", "fn_refresh_cohort")
    derived = [create(conn, app, {}, "Pro users (iOS)")[1] for _ in range(3)]
    assert derived == ["pro-users-ios", "pro-users-ios-2", "pro-users-ios-3"]
    assert create(conn, app, {}, "¡Ñ!")[1] == "cohort"
    fails(conn, CREATE, [app, "Bad id", Jsonb({}), "-x"], "22023", "letters, digits")
    fails(conn, CREATE, [app, "Bad id", Jsonb({}), "x" * 65], "22023", "letters, digits")
    fails(conn, CREATE, [app, " ", Jsonb({}), None], "22023", "printable")
    fails(conn, CREATE, [app, "tab\there", Jsonb({}), None], "22023", "printable")
    fails(conn, CREATE, ["nope", "X", Jsonb({}), None], "P0002", "identifier")

    listed = conn.execute("SELECT identifier, user_count FROM analytics.fn_list_cohorts(%s)", [app]).fetchall()
    assert listed == [("cohort", 2), ("pro-users-ios-3", 2), ("pro-users-ios-2", 2), ("pro-users-ios", 2), ("buyers", 1)]
    assert len(conn.execute("SELECT * FROM analytics.fn_list_cohorts(%s, 2)", [app]).fetchall()) == 2
    fails(conn, "SELECT * FROM analytics.fn_list_cohorts(%s, 0)", [app], "22023", "1 to 1000")
    fails(conn, "SELECT * FROM analytics.fn_list_cohorts(%s, 1001)", [app], "22023", "1 to 1000")
    fails(conn, "SELECT * FROM analytics.fn_list_cohorts(%s)", ["nope"], "P0002", "identifier")
    other = create_app(conn, "coh-2").identifier
    assert conn.execute("SELECT * FROM analytics.fn_list_cohorts(%s)", [other]).fetchall() == []

    # by identifier or uuid (any case, with or without hyphens); never another app's
    for ref in ("buyers", str(first[0]), str(first[0]).upper().replace("-", "")):
        assert conn.execute("SELECT identifier FROM analytics.fn_refresh_cohort(%s, %s)", [app, ref]).fetchone() == ("buyers",)
    fails(conn, "SELECT * FROM analytics.fn_refresh_cohort(%s, %s)", [other, "buyers"], "P0002", "fn_list_cohorts")
    fails(conn, "SELECT * FROM analytics.fn_cohort_retention(%s, %s)", [other, str(first[0])], "P0002", "fn_list_cohorts")

    assert conn.execute("SELECT analytics.fn_delete_cohort(%s, %s)", [app, "buyers"]).fetchone() == (True,)
    fails(conn, "SELECT analytics.fn_delete_cohort(%s, %s)", [app, "buyers"], "P0002", "fn_list_cohorts")
    fails(conn, "SELECT analytics.fn_delete_cohort(%s, %s)", ["nope", "buyers"], "P0002", "identifier")
    orphans = conn.execute("SELECT count(*) FROM analytics_internal.tb_cohort_member m WHERE NOT EXISTS"
                           " (SELECT 1 FROM analytics.tb_cohort c WHERE c.pk_cohort = m.fk_cohort)").fetchone()
    assert orphans == (0,)
    assert conn.execute("SELECT count(*) FROM analytics_internal.tb_cohort_member").fetchone() == (8,)


def test_maintenance_refreshes_stale_cohorts(rollups, engine_name):  # noqa: F811 - fixture
    conn = rollups
    app = create_app(conn, "coh").identifier
    now = datetime.now(UTC)
    insert(conn, app, [Ev("a", now - timedelta(days=1))])
    refresh(conn)
    fresh = create(conn, app, {}, "Fresh")
    stale = create(conn, app, {}, "Stale")
    broken = create(conn, app, {}, "Broken")
    conn.execute("UPDATE analytics.tb_cohort SET refreshed_at = now() - interval '2 hours' WHERE id IN (%s, %s)",
                 [stale[0], broken[0]])
    conn.execute("""UPDATE analytics.tb_cohort SET filter = '{"event": 1}' WHERE id = %s""", [broken[0]])
    insert(conn, app, [Ev("b", now - timedelta(hours=2))])
    warnings: list[str] = []
    conn.add_notice_handler(lambda d: warnings.append(d.message_primary))
    assert conn.execute("SELECT analytics.fn_refresh_cohorts()").fetchone() == (1,)
    assert any("'broken' of app 'coh' was not refreshed" in w and "$.event" in w for w in warnings), warnings
    counts = dict(conn.execute("SELECT name, user_count FROM analytics.tb_cohort").fetchall())
    assert counts == {"Fresh": 1, "Stale": 2, "Broken": 1}
    assert conn.execute("SELECT analytics.fn_refresh_cohorts(%s, interval '0')", [app]).fetchone() == (2,)
    conn.execute("CALL analytics.prc_run_maintenance()")  # calls it too
    fails(conn, "SELECT analytics.fn_refresh_cohorts(%s, interval '-1 hour')", [app], "22023", "0 or more")
    fails(conn, "SELECT analytics.fn_refresh_cohorts(%s)", ["nope"], "P0002", "identifier")
    assert fresh[4] == 1
