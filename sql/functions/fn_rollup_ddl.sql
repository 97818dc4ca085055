-- analytics_internal.fn_rollup_ddl(p_rollup) -> setof text
--
-- The statements that create a registered rollup on this install's engine, each idempotent.
-- A DO block in the rollup's file in sql/continuous_aggregates/ EXECUTEs them in order.
--
-- TimescaleDB (a continuous aggregate with real-time aggregation and a refresh policy):
--   CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.<rollup>
--       WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS <query> WITH NO DATA
--   SELECT public.add_continuous_aggregate_policy(..., start_offset => NULL,
--       end_offset => <rollup_refresh_lag>, schedule_interval => ..., if_not_exists => true)
-- WITH NO DATA is what lets the CREATE run inside the DO block (a transaction): creating with
-- data would refresh, which TimescaleDB refuses inside a transaction. The policy's NULL
-- start_offset lets each run re-materialize late events of any age; it only recomputes
-- invalidated buckets, so it stays incremental. The policy is added only when the aggregate has
-- none: retention later moves its start_offset (analytics_internal.fn_sync_retention_policies),
-- and add_continuous_aggregate_policy refuses a policy that differs from the existing one even
-- with if_not_exists.
--
-- PostgreSQL (a view with the same name and columns):
--   CREATE OR REPLACE VIEW analytics.<rollup> AS
--       materialized rows of analytics_internal.tb_<rollup> before the watermark, except
--       buckets in the invalidation log
--   UNION ALL <query> over source rows at or after the watermark
--   UNION ALL <query> over source rows in the invalidated buckets
-- The three branches cover disjoint buckets, so every bucket is counted exactly once and an
-- event shows as soon as it is committed.
--
-- Both engines, last: analytics_internal.fn_rollup_reader_create(<rollup>), the function that
-- reads one app's rows of a time range (what fn_metrics reads).
--
--   p_rollup  a rollup registered in analytics_internal.tb_rollup
--
-- Errors: P0002 unknown rollup (from fn_rollup_query).
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_ddl(p_rollup text)
RETURNS SETOF text
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_engine     text := analytics.fn_engine();
    v_width      interval := (SELECT r.bucket_width FROM analytics_internal.tb_rollup r WHERE r.rollup = p_rollup);
    -- Always one non-NULL value (an aggregate), so that partitions before it are pruned at run time.
    v_watermark  text := format('(SELECT coalesce(max(r.watermark), ''-infinity'') FROM analytics_internal.tb_rollup r'
                                ' WHERE r.rollup = %L)', p_rollup);
    v_stale      text;
BEGIN
    IF v_engine = 'timescaledb' THEN
        RETURN NEXT format('CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.%I'
                           ' WITH (timescaledb.continuous, timescaledb.materialized_only = false)'
                           ' AS %s WITH NO DATA',
                           p_rollup, analytics_internal.fn_rollup_query(p_rollup, v_engine));
        RETURN NEXT format('SELECT public.add_continuous_aggregate_policy(%L::regclass, start_offset => NULL::interval,'
                           ' end_offset => %L::interval, schedule_interval => %L::interval, if_not_exists => true)'
                           ' WHERE NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs j'
                           ' WHERE j.proc_name = ''policy_refresh_continuous_aggregate'''
                           ' AND j.hypertable_schema = ''analytics'' AND j.hypertable_name = %L)',
                           'analytics.' || quote_ident(p_rollup),
                           analytics_internal.fn_setting('rollup_refresh_lag'),
                           CASE WHEN v_width < interval '1 day' THEN interval '15 minutes' ELSE interval '1 hour' END,
                           p_rollup);
        RETURN NEXT format('SELECT analytics_internal.fn_rollup_reader_create(%L)', p_rollup);
        RETURN;
    END IF;

    v_stale := analytics_internal.fn_rollup_stale_sql(v_width, v_watermark);
    RETURN NEXT format('CREATE OR REPLACE VIEW analytics.%1$I AS'
                       ' SELECT m.* FROM analytics_internal.%2$I m'
                       ' WHERE m.bucket < %3$s'
                       ' AND NOT EXISTS (SELECT 1 FROM %4$s s WHERE s.fk_app = m.fk_app AND s.bucket = m.bucket)'
                       ' UNION ALL %5$s'
                       ' UNION ALL %6$s',
                       p_rollup, 'tb_' || p_rollup, v_watermark, v_stale,
                       analytics_internal.fn_rollup_query(p_rollup, v_engine, p_from => v_watermark),
                       analytics_internal.fn_rollup_query(p_rollup, v_engine, p_buckets => v_stale));
    RETURN NEXT format('SELECT analytics_internal.fn_rollup_reader_create(%L)', p_rollup);
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_ddl(text) IS
    'Idempotent statements creating a registered rollup: a continuous aggregate and its policy on TimescaleDB, a real-time view on PostgreSQL.';
