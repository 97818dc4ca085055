-- analytics.fn_list_cohorts(p_app, p_limit)
--     -> setof (id, identifier, name, filter, user_count, retention_rate, created_at, refreshed_at)
--
-- The app's cohorts, newest first, as of their last refresh: user_count members, and
-- retention_rate, their week-1 retention (0 to 1): of the members first seen at least 14 local
-- days before the refresh, the share with an event on a local day 7 to 13 after their first
-- seen day; NULL when no member is that old. This is what the GraphQL `cohorts` query calls.
--
--   p_app    app identifier or uuid
--   p_limit  at most this many cohorts, 1 to 1000 (default 20)
--
-- Errors: P0002 unknown app; 22023 p_limit out of range.
CREATE OR REPLACE FUNCTION analytics.fn_list_cohorts(p_app text, p_limit integer DEFAULT 20)
RETURNS TABLE (id uuid, identifier text, name text, filter jsonb, user_count integer, retention_rate numeric,
               created_at timestamptz, refreshed_at timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pk_app integer := fn_require_app(p_app);  -- P0002 when unknown
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit % is out of range', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a limit from 1 to 1000.';
    END IF;
    RETURN QUERY
    SELECT c.id, c.identifier, c.name, c.filter, c.user_count, c.retention_rate, c.created_at, c.refreshed_at
    FROM analytics.tb_cohort c
    WHERE c.fk_app = v_pk_app
    ORDER BY c.created_at DESC, c.pk_cohort DESC
    LIMIT p_limit;
END
$$;

COMMENT ON FUNCTION analytics.fn_list_cohorts(text, integer) IS
    'An app''s cohorts, newest first: members at the last refresh (user_count) and week-1 retention (retention_rate).';
