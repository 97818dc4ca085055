-- analytics_internal.fn_period_start(p_start, p_k, p_interval) -> date
--
-- First day of period p_k of a series of periods that starts on p_start: p_start + p_k days,
-- p_start + 7 * p_k days, or p_start + p_k months (PostgreSQL's month arithmetic: from
-- 2026-01-31, period 1 starts on 2026-02-28 and period 2 on 2026-03-31). Retention periods
-- (fn_cohort_retention, fn_retention) are such series of local dates.
--
--   p_start     first day of period 0
--   p_k         the period, 0 or more
--   p_interval  'day', 'week' or 'month' (checked by the callers)
--
-- Errors: none (NULL for an unknown interval).
--
-- No SET search_path on purpose: it is evaluated per member and period in retention queries,
-- and a SET clause would stop the planner from inlining it. The body uses only pg_catalog.
CREATE OR REPLACE FUNCTION analytics_internal.fn_period_start(p_start date, p_k integer, p_interval text)
RETURNS date
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE p_interval
               WHEN 'day' THEN p_start + p_k
               WHEN 'week' THEN p_start + 7 * p_k
               WHEN 'month' THEN (p_start + pg_catalog.make_interval(months => p_k))::date
           END
$$;

COMMENT ON FUNCTION analytics_internal.fn_period_start(date, integer, text) IS
    'First day of period k of a day/week/month series of periods starting on a date.';
