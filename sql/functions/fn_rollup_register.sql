-- analytics_internal.fn_rollup_register(p_rollup, p_bucket_width, p_refresh_order, p_source,
--     p_time_column, p_dimensions, p_measures, p_source_filter) -> void
--
-- Records a rollup's definition in analytics_internal.tb_rollup, once. Each file in
-- sql/continuous_aggregates/ calls it before creating its rollup, and every migrate re-runs
-- those files: registering the same definition again changes nothing.
--
--   p_rollup         name of the rollup view in schema analytics (ca_...)
--   p_bucket_width   '1 hour' or '1 day'
--   p_refresh_order  rollups are refreshed in this order (a hierarchical rollup after its source)
--   p_source         relation aggregated: analytics.tb_event or a finer rollup
--   p_time_column    column of p_source that is bucketed ("timestamp" or bucket)
--   p_dimensions     grouped select-list items, after bucket (written over p_source's columns)
--   p_measures       aggregate select-list items
--   p_source_filter  condition on p_source's rows (NULL: all rows)
--
-- Errors: 55000 when the rollup is already registered with another definition. A rollup's
-- columns are fixed once installed (TimescaleDB cannot alter a continuous aggregate's query):
-- change one with a migration that drops it, its table and its registry row, so that the next
-- migrate creates it anew.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_register(
    p_rollup         text,
    p_bucket_width   interval,
    p_refresh_order  integer,
    p_source         text,
    p_time_column    text,
    p_dimensions     text[],
    p_measures       text[],
    p_source_filter  text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_old analytics_internal.tb_rollup;
BEGIN
    INSERT INTO analytics_internal.tb_rollup
        (rollup, bucket_width, refresh_order, source, time_column, dimensions, measures, source_filter)
    VALUES (p_rollup, p_bucket_width, p_refresh_order, p_source, p_time_column, p_dimensions, p_measures, p_source_filter)
    ON CONFLICT (rollup) DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;

    SELECT r.* INTO v_old FROM analytics_internal.tb_rollup r WHERE r.rollup = p_rollup;
    IF (v_old.bucket_width, v_old.refresh_order, v_old.source, v_old.time_column, v_old.dimensions,
        v_old.measures, v_old.source_filter)
       IS DISTINCT FROM
       (p_bucket_width, p_refresh_order, p_source, p_time_column, p_dimensions, p_measures, p_source_filter) THEN
        RAISE EXCEPTION 'rollup analytics.% changed after it was installed', p_rollup
            USING ERRCODE = '55000',
                  DETAIL = 'analytics_internal.tb_rollup holds another definition for it.',
                  HINT = format('Add a migration that drops analytics.%1$s (CASCADE), analytics_internal.tb_%1$s '
                                'and its tb_rollup row, and creates the new table; the next migrate recreates '
                                'the rollup, which then fills again from the retained raw events.', p_rollup);
    END IF;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_register(text, interval, integer, text, text, text[], text[], text) IS
    'Record a rollup''s definition in analytics_internal.tb_rollup once; refuse a changed definition (55000).';
