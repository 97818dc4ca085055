-- CALL analytics.prc_delete_user(p_app, p_user_id, p_anonymous_ids, p_requested_by)
--     -> (deletion_id, deleted_events, deleted_user_days, deleted_cohort_memberships, oldest_event_at)
--
-- analytics.fn_delete_user, then on TimescaleDB the refresh that makes every continuous
-- aggregate forget the person at once instead of at the next policy run: the deletion commits,
-- then each aggregate is refreshed (in refresh_order, hourly before daily, a COMMIT after
-- each) over [the UTC day of the oldest deleted event, now() - rollup_refresh_lag). Only the
-- buckets the DELETE invalidated are recomputed; later ones are real-time anyway. This is what
-- the GraphQL deleteUser mutation calls. The window never starts before the retention
-- horizon (analytics_internal.fn_refresh_horizon), as in prc_refresh_rollups: deleted events
-- older than that, if any, are left to count in the anonymous aggregates like any day past
-- retention. On PostgreSQL the views are right as soon as
-- fn_delete_user commits, so it is just that call (and may run inside a transaction).
--
-- Parameters: as fn_delete_user. The INOUT parameters are its report: CALL it without them.
--
-- Errors: those of fn_delete_user (nothing deleted). TimescaleDB: call it outside a transaction
-- block; inside one the COMMIT fails (2D000) and nothing is deleted. If a refresh fails after
-- the deletion committed, the deletion stands and the refresh policies finish the job.
--
-- No SET search_path on purpose, and SECURITY INVOKER: a procedure with a SET clause (or
-- SECURITY DEFINER) runs atomically and could not COMMIT. Every object is schema-qualified;
-- the deletion itself runs in the SECURITY DEFINER fn_delete_user. (Procedures carry no
-- volatility.)
CREATE OR REPLACE PROCEDURE analytics.prc_delete_user(
    p_app                              text,
    p_user_id                          text,
    p_anonymous_ids                    text[] DEFAULT NULL,
    p_requested_by                     text DEFAULT NULL,
    INOUT deletion_id                  uuid DEFAULT NULL,
    INOUT deleted_events               bigint DEFAULT NULL,
    INOUT deleted_user_days            bigint DEFAULT NULL,
    INOUT deleted_cohort_memberships   bigint DEFAULT NULL,
    INOUT oldest_event_at              timestamptz DEFAULT NULL)
LANGUAGE plpgsql
SECURITY INVOKER
AS $$
DECLARE
    v_rollups  text[];
    v_rollup   text;
    v_from     timestamptz;
    v_until    timestamptz;
    v_horizon  timestamptz;
BEGIN
    SELECT d.deletion_id, d.deleted_events, d.deleted_user_days, d.deleted_cohort_memberships, d.oldest_event_at
      INTO deletion_id, deleted_events, deleted_user_days, deleted_cohort_memberships, oldest_event_at
    FROM analytics.fn_delete_user(p_app, p_user_id, p_anonymous_ids, p_requested_by) d;

    IF analytics.fn_engine() <> 'timescaledb' OR oldest_event_at IS NULL THEN
        RETURN;
    END IF;
    -- The deletion stands on its own before any refresh (which commits by itself anyway).
    COMMIT;

    v_from := pg_catalog.date_trunc('day', oldest_event_at, 'UTC');
    -- Never before the retention horizon (docs/lifecycle.md): TimescaleDB logs a dropped chunk's
    -- range as invalidated, and refreshing it would erase the rollups' history there. (Looked up
    -- by name so that this file does not depend on the lifecycle functions being installed.)
    IF pg_catalog.to_regprocedure('analytics_internal.fn_refresh_horizon()') IS NOT NULL THEN
        EXECUTE 'SELECT analytics_internal.fn_refresh_horizon()' INTO v_horizon;
        v_from := greatest(v_from, v_horizon);
    END IF;
    v_until := pg_catalog.now() - analytics_internal.fn_setting('rollup_refresh_lag')::interval;
    IF v_from >= v_until THEN
        RETURN;  -- only the real-time part was touched
    END IF;
    SELECT pg_catalog.array_agg(r.rollup ORDER BY r.refresh_order)
      INTO v_rollups
    FROM analytics_internal.tb_rollup r;
    FOREACH v_rollup IN ARRAY coalesce(v_rollups, '{}') LOOP
        CALL public.refresh_continuous_aggregate(pg_catalog.format('analytics.%I', v_rollup)::regclass, v_from, v_until);
        -- As in prc_refresh_rollups: a daily aggregate refreshed in the same transaction as its
        -- hourly source would miss the invalidations that refresh has just logged.
        COMMIT;
    END LOOP;
END
$$;

COMMENT ON PROCEDURE analytics.prc_delete_user(text, text, text[], text, uuid, bigint, bigint, bigint, timestamptz) IS
    'fn_delete_user, then on TimescaleDB a refresh of the continuous aggregates over the deleted range; call outside a transaction.';
