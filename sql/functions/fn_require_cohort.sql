-- analytics_internal.fn_require_cohort(p_pk_app, p_cohort) -> integer (pk_cohort)
--
-- The cohort of app p_pk_app named by p_cohort: its identifier (exact), or its uuid (any letter
-- case, with or without hyphens); the identifier wins when both could match.
--
--   p_pk_app  the app (from analytics_internal.fn_require_app)
--   p_cohort  cohort identifier or uuid
--
-- Errors: P0002 when the app has no such cohort.
CREATE OR REPLACE FUNCTION analytics_internal.fn_require_cohort(p_pk_app integer, p_cohort text)
RETURNS integer
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_cohort integer;
BEGIN
    SELECT c.pk_cohort INTO v_pk_cohort
    FROM analytics.tb_cohort c
    WHERE c.fk_app = p_pk_app
      AND (c.identifier = p_cohort
           -- CASE, not AND: the planner may fold the cast before the pattern test runs
           OR c.id = CASE WHEN p_cohort ~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'
                          THEN p_cohort::uuid END)
    ORDER BY (c.identifier = p_cohort) DESC
    LIMIT 1;
    IF v_pk_cohort IS NULL THEN
        RAISE EXCEPTION 'cohort % does not exist in this app', coalesce(quote_literal(left(p_cohort, 80)), 'NULL')
            USING ERRCODE = 'P0002',
                  HINT = 'Name the cohort by its identifier or its uuid; analytics.fn_list_cohorts lists them.';
    END IF;
    RETURN v_pk_cohort;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_require_cohort(integer, text) IS
    'pk_cohort of an app''s cohort named by identifier or uuid, else SQLSTATE P0002.';
