"""Who may do what, for every operation over HTTP (liveMetrics over WebSocket: test_server_live.py)."""

from __future__ import annotations

import itertools
import re
import time

from tests.server_fixtures import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    SEED_TRACK_EVENTS,
    apps,
    error_codes,
    fast_pool_retry,
    server,
)

OK, UNAUTH, FORBIDDEN = "ok", "UNAUTHENTICATED", "FORBIDDEN"
_names = itertools.count()

ROTATE = "mutation($app: ID!, $kind: ApiKeyKind!, $grace: Int) { rotateApiKey(appId: $app, kind: $kind, graceSeconds: $grace) { keyId kind key previousKeysExpireAt } }"  # noqa: E501
APP = "query($app: ID!) { app(appId: $app) { id identifier name retentionDays createdAt } }"
KEYS = 'query { app(appId: "app123") { apiKeys { id kind prefix active revokedAt } } }'


def _outcome(body: dict) -> str:
    codes = error_codes(body)
    return codes[0] if codes else OK


def test_auth_matrix_for_every_operation(server, apps):
    def admin(query: str, variables: dict | None = None) -> dict:
        body = server.graphql(query, variables, key=ADMIN_TOKEN)
        assert "errors" not in body, body
        return body["data"]

    # Rotating with no grace revokes the original keys at once.
    write_key = admin(ROTATE, {"app": "app123", "kind": "WRITE", "grace": 0})["rotateApiKey"]["key"]
    read_key = admin(ROTATE, {"app": "app123", "kind": "READ", "grace": 0})["rotateApiKey"]["key"]
    revoked_id = next(k["id"] for k in admin(KEYS)["app"]["apiKeys"] if not k["active"])

    credentials = {
        "missing": None,
        "wrong": "maw_" + "0" * 64,
        "revoked write": apps.main.write_key,
        "revoked read": apps.main.read_key,
        "other-app write": apps.other.write_key,
        "other-app read": apps.other.read_key,
        "write": write_key,
        "read": read_key,
        "admin": ADMIN_TOKEN,
    }
    only_admin = dict.fromkeys(credentials, UNAUTH) | {"admin": OK}
    operations: dict[str, tuple[str, dict, dict[str, str]]] = {
        "trackEvents": (SEED_TRACK_EVENTS, {},
                        dict.fromkeys(credentials, UNAUTH) | {"write": OK, "read": FORBIDDEN}),
        "app": (APP, {"app": "app123"},
                dict.fromkeys(credentials, UNAUTH) | {"read": OK, "admin": OK, "write": FORBIDDEN}),
        "apps": ("{ apps { identifier } }", {}, only_admin),
        "createApp": ("mutation($id: String!) { createApp(identifier: $id) { app { identifier } writeKey readKey } }",
                      {}, only_admin),
        "rotateApiKey": (ROTATE, {"app": "other-app", "kind": "READ", "grace": 3600}, only_admin),
        "revokeApiKey": ("mutation($id: ID!) { revokeApiKey(keyId: $id) { keyId revokedAt } }", {"id": revoked_id},
                         only_admin),
    }
    # Analytics: the app's read key or the admin token.
    readers = dict.fromkeys(credentials, UNAUTH) | {"read": OK, "admin": OK, "write": FORBIDDEN}
    operations |= {
        "metrics": ('query { metrics(appId: "app123", dateRange: {from: "2026-01-01", to: "2026-01-31"}) '
                    "{ metricType } }", {}, readers),
        "funnel": ('query { funnel(appId: "app123", steps: ["a", "b"]) { step users } }', {}, readers),
        "cohorts": ('query { cohorts(appId: "app123") { id } }', {}, readers),
        "createCohort": ('mutation($name: String!) { createCohort(appId: "app123", name: $name, '
                         'filter: {event: "a", min_count: 1, within_days: 7}) { id } }', {}, readers),
        # no such cohort: past authorization, the function's own error
        "cohortRetention": ('query { cohortRetention(appId: "app123", cohortId: "nope") { period } }', {},
                            readers | {"read": "BAD_USER_INPUT", "admin": "BAD_USER_INPUT"}),
        "deleteCohort": ('mutation { deleteCohort(appId: "app123", cohortId: "nope") }', {},
                         readers | {"read": "BAD_USER_INPUT", "admin": "BAD_USER_INPUT"}),
        "retention": ('query { retention(appId: "app123", dateRange: {from: "2026-01-01", to: "2026-01-31"}) '
                      "{ period } }", {}, readers),
    }
    mismatches = []
    unauthenticated_messages = set()
    for (op, (query, variables, expected)), (who, key) in itertools.product(operations.items(), credentials.items()):
        if op == "createApp":
            variables = {"id": f"new-app-{next(_names)}"}
        if op == "createCohort":
            variables = {"name": f"cohort {next(_names)}"}
        body = server.graphql(query, variables, key=key)
        got = _outcome(body)
        if got != expected[who]:
            mismatches.append(f"{op} with {who} key: expected {expected[who]}, got {got}: {body}")
        elif got == UNAUTH:
            assert body["data"] in ({op: None}, None)  # non-null fields: their null reaches data
            key_checked = op not in ("apps", "createApp", "rotateApiKey", "revokeApiKey")
            unauthenticated_messages.add((key_checked, body["errors"][0]["message"]))
        elif got == OK:
            assert body["data"][op] is not None
    assert not mismatches, "\n".join(mismatches)
    # Nothing in the refusal says which part was wrong: one message for every key-checked case.
    key_checked = {message for checked, message in unauthenticated_messages if checked}
    assert key_checked == {"API key is not valid for this app"}
    for _, message in unauthenticated_messages:
        assert not re.search(r"revoked|unknown|exist|other app|expired", message, re.I), message


