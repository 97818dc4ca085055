"""Operator commands of `mobile-analytics` beyond install and serve: list apps, rotate and
revoke keys, run maintenance, and a status report. Each is one SQL function or procedure
call; `cli.build_parser` registers them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from . import sqlfiles

DatabaseUrl = Callable[[argparse.Namespace], str]


def _connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str, indent=2))


def cmd_apps(args: argparse.Namespace, url: str) -> int:
    with _connect(url) as conn:
        rows = conn.execute(
            "SELECT app_id, identifier, name, timezone, retention_days, created_at, api_keys"
            " FROM analytics.fn_list_apps(%(app)s, %(limit)s, %(offset)s)",
            {"app": args.app, "limit": args.limit, "offset": args.offset}).fetchall()
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no apps" if args.app is None else f"no app {args.app!r}")
        return 0 if args.app is None else 1
    for row in rows:
        live = [k for k in row["api_keys"] if k["revoked_at"] is None]
        print(f"{row['identifier']:<24} {row['app_id']}  tz {row['timezone']}, retention {row['retention_days']} d, "
              f"{len(live)} live key(s), created {row['created_at']:%Y-%m-%d}")
        if args.app is not None:
            for key in row["api_keys"]:
                state = "live" if key["revoked_at"] is None else f"revoked at {key['revoked_at']}"
                print(f"  {key['kind']:<5} {key['key_prefix']}…  id {key['id']}  {state}"
                      f"  last used {key['last_used_at'] or 'never'}")
    return 0


def cmd_rotate_key(args: argparse.Namespace, url: str) -> int:
    with _connect(url) as conn:
        row = conn.execute(
            "SELECT key_id, kind, api_key, previous_keys_expire_at"
            " FROM analytics.fn_rotate_api_key(%(app)s, %(kind)s, %(grace)s)",
            {"app": args.app, "kind": args.kind, "grace": args.grace_seconds}).fetchone()
    assert row is not None
    if args.json:
        _print_json(row)
    else:
        print(f"new {row['kind']} key  {row['api_key']}")
        print(f"key id         {row['key_id']}")
        expires = row["previous_keys_expire_at"]
        print(f"older {row['kind']} keys stop working {'now' if expires is None else 'at ' + str(expires)}")
        print("The key is shown once; only its hash is stored.")
    return 0


def cmd_revoke_key(args: argparse.Namespace, url: str) -> int:
    with _connect(url) as conn:
        row = conn.execute("SELECT analytics.fn_revoke_api_key(%(key_id)s::uuid) AS revoked_at",
                           {"key_id": args.key_id}).fetchone()
    assert row is not None
    print(f"key {args.key_id} revoked at {row['revoked_at']}")
    return 0


def cmd_maintenance(args: argparse.Namespace, url: str) -> int:
    with _connect(url) as conn:
        row = conn.execute("CALL analytics.prc_run_maintenance()").fetchone()
    if args.json:
        _print_json(row or {})
    else:
        for name, value in (row or {}).items():
            print(f"{name:<24} {value}")
    return 0


def cmd_status(args: argparse.Namespace, url: str) -> int:
    with _connect(url) as conn:
        engine = conn.execute("SELECT analytics.fn_engine() AS engine").fetchone()
        applied = {r["version"] for r in conn.execute("SELECT version FROM analytics_internal.tb_migration")}
        apps = conn.execute("SELECT count(*) AS apps FROM analytics.fn_list_apps(NULL, 1000, 0)").fetchone()
        rollups = conn.execute(
            "SELECT rollup, nullif(watermark, '-infinity') AS watermark, refreshed_at"
            " FROM analytics_internal.tb_rollup ORDER BY refresh_order").fetchall()
    pending = [m.path.name for m in sqlfiles.migrations() if m.version not in applied]
    report = {"engine": engine["engine"] if engine else None, "migrations_applied": len(applied),
              "migrations_pending": pending, "apps": apps["apps"] if apps else 0, "rollups": rollups}
    if args.json:
        _print_json(report)
        return 0 if not pending else 3
    print(f"engine              {report['engine']}")
    print(f"migrations          {len(applied)} applied, "
          + (f"{len(pending)} pending: {', '.join(pending)}" if pending else "none pending"))
    print(f"apps                {report['apps']}{'+' if report['apps'] == 1000 else ''}")
    for r in rollups:
        print(f"rollup {r['rollup']:<16} refreshed {r['refreshed_at'] or 'never'}")
    return 0 if not pending else 3


def register(sub: Any, add_db: Callable[[argparse.ArgumentParser], None], database_url: DatabaseUrl) -> None:
    def command(func: Callable[[argparse.Namespace, str], int]) -> Callable[[argparse.Namespace], int]:
        return lambda args: func(args, database_url(args))

    p = sub.add_parser("apps", help="list apps, or one app with its keys' metadata",
                       description="List apps (a page at a time), or show one app and its API keys' metadata "
                       "(prefix, kind, last use, revocation). Keys themselves are never stored.")
    add_db(p)
    p.add_argument("app", nargs="?", help="identifier or uuid of one app (default: all)")
    p.add_argument("--limit", type=int, default=100, help="page size, 1 to 1000 (default: 100)")
    p.add_argument("--offset", type=int, default=0, help="apps to skip (default: 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=command(cmd_apps))

    p = sub.add_parser("rotate-key", help="issue a new write or read key and retire the old ones",
                       description="Issue a new key of the given kind; the app's other keys of that kind stop "
                       "working after --grace-seconds (0: at once), so that clients can be updated first.")
    add_db(p)
    p.add_argument("app", help="identifier or uuid of the app")
    p.add_argument("--kind", choices=("write", "read"), required=True, help="which kind of key")
    p.add_argument("--grace-seconds", type=int, default=0, help="how long the old keys keep working (default: 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=command(cmd_rotate_key))

    p = sub.add_parser("revoke-key", help="revoke one API key at once",
                       description="Revoke the key with this id (see `apps APP` for ids). Live subscriptions "
                       "using it end within the server's re-check period.")
    add_db(p)
    p.add_argument("key_id", help="the key's id (uuid)")
    p.set_defaults(func=command(cmd_revoke_key))

    p = sub.add_parser("maintenance", help="run the maintenance procedure once",
                       description="CALL analytics.prc_run_maintenance(): create partitions ahead, refresh the "
                       "rollups, apply retention and purge expired exactly-once keys. It holds an advisory lock: "
                       "with a run already in progress elsewhere it returns at once. Schedule it (cron, "
                       "pg_cron) if no server runs it.")
    add_db(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=command(cmd_maintenance))

    p = sub.add_parser("status", help="engine, migrations, apps and rollup freshness of a database",
                       description="Report the installed engine, applied and pending migrations, the number "
                       "of apps and when each rollup was last refreshed. Exits 3 when migrations are pending.")
    add_db(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=command(cmd_status))
