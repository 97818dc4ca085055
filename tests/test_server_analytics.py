"""The analytics queries over HTTP: the seed's texts verbatim, each answer equal to its SQL
function's, argument handling and errors."""

from __future__ import annotations

import json
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


SEED_COHORTS = """query { cohorts(appId: "app123", limit: 20) { id name userCount retentionRate }}"""
SEED_FUNNEL = """query { funnel( appId: "app123" steps: ["onboarding", "payment_screen", "purchase_complete"] ) { step users dropoffPercent }}"""  # noqa: E501 - the seed's text, verbatim


def _funnel_events(now: datetime) -> list[dict]:
    """Users who stop after 1, 2 or 3 steps of the seed's funnel, on two platforms."""
    out = []
    for i in range(9):
        start = now - timedelta(days=i % 5 + 1, hours=i)
        steps = ["onboarding", "payment_screen", "purchase_complete"][: i % 3 + 1]
        for n, step in enumerate(steps):
            out.append({"type": step, "user_id": f"f{i}", "timestamp": (start + timedelta(minutes=3 * n)).isoformat(),
                        "device": {"os": ["iOS", "Android"][i % 2]}})
    return out


@pytest.fixture
def funnel_server(db, apps, fast_pool_retry):
    with db.connect() as conn:
        assert track(conn, apps.main, _funnel_events(datetime.now(UTC)))["accepted"] == 18
    running = start_server(db)
    yield running
    running.stop()


def test_seed_funnel_query_verbatim(funnel_server, apps, db):
    body = funnel_server.graphql(SEED_FUNNEL, key=apps.main.read_key)
    assert "errors" not in body, body
    got = [(s["step"], s["users"], s["dropoffPercent"]) for s in body["data"]["funnel"]]
    funnel_server.stop()
    with db.connect() as conn:
        want = conn.execute("SELECT event_type, users, dropoff_percent FROM analytics.fn_funnel(%s, %s) ORDER BY step",
                            ["app123", ["onboarding", "payment_screen", "purchase_complete"]]).fetchall()
    assert got == [(t, u, float(d)) for t, u, d in want]
    assert [u for _, u, _ in got] == [9, 6, 3]


def test_funnel_arguments_reach_fn_funnel(funnel_server, apps, db):
    query = """query($steps: [String!]!, $from: Date!, $to: Date!) {
      funnel(appId: "app123", steps: $steps, dateRange: {from: $from, to: $to}, conversionWindow: 120,
             breakdown: OS) { breakdown position step users conversionPercent medianSecondsFromPrevious } }"""
    steps = ["onboarding", "payment_screen"]
    variables = {"steps": steps, "from": str(TODAY - timedelta(days=7)), "to": str(TODAY)}
    body = funnel_server.graphql(query, variables, key=ADMIN_TOKEN)
    assert "errors" not in body, body
    got = [(s["breakdown"], s["position"], s["users"], s["conversionPercent"], s["medianSecondsFromPrevious"])
           for s in body["data"]["funnel"]]
    bad = funnel_server.graphql(query, variables | {"steps": []}, key=ADMIN_TOKEN)
    assert error_codes(bad) == ["BAD_USER_INPUT"] and bad["errors"][0]["extensions"].get("hint"), bad
    funnel_server.stop()
    with db.connect() as conn:
        want = conn.execute(
            "SELECT breakdown, step, users, conversion_percent, median_seconds_from_previous"
            " FROM analytics.fn_funnel(%s, %s, %s, %s, interval '120 seconds', 'os')",
            ["app123", steps, TODAY - timedelta(days=7), TODAY]).fetchall()
    assert sorted(got) == sorted((b, s, u, float(c), m) for b, s, u, c, m in want)
    assert {b for b, *_ in got} == {"iOS", "Android"}


COHORT_FIELDS = "id identifier name filter userCount retentionRate createdAt refreshedAt"


