"""The one place that decides what a client learns when something fails.

Every error reaches the client as a GraphQL error {message, extensions: {code, ...}}. The
code comes from the SQLSTATE that the SQL package raised (the functions are the source of
truth for what is wrong with a request), or from the GraphQL phase that failed:

    SQLSTATE                                        extensions.code
    28000 invalid_authorization_specification       UNAUTHENTICATED
    42501 insufficient_privilege                    FORBIDDEN
    22023 22P02 22007 22008 22003 22001 22004       BAD_USER_INPUT
    22P05 22021 23505 23502 23514 P0002
    54000 program_limit_exceeded                    PAYLOAD_TOO_LARGE
    53xxx 55P03 57014 57P01-57P03 40001 40P01 08xxx SERVICE_UNAVAILABLE (retryable)
    anything else                                   INTERNAL

Why SERVICE_UNAVAILABLE and not RATE_LIMITED for 53300 (too many connections), 55P03 (lock
not available) and 57014 (statement timeout): they say the server is short of capacity, not
that this client sent too much, and the right reaction is the same for every client: retry
later with backoff. RATE_LIMITED is what a caller gets past its request quota (pywrap.ratelimit), with extensions.retryAfter
in seconds (and HTTP 429 with Retry-After). Both carry extensions.retryable = true.

What the message says: for user errors (BAD_USER_INPUT, UNAUTHENTICATED, FORBIDDEN,
PAYLOAD_TOO_LARGE) the SQL error's primary message, with its HINT in extensions.hint. The
functions word these for clients: they name the limit or the field, never SQL text, and the
authentication errors read alike whatever was wrong. DETAIL is not passed on (it may hold
data that explains more than the client should learn). For INTERNAL and SERVICE_UNAVAILABLE
the message is generic; the real error is logged with the request id, which the client gets
in extensions.requestId to quote in a bug report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import psycopg
from graphql import GraphQLError
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)


class Code(StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL = "INTERNAL"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


_USER_CODES = {Code.BAD_USER_INPUT, Code.UNAUTHENTICATED, Code.FORBIDDEN, Code.PAYLOAD_TOO_LARGE, Code.RATE_LIMITED}
_RETRYABLE = {Code.SERVICE_UNAVAILABLE, Code.RATE_LIMITED}

_BY_SQLSTATE: dict[str, Code] = {
    "28000": Code.UNAUTHENTICATED,
    "42501": Code.FORBIDDEN,
    "54000": Code.PAYLOAD_TOO_LARGE,
    **dict.fromkeys(
        ("22023", "22P02", "22007", "22008", "22003", "22001", "22004", "22P05", "22021",
         "23505", "23502", "23514", "P0002"),
        Code.BAD_USER_INPUT,
    ),
    **dict.fromkeys(("55P03", "57014", "57P01", "57P02", "57P03", "40001", "40P01"), Code.SERVICE_UNAVAILABLE),
}
# Whole SQLSTATE classes: 53 insufficient resources, 08 connection exception.
_BY_CLASS: dict[str, Code] = {"53": Code.SERVICE_UNAVAILABLE, "08": Code.SERVICE_UNAVAILABLE}

GENERIC_MESSAGES = {
    Code.INTERNAL: "Internal server error.",
    Code.SERVICE_UNAVAILABLE: "The service is busy or the database is unavailable; retry later.",
}

# Plain HTTP endpoints (not GraphQL, which answers 200 with `errors`) answer with this status
# and the same error body; e.g. the user export, GET /apps/{appId}/users/{userId}/events.jsonl.
HTTP_STATUS: dict[Code, int] = {
    Code.BAD_USER_INPUT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.FORBIDDEN: 403,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.RATE_LIMITED: 429,
    Code.SERVICE_UNAVAILABLE: 503,
    Code.INTERNAL: 500,
    Code.GRAPHQL_PARSE_FAILED: 400,
    Code.GRAPHQL_VALIDATION_FAILED: 400,
}


class ApiError(Exception):
    """An error whose message and hint are fit for the client."""

    def __init__(self, code: Code, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


def code_for_sqlstate(sqlstate: str | None) -> Code:
    if not sqlstate:
        return Code.SERVICE_UNAVAILABLE  # no server answer at all: the connection failed
    return _BY_SQLSTATE.get(sqlstate) or _BY_CLASS.get(sqlstate[:2]) or Code.INTERNAL


def from_exception(exc: BaseException) -> ApiError:
    """What the client may learn about `exc` (an INTERNAL error for anything unforeseen)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PoolTimeout):
        return ApiError(Code.SERVICE_UNAVAILABLE, GENERIC_MESSAGES[Code.SERVICE_UNAVAILABLE])
    if isinstance(exc, psycopg.Error):
        code = code_for_sqlstate(exc.sqlstate)
        if code in _USER_CODES and exc.diag.message_primary:
            return ApiError(code, exc.diag.message_primary, exc.diag.message_hint)
        return ApiError(code, GENERIC_MESSAGES.get(code, GENERIC_MESSAGES[Code.INTERNAL]))
    return ApiError(Code.INTERNAL, GENERIC_MESSAGES[Code.INTERNAL])


