-- analytics_internal.fn_cohort_compute(p_pk_cohort) -> integer (members)
--
-- Recomputes a cohort now: checks its filter again (a DBA may have edited it), replaces its
-- members (analytics_internal.tb_cohort_member) with the users its filter matches, and sets
-- user_count, retention_rate (week-1 retention, below) and refreshed_at = now(). Rolling
-- windows (within_days) end at now(). The cohort row is locked first, so concurrent refreshes
-- of one cohort run one after the other.
--
-- retention_rate: of the members first seen at least 14 local days before today (app time
-- zone), the share with an event on a local day 7 to 13 after their first seen day: period 1
-- of analytics_internal.fn_cohort_member_retention(cohort, 'week'). NULL when no member is
-- that old.
--
--   p_pk_cohort  the cohort
--
-- Errors: 22023 when the stored filter is not valid; P0002 when the cohort does not exist.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_compute(p_pk_cohort integer)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- Cohort queries read many rows once; JIT compilation would not pay off reliably here.
SET jit = off
AS $$
DECLARE
    v_cohort    record;
    v_members   integer;
    v_rate      numeric;
BEGIN
    SELECT c.pk_cohort, c.fk_app, c.filter, a.timezone INTO v_cohort
    FROM analytics.tb_cohort c JOIN analytics.tb_app a ON a.pk_app = c.fk_app
    WHERE c.pk_cohort = p_pk_cohort
    FOR UPDATE OF c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'cohort % does not exist', p_pk_cohort
            USING ERRCODE = 'P0002', HINT = 'analytics.fn_list_cohorts lists the cohorts.';
    END IF;
    PERFORM analytics.fn_validate_cohort_filter(v_cohort.filter);

    DELETE FROM analytics_internal.tb_cohort_member m WHERE m.fk_cohort = p_pk_cohort;
    EXECUTE format('INSERT INTO analytics_internal.tb_cohort_member (fk_cohort, user_key) SELECT %s, q.user_key FROM (%s) q',
                   p_pk_cohort, fn_cohort_filter_sql(v_cohort.filter, v_cohort.fk_app, v_cohort.timezone, now()));
    GET DIAGNOSTICS v_members = ROW_COUNT;

    SELECT r.retention_rate INTO v_rate
    FROM fn_cohort_member_retention(p_pk_cohort, 'week', 2) r
    WHERE r.period = 1;

    UPDATE analytics.tb_cohort c
    SET user_count = v_members, retention_rate = v_rate, refreshed_at = now()
    WHERE c.pk_cohort = p_pk_cohort;
    RETURN v_members;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_compute(integer) IS
    'Recompute a cohort''s members, user_count, retention_rate (week-1) and refreshed_at from its filter.';
