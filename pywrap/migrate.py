"""Applies the SQL package to a database: migrations once each, functions and rollups every time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import sqlfiles

log = logging.getLogger(__name__)

ENGINES = ("auto", "postgresql", "timescaledb")


class MigrationError(RuntimeError):
    """The database and the SQL package disagree in a way that needs a human."""


@dataclass
class MigrateReport:
    engine: str
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    functions: int = 0
    rollups: int = 0


def migrate(conninfo: str, *, engine: str = "auto", chunk_interval: str = "1 day") -> MigrateReport:
    """Bring the database at `conninfo` up to date. Safe to run concurrently and repeatedly."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        return migrate_connection(conn, engine=engine, chunk_interval=chunk_interval)


def migrate_connection(
    conn: psycopg.Connection, *, engine: str = "auto", chunk_interval: str = "1 day"
) -> MigrateReport:
    """As migrate(), on an open autocommit connection (the WASM engine allows only one)."""
    if not conn.autocommit:
        raise ValueError("migrate needs an autocommit connection")
    conn.execute("SET client_min_messages = warning")
    conn.execute("SELECT set_config('mobile_analytics.engine', %s, false)", [engine])
    conn.execute("SELECT set_config('mobile_analytics.chunk_interval', %s, false)", [chunk_interval])
    # Session-level lock: a second `migrate` waits here, then finds everything applied.
    conn.execute("SELECT pg_advisory_lock(%s)", [sqlfiles.MIGRATE_LOCK_KEY])
    try:
        return _apply(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [sqlfiles.MIGRATE_LOCK_KEY])


def _apply(conn: psycopg.Connection) -> MigrateReport:
    with conn.transaction():
        conn.execute(sqlfiles.ledger().text)
    done = dict(conn.execute("SELECT version, checksum FROM analytics_internal.tb_migration").fetchall())
    report = MigrateReport(engine="")
    for m in sqlfiles.migrations():
        if m.version in done:
            if done[m.version] not in m.accepted_checksums:
                raise MigrationError(
                    f"migration {m.path.name} changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
            report.skipped.append(m.path.name)
            continue
        log.info("applying migration %s", m.path.name)
        with conn.transaction():
            conn.execute(m.text)
            conn.execute(
                "INSERT INTO analytics_internal.tb_migration (version, name, checksum) VALUES (%s, %s, %s)",
                [m.version, m.name, m.checksum],
            )
        report.applied.append(m.path.name)

    with conn.transaction():
        conn.execute("SET LOCAL check_function_bodies = off")
        for f in sqlfiles.functions():
            conn.execute(f.text)
            report.functions += 1
        conn.execute(sqlfiles.drop_stale_routines().text)
    # Continuous aggregates cannot be created inside a transaction block: autocommit, one file
    # at a time; each file is idempotent.
    for f in sqlfiles.continuous_aggregates():
        conn.execute(f.text)
        report.rollups += 1
    conn.execute(sqlfiles.post_migrate().text)
    report.engine = conn.execute(sql.SQL("SELECT analytics.fn_engine()")).fetchone()[0]
    return report
