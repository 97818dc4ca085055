-- analytics_internal.fn_event_horizon(p_app) -> timestamptz
--
-- The time before which raw events may have been dropped by retention, as far as app p_app is
-- concerned (NULL when nothing was dropped): fn_track_events refuses older events as too_old,
-- and on TimescaleDB neither the refresh policies nor prc_refresh_rollups refresh before it.
--   TimescaleDB: the newest end of a range in analytics_internal.tb_event_drop, or now() minus
--     the retention policy's drop_after while there is one (it drops without telling), for
--     every app alike: continuous aggregates log invalidations by time range for all apps at
--     once, so one app's late event there would recompute, and empty, every app's buckets.
--   PostgreSQL: the newest end of a dropped range where p_app had events (the rollups are
--     invalidated per app, so other apps may still send events there); p_app NULL: any.
--
--   p_app  pk_app of the app, or NULL
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_event_horizon(p_app integer DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_horizon  timestamptz;
BEGIN
    IF analytics.fn_engine() = 'timescaledb' THEN
        SELECT max(d.range_end) INTO v_horizon FROM analytics_internal.tb_event_drop d;
        -- greatest() skips NULLs: either may be missing.
        RETURN greatest(v_horizon,
                        (SELECT now() - (j.config ->> 'drop_after')::interval
                         FROM timescaledb_information.jobs j
                         WHERE j.proc_name = 'policy_retention' AND j.hypertable_schema = 'analytics'
                           AND j.hypertable_name = 'tb_event'));
    END IF;
    SELECT max(d.range_end) INTO v_horizon
    FROM analytics_internal.tb_event_drop d
    WHERE p_app IS NULL OR p_app = ANY (d.apps);
    RETURN v_horizon;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_event_horizon(integer) IS
    'Time before which raw events may have been dropped by retention, for an app: older events are refused.';
