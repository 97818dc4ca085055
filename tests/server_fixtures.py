"""Fixtures for the server tests: a real uvicorn server on a free port, over the `db` fixture.

Import the fixtures into a test module (`from tests.server_fixtures import apps, server`).
The server runs in a thread of the test process, so tests can look at its live hub and
document cache, and its pool is one connection on the single-connection WASM engine. Apps
are created before the server starts (on the WASM engine nothing else may connect while it
runs); `server.stop()` ends it early when a test wants to read the database afterwards.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg_pool.base
import pytest
import uvicorn

from pywrap.app import Services
from pywrap.config import Settings
from pywrap.server import make_server
from tests.conftest import App, Database, RunningEngine, create_app

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"

SEED_TRACK_EVENTS = """mutation { trackEvents( appId: "app123" events: [ { type: "page_view" path: "/home" metadata: { referrer: "/search" } }, { type: "button_click" label: "Sign Up" metadata: { screen: "onboarding" } }, { type: "screen_time" duration: 45000 } ] ) { success eventCount }}"""  # noqa: E501 - the seed's text, verbatim
SEED_LIVE_METRICS = """subscription { liveMetrics(appId: "app123", interval: 60) { timestamp pageviews uniqueUsers crashCount avgSessionDuration }}"""  # noqa: E501


@dataclass
class Apps:
    main: App  # identifier app123, as in the seed
    other: App


@dataclass
class RunningServer:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread
    settings: Settings
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/graphql"

    @property
    def services(self) -> Services:
        return self.server.config.app.state.services  # type: ignore[union-attr]

    def post(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None,
             headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"query": query, **extra}
        if variables is not None:
            body["variables"] = variables
        sent = dict(headers or {})
        if key is not None:
            sent["X-API-Key"] = key
        return self.client.post("/graphql", json=body, headers=sent)

    def graphql(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """The JSON body of a GraphQL request that must get HTTP 200."""
        response = self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "server did not stop"
        self.client.close()


def start_server(database: Database, *, wait_ready: bool = True, **overrides: Any) -> RunningServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "port": port,
        # The WASM engine serves one connection: the whole server must make do with it.
        "pool_min": 1,
        "pool_max": 1 if database.single_connection else 4,
        # ...and it keeps prepared statements across connections: psycopg's would collide.
        "prepare": not database.single_connection,
        "shutdown_timeout": 10.0,
        "log_level": "debug",
    }
    settings = Settings(**(options | overrides))
    server = make_server(settings, database.conninfo)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    running = RunningServer(f"http://127.0.0.1:{port}", server, thread, settings)
    # Ready = its pool holds a connection (the WASM engine frees the fixture's slot lazily).
    while wait_ready and (ready := running.client.get("/readyz")).status_code != 200:
        if time.monotonic() > deadline:
            running.stop()  # else its pool keeps the WASM engine's one connection from later tests
            raise RuntimeError("the server never became ready: " + ready.text)
        time.sleep(0.05)
    return running


@pytest.fixture
def fast_pool_retry(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the WASM engine the slot of the fixtures' last connection is freed a moment after it
    closes, so the pool's first connect may be refused; its first retry would wait 1 s."""
    if db.single_connection:
        monkeypatch.setattr(psycopg_pool.base.AttemptWithBackoff, "INITIAL_DELAY", 0.05)


@pytest.fixture
def apps(db: Database) -> Apps:
    with db.connect() as conn:
        return Apps(create_app(conn, "app123"), create_app(conn, "other-app"))


@pytest.fixture
def server(db: Database, apps: Apps, fast_pool_retry: None) -> Iterator[RunningServer]:
    running = start_server(db)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http_server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """One server per module on PostgreSQL, for HTTP behaviour that does not depend on the
    engine (request parsing, limits, GraphQL errors): no per-test database or server."""
    if "postgresql" not in request.config.getoption("--engines"):
        pytest.skip("engine-independent HTTP tests run on the postgresql engine")
    pg_server: RunningEngine = request.getfixturevalue("pg_server")
    template: str = request.getfixturevalue("pg_template")
    dbname = f"ma_http_{os.getpid()}"
    with pg_server.connect("postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {dbname} TEMPLATE {template}")
    running = start_server(Database("postgresql", pg_server, dbname), ws_init_timeout=0.5)
    yield running
    running.stop()
    with pg_server.connect("postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]
