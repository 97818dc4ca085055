-- analytics.fn_refresh_user_activity(p_app) -> setof (app, users, rebuilt, watermark)
--
-- Maintenance: brings the per-user activity summary that analytics.fn_retention reads up to the
-- start of the current UTC day, for one app or every app (analytics_internal.fn_user_activity_refresh).
-- fn_retention reads the summary for the days before the watermark and analytics.ca_user_daily
-- live after it, so new events always count at once; events that arrive late for a day before
-- the watermark (or are deleted) count after the next refresh. analytics.prc_run_maintenance
-- calls it; call it yourself after loading old events.
--
--   p_app  app identifier or uuid; NULL (default): every app
--
-- Returns one row per app: its identifier, the users re-summarized, whether the app's summary
-- was rebuilt from scratch (first refresh, time zone changed, events deleted), and the watermark.
--
-- Errors: P0002 unknown app.
CREATE OR REPLACE FUNCTION analytics.fn_refresh_user_activity(p_app text DEFAULT NULL)
RETURNS TABLE (app text, users bigint, rebuilt boolean, watermark timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pk_app  integer := CASE WHEN p_app IS NOT NULL THEN fn_require_app(p_app) END;  -- P0002 when unknown
    v_app     record;
BEGIN
    FOR v_app IN
        SELECT a.pk_app, a.identifier FROM analytics.tb_app a
        WHERE v_pk_app IS NULL OR a.pk_app = v_pk_app
        ORDER BY a.pk_app
    LOOP
        RETURN QUERY SELECT v_app.identifier, r.users, r.rebuilt, r.watermark
                     FROM fn_user_activity_refresh(v_app.pk_app) r;
    END LOOP;
END
$$;

COMMENT ON FUNCTION analytics.fn_refresh_user_activity(text) IS
    'Maintenance: bring the per-user activity summary read by fn_retention up to today (UTC), for one app or all.';
