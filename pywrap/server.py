"""Running the application under uvicorn, with a shutdown that loses no acknowledged batch.

On SIGTERM or SIGINT uvicorn stops accepting connections, lets requests in flight finish
(up to shutdown_timeout seconds), closes WebSockets, then runs the application's shutdown
(live feeds stop, the pool closes once its connections are back). A batch is acknowledged
only after fn_track_events has returned on an autocommit connection, i.e. after its commit,
so every acknowledged batch is durable; a batch cut off by the timeout was never
acknowledged, and the SDK's retry is deduplicated by event id.
"""

from __future__ import annotations

import socket

import uvicorn

from . import logs
from .app import create_app
from .config import Settings


def make_server(settings: Settings, database_url: str) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings, database_url),
        host=settings.host,
        port=settings.port,
        log_config=logs.uvicorn_log_config(),
        access_log=False,
        lifespan="on",
        ws="auto",
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # Keep-alive connections idle longer than this are closed; SDKs reconnect cheaply.
        timeout_keep_alive=30,
        server_header=False,
    )
    return uvicorn.Server(config)


def run(settings: Settings, database_url: str, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (blocks)."""
    make_server(settings, database_url).run(sockets=sockets)
