-- analytics_internal.fn_partition_bounds(p_time) -> (range_start, range_end, partition_name)
-- The partition of analytics.tb_event (PostgreSQL engine) that holds p_time: ranges are
-- chunk_interval long and aligned on the Unix epoch in UTC, like TimescaleDB's chunks.
CREATE OR REPLACE FUNCTION analytics_internal.fn_partition_bounds(
    p_time timestamptz,
    OUT range_start timestamptz,
    OUT range_end timestamptz,
    OUT partition_name text)
RETURNS record
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
DECLARE
    v_seconds numeric := extract(epoch FROM analytics_internal.fn_setting('chunk_interval')::interval);
BEGIN
    range_start := to_timestamp((floor(extract(epoch FROM p_time) / v_seconds) * v_seconds)::float8);
    range_end := range_start + make_interval(secs => v_seconds::float8);
    partition_name := 'tb_event_p' || to_char(range_start AT TIME ZONE 'UTC',
                                             CASE WHEN v_seconds % 86400 = 0 THEN 'YYYYMMDD' ELSE 'YYYYMMDD"_"HH24MI' END);
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_partition_bounds(timestamptz) IS
    'Range and name of the tb_event partition that holds a time (PostgreSQL engine).';
