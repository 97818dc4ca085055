-- analytics_internal.fn_cohort_filter_check_window(p_node, p_path) -> void
--
-- Checks the optional time window of a cohort filter condition (an event or property
-- condition, or the object of first_seen): "within_days" (whole number, 1 to 3650) or
-- "from" / "to" (dates "YYYY-MM-DD", either or both, from <= to), not both kinds.
-- Unknown keys are the caller's business.
--
--   p_node  the object holding the window keys
--   p_path  its JSON path, for errors
--
-- Errors: 22023 (analytics_internal.fn_cohort_filter_raise) naming the bad key's path.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_filter_check_window(p_node jsonb, p_path text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal, pg_temp
AS $$
DECLARE
    v_key    text;
    v_value  jsonb;
    v_date   date;
    v_dates  date[] := ARRAY[NULL, NULL]::date[];
BEGIN
    v_value := p_node -> 'within_days';
    IF v_value IS NOT NULL THEN
        -- CASE, not OR: SQL does not promise to test the type before the cast
        IF NOT (CASE WHEN jsonb_typeof(v_value) = 'number'
                     THEN v_value::numeric = trunc(v_value::numeric) AND v_value::numeric BETWEEN 1 AND 3650
                     ELSE false END) THEN
            PERFORM fn_cohort_filter_raise(p_path || '.within_days',
                format('within_days must be a whole number of days from 1 to 3650, not %s', left(v_value::text, 40)),
                'use a whole number such as 30 (the last 30 days).');
        END IF;
        IF p_node ? 'from' OR p_node ? 'to' THEN
            PERFORM fn_cohort_filter_raise(p_path || '.within_days',
                'within_days cannot be combined with from or to',
                'use either within_days (a rolling window) or from/to (fixed dates), not both.');
        END IF;
    END IF;

    FOREACH v_key IN ARRAY ARRAY['from', 'to'] LOOP
        v_value := p_node -> v_key;
        CONTINUE WHEN v_value IS NULL;
        v_date := NULL;
        IF jsonb_typeof(v_value) = 'string' AND (v_value #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
            BEGIN
                v_date := (v_value #>> '{}')::date;
            EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
                v_date := NULL;
            END;
        END IF;
        IF v_date IS NULL OR to_char(v_date, 'YYYY-MM-DD') <> (v_value #>> '{}') OR v_date < date '1970-01-01' THEN
            PERFORM fn_cohort_filter_raise(p_path || '.' || v_key,
                format('%s must be a date "YYYY-MM-DD" from 1970 on, not %s', v_key, left(v_value::text, 40)),
                format('write a calendar date such as "2026-01-31" (a local date of the app''s time zone, %s).',
                       CASE v_key WHEN 'from' THEN 'the first day included' ELSE 'the last day included' END));
        END IF;
        v_dates[CASE v_key WHEN 'from' THEN 1 ELSE 2 END] := v_date;
    END LOOP;
    IF v_dates[1] > v_dates[2] THEN
        PERFORM fn_cohort_filter_raise(p_path || '.to',
            format('to (%s) is before from (%s)', v_dates[2], v_dates[1]),
            'swap the dates: from is the first day, to the last (both included).');
    END IF;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_filter_check_window(jsonb, text) IS
    'Check the within_days / from / to window of a cohort filter condition; 22023 naming the bad key.';
