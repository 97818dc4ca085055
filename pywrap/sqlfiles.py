"""Finds the SQL package (sql/ in a checkout, pywrap/_sql in a wheel) and renders install scripts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_MIGRATION_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

# psql advisory-lock key shared with the Python runner, so that both kinds of install serialise.
MIGRATE_LOCK_KEY = 7_346_221_901


@dataclass(frozen=True)
class SqlFile:
    path: Path
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


# Checksums a ledger may hold for a migration besides its file's own: releases that edited an
# applied migration, whose edit was then undone and moved into a new migration. Databases
# installed from the edited text carry its checksum; the new migration is idempotent for them.
SUPERSEDED_CHECKSUMS: dict[str, frozenset[str]] = {
    # 0001 as edited in bab4c14; the edit now lives in 0007_foundation_comments and sql/ledger.sql
    "0001": frozenset({"1d4d91c4403133f13d01a1a396b04536add26a91ae1672ddf8f6364d5ff2ceb7"}),
}


@dataclass(frozen=True)
class Migration(SqlFile):
    version: str
    name: str

    @property
    def accepted_checksums(self) -> frozenset[str]:
        return SUPERSEDED_CHECKSUMS.get(self.version, frozenset()) | {self.checksum}


@cache
def sql_root() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_sql", here.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError("the SQL package (sql/migrations) was not found next to pywrap")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def ledger() -> SqlFile:
    path = sql_root() / "ledger.sql"
    return SqlFile(path, _read(path))


def drop_stale_routines() -> SqlFile:
    path = sql_root() / "drop_stale_routines.sql"
    return SqlFile(path, _read(path))


def post_migrate() -> SqlFile:
    path = sql_root() / "post_migrate.sql"
    return SqlFile(path, _read(path))


def migrations() -> list[Migration]:
    found = []
    for path in sorted((sql_root() / "migrations").glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(path, _read(path), match["version"], match["name"]))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version: {versions}")
    return found


def functions() -> list[SqlFile]:
    return [SqlFile(p, _read(p)) for p in sorted((sql_root() / "functions").glob("*.sql"))]


def continuous_aggregates() -> list[SqlFile]:
    return [SqlFile(p, _read(p)) for p in sorted((sql_root() / "continuous_aggregates").glob("*.sql"))]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def install_script(engine: str = "auto", chunk_interval: str = "1 day") -> str:
    """The whole install/upgrade as one psql script, equivalent to `mobile-analytics migrate`.

    Migrations already in the ledger are skipped with psql's \\if, so the script is safe to
    re-run on an installed database, like the Python runner.
    """
    out = [
        "-- mobile-analytics install script: apply with",
        "--   psql --no-psqlrc -v ON_ERROR_STOP=1 -d DBNAME -f install.sql",
        "\\set ON_ERROR_STOP on",
        "SET client_min_messages = warning;",
        f"SET mobile_analytics.engine = {_literal(engine)};",
        f"SET mobile_analytics.chunk_interval = {_literal(chunk_interval)};",
        f"SELECT pg_advisory_lock({MIGRATE_LOCK_KEY});",
        "",
        ledger().text,
    ]
    for m in migrations():
        flag = f"apply_{m.version}"
        out += [
            "DO $edited$ BEGIN IF EXISTS (SELECT 1 FROM analytics_internal.tb_migration"
            f" WHERE version = {_literal(m.version)} AND checksum NOT IN"
            f" ({', '.join(_literal(c) for c in sorted(m.accepted_checksums))})) THEN"
            f" RAISE EXCEPTION 'migration {m.version}_{m.name}.sql changed after it was applied'"
            " USING HINT = 'Add a new migration instead of editing an applied one.'; END IF; END $edited$;",
            f"-- migration {m.version}_{m.name}",
            "SELECT NOT EXISTS (SELECT 1 FROM analytics_internal.tb_migration"
            f" WHERE version = {_literal(m.version)}) AS {flag} \\gset",
            f"\\if :{flag}",
            "BEGIN;",
            m.text,
            "INSERT INTO analytics_internal.tb_migration (version, name, checksum) VALUES "
            f"({_literal(m.version)}, {_literal(m.name)}, {_literal(m.checksum)});",
            "COMMIT;",
            "\\endif",
            "",
        ]
    out += ["-- functions (re-applied every time)", "BEGIN;", "SET LOCAL check_function_bodies = off;"]
    out += [f.text for f in functions()]
    out += [drop_stale_routines().text]
    out += ["COMMIT;", "", "-- rollups (idempotent; some statements cannot run inside a transaction)"]
    out += [f.text for f in continuous_aggregates()]
    out += ["", post_migrate().text, f"SELECT pg_advisory_unlock({MIGRATE_LOCK_KEY});", ""]
    return "\n".join(out)
