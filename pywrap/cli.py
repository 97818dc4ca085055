"""The `mobile-analytics` command: install the SQL package, manage apps, run the server."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from types import FrameType

import psycopg

from . import __version__, admin_cli, lifecycle_cli, logs, sqlfiles
from . import migrate as migrate_mod
from .config import ConfigError, Settings


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
    if args.engine != "auto" and args.engine != report.engine:
        print(f"warning: --engine {args.engine} ignored: this database was installed with {report.engine}",
              file=sys.stderr)
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


def cmd_export_user(args: argparse.Namespace) -> int:
    from .queries import EXPORT_USER

    params = {"app": args.app, "user_id": args.user, "anonymous_ids": args.anonymous_id or None}
    # Into FILE.partial, renamed when complete: a failed export never looks like a whole one.
    partial = Path(f"{args.output}.partial") if args.output else None
    count = 0
    try:
        with psycopg.connect(_database_url(args), prepare_threshold=None) as conn, \
                (partial.open("w", encoding="utf-8") if partial else nullcontext(sys.stdout)) as out:
            # A named (server-side) cursor, read a batch at a time: constant memory here.
            with conn.cursor(name="export_user") as cur:
                cur.itersize = 1000
                cur.execute(EXPORT_USER.sql, params)
                for (line,) in cur:
                    out.write(line + "\n")
                    count += 1
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise
    if partial is not None:
        partial.replace(args.output)
        print(f"{count} event(s) written to {args.output}", file=sys.stderr)
    return 0


def cmd_delete_user(args: argparse.Namespace) -> int:
    from .queries import DELETE_USER

    if not args.yes:
        print("error: deleting a user cannot be undone; add --yes to go ahead", file=sys.stderr)
        return 2
    # autocommit: on TimescaleDB the procedure commits and then refreshes the rollups.
    with psycopg.connect(_database_url(args), autocommit=True, prepare_threshold=None) as conn:
        cur = conn.execute(DELETE_USER.sql, {
            "app": args.app, "user_id": args.user, "anonymous_ids": args.anonymous_id or None,
            "requested_by": args.requested_by or f"cli, {getpass.getuser()}"})
        names = [c.name for c in cur.description or ()]
        report = dict(zip(names, cur.fetchone() or (), strict=True))
    if args.json:
        print(json.dumps(report, default=str))
    else:
        for name, value in report.items():
            print(f"{name:<28}{'' if value is None else value}")
    return 0


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM during serving and re-raises it afterwards; exiting through
    # SystemExit (not the default disposition) lets the embedded cluster be stopped too.
    raise SystemExit(0)


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def cmd_serve(args: argparse.Namespace) -> int:
    from . import embedded, server  # the server's imports are not needed by the other commands

    try:
        settings = Settings.from_env(host=args.host, port=args.port, database_url=args.database_url,
                                     data_dir=args.data_dir, pool_max=args.pool_size)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    cluster = None
    lines = [f"mobile-analytics {__version__}",
             f"  GraphQL      http://{_shown_host(settings.host)}:{settings.port}/graphql  (GraphiQL in a browser)"]
    try:
        if settings.database_url:
            url = settings.database_url
            if not args.no_migrate:
                migrate_mod.migrate(url)
            lines.append("  database     from --database-url / DATABASE_URL")
            if not settings.admin_token:
                lines.append("  admin        disabled (set MOBILE_ANALYTICS_ADMIN_TOKEN to manage apps)")
        else:
            data_dir = settings.data_dir or embedded.default_data_dir()
            cluster = embedded.EmbeddedCluster(data_dir)
            url = cluster.start()
            migrate_mod.migrate(url)
            demo = embedded.ensure_demo_app(url, data_dir)
            if not settings.admin_token:
                settings = settings.with_(admin_token=embedded.admin_token(data_dir))
            lines.append(f"  database     {cluster.url}  (embedded, {'started' if cluster.started_here else 'reused'};"
                         f" data in {cluster.data_dir})")
            if demo is not None:
                lines += [f"  demo app     {demo.identifier}",
                          f"  write key    {demo.write_key}",
                          f"  read key     {demo.read_key}"]
            else:
                lines.append(f"  demo app     {embedded.DEMO_APP} (its keys were shown at first start)")
            lines.append(f"  admin token  {settings.admin_token}")
        print("\n".join(lines), flush=True)
        server.run(settings, url)
    except embedded.EmbeddedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
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

    def add_user_options(p: argparse.ArgumentParser) -> None:
        _add_db(p)
        p.add_argument("--app", required=True, help="app identifier or uuid")
        p.add_argument("--user", required=True,
                       help="the user id (for a user who never signed in: the anonymous id)")
        p.add_argument("--anonymous-id", action="append", metavar="ID",
                       help="another anonymous (device) id of the same person; repeatable")

    p = sub.add_parser(
        "export-user",
        help="write every stored event of one user as JSON lines",
        description="Write the events whose coalesce(user_id, anonymous_id) is --user or an --anonymous-id, "
        "oldest first, one JSON object per line (see analytics.fn_export_user), streamed from a "
        "server-side cursor in constant memory.",
    )
    add_user_options(p)
    p.add_argument("--output", metavar="FILE", help="write here (via FILE.partial, renamed when complete); "
                   "default: standard output")
    p.set_defaults(func=cmd_export_user)

    p = sub.add_parser(
        "delete-user",
        help="erase one user's events, per-user aggregates and cohort memberships",
        description="Erase the events whose coalesce(user_id, anonymous_id) is --user or an --anonymous-id, "
        "correct the rollups and cohorts, and record the deletion (with no user id) in the audit log "
        "(analytics.prc_delete_user; see docs/privacy.md). Cannot be undone.",
    )
    add_user_options(p)
    p.add_argument("--requested-by", metavar="TEXT",
                   help="who asked, for the audit log, e.g. a ticket id (default: cli and the OS user)")
    p.add_argument("--yes", action="store_true", help="really delete")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_delete_user)

    p = sub.add_parser(
        "serve",
        help="run the GraphQL server (embedded PostgreSQL unless a database URL is given)",
        description="Serve GraphQL at http://HOST:PORT/graphql (POST JSON, GraphiQL in a browser, "
        "WebSocket subscriptions with graphql-transport-ws), plus /healthz and /readyz. "
        "Without --database-url or DATABASE_URL it starts (or reuses) a private PostgreSQL cluster "
        "in --data-dir, migrates it, creates a demo app on first start and prints its keys and an "
        "admin token. With a URL it migrates that database (unless --no-migrate) and serves it. "
        "Other settings come from MOBILE_ANALYTICS_* variables (see pywrap/config.py). "
        "SIGTERM or Ctrl-C stop it after the requests in flight have finished.",
    )
    p.add_argument("--host", help="address to listen on (default: 127.0.0.1, or $MOBILE_ANALYTICS_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (default: 8000, or $MOBILE_ANALYTICS_PORT)")
    p.add_argument("--database-url", metavar="URL",
                   help="serve this database instead of the embedded one (default: $DATABASE_URL)")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="the embedded cluster's directory (default: /var/lib/mobile-analytics as root, "
                   "else ~/.local/share/mobile-analytics; or $MOBILE_ANALYTICS_DATA_DIR)")
    p.add_argument("--pool-size", type=int, metavar="N",
                   help="most database connections (default: 10; 1 for single-connection engines)")
    p.add_argument("--no-migrate", action="store_true",
                   help="with a database URL: do not install or upgrade the SQL package first")
    p.set_defaults(func=cmd_serve)

    admin_cli.register(sub, _add_db, _database_url)
    lifecycle_cli.register(sub, _add_db, _database_url)
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
