-- analytics_internal.fn_cohort_filter_sql(p_node, p_pk_app, p_timezone, p_now) -> text
--
-- Compiles a (valid) cohort filter into one SQL query returning the distinct user_key of the
-- app's matching users. Every value of the filter reaches the query through %L (quoted
-- literals); only fixed SQL text written here is spliced in, so a hostile filter cannot inject
-- SQL. The semantics (docs/analytics.md, "Cohort filters"):
--   {}          every user with an event (analytics.ca_user_daily)
--   and / or    INTERSECT / UNION of the conditions
--   not         every user EXCEPT those matching the condition
--   event       users with at least min_count (default 1) events of that type in the window
--               (the retained events of analytics.tb_event; no window: all of them)
--   property    users whose last known value of the property matches: the value on their
--               latest event in the window that carries it (ties: the event stored last)
--   first_seen  users whose first event (analytics.ca_user_daily) lies in the window
--
--   p_node      the filter (or a condition inside it), checked by fn_validate_cohort_filter
--   p_pk_app    the app
--   p_timezone  the app's time zone, for from/to dates
--   p_now       the end of rolling windows (within_days): the refresh time
--
-- Errors: none for a checked filter.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_filter_sql(p_node jsonb, p_pk_app integer, p_timezone text, p_now timestamptz)
RETURNS text
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal, pg_temp
AS $$
DECLARE
    c_user      constant text := 'coalesce(e.user_id, e.anonymous_id)';
    v_everyone  text := format('SELECT DISTINCT u.user_key FROM analytics.ca_user_daily u WHERE u.fk_app = %s', p_pk_app);
    v_property  text;
    v_expr      text;
    v_op        text;
    v_version   boolean;
    v_test      text;
BEGIN
    IF p_node = '{}'::jsonb THEN
        RETURN v_everyone;
    ELSIF p_node ? 'and' OR p_node ? 'or' THEN
        RETURN (SELECT string_agg('(' || fn_cohort_filter_sql(c.node, p_pk_app, p_timezone, p_now) || ')',
                                  CASE WHEN p_node ? 'and' THEN ' INTERSECT ' ELSE ' UNION ' END ORDER BY c.i)
                FROM jsonb_array_elements(coalesce(p_node -> 'and', p_node -> 'or')) WITH ORDINALITY AS c(node, i));
    ELSIF p_node ? 'not' THEN
        RETURN format('(%s) EXCEPT (%s)', v_everyone, fn_cohort_filter_sql(p_node -> 'not', p_pk_app, p_timezone, p_now));
    ELSIF p_node ? 'event' THEN
        RETURN format('SELECT %1$s AS user_key FROM analytics.tb_event e'
                      ' WHERE e.fk_app = %2$s AND e.event_type = %3$L AND %1$s IS NOT NULL%4$s'
                      ' GROUP BY 1 HAVING count(*) >= %5$s',
                      c_user, p_pk_app, p_node ->> 'event',
                      fn_cohort_window_sql(p_node, 'e."timestamp"', p_timezone, p_now),
                      coalesce((p_node ->> 'min_count')::numeric::integer, 1));
    ELSIF p_node ? 'property' THEN
        v_property := p_node ->> 'property';
        v_version := v_property IN ('app_version', 'device.app_version');
        v_expr := CASE WHEN v_version THEN 'e.device -> ''app_version'''
                       WHEN v_property LIKE 'device.%' THEN format('e.device -> %L', substr(v_property, 8))
                       ELSE format('e.metadata -> %L', substr(v_property, 10)) END;
        v_op := p_node ->> 'op';
        IF v_op = 'in' THEN
            SELECT string_agg(fn_cohort_compare_sql('p.v', 'eq', x.value, v_version), ' OR ')
            INTO v_test
            FROM jsonb_array_elements(p_node -> 'value') AS x(value);
        ELSE
            v_test := fn_cohort_compare_sql('p.v', v_op, p_node -> 'value', v_version);
        END IF;
        -- the time of each user's latest event carrying the property (one hash aggregate), then
        -- that event's value (ties: the event stored last); no sort of every event by user
        RETURN format('SELECT p.user_key FROM ('
                      'SELECT DISTINCT ON (l.user_key) l.user_key, %2$s AS v'
                      ' FROM (SELECT %1$s AS user_key, max(e."timestamp") AS at FROM analytics.tb_event e'
                      ' WHERE e.fk_app = %3$s AND %1$s IS NOT NULL AND jsonb_typeof(%2$s) <> ''null''%4$s GROUP BY 1) l'
                      ' JOIN analytics.tb_event e ON e.fk_app = %3$s AND %1$s = l.user_key AND e."timestamp" = l.at'
                      ' AND jsonb_typeof(%2$s) <> ''null'''
                      ' ORDER BY l.user_key, e.pk_event DESC) p'
                      ' WHERE %5$s',
                      c_user, v_expr, p_pk_app,
                      fn_cohort_window_sql(p_node, 'e."timestamp"', p_timezone, p_now), v_test);
    ELSIF p_node ? 'first_seen' THEN
        RETURN format('SELECT u.user_key FROM analytics.ca_user_daily u WHERE u.fk_app = %s'
                      ' GROUP BY u.user_key HAVING true%s',
                      p_pk_app, fn_cohort_window_sql(p_node -> 'first_seen', 'min(u.first_event_at)', p_timezone, p_now));
    END IF;
    RAISE EXCEPTION 'cohort filter condition % was not checked', left(p_node::text, 200)
        USING ERRCODE = '22023', HINT = 'Check filters with analytics.fn_validate_cohort_filter first.';
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_filter_sql(jsonb, integer, text, timestamptz) IS
    'Compile a checked cohort filter into one SQL query of the app''s matching user_key values (values quoted with %L).';
