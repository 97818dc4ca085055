-- analytics.ca_app_hourly: unique users per app and UTC hour, one row per hour.
--
-- The same number as the users of ca_user_daily with that hour's bit in active_hours, kept
-- ready so that hourly unique users over a few days are a few dozen rows rather than every
-- user-day expanded into its hours (analytics.fn_metrics reads it at hour granularity). From
-- the raw events (users are coalesce(user_id, anonymous_id); events with neither are left out).
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_app_hourly',
    p_bucket_width  => '1 hour',
    p_refresh_order => 65,
    p_source        => 'analytics.tb_event',
    p_time_column   => '"timestamp"',
    p_dimensions    => ARRAY['fk_app'],
    p_measures      => ARRAY['count(DISTINCT coalesce(user_id, anonymous_id)) AS users'],
    p_source_filter => 'coalesce(user_id, anonymous_id) IS NOT NULL');

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_app_hourly') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_app_hourly IS
    'One row per app and UTC hour (bucket) with identified events: users = distinct coalesce(user_id, anonymous_id) '
    'that hour (exact hourly unique users). Real time.';
