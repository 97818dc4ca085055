"""A private PostgreSQL cluster with one empty database, for the benchmarks that start their own."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def private_database(dbname: str, *, durable: bool) -> Iterator[tuple[str, Path]]:
    """(conninfo, scratch directory) of a new database on a cluster started for the caller and
    stopped after. ``durable`` keeps the crash-safe settings a production server runs with."""
    from tests.engines import start_postgres

    with tempfile.TemporaryDirectory(prefix="ma-bench-") as tmp:
        print("starting a private PostgreSQL cluster ...", flush=True)
        server = start_postgres(Path(tmp), durable=durable)
        try:
            with server.connect("postgres", autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{dbname}"')
            yield server.conninfo(dbname), Path(tmp)
        finally:
            server.stop()
