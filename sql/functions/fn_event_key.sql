-- analytics_internal.fn_event_key(p_event_id, p_is_uuid) -> uuid
--
-- The exactly-once key of a client event id (analytics_internal.tb_event_key.event_key): md5
-- of the id in canonical form, as a uuid. A UUID-shaped id is lower-cased first, so that the
-- same UUID in either case is one event; any other id is taken as it is. NULL for NULL.
--
--   p_event_id  the id as the client sent it
--   p_is_uuid   whether the caller found it UUID-shaped (8-4-4-4-12 hex digits). Each caller
--               tests that its own way: fn_track_events' fast path by the layout (a non-hex id
--               of that layout fails its uuid cast and leaves the fast path), its general path
--               digit by digit.
--
-- Errors: none.
--
-- No SET search_path on purpose: a SET clause stops the planner from inlining this per-event
-- expression into fn_track_events. The body uses only pg_catalog, which is always searched first.
CREATE OR REPLACE FUNCTION analytics_internal.fn_event_key(p_event_id text, p_is_uuid boolean)
RETURNS uuid
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT md5(CASE WHEN p_is_uuid THEN lower(p_event_id COLLATE "C") ELSE p_event_id END)::uuid
$$;

COMMENT ON FUNCTION analytics_internal.fn_event_key(text, boolean) IS
    'Exactly-once key of a client event id: md5 of the id (lower-cased when UUID-shaped) as a uuid.';
