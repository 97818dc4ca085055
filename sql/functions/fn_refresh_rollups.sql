-- analytics.fn_refresh_rollups(p_until) -> setof (rollup, invalidated_buckets, materialized_rows, watermark)
--
-- PostgreSQL engine: brings the materialized rollups (analytics_internal.tb_ca_*) up to date,
-- incrementally, rollup by rollup in refresh_order (a hierarchical rollup after its source):
--   1. claims the rows of analytics_internal.tb_rollup_invalidation visible now;
--   2. re-materializes the rollup's buckets before its watermark that those rows touch
--      (late, updated or deleted events), replacing their rows;
--   3. materializes the whole buckets between the watermark and p_until, and moves the
--      watermark there (it never moves back; the bucket holding p_until stays live);
-- then deletes the claimed log rows. Rows logged by transactions that commit meanwhile are
-- kept for the next run, so a concurrent insert is never lost: until then the views aggregate
-- its buckets live. Results are read through the rollup's own query (fn_rollup_query), the same
-- one its view uses, so materialized and live rows cannot differ.
--
-- Idempotent (a second run finds nothing to do) and safe to run concurrently: runs are
-- serialized by a transaction-level advisory lock. It returns one row per rollup:
-- invalidated_buckets re-materialized, materialized_rows written, and the new watermark.
--
--   p_until  materialize whole buckets that end at or before this time (default now())
--
-- Errors: 0A000 on TimescaleDB (continuous aggregates are refreshed by their policies or by
-- CALL analytics.prc_refresh_rollups(), which cannot run inside a function); 22023 p_until
-- NULL or infinite.
--
-- SECURITY DEFINER: maintenance (pg_cron, the server's scheduler) runs it without being granted
-- the internal tables. It executes only SQL built from analytics_internal.tb_rollup.
CREATE OR REPLACE FUNCTION analytics.fn_refresh_rollups(p_until timestamptz DEFAULT now())
RETURNS TABLE (rollup text, invalidated_buckets bigint, materialized_rows bigint, watermark timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_claimed  bigint[];
    v_rollup   analytics_internal.tb_rollup;
    v_until    timestamptz;
    v_stale    text;
    v_rows     bigint;
BEGIN
    IF analytics.fn_engine() <> 'postgresql' THEN
        RAISE EXCEPTION 'fn_refresh_rollups refreshes the PostgreSQL engine''s rollups; this install uses TimescaleDB'
            USING ERRCODE = '0A000',
                  DETAIL = 'refresh_continuous_aggregate cannot run inside a function or transaction.',
                  HINT = 'The refresh policies run by themselves; to refresh now, CALL analytics.prc_refresh_rollups() '
                         'outside a transaction.';
    END IF;
    IF p_until IS NULL OR NOT isfinite(p_until) THEN
        RAISE EXCEPTION 'p_until must be a finite time, not %', coalesce(p_until::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Omit it to refresh up to now().';
    END IF;

    PERFORM pg_advisory_xact_lock(7346221902);

    SELECT coalesce(array_agg(i.pk_rollup_invalidation), '{}')
      INTO v_claimed
    FROM analytics_internal.tb_rollup_invalidation i;

    FOR v_rollup IN SELECT r.* FROM analytics_internal.tb_rollup r ORDER BY r.refresh_order LOOP
        rollup := v_rollup.rollup;
        v_until := greatest(v_rollup.watermark, analytics_internal.fn_time_bucket(v_rollup.bucket_width, p_until));

        -- 2. invalidated buckets before the watermark: replace their rows. The claimed log rows
        -- stay until the end, so that every rollup of this run sees them (and the views keep
        -- aggregating these buckets live until this transaction commits).
        v_stale := analytics_internal.fn_rollup_stale_sql(v_rollup.bucket_width, '$1', '$2');
        EXECUTE format('SELECT count(*) FROM %s AS s', v_stale)
            INTO invalidated_buckets
            USING v_rollup.watermark, v_claimed;
        materialized_rows := 0;
        IF invalidated_buckets > 0 THEN
            EXECUTE format('DELETE FROM analytics_internal.%I m USING %s AS s WHERE m.fk_app = s.fk_app AND m.bucket = s.bucket',
                           'tb_' || v_rollup.rollup, v_stale)
                USING v_rollup.watermark, v_claimed;
            EXECUTE format('INSERT INTO analytics_internal.%I %s', 'tb_' || v_rollup.rollup,
                           analytics_internal.fn_rollup_query(v_rollup.rollup, 'postgresql', p_buckets => v_stale))
                USING v_rollup.watermark, v_claimed;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            materialized_rows := materialized_rows + v_rows;
        END IF;

        -- 3. new whole buckets up to p_until.
        IF v_until > v_rollup.watermark THEN
            EXECUTE format('INSERT INTO analytics_internal.%I %s', 'tb_' || v_rollup.rollup,
                           analytics_internal.fn_rollup_query(v_rollup.rollup, 'postgresql', p_from => '$1', p_to => '$2'))
                USING v_rollup.watermark, v_until;
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            materialized_rows := materialized_rows + v_rows;
        END IF;

        UPDATE analytics_internal.tb_rollup r
           SET watermark = v_until, refreshed_at = now()
         WHERE r.rollup = v_rollup.rollup;
        watermark := v_until;
        RETURN NEXT;
    END LOOP;

    DELETE FROM analytics_internal.tb_rollup_invalidation i WHERE i.pk_rollup_invalidation = ANY (v_claimed);
END
$$;

COMMENT ON FUNCTION analytics.fn_refresh_rollups(timestamptz) IS
    'PostgreSQL engine: incrementally re-materialize invalidated rollup buckets and whole buckets up to p_until; idempotent, serialized by an advisory lock.';
