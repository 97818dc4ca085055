-- analytics_internal.fn_cohort_filter_raise(p_path, p_problem, p_advice) -> void (never returns)
--
-- Raises the error of an invalid cohort filter: SQLSTATE 22023, the message
-- "invalid cohort filter at <path>: <problem>", and a HINT that starts with the JSON path of the
-- bad part ("$.and[1].event: ...") and says how to fix it. Used by the filter checks only.
--
--   p_path     JSON path of the bad part, e.g. $.and[1].min_count ($ is the whole filter)
--   p_problem  what is wrong, for the message
--   p_advice   what to write instead, for the HINT
--
-- Errors: always 22023.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_filter_raise(p_path text, p_problem text, p_advice text)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'invalid cohort filter at %: %', p_path, p_problem
        USING ERRCODE = '22023',
              DETAIL = format('The part of the filter at %s is not valid; see "Cohort filters" in docs/analytics.md.', p_path),
              HINT = format('%s: %s', p_path, p_advice);
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_filter_raise(text, text, text) IS
    'Raise 22023 for an invalid cohort filter, with the JSON path of the bad part in the message and the HINT.';
