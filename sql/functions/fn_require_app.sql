-- analytics_internal.fn_require_app(p_app) -> integer (pk_app)
-- The app named by identifier or uuid; SQLSTATE P0002 (no_data_found) with a HINT when there
-- is none. For functions an operator or analyst calls; API-key paths use fn_authenticate.
CREATE OR REPLACE FUNCTION analytics_internal.fn_require_app(p_app text)
RETURNS integer
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
DECLARE
    v_pk_app integer := analytics_internal.fn_resolve_app(p_app);
BEGIN
    IF v_pk_app IS NULL THEN
        RAISE EXCEPTION 'app % does not exist', coalesce(quote_literal(left(p_app, 80)), 'NULL')
            USING ERRCODE = 'P0002',
                  HINT = 'Name the app by its identifier (e.g. app123) or its uuid; see analytics.tb_app.';
    END IF;
    RETURN v_pk_app;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_require_app(text) IS
    'pk_app of the app named by identifier or uuid, else SQLSTATE P0002.';
