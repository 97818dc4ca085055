-- analytics.fn_delete_cohort(p_app, p_cohort) -> boolean
--
-- Deletes a cohort and its member list. Returns true.
--
--   p_app     app identifier or uuid
--   p_cohort  cohort identifier or uuid
--
-- Errors: P0002 unknown app, or no such cohort in the app (also when it was just deleted).
CREATE OR REPLACE FUNCTION analytics.fn_delete_cohort(p_app text, p_cohort text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_cohort integer := fn_require_cohort(fn_require_app(p_app), p_cohort);  -- P0002 when unknown
BEGIN
    DELETE FROM analytics.tb_cohort c WHERE c.pk_cohort = v_pk_cohort;
    IF NOT FOUND THEN
        -- deleted by a concurrent call since it was looked up
        RAISE EXCEPTION 'cohort % does not exist in this app', quote_literal(left(p_cohort, 80))
            USING ERRCODE = 'P0002', HINT = 'analytics.fn_list_cohorts lists the cohorts.';
    END IF;
    RETURN true;
END
$$;

COMMENT ON FUNCTION analytics.fn_delete_cohort(text, text) IS
    'Delete a cohort and its members; P0002 when there is no such cohort.';
