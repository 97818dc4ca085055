-- analytics.ca_event_hourly: events per UTC hour, app, event type, os and app version.
--
-- TimescaleDB: a continuous aggregate on analytics.tb_event with real-time aggregation and a
-- refresh policy. PostgreSQL: a view over analytics_internal.tb_ca_event_hourly plus live
-- aggregation of what is not materialized yet. Same name and columns on both (see
-- analytics_internal.fn_rollup_ddl for how each is created idempotently).
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_event_hourly',
    p_bucket_width  => '1 hour',
    p_refresh_order => 10,
    p_source        => 'analytics.tb_event',
    p_time_column   => '"timestamp"',
    p_dimensions    => ARRAY[
        'fk_app',
        'event_type',
        $$coalesce(device ->> 'os', 'unknown') AS os$$,
        $$coalesce(device ->> 'app_version', 'unknown') AS app_version$$],
    p_measures      => ARRAY[
        'count(*) AS event_count',
        'coalesce(sum(duration_ms), 0)::bigint AS duration_ms_sum',
        'count(duration_ms) AS duration_ms_count',
        $$count(*) FILTER (WHERE event_type IN ('crash', 'app_crash')) AS crash_count$$]);

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_event_hourly') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_event_hourly IS
    'Events per UTC hour (bucket), app, event_type, os and app_version (device fields, ''unknown'' when absent): '
    'event_count, duration_ms_sum and duration_ms_count (sum and number of duration_ms values), crash_count '
    '(events of type ''crash'' or ''app_crash''). Real time: new events show at once. Sums only, so any coarser bucket is a sum of these.';
