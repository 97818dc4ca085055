"""deleteUser and the JSON-lines export over a real uvicorn server, on both engines: who may call
them, and what the export streams (exactly the person's events, valid JSON lines)."""

from __future__ import annotations

import json
from datetime import datetime
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import track
from tests.server_fixtures import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    apps,
    error_codes,
    fast_pool_retry,
    server,
)
from tests.test_rollups import mismatches, refresh, reset_rollups
from tests.test_user_data import population, user_key

DELETE = """mutation($app: ID!, $user: String!, $anon: [String!]) {
  deleteUser(appId: $app, userId: $user, anonymousIds: $anon) {
    deletionId deletedEvents deletedUserDays deletedCohortMemberships oldestEventAt } }"""
# More than one cursor batch (1000 rows) for u1; the bulk events have no timestamp (now).
EVENTS = population(11, 150) + [
    {"type": "page_view", "user_id": "u1", "event_id": f"bulk-{i}", "path": f"/p/{i}"} for i in range(1100)
]


def export_path(app: str, user: str) -> str:
    return f"/apps/{app}/users/{user}/events.jsonl"


@pytest.fixture
def events(db, apps, engine_name):  # noqa: F811
    """Events in both apps, written before the server starts (one connection on the WASM engine)."""
    with db.connect() as conn:
        reset_rollups(conn, engine_name)
        for start in range(0, len(EVENTS), 1000):
            batch = EVENTS[start:start + 1000]
            assert track(conn, apps.main, batch)["accepted"] == len(batch)
        assert track(conn, apps.other, population(12, 30))["accepted"] == 30
        refresh(conn)
    return EVENTS


def test_who_may_delete_and_export(events, server, apps):  # noqa: F811
    credentials = {
        "missing": None,
        "wrong": "maw_" + "0" * 64,
        "write": apps.main.write_key,
        "read": apps.main.read_key,
        "other-app read": apps.other.read_key,
        "admin": ADMIN_TOKEN,
    }
    export_expected = {"missing": 401, "wrong": 401, "write": 403, "read": 200, "other-app read": 401, "admin": 200}
    for who, key in credentials.items():
        response = server.client.get(export_path("app123", "u3"), headers={"X-API-Key": key} if key else {})
        assert response.status_code == export_expected[who], (who, response.text)
        if response.status_code != 200:
            body = response.json()
            assert error_codes(body) == [{401: "UNAUTHENTICATED", 403: "FORBIDDEN"}[response.status_code]]
        else:
            assert response.headers["content-type"].startswith("application/x-ndjson")
            assert response.headers["cache-control"] == "no-store"
    # Bearer works as for GraphQL.
    assert server.client.get(export_path("app123", "u3"),
                             headers={"Authorization": f"Bearer {apps.main.read_key}"}).status_code == 200

    for who, key in credentials.items():
        if who == "admin":
            continue
        body = server.graphql(DELETE, {"app": "app123", "user": "u3"}, key=key)
        assert error_codes(body) == ["UNAUTHENTICATED"], (who, body)
        assert body["data"] == {"deleteUser": None}
    # Nobody but the admin deleted anything.
    lines = server.client.get(export_path("app123", "u3"), headers={"X-API-Key": ADMIN_TOKEN}).text.splitlines()
    assert len(lines) == sum(1 for e in events if user_key(e) == "u3") > 0


def test_bad_requests_get_statuses_not_partial_streams(events, server, apps):  # noqa: F811
    admin = {"X-API-Key": ADMIN_TOKEN}
    unknown = server.client.get(export_path("no-such-app", "u1"), headers=admin)
    assert (unknown.status_code, error_codes(unknown.json())) == (400, ["BAD_USER_INPUT"])
    empty_anon = server.client.get(export_path("app123", "u1") + "?anonymousId=", headers=admin)
    assert empty_anon.status_code == 400 and "anonymous" in empty_anon.json()["errors"][0]["message"]
    assert empty_anon.json()["errors"][0]["extensions"]["hint"]
    body = server.graphql(DELETE, {"app": "app123", "user": ""}, key=ADMIN_TOKEN)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    nobody = server.client.get(export_path("app123", "nobody"), headers=admin)
    assert (nobody.status_code, nobody.text) == (200, "")


