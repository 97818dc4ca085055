"""Analytics query benchmark: each SQL function next to its raw-SQL equivalent, same run, same data.

    .venv/bin/python -m bench.queries [--events N] [--days D] [--seed S]
                                      [--database-url URL | --data-dir DIR] [--regenerate]
                                      [--repeat R] [--repeat-raw R] [--only KEYS] [--set NAME=VALUE]
                                      [--explain]

On demand only, never part of the test suite. The data set comes from bench.generate (10M
events over 60 days by default). Without --database-url or --data-dir, it is generated into a
private PostgreSQL cluster (tests.engines.start_postgres) that is deleted at the end; with
--data-dir, into a cluster kept in that directory (pywrap.embedded.EmbeddedCluster), and with
--database-url into that database -- in both cases a later run with the same --events, --days
and --seed reuses it. See bench/README.md for what each row measures.

Method, in short:
* Every query first runs once with all its variants in ONE repeatable-read transaction (same
  snapshot, same now()), and the answers are compared: a function that is fast but wrong is
  reported, not praised. That run also warms the caches.
* Then each variant runs --repeat times (raw SQL: --repeat-raw times) on one autocommit
  connection; the table shows the median and the p95 (nearest rank) of the client-side wall
  time of execute + fetchall, the speed-up over the raw query, and the target of issue 3.
* Functions that do not exist in the migrated database are reported as "missing".
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from bench import generate as gen

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNNEL_WINDOW = timedelta(days=14)
LIVE_SECONDS = 60
COHORT_IDENTIFIER = "bench-q-first-day"
COHORT_TIMEOUT_S = 120


# --------------------------------------------------------------------------------------
# the queries


@dataclass
class Variant:
    label: str
    sql: str
    params: dict[str, Any]
    raw: bool = False
    needs: str | None = None  # analytics.<function> that must exist
    settings: dict[str, str] = field(default_factory=dict)  # SET for this variant only
    normalize: Callable[[list[tuple]], Any] = lambda rows: rows


@dataclass
class Case:
    key: str
    title: str
    target_ms: float | None
    variants: list[Variant]
    note: str = ""


@dataclass
class Timing:
    variant: Variant
    status: str = "ok"  # ok | missing | error
    error: str = ""
    samples: list[float] = field(default_factory=list)  # ms
    rows: int = 0
    answer: str = ""  # "= raw", "differs: ..." or ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        s = sorted(self.samples)
        return s[max(0, math.ceil(0.95 * len(s)) - 1)]


def _metric_counts(rows: list[tuple]) -> dict:
    """fn_metrics rows (metric_type, value, dimension, date) -> {(date, event_type): count}."""
    out = {}
    for metric, value, dim, day in rows:
        if metric == f"{dim}_count" or (metric == "crash_count" and dim in ("crash", "app_crash")):
            out[(day, dim)] = int(value)
    return out


def _pairs(rows: list[tuple]) -> dict:
    return {tuple(r[:-1]) if len(r) > 2 else r[0]: int(r[-1]) for r in rows}


def _unique_users(rows: list[tuple]) -> dict:
    return {day: int(value) for metric, value, _dim, day in rows if metric == "unique_users"}


def _all_metrics(rows: list[tuple]) -> dict:
    """fn_metrics rows (metric_type, value, dimension, date) -> {(date, metric_type): value}."""
    return {(day, metric): round(float(value), 3) for metric, value, _dim, day in rows}


def _funnel(rows: list[tuple]) -> dict:
    """fn_funnel rows (breakdown, step, event_type, users, ...) -> {step: users}."""
    return {int(r[1]): int(r[3]) for r in rows if r[0] == "all"}


def _retention(rows: list[tuple]) -> dict:
    """(cohort_start, cohort_size, period, users, ...) -> {(cohort_start, period): (size, users)}."""
    return {(r[0], int(r[2])): (int(r[1]), int(r[3])) for r in rows}


def _cohort_retention(rows: list[tuple]) -> dict:
    """(period, period_start?, cohort_size, returning_users, ...) -> {period: (size, returning)}."""
    return {int(r[0]): (int(r[2]), int(r[3])) for r in rows}


def _live(rows: list[tuple]) -> tuple:
    pageviews, users, crashes, avg = rows[0][-4:]
    return (int(pageviews or 0), int(users or 0), int(crashes or 0), None if avg is None else round(float(avg), 3))


RAW_DAILY_COUNTS = """
SELECT date_trunc('day', e."timestamp" AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS day, e.event_type, count(*)
FROM analytics.tb_event e
WHERE e.fk_app = %(pk)s AND e."timestamp" >= %(t_from)s AND e."timestamp" < %(t_to)s
GROUP BY 1, 2 ORDER BY 1, 2
"""

# Every fn_metrics metric per local day (or hour: %(g)s), as docs/analytics.md defines them, from
# the raw events.
RAW_ALL_METRICS = """
WITH e AS (
    SELECT e.event_type, e.session_id, e."timestamp", coalesce(e.user_id, e.anonymous_id) AS user_key,
           date_trunc(%(g)s, e."timestamp" AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS day
    FROM analytics.tb_event e
    WHERE e.fk_app = %(pk)s AND e."timestamp" >= %(t_from)s AND e."timestamp" < %(t_to)s
), s AS (
    SELECT day, extract(epoch FROM max("timestamp") - min("timestamp")) AS seconds
    FROM e WHERE session_id IS NOT NULL GROUP BY day, session_id
)
SELECT event_type || '_count', count(*), 'all', day FROM e WHERE event_type <> 'crash' GROUP BY event_type, day
UNION ALL
SELECT 'crash_count', count(*) FILTER (WHERE event_type IN ('crash', 'app_crash')), 'all', day FROM e GROUP BY day
UNION ALL
SELECT 'unique_users', count(DISTINCT user_key), 'all', day FROM e WHERE user_key IS NOT NULL GROUP BY day
UNION ALL
SELECT 'sessions', count(*), 'all', day FROM s GROUP BY day
UNION ALL
SELECT 'avg_session_duration', round(avg(seconds), 3), 'all', day FROM s GROUP BY day
"""

RAW_DAU = """
SELECT date_trunc('day', e."timestamp" AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS day,
       count(DISTINCT coalesce(e.user_id, e.anonymous_id))
FROM analytics.tb_event e
WHERE e.fk_app = %(pk)s AND e."timestamp" >= %(t_from)s AND e."timestamp" < %(t_to)s
  AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
GROUP BY 1 ORDER BY 1
"""

# Unique users per local week or month (cut to the range), from the raw events.
RAW_PERIOD_USERS = """
SELECT date_trunc(%(g)s, e."timestamp" AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s AS period,
       count(DISTINCT coalesce(e.user_id, e.anonymous_id))
FROM analytics.tb_event e
WHERE e.fk_app = %(pk)s AND e."timestamp" >= %(t_from)s AND e."timestamp" < %(t_to)s
  AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
GROUP BY 1 ORDER BY 1
"""

ROLLUP_DAU = """
SELECT u.bucket, count(*)
FROM analytics.ca_user_daily u
WHERE u.fk_app = %(pk)s AND u.bucket >= %(t_from)s AND u.bucket < %(t_to)s
GROUP BY 1 ORDER BY 1
"""
APP_DAILY_DAU = """
SELECT a.bucket, a.users
FROM analytics.ca_app_daily a
WHERE a.fk_app = %(pk)s AND a.bucket >= %(t_from)s AND a.bucket < %(t_to)s
ORDER BY 1
"""

# A user enters with their first step-1 event in the range; each later step is the first event
# of its type after the previous step and at most the window after that step-1 event.
RAW_FUNNEL = """
WITH ev AS (
    SELECT coalesce(e.user_id, e.anonymous_id) AS uk, e.event_type, e."timestamp" AS ts
    FROM analytics.tb_event e
    WHERE e.fk_app = %(pk)s AND e.event_type = ANY (%(steps)s)
      AND e."timestamp" >= %(t_from)s AND e."timestamp" < %(t_to)s + %(window)s
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
), s1 AS (
    SELECT uk, min(ts) AS t1 FROM ev WHERE event_type = (%(steps)s)[1] AND ts < %(t_to)s GROUP BY uk
), s2 AS (
    SELECT s1.uk, s1.t1, min(ev.ts) AS t2
    FROM s1 JOIN ev ON ev.uk = s1.uk AND ev.event_type = (%(steps)s)[2] AND ev.ts > s1.t1 AND ev.ts <= s1.t1 + %(window)s
    GROUP BY 1, 2
), s3 AS (
    SELECT s2.uk
    FROM s2 JOIN ev ON ev.uk = s2.uk AND ev.event_type = (%(steps)s)[3] AND ev.ts > s2.t2 AND ev.ts <= s2.t1 + %(window)s
    GROUP BY 1
)
SELECT 1, count(*) FROM s1 UNION ALL SELECT 2, count(*) FROM s2 UNION ALL SELECT 3, count(*) FROM s3
"""

# First-time weekly retention, as fn_retention defines it: cohorts are the calendar weeks (from
# Monday, local) from the one holding p_from to the one holding p_to; a user's cohort is the week
# of their first event ever; period k = active in the k-th week after it. One row per cohort and
# period that has started by today, empty cells and cohorts included.
RAW_RETENTION = """
WITH firsts AS (
    SELECT coalesce(e.user_id, e.anonymous_id) AS uk, min(e."timestamp") AS first_ts
    FROM analytics.tb_event e
    WHERE e.fk_app = %(pk)s AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
    GROUP BY 1
), cohort AS (
    SELECT uk, date_trunc('week', (first_ts AT TIME ZONE %(tz)s)::date)::date AS cohort_start
    FROM firsts
    WHERE first_ts >= %(t_week0)s AND first_ts < %(t_cohorts_end)s
), active AS (
    SELECT DISTINCT coalesce(e.user_id, e.anonymous_id) AS uk,
           date_trunc('week', (e."timestamp" AT TIME ZONE %(tz)s)::date)::date AS week
    FROM analytics.tb_event e
    WHERE e.fk_app = %(pk)s AND e."timestamp" >= %(t_week0)s AND e."timestamp" < %(t_end)s
      AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
), grid AS (
    SELECT c::date AS cohort_start, k
    FROM generate_series(%(week0)s::date, %(week_last)s::date, interval '7 days') AS c, generate_series(0, %(periods)s - 1) AS k
    WHERE c::date + 7 * k <= (now() AT TIME ZONE %(tz)s)::date
), sizes AS (
    SELECT cohort_start, count(*) AS n FROM cohort GROUP BY 1
), cells AS (
    SELECT c.cohort_start, (a.week - c.cohort_start) / 7 AS k, count(*) AS n
    FROM cohort c JOIN active a ON a.uk = c.uk AND a.week >= c.cohort_start
    GROUP BY 1, 2
)
SELECT g.cohort_start, coalesce(s.n, 0), g.k, coalesce(x.n, 0)
FROM grid g LEFT JOIN sizes s USING (cohort_start) LEFT JOIN cells x ON x.cohort_start = g.cohort_start AND x.k = g.k
ORDER BY 1, 3
"""

# The seed's question: the users first seen on one day, and how many came back in each of the
# 8 weeks after it (ended weeks only), from the raw events.
RAW_DAY_COHORT = """
WITH firsts AS (
    SELECT coalesce(e.user_id, e.anonymous_id) AS uk, min(e."timestamp") AS first_ts
    FROM analytics.tb_event e
    WHERE e.fk_app = %(pk)s AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
    GROUP BY 1
), cohort AS (
    SELECT uk FROM firsts WHERE (first_ts AT TIME ZONE %(tz)s)::date = %(day)s
), active AS (
    SELECT DISTINCT coalesce(e.user_id, e.anonymous_id) AS uk, ((e."timestamp" AT TIME ZONE %(tz)s)::date - %(day)s) / 7 AS period
    FROM analytics.tb_event e
    WHERE e.fk_app = %(pk)s AND e."timestamp" >= %(t_day)s AND e."timestamp" < %(t_day)s + interval '7 days' * %(periods)s
)
SELECT p.k, count(*), count(a.uk)
FROM generate_series(0, %(periods)s - 1) AS p(k)
CROSS JOIN cohort c
LEFT JOIN active a ON a.uk = c.uk AND a.period = p.k
WHERE %(day)s + 7 * (p.k + 1) <= (now() AT TIME ZONE %(tz)s)::date
GROUP BY 1 ORDER BY 1
"""

# The same question from the user-day rollup (a UTC app: local days are its UTC buckets).
ROLLUP_DAY_COHORT = """
WITH cohort AS (
    SELECT user_key FROM analytics.ca_user_daily
    WHERE fk_app = %(pk)s GROUP BY user_key HAVING min(bucket) = %(t_day)s
), active AS (
    SELECT DISTINCT u.user_key, ((u.bucket AT TIME ZONE 'UTC')::date - %(day)s) / 7 AS period
    FROM analytics.ca_user_daily u JOIN cohort c USING (user_key)
    WHERE u.fk_app = %(pk)s AND u.bucket >= %(t_day)s AND u.bucket < %(t_day)s + interval '7 days' * %(periods)s
)
SELECT p.k, count(*), count(a.user_key)
FROM generate_series(0, %(periods)s - 1) AS p(k)
CROSS JOIN cohort c
LEFT JOIN active a ON a.user_key = c.user_key AND a.period = p.k
WHERE %(day)s + 7 * (p.k + 1) <= (now() AT TIME ZONE 'UTC')::date
GROUP BY 1 ORDER BY 1
"""

RAW_LIVE = """
SELECT count(*) FILTER (WHERE e.event_type IN ('page_view', 'screen_view')),
       count(DISTINCT coalesce(e.user_id, e.anonymous_id)),
       count(*) FILTER (WHERE e.event_type IN ('crash', 'app_crash')),
       (SELECT avg(extract(epoch FROM s.last_at - s.first_at))::float8
        FROM (SELECT min(x."timestamp") AS first_at, max(x."timestamp") AS last_at
              FROM analytics.tb_event x
              WHERE x.fk_app = %(pk)s AND x.session_id IS NOT NULL
                AND x."timestamp" > now() - make_interval(secs => %(secs)s) - interval '1 hour' AND x."timestamp" <= now()
              GROUP BY x.session_id
              HAVING max(x."timestamp") > now() - make_interval(secs => %(secs)s)) s)
FROM analytics.tb_event e
WHERE e.fk_app = %(pk)s AND e."timestamp" > now() - make_interval(secs => %(secs)s) AND e."timestamp" <= now()
"""


# The rollup views are planned with large cost estimates (a union of materialized and live
# parts), so with the server's default jit=on a query on them is JIT-compiled for seconds;
# docs/analytics.md advises analysts to turn it off (fn_metrics does it itself).
NO_JIT = {"jit": "off"}
# Every count metric of the generated event types: fn_metrics without the user and session metrics.
COUNT_METRICS = [f"{t}_count" for t in gen.EVENT_TYPES if t != "crash"] + ["crash_count"]


def build_cases(ds: gen.Dataset, tz_of: dict[str, str]) -> list[Case]:
    big = ds.big_app
    berlin = gen.APP_PREFIX + gen.APPS[1][0]
    steps = list(gen.FUNNEL)

    def window(app: str) -> dict[str, Any]:
        """The 30 local days that end the day before the data set's last (partial) day."""
        tz = tz_of[app]
        d_to = ds.gen_end.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)
        d_from = d_to - timedelta(days=29)
        return {"app": app, "pk": ds.apps[app], "tz": tz, "d_from": d_from, "d_to": d_to,
                "t_from": _local_midnight(d_from, tz), "t_to": _local_midnight(d_to + timedelta(days=1), tz)}

    w, wb = window(big), window(berlin)
    # Retention: the 8 calendar weeks from the first Monday after the data set's first whole day
    # (8 weeks later is about its end: the last cohorts' later periods are not there yet).
    tz = w["tz"]
    first_day = ds.gen_start.astimezone(ZoneInfo(tz)).date() + timedelta(days=1)
    r_from = first_day + timedelta(days=(7 - first_day.weekday()) % 7)
    r_to = r_from + timedelta(days=55)
    ret = {**w, "d_from": r_from, "d_to": r_to, "periods": 8, "week0": r_from, "week_last": r_from + timedelta(weeks=7),
           "t_week0": _local_midnight(r_from, tz), "t_cohorts_end": _local_midnight(r_from + timedelta(weeks=8), tz),
           "t_end": _local_midnight(r_from + timedelta(weeks=15), tz)}
    # The one-day cohort: the data set's first whole day, whose 8 weeks end before the data does.
    cohort_day = {**w, "day": first_day, "t_day": _local_midnight(first_day, tz), "periods": 8}

    def metrics_case(key: str, title: str, p: dict[str, Any]) -> Case:
        return Case(key, title, 50, [
            Variant("fn_metrics(app, from, to, 'day', 'event_type')",
                    "SELECT * FROM analytics.fn_metrics(%(app)s, %(d_from)s, %(d_to)s, 'day', 'event_type')", p,
                    needs="fn_metrics", normalize=_metric_counts),
            Variant("fn_metrics(..., p_metric_types => the <type>_count ones)",
                    "SELECT * FROM analytics.fn_metrics(%(app)s, %(d_from)s, %(d_to)s, 'day', 'event_type',"
                    " %(count_metrics)s)", {**p, "count_metrics": COUNT_METRICS},
                    needs="fn_metrics", normalize=_metric_counts),
            Variant("raw: GROUP BY local day, event_type over tb_event", RAW_DAILY_COUNTS, p, raw=True,
                    normalize=_pairs),
        ])

    def all_metrics_case(key: str, title: str, p: dict[str, Any], g: str = "day", target: float | None = 50) -> Case:
        return Case(key, title, target, [
            Variant(f"fn_metrics(app, from, to, '{g}')",
                    "SELECT * FROM analytics.fn_metrics(%(app)s, %(d_from)s, %(d_to)s, %(g)s)", {**p, "g": g},
                    needs="fn_metrics", normalize=_all_metrics),
            Variant(f"raw: every metric GROUP BY {g} over tb_event", RAW_ALL_METRICS, {**p, "g": g}, raw=True,
                    normalize=_all_metrics),
        ], note="" if target else "no target in the issue")

    # the last two of those days, by hour (a UTC app: its hours are UTC hours)
    two_days = {**w, "d_from": w["d_to"] - timedelta(days=1),
                "t_from": _local_midnight(w["d_to"] - timedelta(days=1), w["tz"])}

    return [
        metrics_case("metrics", f"daily counts by event type, 30 days ({big}, UTC: daily rollup)", w),
        metrics_case("metrics_tz", f"daily counts by event type, 30 days ({berlin}, Europe/Berlin: local-day summary)",
                     wb),
        all_metrics_case("metrics_all", f"every metric per day, 30 days ({big}, UTC: daily rollups)", w),
        all_metrics_case("metrics_all_tz", f"every metric per day, 30 days ({berlin}, Europe/Berlin: local-day summary)",
                         wb),
        all_metrics_case("metrics_hourly", f"every metric per hour, 2 days ({big})", two_days, "hour", None),
        Case("dau_tz", f"DAU, 30 days ({berlin}, Europe/Berlin: local-day summary)", 50, [
            Variant("fn_metrics(..., 'day', 'none', ARRAY['unique_users'])",
                    "SELECT * FROM analytics.fn_metrics(%(app)s, %(d_from)s, %(d_to)s, 'day', 'none',"
                    " ARRAY['unique_users'])", wb, needs="fn_metrics", normalize=_unique_users),
            Variant("raw: count(DISTINCT coalesce(user_id, anonymous_id)) per local day", RAW_DAU, wb, raw=True,
                    normalize=_pairs),
        ]),
        Case("dau", f"DAU, 30 days ({big})", 50, [
            Variant("ca_user_daily: count(*) GROUP BY bucket (jit off)", ROLLUP_DAU, w, normalize=_pairs,
                    settings=NO_JIT),
            Variant("ca_app_daily: users per bucket (jit off)", APP_DAILY_DAU, w, normalize=_pairs,
                    settings=NO_JIT),
            Variant("fn_metrics(..., 'day', 'none', ARRAY['unique_users'])",
                    "SELECT * FROM analytics.fn_metrics(%(app)s, %(d_from)s, %(d_to)s, 'day', 'none',"
                    " ARRAY['unique_users'])", w, needs="fn_metrics", normalize=_unique_users),
            Variant("raw: count(DISTINCT coalesce(user_id, anonymous_id)) per day", RAW_DAU, w, raw=True,
                    normalize=_pairs),
        ]),
        *[Case(f"{g[0]}au", f"{g}ly unique users ({g[0].upper()}AU), the 30 days ({big})", None, [
            Variant(f"fn_metrics(..., '{g}', 'none', ARRAY['unique_users'])",
                    "SELECT * FROM analytics.fn_metrics(%(app)s, %(d_from)s, %(d_to)s, %(g)s, 'none',"
                    " ARRAY['unique_users'])", {**w, "g": g}, needs="fn_metrics", normalize=_unique_users),
            Variant(f"raw: count(DISTINCT coalesce(user_id, anonymous_id)) per local {g}", RAW_PERIOD_USERS,
                    {**w, "g": g}, raw=True, normalize=_pairs),
        ], note="no target in the issue; the first and last periods are cut to the range") for g in ("week", "month")],
        Case("funnel", f"3-step funnel {' > '.join(steps)}, 30 days, 14-day window ({big})", 500, [
            Variant("fn_funnel(app, steps, from, to)",
                    "SELECT * FROM analytics.fn_funnel(p_app => %(app)s, p_steps => %(steps)s, p_from => %(d_from)s,"
                    " p_to => %(d_to)s, p_conversion_window => %(window)s)",
                    {**w, "steps": steps, "window": FUNNEL_WINDOW}, needs="fn_funnel", normalize=_funnel),
            Variant("raw: first step-1 per user, then later steps in order", RAW_FUNNEL,
                    {**w, "steps": steps, "window": FUNNEL_WINDOW}, raw=True, normalize=_pairs),
        ]),
        Case("retention", f"weekly retention matrix 8x8, first-time cohorts from {r_from} ({big})", 300, [
            Variant("fn_retention(app, from, to, 'week', 8, 'first_time')",
                    "SELECT cohort_start, cohort_size, period, users FROM analytics.fn_retention("
                    "p_app => %(app)s, p_from => %(d_from)s, p_to => %(d_to)s, p_interval => 'week',"
                    " p_periods => %(periods)s, p_mode => 'first_time')", ret, needs="fn_retention",
                    normalize=_retention),
            Variant("raw: first event per user, then active days", RAW_RETENTION, ret, raw=True,
                    normalize=_retention),
        ]),
        Case("day_cohort", f"one-day cohort (first seen {first_day}), weekly retention, 8 weeks ({big})", None, [
            Variant("fn_cohort_retention(app, cohort, 'week', 8)",
                    "SELECT * FROM analytics.fn_cohort_retention(%(app)s, %(cohort)s, 'week', %(periods)s)",
                    {**cohort_day, "cohort": COHORT_IDENTIFIER}, needs="fn_cohort_retention",
                    normalize=_cohort_retention),
            Variant("ca_user_daily: first bucket per user, active weeks (jit off)", ROLLUP_DAY_COHORT, cohort_day,
                    normalize=lambda rows: {int(k): (int(n), int(r)) for k, n, r in rows}, settings=NO_JIT),
            Variant("raw: first event per user, then active weeks", RAW_DAY_COHORT, cohort_day, raw=True,
                    normalize=lambda rows: {int(k): (int(n), int(r)) for k, n, r in rows}),
        ], note="the issue measured the raw query at 7.0 s; no target"),
        Case("live", f"live metrics, last {LIVE_SECONDS} s ({big})", 20, [
            Variant(f"fn_live_metrics(app, {LIVE_SECONDS})",
                    "SELECT * FROM analytics.fn_live_metrics(%(app)s, %(secs)s)",
                    {**w, "secs": LIVE_SECONDS}, needs="fn_live_metrics", normalize=_live),
            Variant("raw: the same four aggregates inline", RAW_LIVE, {**w, "secs": LIVE_SECONDS}, raw=True,
                    normalize=_live),
        ]),
    ]


def _local_midnight(d: date, tz: str) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


# --------------------------------------------------------------------------------------
# running


def existing_functions(conn: psycopg.Connection) -> set[str]:
    return {name for (name,) in conn.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'analytics'::regnamespace").fetchall()}


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def check_answers(conn: psycopg.Connection, case: Case, timings: list[Timing]) -> None:
    """Run every variant once in one repeatable-read transaction and compare with the raw one."""
    results: dict[int, Any] = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for i, t in enumerate(timings):
            if t.status != "ok":
                continue
            try:
                with conn.transaction():  # a savepoint: one failing function spoils nothing else
                    for name, value in t.variant.settings.items():
                        conn.execute("SELECT set_config(%s, %s, true)", [name, value])
                    rows = conn.execute(t.variant.sql, t.variant.params).fetchall()
                t.rows = len(rows)
                results[i] = t.variant.normalize(rows)
            except psycopg.Error as exc:
                t.status, t.error = "error", _short(exc)
    raw = [i for i, t in enumerate(timings) if t.variant.raw and i in results]
    for i, t in enumerate(timings):
        if t.variant.raw or i not in results or not raw:
            continue
        expected = results[raw[0]]
        got = results[i]
        if got == expected:
            t.answer = "= raw"
        else:
            t.answer = "differs: " + _diff(got, expected)


def _diff(got: Any, expected: Any) -> str:
    if isinstance(got, dict) and isinstance(expected, dict):
        keys = sorted(set(got) | set(expected), key=str)
        bad = [k for k in keys if got.get(k) != expected.get(k)]
        first = bad[0]
        return f"{len(bad)} of {len(keys)} keys, e.g. {first}: {got.get(first)} vs raw {expected.get(first)}"
    return f"{got} vs raw {expected}"


def time_variant(conn: psycopg.Connection, t: Timing, repeat: int) -> None:
    saved = {name: conn.execute("SELECT current_setting(%s)", [name]).fetchone()[0] for name in t.variant.settings}
    for name, value in t.variant.settings.items():
        conn.execute("SELECT set_config(%s, %s, false)", [name, value])
    try:
        with conn.cursor() as cur:
            for _ in range(repeat):
                t0 = time.perf_counter()
                cur.execute(t.variant.sql, t.variant.params)
                cur.fetchall()
                t.samples.append((time.perf_counter() - t0) * 1000)
    finally:
        for name, value in saved.items():
            conn.execute("SELECT set_config(%s, %s, false)", [name, value])


def explain(conn: psycopg.Connection, t: Timing) -> None:
    """Print the plans of one run: EXPLAIN ANALYZE for raw SQL, auto_explain (nested
    statements, sent to this client as LOG messages) for functions. Settings are local to
    one transaction, rolled back."""
    print(f"\n--- plan: {t.variant.label}")
    notices: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(keep)
    try:
        with conn.transaction(force_rollback=True):
            settings = dict(t.variant.settings)
            if not t.variant.raw:
                conn.execute("LOAD 'auto_explain'")
                settings.update({"auto_explain.log_min_duration": "0", "auto_explain.log_analyze": "on",
                                 "auto_explain.log_buffers": "on", "auto_explain.log_nested_statements": "on",
                                 "client_min_messages": "log"})
            for name, value in settings.items():
                conn.execute("SELECT set_config(%s, %s, true)", [name, value])
            if t.variant.raw:
                for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + t.variant.sql, t.variant.params):
                    print(line)
            else:
                conn.execute(t.variant.sql, t.variant.params).fetchall()
    except psycopg.Error as exc:
        print(f"(could not explain: {_short(exc)})")
    finally:
        conn.remove_notice_handler(keep)
    for n in notices:
        print(n)


def prepare_live_tail(conn: psycopg.Connection, ds: gen.Dataset) -> str:
    """Live metrics need events in the last minute. When the data set ended a while ago, replace
    the copies an earlier run made (sessions suffixed "-live") with a copy of the data set's last
    hour, or of its last `lag` when it ended less than an hour ago, shifted to end now: the
    copies then lie between the data set's end and now, never inside it."""
    lag = conn.execute("SELECT now() - %s", [ds.gen_end]).fetchone()[0]
    if lag < timedelta(minutes=2):
        return "none needed (the data set ends now)"
    span = min(lag, timedelta(hours=1))
    params = {"end": ds.gen_end, "pks": list(ds.apps.values()), "span": span}
    with conn.transaction():
        removed = conn.execute(
            """DELETE FROM analytics.tb_event WHERE fk_app = ANY (%(pks)s) AND session_id LIKE '%%-live'
               AND "timestamp" > %(end)s - interval '1 hour'""", params).rowcount
        added = conn.execute(
            """
            INSERT INTO analytics.tb_event (id, fk_app, event_type, "timestamp", received_at, user_id, anonymous_id,
                                            session_id, path, label, duration_ms, device, metadata)
            SELECT md5(e.id::text || now()::text)::uuid, e.fk_app, e.event_type, e."timestamp" + (now() - %(end)s),
                   e.received_at + (now() - %(end)s), e.user_id, e.anonymous_id, e.session_id || '-live', e.path,
                   e.label, e.duration_ms, e.device, e.metadata
            FROM analytics.tb_event e
            WHERE e.fk_app = ANY (%(pks)s) AND e."timestamp" > %(end)s - %(span)s AND e."timestamp" <= %(end)s
              AND e.session_id NOT LIKE '%%-live'
            """, params).rowcount
    return (f"copied the data set's last {span.total_seconds() / 60:.0f} min ({added:,} events) to end now "
            f"(removed {removed:,} copied by an earlier run)")


def run_maintenance(conn: psycopg.Connection) -> str:
    """What production runs every few minutes, so that the summaries the functions read are
    current: prc_run_maintenance, then the user-activity summary of fn_retention where it
    exists (idempotent if maintenance already refreshed it)."""
    done = []
    t0 = time.perf_counter()
    conn.execute("CALL analytics.prc_run_maintenance()")
    done.append(f"prc_run_maintenance {time.perf_counter() - t0:.1f} s")
    if "fn_refresh_user_activity" in existing_functions(conn):
        t0 = time.perf_counter()
        conn.execute("SELECT * FROM analytics.fn_refresh_user_activity()").fetchall()
        done.append(f"fn_refresh_user_activity() {time.perf_counter() - t0:.1f} s")
    return ", ".join(done)


def planning_costs(conninfo: str, case: Case, rounds: int = 3) -> str:
    """What a session pays to plan a case's first variant: its first call on a new connection,
    its next (warm) call, and its first call after an invalidation of the raw events' newest
    partition (chunk). Autovacuum's ANALYZE of a partition being written sends one each time (its
    row count changed), and it throws away every cached plan that reads the partition; here
    ``ALTER TABLE … RESET (fillfactor)`` sends the same invalidation without changing the data
    (an ANALYZE of unchanged data sends none). Medians of ``rounds`` new connections."""
    v = case.variants[0]
    first, warm, after = [], [], []
    with psycopg.connect(conninfo, autocommit=True) as admin:
        newest = admin.execute('SELECT tableoid::regclass::text FROM analytics.tb_event'
                               ' ORDER BY "timestamp" DESC LIMIT 1').fetchone()
        if newest is None:
            return "no raw events"
        for _ in range(rounds):
            with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
                for out in (first, warm):
                    t0 = time.perf_counter()
                    conn.execute(v.sql, v.params).fetchall()
                    out.append((time.perf_counter() - t0) * 1000)
                admin.execute(f"ALTER TABLE {newest[0]} RESET (fillfactor)")
                t0 = time.perf_counter()
                conn.execute(v.sql, v.params).fetchall()
                after.append((time.perf_counter() - t0) * 1000)
    m = statistics.median
    return (f"{v.label} ({case.key}): first call on a new connection {m(first):,.1f} ms, warm {m(warm):,.1f} ms, "
            f"first call after an invalidation of {newest[0]} {m(after):,.1f} ms ({m(after) / m(warm):,.1f}x warm); "
            f"medians of {rounds} connections")


def ensure_cohort(conn: psycopg.Connection, ds: gen.Dataset, day: date, fns: set[str]) -> str:
    """The one-day cohort for fn_cohort_retention, (re)computed now; returns what it took."""
    if not {"fn_create_cohort", "fn_refresh_cohort"} <= fns:
        return "cohort functions missing"
    filt = Jsonb({"first_seen": {"from": day.isoformat(), "to": day.isoformat()}})
    conn.execute("DELETE FROM analytics.tb_cohort WHERE fk_app = %s AND identifier = %s",
                 [ds.apps[ds.big_app], COHORT_IDENTIFIER])
    t0 = time.perf_counter()
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{COHORT_TIMEOUT_S}s"])
            size = conn.execute("SELECT user_count FROM analytics.fn_create_cohort(%s, %s, %s, %s)",
                                [ds.big_app, f"first seen on {day}", filt, COHORT_IDENTIFIER]).fetchone()[0]
    except psycopg.errors.QueryCanceled:
        return (f"fn_create_cohort did not finish within {COHORT_TIMEOUT_S} s (statement_timeout): "
                "fn_cohort_retention then has no cohort to read")
    except psycopg.Error as exc:
        return f"could not create the cohort: {_short(exc)}"
    return f"fn_create_cohort (members computed) took {(time.perf_counter() - t0) * 1000:,.0f} ms, {size:,} members"


def machine_info(conn: psycopg.Connection) -> list[tuple[str, str]]:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        mem = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    settings = conn.execute(
        "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN"
        " ('shared_buffers', 'work_mem', 'effective_cache_size', 'max_parallel_workers_per_gather', 'jit',"
        " 'random_page_cost', 'fsync', 'synchronous_commit')").fetchone()[0]
    sizes = conn.execute(
        "SELECT pg_size_pretty(sum(pg_table_size(c.oid))), pg_size_pretty(sum(pg_indexes_size(c.oid)))"
        " FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'analytics.tb_event'::regclass"
        ).fetchone()
    files = ", ".join(f"{name} {_function_state(conn, name)}"
                      for name in ("fn_metrics", "fn_funnel", "fn_retention", "fn_cohort_retention", "fn_live_metrics"))
    return [
        ("nproc", f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"),
        ("cpu", cpu),
        ("memory", mem),
        ("kernel", platform.release()),
        ("python / psycopg", f"{platform.python_version()} / {psycopg.__version__}"),
        ("server", conn.execute("SELECT version()").fetchone()[0]),
        ("engine", conn.execute("SELECT analytics.fn_engine()").fetchone()[0]),
        ("settings", settings),
        ("tb_event", f"table {sizes[0]}, indexes {sizes[1]}"),
        ("function files", files),
    ]


def _function_state(conn: psycopg.Connection, name: str) -> str:
    """Which version of a function was measured: md5 of its source and its file's git state."""
    import subprocess

    md5 = conn.execute("SELECT left(md5(string_agg(p.prosrc, '' ORDER BY p.oid)), 8) FROM pg_proc p"
                       " WHERE p.pronamespace = 'analytics'::regnamespace AND p.proname = %s", [name]).fetchone()[0]
    if md5 is None:
        return "(missing)"
    path = REPO_ROOT / "sql/functions" / f"{name}.sql"
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", str(path)],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"(md5 {md5})"
    state = {"": f"as at {head}", "??": "uncommitted new file"}.get(out[:2].strip(), f"{head} + uncommitted edits")
    return f"(md5 {md5}, {state})"


def report(ds: gen.Dataset, cases: list[Case], results: dict[str, list[Timing]], args: argparse.Namespace,
           extra: list[tuple[str, str]], info: list[tuple[str, str]]) -> None:
    print()
    big_events = ds.summary.get("events_per_app", {}).get(ds.big_app, 0)
    print(f"Analytics queries on {ds.events:,} events over {ds.days} days "
          f"({ds.gen_start:%Y-%m-%d %H:%M} .. {ds.gen_end:%Y-%m-%d %H:%M} UTC, seed {ds.seed}); "
          f"{ds.big_app}: {big_events:,} events, {ds.summary.get('big_app_users', 0):,} users, "
          f"~{ds.summary.get('big_app_avg_dau', 0):,} DAU")
    print(f"Warm cache; median and p95 of {args.repeat} runs ({args.repeat_raw} for raw SQL), client-side ms; "
          f"'x raw' = raw median / median")
    header = f"{'query / variant':<62} {'median':>9} {'p95':>9} {'x raw':>8}  {'target':<9} {'result':<7} answer"
    print(header)
    print("-" * len(header))
    summary = []
    for case in cases:
        timings = results.get(case.key)
        if timings is None:
            continue
        print(case.title + (f"  [{case.note}]" if case.note else ""))
        raw = next((t for t in timings if t.variant.raw and t.status == "ok" and t.samples), None)
        for t in timings:
            label = ("  " + t.variant.label)[:62]
            if t.status != "ok":
                print(f"{label:<62} {t.status:>9}  {t.error}".rstrip())
                if not t.variant.raw and case.target_ms is not None:
                    summary.append((case.title, t.variant.label, t.status))
                continue
            ratio = ""
            if raw and not t.variant.raw:
                r = raw.median / t.median
                ratio = f"{r:.0f}x" if r >= 10 else f"{r:.2f}x"
            target = result = ""
            if not t.variant.raw and case.target_ms is not None:
                target = f"< {case.target_ms:g} ms"
                result = "met" if t.median < case.target_ms else "MISS"
                summary.append((case.title, t.variant.label, f"{result} ({t.median:,.1f} ms)"))
            print(f"{label:<62} {t.median:>9,.1f} {t.p95:>9,.1f} {ratio:>8}  {target:<9} {result:<7} {t.answer}".rstrip())
    print()
    print("Targets of issue 3 (on the median):")
    for title, label, verdict in summary:
        print(f"  {verdict:<22} {label}  -- {title}")
    for k, v in extra:
        print(f"{k}: {v}")
    print("Machine:")
    for k, v in info:
        print(f"  {k:<16} {v}")


# --------------------------------------------------------------------------------------
# setup


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.queries", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="events in the data set (default 10000000)")
    p.add_argument("--days", type=int, default=60, help="days the data set spans, ending now (default 60)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--end", type=_utc_time, help="end of the data set's window, ISO time (default: now)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="generate into / reuse this PostgreSQL-engine database")
    where.add_argument("--data-dir", type=Path,
                       help="generate into / reuse a PostgreSQL cluster kept in this directory")
    p.add_argument("--regenerate", action="store_true",
                   help="wipe the events, rollups and bench apps of the database and generate again")
    p.add_argument("--jobs", type=int, default=2, help="connections generating in parallel (default 2)")
    p.add_argument("--repeat", type=int, default=20, help="timed runs of each function/rollup query (default 20)")
    p.add_argument("--repeat-raw", type=int, default=5, help="timed runs of each raw query (default 5)")
    p.add_argument("--only", help="comma-separated subset of: metrics,metrics_tz,metrics_all,metrics_all_tz,metrics_hourly,"
                                  "dau,dau_tz,wau,mau,funnel,retention,day_cohort,live")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="SET this on the timing connection (repeatable), e.g. work_mem=64MB")
    p.add_argument("--explain", action="store_true", help="print the plan of one run of every variant at the end")
    p.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")
    p.add_argument("--quiet", action="store_true", help="print only the final table")
    return p.parse_args(argv)


def _utc_time(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server = cluster = tmp = None
    try:
        if args.database_url:
            conninfo = args.database_url
        elif args.data_dir:
            from pywrap.embedded import EmbeddedCluster

            _prefer_system_postgres()
            cluster = EmbeddedCluster(args.data_dir)
            conninfo = cluster.start()
            _say(args, f"cluster in {cluster.data_dir} on port {cluster.port}")
        else:
            from tests.engines import start_postgres

            tmp = tempfile.TemporaryDirectory(prefix="ma-bench-q-")
            _say(args, "starting a private PostgreSQL cluster ...")
            server = start_postgres(Path(tmp.name))
            with server.connect("postgres", autocommit=True) as c:
                c.execute("CREATE DATABASE ma_bench")
            conninfo = server.conninfo("ma_bench")
        return run(args, conninfo)
    finally:
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
        if tmp is not None:
            tmp.cleanup()


def _prefer_system_postgres() -> None:
    """The kept cluster runs the same PostgreSQL as the private one (the system's, >= 15)
    unless MOBILE_ANALYTICS_PG_BINDIR says otherwise."""
    if os.environ.get("MOBILE_ANALYTICS_PG_BINDIR"):
        return
    try:
        from tests.engines import find_pg_ctl

        os.environ["MOBILE_ANALYTICS_PG_BINDIR"] = str(find_pg_ctl().parent)
    except Exception:  # noqa: BLE001 -- then EmbeddedCluster picks its own binaries
        pass


def _say(args: argparse.Namespace, msg: str) -> None:
    if not args.quiet:
        print(msg, flush=True)


class BenchError(RuntimeError):
    """The benchmark cannot run on this database as asked (exit status 2)."""


@dataclass
class Outcome:
    dataset: gen.Dataset
    cases: list[Case]
    results: dict[str, list[Timing]]
    extra: list[tuple[str, str]]
    info: list[tuple[str, str]]


def run(args: argparse.Namespace, conninfo: str) -> int:
    """Migrate, make sure the data set is there, time every case, print the report."""
    try:
        out = collect(args, conninfo)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    report(out.dataset, out.cases, out.results, args, out.extra, out.info)
    if args.explain:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SET client_min_messages = warning")
            for case in out.cases:
                for t in out.results[case.key]:
                    if t.status == "ok":
                        explain(conn, t)
    return 0


def collect(args: argparse.Namespace, conninfo: str) -> Outcome:
    """Everything but the printing: the data set, the cases and their timings."""
    if not args.no_migrate:
        from pywrap.migrate import migrate

        from pywrap.migrate import MigrationError

        try:
            rep = migrate(conninfo)
        except MigrationError as exc:
            raise BenchError(f"cannot migrate the database: {exc}. A migration file was edited since this "
                             "database was made (a development tree): use a fresh database or data directory, "
                             "or pass --no-migrate to measure the functions it already has") from exc
        _say(args, f"migrated (engine {rep.engine}, applied {', '.join(rep.applied) or 'nothing new'})")
    extra: list[tuple[str, str]] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        ds = gen.existing(conn)
        same = (ds is not None and (ds.events, ds.days, ds.seed) == (args.events, args.days, args.seed)
                and (args.end is None or args.end == ds.gen_end))
        if not same:
            has_events = conn.execute("SELECT EXISTS (SELECT 1 FROM analytics.tb_event)").fetchone()[0]
            if has_events and not args.regenerate:
                what = (f"another data set ({ds.events:,} events, {ds.days} days, seed {ds.seed}, ending "
                        f"{ds.gen_end:%Y-%m-%d %H:%M:%S})" if ds else "events that bench.generate did not make")
                raise BenchError(f"the database holds {what}: pass --regenerate to wipe it and generate "
                                 f"{args.events:,} events, or the matching --events/--days/--seed")
            gen.wipe(conn)
            _say(args, f"generating {args.events:,} events over {args.days} days (seed {args.seed}) ...")
            ds = gen.generate(conninfo, events=args.events, days=args.days, seed=args.seed, end=args.end,
                              jobs=args.jobs, quiet=args.quiet)
            extra.append(("Data set", "generated in this run"))
        else:
            extra.append(("Data set", f"reused, generated {ds.created_at:%Y-%m-%d %H:%M} UTC"))
        assert ds is not None
        extra.append(("Generation", ", ".join(f"{k} {v:.1f} s" for k, v in ds.timings.items())))
        s = ds.summary
        extra.append(("Shape", f"events per app {s.get('events_per_app')}; top 1 % of {ds.big_app}'s users send "
                      f"{s.get('big_app_top1pct_share')} % of its events; funnel users {s.get('big_app_funnel_users')}"))
        extra.append(("Live tail", prepare_live_tail(conn, ds)))
        extra.append(("Maintenance before timing", run_maintenance(conn)))
        tz_of = dict(conn.execute("SELECT identifier, timezone FROM analytics.tb_app WHERE identifier = ANY (%s)",
                                  [list(ds.apps)]).fetchall())
        cases = build_cases(ds, tz_of)
        if args.only:
            keep = set(args.only.split(","))
            unknown = keep - {c.key for c in cases}
            if unknown:
                raise BenchError(f"unknown --only key(s): {sorted(unknown)}")
            cases = [c for c in cases if c.key in keep]
        fns = existing_functions(conn)
        planned = next((c for c in cases if c.key == "metrics_all"), None)
        if planned is not None and "fn_metrics" in fns:
            extra.append(("Planning", planning_costs(conninfo, planned)))
        if any(c.key == "day_cohort" for c in cases):
            day = next(c for c in cases if c.key == "day_cohort").variants[0].params["day"]
            extra.append(("One-day cohort", ensure_cohort(conn, ds, day, fns)))
        info = machine_info(conn)

    results: dict[str, list[Timing]] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        for setting in args.set:
            name, _, value = setting.partition("=")
            conn.execute("SELECT set_config(%s, %s, false)", [name.strip(), value.strip()])
        for case in cases:
            timings = [Timing(v) for v in case.variants]
            for t in timings:
                if t.variant.needs and t.variant.needs not in fns:
                    t.status = "missing"
            _say(args, f"{case.title}: checking answers ...")
            check_answers(conn, case, timings)
            for t in timings:
                if t.status == "ok":
                    try:
                        time_variant(conn, t, args.repeat_raw if t.variant.raw else args.repeat)
                    except psycopg.Error as exc:
                        t.status, t.error = "error", _short(exc)
                    else:
                        _say(args, f"  {t.variant.label}: median {t.median:,.1f} ms")
            results[case.key] = timings
    extra.append(("Load average (1/5/15 min) after", " ".join(f"{x:.2f}" for x in os.getloadavg())
                  + f" on {os.cpu_count()} CPUs; anything else running skews the numbers"))
    if args.set:
        extra.append(("Session settings", ", ".join(args.set)))
    return Outcome(ds, cases, results, extra, info)


if __name__ == "__main__":
    sys.exit(main())
