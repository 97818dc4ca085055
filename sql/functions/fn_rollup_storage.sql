-- analytics_internal.fn_rollup_storage(p_rollup) -> regclass
--
-- The table that holds a rollup's materialized rows on this install's engine: on PostgreSQL
-- analytics_internal.tb_<rollup>; on TimescaleDB the continuous aggregate's materialization
-- hypertable (its name changes when the aggregate is recreated, hence the lookup). Its columns
-- are the rollup's own (bucket, dimensions, measures) on both engines. For the rare writes that
-- must change materialized rows which can no longer be recomputed from raw events (per-user
-- deletion of days past retention).
--
--   p_rollup  a rollup registered in analytics_internal.tb_rollup, e.g. 'ca_user_daily'
--
-- Errors: P0002 no such rollup (or, on TimescaleDB, no such continuous aggregate).
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_storage(p_rollup text)
RETURNS regclass
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_table regclass;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM analytics_internal.tb_rollup r WHERE r.rollup = p_rollup) THEN
        v_table := NULL;
    ELSIF analytics.fn_engine() = 'timescaledb' THEN
        SELECT format('%I.%I', c.materialization_hypertable_schema, c.materialization_hypertable_name)::regclass
          INTO v_table
        FROM timescaledb_information.continuous_aggregates c
        WHERE c.view_schema = 'analytics' AND c.view_name = p_rollup;
    ELSE
        v_table := to_regclass(format('analytics_internal.%I', 'tb_' || p_rollup));
    END IF;
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'rollup % has no materialized table', coalesce(quote_literal(p_rollup), 'NULL')
            USING ERRCODE = 'P0002',
                  HINT = 'Rollups are registered by the files in sql/continuous_aggregates/; run migrate.';
    END IF;
    RETURN v_table;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_storage(text) IS
    'The table holding a rollup''s materialized rows: tb_<rollup> on PostgreSQL, the continuous aggregate''s materialization hypertable on TimescaleDB.';
