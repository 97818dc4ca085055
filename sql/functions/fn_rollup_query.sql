-- analytics_internal.fn_rollup_query(p_rollup, p_engine, p_from, p_to, p_buckets) -> text
--
-- The SELECT that computes a registered rollup from its source, as SQL text:
--
--     SELECT <bucket> AS bucket, <dimensions>, <measures>
--     FROM <source>  |  <p_buckets> AS i(inv_app, inv_bucket) CROSS JOIN LATERAL (<source rows of that bucket>) s
--     [WHERE <source_filter> AND <time> >= <p_from> AND <time> < <p_to>]
--     GROUP BY <bucket and dimensions>
--
-- It is the one definition of each rollup: the TimescaleDB continuous aggregate, the live
-- branches of the PostgreSQL engine's view and fn_refresh_rollups' materialization are all
-- built from it, so they cannot disagree. On PostgreSQL, a rollup whose source is another
-- rollup reads that rollup's query (bounded by the same times, which are bucket-aligned) as a
-- subquery, not its view.
--
--   p_rollup   a rollup registered in analytics_internal.tb_rollup
--   p_engine   'timescaledb' (buckets with public.time_bucket) or 'postgresql' (date_bin, see
--              fn_rollup_bucket_sql)
--   p_from     SQL expression: only source rows at or after it (NULL: no lower bound)
--   p_to       SQL expression: only source rows before it (NULL: no upper bound)
--   p_buckets  SQL text of a subquery of (fk_app, bucket) rows, e.g. fn_rollup_stale_sql's:
--              only source rows in those buckets of those apps (NULL: all)
--   p_rows     SQL text of a FROM item that yields the source's rows (columns as the source's),
--              aggregated instead of the source itself, e.g. a rollup reader's call; its own
--              bounds are the caller's business (p_from, p_to and p_buckets still apply); with
--              p_buckets it is read once per bucket and may use i.inv_app and i.inv_bucket
--
-- Errors: P0002 unknown rollup; 22023 unknown engine.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_query(
    p_rollup   text,
    p_engine   text,
    p_from     text DEFAULT NULL,
    p_to       text DEFAULT NULL,
    p_buckets  text DEFAULT NULL,
    p_rows     text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_rollup      analytics_internal.tb_rollup;
    v_bucket      text;
    v_conditions  text[];
    v_from_clause text;
    v_inner       text;
    v_bucket_end  text;
BEGIN
    SELECT r.* INTO v_rollup FROM analytics_internal.tb_rollup r WHERE r.rollup = p_rollup;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rollup % is not registered', coalesce(quote_literal(p_rollup), 'NULL')
            USING ERRCODE = 'P0002',
                  HINT = 'Rollups are registered by the files in sql/continuous_aggregates/; run migrate.';
    END IF;

    v_bucket := CASE p_engine
        WHEN 'timescaledb' THEN format('public.time_bucket(%L::interval, %s)', v_rollup.bucket_width, v_rollup.time_column)
        WHEN 'postgresql' THEN analytics_internal.fn_rollup_bucket_sql(v_rollup.bucket_width, v_rollup.time_column)
    END;
    IF v_bucket IS NULL THEN
        RAISE EXCEPTION 'unknown engine %', coalesce(quote_literal(p_engine), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use timescaledb or postgresql.';
    END IF;

    v_conditions := array_remove(ARRAY[
        '(' || v_rollup.source_filter || ')',
        CASE WHEN p_from IS NOT NULL THEN format('%s >= %s', v_rollup.time_column, p_from) END,
        CASE WHEN p_to IS NOT NULL THEN format('%s < %s', v_rollup.time_column, p_to) END], NULL);
    -- On PostgreSQL a hierarchical rollup reads its source rollup's query over the raw events,
    -- bounded alike, rather than the source's view: nesting the views' three branches inside
    -- each other multiplies their cost estimates until JIT compiles every query for seconds.
    SELECT r.rollup INTO v_inner FROM analytics_internal.tb_rollup r WHERE 'analytics.' || r.rollup = v_rollup.source;
    IF p_engine <> 'postgresql' OR p_rows IS NOT NULL THEN
        v_inner := NULL;
    END IF;

    IF p_buckets IS NULL THEN
        v_from_clause := CASE WHEN p_rows IS NOT NULL THEN p_rows
                              WHEN v_inner IS NULL THEN v_rollup.source
                              ELSE format('(%s) AS s', analytics_internal.fn_rollup_query(v_inner, p_engine, p_from, p_to)) END;
    ELSE
        -- One index range scan of the source per bucket: OFFSET 0 keeps the LATERAL subquery
        -- from being flattened into a join that the planner could turn into a full scan.
        v_bucket_end := format('i.inv_bucket + %L::interval', v_rollup.bucket_width);
        v_from_clause := format('%1$s AS i(inv_app, inv_bucket) CROSS JOIN LATERAL (SELECT * FROM %2$s'
                                ' WHERE fk_app = i.inv_app AND %3$s >= i.inv_bucket AND %3$s < %4$s OFFSET 0) AS s',
                                p_buckets,
                                CASE WHEN p_rows IS NOT NULL THEN p_rows
                                     WHEN v_inner IS NULL THEN v_rollup.source
                                     ELSE format('(%s) AS src', analytics_internal.fn_rollup_query(
                                              v_inner, p_engine, 'i.inv_bucket', v_bucket_end)) END,
                                v_rollup.time_column, v_bucket_end);
    END IF;

    RETURN format('SELECT %s AS bucket, %s, %s FROM %s%s GROUP BY %s',
                  v_bucket,
                  array_to_string(v_rollup.dimensions, ', '),
                  array_to_string(v_rollup.measures, ', '),
                  v_from_clause,
                  CASE WHEN cardinality(v_conditions) > 0
                       THEN ' WHERE ' || array_to_string(v_conditions, ' AND ') ELSE '' END,
                  (SELECT string_agg(g::text, ', ') FROM generate_series(1, 1 + cardinality(v_rollup.dimensions)) g));
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_query(text, text, text, text, text, text) IS
    'SQL text of the SELECT that computes a registered rollup, optionally limited to a time range or to given (app, bucket) pairs.';
