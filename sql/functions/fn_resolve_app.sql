-- analytics_internal.fn_resolve_app(p_app) -> integer (pk_app) or NULL
-- p_app is the app's identifier ("app123") or its uuid, in any letter case.
CREATE OR REPLACE FUNCTION analytics_internal.fn_resolve_app(p_app text)
RETURNS integer
LANGUAGE sql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics
AS $$
    SELECT a.pk_app
    FROM analytics.tb_app a
    WHERE a.identifier = p_app
       -- CASE, not AND: the planner may fold the cast before the pattern test runs
       OR a.id = CASE WHEN p_app ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
                      THEN p_app::uuid END
    ORDER BY (a.identifier = p_app) DESC
    LIMIT 1
$$;

COMMENT ON FUNCTION analytics_internal.fn_resolve_app(text) IS
    'Primary key of the app named by identifier or uuid; NULL when there is none.';
