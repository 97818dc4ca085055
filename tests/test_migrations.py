"""Migrations: declared schema, idempotent re-runs, both engines from empty, the psql script."""

from __future__ import annotations

import os
import sys
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from pywrap import sqlfiles
from pywrap.migrate import MigrationError, migrate_connection

EXPECTED = Path(__file__).with_name("expected_schema.txt")

# Engine-neutral description of the package's catalog: partitions, chunks and the
# PostgreSQL engine's default partition are storage details, not part of the surface.
CATALOG = """
SELECT kind, line FROM (
    SELECT 'relation' AS kind,
           format('%s.%s %s', n.nspname, c.relname,
                  CASE c.relkind WHEN 'p' THEN 'table' WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
                                 WHEN 'm' THEN 'materialized view' ELSE c.relkind::text END) AS line
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('analytics', 'analytics_internal') AND c.relkind IN ('r', 'p', 'v', 'm')
      AND NOT c.relispartition AND c.relname <> 'tb_event_default'
    UNION ALL
    SELECT 'column', format('%s.%s.%s %s%s', n.nspname, c.relname, a.attname,
                            format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('analytics', 'analytics_internal') AND c.relkind IN ('r', 'p', 'v', 'm', 'c')
      AND NOT c.relispartition AND c.relname <> 'tb_event_default' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'index', format('%s.%s on %s (%s)', n.nspname, ic.relname, c.relname,
                           regexp_replace(pg_get_indexdef(i.indexrelid), '^.* USING \\w+ ', ''))
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('analytics', 'analytics_internal') AND NOT c.relispartition
      AND c.relname <> 'tb_event_default'
    UNION ALL
    SELECT 'function', format('%s.%s(%s) -> %s %s%s %s', n.nspname, p.proname,
                              pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
                              CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
                              CASE WHEN p.prosecdef THEN ' security definer' ELSE '' END,
                              coalesce(array_to_string(p.proconfig, ' '), ''))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('analytics', 'analytics_internal')
    UNION ALL
    SELECT 'comment', format('%s.%s has a comment', n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('analytics', 'analytics_internal') AND c.relkind IN ('r', 'p', 'v', 'm')
      AND NOT c.relispartition AND c.relname <> 'tb_event_default'
      AND obj_description(c.oid, 'pg_class') IS NOT NULL
) s ORDER BY kind, line
"""


def catalog(conn: psycopg.Connection) -> list[str]:
    return [f"{kind}: {line}" for kind, line in conn.execute(CATALOG).fetchall()]


def test_migrated_database_equals_declared_schema(conn):
    actual = catalog(conn)
    if os.environ.get("MA_UPDATE_SCHEMA"):
        EXPECTED.write_text("\n".join(actual) + "\n")
    expected = EXPECTED.read_text().splitlines()
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing and not extra, f"missing: {missing}\nextra: {extra}\n(regenerate with MA_UPDATE_SCHEMA=1)"


def test_every_function_pins_search_path_or_says_why(conn):
    # Inlined per-event helpers may not carry SET (it would stop inlining); their files say so.
    rows = conn.execute(
        """SELECT p.proname, obj_description(p.oid, 'pg_proc') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname IN ('analytics', 'analytics_internal')
             AND p.prokind <> 'a'  -- an aggregate has no settings: its support functions do
             AND NOT coalesce(array_to_string(p.proconfig, ' ') LIKE '%search_path=%', false)"""
    ).fetchall()
    assert any(name.endswith("_between") for name, _ in rows), "the generated rollup readers are checked too"
    for name, comment in rows:
        path = sqlfiles.sql_root() / "functions" / f"{name}.sql"
        # generated functions (the rollup readers) say it in their comment
        text = path.read_text() if path.exists() else comment or ""
        assert "No SET search_path" in text, f"{name} neither pins search_path nor explains why"


def test_rerun_changes_nothing(conn, engine_name):
    before = catalog(conn)
    ledger = conn.execute("SELECT version, checksum, applied_at FROM analytics_internal.tb_migration").fetchall()
    report = migrate_connection(conn)
    assert report.applied == [] and report.engine == engine_name
    assert catalog(conn) == before
    assert conn.execute("SELECT version, checksum, applied_at FROM analytics_internal.tb_migration").fetchall() == ledger


def test_engine_is_reported(conn, engine_name):
    assert conn.execute("SELECT analytics.fn_engine()").fetchone()[0] == engine_name
    kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = 'analytics.tb_event'::regclass").fetchone()[0]
    if engine_name == "timescaledb":
        hypertables = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'tb_event'"
        ).fetchone()[0]
        assert (kind, hypertables) == ("r", 1)
    else:
        assert kind == "p"


