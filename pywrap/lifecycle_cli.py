"""The `archive` and `retention` commands of `mobile-analytics` (see docs/lifecycle.md).
`cli.build_parser` registers them."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from . import queries
from .archive import ArchiveConfig, ArchiveError, run_archive

DatabaseUrl = Callable[[argparse.Namespace], str]


def _connect(url: str) -> psycopg.Connection[Any]:
    # No prepared statements: the WASM test engine shares one session between connections.
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str, indent=2))


def cmd_archive(args: argparse.Namespace, url: str) -> int:
    # On a terminal the progress line says what a log line per object would (and they would mix).
    quiet = args.quiet or sys.stderr.isatty()
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        config = ArchiveConfig.from_env(bucket=args.bucket, prefix=args.prefix, endpoint_url=args.endpoint_url,
                                        region=args.region, directory=args.dir, batch_rows=args.batch_rows,
                                        drop=False if args.no_drop else None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with _connect(url) as conn:
            report = run_archive(conn, config)
    except ArchiveError as exc:
        print(f"error: {exc} (what verified before stays recorded; rerun to go on)", file=sys.stderr)
        return 1
    if args.json:
        _print_json(report.as_dict())
        return 0
    if report.locked_out:
        print("another archive is running on this database; nothing done")
        return 0
    target = f"s3://{config.bucket}" if config.bucket else str(config.directory)
    print(f"{report.chunks} expired chunk(s): {report.objects_written} object(s) written to {target} "
          f"({report.rows_written:,} events, {report.bytes_written:,} bytes), {report.objects_skipped} already "
          f"archived, {report.objects_deleted} stale deleted")
    for row in report.retention:
        print(f"chunk {row['range_start']}: {row['action']}" + (f" ({row['detail']})" if row["detail"] else ""))
    return 0


def cmd_retention(args: argparse.Namespace, url: str) -> int:
    with _connect(url) as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        if args.mode:
            previous = conn.execute(queries.SET_RETENTION_MODE.sql, {"mode": args.mode}).fetchone()
            print(f"retention_mode {args.mode} (was {previous['previous'] if previous else None})", file=sys.stderr)
        applied: list[dict[str, Any]] = []
        if args.apply:
            engine = conn.execute(queries.ENGINE.sql).fetchone()
            if engine and engine["engine"] == "timescaledb":
                conn.execute(queries.REFRESH_ROLLUPS.sql)  # drops need materialized aggregates
            applied = conn.execute(queries.APPLY_RETENTION.sql, {"range_start": None}).fetchall()
        chunks = conn.execute(queries.RETENTION_STATUS.sql, {"details": True}).fetchall()
    if args.json:
        _print_json({"applied": applied, "chunks": chunks})
        return 0
    for row in applied:
        print(f"applied: chunk {row['range_start']}: {row['action']}" + (f" ({row['detail']})" if row["detail"] else ""))
    for c in chunks:
        apps = ",".join(c["apps"]) or "-"
        print(f"{c['range_start']:%Y-%m-%d %H:%M}  {c['action']:<8} expires {c['expires_at']:%Y-%m-%d %H:%M}  "
              f"retention {c['retention_days']} d  apps {apps}"
              + (f"  unarchived app-days {c['unarchived_app_days']}" if c["unarchived_app_days"] else ""))
    return 0


def register(sub: Any, add_db: Callable[[argparse.ArgumentParser], None], database_url: DatabaseUrl) -> None:
    def command(func: Callable[[argparse.Namespace, str], int]) -> Callable[[argparse.Namespace], int]:
        return lambda args: func(args, database_url(args))

    p = sub.add_parser(
        "archive", help="export expired raw events to Parquet (S3 or a directory), then drop them",
        description="Export every raw-event chunk past its retention as Parquet objects, one per app and UTC "
        "day (<prefix>/app=<uuid>/date=<YYYY-MM-DD>/part-<chunk start>.parquet), verify each and record it "
        "in the archive ledger, then drop the chunk (analytics.fn_apply_retention). Safe to interrupt and "
        "rerun: nothing is dropped before it is verified, and objects are overwritten, never duplicated. "
        "Settings default to MOBILE_ANALYTICS_ARCHIVE_{BUCKET,PREFIX,ENDPOINT_URL,REGION,DIR}; with no "
        "bucket the objects go to a directory (default: <data dir>/archive). S3 credentials: boto3's "
        "usual sources (AWS_ACCESS_KEY_ID, ~/.aws, instance roles).")
    add_db(p)
    p.add_argument("--bucket", help="S3 bucket (default: $MOBILE_ANALYTICS_ARCHIVE_BUCKET; none: a directory)")
    p.add_argument("--prefix", help="key prefix (default: events)")
    p.add_argument("--endpoint-url", help="S3 API endpoint, for S3-compatible stores (MinIO, R2, ...)")
    p.add_argument("--region", help="S3 region (default: boto3's)")
    p.add_argument("--dir", type=Path, help="archive to this directory instead of S3")
    p.add_argument("--batch-rows", type=int, help="rows per fetch and Parquet row group (default: 20000)")
    p.add_argument("--no-drop", action="store_true", help="export and verify only; leave the chunks in place")
    p.add_argument("--quiet", action="store_true", help="no log line per object (none on a terminal either)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=command(cmd_archive))

    p = sub.add_parser(
        "retention", help="show raw-event chunks and their retention; set the mode, apply it",
        description="List the raw-event chunks with their apps, retention, expiry and what retention will "
        "do with each (analytics.fn_retention_status). --mode sets retention_mode: archive (drop expired "
        "chunks once archived; default), drop (drop without archive; TimescaleDB: a retention policy) or "
        "keep (never drop). --apply drops what may be dropped now.")
    add_db(p)
    p.add_argument("--mode", choices=("archive", "drop", "keep"), help="set retention_mode first")
    p.add_argument("--apply", action="store_true", help="run analytics.fn_apply_retention() now")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=command(cmd_retention))
