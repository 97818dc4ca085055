"""Shared fixtures: one PostgreSQL 15 cluster and one TimescaleDB (WASM) server per test run.

`db` is parametrized over both engines. On PostgreSQL each test gets a fresh database cloned
from a migrated template; the WASM engine serves a single database over a single connection,
so there the one migrated database is emptied between tests instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pywrap.migrate import migrate_connection
from tests.engines import RunningEngine, start_postgres, start_timescale_wasm

ALL_ENGINES = ("postgresql", "timescaledb")
TEMPLATE_DB = "ma_template"
_db_counter = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engines",
        default=os.environ.get("MA_TEST_ENGINES", ",".join(ALL_ENGINES)),
        help="comma-separated engines to test against (default: postgresql,timescaledb)",
    )


def _selected_engines(config: pytest.Config) -> list[str]:
    chosen = [e.strip() for e in config.getoption("--engines").split(",") if e.strip()]
    unknown = set(chosen) - set(ALL_ENGINES)
    if unknown:
        raise pytest.UsageError(f"unknown engine(s): {sorted(unknown)}")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        engines = _selected_engines(metafunc.config)
        if metafunc.definition.get_closest_marker("pg_only"):
            engines = [e for e in engines if e == "postgresql"]
        metafunc.parametrize("engine_name", engines)


@dataclass
class App:
    id: str
    identifier: str
    write_key: str
    read_key: str


@dataclass
class Database:
    """A migrated, empty database on one engine."""

    engine: str
    server: RunningEngine
    dbname: str

    @property
    def conninfo(self) -> str:
        return self.server.conninfo(self.dbname)

    @property
    def single_connection(self) -> bool:
        return self.server.single_connection

    def connect(self, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        if self.single_connection:
            # The WASM engine serves every connection from one backend: a statement psycopg
            # prepared on an earlier connection would still exist there and collide.
            kwargs.setdefault("prepare_threshold", None)
        return self.server.connect(self.dbname, **kwargs)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    server = start_postgres(tmp_path_factory.mktemp("postgresql"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    server = start_timescale_wasm(tmp_path_factory.mktemp("timescaledb"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: RunningEngine) -> str:
    with pg_server.connect("postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    with pg_server.connect(TEMPLATE_DB, autocommit=True) as conn:
        migrate_connection(conn)
    return TEMPLATE_DB


@pytest.fixture(scope="session")
def ts_migrated(ts_server: RunningEngine) -> str:
    with ts_server.connect(autocommit=True) as conn:
        migrate_connection(conn)
    return "postgres"


def _reset(conn: psycopg.Connection) -> None:
    """Empty every data table of the package (settings, the migration ledger and the rollup
    registry, which migrate fills, stay; the registry's refresh state is reset)."""
    tables = conn.execute(
        """
        SELECT format('%I.%I', n.nspname, c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('analytics', 'analytics_internal')
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname NOT IN ('tb_setting', 'tb_migration', 'tb_rollup')
        ORDER BY 1
        """
    ).fetchall()
    if tables:
        conn.execute(f"TRUNCATE {', '.join(t for (t,) in tables)} RESTART IDENTITY CASCADE")
    conn.execute("UPDATE analytics_internal.tb_rollup SET watermark = '-infinity', refreshed_at = NULL")
    # One backend serves every connection on the WASM engine: forget what earlier tests left.
    conn.execute("DEALLOCATE ALL")
    conn.execute("RESET ALL")


def make_database(request: pytest.FixtureRequest, engine_name: str) -> Iterator[Database]:
    if engine_name == "postgresql":
        server: RunningEngine = request.getfixturevalue("pg_server")
        template = request.getfixturevalue("pg_template")
        dbname = f"t{os.getpid()}_{next(_db_counter)}"
        with server.connect("postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {dbname} TEMPLATE {template}")
        yield Database(engine_name, server, dbname)
        with server.connect("postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    else:
        server = request.getfixturevalue("ts_server")
        dbname = request.getfixturevalue("ts_migrated")
        with server.connect(dbname, autocommit=True) as conn:
            _reset(conn)
        yield Database(engine_name, server, dbname)


@pytest.fixture
def db(request: pytest.FixtureRequest, engine_name: str) -> Iterator[Database]:
    yield from make_database(request, engine_name)


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection]:
    """An autocommit connection to `db` (on the WASM engine, the only one allowed)."""
    with db.connect() as connection:
        yield connection


def create_app(conn: psycopg.Connection, identifier: str = "app123", **kwargs) -> App:
    row = conn.execute(
        "SELECT app_id::text, identifier, write_key, read_key FROM analytics.fn_create_app("
        "p_identifier => %(identifier)s, p_name => %(name)s, p_retention_days => %(retention)s,"
        " p_timezone => %(tz)s)",
        {
            "identifier": identifier,
            "name": kwargs.get("name", f"App {identifier}"),
            "retention": kwargs.get("retention_days", 90),
            "tz": kwargs.get("timezone", "UTC"),
        },
    ).fetchone()
    return App(*row)


@pytest.fixture
def app(conn: psycopg.Connection) -> App:
    return create_app(conn)


def sql_root() -> Path:
    return Path(__file__).resolve().parent.parent / "sql"
