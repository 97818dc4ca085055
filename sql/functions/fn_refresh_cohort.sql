-- analytics.fn_refresh_cohort(p_app, p_cohort)
--     -> (id, identifier, name, filter, user_count, retention_rate, created_at, refreshed_at)
--
-- Recomputes one cohort now (analytics_internal.fn_cohort_compute): its members from the events
-- committed so far, user_count, retention_rate and refreshed_at. Returns the cohort.
--
--   p_app     app identifier or uuid
--   p_cohort  cohort identifier or uuid
--
-- Errors: P0002 unknown app or cohort; 22023 the stored filter is not valid (edited by hand).
CREATE OR REPLACE FUNCTION analytics.fn_refresh_cohort(p_app text, p_cohort text)
RETURNS TABLE (id uuid, identifier text, name text, filter jsonb, user_count integer, retention_rate numeric,
               created_at timestamptz, refreshed_at timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pk_cohort integer := fn_require_cohort(fn_require_app(p_app), p_cohort);  -- P0002 when unknown
BEGIN
    PERFORM fn_cohort_compute(v_pk_cohort);
    RETURN QUERY
    SELECT c.id, c.identifier, c.name, c.filter, c.user_count, c.retention_rate, c.created_at, c.refreshed_at
    FROM analytics.tb_cohort c
    WHERE c.pk_cohort = v_pk_cohort;
END
$$;

COMMENT ON FUNCTION analytics.fn_refresh_cohort(text, text) IS
    'Recompute one cohort''s members, user_count and retention_rate now; returns it.';
