-- analytics.ca_session_daily: ca_session_hourly per UTC day (hierarchical on TimescaleDB).
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_session_daily',
    p_bucket_width  => '1 day',
    p_refresh_order => 50,
    p_source        => 'analytics.ca_session_hourly',
    p_time_column   => 'bucket',
    p_dimensions    => ARRAY['fk_app', 'session_id'],
    p_measures      => ARRAY[
        'min(user_key) AS user_key',
        'sum(event_count)::bigint AS event_count',
        'min(started_at) AS started_at',
        'max(ended_at) AS ended_at']);

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_session_daily') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_session_daily IS
    'One row per app, session_id and UTC day (bucket) with events of that session, from analytics.ca_session_hourly: '
    'user_key, event_count, started_at and ended_at (first and last event that day). Sessions per day: count(*); '
    'duration of a session that day: ended_at - started_at. Real time.';
