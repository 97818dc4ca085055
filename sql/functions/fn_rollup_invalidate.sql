-- analytics_internal.fn_rollup_invalidate() -> trigger
--
-- PostgreSQL engine: statement-level AFTER INSERT / UPDATE / DELETE triggers on
-- analytics.tb_event (created by sql/continuous_aggregates/00_rollup_invalidation.sql), each
-- with one transition table named changed_rows. Logs each distinct (app, UTC hour) that the
-- statement's rows fall in to analytics_internal.tb_rollup_invalidation: one
-- INSERT ... SELECT DISTINCT over the transition table per statement, whatever the batch size. Rollup views then aggregate those hours (and
-- the days that hold them) live until fn_refresh_rollups re-materializes them.
--
-- Every statement is logged, also for hours after the rollups' watermark: deciding by the
-- watermark would race with a concurrent refresh that moves it. Rows for those hours cost the
-- views nothing (they only look before the watermark) and are cleared by the next refresh.
--
-- Errors: none of its own (a failure fails the statement that changed the events).
--
-- SECURITY DEFINER: whoever may write events may log their invalidation, without being
-- granted the internal log.
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_invalidate()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
BEGIN
    -- Every trigger names its one transition table changed_rows: inserted rows, deleted rows,
    -- or (two triggers per UPDATE) the rows before and the rows after.
    INSERT INTO analytics_internal.tb_rollup_invalidation (fk_app, range_start, range_end)
    SELECT h.fk_app, h.hour, h.hour + interval '1 hour'
    FROM (SELECT DISTINCT c.fk_app, analytics_internal.fn_time_bucket('1 hour', c."timestamp") AS hour
          FROM changed_rows c) h;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_invalidate() IS
    'PostgreSQL engine: statement trigger on analytics.tb_event logging the (app, hour) ranges it changed for the rollups.';
