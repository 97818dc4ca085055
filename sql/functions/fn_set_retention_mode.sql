-- analytics.fn_set_retention_mode(p_mode) -> text (the previous mode)
--
-- Chooses what happens to raw-event chunks past their retention (setting retention_mode):
--   'archive'  dropped only once `mobile-analytics archive` has exported and verified every
--              app-day in them (the default: nothing is lost if the archive never runs);
--   'drop'     dropped without an archive (TimescaleDB: by a retention policy);
--   'keep'     never dropped.
-- Then aligns TimescaleDB's background jobs (analytics_internal.fn_sync_retention_policies).
-- Drops themselves happen in analytics.fn_apply_retention (run by prc_run_maintenance and by
-- the archive), or by the retention policy.
--
--   p_mode  'archive', 'drop' or 'keep'
--
-- Errors: 22023 unknown mode.
CREATE OR REPLACE FUNCTION analytics.fn_set_retention_mode(p_mode text)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_previous  text := analytics_internal.fn_setting('retention_mode');
BEGIN
    IF p_mode IS NULL OR p_mode NOT IN ('archive', 'drop', 'keep') THEN
        RAISE EXCEPTION 'unknown retention mode %', coalesce(quote_literal(p_mode), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Use archive (drop after archiving), drop (drop without archive) or keep (never drop).';
    END IF;
    INSERT INTO analytics_internal.tb_setting (name, value) VALUES ('retention_mode', p_mode)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now();
    PERFORM analytics_internal.fn_sync_retention_policies();
    RETURN v_previous;
END
$$;

COMMENT ON FUNCTION analytics.fn_set_retention_mode(text) IS
    'Set retention_mode (archive, drop or keep) and align TimescaleDB''s retention and refresh policies; returns the previous mode.';
