"""A realistic, generated data set for the analytics benchmarks: N events over D days, up to now.

    .venv/bin/python -m bench.generate --database-url URL [--events N] [--days D] [--seed S]
                                       [--end ISO-TIME] [--jobs J] [--force]

The database must be migrated (bench.queries migrates it before calling this). Everything is
generated inside PostgreSQL by INSERT ... SELECT over generate_series, so nothing crosses the
wire but the statements; random draws are hashes of (seed, key, salt), which makes the data
a function of (seed, events, days, end) whatever the order or parallelism of execution.

What it looks like (see bench/README.md):

* 4 apps sharing the users 70/18/8/4 %: bench-q-big (UTC), bench-q-berlin (Europe/Berlin),
  bench-q-ny (America/New_York), bench-q-small (UTC).
* Users: a quarter already there before the window, the others arriving every day (slightly
  more towards the end: growth). Churn: a lifetime of under a day (35 %), days (30 %), weeks
  (20 %) or months (15 %). Activity: sessions per day drawn from a heavy tail (r^-0.55, capped),
  denser at the start of a lifetime; session start times follow a daily cycle peaking in the
  app's evening. 75 % of users are signed in (user_id and anonymous_id), the rest anonymous.
* Sessions of 2 to 150 events (mean about 7.5), a few minutes long: app_open first, then
  screen_view, button_click, screen_time (with duration_ms), page_view, search, share,
  add_to_cart; about 0.5 % of sessions end in a crash (3 % on the buggy version 3.4.0).
* Funnel: 85 % of the users who arrive in the window send onboarding_complete in their first
  session; half of those open payment_screen, in that session or in one of their next six; 45 %
  of those send purchase_complete two events later. Users who arrived before the window open
  payment_screen now and then without onboarding.
* Devices: iOS (55 %) or Android, a model, an os_version and a locale per user; app_version
  3.0.0 .. 3.10.0, one release every 9 days, adopted after a per-user lag.
* The total is exactly N: sessions are drawn for about 3 % more events, then random whole
  sessions are dropped (and the last one kept is cut) to hit N.

tb_event_key (the exactly-once ledger) is not filled: no query reads it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

SCHEMA = "bench_data"
APP_PREFIX = "bench-q-"
# (identifier suffix, timezone, share of users, hour of the daily low in UTC)
APPS = (
    ("big", "UTC", 0.70, 6.0),
    ("berlin", "Europe/Berlin", 0.18, 5.0),
    ("ny", "America/New_York", 0.08, 11.0),
    ("small", "UTC", 0.04, 6.0),
)
EVENTS_PER_USER = 25  # users = events / 25 (most arrive before the window and are gone)
PRE_DAYS = 150  # users arrive from this long before the window
OVERSHOOT = 1.03  # draw sessions for 3 % more events, then trim to exactly N
FUNNEL = ("onboarding_complete", "payment_screen", "purchase_complete")
EVENT_TYPES = ("app_open", "screen_view", "button_click", "screen_time", "page_view", "search", "share",
               "add_to_cart", "crash") + FUNNEL
N_VERSIONS = 11  # 3.0.0 .. 3.10.0
RELEASE_EVERY_DAYS = 9
BUGGY_VERSION = 4  # 3.4.0 crashes more

# Random numbers: the top 53 bits of a 64-bit hash of (key, seed, salt), in [0, 1). An inlined
# SQL function, so it costs about as much as the hash itself.
RND_DDL = """
CREATE OR REPLACE FUNCTION pg_temp.rnd(p_key bigint, p_salt integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((hashint8extended(p_key, %(seed)s::bigint * 1024 + p_salt) >> 11) & 9007199254740991)::float8
             / 9007199254740992.0 $$
"""

SETUP_DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
COMMENT ON SCHEMA {SCHEMA} IS 'bench/generate.py: which data set this database holds (and scratch tables while generating).';
CREATE TABLE {SCHEMA}.tb_dataset (
    seed        bigint NOT NULL,
    events      bigint NOT NULL,
    days        integer NOT NULL,
    users       integer NOT NULL,
    gen_start   timestamptz NOT NULL,
    gen_end     timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    timings     jsonb NOT NULL DEFAULT '{{}}',
    summary     jsonb NOT NULL DEFAULT '{{}}'
);
CREATE UNLOGGED TABLE {SCHEMA}.tb_app (app_no integer PRIMARY KEY, pk_app integer NOT NULL, phase_hours float8 NOT NULL);
CREATE UNLOGGED TABLE {SCHEMA}.tb_device (dev_key integer PRIMARY KEY, device jsonb NOT NULL);
CREATE UNLOGGED TABLE {SCHEMA}.tb_user (
    user_no      integer PRIMARY KEY,
    app_no       integer NOT NULL,
    arrival      timestamptz NOT NULL,
    life_days    float8 NOT NULL,
    rate         float8 NOT NULL,
    signed_in    boolean NOT NULL,
    profile      integer NOT NULL,   -- os, model, os_version, locale (dev_key without the version)
    lag_days     float8 NOT NULL,    -- how long the user takes to install a new version
    onboard      boolean NOT NULL,
    pay_k        integer,            -- session number holding payment_screen (NULL: none)
    buy          boolean NOT NULL,
    x_lo         float8 NOT NULL,    -- share of the lifetime's sessions before the window ...
    x_hi         float8 NOT NULL     -- ... and up to its end (session k sits at x = (k + r) / n)
);
CREATE UNLOGGED TABLE {SCHEMA}.tb_session (
    skey      bigint PRIMARY KEY,   -- user_no * 100000 + k
    user_no   integer NOT NULL,
    day_no    integer NOT NULL,     -- day of the window the session starts in (insert unit)
    start_ts  timestamptz NOT NULL,
    dur_s     float8 NOT NULL,
    n_ev      integer NOT NULL,
    dev_key   integer NOT NULL,
    onb_pos   integer,
    pay_pos   integer,
    buy_pos   integer,
    crash     boolean NOT NULL
);
"""

OS_MODELS = {
    "iOS": (["iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone15,2", "iPhone16,1"], ["16.7", "17.4", "17.6", "18.1"]),
    "Android": (["Pixel 7", "Pixel 8", "SM-S911B", "SM-A546B", "Redmi Note 12"], ["12", "13", "14", "15"]),
}
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "pt_BR"]
N_PROFILES = 2 * 5 * 4 * len(LOCALES)


