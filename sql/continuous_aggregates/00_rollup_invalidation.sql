-- PostgreSQL engine: the invalidation log's triggers on analytics.tb_event.
--
-- TimescaleDB logs changes below a continuous aggregate's threshold by itself. On PostgreSQL,
-- statement-level triggers with transition tables log the (app, hour) ranges that each
-- INSERT, UPDATE or DELETE touched (analytics_internal.fn_rollup_invalidate), so that rollup
-- views aggregate those hours live and fn_refresh_rollups re-materializes only them.
--
-- Here rather than in a migration because the trigger function must exist first (functions are
-- applied after migrations). CREATE OR REPLACE TRIGGER keeps the file idempotent.
DO $$
DECLARE
    v_trigger record;
BEGIN
    IF analytics.fn_engine() <> 'postgresql' THEN
        RETURN;
    END IF;
    -- One transition table per trigger, always named changed_rows (an UPDATE fires two: the
    -- rows before and the rows after), so that the trigger function is one static statement.
    FOR v_trigger IN
        SELECT * FROM (VALUES
            ('insert', 'INSERT', 'NEW', 'inserted events'),
            ('delete', 'DELETE', 'OLD', 'deleted events'),
            ('update_old', 'UPDATE', 'OLD', 'updated events, before the update'),
            ('update_new', 'UPDATE', 'NEW', 'updated events, after the update')) AS t(suffix, event, image, what)
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER %s ON analytics.tb_event'
                       ' REFERENCING %s TABLE AS changed_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION analytics_internal.fn_rollup_invalidate()',
                       'tg_tb_event_invalidate_rollups_' || v_trigger.suffix, v_trigger.event, v_trigger.image);
        EXECUTE format('COMMENT ON TRIGGER %I ON analytics.tb_event IS %L',
                       'tg_tb_event_invalidate_rollups_' || v_trigger.suffix,
                       format('Logs the (app, hour) ranges of %s to analytics_internal.tb_rollup_invalidation.', v_trigger.what));
    END LOOP;
END
$$;
