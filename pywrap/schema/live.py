"""Live dashboards: the liveMetrics subscription, fed by pywrap.live's shared polls."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import graphene

from ..auth import authorize_read
from ..context import RequestContext
from ..live import LiveKey, Subscription
from ..queries import LiveMetricsRow


class LiveMetrics(graphene.ObjectType):
    timestamp = graphene.DateTime(required=True, description="end of the window (when it was measured)")
    window_start = graphene.DateTime(required=True)
    pageviews = graphene.Int(required=True, description="page_view and screen_view events")
    unique_users = graphene.Int(required=True, description="distinct users (user id, else anonymous id), exact")
    crash_count = graphene.Int(required=True, description="crash and app_crash events")
    avg_session_duration = graphene.Float(description="seconds, over sessions active in the window; null if none")

    @staticmethod
    def resolve_timestamp(root: LiveMetricsRow, _info: Any) -> Any:
        return root.window_end


class LiveSubscription(graphene.ObjectType):
    live_metrics = graphene.Field(
        graphene.NonNull(LiveMetrics),
        app_id=graphene.ID(required=True),
        interval=graphene.Int(default_value=60, description="seconds, 1 to 3600: the window and the period"),
        description="what happened in the last `interval` seconds: now, then every `interval` seconds "
        "(read key of the app, or the admin token)",
    )

    @staticmethod
    async def subscribe_live_metrics(_root: Any, info: graphene.ResolveInfo, app_id: str,
                                     interval: int) -> Reauthorizing:
        # A coroutine that returns the iterator (not an async generator): authorization and
        # the first poll happen before the subscription starts, so their errors are the
        # subscription's own error message rather than a failure in the middle of a stream.
        ctx: RequestContext = info.context
        app = await authorize_read(ctx.db, ctx.credentials, app_id)
        feed = await ctx.hub.subscribe(LiveKey(app.app_id, interval))

        async def recheck() -> None:
            await authorize_read(ctx.db, ctx.credentials, app_id)

        return Reauthorizing(feed, recheck, ctx.live_reauth_seconds)


class Reauthorizing:
    """A subscription's values, re-checking the caller's key at most every `period` seconds
    before passing one on: a revoked key's subscriptions end (UNAUTHENTICATED) rather than
    run for as long as the socket stays open. The shared poll itself never sees keys."""

    def __init__(self, feed: Subscription[LiveMetricsRow], check: Callable[[], Awaitable[None]],
                 period: float) -> None:
        self._feed = feed
        self._check = check
        self._period = period
        self._checked = time.monotonic()

    def __aiter__(self) -> Reauthorizing:
        return self

    async def __anext__(self) -> LiveMetricsRow:
        value = await self._feed.__anext__()
        if time.monotonic() - self._checked >= self._period:
            await self._check()  # raises ApiError/psycopg errors: the operation ends with it
            self._checked = time.monotonic()
        return value

    async def aclose(self) -> None:
        await self._feed.aclose()
