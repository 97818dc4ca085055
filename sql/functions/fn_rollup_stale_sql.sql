-- analytics_internal.fn_rollup_stale_sql(p_width, p_below, p_ids) -> text
--
-- PostgreSQL engine: SQL text of a subquery of the (fk_app, bucket) pairs, of width p_width and
-- starting before p_below, that hold a range of analytics_internal.tb_rollup_invalidation,
-- i.e. whose raw events changed since the last refresh. Rollup views aggregate these buckets
-- live instead of reading their stale materialized rows; fn_refresh_rollups re-materializes
-- them. Text rather than a set-returning function so that the views read the internal log with
-- their owner's rights: a reader of a rollup needs no grant on any internal routine.
--
--   p_width  the rollup's bucket width ('1 hour', '1 day')
--   p_below  SQL expression: only buckets that start before it (the rollup's watermark)
--   p_ids    SQL expression of a bigint[]: only these log rows (NULL: every row)
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_stale_sql(p_width interval, p_below text, p_ids text DEFAULT NULL)
RETURNS text
LANGUAGE sql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
    -- A log row covers one UTC hour (tb_rollup_invalidation_one_hour), so it lies inside exactly
    -- one bucket of every rollup: no generate_series, whose unknown row count would inflate the
    -- views' cost estimates (and wake JIT for a millisecond query).
    SELECT format('(SELECT DISTINCT l.fk_app, %1$s AS bucket'
                  ' FROM analytics_internal.tb_rollup_invalidation l'
                  ' WHERE l.range_start < %2$s AND %1$s < %2$s%3$s)',
                  analytics_internal.fn_rollup_bucket_sql(p_width, 'l.range_start'),
                  p_below,
                  CASE WHEN p_ids IS NOT NULL THEN format(' AND l.pk_rollup_invalidation = ANY (%s)', p_ids) ELSE '' END)
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_stale_sql(interval, text, text) IS
    'PostgreSQL engine: SQL text of the (fk_app, bucket) pairs before a watermark whose raw events changed since the last refresh.';
