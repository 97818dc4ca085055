-- analytics.fn_cohort_retention(p_app, p_cohort, p_interval, p_periods)
--     -> setof (period, period_start, cohort_size, returning_users, retention_rate)
--
-- Retention of a cohort's members (as of its last refresh: fn_refresh_cohort), each counted
-- from their own first seen day in the app's time zone. Period 0 is a member's first seen day
-- (with 'day'), or the 7 days (with 'week') or the month (with 'month') starting on it; period k
-- the k-th such period after it. Only periods that ended before today count: cohort_size is the
-- members whose period k is over, returning_users those of them with an event in it,
-- retention_rate their ratio (0 to 1, 4 decimals; NULL when cohort_size is 0). period_start is
-- the first day of period k for the members first seen earliest (the date of period k itself
-- when every member was first seen the same day). See
-- analytics_internal.fn_cohort_member_retention and docs/analytics.md ("Retention").
--
--   p_app       app identifier or uuid
--   p_cohort    cohort identifier or uuid
--   p_interval  'day' (default), 'week' or 'month'
--   p_periods   periods 0 .. p_periods - 1, 1 to 400 (default 8)
--
-- One row per period, none when no member has events.
--
-- Errors: P0002 unknown app or cohort; 22023 unknown interval or p_periods out of range.
CREATE OR REPLACE FUNCTION analytics.fn_cohort_retention(
    p_app       text,
    p_cohort    text,
    p_interval  text DEFAULT 'day',
    p_periods   integer DEFAULT 8)
RETURNS TABLE (period integer, period_start date, cohort_size bigint, returning_users bigint, retention_rate numeric)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_cohort integer := fn_require_cohort(fn_require_app(p_app), p_cohort);  -- P0002 when unknown
BEGIN
    IF p_interval IS NULL OR p_interval NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'unknown interval %', coalesce(quote_literal(left(p_interval, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use day, week or month.';
    END IF;
    IF p_periods IS NULL OR p_periods NOT BETWEEN 1 AND 400 THEN
        RAISE EXCEPTION '% periods is out of range', coalesce(p_periods::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use 1 to 400 periods (period 0 included).';
    END IF;
    RETURN QUERY SELECT * FROM fn_cohort_member_retention(v_pk_cohort, p_interval, p_periods);
END
$$;

COMMENT ON FUNCTION analytics.fn_cohort_retention(text, text, text, integer) IS
    'Retention of a cohort''s members per day/week/month after each member''s first seen day (app time zone); ended periods only.';
