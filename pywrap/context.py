"""What every resolver gets as `info.context`: the request's caller, headers and services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .auth import Credentials
from .db import Database
from .live import LiveHub


@dataclass
class RequestContext:
    db: Database
    hub: LiveHub
    credentials: Credentials
    # Lower-cased header names (HTTP request, or the WebSocket upgrade request).
    headers: Mapping[str, str]
    request_id: str
    # How often a running subscription re-checks its caller's key (pywrap.schema.live).
    live_reauth_seconds: float = 30.0
    # Set by the executor's fast path: the `events` of the operation's trackEvents field,
    # already checked against EventInput and mapped to fn_track_events' JSON keys.
    prevalidated_events: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
