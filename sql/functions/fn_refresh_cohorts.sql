-- analytics.fn_refresh_cohorts(p_app, p_older_than) -> integer
--
-- Maintenance: recomputes every cohort (of one app, or of all apps) whose last refresh is older
-- than p_older_than, or that was never computed, oldest first; returns how many it recomputed.
-- analytics.prc_run_maintenance calls it with the defaults. A cohort that fails (a filter
-- edited by hand into an invalid one) is skipped with a WARNING naming it, so that one bad
-- cohort does not stop the others.
--
--   p_app         app identifier or uuid; NULL (default): every app
--   p_older_than  refresh cohorts computed longer ago than this (default 1 hour; 0: all)
--
-- Errors: P0002 unknown app; 22023 p_older_than NULL or negative.
CREATE OR REPLACE FUNCTION analytics.fn_refresh_cohorts(p_app text DEFAULT NULL, p_older_than interval DEFAULT interval '1 hour')
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app   integer := CASE WHEN p_app IS NOT NULL THEN fn_require_app(p_app) END;  -- P0002 when unknown
    v_cohort   record;
    v_done     integer := 0;
BEGIN
    IF p_older_than IS NULL OR p_older_than < interval '0' THEN
        RAISE EXCEPTION 'refresh age % is out of range', coalesce(quote_literal(p_older_than::text), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use an interval of 0 or more, e.g. ''1 hour''.';
    END IF;
    FOR v_cohort IN
        SELECT c.pk_cohort, c.identifier, a.identifier AS app
        FROM analytics.tb_cohort c JOIN analytics.tb_app a ON a.pk_app = c.fk_app
        WHERE (v_pk_app IS NULL OR c.fk_app = v_pk_app)
          AND (c.refreshed_at IS NULL OR c.refreshed_at <= now() - p_older_than)
        ORDER BY c.refreshed_at NULLS FIRST, c.pk_cohort
    LOOP
        BEGIN
            PERFORM fn_cohort_compute(v_cohort.pk_cohort);
            v_done := v_done + 1;
        EXCEPTION WHEN invalid_parameter_value OR no_data_found THEN
            RAISE WARNING 'cohort % of app % was not refreshed: %', quote_literal(v_cohort.identifier),
                          quote_literal(v_cohort.app), SQLERRM
                USING HINT = 'Fix its filter (analytics.fn_validate_cohort_filter says what is wrong) or delete it.';
        END;
    END LOOP;
    RETURN v_done;
END
$$;

COMMENT ON FUNCTION analytics.fn_refresh_cohorts(text, interval) IS
    'Maintenance: recompute the cohorts (of an app, or all) last refreshed longer ago than p_older_than; returns how many.';
