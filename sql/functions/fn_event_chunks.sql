-- analytics_internal.fn_event_chunks() -> setof (relation, range_start, range_end)
--
-- The chunks of analytics.tb_event, oldest first: TimescaleDB's chunks, or on PostgreSQL the
-- range partitions (the default partition is no chunk: maintenance moves its rows out). The
-- unit that retention drops and the archive exports.
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_event_chunks()
RETURNS TABLE (relation regclass, range_start timestamptz, range_end timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
BEGIN
    IF analytics.fn_engine() = 'timescaledb' THEN
        RETURN QUERY
            SELECT format('%I.%I', c.chunk_schema, c.chunk_name)::regclass, c.range_start, c.range_end
            FROM timescaledb_information.chunks c
            WHERE c.hypertable_schema = 'analytics' AND c.hypertable_name = 'tb_event'
            ORDER BY c.range_start;
        RETURN;
    END IF;
    -- The bound reads FOR VALUES FROM ('…') TO ('…'), printed in this session's time zone and
    -- read back in the same one.
    RETURN QUERY
        SELECT p.oid::regclass, m[1]::timestamptz, m[2]::timestamptz
        FROM pg_inherits i
        JOIN pg_class p ON p.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(p.relpartbound, p.oid),
                                        '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m
        WHERE i.inhparent = 'analytics.tb_event'::regclass
          AND m IS NOT NULL  -- the default partition
        ORDER BY 2;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_event_chunks() IS
    'Chunks (TimescaleDB) or range partitions (PostgreSQL) of analytics.tb_event with their time ranges, oldest first.';
