"""The HTTP/WebSocket application (Starlette).

    POST /graphql   a GraphQL request as JSON {query, variables, operationName}
    GET  /graphql   GraphiQL in a browser; `?query=` runs a query (never a mutation)
    WS   /graphql   graphql-transport-ws (subscriptions; queries and mutations too)
    GET  /healthz   the process is alive (200 always)
    GET  /readyz    the database is reachable and migrated (200), else 503 with the reason
    GET  /apps/{appId}/users/{userId}/events.jsonl   one user's events as JSON lines (pywrap.export)

HTTP status codes say what happened to the HTTP request: 400 when the body is not a GraphQL
request (malformed JSON, no query), 413 when it is larger than max_body_bytes, 405 for other
methods. A well-formed GraphQL request always gets 200, its errors in `errors` with
extensions.code (GraphQL over HTTP, application/json).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from . import __version__, export, jsoncodec
from .auth import Credentials, secret_from_headers
from .config import Settings
from .context import RequestContext
from .db import Database
from .errors import Code, request_error
from .executor import Executor
from .graphiql import GRAPHIQL_HTML
from .live import LiveHub, LiveKey
from .queries import LIVE_METRICS, LiveMetricsRow
from .ratelimit import RateLimiter, retry_after_header
from .scheduler import Scheduler
from .schema import graphql_schema
from .websocket import TransportWsSession

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass
class Services:
    """Everything a request needs, created once per application."""

    settings: Settings
    db: Database
    hub: LiveHub[LiveMetricsRow]
    executor: Executor
    limiter: RateLimiter
    in_flight: int = 0  # HTTP GraphQL requests being executed (graceful shutdown waits for them)

    def rate_limited(self, request: Request) -> Response | None:
        """The 429 response for a caller past its quota (pywrap.ratelimit), else None (and counted)."""
        caller = RateLimiter.caller(secret_from_headers(request.headers), request.client and request.client.host)
        wait = self.limiter.acquire(caller)
        if not wait:
            return None
        request.state.error_codes = [Code.RATE_LIMITED.value]
        return _json(request_error(f"too many requests: an API key may send {self.settings.rate_limit:g} per second",
                                   Code.RATE_LIMITED, retry_after=wait,
                                   hint="Retry after the number of seconds in extensions.retryAfter."),
                     429, headers={"Retry-After": retry_after_header(wait)})

    def context(self, credentials: Credentials, headers: Mapping[str, str], request_id: str) -> RequestContext:
        return RequestContext(db=self.db, hub=self.hub, credentials=credentials, headers=headers,
                              request_id=request_id, live_reauth_seconds=self.settings.live_reauth_seconds)


def build_services(settings: Settings, database_url: str) -> Services:
    db = Database(database_url, min_size=settings.pool_min, max_size=settings.pool_max, timeout=settings.pool_timeout,
                  prepare=settings.prepare)

    async def fetch_live(key: LiveKey) -> LiveMetricsRow:
        row = await db.one(LIVE_METRICS, {"app": str(key.app_id), "interval": key.interval}, LiveMetricsRow)
        assert row is not None
        return row

    hub: LiveHub[LiveMetricsRow] = LiveHub(fetch_live, lambda key: key.interval)
    return Services(settings, db, hub, Executor(graphql_schema, settings),
                    RateLimiter(settings.rate_limit, settings.rate_limit_burst))


class _HttpError(Exception):
    def __init__(self, status: int, message: str, code: Code) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str),
                    status_code=status, media_type="application/json", headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, counted while it streams in: a Content-Length is not required, nor trusted."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise _HttpError(400, "invalid Content-Length", Code.BAD_USER_INPUT)
    stream = request.stream()
    too_large = declared is not None and int(declared) > limit
    if not too_large:
        chunks: list[bytes] = []
        total = 0
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                too_large = True
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    # Read (and drop) the rest of an oversized body, up to a bound, so that a client still
    # uploading gets the 413 instead of a connection reset. Past the bound, the server
    # answers anyway and closes the connection.
    budget = 4 * limit
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            break
    raise _HttpError(413, f"request body exceeds {limit} bytes", Code.PAYLOAD_TOO_LARGE)


def _parse_request(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        payload = jsoncodec.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _HttpError(400, "the request body is not valid JSON", Code.BAD_USER_INPUT) from None
    if isinstance(payload, list):
        raise _HttpError(400, "batched requests are not supported: send one operation per request",
                         Code.BAD_USER_INPUT)
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        raise _HttpError(400, 'the body must be a JSON object with a "query" string', Code.BAD_USER_INPUT)
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        raise _HttpError(400, '"variables" must be a JSON object', Code.BAD_USER_INPUT)
    if operation_name is not None and not isinstance(operation_name, str):
        raise _HttpError(400, '"operationName" must be a string', Code.BAD_USER_INPUT)
    return payload["query"], variables, operation_name


def create_app(settings: Settings, database_url: str) -> Starlette:
    services = build_services(settings, database_url)
    # Maintenance and the daily archive (pywrap.scheduler); settings are checked here, at start.
    scheduler = Scheduler(settings, services.db, database_url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await services.db.open()
        scheduler.start()
        log.info("server started", extra={"version": __version__, "pool_max": settings.pool_max})
        try:
            yield
        finally:
            # uvicorn has already let in-flight requests finish (or hit its timeout): end the
            # background jobs (a maintenance call in progress finishes) and the live feeds, then
            # close the pool once every connection is back.
            await scheduler.stop(timeout=settings.shutdown_timeout)
            await services.hub.close()
            await services.db.close(timeout=settings.shutdown_timeout)
            log.info("server stopped")

    async def run_graphql(request: Request, query: str, variables: dict[str, Any] | None,
                          operation_name: str | None, *, allow_mutations: bool) -> Response:
        request_id: str = request.state.request_id
        credentials = Credentials.from_secret(secret_from_headers(request.headers), settings.admin_token)
        ctx = services.context(credentials, request.headers, request_id)
        prepared = services.executor.prepare(query)
        body = await services.executor.execute(prepared, variables, operation_name, ctx,
                                               allow_mutations=allow_mutations)
        if "errors" in body:
            request.state.error_codes = sorted({e["extensions"]["code"] for e in body["errors"]})
        return _json(body)

    async def graphql_http(request: Request) -> Response:
        services.in_flight += 1
        try:
            if (refused := services.rate_limited(request)) is not None:
                return refused
            if request.method == "POST":
                query, variables, operation_name = _parse_request(
                    await _read_body(request, settings.max_body_bytes))
                return await run_graphql(request, query, variables, operation_name, allow_mutations=True)
            if "query" in request.query_params:
                variables = request.query_params.get("variables")
                try:
                    parsed_variables = jsoncodec.loads(variables) if variables else None
                except ValueError:
                    raise _HttpError(400, '"variables" is not valid JSON', Code.BAD_USER_INPUT) from None
                if parsed_variables is not None and not isinstance(parsed_variables, dict):
                    raise _HttpError(400, '"variables" must be a JSON object', Code.BAD_USER_INPUT)
                return await run_graphql(request, request.query_params["query"], parsed_variables,
                                         request.query_params.get("operationName"), allow_mutations=False)
            if "text/html" in request.headers.get("accept", ""):
                return HTMLResponse(GRAPHIQL_HTML)
            raise _HttpError(400, "send a GraphQL request as a JSON POST, or open this URL in a browser",
                             Code.BAD_USER_INPUT)
        except _HttpError as exc:
            return _json(request_error(exc.message, exc.code), exc.status)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        finally:
            services.in_flight -= 1

    async def graphql_ws(websocket: WebSocket) -> None:
        def make_context(credentials: Credentials, headers: dict[str, str]) -> RequestContext:
            return services.context(credentials, headers, uuid.uuid4().hex)

        await TransportWsSession(
            websocket, services.executor, make_context, settings.admin_token,
            init_timeout=settings.ws_init_timeout, max_operations=settings.ws_max_operations,
            limiter=services.limiter,
        ).run()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(_request: Request) -> Response:
        readiness = await services.db.readiness()
        if readiness.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "reason": readiness.reason}, status_code=503)

    app = Starlette(
        routes=[
            Route("/graphql", graphql_http, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_ws),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(export.PATH, export.user_events, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return AccessLog(app)  # type: ignore[return-value]


class AccessLog:
    """One structured log line per HTTP request or WebSocket connection, and a request id
    (the client's X-Request-Id if sane, else a new one) echoed in the response."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            state = scope.get("state", {})
            log.info(
                "%s %s", scope.get("method", "WS"), scope["path"],
                extra={
                    "request_id": request_id,
                    "status": status or None,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                    **({"error_codes": state["error_codes"]} if "error_codes" in state else {}),
                },
            )
