"""Who is calling, and may they do this?

A caller presents one secret: an app's API key, or the admin token. Over HTTP it comes in
`X-API-Key: <secret>` or `Authorization: Bearer <secret>`; over WebSocket in the
connection_init payload as {"apiKey"}, {"X-API-Key"} or {"authorization": "Bearer ..."} (the
upgrade request's headers are used when the payload has none).

The rules:
* API keys are verified by the database (analytics.fn_authenticate_key, or fn_track_events
  itself for ingestion, which saves a round trip). Only hashes are stored, and the errors
  read the same whether the key is unknown, revoked or another app's (UNAUTHENTICATED), or
  a live key of the wrong kind (FORBIDDEN).
* Write keys only ingest; read keys only query and subscribe to their own app.
* The admin token (MOBILE_ANALYTICS_ADMIN_TOKEN) manages apps and keys and may read any app.
  It is compared in constant time and is never sent to the database. It is not a write key:
  ingestion always needs the app's own key.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .db import Database
from .errors import ApiError, Code
from .queries import AUTHENTICATE_KEY, RESOLVE_APP, AppRef

ADMIN_REQUIRED = ApiError(
    Code.UNAUTHENTICATED,
    "this operation needs the admin token",
    "Send the admin token in the X-API-Key header or as Authorization: Bearer <token>.",
)


@dataclass(frozen=True)
class Credentials:
    secret: str | None
    is_admin: bool

    @classmethod
    def from_secret(cls, secret: str | None, admin_token: str | None) -> Credentials:
        secret = secret.strip() if isinstance(secret, str) else None
        secret = secret or None
        is_admin = bool(
            secret is not None
            and admin_token
            and hmac.compare_digest(secret.encode("utf-8"), admin_token.encode("utf-8"))
        )
        return cls(secret, is_admin)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token if scheme.lower() == "bearer" else None


def secret_from_headers(headers: Mapping[str, str]) -> str | None:
    """The secret in X-API-Key or Authorization: Bearer (header names are case-insensitive)."""
    return headers.get("x-api-key") or _bearer(headers.get("authorization"))


def secret_from_init_payload(payload: Any) -> str | None:
    """The secret in a graphql-transport-ws connection_init payload, in any usual spelling."""
    if not isinstance(payload, Mapping):
        return None
    lowered = {str(k).lower(): v for k, v in payload.items() if isinstance(v, str)}
    return lowered.get("apikey") or lowered.get("x-api-key") or _bearer(lowered.get("authorization"))


def require_admin(credentials: Credentials) -> None:
    if not credentials.is_admin:
        raise ADMIN_REQUIRED


async def authorize_read(db: Database, credentials: Credentials, app: str) -> AppRef:
    """The app named by `app` if the caller may read it: its own read key, or the admin token."""
    if credentials.is_admin:
        found = await db.one(RESOLVE_APP, {"app": app}, AppRef)
        if found is None:
            raise ApiError(Code.BAD_USER_INPUT, f"app {app!r} does not exist", "Pass the app's identifier or uuid.")
        return found
    found = await db.one(AUTHENTICATE_KEY, {"app": app, "api_key": credentials.secret, "kind": "read"}, AppRef)
    assert found is not None  # the function raises rather than return nothing
    return found
