-- analytics_internal.fn_rollups_settled(p_start, p_end) -> boolean
--
-- Whether every rollup bucket that the raw events in [p_start, p_end) feed is materialized and
-- up to date, so that dropping those events leaves the rollups' answers unchanged:
--   PostgreSQL:  no row of analytics_internal.tb_rollup_invalidation falls in the UTC days the
--                range touches, and every rollup's watermark is past them (otherwise
--                analytics.fn_refresh_rollups() settles them);
--   TimescaleDB: neither of TimescaleDB's invalidation logs holds a change overlapping the range
--                for a continuous aggregate of this package (otherwise
--                CALL analytics.prc_refresh_rollups() settles them). These are TimescaleDB's
--                catalog tables: when they cannot be read, the answer is false (not settled),
--                which keeps the chunk rather than risk the rollups.
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollups_settled(p_start timestamptz, p_end timestamptz)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_day_start  timestamptz := analytics_internal.fn_time_bucket('1 day', p_start);
    v_day_end    timestamptz := analytics_internal.fn_time_bucket('1 day', p_end - interval '1 microsecond') + interval '1 day';
    -- TimescaleDB keeps times in its logs as microseconds since the Unix epoch.
    v_lo         bigint := (extract(epoch FROM p_start) * 1000000)::bigint;
    v_hi         bigint := (extract(epoch FROM p_end) * 1000000)::bigint;
BEGIN
    IF analytics.fn_engine() = 'postgresql' THEN
        RETURN NOT EXISTS (SELECT 1 FROM analytics_internal.tb_rollup_invalidation i
                           WHERE i.range_start < v_day_end AND i.range_end > v_day_start)
           AND NOT EXISTS (SELECT 1 FROM analytics_internal.tb_rollup r WHERE r.watermark < v_day_end);
    END IF;

    -- Strict comparisons: dropping a chunk logs [its start, its end] with the end included,
    -- which touches the next chunk's first microsecond without being a change there.
    BEGIN
        RETURN NOT EXISTS (
                SELECT 1
                FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l
                WHERE l.hypertable_id IN (SELECT ca.raw_hypertable_id FROM _timescaledb_catalog.continuous_agg ca
                                          WHERE ca.user_view_schema = 'analytics')
                  AND l.lowest_modified_value < v_hi AND l.greatest_modified_value > v_lo)
           AND NOT EXISTS (
                SELECT 1
                FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log m
                JOIN _timescaledb_catalog.continuous_agg ca ON ca.mat_hypertable_id = m.materialization_id
                WHERE ca.user_view_schema = 'analytics'
                  AND m.lowest_modified_value < v_hi AND m.greatest_modified_value > v_lo);
    EXCEPTION WHEN undefined_table OR undefined_column OR insufficient_privilege THEN
        RETURN false;
    END;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollups_settled(timestamptz, timestamptz) IS
    'Whether the rollup buckets fed by a raw-event range are materialized and up to date (safe to drop the range).';
