"""Database access: an async connection pool and named queries that return dataclasses.

Each GraphQL operation is one SQL function call (see pywrap.queries). Connections are in
autocommit mode: a function call is its own transaction and has committed by the time the
call returns, so a response is only ever sent for work that is durable.
"""

from __future__ import annotations

import asyncio
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

    def stream(self, query: Query, params: Mapping[str, Any], *, batch_size: int = 1000,
               name: str = "stream") -> RowStream:
        """The rows of `query` in batches through a named server-side cursor (see RowStream)."""
        return RowStream(self, query, params, batch_size=batch_size, name=name)

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


_END = object()
# Producer tasks still running after their stream was closed (asyncio keeps only weak
# references to tasks): they finish their round trip, close the cursor and end.
_finishing: set[asyncio.Task[None]] = set()


class RowStream:
    """An async iterator over the batches of a query, read through a named server-side cursor:
    the server produces rows as they are fetched, and at most one batch is held here, whatever
    the total. Call aclose() when done (also after an early stop).

    One pooled connection and one transaction (where the cursor lives) are held until the end.
    The database work runs in a task of its own, which fetches a batch only when one is asked
    for: the consumer (a request whose client may go away, which cancels it) never awaits a
    query itself. A query cancelled midway makes psycopg close the connection in the middle of
    the protocol, which the single-connection WASM engine does not survive; here the fetch in
    flight completes, then the cursor and the transaction end normally."""

    def __init__(self, db: Database, query: Query, params: Mapping[str, Any], *, batch_size: int,
                 name: str) -> None:
        self._db, self._query, self._params = db, query, params
        self._batch_size, self._name = batch_size, name
        self._wanted = asyncio.Semaphore(0)
        self._results: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def __aiter__(self) -> RowStream:
        return self

    async def __anext__(self) -> list[tuple[Any, ...]]:
        if self._stopped:
            raise StopAsyncIteration
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._produce())
        self._wanted.release()
        item = await self._results.get()
        if item is _END:
            self._stopped = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._stopped = True
            raise item
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop: the producer ends after its fetch in flight, if any. Never blocks."""
        self._stopped = True
        task = self._task
        if task is not None and not task.done():
            _finishing.add(task)
            task.add_done_callback(_finishing.discard)
            self._wanted.release()  # wake it if it is waiting for a request

    async def _produce(self) -> None:
        started = time.perf_counter()
        rows = 0
        try:
            async with self._db.pool.connection() as conn, conn.transaction(), \
                    conn.cursor(name=self._name) as cur:
                await cur.execute(self._query.sql, self._params)
                while True:
                    await self._wanted.acquire()
                    if self._stopped:
                        break
                    batch = await cur.fetchmany(self._batch_size)
                    if not batch:
                        break
                    rows += len(batch)
                    self._results.put_nowait(batch)
            self._results.put_nowait(_END)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            self._results.put_nowait(exc)
        finally:
            log.debug("stream %s: %d rows in %.1f ms", self._query.name, rows,
                      (time.perf_counter() - started) * 1000, extra={"query": self._query.name})
