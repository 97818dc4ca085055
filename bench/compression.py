"""TimescaleDB compression ratio of raw events on the generated data set.

    .venv/bin/python -m bench.compression [--events N] [--days D] [--seed S] [--batch B]
                                          [--database-url URL] [--all-chunks]

On demand only, never part of the test suite. Steps:

1. bench/generate.py writes its data set (N events over the D days up to now, 4 apps) into a
   PostgreSQL-engine database: a private cluster (tests.engines.start_postgres), or the empty,
   migrated database at --database-url.
2. The TimescaleDB WASM engine (tests.engines.start_timescale_wasm) is started and migrated,
   the same apps are created there, and every event is copied over, oldest first, in batches
   of B rows: one INSERT ... SELECT FROM unnest(<one array per column>) per batch (COPY FROM
   STDIN crashes the WASM build).
3. The compression policy of migration 0006 runs once (CALL run_job): chunks whose events are
   all older than 7 days are compressed (segment by fk_app, order by "timestamp" DESC). With
   --all-chunks every chunk is then compressed as well (compress_chunk), for the ratio of the
   whole table.
4. It prints the size of analytics.tb_event before and after (heap, indexes, TOAST;
   hypertable_detailed_size) and the compression stats of the compressed chunks
   (hypertable_compression_stats): the ratio is before / after of those chunks. It also checks
   that the events per app and day read back the same from the compressed table.

The WASM engine is fine for a ratio (the storage format is TimescaleDB's own) and meaningless for
speed: the times printed are only there to tell how long a run takes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from bench import generate as gen
from pywrap.migrate import migrate_connection

COLUMNS = ("id", "client_event_id", "fk_app", "event_type", "timestamp", "received_at", "timestamp_clamped",
           "user_id", "anonymous_id", "session_id", "path", "label", "duration_ms", "device", "metadata")
# Read from PostgreSQL with device and metadata as text, written with one array per column.
READ_SQL = ("SELECT id, client_event_id, fk_app, event_type, \"timestamp\", received_at, timestamp_clamped,"
            " user_id, anonymous_id, session_id, path, label, duration_ms, device::text, metadata::text"
            " FROM analytics.tb_event ORDER BY \"timestamp\"")
WRITE_SQL = (
    "INSERT INTO analytics.tb_event (" + ", ".join(f'"{c}"' for c in COLUMNS) + ")"
    " SELECT id, client_event_id, app_map.to_app, event_type, ts, received_at, clamped, user_id, anonymous_id,"
    " session_id, path, label, duration_ms, device::jsonb, metadata::jsonb"
    " FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::text[], %s::timestamptz[], %s::timestamptz[],"
    " %s::boolean[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[],"
    " %s::text[]) AS u(id, client_event_id, fk_app, event_type, ts, received_at, clamped, user_id, anonymous_id,"
    " session_id, path, label, duration_ms, device, metadata)"
    " JOIN unnest(%s::int[], %s::int[]) AS app_map(from_app, to_app) ON app_map.from_app = u.fk_app"
)
SIZE_SQL = ("SELECT table_bytes, index_bytes, toast_bytes, total_bytes"
            " FROM public.hypertable_detailed_size('analytics.tb_event')")
STATS_SQL = ("SELECT total_chunks, number_compressed_chunks, before_compression_total_bytes,"
             " after_compression_total_bytes FROM public.hypertable_compression_stats('analytics.tb_event')")
PER_DAY_SQL = ("SELECT a.identifier, date_trunc('day', e.\"timestamp\" AT TIME ZONE 'UTC'), count(*),"
               " count(DISTINCT coalesce(e.user_id, e.anonymous_id)), sum(e.duration_ms)"
               " FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app GROUP BY 1, 2 ORDER BY 1, 2")


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f} MiB"


def copy_events(pg: psycopg.Connection, ts: psycopg.Connection, app_map: dict[int, int], batch: int) -> int:
    sources, targets = list(app_map), [app_map[k] for k in app_map]
    copied = 0
    started = time.monotonic()
    with pg.cursor(name="events") as cur:
        cur.itersize = batch
        cur.execute(READ_SQL)
        while rows := cur.fetchmany(batch):
            columns = [list(c) for c in zip(*rows, strict=True)]
            ts.execute(WRITE_SQL, [*columns, sources, targets])
            copied += len(rows)
            if copied % (batch * 20) == 0:
                print(f"  {copied:,} events copied ({copied / (time.monotonic() - started):,.0f}/s)", flush=True)
    return copied


def run(pg_url: str, args: argparse.Namespace, work: Path) -> int:
    from tests.engines import start_timescale_wasm

    print(f"generating {args.events:,} events over {args.days} days (bench/generate.py, seed {args.seed}) ...",
          flush=True)
    ds = gen.generate(pg_url, events=args.events, days=args.days, seed=args.seed, jobs=2, quiet=True)
    print(f"  {ds.events:,} events, {ds.users:,} users, {ds.gen_start:%Y-%m-%d} .. {ds.gen_end:%Y-%m-%d}"
          f" in {ds.timings['total']:.0f} s", flush=True)

    print("starting the TimescaleDB WASM engine ...", flush=True)
    engine = start_timescale_wasm(work / "timescaledb")
    try:
        with engine.connect(autocommit=True, prepare_threshold=None) as ts, \
                psycopg.connect(pg_url, autocommit=False) as pg:
            report = migrate_connection(ts)
            assert report.engine == "timescaledb", report.engine
            app_map: dict[int, int] = {}
            for ident, tz, pk in pg.execute("SELECT identifier, timezone, pk_app FROM analytics.tb_app"
                                            " WHERE identifier LIKE %s", [gen.APP_PREFIX + "%"]).fetchall():
                ts.execute("SELECT analytics.fn_create_app(p_identifier => %s, p_name => %s, p_timezone => %s,"
                           " p_retention_days => 3650)", [ident, ident, tz])
                app_map[pk] = ts.execute("SELECT pk_app FROM analytics.tb_app WHERE identifier = %s",
                                         [ident]).fetchone()[0]

            print(f"copying into the WASM engine, INSERT ... unnest in batches of {args.batch:,} ...", flush=True)
            t = time.monotonic()
            copied = copy_events(pg, ts, app_map, args.batch)
            print(f"  {copied:,} events in {time.monotonic() - t:.0f} s", flush=True)
            ts.execute("ANALYZE analytics.tb_event")

            per_day = ts.execute(PER_DAY_SQL).fetchall()
            chunks = ts.execute("SELECT count(*) FROM public.show_chunks('analytics.tb_event')").fetchone()[0]
            before = ts.execute(SIZE_SQL).fetchone()
            job = ts.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'"
                             " AND hypertable_name = 'tb_event'").fetchone()[0]
            print(f"running the compression policy (job {job}: chunks older than 7 days) ...", flush=True)
            t = time.monotonic()
            ts.execute("CALL public.run_job(%s)", [job])
            print(f"  done in {time.monotonic() - t:.0f} s", flush=True)
            policy_stats = ts.execute(STATS_SQL).fetchone()
            if args.all_chunks:
                ts.execute("SELECT public.compress_chunk(c, if_not_compressed => true)"
                           " FROM public.show_chunks('analytics.tb_event') c")
            after = ts.execute(SIZE_SQL).fetchone()
            stats = ts.execute(STATS_SQL).fetchone()
            same = ts.execute(PER_DAY_SQL).fetchall() == per_day
    finally:
        engine.stop()

    print()
    print(f"events             {copied:,} ({len(app_map)} apps, {args.days} days, {chunks} daily chunks)")
    print("analytics.tb_event        heap         indexes        TOAST          total")
    for label, sizes in (("before", before), ("after", after)):
        print(f"  {label:<8}" + "".join(f"{mib(v):>15}" for v in sizes))
    print(f"compressed by the policy: {policy_stats[1]} of {policy_stats[0]} chunks, "
          f"{mib(policy_stats[2])} -> {mib(policy_stats[3])}: ratio {policy_stats[2] / policy_stats[3]:.1f}x")
    if args.all_chunks:
        print(f"every chunk compressed:   {stats[1]} of {stats[0]} chunks, "
              f"{mib(stats[2])} -> {mib(stats[3])}: ratio {stats[2] / stats[3]:.1f}x")
    print(f"whole table:              {mib(before[3])} -> {mib(after[3])}: {before[3] / after[3]:.1f}x smaller")
    print(f"bytes per event:          {before[3] / copied:.0f} -> {after[3] / copied:.0f}")
    print(f"events per app and day read back the same after compression: {'yes' if same else 'NO'}")
    return 0 if same else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.compression", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=300_000, help="events to generate (default 300000)")
    p.add_argument("--days", type=int, default=30, help="days they span, up to now (default 30)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=5_000, help="rows per INSERT into the WASM engine (default 5000)")
    p.add_argument("--database-url", help="an empty, migrated PostgreSQL-engine database to generate into "
                   "(default: a private cluster)")
    p.add_argument("--all-chunks", action="store_true", help="also compress the chunks of the last 7 days")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ma-bench-compression-") as tmp:
        work = Path(tmp)
        if args.database_url:
            return run(args.database_url, args, work)
        from tests.engines import start_postgres

        server = start_postgres(work / "postgresql")
        try:
            with server.connect("postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench_compression")
            url = server.conninfo("bench_compression")
            with psycopg.connect(url, autocommit=True) as conn:
                migrate_connection(conn)
            return run(url, args, work)
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
