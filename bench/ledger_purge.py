"""Purge of expired exactly-once keys: maintenance with the per-app time index (migration 0012)
against the purge it replaced (one DELETE joined to tb_app, no index on time), same ledger, same run.

    .venv/bin/python -m bench.ledger_purge [--keys N] [--repeat R] [--fast]

On demand only. Starts a private PostgreSQL cluster (crash-safe settings unless --fast), migrates
it, creates three apps with 30, 90 and 365 days of retention and fills
analytics_internal.tb_event_key with N keys (default 5M) spread evenly over each app's retention
and 5 minutes' worth of expired keys: the state a ledger is in when maintenance runs every 5
minutes. Then,
each in a transaction that is rolled back (so every run sees the same ledger), alternately:

* ``CALL analytics.prc_run_maintenance()`` as installed (the whole maintenance run, no events:
  its other steps take milliseconds; the purge is one index range per app);
* the purge as it was before 0012, with the index dropped inside the transaction.

It prints the median of each, their ratio, the rows each purged (they must agree), the index's
size and the time to build it on N keys (what migration 0012 costs an existing install).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import psycopg

RETENTIONS = (30, 90, 365)
# The purge of migrations 0001-0011, kept here as the baseline.
OLD_PURGE = """
DELETE FROM analytics_internal.tb_event_key k
USING analytics.tb_app a
WHERE a.pk_app = k.fk_app
  AND k."timestamp" < now() - make_interval(days => a.retention_days)
"""
# Per app: the last 5 minutes' keys expired an hour ago, the rest from an hour before the cut-off
# on, so that every run purges the same keys.
FILL = """
INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, "timestamp")
SELECT %(app)s, gen_random_uuid(),
       CASE WHEN i <= %(expired)s
            THEN now() - make_interval(days => %(days)s) - interval '65 minutes'
                 + (i::double precision / %(expired)s) * interval '5 minutes'
            ELSE now() - make_interval(days => %(days)s) + interval '1 hour'
                 + (i::double precision / %(n)s) * (make_interval(days => %(days)s) - interval '1 hour') END
FROM generate_series(1, %(n)s) AS i
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ledger_purge", description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=5_000_000, help="keys in the ledger (default 5000000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each variant; medians are reported")
    p.add_argument("--fast", action="store_true", help="fsync/synchronous_commit/full_page_writes off")
    args = p.parse_args(argv)
    if args.keys < 1000 or args.repeat < 1:
        p.error("--keys must be at least 1000 and --repeat at least 1")
    return args


def _timed(conn: psycopg.Connection, run) -> tuple[float, int]:
    with conn.transaction(force_rollback=True):
        t = time.perf_counter()
        purged = run(conn)
        return time.perf_counter() - t, purged


def _maintenance(conn: psycopg.Connection) -> int:
    return conn.execute("CALL analytics.prc_run_maintenance()").fetchone()[2]


def _old_purge(conn: psycopg.Connection) -> int:
    conn.execute("DROP INDEX analytics_internal.tb_event_key_app_time_idx")
    return conn.execute(OLD_PURGE).rowcount


def run(conninfo: str, args: argparse.Namespace) -> int:
    from pywrap.migrate import migrate

    migrate(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        if conn.execute("SELECT EXISTS (SELECT 1 FROM analytics_internal.tb_event_key)").fetchone()[0]:
            print("the ledger is not empty: use a fresh database", file=sys.stderr)
            return 2
        t = time.perf_counter()
        per_app = args.keys // len(RETENTIONS)
        for days in RETENTIONS:
            app = conn.execute("SELECT app_id FROM analytics.fn_create_app(%s, %s, p_retention_days => %s)",
                               [f"purge-bench-{days}d", "ledger purge benchmark", days]).fetchone()[0]
            pk = conn.execute("SELECT pk_app FROM analytics.tb_app WHERE id = %s", [app]).fetchone()[0]
            conn.execute(FILL, {"app": pk, "days": days, "n": per_app,
                                "expired": max(1, per_app * 5 // (days * 24 * 60))})
        conn.execute("VACUUM ANALYZE analytics_internal.tb_event_key")
        n = conn.execute("SELECT count(*) FROM analytics_internal.tb_event_key").fetchone()[0]
        print(f"ledger: {n:,} keys of {len(RETENTIONS)} apps (retention {RETENTIONS} days), "
              f"filled in {time.perf_counter() - t:.1f} s", flush=True)

        with conn.transaction(force_rollback=True):
            conn.execute("DROP INDEX analytics_internal.tb_event_key_app_time_idx")
            t = time.perf_counter()
            conn.execute('CREATE INDEX tb_event_key_app_time_idx ON analytics_internal.tb_event_key (fk_app, "timestamp")')
            build = time.perf_counter() - t
        size, table = conn.execute(
            "SELECT pg_size_pretty(pg_relation_size('analytics_internal.tb_event_key_app_time_idx')),"
            " pg_size_pretty(pg_total_relation_size('analytics_internal.tb_event_key'))").fetchone()

        new_s, old_s, purged = [], [], set()
        for i in range(args.repeat):
            for label, fn, out in (("maintenance (0012)", _maintenance, new_s), ("purge before 0012", _old_purge, old_s)):
                seconds, rows = _timed(conn, fn)
                out.append(seconds)
                purged.add(rows)
                print(f"  {label}: {seconds * 1000:,.1f} ms, {rows:,} keys purged (run {i + 1})", flush=True)
        if len(purged) != 1:
            print(f"the variants purged different numbers of keys: {sorted(purged)}", file=sys.stderr)
            return 1
        new, old = statistics.median(new_s), statistics.median(old_s)
        print()
        print(f"Purge of {purged.pop():,} expired keys out of {n:,} (median of {args.repeat}):")
        print(f"  whole maintenance run, per-app index ranges: {new * 1000:10,.1f} ms")
        print(f"  the purge before 0012 (one DELETE, no index): {old * 1000:10,.1f} ms")
        print(f"  ratio (before / now): {old / new:,.1f}x")
        print(f"Index tb_event_key_app_time_idx: {size} (ledger with its indexes: {table}); "
              f"built in {build:.1f} s on {n:,} keys (what migration 0012 blocks ingestion for)")
        settings = conn.execute(
            "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings"
            " WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_wal_size')").fetchone()[0]
        print(f"Server: {conn.execute('SELECT version()').fetchone()[0].split(' on ')[0]}; {settings}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.cluster import private_database

    with private_database("ma_bench", durable=not args.fast) as (conninfo, _tmp):
        return run(conninfo, args)


if __name__ == "__main__":
    sys.exit(main())
