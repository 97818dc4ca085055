-- analytics.fn_refresh_local_days(p_app) -> setof (app, days, rebuilt, watermark)
--
-- Maintenance: brings the local-day summary that analytics.fn_metrics reads for apps outside
-- UTC up to the start of each app's current local day, for one app or every app
-- (analytics_internal.fn_local_days_refresh). fn_metrics reads the summary for the local days
-- before the watermark and the rollups live after it, so new events always count at once;
-- events that arrive late for a summarized day (or are deleted) count after the next refresh,
-- as they do in the continuous aggregates on TimescaleDB. analytics.prc_run_maintenance and
-- analytics.prc_refresh_rollups call it; call it yourself after loading old events. Idempotent.
--
--   p_app  app identifier or uuid; NULL (default): every app
--
-- Returns one row per app: its identifier, the local days (re)summarized, whether its summary
-- was rebuilt from scratch (first refresh, time zone changed), and the watermark (NULL for UTC
-- apps, which need no summary: fn_metrics reads the UTC daily rollups for them).
--
-- Errors: P0002 unknown app.
--
-- SECURITY DEFINER: maintenance runs it without being granted the internal tables.
CREATE OR REPLACE FUNCTION analytics.fn_refresh_local_days(p_app text DEFAULT NULL)
RETURNS TABLE (app text, days bigint, rebuilt boolean, watermark timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app  integer := CASE WHEN p_app IS NOT NULL THEN analytics_internal.fn_require_app(p_app) END;  -- P0002 when unknown
BEGIN
    -- one app at a time, in pk order; each app's refresh locks only its own state row
    RETURN QUERY
    SELECT a.identifier, r.days, r.rebuilt, r.watermark
    FROM analytics.tb_app a
    CROSS JOIN LATERAL analytics_internal.fn_local_days_refresh(a.pk_app) r
    WHERE a.pk_app = coalesce(v_pk_app, a.pk_app)
    ORDER BY a.pk_app;
END
$$;

COMMENT ON FUNCTION analytics.fn_refresh_local_days(text) IS
    'Maintenance: bring the local-day summary read by fn_metrics for apps outside UTC up to their current local day, for one app or all.';
