-- analytics.fn_live_metrics(p_app, p_interval_seconds)
--     -> (window_start, window_end, pageviews, unique_users, crash_count, avg_session_duration)
--
-- What happened in an app during the last p_interval_seconds, for live dashboards (the
-- GraphQL liveMetrics subscription polls it once per interval for all its subscribers).
-- Reads only the newest index range of analytics.tb_event (tb_event_app_time_idx on
-- (fk_app, "timestamp" DESC)), never a rollup, so a committed event shows at once.
--
--   p_app               app identifier or uuid
--   p_interval_seconds  window length, 1 to 3600
--
-- The window is (window_end - interval, window_end], window_end = now(), by event time.
--   pageviews             events of type page_view or screen_view
--   unique_users          exact count of distinct users, a user being
--                         coalesce(user_id, anonymous_id) as in the rollups and fn_metrics
--   crash_count           events of type crash or app_crash
--   avg_session_duration  seconds, averaged over the sessions with an event in the window:
--                         each session's last minus first event time, counting its events
--                         from up to one hour before the window (a bounded read); NULL when
--                         no session was active
--
-- Errors: 22023 interval out of range; P0002 no such app.
CREATE OR REPLACE FUNCTION analytics.fn_live_metrics(
    p_app               text,
    p_interval_seconds  integer,
    OUT window_start          timestamptz,
    OUT window_end            timestamptz,
    OUT pageviews             bigint,
    OUT unique_users          bigint,
    OUT crash_count           bigint,
    OUT avg_session_duration  double precision)
RETURNS record
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app integer;
BEGIN
    IF p_interval_seconds IS NULL OR p_interval_seconds NOT BETWEEN 1 AND 3600 THEN
        RAISE EXCEPTION 'live metrics interval of % seconds is out of range', coalesce(p_interval_seconds::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use an interval from 1 to 3600 seconds.';
    END IF;
    v_pk_app := analytics_internal.fn_require_app(p_app);

    window_end := now();
    window_start := window_end - make_interval(secs => p_interval_seconds);

    SELECT count(*) FILTER (WHERE e.event_type IN ('page_view', 'screen_view')),
           count(DISTINCT coalesce(e.user_id, e.anonymous_id)),
           count(*) FILTER (WHERE e.event_type IN ('crash', 'app_crash'))
      INTO pageviews, unique_users, crash_count
    FROM analytics.tb_event e
    WHERE e.fk_app = v_pk_app
      AND e."timestamp" > window_start
      AND e."timestamp" <= window_end;

    SELECT avg(extract(epoch FROM s.last_at - s.first_at))::double precision
      INTO avg_session_duration
    FROM (SELECT min(e."timestamp") AS first_at, max(e."timestamp") AS last_at
          FROM analytics.tb_event e
          WHERE e.fk_app = v_pk_app
            AND e."timestamp" > window_start - interval '1 hour'
            AND e."timestamp" <= window_end
            AND e.session_id IS NOT NULL
          GROUP BY e.session_id
          HAVING max(e."timestamp") > window_start) s;
END
$$;

COMMENT ON FUNCTION analytics.fn_live_metrics(text, integer) IS
    'Pageviews, exact unique users, crashes and average session duration over the last N seconds (1 to 3600), from raw events.';