def _devices() -> list[tuple[int, str]]:
    """(dev_key, device json) for every profile and version: dev_key = profile * N_VERSIONS + version."""
    import json

    out = []
    profile = 0
    for os_name in ("iOS", "Android"):
        models, versions = OS_MODELS[os_name]
        for model in models:
            for os_version in versions:
                for locale in LOCALES:
                    for v in range(N_VERSIONS):
                        out.append((profile * N_VERSIONS + v, json.dumps({
                            "os": os_name, "os_version": os_version, "model": model,
                            "manufacturer": "Apple" if os_name == "iOS" else model.split()[0].replace("SM-", "Samsung"),
                            "app_version": f"3.{v}.0", "locale": locale})))
                    profile += 1
    return out


# Users: app, arrival, lifetime, activity rate, identity, device profile, funnel fate. Arrivals
# run from PRE_DAYS before the window to its end (slightly more towards the end: growth), so
# that the window starts with a settled mix of old and new users.
USERS_SQL = f"""
INSERT INTO {SCHEMA}.tb_user
SELECT u, app_no, arrival, life_days, rate, signed_in, profile, lag_days, onboard,
       CASE WHEN pay THEN CASE WHEN pg_temp.rnd(u, 9) < 0.45 THEN 0 ELSE 1 + floor(pg_temp.rnd(u, 10) * 6)::int END END,
       pay AND pg_temp.rnd(u, 11) < 0.45,
       CASE WHEN arrival >= %(start)s THEN 0
            ELSE least(1.0, power(extract(epoch FROM %(start)s - arrival) / 86400.0 / life_days, 1 / 1.6)) END,
       least(1.0, power(greatest(0.0, extract(epoch FROM %(end)s - arrival) / 86400.0 / life_days), 1 / 1.6))
FROM (
    SELECT *, onboard AND pg_temp.rnd(u, 13) < 0.5 AS pay
    FROM (
        SELECT u, app_no, arrival, life_days, rate, signed_in, profile, lag_days,
               arrival >= %(start)s AND pg_temp.rnd(u, 15) < 0.85 AS onboard
        FROM (
            SELECT u,
                   CASE WHEN r.a < %(share0)s THEN 0 WHEN r.a < %(share1)s THEN 1 WHEN r.a < %(share2)s THEN 2 ELSE 3 END AS app_no,
                   %(start)s - interval '{PRE_DAYS} days'
                       + power(pg_temp.rnd(u, 2), 0.9) * (%(end)s - %(start)s + interval '{PRE_DAYS} days') AS arrival,
                   CASE WHEN r.c < 0.35 THEN 0.05 + r.l * 0.95
                        WHEN r.c < 0.65 THEN 0.5 - ln(1 - r.l) * 5
                        WHEN r.c < 0.85 THEN 1 - ln(1 - r.l) * 20
                        ELSE 60 + r.l * 150 END AS life_days,
                   least(25.0, 0.5 * power(1 - pg_temp.rnd(u, 5), -0.55)) AS rate,
                   pg_temp.rnd(u, 6) < 0.75 AS signed_in,
                   CASE WHEN pg_temp.rnd(u, 7) < 0.55 THEN 0 ELSE {N_PROFILES // 2} END
                       + floor(pg_temp.rnd(u, 8) * {N_PROFILES // 2})::int AS profile,
                   -ln(1 - pg_temp.rnd(u, 12)) * 6 AS lag_days
            FROM generate_series(1, %(users)s) AS u
            CROSS JOIN LATERAL (SELECT pg_temp.rnd(u, 1) AS a, pg_temp.rnd(u, 4) AS c, pg_temp.rnd(u, 14) AS l) AS r
        ) x
    ) y
) z
"""

