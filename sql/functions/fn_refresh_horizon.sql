-- analytics_internal.fn_refresh_horizon() -> timestamptz
--
-- TimescaleDB: where refresh windows of the continuous aggregates must start (NULL: anywhere,
-- nothing was dropped). Dropping a chunk logs an invalidation over its range, and a refresh
-- reaching there would recompute those buckets from no raw events, erasing their history. So:
--   the newest end of a range in analytics_internal.tb_event_drop (drops by fn_apply_retention,
--   and what a retention policy may have dropped before it was changed or removed), and while a
--   retention policy exists, also the earlier of now() - drop_after and the start of the oldest
--   chunk: the policy drops oldest first, so whatever older than that chunk existed is gone,
--   and whatever is not older is still there to refresh from.
-- prc_refresh_rollups starts its window here; the refresh policies' start_offset never reaches
-- back further (analytics_internal.fn_sync_retention_policies). PostgreSQL: NULL (its rollups
-- are not recomputed from a range, see analytics_internal.fn_event_horizon).
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_refresh_horizon()
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_recorded    timestamptz;
    v_drop_after  interval;
BEGIN
    IF analytics.fn_engine() <> 'timescaledb' THEN
        RETURN NULL;
    END IF;
    SELECT max(d.range_end) INTO v_recorded FROM analytics_internal.tb_event_drop d;
    SELECT (j.config ->> 'drop_after')::interval INTO v_drop_after
    FROM timescaledb_information.jobs j
    WHERE j.proc_name = 'policy_retention' AND j.hypertable_schema = 'analytics' AND j.hypertable_name = 'tb_event';
    IF v_drop_after IS NULL THEN
        RETURN v_recorded;
    END IF;
    -- greatest() and least() skip NULLs (no drop recorded, no chunk at all).
    RETURN greatest(v_recorded,
                    least(now() - v_drop_after,
                          (SELECT min(c.range_start) FROM analytics_internal.fn_event_chunks() c)));
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_refresh_horizon() IS
    'TimescaleDB: the earliest time a continuous-aggregate refresh may start at without reaching raw events dropped by retention.';