def test_cohorts_lifecycle_and_retention(server, loaded, db):
    key = loaded.main.read_key
    assert server.graphql(SEED_COHORTS, key=key) == {"data": {"cohorts": []}}
    create = f"""mutation($filter: JSON!) {{ createCohort(appId: "app123", name: "Crashed", filter: $filter,
                 identifier: "crashed") {{ {COHORT_FIELDS} }} }}"""
    cohort_filter = {"event": "crash", "min_count": 1, "within_days": 30}
    created = server.graphql(create, {"filter": cohort_filter}, key=key)
    assert "errors" not in created, created
    cohort = created["data"]["createCohort"]
    assert cohort["identifier"] == "crashed" and cohort["filter"] == cohort_filter and cohort["userCount"] > 0

    again = server.graphql(create, {"filter": cohort_filter}, key=key)
    assert error_codes(again) == ["BAD_USER_INPUT"]  # the identifier is taken
    invalid = server.graphql(create.replace('"crashed"', '"other"'), {"filter": {"event": "crash", "min_count": -1}},
                             key=key)
    assert error_codes(invalid) == ["BAD_USER_INPUT"] and "min_count" in str(invalid["errors"][0]), invalid

    not_object = server.graphql(create.replace('"crashed"', '"other"'), {"filter": ["crash"]}, key=key)
    assert error_codes(not_object) == ["BAD_USER_INPUT"] and not_object["errors"][0]["extensions"]["hint"]

    listed = server.graphql(SEED_COHORTS, key=key)["data"]["cohorts"]
    assert [c["id"] for c in listed] == [cohort["id"]] and listed[0]["userCount"] == cohort["userCount"]

    retention = server.graphql("""query { cohortRetention(appId: "app123", cohortId: "crashed", interval: DAY,
        periods: 4) { period periodStart cohortSize returningUsers retentionRate } }""", key=key)
    assert "errors" not in retention, retention
    rows = retention["data"]["cohortRetention"]
    refreshed = server.graphql('mutation { refreshCohort(appId: "app123", cohortId: "crashed") { userCount } }',
                               key=key)
    assert refreshed["data"]["refreshCohort"]["userCount"] == cohort["userCount"]
    deleted = server.graphql(f'mutation {{ deleteCohort(appId: "app123", cohortId: "{cohort["id"]}") }}', key=key)
    assert deleted == {"data": {"deleteCohort": True}}
    gone = server.graphql('mutation { deleteCohort(appId: "app123", cohortId: "crashed") }', key=key)
    assert error_codes(gone) == ["BAD_USER_INPUT"]
    server.stop()
    with db.connect() as conn:
        conn.execute("SELECT analytics.fn_create_cohort('app123', 'Crashed', %s::jsonb, 'crashed')",
                     [json.dumps(cohort_filter)])
        want = conn.execute("SELECT period, period_start, cohort_size, returning_users, retention_rate"
                            " FROM analytics.fn_cohort_retention('app123', 'crashed', 'day', 4)").fetchall()
    assert [(r["period"], date.fromisoformat(r["periodStart"]), r["cohortSize"], r["returningUsers"],
             r["retentionRate"]) for r in rows] == [
        (p, s, c, u, None if rate is None else float(rate)) for p, s, c, u, rate in want]


def test_retention_matrix_equals_fn_retention(server, loaded, db):
    query = """query($from: Date!, $to: Date!, $mode: RetentionMode) {
      retention(appId: "app123", dateRange: {from: $from, to: $to}, interval: DAY, periods: 3, mode: $mode)
      { cohortStart cohortSize period users rate } }"""
    start, end = TODAY - timedelta(days=9), TODAY
    got = {}
    for mode in ("FIRST_TIME", "RECURRING"):
        body = server.graphql(query, {"from": str(start), "to": str(end), "mode": mode}, key=loaded.main.read_key)
        assert "errors" not in body, body
        got[mode] = sorted((date.fromisoformat(c["cohortStart"]), c["cohortSize"], c["period"], c["users"], c["rate"])
                           for c in body["data"]["retention"])
    server.stop()
    with db.connect() as conn:
        for mode in ("first_time", "recurring"):
            want = conn.execute("SELECT cohort_start, cohort_size, period, users, rate"
                                " FROM analytics.fn_retention('app123', %s, %s, 'day', 3, %s)",
                                [start, end, mode]).fetchall()
            assert got[mode.upper()] == sorted((c, s, p, u, None if r is None else float(r)) for c, s, p, u, r in want)
            assert got[mode.upper()]
