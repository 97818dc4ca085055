-- analytics.fn_apply_retention(p_range_start) -> setof (range_start, range_end, action, detail, row_count)
--
-- Drops the raw-event chunks (partitions) that have expired (analytics.fn_retention_status),
-- whole, never row by row, oldest first; one row per expired chunk it looked at. For each, in a
-- subtransaction of its own:
--   1. LOCK the chunk IN SHARE MODE (lock_timeout 5 s): from here no event is added or deleted
--      there; its expiry is checked again (a late event of an app with a longer retention may
--      have arrived).
--   2. retention_mode archive: every app-day in it must have a verified archive whose row count
--      and id checksum still match (analytics.fn_archive_plan); else action 'archive first'.
--   3. rollups: every bucket the chunk feeds must be materialized and current
--      (analytics_internal.fn_rollups_settled). PostgreSQL: analytics.fn_refresh_rollups() is
--      run when it is not. TimescaleDB: action 'refresh first' (refresh_continuous_aggregate
--      cannot run in a function; CALL analytics.prc_refresh_rollups() and retry, as
--      `mobile-analytics archive` does).
--   4. record the drop in analytics_internal.tb_event_drop (the ingestion horizon), then
--      PostgreSQL: ALTER TABLE analytics.tb_event DETACH PARTITION, DROP TABLE;
--      TimescaleDB: align the refresh policies with the new horizon, then drop_chunks on exactly
--      that chunk.
-- TimescaleDB drops strictly oldest first (a chunk waits while an older one is kept, action
-- 'wait'): then every raw event left is newer than every dropped range, and no refresh window
-- that starts at a remaining event can reach a dropped range.
-- A DETACH or DROP on a partitioned table (and TimescaleDB's drop) fires no DELETE trigger, so
-- the PostgreSQL engine's materialized rollups keep their rows; the TimescaleDB continuous
-- aggregates keep theirs because no refresh window reaches the dropped range any more. A lock
-- not granted in time or a deadlock (with an insert into that very chunk) gives action 'busy':
-- the next run retries. In retention_mode keep nothing is dropped. Whatever the mode, first
-- aligns TimescaleDB's policies (analytics_internal.fn_sync_retention_policies).
--
-- Runs in the caller's transaction: dropping a partition locks analytics.tb_event exclusively
-- until the transaction ends, so call it last (prc_run_maintenance does) and commit soon.
--
--   p_range_start  only the chunk that starts then (NULL: every expired chunk)
--
-- Errors: those of the steps (a chunk that is busy is reported, not raised).
--
-- SECURITY DEFINER: maintenance and the archive run it without owning the tables.
CREATE OR REPLACE FUNCTION analytics.fn_apply_retention(p_range_start timestamptz DEFAULT NULL)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, action text, detail text, row_count bigint)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_engine        text := analytics.fn_engine();
    v_mode          text := analytics_internal.fn_setting('retention_mode');
    v_grace         interval := analytics_internal.fn_retention_grace();
    v_min_days      integer;
    v_lock_timeout  text := current_setting('lock_timeout');
    v_chunk         record;
    v_ret           record;
    v_unarchived    bigint;
    v_rows          bigint;
BEGIN
    PERFORM analytics_internal.fn_sync_retention_policies();
    IF v_mode = 'keep' THEN
        RETURN;
    END IF;
    -- No chunk expires sooner than with the shortest retention: skip the others unexamined.
    SELECT coalesce(min(a.retention_days), 0) INTO v_min_days FROM analytics.tb_app a;

    FOR v_chunk IN
        SELECT c.*
        FROM analytics_internal.fn_event_chunks() c
        WHERE (p_range_start IS NULL OR c.range_start = p_range_start)
          AND analytics_internal.fn_time_bucket('1 day', c.range_end - interval '1 microsecond') + interval '1 day'
              + make_interval(days => v_min_days) + v_grace <= now()
        ORDER BY c.range_start
    LOOP
        CONTINUE WHEN (analytics_internal.fn_chunk_retention(v_chunk.range_start, v_chunk.range_end)).expires_at > now();
        range_start := v_chunk.range_start;
        range_end := v_chunk.range_end;
        detail := NULL;
        row_count := NULL;
        BEGIN
            PERFORM set_config('lock_timeout', '5s', true);
            EXECUTE format('LOCK TABLE %s IN SHARE MODE', v_chunk.relation);

            IF v_engine = 'timescaledb'
               AND EXISTS (SELECT 1 FROM analytics_internal.fn_event_chunks() o WHERE o.range_start < v_chunk.range_start) THEN
                action := 'wait';
                detail := 'an older chunk is still kept, and TimescaleDB drops chunks oldest first';
                RETURN NEXT;
                CONTINUE;
            END IF;
            v_ret := analytics_internal.fn_chunk_retention(v_chunk.range_start, v_chunk.range_end);
            IF v_ret.expires_at > now() THEN
                action := 'retain';
                detail := format('an app with a longer retention sent events to it: it expires at %s', v_ret.expires_at);
                RETURN NEXT;
                CONTINUE;
            END IF;

            IF v_mode = 'archive' THEN
                SELECT count(*) FILTER (WHERE NOT p.matched), coalesce(sum(p.row_count), 0)
                  INTO v_unarchived, v_rows
                FROM analytics.fn_archive_plan(v_chunk.range_start) p;
                IF v_unarchived > 0 THEN
                    action := 'archive first';
                    detail := format('%s app-day(s) not archived, or changed since they were: run mobile-analytics archive',
                                     v_unarchived);
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            ELSE
                SELECT count(*) INTO v_rows FROM analytics.tb_event e
                WHERE e."timestamp" >= v_chunk.range_start AND e."timestamp" < v_chunk.range_end;
            END IF;

            IF NOT analytics_internal.fn_rollups_settled(v_chunk.range_start, v_chunk.range_end) THEN
                IF v_engine = 'timescaledb' THEN
                    action := 'refresh first';
                    detail := 'the continuous aggregates have changes in this range that are not materialized: '
                              'CALL analytics.prc_refresh_rollups(), then retry';
                    RETURN NEXT;
                    CONTINUE;
                END IF;
                PERFORM analytics.fn_refresh_rollups();
            END IF;

            INSERT INTO analytics_internal.tb_event_drop (range_start, range_end, mode, apps, row_count)
            VALUES (v_chunk.range_start, v_chunk.range_end, v_mode, v_ret.apps, v_rows);
            IF v_engine = 'timescaledb' THEN
                PERFORM analytics_internal.fn_sync_retention_policies();
                PERFORM public.drop_chunks('analytics.tb_event'::regclass,
                                           older_than => v_chunk.range_end, newer_than => v_chunk.range_start);
            ELSE
                EXECUTE format('ALTER TABLE analytics.tb_event DETACH PARTITION %s', v_chunk.relation);
                EXECUTE format('DROP TABLE %s', v_chunk.relation);
            END IF;
            action := 'dropped';
            row_count := v_rows;
            RETURN NEXT;
        EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
            action := 'busy';
            detail := SQLERRM || ' (the next run retries)';
            RETURN NEXT;
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
END
$$;

COMMENT ON FUNCTION analytics.fn_apply_retention(timestamptz) IS
    'Drop expired raw-event chunks whole (after archive and rollup checks under a lock); one row per chunk examined.';
