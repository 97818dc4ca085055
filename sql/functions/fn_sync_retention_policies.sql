-- analytics_internal.fn_sync_retention_policies() -> void
--
-- TimescaleDB: makes the background jobs agree with retention_mode, the apps' retention and
-- the drops made so far (analytics_internal.tb_event_drop). With R = the longest retention_days
-- of any app (90 with no app) and G = analytics_internal.fn_retention_grace():
--   * retention policy on analytics.tb_event: present with drop_after = R + G in mode drop,
--     absent otherwise. Before one is changed or removed, the time before which it may have
--     dropped chunks is recorded in tb_event_drop (mode policy): the policy does not say what
--     it dropped. R is read from tb_app each time: after a DBA changes a retention, the next
--     maintenance adjusts drop_after.
--   * each continuous aggregate's refresh policy: start_offset = the time since
--     analytics_internal.fn_refresh_horizon() (NULL, no limit, when nothing was dropped), and
--     while a retention policy exists at most its drop_after, so that no policy run reaches what
--     the retention policy may drop meanwhile; rounded down to the hour. A refresh whose window
--     covered a dropped range would recompute its buckets from no raw events and erase their
--     history (dropping a chunk logs an invalidation over its range). R + G still reaches
--     every event an app may send, materialized by a policy run up to G - 1 day late.
--   Maintenance runs it every few minutes, which keeps start_offset from lagging behind.
-- PostgreSQL: nothing (no background jobs).
--
-- Called by fn_set_retention_mode, fn_apply_retention (so by prc_run_maintenance) and before
-- every drop on TimescaleDB. Idempotent.
--
-- Errors: none of its own.
CREATE OR REPLACE FUNCTION analytics_internal.fn_sync_retention_policies()
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_mode        text := analytics_internal.fn_setting('retention_mode');
    v_retention   interval := make_interval(days => coalesce((SELECT max(a.retention_days) FROM analytics.tb_app a), 90));
    v_grace       interval := analytics_internal.fn_retention_grace();
    v_drop_after  interval;
    v_horizon     timestamptz;
    v_start       interval;
    v_job         record;
BEGIN
    IF analytics.fn_engine() <> 'timescaledb' THEN
        RETURN;
    END IF;
    v_drop_after := v_retention + v_grace;

    SELECT j.job_id, (j.config ->> 'drop_after')::interval AS drop_after, j.config
      INTO v_job
    FROM timescaledb_information.jobs j
    WHERE j.proc_name = 'policy_retention' AND j.hypertable_schema = 'analytics' AND j.hypertable_name = 'tb_event';
    IF v_job.job_id IS NOT NULL AND (v_mode <> 'drop' OR v_job.drop_after IS DISTINCT FROM v_drop_after) THEN
        -- It dropped oldest first, nothing newer than drop_after ago, and not the oldest chunk left.
        INSERT INTO analytics_internal.tb_event_drop (range_start, range_end, mode)
        SELECT '-infinity', least(now() - v_job.drop_after, min(c.range_start)), 'policy'
        FROM analytics_internal.fn_event_chunks() c;
        IF v_mode = 'drop' THEN
            PERFORM public.alter_job(v_job.job_id,
                                     config => jsonb_set(v_job.config, '{drop_after}', to_jsonb(v_drop_after::text)));
        ELSE
            PERFORM public.remove_retention_policy('analytics.tb_event'::regclass, if_exists => true);
        END IF;
    ELSIF v_job.job_id IS NULL AND v_mode = 'drop' THEN
        PERFORM public.add_retention_policy('analytics.tb_event'::regclass, drop_after => v_drop_after);
    END IF;

    v_horizon := analytics_internal.fn_refresh_horizon();
    IF v_horizon IS NOT NULL THEN
        v_start := date_trunc('hour', least(now() - v_horizon,
                                            CASE WHEN v_mode = 'drop' THEN v_drop_after END));
    END IF;
    FOR v_job IN
        SELECT j.job_id, j.config
        FROM timescaledb_information.jobs j
        JOIN analytics_internal.tb_rollup r ON r.rollup = j.hypertable_name
        WHERE j.proc_name = 'policy_refresh_continuous_aggregate' AND j.hypertable_schema = 'analytics'
          AND (j.config ->> 'start_offset')::interval IS DISTINCT FROM v_start
    LOOP
        PERFORM public.alter_job(v_job.job_id,
                                 config => jsonb_set(v_job.config, '{start_offset}', coalesce(to_jsonb(v_start::text), 'null')));
    END LOOP;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_sync_retention_policies() IS
    'TimescaleDB: align the retention policy and the refresh policies'' start_offset with retention_mode, the apps'' retention and past drops.';
