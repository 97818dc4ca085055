-- analytics_internal.fn_period_sessions(p_pk_app, p_granularity, p_timezone, p_from, p_to, p_daily)
--     -> setof (period, sessions, session_seconds)
--
-- Sessions per fn_metrics period, from one app's session rows: a session counts in every period
-- it has events in, with the seconds between its first and last event inside the period. Read
-- from analytics.ca_session_hourly (periods of any zone, and hours), or with p_daily from
-- ca_session_daily (24 times fewer rows; UTC days, weeks and months only). Only the rows of
-- buckets in [p_from, p_to) count. analytics.fn_metrics reads it where no one-row-per-period
-- rollup or summary holds the answer, and analytics_internal.fn_local_days_refresh summarizes
-- local days with it, so that both give the same numbers.
--
--   p_pk_app       the app
--   p_granularity  'hour', 'day', 'week' or 'month'
--   p_timezone     the zone of the periods (hours are UTC hours in every zone)
--   p_from, p_to   the range of the rows' buckets
--   p_daily        read ca_session_daily instead of ca_session_hourly
--
-- Errors: none.
--
-- No SET search_path on purpose: a plain SQL function is inlined into the caller's query (with
-- the caller's values, and the readers inside it too); a SET clause would prevent that. Every
-- name in it is schema-qualified.
CREATE OR REPLACE FUNCTION analytics_internal.fn_period_sessions(
    p_pk_app       integer,
    p_granularity  text,
    p_timezone     text,
    p_from         timestamptz,
    p_to           timestamptz,
    p_daily        boolean DEFAULT false)
RETURNS TABLE (period timestamptz, sessions bigint, session_seconds numeric)
LANGUAGE sql
STABLE
SECURITY INVOKER
AS $$
    SELECT s.period, count(*), sum(extract(epoch FROM s.ended_at - s.started_at))
    FROM (SELECT analytics_internal.fn_metric_period(x.bucket, p_granularity, p_timezone) AS period,
                 min(x.started_at) AS started_at, max(x.ended_at) AS ended_at
          FROM (SELECT h.bucket, h.session_id, h.started_at, h.ended_at
                FROM analytics_internal.fn_ca_session_hourly_between(p_pk_app, p_from, p_to) h
                WHERE NOT p_daily
                UNION ALL
                SELECT d.bucket, d.session_id, d.started_at, d.ended_at
                FROM analytics_internal.fn_ca_session_daily_between(p_pk_app, p_from, p_to) d
                WHERE p_daily) x
          GROUP BY 1, x.session_id) s
    GROUP BY s.period
$$;

COMMENT ON FUNCTION analytics_internal.fn_period_sessions(integer, text, text, timestamptz, timestamptz, boolean) IS
    'Sessions and their seconds per fn_metrics period of one app from ca_session_hourly (or ca_session_daily).';
