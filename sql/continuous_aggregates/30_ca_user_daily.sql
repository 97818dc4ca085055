-- analytics.ca_user_daily: one row per app, user and UTC day with activity.
--
-- user_key is coalesce(user_id, anonymous_id); events with neither are left out. One row per
-- user-day makes exact DAU / WAU / MAU (count DISTINCT user_key), retention and cohorts cheap.
-- first_event_at and last_event_at place a user-day in the periods of any time zone (a UTC day
-- touches at most two local days, and the user was active at both ends); active_hours (bit h
-- set = events in UTC hour h) gives hourly unique users.
SELECT analytics_internal.fn_rollup_register(
    p_rollup        => 'ca_user_daily',
    p_bucket_width  => '1 day',
    p_refresh_order => 30,
    p_source        => 'analytics.tb_event',
    p_time_column   => '"timestamp"',
    p_dimensions    => ARRAY['fk_app', 'coalesce(user_id, anonymous_id) AS user_key'],
    p_measures      => ARRAY[
        'count(*) AS event_count',
        'min("timestamp") AS first_event_at',
        'max("timestamp") AS last_event_at',
        $$bit_or(1 << extract(hour FROM "timestamp" AT TIME ZONE 'UTC')::integer) AS active_hours$$],
    p_source_filter => 'coalesce(user_id, anonymous_id) IS NOT NULL');

-- Create it (idempotently) on this engine: see analytics_internal.fn_rollup_ddl.
DO $$ DECLARE v_statement text; BEGIN
    FOR v_statement IN SELECT analytics_internal.fn_rollup_ddl('ca_user_daily') LOOP EXECUTE v_statement; END LOOP;
END $$;

COMMENT ON VIEW analytics.ca_user_daily IS
    'One row per app, user_key (coalesce(user_id, anonymous_id)) and UTC day (bucket) with events: event_count, '
    'first_event_at, last_event_at, active_hours (bit h set = events in UTC hour h). Exact DAU/WAU/MAU: '
    'count(DISTINCT user_key). Real time.';
