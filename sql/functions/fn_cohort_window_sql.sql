-- analytics_internal.fn_cohort_window_sql(p_node, p_column, p_timezone, p_now) -> text
--
-- SQL conditions for the time window of a (valid) cohort filter condition, each starting with
-- " AND ", or '' when it has none:
--   "within_days": D   p_column >= p_now - D days (a rolling window of D × 24 hours)
--   "from": date       p_column >= local midnight starting that date in p_timezone
--   "to": date         p_column <  local midnight ending that date (the date is included)
-- Times are written as quoted UTC literals (quote_literal), never as raw filter text.
--
--   p_node      the condition (event, property, or the object of first_seen), already checked
--   p_column    the timestamptz expression to restrict (written by the caller, not the user)
--   p_timezone  the app's time zone
--   p_now       the time the window ends at (the refresh time)
--
-- Errors: none for a checked condition.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_window_sql(p_node jsonb, p_column text, p_timezone text, p_now timestamptz)
RETURNS text
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sql text := '';
BEGIN
    IF p_node ? 'within_days' THEN
        v_sql := v_sql || format(' AND %s >= %L::timestamptz', p_column,
            to_char((p_now - make_interval(days => (p_node ->> 'within_days')::numeric::integer)) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD HH24:MI:SS.US+00'));
    END IF;
    IF p_node ? 'from' THEN
        v_sql := v_sql || format(' AND %s >= %L::timestamptz', p_column,
            to_char(((p_node ->> 'from')::date::timestamp AT TIME ZONE p_timezone) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD HH24:MI:SS.US+00'));
    END IF;
    IF p_node ? 'to' THEN
        v_sql := v_sql || format(' AND %s < %L::timestamptz', p_column,
            to_char((((p_node ->> 'to')::date + 1)::timestamp AT TIME ZONE p_timezone) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD HH24:MI:SS.US+00'));
    END IF;
    RETURN v_sql;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_window_sql(jsonb, text, text, timestamptz) IS
    'SQL conditions (" AND ...", quoted literals) for the within_days / from / to window of a cohort filter condition.';
