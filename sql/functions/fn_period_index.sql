-- analytics_internal.fn_period_index(p_start, p_day, p_interval) -> integer
--
-- The period that holds local date p_day in the series of periods starting on p_start (see
-- analytics_internal.fn_period_start): the k with fn_period_start(p_start, k) <= p_day <
-- fn_period_start(p_start, k + 1). Negative when p_day is before p_start.
--
--   p_start     first day of period 0
--   p_day       the date to place
--   p_interval  'day', 'week' or 'month' (checked by the callers)
--
-- Errors: none (NULL for an unknown interval).
--
-- No SET search_path on purpose: it is evaluated per user-day in retention queries, and a SET
-- clause would stop the planner from inlining it. The body uses only pg_catalog.
CREATE OR REPLACE FUNCTION analytics_internal.fn_period_index(p_start date, p_day date, p_interval text)
RETURNS integer
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE p_interval
               WHEN 'day' THEN p_day - p_start
               WHEN 'week' THEN pg_catalog.floor((p_day - p_start) / 7.0)::integer
               -- whole months between the dates, less one when p_day is before that many
               -- months after p_start
               WHEN 'month' THEN (((pg_catalog.date_part('year', p_day) - pg_catalog.date_part('year', p_start)) * 12
                                   + pg_catalog.date_part('month', p_day) - pg_catalog.date_part('month', p_start))::integer)
                                 - CASE WHEN (p_start + pg_catalog.make_interval(months =>
                                                 ((pg_catalog.date_part('year', p_day) - pg_catalog.date_part('year', p_start)) * 12
                                                  + pg_catalog.date_part('month', p_day) - pg_catalog.date_part('month', p_start))::integer))::date
                                             > p_day
                                        THEN 1 ELSE 0 END
           END
$$;

COMMENT ON FUNCTION analytics_internal.fn_period_index(date, date, text) IS
    'Index of the day/week/month period holding a date, in the series of periods starting on another date.';
