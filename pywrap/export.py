"""GET /apps/{appId}/users/{userId}/events.jsonl: every stored event of one user, as JSON lines.

The right of access / data portability, for the admin token or the app's read key (in
X-API-Key or Authorization: Bearer). `?anonymousId=` (repeatable) adds more anonymous (device)
ids of the same person, as for deleteUser. One JSON object per line, oldest event first,
fields as analytics.fn_export_user documents them.

The events stream from a named server-side cursor, a batch at a time, so memory stays the same
whatever the user's history; the response is chunked and has no Content-Length. Errors found
before the first byte (credentials, unknown app, bad ids) get an HTTP status and a JSON body
shaped like a GraphQL error ({"errors": [{message, extensions: {code, hint}}]}); a failure
after that cuts the response off before its terminating chunk, so a client can tell a
truncated export from a complete one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .auth import Credentials, authorize_read, secret_from_headers
from .db import RowStream
from .errors import HTTP_STATUS, Code, from_exception, request_error
from .queries import EXPORT_USER

if TYPE_CHECKING:
    from .app import Services

log = logging.getLogger(__name__)

PATH = "/apps/{app_id}/users/{user_id:path}/events.jsonl"
BATCH_SIZE = 1000
MEDIA_TYPE = "application/x-ndjson"


class _ClosingStreamingResponse(StreamingResponse):
    """Closes its iterator however the response ends (also when the client went away), which
    ends the cursor's transaction and gives the connection back to the pool at once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined] # our iterators are generators


def _lines(batch: list[tuple[Any, ...]]) -> bytes:
    # Each row is one JSON document as text; JSON text never holds a raw newline.
    return "".join(f"{line}\n" for (line,) in batch).encode("utf-8")


def _error(request: Request, exc: BaseException) -> Response:
    api = from_exception(exc)
    request_id: str | None = getattr(request.state, "request_id", None)
    if api.code in (Code.INTERNAL, Code.SERVICE_UNAVAILABLE) and api is not exc:
        log.error("user export failed: %s", type(exc).__name__, exc_info=exc,
                  extra={"request_id": request_id, "sqlstate": getattr(exc, "sqlstate", None)})
    request.state.error_codes = [api.code.value]
    return JSONResponse(request_error(api.message, api.code, hint=api.hint, request_id=request_id),
                        HTTP_STATUS.get(api.code, 500))


async def user_events(request: Request) -> Response:
    services: Services = request.app.state.services
    if (refused := services.rate_limited(request)) is not None:
        return refused
    credentials = Credentials.from_secret(secret_from_headers(request.headers), services.settings.admin_token)
    stream: RowStream | None = None
    try:
        app = await authorize_read(services.db, credentials, request.path_params["app_id"])
        stream = services.db.stream(EXPORT_USER, {
            "app": str(app.app_id),
            "user_id": request.path_params["user_id"],
            "anonymous_ids": request.query_params.getlist("anonymousId") or None,
        }, batch_size=BATCH_SIZE, name="export_user")
        # The first batch before the response starts: argument errors still get a status.
        first = await anext(stream, [])
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error response
        if stream is not None:
            await stream.aclose()
        return _error(request, exc)

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield _lines(first)
            async for batch in stream:
                yield _lines(batch)
        finally:
            await stream.aclose()

    return _ClosingStreamingResponse(
        body(), media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{app.identifier}-user-events.jsonl"',
            # Personal data: no shared cache may keep a copy.
            "Cache-Control": "no-store",
        })
