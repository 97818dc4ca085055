-- analytics_internal.fn_is_screen_size(p_value) -> boolean
-- A device's screen_width / screen_height: absent, null, or a whole JSON number 0..100000.
-- No SET search_path: see fn_is_clean_text (inlined per event).
CREATE OR REPLACE FUNCTION analytics_internal.fn_is_screen_size(p_value jsonb)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT p_value IS NULL
        OR jsonb_typeof(p_value) = 'null'
        OR (jsonb_typeof(p_value) = 'number'
            AND CASE WHEN jsonb_typeof(p_value) = 'number'
                     THEN p_value::numeric BETWEEN 0 AND 100000 AND p_value::numeric = trunc(p_value::numeric)
                END)
$$;

COMMENT ON FUNCTION analytics_internal.fn_is_screen_size(jsonb) IS
    'True for an absent/null screen dimension or a whole number from 0 to 100000.';
