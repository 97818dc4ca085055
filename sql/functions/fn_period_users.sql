-- analytics_internal.fn_period_users(p_pk_app, p_granularity, p_timezone, p_from, p_to)
--     -> setof (period, users)
--
-- Unique users per fn_metrics period, from one app's user-days in analytics.ca_user_daily: a
-- user-day counts in the periods (fn_metric_period) of its first and last event, which are
-- enough for days, weeks and months of any zone (a UTC day touches at most two local days, and
-- the user was active at both ends), or, for 'hour', in each of its active hours. Only the
-- events in [p_from, p_to) count. analytics.fn_metrics reads it where no one-row-per-period
-- rollup or summary holds the answer, and analytics_internal.fn_local_days_refresh summarizes
-- local days with it, so that both give the same numbers.
--
--   p_pk_app       the app
--   p_granularity  'hour', 'day', 'week' or 'month'
--   p_timezone     the zone of the periods (hours are UTC hours in every zone)
--   p_from, p_to   the time range
--
-- Errors: none.
--
-- No SET search_path on purpose: a plain SQL function is inlined into the caller's query (with
-- the caller's values, and the readers inside it too); a SET clause would prevent that. Every
-- name in it is schema-qualified.
CREATE OR REPLACE FUNCTION analytics_internal.fn_period_users(
    p_pk_app       integer,
    p_granularity  text,
    p_timezone     text,
    p_from         timestamptz,
    p_to           timestamptz)
RETURNS TABLE (period timestamptz, users bigint)
LANGUAGE sql
STABLE
SECURITY INVOKER
AS $$
    SELECT analytics_internal.fn_metric_period(t.at, p_granularity, p_timezone), count(DISTINCT u.user_key)
    FROM analytics_internal.fn_ca_user_daily_between(p_pk_app, analytics_internal.fn_time_bucket(interval '1 day', p_from),
                                                     p_to) u
    CROSS JOIN LATERAL (
        SELECT u.first_event_at WHERE p_granularity <> 'hour'
        UNION ALL
        SELECT u.last_event_at WHERE p_granularity <> 'hour'
        UNION ALL
        SELECT u.bucket + pg_catalog.make_interval(hours => h.h)
        FROM pg_catalog.generate_series(0, 23) AS h(h)
        WHERE p_granularity = 'hour' AND u.active_hours & (1 << h.h) <> 0) AS t(at)
    WHERE t.at >= p_from AND t.at < p_to
    GROUP BY 1
$$;

COMMENT ON FUNCTION analytics_internal.fn_period_users(integer, text, text, timestamptz, timestamptz) IS
    'Unique users per fn_metrics period of one app from ca_user_daily (first and last event of each user-day, or its active hours).';
