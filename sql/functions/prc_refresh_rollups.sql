-- CALL analytics.prc_refresh_rollups()
--
-- Refreshes every rollup now, on either engine; call it outside a transaction block (from an
-- autocommit connection, psql, pg_cron or the server's scheduler).
--   TimescaleDB: CALLs refresh_continuous_aggregate for each continuous aggregate in
--     refresh_order (ca_event_hourly before ca_event_daily, ...), with the window
--     [-infinity, now() - rollup_refresh_lag): buckets with late events of any age are
--     re-materialized, and the most recent ones stay real-time so that events arriving up to
--     rollup_refresh_lag late still show at once. Each refresh commits on its own, and the
--     procedure commits after each. Once retention has dropped raw events, the window starts
--     at analytics_internal.fn_refresh_horizon() instead of -infinity: refreshing a dropped
--     range would recompute its buckets from no events and erase their history (see
--     docs/lifecycle.md).
--   PostgreSQL: runs analytics.fn_refresh_rollups() (up to now()).
-- Then, on both, the local-day summary of apps outside UTC (analytics.fn_refresh_local_days),
-- which is computed from the rollups.
-- The refresh policies do the same on TimescaleDB in the background; this is for "now".
--
-- Errors: 25001 on TimescaleDB when called inside a transaction block (refresh_continuous_aggregate
-- commits); those of fn_refresh_rollups on PostgreSQL.
--
-- No SET search_path on purpose, and SECURITY INVOKER: a procedure with a SET clause (or
-- SECURITY DEFINER) runs atomically, and then refresh_continuous_aggregate cannot commit. The
-- package's objects below are schema-qualified instead; the caller's search_path only affects
-- the caller. (Procedures carry no volatility.)
CREATE OR REPLACE PROCEDURE analytics.prc_refresh_rollups()
LANGUAGE plpgsql
SECURITY INVOKER
AS $$
DECLARE
    v_rollups  text[];
    v_rollup   text;
    v_until    timestamptz;
    v_from     timestamptz;
BEGIN
    IF analytics.fn_engine() = 'postgresql' THEN
        PERFORM analytics.fn_refresh_rollups();
        PERFORM analytics.fn_refresh_local_days();
        RETURN;
    END IF;

    v_until := now() - analytics_internal.fn_setting('rollup_refresh_lag')::interval;
    v_from := analytics_internal.fn_refresh_horizon();
    -- Read the list first: a refresh commits, which must not happen inside an open query loop.
    SELECT array_agg(r.rollup ORDER BY r.refresh_order)
      INTO v_rollups
    FROM analytics_internal.tb_rollup r;
    FOREACH v_rollup IN ARRAY coalesce(v_rollups, '{}') LOOP
        CALL public.refresh_continuous_aggregate(format('analytics.%I', v_rollup)::regclass,
                                                 v_from, v_until);
        -- Start afresh before the next one: without this COMMIT, a hierarchical aggregate
        -- refreshed next in the same CALL missed the invalidations that refreshing its source
        -- had just logged (seen on the TimescaleDB 2.23 WASM build: a late event's day stayed
        -- unrefreshed in ca_event_daily although ca_event_hourly had it).
        COMMIT;
    END LOOP;
    PERFORM analytics.fn_refresh_local_days();
END
$$;

COMMENT ON PROCEDURE analytics.prc_refresh_rollups() IS
    'Refresh every rollup now: refresh_continuous_aggregate per continuous aggregate on TimescaleDB, fn_refresh_rollups on PostgreSQL. Call outside a transaction.';
