"""The analytics queries over HTTP: the seed's texts verbatim, each answer equal to its SQL
function's, argument handling and errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.helpers import track
from tests.server_fixtures import (  # noqa: F401 - fixtures
    ADMIN_TOKEN,
    apps,
    error_codes,
    fast_pool_retry,
    start_server,
)

SEED_METRICS = """query { metrics( appId: "app123" dateRange: { from: "2024-01-01", to: "2024-01-31" } ) { metric_type value dimension date }}"""  # noqa: E501 - the seed's text, verbatim

METRICS = """
query($app: ID!, $from: Date!, $to: Date!, $g: Granularity, $d: MetricDimension, $types: [String!]) {
  metrics(appId: $app, dateRange: {from: $from, to: $to}, granularity: $g, dimension: $d, metricTypes: $types) {
    metricType value dimension date
  }
}"""

TODAY = datetime.now(UTC).date()


def _events(now: datetime) -> list[dict]:
    """A small, varied day-by-day history over the last 10 days."""
    out = []
    for day in range(10):
        for i in range(day % 4 + 1):
            when = now - timedelta(days=day, minutes=7 * i)
            out.append({"type": ["page_view", "button_click", "crash"][i % 3], "timestamp": when.isoformat(),
                        "user_id": f"u{(day + i) % 5}", "session_id": f"s{day}-{i % 2}",
                        "device": {"os": ["iOS", "Android"][i % 2], "app_version": "1.2"}})
    return out


@pytest.fixture
def loaded(db, apps):
    with db.connect() as conn:
        result = track(conn, apps.main, _events(datetime.now(UTC) - timedelta(minutes=5)))
        assert result["accepted"] == sum(day % 4 + 1 for day in range(10))
    return apps


@pytest.fixture
def server(db, loaded, fast_pool_retry):
    running = start_server(db)
    yield running
    running.stop()


def _sql_metrics(db, args: list) -> list[tuple]:
    with db.connect() as conn:
        rows = conn.execute("SELECT metric_type, value, dimension, date FROM analytics.fn_metrics(%s, %s, %s, %s, %s, %s)",
                            args).fetchall()
    return sorted((t, float(v), d, w) for t, v, d, w in rows)


def _as_rows(items: list[dict]) -> list[tuple]:
    return sorted((m["metricType"], m["value"], m["dimension"], datetime.fromisoformat(m["date"])) for m in items)


def test_seed_metrics_query_verbatim(server, loaded):
    body = server.graphql(SEED_METRICS, key=loaded.main.read_key)
    assert body == {"data": {"metrics": []}}  # January 2024 is long before these events


@pytest.mark.parametrize(("granularity", "dimension", "types"), [
    ("DAY", "NONE", None), ("HOUR", "OS", None), ("WEEK", "EVENT_TYPE", ["crash_count", "page_view_count"]),
    ("MONTH", "APP_VERSION", ["unique_users"])])
def test_metrics_equal_fn_metrics(server, loaded, db, granularity, dimension, types):
    variables = {"app": "app123", "from": str(TODAY - timedelta(days=12)), "to": str(TODAY), "g": granularity,
                 "d": dimension, "types": types}
    body = server.graphql(METRICS, variables, key=loaded.main.read_key)
    assert "errors" not in body, body
    got = _as_rows(body["data"]["metrics"])
    server.stop()  # the WASM engine serves one connection
    want = _sql_metrics(db, ["app123", TODAY - timedelta(days=12), TODAY, granularity.lower(), dimension.lower(), types])
    assert got == want and got, (got, want)
    if types:
        assert {row[0] for row in got} <= set(types)


def test_metrics_default_granularity_and_snake_case_field(server, loaded):
    query = ('query($from: Date!, $to: Date!) { metrics(appId: "app123", dateRange: {from: $from, to: $to}) '
             '{ metric_type metricType date } }')
    body = server.graphql(query, {"from": str(TODAY - timedelta(days=3)), "to": str(TODAY)}, key=ADMIN_TOKEN)
    metrics = body["data"]["metrics"]
    assert metrics and all(m["metric_type"] == m["metricType"] for m in metrics)
    days = {datetime.fromisoformat(m["date"]) for m in metrics}
    assert all(d.hour == 0 and d.minute == 0 for d in days) and len(days) == 4  # app123 runs on UTC


@pytest.mark.parametrize(("variables", "fragment"), [
    ({"from": "2026-02-01", "to": "2026-01-01"}, "after"),
    ({"from": "2000-01-01", "to": "2026-01-01", "g": "HOUR"}, "too long"),
    ({"from": "2026-13-01", "to": "2026-01-01"}, "Date"),
    ({"from": "2026-01-01", "to": "2026-01-02", "g": "YEAR"}, "Granularity"),
])
def test_bad_metrics_arguments_are_user_errors(server, loaded, variables, fragment):
    body = server.graphql(METRICS, {"app": "app123"} | variables, key=loaded.main.read_key)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert fragment.lower() in (body["errors"][0]["message"] + str(body["errors"][0]["extensions"])).lower(), body