def test_export_streams_exactly_the_persons_events(events, server, apps):  # noqa: F811
    mine = {e["event_id"]: e for e in events if user_key(e) in ("u1", "dev1")}
    lines: list[str] = []
    with server.client.stream("GET", export_path(apps.main.id, "u1"), params={"anonymousId": ["dev1"]},
                              headers={"X-API-Key": apps.main.read_key}) as response:
        assert response.status_code == 200
        assert "transfer-encoding" in response.headers  # streamed (chunked), not built whole
        assert "app123-user-events.jsonl" in response.headers["content-disposition"]
        lines = list(response.iter_lines())
    parsed = [json.loads(line) for line in lines]
    assert len(parsed) == len(mine) > 1000
    assert sorted(p["event_id"] for p in parsed) == sorted(mine)
    assert all(user_key(p) in ("u1", "dev1") for p in parsed)
    times = [datetime.fromisoformat(p["timestamp"]) for p in parsed]
    assert times == sorted(times)
    sample = next(p for p in parsed if p["event_id"] == "bulk-7")
    assert (sample["type"], sample["path"], sample["user_id"]) == ("page_view", "/p/7", "u1")

    # A client that stops reading early: the server gives its connection back (the next
    # request on the single-connection WASM engine would otherwise wait for it).
    with server.client.stream("GET", export_path("app123", "u1"), headers={"X-API-Key": ADMIN_TOKEN}) as response:
        next(response.iter_lines())
    again = server.client.get(export_path("app123", "dev2"), headers={"X-API-Key": ADMIN_TOKEN})
    assert again.status_code == 200 and len(again.text.splitlines()) == sum(1 for e in events if user_key(e) == "dev2")


def test_delete_user_over_graphql_then_rollups_match(events, server, apps, db):  # noqa: F811
    body = server.graphql(DELETE, {"app": "app123", "user": "u1", "anon": ["dev1"]}, key=ADMIN_TOKEN)
    assert "errors" not in body, body
    result = body["data"]["deleteUser"]
    assert result["deletedEvents"] == sum(1 for e in events if user_key(e) in ("u1", "dev1"))
    assert result["deletedUserDays"] > 0 and result["deletedCohortMemberships"] == 0
    assert result["deletionId"] and result["oldestEventAt"]
    gone = server.client.get(export_path("app123", "u1") + "?anonymousId=dev1", headers={"X-API-Key": ADMIN_TOKEN})
    assert (gone.status_code, gone.text) == (200, "")
    # The other app's u1 is another person.
    assert server.client.get(export_path("other-app", "u1"), headers={"X-API-Key": ADMIN_TOKEN}).text
    server.stop()
    with db.connect() as conn:
        assert mismatches(conn) == {}
        requested_by = conn.execute("SELECT requested_by FROM analytics_internal.tb_user_deletion").fetchall()
        assert len(requested_by) == 1 and requested_by[0][0].startswith("graphql admin, request ")


@pytest.mark.pg_only
def test_cli_export_and_delete(db, apps, engine_name, tmp_path: Path):  # noqa: F811
    with db.connect() as conn:
        track(conn, apps.main, EVENTS[:200])
    cli = [str(Path(sys.executable).with_name("mobile-analytics"))]
    out = tmp_path / "u2.jsonl"
    subprocess.run([*cli, "export-user", "--database-url", db.conninfo, "--app", "app123", "--user", "u2",
                    "--output", str(out)], check=True, capture_output=True, text=True)
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(e["event_id"] for e in exported) == sorted(
        e["event_id"] for e in EVENTS[:200] if user_key(e) == "u2")
    assert not Path(f"{out}.partial").exists()

    refused = subprocess.run([*cli, "delete-user", "--database-url", db.conninfo, "--app", "app123", "--user", "u2"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = subprocess.run([*cli, "delete-user", "--database-url", db.conninfo, "--app", "app123", "--user", "u2",
                           "--requested-by", "ticket 42", "--yes", "--json"],
                          check=True, capture_output=True, text=True)
    assert json.loads(done.stdout)["deleted_events"] == len(exported)
    failed = subprocess.run([*cli, "export-user", "--database-url", db.conninfo, "--app", "nope", "--user", "u2",
                             "--output", str(tmp_path / "x.jsonl")], capture_output=True, text=True)
    assert failed.returncode == 1 and "does not exist" in failed.stderr
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.jsonl.partial").exists()
    with db.connect() as conn:
        logged = conn.execute("SELECT requested_by FROM analytics_internal.tb_user_deletion").fetchall()
        assert logged == [("ticket 42",)]

