-- analytics_internal.agg_session_seconds(session_id, started_at, ended_at ORDER BY session_id)
--     -> numeric
--
-- Sum over the distinct sessions of the rows aggregated of (last event - first event) in
-- seconds, where a session's first and last events are the least started_at and greatest
-- ended_at of its rows: from the hourly rows of ca_session_hourly it gives the seconds that the
-- sessions of a day lasted inside that day, in one pass and constant memory. It needs its rows
-- ordered by session id, hence ORDER BY session_id inside the call (unordered input would count
-- a session once per run of its rows). NULL over no session.
--
-- Here, not in sql/functions/, because it needs its support functions first and the rollups
-- that use it come next. CREATE OR REPLACE AGGREGATE keeps the file idempotent; the continuous
-- aggregate that uses it on TimescaleDB stays valid (the signature never changes).
CREATE OR REPLACE AGGREGATE analytics_internal.agg_session_seconds(text, timestamptz, timestamptz) (
    SFUNC = analytics_internal.fn_session_span_step,
    STYPE = analytics_internal.session_span_state,
    FINALFUNC = analytics_internal.fn_session_span_total
);

COMMENT ON AGGREGATE analytics_internal.agg_session_seconds(text, timestamptz, timestamptz) IS
    'Seconds the distinct sessions lasted (last - first event per session); call with ORDER BY session_id.';