def error_dict(
    message: str,
    code: Code,
    *,
    hint: str | None = None,
    request_id: str | None = None,
    path: Iterable[str | int] | None = None,
    locations: list[dict[str, int]] | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """One entry of a response's `errors` list."""
    out: dict[str, Any] = {"message": message}
    if locations:
        out["locations"] = locations
    if path is not None:
        out["path"] = list(path)
    ext: dict[str, Any] = {"code": code.value}
    if hint:
        ext["hint"] = hint
    if code in _RETRYABLE:
        ext["retryable"] = True
    if retry_after is not None:
        ext["retryAfter"] = round(retry_after, 3)  # seconds
    if code not in _USER_CODES and request_id:
        ext["requestId"] = request_id
    out["extensions"] = ext
    return out


def format_graphql_error(error: GraphQLError, *, request_id: str | None, request_phase: bool) -> dict[str, Any]:
    """A GraphQL error as the client sees it.

    `request_phase` is True for errors raised before any resolver ran (variable coercion,
    operation selection): graphql-core words those itself, from the request alone, so they
    are passed on as BAD_USER_INPUT. Errors from resolvers are mapped from their cause.
    """
    locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or ()] or None
    cause = error.original_error
    # A scalar's parse error in variable coercion (e.g. Graphene's Date on "2026-13-01") carries
    # the scalar's own GraphQLError or ValueError as its cause: still the request's fault.
    if request_phase and (cause is None or isinstance(cause, GraphQLError | ValueError | TypeError)):
        return error_dict(error.message, Code.BAD_USER_INPUT, locations=locations, request_id=request_id)
    if cause is None:
        # e.g. a resolver returned null for a non-null field: a server bug, not the client's.
        log.error("graphql execution error: %s", error.message, extra={"request_id": request_id, "path": error.path})
        return error_dict(GENERIC_MESSAGES[Code.INTERNAL], Code.INTERNAL, path=error.path,
                          locations=locations, request_id=request_id)
    api = from_exception(cause)
    if api.code is Code.INTERNAL or (api.code is Code.SERVICE_UNAVAILABLE and not isinstance(cause, ApiError)):
        log.error(
            "operation failed: %s", type(cause).__name__, exc_info=cause,
            extra={"request_id": request_id, "path": error.path,
                   "sqlstate": getattr(cause, "sqlstate", None)},
        )
    return error_dict(api.message, api.code, hint=api.hint, path=error.path, locations=locations,
                      request_id=request_id)


def request_error(message: str, code: Code, **kwargs: Any) -> dict[str, Any]:
    """A response body holding one error and no data (parse failures, bad requests)."""
    return {"errors": [error_dict(message, code, **kwargs)]}
