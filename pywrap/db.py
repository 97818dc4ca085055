"""Database access: an async connection pool and named queries that return dataclasses.

Each GraphQL operation is one SQL function call (see pywrap.queries). Connections are in
autocommit mode: a function call is its own transaction and has committed by the time the
call returns, so a response is only ever sent for work that is durable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from . import sqlfiles

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Query:
    """A named SQL statement with %(name)s parameters; the name is what the logs show."""

    name: str
    sql: str


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


class Database:
    """The pool. `max_size=1` for the TimescaleDB WASM test engine, which allows one connection."""

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0,
                 prepare: bool = True) -> None:
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            # prepare_threshold None: never prepare (psycopg prepares a statement on its 5th run).
            kwargs={"autocommit": True, **({} if prepare else {"prepare_threshold": None})},
            configure=self._configure,
            name="mobile-analytics",
            # No check on checkout: it would cost a round trip per request. A connection
            # broken by a database restart fails one call (SERVICE_UNAVAILABLE, retryable)
            # and is then replaced by the pool.
        )

    @staticmethod
    async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("SELECT set_config('application_name', 'mobile-analytics', false)")

    async def open(self) -> None:
        # wait=False: the server starts (and /readyz says why it is not ready) even when the
        # database is down; the pool keeps trying to connect in the background.
        await self.pool.open(wait=False)

    async def close(self, timeout: float = 10.0) -> None:
        await self.pool.close(timeout=timeout)

    async def one(self, query: Query, params: Mapping[str, Any], row: type[T]) -> T | None:
        rows = await self._run(query, params, class_row(row), one=True)
        return rows[0] if rows else None

    async def all(self, query: Query, params: Mapping[str, Any], row: type[T]) -> list[T]:
        return await self._run(query, params, class_row(row), one=False)

    async def one_dict(self, query: Query, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self._run(query, params, dict_row, one=True)
        return rows[0] if rows else None

    async def _run(self, query: Query, params: Mapping[str, Any], row_factory: Any, *, one: bool) -> list[Any]:
        started = time.perf_counter()
        try:
            async with self.pool.connection() as conn, conn.cursor(row_factory=row_factory) as cur:
                await cur.execute(query.sql, params)
                if one:
                    found = await cur.fetchone()
                    return [found] if found is not None else []
                return await cur.fetchall()
        finally:
            log.debug("query %s took %.1f ms", query.name, (time.perf_counter() - started) * 1000,
                      extra={"query": query.name})

    async def readiness(self, timeout: float = 2.0) -> Readiness:
        """Reachable, and every migration of this package version recorded in the ledger.

        Checksums are `migrate`'s business (it refuses an edited migration): a server whose
        tables are all there can serve."""
        expected = {m.version for m in sqlfiles.migrations()}
        try:
            async with self.pool.connection(timeout=timeout) as conn:
                cur = await conn.execute("SELECT version FROM analytics_internal.tb_migration")
                applied = {version for (version,) in await cur.fetchall()}
        except psycopg.errors.UndefinedTable:
            return Readiness(False, "database is not migrated (run: mobile-analytics migrate)")
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with the reason logged
            log.warning("readiness check failed: %s", exc)
            return Readiness(False, "database unreachable")
        missing = sorted(expected - applied)
        if missing:
            return Readiness(False, f"migrations not applied: {', '.join(missing)}")
        return Readiness(True, "ok")
