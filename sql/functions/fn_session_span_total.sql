-- analytics_internal.fn_session_span_total(p_state) -> numeric
--
-- Final function of analytics_internal.agg_session_seconds: the closed sessions' seconds plus
-- those of the session still open in the state. NULL when no row had a session id (like sum()
-- over no rows).
--
--   p_state  the state after the last row
--
-- No SET search_path, for the reason given in fn_session_span_step. Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_session_span_total(p_state analytics_internal.session_span_state)
RETURNS numeric
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT (p_state).closed_seconds + extract(epoch FROM (p_state).ended_at - (p_state).started_at)
$$;

COMMENT ON FUNCTION analytics_internal.fn_session_span_total(analytics_internal.session_span_state) IS
    'Final function of analytics_internal.agg_session_seconds.';
