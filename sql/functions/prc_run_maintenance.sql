-- CALL analytics.prc_run_maintenance() -> (partitions_created, refreshed_rollups, event_keys_purged,
--                                          chunks_dropped)
--
-- The periodic maintenance entry point, for pg_cron, a DBA or the server's scheduler (e.g.
-- every 5 minutes). Several server instances may all call it: a session advisory lock
-- (pg_try_advisory_lock) lets one run, and the others return at once with a NOTICE.
--   PostgreSQL engine: creates tb_event partitions ahead and moves stray rows out of the default
--     partition (analytics.fn_create_partitions), then refreshes the rollups
--     (analytics.fn_refresh_rollups).
--   Both engines: purges analytics_internal.tb_event_key rows older than each app's
--     retention_days (events that old are refused as too_old, so their ids need no dedup).
--   Both engines: brings the per-user activity summary of analytics.fn_retention up to today
--     (analytics.fn_refresh_user_activity) and the local-day summary that analytics.fn_metrics
--     reads for apps outside UTC up to their local today (analytics.fn_refresh_local_days), and
--     recomputes cohorts last refreshed over an hour
--     ago (analytics.fn_refresh_cohorts).
--   Both engines, last: raw-event retention (analytics.fn_apply_retention): drops the expired
--     chunks that retention_mode allows (archived ones in mode archive); chunks_dropped counts
--     them. On TimescaleDB it also aligns the retention and refresh policies with the apps'
--     retention. Last, because dropping a partition locks analytics.tb_event until commit.
-- On TimescaleDB the refresh policies (background jobs) refresh the continuous aggregates.
-- Everything runs in the caller's transaction.
--
-- The INOUT parameters are its report (CALL it without arguments; it returns one row).
--
-- Errors: those of the steps; the lock is released either way.
--
-- SECURITY DEFINER: the scheduler's role runs it without being granted the internal tables.
-- (Procedures carry no volatility.)
CREATE OR REPLACE PROCEDURE analytics.prc_run_maintenance(
    INOUT partitions_created  integer DEFAULT NULL,
    INOUT refreshed_rollups   integer DEFAULT NULL,
    INOUT event_keys_purged   bigint DEFAULT NULL,
    INOUT chunks_dropped      integer DEFAULT NULL)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_lock    constant bigint := 7346221903;
    v_app     record;
    v_purged  bigint;
BEGIN
    partitions_created := 0;
    refreshed_rollups := 0;
    event_keys_purged := 0;
    chunks_dropped := 0;
    IF NOT pg_try_advisory_lock(v_lock) THEN
        RAISE NOTICE 'maintenance is already running in another session; skipped'
            USING HINT = 'Nothing to do: that run covers this one.';
        RETURN;
    END IF;

    BEGIN
        IF analytics.fn_engine() = 'postgresql' THEN
            partitions_created := analytics.fn_create_partitions();
            SELECT count(*) INTO refreshed_rollups FROM analytics.fn_refresh_rollups();
        END IF;

        -- App by app, each a range of tb_event_key_app_time_idx (migration 0012) with its cut-off
        -- as a value: one DELETE joined to tb_app could not estimate the per-app cut-offs and
        -- may read the whole ledger, which holds a key per retained event.
        FOR v_app IN SELECT a.pk_app, now() - make_interval(days => a.retention_days) AS cutoff
                     FROM analytics.tb_app a ORDER BY a.pk_app LOOP
            DELETE FROM analytics_internal.tb_event_key k
            WHERE k.fk_app = v_app.pk_app AND k."timestamp" < v_app.cutoff;
            GET DIAGNOSTICS v_purged = ROW_COUNT;
            event_keys_purged := event_keys_purged + v_purged;
        END LOOP;

        -- Retention and cohorts, after the rollups they read: the per-user activity summary up
        -- to today, then the cohorts not recomputed for an hour (their members and user_count).
        PERFORM analytics.fn_refresh_user_activity();
        PERFORM analytics.fn_refresh_local_days();
        PERFORM analytics.fn_refresh_cohorts();

        SELECT count(*) FILTER (WHERE r.action = 'dropped') INTO chunks_dropped FROM analytics.fn_apply_retention() r;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(v_lock);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(v_lock);
END
$$;

COMMENT ON PROCEDURE analytics.prc_run_maintenance(integer, integer, bigint, integer) IS
    'Periodic maintenance, run once at a time across sessions: partitions and rollup refresh (PostgreSQL engine), purge of expired event ids and raw-event retention (both).';
