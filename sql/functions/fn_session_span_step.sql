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
-- PL/pgSQL rather than SQL: called once per row, it assigns the state's fields in place,
-- 2.4x faster than building a new row each time (25k session-hours of a day: 62 vs 148 ms).
-- No SET search_path on purpose: a SET clause would make every call switch the path (several
-- times the cost of the body). The body names only pg_catalog objects, which are always
-- searched first. Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_session_span_step(
    p_state       analytics_internal.session_span_state,
    p_session_id  text,
    p_started_at  timestamptz,
    p_ended_at    timestamptz)
RETURNS analytics_internal.session_span_state
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
BEGIN
    IF p_session_id IS NULL THEN
        RETURN p_state;
    END IF;
    IF p_state.session_id IS NULL THEN
        p_state.closed_seconds := coalesce(p_state.closed_seconds, 0);
    ELSIF p_state.session_id = p_session_id THEN
        IF p_started_at < p_state.started_at THEN
            p_state.started_at := p_started_at;
        END IF;
        IF p_ended_at > p_state.ended_at THEN
            p_state.ended_at := p_ended_at;
        END IF;
        RETURN p_state;
    ELSE
        p_state.closed_seconds := p_state.closed_seconds + extract(epoch FROM p_state.ended_at - p_state.started_at);
    END IF;
    p_state.session_id := p_session_id;
    p_state.started_at := p_started_at;
    p_state.ended_at := p_ended_at;
    RETURN p_state;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_session_span_step(analytics_internal.session_span_state, text, timestamptz, timestamptz) IS
    'Transition function of analytics_internal.agg_session_seconds (rows ordered by session id).';
