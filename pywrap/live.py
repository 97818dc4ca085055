"""Live feeds: one database poll per (app, interval), shared by every subscriber.

A dashboard that subscribes to liveMetrics(appId, interval) joins the feed for that key; the
first subscriber starts it, the last one to leave stops it. Each feed polls once at start
(so a new subscriber gets a value at once, and a bad interval fails the subscription with
the SQL function's error) and then every `interval` seconds on a fixed schedule. A
subscriber that joins a running feed gets the feed's latest value at once.

A slow subscriber never slows the feed: each subscriber holds only the newest value it has
not read yet (older unread values are dropped, which is what a live tile wants).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class LiveKey:
    app_id: UUID
    interval: int


@dataclass
class _Feed(Generic[T]):
    key: Hashable
    interval: float
    subscribers: set[Subscription[T]] = field(default_factory=set)
    latest: T | None = None
    polls: int = 0
    started: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None


class Subscription(Generic[T]):
    """An async iterator over a feed's values; `aclose()` (or leaving `async for`) unsubscribes."""

    def __init__(self, hub: LiveHub[T], feed: _Feed[T]) -> None:
        self._hub = hub
        self._feed = feed
        self._pending: T | None = None
        self._has_value = asyncio.Event()
        self._error: BaseException | None = None
        self._closed = False

    def _offer(self, value: T) -> None:
        self._pending = value
        self._has_value.set()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._has_value.set()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        await self._has_value.wait()
        if self._closed:
            raise StopAsyncIteration
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._has_value.clear()
        value, self._pending = self._pending, None
        return value  # type: ignore[return-value]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._has_value.set()  # wake a reader blocked in __anext__
            self._hub._leave(self)


class LiveHub(Generic[T]):
    """Feeds by key. `fetch(key)` reads one value; `interval_of(key)` is the poll period in seconds."""

    def __init__(self, fetch: Callable[[Any], Awaitable[T]], interval_of: Callable[[Any], float]) -> None:
        self._fetch = fetch
        self._interval_of = interval_of
        self._feeds: dict[Hashable, _Feed[T]] = {}
        self._closed = False

    # -- for tests and /readyz-like introspection
    def polls(self, key: Hashable) -> int:
        feed = self._feeds.get(key)
        return feed.polls if feed else 0

    def subscriber_count(self, key: Hashable) -> int:
        feed = self._feeds.get(key)
        return len(feed.subscribers) if feed else 0

    @property
    def active_keys(self) -> list[Hashable]:
        return list(self._feeds)

    async def subscribe(self, key: Hashable) -> Subscription[T]:
        if self._closed:
            raise RuntimeError("the live hub is shut down")
        feed = self._feeds.get(key)
        if feed is None:
            feed = _Feed(key, float(self._interval_of(key)))
            self._feeds[key] = feed
            feed.started = asyncio.ensure_future(self._start(feed))
        subscription = Subscription(self, feed)
        feed.subscribers.add(subscription)
        try:
            assert feed.started is not None
            # shield: one subscriber giving up must not cancel the first poll the others wait for
            await asyncio.shield(feed.started)
        except BaseException:
            await subscription.aclose()
            raise
        subscription._offer(feed.latest)  # type: ignore[arg-type]
        return subscription

    async def _start(self, feed: _Feed[T]) -> None:
        try:
            feed.latest = await self._fetch(feed.key)
            feed.polls += 1
        except BaseException:
            if self._feeds.get(feed.key) is feed:
                del self._feeds[feed.key]
            raise
        if self._feeds.get(feed.key) is feed:  # everyone may have left during the first poll
            feed.task = asyncio.create_task(self._run(feed), name=f"live-feed {feed.key}")

    async def _run(self, feed: _Feed[T]) -> None:
        # A fixed schedule (start + n * interval), so that slow polls do not make the feed drift.
        next_at = time.monotonic()
        while True:
            next_at += feed.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            try:
                value = await self._fetch(feed.key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the feed outlives a failed poll
                log.warning("live poll for %s failed: %s", feed.key, type(exc).__name__,
                            extra={"feed": str(feed.key)}, exc_info=exc)
                continue
            feed.polls += 1
            feed.latest = value
            for subscription in list(feed.subscribers):
                subscription._offer(value)
            if next_at < time.monotonic():  # a poll took longer than the interval: skip ahead
                next_at = time.monotonic()

    def _leave(self, subscription: Subscription[T]) -> None:
        feed = subscription._feed
        feed.subscribers.discard(subscription)
        if feed.subscribers or self._feeds.get(feed.key) is not feed:
            return
        del self._feeds[feed.key]
        if feed.task is not None:
            feed.task.cancel()

    async def close(self) -> None:
        """Stop every feed and end every subscription (server shutdown)."""
        self._closed = True
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            if feed.task is not None:
                feed.task.cancel()
            for subscription in list(feed.subscribers):
                subscription._closed = True
                subscription._has_value.set()
        for feed in feeds:
            if feed.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.task
