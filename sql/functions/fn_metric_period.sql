-- analytics_internal.fn_metric_period(p_time, p_granularity, p_timezone) -> timestamptz
--
-- Start of the reporting period of analytics.fn_metrics that holds p_time:
--   hour               the UTC hour (the same as the local hour in zones at whole-hour offsets)
--   day, week, month   the local day, ISO week (from Monday) or month in zone p_timezone
--
--   p_time         a time (an event time, or the start of an hourly rollup bucket)
--   p_granularity  'hour', 'day', 'week' or 'month' (validated by fn_metrics)
--   p_timezone     IANA zone of the app
--
-- Errors: those of date_trunc (22023 unknown unit, 22023 unknown time zone).
--
-- No SET search_path on purpose: it is inlined into fn_metrics' per-row expressions, and a SET
-- clause would stop that. The body uses only pg_catalog and fn_time_bucket (inlined too).
CREATE OR REPLACE FUNCTION analytics_internal.fn_metric_period(p_time timestamptz, p_granularity text, p_timezone text)
RETURNS timestamptz
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE WHEN p_granularity = 'hour'
                THEN analytics_internal.fn_time_bucket(interval '1 hour', p_time)
                ELSE pg_catalog.date_trunc(p_granularity, p_time, p_timezone) END
$$;

COMMENT ON FUNCTION analytics_internal.fn_metric_period(timestamptz, text, text) IS
    'Start of the fn_metrics period (UTC hour, or local day, ISO week or month) that holds a time.';
