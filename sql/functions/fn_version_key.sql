-- analytics_internal.fn_version_key(p_version) -> numeric[]
--
-- Sort key of an app version, so that versions compare part by part as numbers
-- ("1.10" > "1.9", "2" = "2.0" = "2.0.0"): the leading dotted run of digits of p_version
-- ("3.4.1" of "3.4.1-beta"), split on dots, trailing zero parts dropped ("1.0.0" -> {1},
-- "0.0" -> {0}). NULL when p_version does not start with a digit ("unknown", "v2") or is NULL.
-- Cohort filters on app_version compare these keys (analytics_internal.fn_cohort_compare_sql).
--
--   p_version  an app version as stored in tb_event.device ->> 'app_version'
--
-- Errors: none.
--
-- No SET search_path on purpose: it is called per event in compiled cohort queries, and a SET
-- clause would stop the planner from inlining it. The body uses only pg_catalog.
CREATE OR REPLACE FUNCTION analytics_internal.fn_version_key(p_version text)
RETURNS numeric[]
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT pg_catalog.string_to_array(
               pg_catalog.regexp_replace(pg_catalog.substring(p_version, '^[0-9]+(?:\.[0-9]+)*'),
                                         '(\.0+)+$', ''),
               '.')::numeric[]
$$;

COMMENT ON FUNCTION analytics_internal.fn_version_key(text) IS
    'Comparable key of an app version: its leading dotted numbers as numeric[] without trailing zeros ("1.10.0" -> {1,10}); NULL when it has none.';
