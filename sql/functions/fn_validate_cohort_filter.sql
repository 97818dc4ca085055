-- analytics.fn_validate_cohort_filter(p_filter) -> void
--
-- Checks a cohort filter (docs/analytics.md, "Cohort filters") without saving anything:
-- returns nothing when it is valid, raises 22023 otherwise. fn_create_cohort and
-- fn_refresh_cohort call it; an editor may call it to check a filter as it is typed.
--   {}                         every user of the app (only as the whole filter)
--   {"and": [...]}, {"or": [...]}, {"not": ...}
--   {"event": ..., "min_count": ..., "within_days": ... | "from"/"to": ...}
--   {"property": ..., "op": ..., "value": ..., optional window}
--   {"first_seen": {...}}
-- At most 6 levels of nesting, 100 leaf conditions and 64 kB of JSON.
--
--   p_filter  the filter, a JSON object
--
-- Errors: 22023 for any invalid filter. The message says what is wrong and where; the HINT
-- starts with the JSON path of the bad part ("$.and[1].min_count: ...") and says what to write.
CREATE OR REPLACE FUNCTION analytics.fn_validate_cohort_filter(p_filter jsonb)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_leaves integer;
BEGIN
    IF p_filter IS NULL THEN
        PERFORM fn_cohort_filter_raise('$', 'the filter is NULL',
            'pass a JSON object: {} for every user, or a condition such as {"event": "purchase"}.');
    END IF;
    IF jsonb_typeof(p_filter) <> 'object' THEN
        PERFORM fn_cohort_filter_raise('$', format('a filter must be a JSON object, not %s', jsonb_typeof(p_filter)),
            'pass a JSON object: {} for every user, or a condition such as {"event": "purchase"}.');
    END IF;
    IF p_filter = '{}'::jsonb THEN
        RETURN;
    END IF;
    IF octet_length(p_filter::text) > 65536 THEN
        PERFORM fn_cohort_filter_raise('$', 'the filter is larger than 64 kB',
            'use fewer or shorter conditions (long "in" lists belong in a metadata property).');
    END IF;
    v_leaves := fn_cohort_filter_check(p_filter, '$', 1);
    IF v_leaves > 100 THEN
        PERFORM fn_cohort_filter_raise('$', format('the filter has %s conditions, more than 100', v_leaves),
            'use at most 100 event, property and first_seen conditions.');
    END IF;
END
$$;

COMMENT ON FUNCTION analytics.fn_validate_cohort_filter(jsonb) IS
    'Check a cohort filter: nothing when valid, else 22023 with the JSON path of the bad part in the HINT.';