# The scale c that makes the window hold about the wanted number of sessions: a user has
# n = 1 + c * rate * lifetime sessions over the whole lifetime, x_hi - x_lo of them in the window.
SCALE_SQL = f"""
SELECT sum(rate * life_days * (x_hi - x_lo)), sum(x_hi - x_lo) FROM {SCHEMA}.tb_user WHERE x_hi > x_lo
"""

# Sessions inside the window. Session k of n sits at x = (k + r) / n of the lifetime, at
# arrival + lifetime * x^1.6 (denser at first), its time of day then warped monotonically
# (order kept) so that starts peak 12 hours after the app's daily low.
SESSIONS_SQL = f"""
INSERT INTO {SCHEMA}.tb_session
SELECT s.skey, s.user_no, floor(extract(epoch FROM s.start_ts - %(start)s) / 86400)::int, s.start_ts,
       s.n_ev * (15 + 60 * pg_temp.rnd(s.skey, 21)), s.n_ev,
       s.profile * {N_VERSIONS} + s.version, s.onb_pos, s.pay_pos, s.buy_pos,
       s.n_ev >= 3 AND pg_temp.rnd(s.skey, 22) < CASE WHEN s.version = {BUGGY_VERSION} THEN 0.03 ELSE 0.005 END
FROM (
    SELECT t.skey, t.user_no, t.start_ts, t.profile, t.onb_pos, t.pay_pos, t.buy_pos,
           greatest(2 + least(148, floor(-ln(1 - pg_temp.rnd(t.skey, 23)) * 6)::int),
                    coalesce(t.buy_pos, t.pay_pos, t.onb_pos, 0) + 1) AS n_ev,
           least({N_VERSIONS - 1}, greatest(0, floor((extract(epoch FROM t.start_ts - %(release0)s) / 86400 - t.lag_days)
                                                     / {RELEASE_EVERY_DAYS})::int)) AS version
    FROM (
        SELECT u.user_no::bigint * 100000 + k AS skey, u.user_no, u.profile, u.lag_days,
               to_timestamp((w.day + w.y + 0.6 * sin(2 * pi() * w.y) / (2 * pi())) * 86400 + a.phase_hours * 3600) AS start_ts,
               CASE WHEN k = 0 AND u.onboard THEN 1 END AS onb_pos,
               CASE WHEN k = u.pay_k THEN CASE WHEN k = 0 THEN 3 ELSE 1 END
                    WHEN u.pay_k IS NULL AND NOT u.onboard AND pg_temp.rnd(u.user_no::bigint * 100000 + k, 24) < 0.01 THEN 1
               END AS pay_pos,
               CASE WHEN k = u.pay_k AND u.buy THEN CASE WHEN k = 0 THEN 5 ELSE 3 END
                    WHEN u.pay_k IS NULL AND NOT u.onboard AND pg_temp.rnd(u.user_no::bigint * 100000 + k, 24) < 0.0035 THEN 3
               END AS buy_pos
        FROM {SCHEMA}.tb_user u
        JOIN {SCHEMA}.tb_app a USING (app_no)
        CROSS JOIN LATERAL (SELECT least(99999, 1 + floor(%(c)s * u.rate * u.life_days + pg_temp.rnd(u.user_no, 16))::int) AS n) AS n
        CROSS JOIN LATERAL generate_series(floor(u.x_lo * n.n)::int, least(n.n - 1, ceil(u.x_hi * n.n)::int)) AS k
        CROSS JOIN LATERAL (SELECT extract(epoch FROM u.arrival) / 86400
                                   + u.life_days * power((k + pg_temp.rnd(u.user_no::bigint * 100000 + k, 17)) / n.n, 1.6)
                                   - a.phase_hours / 24 AS d) AS raw
        CROSS JOIN LATERAL (SELECT floor(raw.d) AS day, raw.d - floor(raw.d) AS y) AS w
        WHERE u.x_hi > u.x_lo
    ) t
) s
WHERE s.start_ts >= %(start)s
  AND s.start_ts + make_interval(secs => s.n_ev * (15 + 60 * pg_temp.rnd(s.skey, 21))) <= %(end)s
"""

