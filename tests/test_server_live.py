"""Subscriptions over WebSocket (graphql-transport-ws): the seed's liveMetrics, shared polls,
cancellation, auth and the protocol's error closes. gql is the client where it can be; raw
`websockets` where a test must break the protocol on purpose."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from pywrap.live import LiveKey
from tests.server_fixtures import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    SEED_LIVE_METRICS,
    apps,
    fast_pool_retry,
    http_server,
    server,
    start_server,
)

LIVE = "subscription($app: ID!, $interval: Int) { liveMetrics(appId: $app, interval: $interval) { timestamp pageviews uniqueUsers crashCount avgSessionDuration } }"  # noqa: E501
TRACK = "mutation($events: [EventInput!]!) { trackEvents(appId: \"app123\", events: $events) { eventCount } }"
PROTOCOL = "graphql-transport-ws"


def gql_client(server, key: str | None) -> Client:
    transport = WebsocketsTransport(url=server.ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
                                    init_payload={"apiKey": key} if key else {})
    return Client(transport=transport)


def run(coro: Awaitable[Any], timeout: float = 20) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


async def take(server, key: str | None, query: str, variables: dict | None, count: int) -> list[dict]:
    """The first `count` results of a subscription (then the client completes it)."""
    values = []
    async with gql_client(server, key) as session:
        request = GraphQLRequest(query, variable_values=variables)
        async for result in session.subscribe(request):
            values.append(result)
            if len(values) == count:
                break
    return values


def test_seed_live_metrics_verbatim_first_value_at_once(server, apps):
    started = time.monotonic()
    (first,) = run(take(server, apps.main.read_key, SEED_LIVE_METRICS, None, 1))
    assert time.monotonic() - started < 5  # interval 60: the first value did not wait for it
    value = first["liveMetrics"]
    assert set(value) == {"timestamp", "pageviews", "uniqueUsers", "crashCount", "avgSessionDuration"}
    assert datetime.fromisoformat(value["timestamp"]) <= datetime.now(UTC)
    assert [value[k] for k in ("pageviews", "uniqueUsers", "crashCount", "avgSessionDuration")] == [0, 0, 0, None]
    wait_for(lambda: server.services.hub.active_keys == [])  # the last subscriber left: no more polls


def test_later_values_count_new_events(server, apps):
    async def scenario() -> list[dict]:
        values = []
        async with gql_client(server, apps.main.read_key) as session:
            request = GraphQLRequest(LIVE, variable_values={"app": "app123", "interval": 2})
            async for result in session.subscribe(request):
                values.append(result["liveMetrics"])
                if len(values) == 1:
                    # dated half an interval ahead: the next poll's window, (poll - 2 s, poll],
                    # starts a few ms after this first value was measured
                    now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
                    events = [{"type": "page_view", "userId": "u1", "sessionId": "s1", "timestamp": now},
                              {"type": "screen_view", "anonymousId": "a1", "sessionId": "s2", "timestamp": now},
                              {"type": "crash", "userId": "u1", "sessionId": "s1", "timestamp": now}]
                    body = await asyncio.to_thread(server.graphql, TRACK, {"events": events},
                                                   key=apps.main.write_key)
                    assert body["data"]["trackEvents"]["eventCount"] == 3
                if values[-1]["pageviews"] == 2 or len(values) == 4:
                    return values
        return values

    values = run(scenario())
    assert values[0]["pageviews"] == 0
    last = values[-1]
    assert (last["pageviews"], last["uniqueUsers"], last["crashCount"]) == (2, 2, 1)
    assert last["avgSessionDuration"] == 0.0
    stamps = [datetime.fromisoformat(v["timestamp"]) for v in values]
    assert stamps == sorted(stamps) and (stamps[1] - stamps[0]).total_seconds() == pytest.approx(2, abs=0.5)


def test_two_subscribers_share_one_poll(server, apps):
    hub = server.services.hub

    async def scenario() -> tuple[int, int, LiveKey]:
        variables = {"app": "app123", "interval": 1}
        async with gql_client(server, apps.main.read_key) as one, gql_client(server, ADMIN_TOKEN) as two:
            first = one.subscribe(GraphQLRequest(LIVE, variable_values=variables))
            second = two.subscribe(GraphQLRequest(LIVE, variable_values=variables))
            for _ in range(3):
                await first.__anext__()
                await second.__anext__()
            (key,) = hub.active_keys
            subscribers, polls = hub.subscriber_count(key), hub.polls(key)
            await first.aclose()
            await second.aclose()
            return subscribers, polls, key

    subscribers, polls, key = run(scenario())
    assert subscribers == 2 and key.interval == 1
    assert 3 <= polls <= 4  # three values each from one feed's 3 (or 4) polls; two feeds would make 6
    wait_for(lambda: hub.active_keys == [])


class RawWs:
    """A bare graphql-transport-ws client, to test what gql would never send."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def send(self, message: dict) -> None:
        await self.conn.send(json.dumps(message))

    async def recv(self, timeout: float = 5) -> dict:
        return json.loads(await asyncio.wait_for(self.conn.recv(), timeout))

    async def init(self, key: str | None) -> None:
        await self.send({"type": "connection_init", "payload": {"X-API-Key": key} if key else {}})
        assert await self.recv() == {"type": "connection_ack"}

    async def close_code(self, timeout: float = 5) -> int:
        try:
            while True:
                await asyncio.wait_for(self.conn.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else closed.code


def raw(server, speak_protocol: bool = True) -> Any:
    return websockets.connect(server.ws_url, subprotocols=[PROTOCOL] if speak_protocol else None)


def test_complete_stops_delivery_and_the_last_one_out_stops_the_poll(server, apps):
    hub = server.services.hub

    async def scenario() -> None:
        async with raw(server) as conn:
            ws = RawWs(conn)
            await ws.init(apps.main.read_key)
            for op_id in ("a", "b"):
                await ws.send({"type": "subscribe", "id": op_id,
                               "payload": {"query": LIVE, "variables": {"app": "app123", "interval": 1}}})
            firsts = {(await ws.recv())["id"], (await ws.recv())["id"]}
            assert firsts == {"a", "b"}
            (key,) = hub.active_keys
            await ws.send({"type": "complete", "id": "a"})
            for _ in range(2):  # b goes on; a gets nothing more
                message = await ws.recv()
                assert message["type"] == "next" and message["id"] == "b"
            assert hub.subscriber_count(key) == 1
            await ws.send({"type": "complete", "id": "b"})
            await asyncio.to_thread(wait_for, lambda: hub.active_keys == [])
            with pytest.raises(TimeoutError):
                await ws.recv(timeout=1.2)
            await ws.send({"type": "ping"})
            assert await ws.recv() == {"type": "pong"}

    run(scenario())


def test_subscription_auth_and_bad_interval(server, apps):
    def error_of(key: str | None, variables: dict) -> dict:
        with pytest.raises(TransportQueryError) as caught:
            run(take(server, key, LIVE, variables, 1))
        return caught.value.errors[0]

    app = {"app": "app123", "interval": 5}
    for key in (None, "mar_" + "0" * 64, apps.other.read_key):
        refused = error_of(key, app)
        assert refused["extensions"]["code"] == "UNAUTHENTICATED"
        assert refused["message"] == "API key is not valid for this app"
    assert error_of(apps.main.write_key, app)["extensions"]["code"] == "FORBIDDEN"
    bad = error_of(apps.main.read_key, {"app": "app123", "interval": 0})
    assert bad["extensions"] == {"code": "BAD_USER_INPUT", "hint": "Use an interval from 1 to 3600 seconds."}
    (admin,) = run(take(server, ADMIN_TOKEN, LIVE, {"app": apps.main.id, "interval": 5}, 1))
    assert admin["liveMetrics"]["pageviews"] == 0
    # queries and mutations run over the socket too
    (result,) = run(take(server, apps.main.read_key, '{ app(appId: "app123") { identifier } }', None, 1))
    assert result == {"app": {"identifier": "app123"}}
    assert server.services.hub.active_keys == []


@pytest.mark.parametrize("case, expected", [
    ("no subprotocol", 4406),
    ("subscribe before init", 4401),
    ("no init", 4408),
    ("second init", 4429),
    ("duplicate id", 4409),
    ("not json", 4400),
])
def test_protocol_violations_close_the_socket(http_server, case, expected):
    subscribe = {"type": "subscribe", "id": "1",
                 "payload": {"query": 'subscription { liveMetrics(appId: "x") { pageviews } }'}}

    app = f"ws-{case.replace(' ', '-')}"
    created = http_server.graphql(f'mutation {{ createApp(identifier: "{app}") {{ writeKey }} }}', key=ADMIN_TOKEN)
    assert "errors" not in created

    async def scenario() -> int:
        async with raw(http_server, speak_protocol=case != "no subprotocol") as conn:
            ws = RawWs(conn)
            if case == "subscribe before init":
                await ws.send(subscribe)
            elif case == "second init":
                await ws.init(None)
                await ws.send({"type": "connection_init"})
            elif case == "duplicate id":
                await ws.init(ADMIN_TOKEN)
                live = {"type": "subscribe", "id": "2", "payload": {"query": LIVE, "variables": {"app": app}}}
                await ws.send(live)
                assert (await ws.recv())["type"] == "next"
                await ws.send(live)
            elif case == "not json":
                await ws.send({"type": "connection_init"})
                await conn.send("{nope")
            return await ws.close_code()

    assert run(scenario()) == expected


@pytest.fixture
def reauth_server(db, apps, fast_pool_retry):
    running = start_server(db, live_reauth_seconds=0.5)
    yield running
    running.stop()


def test_revoking_a_key_ends_its_running_subscriptions(reauth_server, apps):
    server = reauth_server
    rotate = "mutation { rotateApiKey(appId: \"app123\", kind: READ, graceSeconds: 0) { key } }"

    async def scenario() -> tuple[list[dict], str]:
        values: list[dict] = []
        async with gql_client(server, apps.main.read_key) as session:
            request = GraphQLRequest(LIVE, variable_values={"app": "app123", "interval": 1})
            try:
                async for result in session.subscribe(request):
                    values.append(result["liveMetrics"])
                    if len(values) == 1:
                        body = await asyncio.to_thread(server.graphql, rotate, key=ADMIN_TOKEN)
                        assert body["data"]["rotateApiKey"]["key"]
                    assert len(values) < 5, "the subscription outlived its key"
            except TransportQueryError as exc:
                return values, exc.errors[0]["extensions"]["code"]
        return values, "completed"

    values, outcome = run(scenario())
    assert outcome == "UNAUTHENTICATED" and 1 <= len(values) <= 3
