"""GraphQL over WebSocket, graphql-transport-ws protocol (what Apollo, urql and gql speak).

    client                          server
    connection_init {payload}  ->
                               <-   connection_ack            (else close 4408 after the timeout)
    subscribe {id, payload}    ->                             (before the ack: close 4401)
                               <-   next {id, payload} ...    (a result)
                               <-   complete {id}             (done), or error {id, payload: [errors]}
    complete {id}              ->                             (the client stops one operation)
    ping / pong                <->

Other close codes: 4400 malformed message, 4406 the client does not speak the protocol,
4409 an id already in use, 4429 a second connection_init. Credentials come from the
connection_init payload (see pywrap.auth), else the upgrade request's headers; each
operation is then authorized like an HTTP request. Queries and mutations are accepted too
(one `next`, then `complete`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from graphql import OperationType
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .auth import Credentials, secret_from_headers, secret_from_init_payload
from .context import RequestContext
from .errors import Code, error_dict, from_exception
from .executor import Executor
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

PROTOCOL = "graphql-transport-ws"


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TransportWsSession:
    """One WebSocket connection; `run()` returns when it is closed."""

    def __init__(
        self,
        websocket: WebSocket,
        executor: Executor,
        make_context: Callable[[Credentials, dict[str, str]], RequestContext],
        admin_token: str | None,
        *,
        init_timeout: float,
        max_operations: int,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.websocket = websocket
        self.executor = executor
        self.make_context = make_context
        self.admin_token = admin_token
        self.init_timeout = init_timeout
        self.max_operations = max_operations
        self.limiter = limiter
        self.headers = {k.lower(): v for k, v in websocket.headers.items()}
        self.credentials: Credentials | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._acknowledged = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def run(self) -> None:
        if PROTOCOL not in self.websocket.scope.get("subprotocols", []):
            await self.websocket.accept()
            await self._close(4406, "Subprotocol not acceptable")
            return
        await self.websocket.accept(subprotocol=PROTOCOL)
        watchdog = asyncio.create_task(self._init_watchdog())
        try:
            while not self._closed:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._handle(message.get("text"))
        except _Close as close:
            await self._close(close.code, close.reason)
        except WebSocketDisconnect:
            pass
        finally:
            watchdog.cancel()
            tasks = list(self.operations.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def _init_watchdog(self) -> None:
        try:
            await asyncio.wait_for(self._acknowledged.wait(), self.init_timeout)
        except TimeoutError:
            await self._close(4408, "Connection initialisation timeout")

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self.websocket.application_state != WebSocketState.DISCONNECTED:
                await self.websocket.close(code=code, reason=reason)

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self._closed:
                await self.websocket.send_text(json.dumps(message, default=str))

    async def _handle(self, text: str | None) -> None:
        try:
            message = json.loads(text) if text is not None else None
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _Close(4400, "Invalid message")
        kind = message["type"]
        if kind == "connection_init":
            if self.credentials is not None:
                raise _Close(4429, "Too many initialisation requests")
            secret = secret_from_init_payload(message.get("payload")) or secret_from_headers(self.headers)
            self.credentials = Credentials.from_secret(secret, self.admin_token)
            await self._send({"type": "connection_ack"})
            self._acknowledged.set()
        elif kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            self._subscribe(message)
        elif kind == "complete":
            task = self.operations.pop(str(message.get("id")), None)
            if task is not None:
                task.cancel()  # no `complete` goes back: the client asked for the end
        else:
            raise _Close(4400, f"Unknown message type {kind[:40]!r}")

    def _subscribe(self, message: dict[str, Any]) -> None:
        op_id, payload = message.get("id"), message.get("payload")
        if not isinstance(op_id, str) or not op_id or not isinstance(payload, dict) \
                or not isinstance(payload.get("query"), str):
            raise _Close(4400, "Invalid subscribe message")
        if not self._acknowledged.is_set():
            raise _Close(4401, "Unauthorized")
        if op_id in self.operations:
            raise _Close(4409, f"Subscriber for {op_id[:40]} already exists")
        if self.limiter is not None and self.credentials is not None:
            client = self.websocket.client.host if self.websocket.client else None
            wait = self.limiter.acquire(RateLimiter.caller(self.credentials.secret, client))
            if wait:
                asyncio.create_task(self._send({"type": "error", "id": op_id, "payload": [error_dict(
                    "too many requests for this API key", Code.RATE_LIMITED, retry_after=wait)]}))
                return
        if len(self.operations) >= self.max_operations:
            asyncio.create_task(self._send({"type": "error", "id": op_id, "payload": [error_dict(
                f"a connection may run at most {self.max_operations} operations at once", Code.RATE_LIMITED)]}))
            return
        self.operations[op_id] = asyncio.create_task(self._run_operation(op_id, payload))

    async def _run_operation(self, op_id: str, payload: dict[str, Any]) -> None:
        assert self.credentials is not None
        ctx = self.make_context(self.credentials, self.headers)
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        try:
            if variables is not None and not isinstance(variables, dict) \
                    or operation_name is not None and not isinstance(operation_name, str):
                await self._error(op_id, [error_dict("variables must be an object and operationName a string",
                                                     Code.BAD_USER_INPUT)])
                return
            prepared = self.executor.prepare(payload["query"])
            operation = prepared.operation(operation_name)
            if prepared.document is None or operation is None or operation.operation != OperationType.SUBSCRIPTION:
                body = await self.executor.execute(prepared, variables, operation_name, ctx)
                if "data" not in body:
                    await self._error(op_id, body["errors"])
                    return
                await self._send({"type": "next", "id": op_id, "payload": body})
            else:
                stream = await self.executor.subscribe(prepared, variables, operation_name, ctx)
                if isinstance(stream, dict):
                    await self._error(op_id, stream["errors"])
                    return
                try:
                    async for result in stream:
                        await self._send({"type": "next", "id": op_id,
                                          "payload": self.executor.format(result, ctx.request_id)})
                except Exception as exc:  # noqa: BLE001 - the feed failed: end this operation with an error
                    api = from_exception(exc)
                    if api.code in (Code.INTERNAL, Code.SERVICE_UNAVAILABLE):
                        log.error("subscription %s failed", op_id, exc_info=exc, extra={"request_id": ctx.request_id})
                    await self._error(op_id, [error_dict(api.message, api.code, hint=api.hint,
                                                         request_id=ctx.request_id)])
                    return
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
            await self._send({"type": "complete", "id": op_id})
        finally:
            if self.operations.get(op_id) is asyncio.current_task():
                del self.operations[op_id]

    async def _error(self, op_id: str, errors: list[dict[str, Any]]) -> None:
        await self._send({"type": "error", "id": op_id, "payload": errors})
