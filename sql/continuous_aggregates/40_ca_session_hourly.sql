-- analytics.ca_session_hourly: one row per app, session and UTC hour with events of it.
--
-- Hourly rather than daily so that sessions and their durations can be counted exactly in the
-- days, weeks and months of an app's own time zone (and per hour): a session is about as many
-- rows as hours it spans, barely more than per day. ca_session_daily sums it per UTC day.
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_session_hourly',
    p_bucket_width  => '1 hour',
    p_refresh_order => 40,
    p_source        => 'analytics.tb_event',
    p_time_column   => '"timestamp"',
    p_dimensions    => ARRAY['fk_app', 'session_id'],
    p_measures      => ARRAY[
        'min(coalesce(user_id, anonymous_id)) AS user_key',
        'count(*) AS event_count',
        'min("timestamp") AS started_at',
        'max("timestamp") AS ended_at'],
    p_source_filter => 'session_id IS NOT NULL');

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_session_hourly') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_session_hourly IS
    'One row per app, session_id and UTC hour (bucket) with events of that session: user_key (smallest '
    'coalesce(user_id, anonymous_id) seen, NULL if none), event_count, started_at and ended_at (first and last '
    'event in the hour). Events without a session_id are left out. Real time.';
