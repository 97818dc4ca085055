-- analytics.ca_app_session_daily: sessions per app and UTC day and the seconds they lasted
-- that day, one row per day.
--
-- The same numbers as count(*) and sum(ended_at - started_at) over the day's rows of
-- ca_session_daily (a session counts in every day it has events, with its time inside that
-- day), kept ready so that daily sessions and average session duration over a month read 30
-- rows, not every session (analytics.fn_metrics, UTC apps). Hierarchical on ca_session_hourly
-- (TimescaleDB refuses one on ca_session_daily, whose bucket width is the same).
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_app_session_daily',
    p_bucket_width  => '1 day',
    p_refresh_order => 70,
    p_source        => 'analytics.ca_session_hourly',
    p_time_column   => 'bucket',
    p_dimensions    => ARRAY['fk_app'],
    p_measures      => ARRAY[
        'count(DISTINCT session_id) AS sessions',
        'analytics_internal.agg_session_seconds(session_id, started_at, ended_at ORDER BY session_id) AS session_seconds']);

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_app_session_daily') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_app_session_daily IS
    'One row per app and UTC day (bucket) with session events: sessions (distinct session_id) and session_seconds '
    '(sum over those sessions of last - first event that day). Average session duration: session_seconds / sessions. '
    'Real time.';
