-- analytics_internal.fn_cohort_compare_sql(p_expr, p_op, p_value, p_version) -> text
--
-- SQL condition comparing a user's last known property value (the jsonb expression p_expr)
-- with one value of a (valid) cohort property condition; values are quoted with %L, never
-- spliced in as text. How the value's JSON type decides the comparison:
--   app version (p_version)  both sides as analytics_internal.fn_version_key ("1.10" > "1.9");
--                            a stored version that does not start with a digit never matches
--   string   the stored string or number, as text, in byte order (COLLATE "C")
--   number   the stored number, or a stored string that is a decimal number, as numeric
--   boolean  the stored boolean (eq, ne only)
-- A stored value of another type never matches (ne included). p_op is eq, ne, gt, gte, lt or
-- lte; "in" is an OR of eq comparisons, built by the caller.
--
--   p_expr     jsonb expression of the stored value (written by the caller, not the user)
--   p_op       the comparison
--   p_value    the value to compare with
--   p_version  true for app_version properties
--
-- Errors: none for a checked condition.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_compare_sql(p_expr text, p_op text, p_value jsonb, p_version boolean)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal, pg_temp
AS $$
DECLARE
    v_operator text := CASE p_op WHEN 'eq' THEN '=' WHEN 'ne' THEN '<>' WHEN 'gt' THEN '>'
                                 WHEN 'gte' THEN '>=' WHEN 'lt' THEN '<' WHEN 'lte' THEN '<=' END;
BEGIN
    IF v_operator IS NULL THEN
        RAISE EXCEPTION 'unknown comparison %', quote_literal(p_op) USING ERRCODE = '22023';
    END IF;
    IF p_version THEN
        RETURN format('(jsonb_typeof(%1$s) IN (''string'', ''number'')'
                      ' AND analytics_internal.fn_version_key(%1$s #>> ''{}'') %2$s %3$L::numeric[])',
                      p_expr, v_operator, fn_version_key(p_value #>> '{}')::text);
    END IF;
    RETURN CASE jsonb_typeof(p_value)
        WHEN 'string' THEN
            format('(jsonb_typeof(%1$s) IN (''string'', ''number'') AND (%1$s #>> ''{}'') COLLATE "C" %2$s %3$L)',
                   p_expr, v_operator, p_value #>> '{}')
        WHEN 'number' THEN
            format('(CASE WHEN jsonb_typeof(%1$s) = ''number'' THEN (%1$s)::numeric'
                   ' WHEN jsonb_typeof(%1$s) = ''string'' AND (%1$s #>> ''{}'') ~ ''^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?$'''
                   ' THEN (%1$s #>> ''{}'')::numeric END %2$s %3$L::numeric)',
                   p_expr, v_operator, p_value::text)
        WHEN 'boolean' THEN
            format('(jsonb_typeof(%1$s) = ''boolean'' AND %1$s %2$s %3$L::jsonb)', p_expr, v_operator, p_value::text)
    END;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_compare_sql(text, text, jsonb, boolean) IS
    'SQL comparing a stored jsonb property with one value of a cohort property condition (by the value''s type; app versions as versions).';
