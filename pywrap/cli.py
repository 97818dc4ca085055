"""The `mobile-analytics` command: install the SQL package, manage apps, run the server."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

import psycopg

from . import migrate as migrate_mod
from . import sqlfiles


def _database_url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("error: no database: pass --database-url or set DATABASE_URL")
    return url


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="libpq URL or conninfo of the database (default: $DATABASE_URL)",
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    report = migrate_mod.migrate(_database_url(args), engine=args.engine, chunk_interval=args.chunk_interval)
    for name in report.applied:
        print(f"applied  {name}")
    print(
        f"engine {report.engine}: {len(report.applied)} migration(s) applied, "
        f"{len(report.skipped)} already present, {report.functions} function file(s) "
        f"and {report.rollups} rollup file(s) re-applied"
    )
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    sys.stdout.write(sqlfiles.install_script(engine=args.engine, chunk_interval=args.chunk_interval))
    return 0


def cmd_create_app(args: argparse.Namespace) -> int:
    with psycopg.connect(_database_url(args), autocommit=True) as conn:
        row = conn.execute(
            "SELECT app_id, identifier, write_key, read_key"
            " FROM analytics.fn_create_app(%(identifier)s, %(name)s, %(owner)s, %(tz)s, %(retention)s)",
            {
                "identifier": args.identifier,
                "name": args.name or args.identifier,
                "owner": args.owner_id,
                "tz": args.timezone,
                "retention": args.retention_days,
            },
        ).fetchone()
    app_id, identifier, write_key, read_key = row
    if args.json:
        print(json.dumps({"appId": str(app_id), "identifier": identifier, "writeKey": write_key, "readKey": read_key}))
    else:
        print(f"app        {identifier} ({app_id})")
        print(f"write key  {write_key}")
        print(f"read key   {read_key}")
        print("Keys are shown once; only their hashes are stored.")
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    with psycopg.connect(_database_url(args), autocommit=True) as conn:
        print(conn.execute("SELECT analytics.fn_engine()").fetchone()[0])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobile-analytics",
        description="Mobile analytics backend on PostgreSQL/TimescaleDB.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_install_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--engine",
            choices=migrate_mod.ENGINES,
            default="auto",
            help="storage engine on first install: auto uses TimescaleDB when its Timescale License "
            "build is loaded, plain PostgreSQL otherwise (default: auto)",
        )
        p.add_argument(
            "--chunk-interval",
            default="1 day",
            metavar="INTERVAL",
            help="time span of one hypertable chunk / table partition on first install (default: '1 day')",
        )

    p = sub.add_parser(
        "migrate",
        help="install or upgrade the SQL package in a database",
        description="Apply sql/migrations not yet recorded in the ledger (each in its own transaction), "
        "then re-apply sql/functions and sql/continuous_aggregates. Holds an advisory lock, so "
        "concurrent runs are safe; a re-run changes nothing.",
    )
    _add_db(p)
    add_install_options(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "sql",
        help="print the whole install script for psql",
        description="Print the install/upgrade script that `migrate` would apply, for DBAs who run "
        "it with psql -v ON_ERROR_STOP=1 -f. Already-applied migrations are skipped.",
    )
    add_install_options(p)
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser(
        "create-app",
        help="create an app and print its write and read keys",
        description="Create an app with one write key (ingestion) and one read key (queries). "
        "The keys are printed once; only their SHA-256 hashes are stored.",
    )
    _add_db(p)
    p.add_argument("identifier", help="app identifier used by SDKs, e.g. app123")
    p.add_argument("--name", help="display name (default: the identifier)")
    p.add_argument("--owner-id", help="owner uuid (default: a new random uuid)")
    p.add_argument("--timezone", default="UTC", help="IANA time zone for daily buckets (default: UTC)")
    p.add_argument("--retention-days", type=int, default=90, help="raw event retention (default: 90)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_create_app)

    p = sub.add_parser("engine", help="print the storage engine of an installed database")
    _add_db(p)
    p.set_defaults(func=cmd_engine)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except psycopg.Error as exc:
        diag = exc.diag
        print(f"error: {diag.message_primary or exc}", file=sys.stderr)
        for label, text in (("detail", diag.message_detail), ("hint", diag.message_hint)):
            if text:
                print(f"{label}: {text}", file=sys.stderr)
        return 1
    except migrate_mod.MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
