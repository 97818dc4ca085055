-- analytics_internal.fn_session_span_step(p_state, p_session_id, p_started_at, p_ended_at)
--     -> session_span_state
--
-- Transition function of analytics_internal.agg_session_seconds: adds one row (a session's
-- first and last event in some span of time) to the running state. Rows must arrive ordered by
-- session id (the aggregate is called with ORDER BY session_id): a new id closes the previous
-- session, whose seconds (last event - first event) join closed_seconds. Rows without a
-- session id are skipped.
--
--   p_state       the state so far (NULL before the first row)
--   p_session_id  the row's session
--   p_started_at  the row's first event
--   p_ended_at    the row's last event
--
-- No SET search_path on purpose: it runs once per aggregated row, and a SET clause would make
-- every call switch the path (several times the cost of the body). The body names only
-- pg_catalog objects, which are always searched first, and the schema-qualified state type.
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_session_span_step(
    p_state       analytics_internal.session_span_state,
    p_session_id  text,
    p_started_at  timestamptz,
    p_ended_at    timestamptz)
RETURNS analytics_internal.session_span_state
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE
        WHEN p_session_id IS NULL THEN p_state
        WHEN (p_state).session_id IS NULL THEN
            ROW(p_session_id, p_started_at, p_ended_at, coalesce((p_state).closed_seconds, 0))::analytics_internal.session_span_state
        WHEN (p_state).session_id = p_session_id THEN
            ROW(p_session_id, least((p_state).started_at, p_started_at), greatest((p_state).ended_at, p_ended_at),
                (p_state).closed_seconds)::analytics_internal.session_span_state
        ELSE
            ROW(p_session_id, p_started_at, p_ended_at,
                (p_state).closed_seconds + extract(epoch FROM (p_state).ended_at - (p_state).started_at))::analytics_internal.session_span_state
    END
$$;

COMMENT ON FUNCTION analytics_internal.fn_session_span_step(analytics_internal.session_span_state, text, timestamptz, timestamptz) IS
    'Transition function of analytics_internal.agg_session_seconds (rows ordered by session id).';