# Keep random whole sessions up to exactly N events (the last one kept is cut short).
TRIM_SQL = f"""
WITH o AS (
    SELECT skey, n_ev,
           sum(n_ev) OVER (ORDER BY hashint8extended(skey, %(seed)s), skey ROWS UNBOUNDED PRECEDING) - n_ev AS before
    FROM {SCHEMA}.tb_session
), gone AS (
    DELETE FROM {SCHEMA}.tb_session s USING o WHERE s.skey = o.skey AND o.before >= %(events)s RETURNING 1
)
UPDATE {SCHEMA}.tb_session s SET n_ev = %(events)s - o.before,
       dur_s = s.dur_s * (%(events)s - o.before) / s.n_ev
FROM o WHERE s.skey = o.skey AND o.before < %(events)s AND o.before + o.n_ev > %(events)s
"""

SCREENS = ["/home", "/feed", "/search", "/product", "/cart", "/profile", "/settings", "/notifications",
           "/messages", "/help", "/onboarding", "/checkout", "/orders", "/favorites", "/about"]
BUTTONS = ["like", "share", "add_to_cart", "open_product", "back", "filter", "sort", "follow", "save", "close"]

# One row per event of the sessions that start on day_no. Event j of n sits at
# start + dur * (j + r) / n (j = 0 at start): times stay in order inside a session.
EVENTS_SQL = f"""
INSERT INTO analytics.tb_event (id, fk_app, event_type, "timestamp", received_at, user_id, anonymous_id,
                                session_id, path, label, duration_ms, device, metadata)
SELECT md5(%(seed)s::text || ':' || e.ekey)::uuid, a.pk_app, e.type, e.ts,
       e.ts + CASE WHEN pg_temp.rnd(s.skey, 30) < 0.03 THEN interval '3 hours' ELSE interval '2 seconds' END,
       CASE WHEN u.signed_in THEN 'u' || u.user_no END,
       'a' || to_hex(hashint8extended(u.user_no, %(seed)s) & 281474976710655),
       's' || s.skey,
       CASE WHEN e.type IN ('screen_view', 'page_view') THEN (%(screens)s::text[])[1 + floor(power(e.r2, 2) * {len(SCREENS)})::int]
            WHEN e.type IN ('onboarding_complete') THEN '/onboarding'
            WHEN e.type IN ('payment_screen', 'purchase_complete') THEN '/checkout' END,
       CASE WHEN e.type = 'button_click' THEN (%(buttons)s::text[])[1 + floor(power(e.r2, 1.5) * {len(BUTTONS)})::int] END,
       CASE WHEN e.type = 'screen_time' THEN (500 - ln(1 - e.r2) * 20000)::bigint END,
       d.device,
       CASE e.type
           WHEN 'purchase_complete' THEN jsonb_build_object('product', (ARRAY['pro_monthly', 'pro_yearly', 'coins_100'])[1 + floor(e.r2 * 3)::int],
                                                            'amount', (ARRAY[4.99, 39.99, 0.99])[1 + floor(e.r2 * 3)::int],
                                                            'currency', CASE WHEN e.r2 * 10 - floor(e.r2 * 10) < 0.6 THEN 'USD' ELSE 'EUR' END)
           WHEN 'payment_screen' THEN jsonb_build_object('plan_shown', CASE WHEN e.r2 < 0.5 THEN 'monthly' ELSE 'yearly' END)
           WHEN 'search' THEN jsonb_build_object('query_length', 1 + floor(e.r2 * 20)::int)
           WHEN 'crash' THEN jsonb_build_object('exception', (ARRAY['NullPointerException', 'OutOfMemoryError', 'SIGSEGV', 'NSInternalInconsistencyException'])[1 + floor(e.r2 * 4)::int])
           ELSE '{{}}'::jsonb END
FROM {SCHEMA}.tb_session s
JOIN {SCHEMA}.tb_user u USING (user_no)
JOIN {SCHEMA}.tb_app a ON a.app_no = u.app_no
JOIN {SCHEMA}.tb_device d ON d.dev_key = s.dev_key
CROSS JOIN LATERAL generate_series(0, s.n_ev - 1) AS j
CROSS JOIN LATERAL (
    SELECT s.skey * 1000 + j AS ekey,
           CASE WHEN j = 0 THEN s.start_ts
                ELSE s.start_ts + make_interval(secs => s.dur_s * (j + pg_temp.rnd(s.skey * 1000 + j, 31)) / s.n_ev) END AS ts,
           CASE WHEN j = 0 THEN 'app_open'
                WHEN j = s.onb_pos THEN 'onboarding_complete'
                WHEN j = s.pay_pos THEN 'payment_screen'
                WHEN j = s.buy_pos THEN 'purchase_complete'
                WHEN j = s.n_ev - 1 AND s.crash THEN 'crash'
                ELSE CASE WHEN r.r1 < 0.42 THEN 'screen_view' WHEN r.r1 < 0.70 THEN 'button_click'
                          WHEN r.r1 < 0.82 THEN 'screen_time' WHEN r.r1 < 0.90 THEN 'page_view'
                          WHEN r.r1 < 0.95 THEN 'search' WHEN r.r1 < 0.98 THEN 'share' ELSE 'add_to_cart' END
           END AS type,
           r.r2
    FROM (SELECT pg_temp.rnd(s.skey * 1000 + j, 32) AS r1, pg_temp.rnd(s.skey * 1000 + j, 33) AS r2) r
) e
WHERE s.day_no = %(day)s
"""


