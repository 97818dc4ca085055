"""The GraphQL server over HTTP: the seed's trackEvents, both coercion paths, errors and limits."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from graphql import get_introspection_query

from tests.conftest import Database
from tests.helpers import events_of
from tests.server_fixtures import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    SEED_TRACK_EVENTS,
    apps,
    error_codes,
    fast_pool_retry,
    http_server,
    server,
    start_server,
)

TRACK = """
mutation Track($appId: ID!, $events: [EventInput!]!, $sentAt: DateTime, $context: EventContextInput) {
  trackEvents(appId: $appId, events: $events, sentAt: $sentAt, context: $context) {
    success eventCount duplicateCount clampedCount rejected { index code message }
  }
}
"""

# Recent times (older ones fall outside the apps' 90-day retention), as ISO text and epoch ms.
_WHEN = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
WHEN_ISO = _WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")
WHEN_MS = int(_WHEN.timestamp() * 1000)

EVENTS = [
    {"type": "page_view", "eventId": "e-1", "path": "/home", "timestamp": WHEN_ISO,
     "metadata": {"referrer": "/search"}},
    {"type": "button_click", "eventId": "e-2", "label": "Sign Up", "userId": "u-9",
     "device": {"os": "Android", "screenWidth": 1080}},
    {"type": "screen_time", "eventId": "e-3", "duration": 45000, "timestamp": WHEN_MS},
]
# The same events written inline, for graphql-core's literal path.
EVENTS_INLINE = """[
  {type: "page_view", eventId: "e-1", path: "/home", timestamp: "%s", metadata: {referrer: "/search"}},
  {type: "button_click", eventId: "e-2", label: "Sign Up", userId: "u-9", device: {os: "Android", screenWidth: 1080}},
  {type: "screen_time", eventId: "e-3", duration: 45000, timestamp: %d}
]""" % (WHEN_ISO, WHEN_MS)

SQL_WORDS = ("SELECT", "analytics.", "fn_", "psycopg", "Traceback", "CONTEXT", "PL/pgSQL")


def _stored(db, app) -> list[tuple]:
    with db.connect() as conn:
        return [(e["event_type"], e["client_event_id"], e["path"], e["label"], e["duration_ms"], e["user_id"],
                 e["session_id"], e["device"], e["metadata"],
                 # the one event without a timestamp is dated at arrival, which differs
                 e["timestamp"] if e["event_type"] != "button_click" else None)
                for e in events_of(conn, app)]


def test_seed_track_events_verbatim(server, apps, db):
    body = server.graphql(SEED_TRACK_EVENTS, key=apps.main.write_key)
    assert body == {"data": {"trackEvents": {"success": True, "eventCount": 3}}}
    server.stop()
    with db.connect() as conn:
        stored = {e["event_type"]: e for e in events_of(conn, apps.main)}
    assert stored["page_view"]["path"] == "/home" and stored["page_view"]["metadata"] == {"referrer": "/search"}
    assert stored["button_click"]["label"] == "Sign Up"
    assert stored["button_click"]["metadata"] == {"screen": "onboarding"}
    assert stored["screen_time"]["duration_ms"] == 45000


def test_variable_and_inline_paths_store_the_same_events(server, apps, db):
    headers = {"X-User-Id": "header-user", "X-Session-Id": "s-1", "X-Device-Os": "iOS", "X-Device-Screen-Width": "390"}
    fast = server.graphql(TRACK, {"appId": "app123", "events": EVENTS}, key=apps.main.write_key, headers=headers)
    assert fast["data"]["trackEvents"] == {"success": True, "eventCount": 3, "duplicateCount": 0,
                                           "clampedCount": 0, "rejected": []}
    assert server.services.executor.cache.misses >= 1
    inline = "mutation { trackEvents(appId: \"other-app\", events: %s) { eventCount } }" % EVENTS_INLINE
    slow = server.graphql(inline, key=apps.other.write_key, headers=headers)
    assert slow == {"data": {"trackEvents": {"eventCount": 3}}}
    # A retry of the first batch, through the cached document: all duplicates.
    hits = server.services.executor.cache.hits
    retry = server.graphql(TRACK, {"appId": apps.main.id, "events": EVENTS}, key=apps.main.write_key)
    assert retry["data"]["trackEvents"]["duplicateCount"] == 3
    assert server.services.executor.cache.hits == hits + 1
    server.stop()
    main, other = _stored(db, apps.main), _stored(db, apps.other)
    assert main == other
    by_type = {row[0]: row for row in main}
    # headers fill the gaps; per-event values win
    assert by_type["page_view"][5:8] == ("header-user", "s-1", {"os": "iOS", "screen_width": 390})
    assert by_type["button_click"][5] == "u-9"
    assert by_type["button_click"][7] == {"os": "Android", "screen_width": 1080}


def test_context_argument_wins_over_headers(server, apps, db):
    body = server.graphql(TRACK, {"appId": "app123", "events": [{"type": "app_open"}],
                                  "context": {"userId": "ctx-user", "device": {"osVersion": "17"}}},
                          key=apps.main.write_key, headers={"X-User-Id": "header-user", "X-Device-Os": "iOS"})
    assert body["data"]["trackEvents"]["eventCount"] == 1
    server.stop()
    with db.connect() as conn:
        (event,) = events_of(conn, apps.main)
    assert event["user_id"] == "ctx-user" and event["device"] == {"os": "iOS", "os_version": "17"}


@pytest.mark.parametrize("bad, field", [
    ([{"type": "a", "colour": "red"}], "colour"),
    ([{"type": 5}], "type"),
    ([{"path": "/x"}], "type"),
    ([{"type": "a", "device": {"os": "iOS", "ram": 4}}], "ram"),
    ([{"type": "a", "duration": -1}], "duration"),
    ([None], "events[0]"),
])
def test_events_variable_that_does_not_fit_event_input(http_server, bad, field):
    # refused before any database work, so one engine is enough
    body = http_server.graphql(TRACK, {"appId": "app123", "events": bad}, key="maw_x")
    assert "data" not in body and error_codes(body) == ["BAD_USER_INPUT"]
    assert field in body["errors"][0]["message"]


def test_per_event_problems_are_reported_not_fatal(server, apps):
    events = [{"type": "ok"}, {"type": "late", "timestamp": "yesterday"}, {"type": " padded"}]
    body = server.graphql(TRACK, {"appId": "app123", "events": events}, key=apps.main.write_key)
    result = body["data"]["trackEvents"]
    assert result["eventCount"] == 1
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(1, "invalid_timestamp"), (2, "invalid_field")]


def test_oversized_batch_is_payload_too_large_without_sql_text(server, apps):
    body = server.graphql(TRACK, {"appId": "app123", "events": [{"type": "x"}] * 2001}, key=apps.main.write_key)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "2000" in error["message"] and error["extensions"]["hint"]
    assert body["data"] == {"trackEvents": None}
    assert not any(word in json.dumps(body) for word in SQL_WORDS)


def test_internal_error_is_generic(http_server, monkeypatch):
    server = http_server
    from pywrap.db import Query
    from pywrap.schema import ingest

    monkeypatch.setattr(ingest, "TRACK_EVENTS", Query("broken", "SELECT analytics.fn_no_such_function(%(app)s)"))
    response = server.post(TRACK, {"appId": "app123", "events": [{"type": "x"}]}, key="maw_x",
                           headers={"X-Request-Id": "req-42"})
    body = response.json()
    (error,) = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "req-42"}
    assert response.headers["x-request-id"] == "req-42"
    assert not any(word in json.dumps(body) for word in SQL_WORDS)


@pytest.mark.parametrize("content, detail", [
    (b"{not json", "not valid JSON"),
    (b'["query"]', "batched"),
    (b'{"variables": {}}', '"query"'),
    (b'{"query": "{ __typename }", "variables": [1]}', '"variables"'),
    (b"\xff\xfe", "not valid JSON"),
])
def test_malformed_request_is_400(http_server, content, detail):
    server = http_server
    response = server.client.post("/graphql", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert detail in response.json()["errors"][0]["message"]


def test_body_over_10_mb_is_413(http_server):
    server = http_server
    limit = server.settings.max_body_bytes
    assert limit == 10 * 1024 * 1024
    body = b'{"query": "' + b" " * limit + b'"}'
    declared = server.client.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(11):
            yield b" " * (1024 * 1024)

    streamed = server.client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert server.client.get("/healthz").status_code == 200


def test_graphql_errors_parse_validation_depth(http_server):
    server = http_server
    assert error_codes(server.graphql("{ app(appId: ")) == ["GRAPHQL_PARSE_FAILED"]
    unknown = server.graphql('{ app(appId: "app123") { nope } }')
    assert error_codes(unknown) == ["GRAPHQL_VALIDATION_FAILED"] and "nope" in unknown["errors"][0]["message"]
    # the standard introspection query fits the limits; a deeper one does not
    assert server.graphql(get_introspection_query())["data"]["__schema"]["queryType"]["name"] == "Query"
    deep = "{ __schema { types { " + "fields { type { " * 8 + "name" + " } }" * 8 + " } } }"
    body = server.graphql(deep)
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"} and "data" not in body
    assert "Operation exceeds the maximum depth of 15." in [e["message"] for e in body["errors"]]
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(2001)) + " }"
    assert "fields" in server.graphql(aliases)["errors"][0]["message"]


def test_subscription_over_http_is_refused(http_server):
    server = http_server
    body = server.graphql('subscription { liveMetrics(appId: "app123") { pageviews } }')
    assert error_codes(body) == ["BAD_USER_INPUT"] and "WebSocket" in body["errors"][0]["message"]


def test_get_serves_graphiql_and_queries(http_server):
    server = http_server
    page = server.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "GraphiQL" in page.text and "graphql-ws" in page.text
    query = server.client.get("/graphql", params={"query": "{ __typename }"})
    assert query.json() == {"data": {"__typename": "Query"}}
    mutation = server.client.get("/graphql", params={"query": SEED_TRACK_EVENTS},
                                 headers={"X-API-Key": "maw_x"})
    assert error_codes(mutation.json()) == ["BAD_USER_INPUT"]
    assert server.client.get("/graphql").status_code == 400
    assert server.client.put("/graphql").status_code == 405


def test_healthz_and_readyz(server, db):
    assert server.client.get("/healthz").json()["status"] == "ok"
    assert server.client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.pg_only
def test_readyz_reports_an_unmigrated_database(pg_server, engine_name):
    with pg_server.connect("postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS ma_empty WITH (FORCE)")
        conn.execute("CREATE DATABASE ma_empty")
    empty = Database("postgresql", pg_server, "ma_empty")
    running = start_server(empty, wait_ready=False)
    try:
        response = running.client.get("/readyz")
        assert response.status_code == 503 and "not migrated" in response.json()["reason"]
        assert running.client.get("/healthz").status_code == 200
    finally:
        running.stop()


def test_graceful_shutdown_finishes_the_batch_in_flight(server, apps, db):
    events = [{"type": "page_view", "eventId": f"g-{i}", "path": f"/p/{i}"} for i in range(2000)]
    result: dict = {}

    def send() -> None:
        result["response"] = server.post(TRACK, {"appId": "app123", "events": events}, key=apps.main.write_key)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 10
    while server.services.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    server.server.should_exit = True  # what SIGTERM does
    sender.join(timeout=30)
    server.stop()
    response = result["response"]
    assert response.status_code == 200
    assert response.json()["data"]["trackEvents"]["eventCount"] == 2000
    with db.connect() as conn:
        assert len(events_of(conn, apps.main)) == 2000


def test_unpaired_surrogate_rejects_one_event_over_http(server, apps):
    # Raw JSON text: "\ud800" must reach fn_track_events as written (orjson refuses it).
    body = ('{"query": %s, "variables": {"appId": "app123", "events": ['
            '{"type": "page_view", "label": "ok"}, {"type": "page_view", "label": "bad \\ud800"}]}}'
            % json.dumps(TRACK))
    response = server.client.post("/graphql", content=body, headers={"X-API-Key": apps.main.write_key,
                                                                      "Content-Type": "application/json"})
    result = response.json()["data"]["trackEvents"]
    assert result["eventCount"] == 1
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(1, "unstorable_text")]


def test_nan_is_not_json(server, apps):
    body = '{"query": %s, "variables": {"appId": "app123", "events": [{"type": "x", "duration": NaN}]}}' % (
        json.dumps(TRACK))
    response = server.client.post("/graphql", content=body, headers={"X-API-Key": apps.main.write_key,
                                                                      "Content-Type": "application/json"})
    assert response.status_code == 400 and error_codes(response.json()) == ["BAD_USER_INPUT"]
