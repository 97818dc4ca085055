-- analytics_internal.fn_rollup_bucket_sql(p_width, p_time) -> text
--
-- PostgreSQL engine: SQL text of the expression that buckets p_time like
-- analytics_internal.fn_time_bucket, written with pg_catalog.date_bin itself so that rollup
-- views need no grant on an internal routine (a caller must be allowed to run a function
-- before the planner inlines it).
--
--   p_width  bucket width ('1 hour', '1 day')
--   p_time   SQL expression of a timestamptz
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_bucket_sql(p_width interval, p_time text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
    -- the origin of fn_time_bucket (TimescaleDB's): UTC hours and days on both engines
    SELECT format('pg_catalog.date_bin(%L::interval, %s, %L::timestamptz)', p_width, p_time, '2000-01-03 00:00:00+00')
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_bucket_sql(interval, text) IS
    'PostgreSQL engine: SQL text bucketing a time like fn_time_bucket, with pg_catalog.date_bin.';