@dataclass
class Dataset:
    """What a database holds: the generation parameters and the window."""

    seed: int
    events: int
    days: int
    users: int
    gen_start: datetime
    gen_end: datetime
    created_at: datetime
    timings: dict[str, float]
    summary: dict[str, Any]
    apps: dict[str, int]  # identifier -> pk_app

    @property
    def big_app(self) -> str:
        return APP_PREFIX + APPS[0][0]


def existing(conn: psycopg.Connection) -> Dataset | None:
    """The data set recorded in this database, or None."""
    if conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.tb_dataset"]).fetchone()[0] is None:
        return None
    row = conn.execute(f"SELECT seed, events, days, users, gen_start, gen_end, created_at, timings, summary"
                       f" FROM {SCHEMA}.tb_dataset").fetchone()
    if row is None:
        return None
    apps = dict(conn.execute("SELECT identifier, pk_app FROM analytics.tb_app WHERE identifier LIKE %s",
                             [APP_PREFIX + "%"]).fetchall())
    return Dataset(*row, apps=apps)


def wipe(conn: psycopg.Connection) -> None:
    """Empty the event table and the rollups, drop the bench apps (PostgreSQL engine)."""
    conn.execute(
        "TRUNCATE analytics.tb_event, analytics_internal.tb_event_key, analytics_internal.tb_rollup_invalidation,"
        " analytics_internal.tb_ca_event_hourly, analytics_internal.tb_ca_event_daily,"
        " analytics_internal.tb_ca_user_daily, analytics_internal.tb_ca_session_hourly,"
        " analytics_internal.tb_ca_session_daily")
    conn.execute("UPDATE analytics_internal.tb_rollup SET watermark = '-infinity', refreshed_at = NULL")
    conn.execute("DELETE FROM analytics.tb_app WHERE identifier LIKE %s", [APP_PREFIX + "%"])
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, flush=True)


