-- analytics.ca_app_daily: unique users per app and UTC day, one row per day.
--
-- The same number as count(*) of the day's rows in ca_user_daily (users are
-- coalesce(user_id, anonymous_id); events with neither are left out), kept ready so that DAU
-- over a month is 30 rows rather than hundreds of thousands (analytics.fn_metrics reads it for
-- daily unique_users of UTC apps). From the raw events, not from ca_user_daily: TimescaleDB
-- refuses a continuous aggregate on another one of the same bucket width.
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_app_daily',
    p_bucket_width  => '1 day',
    p_refresh_order => 60,
    p_source        => 'analytics.tb_event',
    p_time_column   => '"timestamp"',
    p_dimensions    => ARRAY['fk_app'],
    p_measures      => ARRAY['count(DISTINCT coalesce(user_id, anonymous_id)) AS users'],
    p_source_filter => 'coalesce(user_id, anonymous_id) IS NOT NULL');

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_app_daily') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_app_daily IS
    'One row per app and UTC day (bucket) with identified events: users = distinct coalesce(user_id, anonymous_id) '
    'that day (exact DAU). Real time.';
