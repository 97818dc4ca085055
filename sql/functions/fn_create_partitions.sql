-- analytics.fn_create_partitions(p_back, p_ahead) -> integer (partitions created)
--
-- PostgreSQL engine: makes sure analytics.tb_event has a partition for every chunk from
-- p_back chunks ago (NULL: 3) to p_ahead chunks ahead (NULL: setting partitions_ahead), then moves
-- rows that landed in the default partition into partitions of their own, creating those.
-- Moving detaches the default partition for the length of this transaction: concurrent
-- inserts wait for it rather than fail. On TimescaleDB it does nothing (chunks are automatic).
CREATE OR REPLACE FUNCTION analytics.fn_create_partitions(p_back integer DEFAULT 3, p_ahead integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_interval interval := analytics_internal.fn_setting('chunk_interval')::interval;
    v_ahead    integer := coalesce(p_ahead, analytics_internal.fn_setting('partitions_ahead')::integer);
    v_back     integer := coalesce(p_back, 3);
    v_created  integer := 0;
    v_bounds   record;
    v_time     timestamptz;
    v_stray    timestamptz[];
BEGIN
    IF analytics.fn_engine() <> 'postgresql' THEN
        RETURN 0;
    END IF;
    IF v_back < 0 OR v_ahead < 0 OR v_back > 1000 OR v_ahead > 1000 THEN
        RAISE EXCEPTION 'partition window (% back, % ahead) is out of range', v_back, v_ahead
            USING ERRCODE = '22023', HINT = 'Use 0 to 1000 chunks each way.';
    END IF;

    -- Chunks that rows in the default partition belong to. The parent is locked first, in the
    -- mode DETACH needs anyway, so that no insert slips in between and no lock is upgraded.
    IF EXISTS (SELECT 1 FROM analytics.tb_event_default) THEN
        LOCK TABLE analytics.tb_event IN ACCESS EXCLUSIVE MODE;
    END IF;
    SELECT array_agg(DISTINCT (analytics_internal.fn_partition_bounds(d."timestamp")).range_start)
      INTO v_stray
    FROM analytics.tb_event_default d;

    IF v_stray IS NOT NULL THEN
        ALTER TABLE analytics.tb_event DETACH PARTITION analytics.tb_event_default;
    END IF;

    FOR v_time IN
        SELECT g FROM generate_series(now() - v_back * v_interval, now() + v_ahead * v_interval, v_interval) g
        UNION
        SELECT unnest(coalesce(v_stray, '{}'))
    LOOP
        v_bounds := analytics_internal.fn_partition_bounds(v_time);
        IF to_regclass(format('analytics.%I', v_bounds.partition_name)) IS NULL THEN
            EXECUTE format('CREATE TABLE analytics.%I PARTITION OF analytics.tb_event FOR VALUES FROM (%L) TO (%L)',
                           v_bounds.partition_name, v_bounds.range_start, v_bounds.range_end);
            v_created := v_created + 1;
        END IF;
    END LOOP;

    IF v_stray IS NOT NULL THEN
        INSERT INTO analytics.tb_event OVERRIDING SYSTEM VALUE SELECT * FROM analytics.tb_event_default;
        TRUNCATE analytics.tb_event_default;
        ALTER TABLE analytics.tb_event ATTACH PARTITION analytics.tb_event_default DEFAULT;
    END IF;
    RETURN v_created;
END
$$;

COMMENT ON FUNCTION analytics.fn_create_partitions(integer, integer) IS
    'PostgreSQL engine: create tb_event partitions around now and move rows out of the default partition.';