def generate(conninfo: str, *, events: int, days: int, seed: int = 1, end: datetime | None = None,
             jobs: int = 2, quiet: bool = False) -> Dataset:
    """Generate the data set into a migrated PostgreSQL-engine database whose tb_event is
    empty, refresh the rollups, VACUUM ANALYZE, and record it in bench_data.tb_dataset."""
    if events < 100 or days < 1:
        raise ValueError("need at least 100 events and 1 day")
    timings: dict[str, float] = {}
    t_all = time.monotonic()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SELECT analytics.fn_engine()").fetchone()[0] != "postgresql":
            raise RuntimeError("the generator needs the PostgreSQL engine (it fills the rollup tables' source directly)")
        if conn.execute("SELECT EXISTS (SELECT 1 FROM analytics.tb_event)").fetchone()[0]:
            raise RuntimeError("analytics.tb_event is not empty")
        conn.execute("SET client_min_messages = warning")
        conn.execute("SET jit = off")
        if end is None:
            end = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
        start = end - timedelta(days=days)
        users = max(50, events // EVENTS_PER_USER)
        t = time.monotonic()
        conn.execute(SETUP_DDL)
        conn.execute(RND_DDL % {"seed": int(seed)})
        apps: dict[str, int] = {}
        for no, (suffix, tz, _share, phase) in enumerate(APPS):
            ident = APP_PREFIX + suffix
            conn.execute("SELECT analytics.fn_create_app(p_identifier => %s, p_name => %s, p_timezone => %s,"
                         " p_retention_days => 3650)", [ident, f"benchmark app {suffix}", tz])
            pk = conn.execute("SELECT pk_app FROM analytics.tb_app WHERE identifier = %s", [ident]).fetchone()[0]
            apps[ident] = pk
            conn.execute(f"INSERT INTO {SCHEMA}.tb_app VALUES (%s, %s, %s)", [no, pk, phase])
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {SCHEMA}.tb_device VALUES (%s, %s::jsonb)", _devices())
        shares = [sum(a[2] for a in APPS[:i + 1]) for i in range(3)]
        conn.execute(USERS_SQL, {"start": start, "end": end, "users": users,
                                 "share0": shares[0], "share1": shares[1], "share2": shares[2]})
        conn.execute(f"ANALYZE {SCHEMA}.tb_user")
        weighted, in_window = conn.execute(SCALE_SQL).fetchone()
        mean_events = 7.6  # of a session; corrected below from the drawn sessions
        c = 0.0
        for _attempt in range(4):
            wanted_sessions = events * OVERSHOOT / mean_events
            c = float(f"{max(1e-6, (wanted_sessions - in_window) / weighted):.6g}")  # rounded: stable across runs
            conn.execute(f"TRUNCATE {SCHEMA}.tb_session")
            conn.execute(SESSIONS_SQL, {"start": start, "end": end, "c": c,
                                        "release0": start - timedelta(days=40)})
            n_sessions, drawn = conn.execute(f"SELECT count(*), coalesce(sum(n_ev), 0) FROM {SCHEMA}.tb_session").fetchone()
            if drawn >= events:
                break
            mean_events = drawn / max(1, n_sessions) * (drawn / (events * OVERSHOOT))
        else:
            raise RuntimeError(f"could not draw {events} events (got {drawn})")
        conn.execute(TRIM_SQL, {"seed": int(seed), "events": events})
        conn.execute(f"ANALYZE {SCHEMA}.tb_session")
        day_list = [d for (d,) in conn.execute(
            f"SELECT day_no FROM {SCHEMA}.tb_session GROUP BY 1 ORDER BY count(*) DESC").fetchall()]
        # Partitions for every day of the window when it ends about now (the usual case). A window
        # further back (--end) goes to the default partition first, and fn_create_partitions then
        # moves its rows into partitions of their own: only the window's days get one.
        recent = conn.execute("SELECT %s > now() - interval '2 days'", [end]).fetchone()[0]
        if recent:
            conn.execute("SELECT analytics.fn_create_partitions(p_back => %s, p_ahead => 7)", [days + 2])
        timings["plan sessions"] = time.monotonic() - t
        _log(quiet, f"  planned {users:,} users, {n_sessions:,} sessions (scale {c:g}) in "
                    f"{timings['plan sessions']:.1f} s; inserting {events:,} events over {days} days "
                    f"with {jobs} connection(s) ...")

        t = time.monotonic()
        _insert_days(conninfo, seed, day_list, jobs, quiet)
        if not recent:
            conn.execute("SELECT analytics.fn_create_partitions(p_back => 0, p_ahead => 0)")
        timings["insert events"] = time.monotonic() - t
        stored = conn.execute("SELECT count(*) FROM analytics.tb_event").fetchone()[0]
        if stored != events:
            raise RuntimeError(f"stored {stored} events, wanted {events}")
        _log(quiet, f"  inserted in {timings['insert events']:.1f} s ({events / timings['insert events']:,.0f} events/s)")

        t = time.monotonic()
        conn.execute("VACUUM (ANALYZE) analytics.tb_event")
        timings["vacuum analyze events"] = time.monotonic() - t
        _log(quiet, f"  VACUUM ANALYZE analytics.tb_event: {timings['vacuum analyze events']:.1f} s")

        t = time.monotonic()
        conn.execute("CALL analytics.prc_refresh_rollups()")
        timings["refresh rollups"] = time.monotonic() - t
        _log(quiet, f"  CALL analytics.prc_refresh_rollups(): {timings['refresh rollups']:.1f} s")
        t = time.monotonic()
        for table in ("tb_ca_event_hourly", "tb_ca_event_daily", "tb_ca_user_daily", "tb_ca_session_hourly",
                      "tb_ca_session_daily", "tb_rollup_invalidation"):
            conn.execute(f"VACUUM (ANALYZE) analytics_internal.{table}")
        timings["vacuum analyze rollups"] = time.monotonic() - t

        summary = _summary(conn, apps[APP_PREFIX + APPS[0][0]], start, end)
        for table in ("tb_user", "tb_session", "tb_device", "tb_app"):
            conn.execute(f"DROP TABLE {SCHEMA}.{table}")
        timings["total"] = time.monotonic() - t_all
        conn.execute(
            f"INSERT INTO {SCHEMA}.tb_dataset (seed, events, days, users, gen_start, gen_end, timings, summary)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [seed, events, days, users, start, end, Jsonb(timings),
             Jsonb(summary)])
        found = existing(conn)
        assert found is not None
        return found