def test_bearer_header_and_uuid_app_id(server, apps):
    by_bearer = server.graphql(SEED_TRACK_EVENTS, headers={"Authorization": f"Bearer {apps.main.write_key}"})
    assert by_bearer["data"]["trackEvents"]["eventCount"] == 3
    assert "errors" not in server.graphql("{ apps { identifier } }", headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    by_uuid = server.graphql(APP, {"app": apps.main.id}, key=apps.main.read_key)
    assert by_uuid["data"]["app"]["identifier"] == "app123"
    assert by_uuid["data"]["app"]["id"] == apps.main.id


def test_read_key_sees_its_app_but_not_its_keys(server, apps):
    body = server.graphql(KEYS, key=apps.main.read_key)
    assert error_codes(body) == [FORBIDDEN]


def test_app_management_by_admin(server, apps):
    created = server.graphql(
        'mutation { createApp(identifier: "shop", name: "Shop", timezone: "Europe/Berlin", retentionDays: 30) '
        "{ app { identifier name timezone retentionDays apiKeys { kind active } } writeKey readKey } }",
        key=ADMIN_TOKEN)["data"]["createApp"]
    assert created["app"] == {"identifier": "shop", "name": "Shop", "timezone": "Europe/Berlin", "retentionDays": 30,
                              "apiKeys": [{"kind": "WRITE", "active": True}, {"kind": "READ", "active": True}]}
    assert created["writeKey"].startswith("maw_") and created["readKey"].startswith("mar_")
    duplicate = server.graphql('mutation { createApp(identifier: "shop") { writeKey } }', key=ADMIN_TOKEN)
    assert error_codes(duplicate) == ["BAD_USER_INPUT"]
    assert duplicate["errors"][0]["extensions"]["hint"] == "Choose another identifier."
    listed = server.graphql("{ apps(limit: 2) { identifier } }", key=ADMIN_TOKEN)["data"]["apps"]
    assert [a["identifier"] for a in listed] == ["app123", "other-app"]
    assert error_codes(server.graphql("{ apps(limit: 0) { identifier } }", key=ADMIN_TOKEN)) == ["BAD_USER_INPUT"]
    assert server.graphql(APP, {"app": "nope"}, key=ADMIN_TOKEN)["data"]["app"] is None
    bad_id = server.graphql('mutation { revokeApiKey(keyId: "not-a-uuid") { revokedAt } }', key=ADMIN_TOKEN)
    assert error_codes(bad_id) == ["BAD_USER_INPUT"]


def test_rotation_grace_keeps_the_old_key_working_until_it_expires(server, apps):
    rotated = server.graphql(ROTATE, {"app": "app123", "kind": "WRITE", "grace": 1}, key=ADMIN_TOKEN)
    rotated = rotated["data"]["rotateApiKey"]
    assert rotated["kind"] == "WRITE" and rotated["previousKeysExpireAt"]
    for key in (apps.main.write_key, rotated["key"]):
        assert server.graphql(SEED_TRACK_EVENTS, key=key)["data"]["trackEvents"]["success"] is True
    time.sleep(1.2)
    assert error_codes(server.graphql(SEED_TRACK_EVENTS, key=apps.main.write_key)) == [UNAUTH]
    assert server.graphql(SEED_TRACK_EVENTS, key=rotated["key"])["data"]["trackEvents"]["eventCount"] == 3
    too_long = server.graphql(ROTATE, {"app": "app123", "kind": "READ", "grace": 10**8}, key=ADMIN_TOKEN)
    assert error_codes(too_long) == ["BAD_USER_INPUT"] and "30 days" in too_long["errors"][0]["extensions"]["hint"]