def test_edited_migration_is_refused(conn):
    (checksum,) = conn.execute("SELECT checksum FROM analytics_internal.tb_migration WHERE version = '0001'").fetchone()
    conn.execute("UPDATE analytics_internal.tb_migration SET checksum = 'x' WHERE version = '0001'")
    try:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate_connection(conn)
    finally:  # the WASM engine's database is shared by the whole run
        conn.execute("UPDATE analytics_internal.tb_migration SET checksum = %s WHERE version = '0001'", [checksum])


def test_superseded_checksum_of_a_released_migration_is_accepted(conn):
    """Databases installed from the 0001 that a release edited (its edit is now migration 0007)
    still upgrade, by the CLI runner and by the psql script's check."""
    (checksum,) = conn.execute("SELECT checksum FROM analytics_internal.tb_migration WHERE version = '0001'").fetchone()
    (superseded,) = sqlfiles.SUPERSEDED_CHECKSUMS["0001"]
    assert superseded != checksum
    conn.execute("UPDATE analytics_internal.tb_migration SET checksum = %s WHERE version = '0001'", [superseded])
    try:
        assert migrate_connection(conn).applied == []
        script = sqlfiles.install_script()
        assert superseded in script and checksum in script
    finally:  # the WASM engine's database is shared by the whole run
        conn.execute("UPDATE analytics_internal.tb_migration SET checksum = %s WHERE version = '0001'", [checksum])


