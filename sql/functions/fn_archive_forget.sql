-- analytics.fn_archive_forget(p_range_start, p_app, p_day) -> boolean
--
-- Deletes the archive ledger's row for one app-day of a raw-event chunk, after
-- `mobile-analytics archive` deleted its object because the app-day has no events any more
-- (e.g. its user's data was deleted after the export). Returns whether a row was deleted.
--
--   p_range_start  start of the chunk;  p_app  identifier or uuid;  p_day  UTC day
--
-- Errors: P0002 unknown app.
CREATE OR REPLACE FUNCTION analytics.fn_archive_forget(p_range_start timestamptz, p_app text, p_day date)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app  integer := analytics_internal.fn_require_app(p_app);
BEGIN
    DELETE FROM analytics_internal.tb_archive_object o
     WHERE o.range_start = p_range_start AND o.fk_app = v_pk_app AND o.day = p_day;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION analytics.fn_archive_forget(timestamptz, text, date) IS
    'Delete the archive ledger row of an app-day whose events are gone (its stale object was deleted).';
