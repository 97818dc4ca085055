-- analytics.ca_app_session_hourly: sessions per app and UTC hour and the seconds they lasted in
-- that hour, one row per hour.
--
-- The same numbers as count(*) and sum(ended_at - started_at) over the hour's rows of
-- ca_session_hourly, kept ready so that hourly sessions and average session duration over a
-- few days read one row per hour (analytics.fn_metrics at hour granularity). From the raw
-- events: TimescaleDB refuses a continuous aggregate on ca_session_hourly of the same width.
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_app_session_hourly',
    p_bucket_width  => '1 hour',
    p_refresh_order => 75,
    p_source        => 'analytics.tb_event',
    p_time_column   => '"timestamp"',
    p_dimensions    => ARRAY['fk_app'],
    p_measures      => ARRAY[
        'count(DISTINCT session_id) AS sessions',
        'analytics_internal.agg_session_seconds(session_id, "timestamp", "timestamp" ORDER BY session_id) AS session_seconds'],
    p_source_filter => 'session_id IS NOT NULL');

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_app_session_hourly') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_app_session_hourly IS
    'One row per app and UTC hour (bucket) with session events: sessions (distinct session_id) and session_seconds '
    '(sum over those sessions of last - first event in that hour). Average session duration: session_seconds / sessions. '
    'Real time.';