@pytest.mark.pg_only
def test_fresh_install_cli_and_concurrent_runs(pg_server, engine_name):
    with pg_server.connect("postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS ma_fresh WITH (FORCE)")
        admin.execute("CREATE DATABASE ma_fresh")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with pg_server.connect("ma_fresh", autocommit=True) as c:
                migrate_connection(c)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg_server.connect("ma_fresh", autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM analytics_internal.tb_migration").fetchone()[0] == len(sqlfiles.migrations())
    out = subprocess.run(
        [str(Path(sys.executable).with_name("mobile-analytics")), "migrate", "--database-url", pg_server.conninfo("ma_fresh")],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "0 migration(s) applied" in out and "engine postgresql" in out


@pytest.mark.pg_only
def test_psql_install_script_builds_the_same_schema(pg_server, conn, engine_name):
    with pg_server.connect("postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS ma_psql WITH (FORCE)")
        admin.execute("CREATE DATABASE ma_psql")
    script = sqlfiles.install_script()
    for _ in range(2):  # the second run must be a harmless no-op
        subprocess.run(
            ["psql", "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_server.conninfo("ma_psql")],
            input=script, text=True, check=True, capture_output=True,
        )
    with pg_server.connect("ma_psql", autocommit=True) as c:
        assert catalog(c) == catalog(conn)


def test_routines_no_file_declares_are_dropped(conn):
    conn.execute("CREATE FUNCTION analytics_internal.fn_gone(integer) RETURNS integer LANGUAGE sql AS 'SELECT 1'")
    before = catalog(conn)
    migrate_connection(conn)
    assert conn.execute("SELECT to_regprocedure('analytics_internal.fn_gone(integer)')").fetchone()[0] is None
    assert [line for line in before if "fn_gone" not in line] == catalog(conn)


def test_no_routine_is_executable_by_public(conn):
    rows = conn.execute(
        """SELECT p.oid::regprocedure::text FROM pg_proc p
           WHERE p.pronamespace IN ('analytics'::regnamespace, 'analytics_internal'::regnamespace)
             AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                         WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')"""
    ).fetchall()
    # but the pure aggregate that the view analytics.ca_app_session_daily calls (post_migrate.sql)
    assert rows == [("analytics_internal.agg_session_seconds(text,timestamp with time zone,timestamp with time zone)",)]


@pytest.mark.parametrize(("version", "setting", "unit"),
                         [("0008", "app_daily_rollups_from", "day"), ("0010", "app_hourly_rollups_from", "hour")])
def test_per_app_rollups_start_where_an_upgraded_install_still_has_raw_events(conn, version, setting, unit):
    """The coverage start of the one-row-per-day (0008) and per-hour (0010) rollups: -infinity on a
    new install; on an install with events, the day (hour) after the one of the oldest retained
    event, or the end of the newest dropped range."""
    from datetime import datetime, timedelta, timezone

    from tests.conftest import create_app
    from tests.helpers import track

    text = next(m for m in sqlfiles.migrations() if m.version == version).text
    coverage = text[text.index("INSERT INTO analytics_internal.tb_setting"):]

    def recompute() -> datetime:
        conn.execute("DELETE FROM analytics_internal.tb_setting WHERE name = %s", [setting])
        conn.execute(coverage)
        return conn.execute("SELECT value::timestamptz FROM analytics_internal.tb_setting WHERE name = %s",
                            [setting]).fetchone()[0]

    now = datetime.now(timezone.utc)
    oldest = now - timedelta(days=5)
    whole = {"day": {"hour": 0, "minute": 0, "second": 0, "microsecond": 0},
             "hour": {"minute": 0, "second": 0, "microsecond": 0}}[unit]
    with conn.transaction():
        assert conn.execute("SELECT value FROM analytics_internal.tb_setting WHERE name = %s",
                            [setting]).fetchone()[0] == "-infinity"
        app = create_app(conn, "upgraded-app")
        track(conn, app, [{"type": "a", "timestamp": t.isoformat()} for t in (oldest, now - timedelta(days=1))])
        assert recompute() == oldest.replace(**whole) + timedelta(**{unit + "s": 1})
        dropped_until = now - timedelta(days=2, hours=3)
        conn.execute("INSERT INTO analytics_internal.tb_event_drop (range_start, range_end, mode)"
                     " VALUES (%s, %s, 'drop')", [dropped_until - timedelta(days=1), dropped_until])
        assert recompute() == dropped_until.replace(microsecond=0)
        raise psycopg.Rollback()  # the WASM engine's database is shared by the whole run


def test_the_per_hour_session_rollup_moves_the_per_hour_coverage_only_later(conn):
    """Migration 0011 moves app_hourly_rollups_from to where ca_app_session_hourly can start (the
    hour after the oldest retained event, or the newest dropped range), never earlier."""
    from datetime import datetime, timedelta, timezone

    from tests.conftest import create_app
    from tests.helpers import track

    text = next(m for m in sqlfiles.migrations() if m.version == "0011").text
    coverage = text[text.index("WITH covered AS"):]

    def run_from(value: str) -> str:
        conn.execute("UPDATE analytics_internal.tb_setting SET value = %s WHERE name = 'app_hourly_rollups_from'",
                     [value])
        conn.execute(coverage)
        return conn.execute("SELECT value FROM analytics_internal.tb_setting"
                            " WHERE name = 'app_hourly_rollups_from'").fetchone()[0]

    now = datetime.now(timezone.utc)
    oldest = now - timedelta(days=5)
    with conn.transaction():
        assert run_from("-infinity") == "-infinity"  # a new install
        track(conn, create_app(conn, "upgraded-app"), [{"type": "a", "timestamp": oldest.isoformat()}])
        first_hour = oldest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        assert datetime.fromisoformat(run_from("-infinity")) == first_hour
        later = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:00:00Z")
        assert run_from(later) == later
        raise psycopg.Rollback()  # the WASM engine's database is shared by the whole run


@pytest.mark.pg_only  # CREATE INDEX CONCURRENTLY, outside a transaction, on this test's own database
def test_event_key_purge_index_keeps_one_built_beforehand_and_rebuilds_an_invalid_one(conn):
    """Migration 0012 lets a DBA build its index with CREATE INDEX CONCURRENTLY first (kept as it
    is) and rebuilds an index of that name that a failed concurrent build left invalid."""
    text = next(m for m in sqlfiles.migrations() if m.version == "0012").text
    name = "analytics_internal.tb_event_key_app_time_idx"

    def index() -> tuple[bool, str, int] | None:
        return conn.execute("SELECT i.indisvalid, pg_get_indexdef(i.indexrelid), i.indexrelid::bigint"
                            " FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", [name]).fetchone()

    valid, definition, oid = index()
    assert valid and definition.endswith('USING btree (fk_app, "timestamp")')
    conn.execute(f"DROP INDEX {name}")
    conn.execute(f'CREATE INDEX CONCURRENTLY {name.split(".")[1]} ON analytics_internal.tb_event_key (fk_app, "timestamp")')
    built = index()[2]
    conn.execute(text)
    assert index()[2] == built  # kept, not rebuilt

    conn.execute(f"DROP INDEX {name}")
    conn.execute("INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, \"timestamp\")"
                 " SELECT 1, gen_random_uuid(), now() FROM generate_series(1, 2)")
    with pytest.raises(psycopg.errors.UniqueViolation):  # what leaves an invalid index behind
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name.split('.')[1]} ON analytics_internal.tb_event_key (fk_app)")
    assert index()[0] is False
    conn.execute(text)
    valid, definition, _ = index()
    assert valid and definition.endswith('USING btree (fk_app, "timestamp")')
