"""Per-caller request quotas: HTTP 429 with Retry-After and RATE_LIMITED, per key, over HTTP
and WebSocket. (pywrap.ratelimit's bucket arithmetic is checked with a fake clock.)"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from pywrap.ratelimit import RateLimiter, retry_after_header
from tests.server_fixtures import ADMIN_TOKEN, apps, error_codes, fast_pool_retry, start_server  # noqa: F401

APPS = "{ apps { identifier } }"


def test_bucket_refills_at_the_rate_and_caps_at_the_burst():
    now = [0.0]
    limiter = RateLimiter(2, 3, clock=lambda: now[0])
    a, b = RateLimiter.caller("key-a", None), RateLimiter.caller("key-b", None)
    assert [limiter.acquire(a) for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire(a) == pytest.approx(0.5)  # 1 token at 2/s
    assert limiter.acquire(b) == 0  # another caller has its own bucket
    now[0] = 0.5
    assert limiter.acquire(a) == 0 and limiter.acquire(a) > 0
    now[0] = 100
    assert [limiter.acquire(a) for _ in range(4)][-1] > 0  # refilled to the burst, not beyond
    assert RateLimiter(0, 1).acquire(a) == 0  # disabled
    assert retry_after_header(0.01) == "1" and retry_after_header(1.2) == "2"


def test_callers_are_forgotten_least_recently_seen_first():
    limiter = RateLimiter(1, 1, max_callers=2, clock=lambda: 0.0)
    callers = [RateLimiter.caller(f"k{i}", None) for i in range(3)]
    for caller in callers:
        assert limiter.acquire(caller) == 0
    assert limiter.acquire(callers[0]) == 0  # forgotten, so a full bucket again
    assert limiter.acquire(callers[2]) > 0


@pytest.fixture
def limited(db, apps, fast_pool_retry):
    running = start_server(db, rate_limit=1, rate_limit_burst=3)
    yield running
    running.stop()


@pytest.mark.pg_only
def test_http_over_quota_gets_429_per_key(limited, apps):
    for _ in range(3):
        assert limited.post(APPS, key=ADMIN_TOKEN).status_code == 200
    refused = limited.post(APPS, key=ADMIN_TOKEN)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryable"] is True
    assert 0 < error["extensions"]["retryAfter"] <= 1
    # another key, and requests without a key (per client address), have their own quota
    body = limited.graphql('query { app(appId: "app123") { identifier } }', key=apps.main.read_key)
    assert body["data"]["app"]["identifier"] == "app123"
    assert error_codes(limited.graphql(APPS)) == ["UNAUTHENTICATED"]


@pytest.mark.pg_only
def test_websocket_operations_count_against_the_same_quota(limited, apps):
    async def scenario() -> list[dict]:
        async with websockets.connect(limited.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"apiKey": ADMIN_TOKEN}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            replies = []
            for i in range(4):
                await ws.send(json.dumps({"type": "subscribe", "id": str(i), "payload": {"query": APPS}}))
                while True:
                    reply = json.loads(await ws.recv())
                    if reply["type"] in ("complete", "error"):
                        replies.append(reply)
                        break
            return replies

    replies = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert [r["type"] for r in replies] == ["complete", "complete", "complete", "error"]
    assert replies[-1]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"


@pytest.mark.pg_only
def test_user_export_counts_against_the_quota(limited, apps):
    path = "/apps/app123/users/u1/events.jsonl"
    statuses = [limited.client.get(path, headers={"X-API-Key": apps.main.read_key}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