def _insert_days(conninfo: str, seed: int, day_list: list[int], jobs: int, quiet: bool) -> None:
    """Insert the events day by day (one statement per day of sessions), on `jobs` connections."""
    todo = list(day_list)
    lock = threading.Lock()
    errors: list[BaseException] = []
    done = [0]

    def work() -> None:
        try:
            with psycopg.connect(conninfo, autocommit=True) as c:
                c.execute("SET client_min_messages = warning")
                c.execute("SET jit = off")  # the row estimates are far off; JIT took ~1 s per statement
                c.execute(RND_DDL % {"seed": int(seed)})
                while True:
                    with lock:
                        if not todo or errors:
                            return
                        day = todo.pop(0)
                    c.execute(EVENTS_SQL, {"seed": int(seed), "day": day, "screens": SCREENS, "buttons": BUTTONS})
                    with lock:
                        done[0] += 1
                        if not quiet and done[0] % 10 == 0:
                            print(f"    {done[0]}/{len(day_list)} days", flush=True)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, name=f"gen-{i}") for i in range(max(1, jobs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def _summary(conn: psycopg.Connection, big: int, start: datetime, end: datetime) -> dict[str, Any]:
    """A few figures that show the data set is shaped as intended (printed by bench.queries)."""
    per_app = conn.execute(
        "SELECT a.identifier, count(*) FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
        " GROUP BY 1 ORDER BY 2 DESC").fetchall()
    users, dau = conn.execute(
        "SELECT count(DISTINCT user_key), round(count(*)::numeric / greatest(1, count(DISTINCT bucket)))"
        " FROM analytics.ca_user_daily WHERE fk_app = %s", [big]).fetchone()
    top = conn.execute(
        "WITH u AS (SELECT sum(event_count) AS n FROM analytics.ca_user_daily WHERE fk_app = %s GROUP BY user_key)"
        " SELECT round(100.0 * sum(n) FILTER (WHERE rk <= cnt / 100) / sum(n), 1)"
        " FROM (SELECT n, row_number() OVER (ORDER BY n DESC) AS rk, count(*) OVER () AS cnt FROM u) x", [big]).fetchone()[0]
    funnel = dict(conn.execute(
        "SELECT event_type, count(DISTINCT coalesce(user_id, anonymous_id)) FROM analytics.tb_event"
        " WHERE fk_app = %s AND event_type = ANY (%s) GROUP BY 1", [big, list(FUNNEL)]).fetchall())
    return {
        "events_per_app": {k: v for k, v in per_app},
        "big_app_users": users,
        "big_app_avg_dau": int(dau or 0),
        "big_app_top1pct_share": float(top or 0),
        "big_app_funnel_users": {k: funnel.get(k, 0) for k in FUNNEL},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="a migrated PostgreSQL-engine database")
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--end", type=datetime.fromisoformat, help="end of the window (default: now)")
    p.add_argument("--jobs", type=int, default=2, help="connections inserting in parallel (default 2)")
    p.add_argument("--force", action="store_true", help="wipe existing events, rollups and bench apps first")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        if args.force:
            wipe(conn)
        elif conn.execute("SELECT EXISTS (SELECT 1 FROM analytics.tb_event)").fetchone()[0]:
            print("analytics.tb_event has rows: pass --force to wipe them (and the rollups)", file=sys.stderr)
            return 2
    end = args.end.astimezone(timezone.utc) if args.end else None
    ds = generate(args.database_url, events=args.events, days=args.days, seed=args.seed, end=end, jobs=args.jobs)
    print(f"generated {ds.events:,} events, {ds.users:,} users, {ds.gen_start:%Y-%m-%d %H:%M} .. "
          f"{ds.gen_end:%Y-%m-%d %H:%M} UTC in {ds.timings['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
