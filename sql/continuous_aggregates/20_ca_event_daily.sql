-- analytics.ca_event_daily: ca_event_hourly summed per UTC day (hierarchical on TimescaleDB).
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_event_daily',
    p_bucket_width  => '1 day',
    p_refresh_order => 20,
    p_source        => 'analytics.ca_event_hourly',
    p_time_column   => 'bucket',
    p_dimensions    => ARRAY['fk_app', 'event_type', 'os', 'app_version'],
    p_measures      => ARRAY[
        'sum(event_count)::bigint AS event_count',
        'sum(duration_ms_sum)::bigint AS duration_ms_sum',
        'sum(duration_ms_count)::bigint AS duration_ms_count',
        'sum(crash_count)::bigint AS crash_count']);

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_event_daily') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_event_daily IS
    'Events per UTC day (bucket), app, event_type, os and app_version, summed from analytics.ca_event_hourly: '
    'event_count, duration_ms_sum, duration_ms_count, crash_count. Real time. For days in an app''s own time zone, '
    'sum ca_event_hourly instead (analytics.fn_metrics does).';
