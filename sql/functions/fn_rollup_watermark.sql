-- analytics_internal.fn_rollup_watermark(p_rollup) -> timestamptz
--
-- PostgreSQL engine: the watermark of a rollup (analytics_internal.tb_rollup.watermark): its
-- buckets before it are materialized; -infinity for an unknown rollup or one never refreshed.
-- The rollup readers (fn_rollup_reader_create) use it rather than a subquery: a function call
-- (STABLE, not inlined: it reads a table) lets the planner inline a reader called with it as an
-- argument, and lets the executor prune raw-event partitions with it when the scan starts.
--
--   p_rollup  a rollup registered in analytics_internal.tb_rollup
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_watermark(p_rollup text)
RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
    SELECT coalesce(max(r.watermark), '-infinity') FROM analytics_internal.tb_rollup r WHERE r.rollup = p_rollup
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_watermark(text) IS
    'PostgreSQL engine: the watermark of a rollup (-infinity when unknown or never refreshed), for the rollup readers.';
