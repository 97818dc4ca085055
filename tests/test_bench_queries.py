"""Smoke test of bench/generate.py and bench/queries.py at a tiny size, so that the benchmark
cannot rot unnoticed. It checks the shape of the generated data against raw SQL and that every
SQL function the bench finds gives the raw query's answer; it never looks at the timings."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bench import generate as gen
from bench import queries as bq

pytestmark = pytest.mark.pg_only

EVENTS = 20_000
DAYS = 60
SEED = 7
# A fixed end makes the data set the same on every run (the bench copies its last hour to now
# for the live metrics).
END = datetime(2026, 3, 2, 18, 30, tzinfo=timezone.utc)


def test_generated_data_then_bench(db, engine_name, capsys):
    ds = gen.generate(db.conninfo, events=EVENTS, days=DAYS, seed=SEED, end=END, jobs=2, quiet=True)
    assert (ds.events, ds.days, ds.gen_end) == (EVENTS, DAYS, END)

    with db.connect() as conn:
        total, first, last = conn.execute(
            'SELECT count(*), min("timestamp"), max("timestamp") FROM analytics.tb_event').fetchone()
        assert total == EVENTS
        assert ds.gen_start <= first and last <= END

        per_app = dict(conn.execute(
            "SELECT a.identifier, count(*) FROM analytics.tb_event e JOIN analytics.tb_app a ON a.pk_app = e.fk_app"
            " GROUP BY 1").fetchall())
        assert set(per_app) == {gen.APP_PREFIX + a[0] for a in gen.APPS}
        assert max(per_app, key=per_app.get) == ds.big_app
        assert 0.5 < per_app[ds.big_app] / EVENTS < 0.9

        # Sessions start with app_open and their events are in time order by construction.
        bad_starts = conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT ON (session_id) event_type FROM analytics.tb_event"
            ' ORDER BY session_id, "timestamp", pk_event) s WHERE event_type <> \'app_open\'').fetchone()[0]
        assert bad_starts == 0

        # Churn: many users are seen on one day only; skew: the top 1 % send far more than 1 %.
        one_day_share, top_share = conn.execute(
            """
            WITH u AS (SELECT coalesce(user_id, anonymous_id) AS k, count(*) AS n,
                              count(DISTINCT ("timestamp" AT TIME ZONE 'UTC')::date) AS days
                       FROM analytics.tb_event GROUP BY 1),
                 r AS (SELECT n, days, row_number() OVER (ORDER BY n DESC) AS rk, count(*) OVER () AS c FROM u)
            SELECT avg((days = 1)::int), sum(n) FILTER (WHERE rk <= greatest(1, c / 100))::float8 / sum(n) FROM r
            """).fetchone()
        assert one_day_share > 0.3
        assert top_share > 0.03

        # Funnel steps convert at 20-60 % each, in order, from the raw events.
        steps = conn.execute(
            """
            WITH f AS (SELECT coalesce(user_id, anonymous_id) AS k,
                              min("timestamp") FILTER (WHERE event_type = 'onboarding_complete') AS t1,
                              min("timestamp") FILTER (WHERE event_type = 'payment_screen') AS t2,
                              min("timestamp") FILTER (WHERE event_type = 'purchase_complete') AS t3
                       FROM analytics.tb_event GROUP BY 1)
            SELECT count(t1), count(*) FILTER (WHERE t2 > t1), count(*) FILTER (WHERE t3 > t2 AND t2 > t1) FROM f
            """).fetchone()
        assert steps[0] > 50
        assert 0.2 <= steps[1] / steps[0] <= 0.6 and 0.2 <= steps[2] / steps[1] <= 0.6

        # Both os values and several app versions, as device dimensions.
        dims = conn.execute("SELECT count(DISTINCT device ->> 'os'), count(DISTINCT device ->> 'app_version')"
                            " FROM analytics.tb_event").fetchone()
        assert dims[0] == 2 and dims[1] >= 4

    args = bq.parse_args(["--database-url", db.conninfo, "--events", str(EVENTS), "--days", str(DAYS),
                          "--seed", str(SEED), "--end", END.isoformat(), "--repeat", "1", "--repeat-raw", "1",
                          "--no-migrate", "--quiet"])
    out = bq.collect(args, db.conninfo)
    assert out.dataset.created_at == ds.created_at  # reused, not generated again
    assert {c.key for c in out.cases} == {"metrics", "metrics_tz", "metrics_all", "metrics_all_tz", "metrics_hourly",
                                         "dau", "dau_tz", "wau", "mau", "funnel", "retention", "day_cohort", "live"}
    for case in out.cases:
        for t in out.results[case.key]:
            assert t.status in ("ok", "missing"), (case.key, t.variant.label, t.error)
            if t.status == "missing":
                continue
            assert len(t.samples) == 1
            if not t.variant.raw:
                assert t.answer == "= raw", (case.key, t.variant.label, t.answer)
        assert any(t.variant.raw and t.status == "ok" for t in out.results[case.key])
    live = next(t for t in out.results["live"] if t.variant.raw)
    assert live.rows == 1

    bq.report(out.dataset, out.cases, out.results, args, out.extra, out.info)
    printed = capsys.readouterr().out
    assert "Targets of issue 3" in printed and "fn_metrics" in printed
