-- analytics.fn_export_user(p_app, p_user_id, p_anonymous_ids) -> setof json
--
-- Every stored event of one person (the right of access / data portability), oldest first,
-- one JSON object per event:
--   {"id", "event_id", "type", "timestamp", "received_at", "timestamp_clamped", "user_id",
--    "anonymous_id", "session_id", "path", "label", "duration_ms", "device", "metadata"}
-- "id" is the stored event uuid, "event_id" the id the client sent (null when none); times
-- are ISO 8601 in UTC; absent fields are null. The person is named as in fn_delete_user (see
-- analytics_internal.fn_user_keys): events whose coalesce(user_id, anonymous_id) is p_user_id
-- or one of p_anonymous_ids. Events already archived and dropped by retention are not here.
--
-- Streams: call it in the select list, e.g. through a cursor,
--     DECLARE export NO SCROLL CURSOR FOR SELECT analytics.fn_export_user('app123', 'u1');
--     FETCH 1000 FROM export;  ...
-- A LANGUAGE sql set-returning function in the select list hands its rows out as they are
-- read (value per call); in FROM, or written in PL/pgSQL, the whole result would be collected
-- first. The rows are sorted by time, which PostgreSQL does in work_mem and spills beyond it.
--
--   p_app            app identifier or uuid
--   p_user_id        the user id (for a user who never signed in: the anonymous id)
--   p_anonymous_ids  more anonymous (device) ids of the same person; NULL: none
--
-- Errors: P0002 no such app; 22023 bad user id or anonymous ids (raised before the first row).
--
-- SECURITY DEFINER: read-key holders export through the API without a grant on tb_event.
CREATE OR REPLACE FUNCTION analytics.fn_export_user(
    p_app            text,
    p_user_id        text,
    p_anonymous_ids  text[] DEFAULT NULL)
RETURNS SETOF json
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- The JSON rendering of timestamptz follows TimeZone: export in UTC whatever the session's.
SET TimeZone = 'UTC'
AS $$
    -- The arguments are checked by a statement of their own, which runs to completion before
    -- the query below starts (a check inside it would not run when no row is scanned).
    SELECT analytics_internal.fn_require_app(p_app), analytics_internal.fn_user_keys(p_user_id, p_anonymous_ids);

    SELECT json_build_object(
               'id', e.id,
               'event_id', e.client_event_id,
               'type', e.event_type,
               'timestamp', e."timestamp",
               'received_at', e.received_at,
               'timestamp_clamped', e.timestamp_clamped,
               'user_id', e.user_id,
               'anonymous_id', e.anonymous_id,
               'session_id', e.session_id,
               'path', e.path,
               'label', e.label,
               'duration_ms', e.duration_ms,
               'device', e.device,
               'metadata', e.metadata)
    FROM analytics.tb_event e
    WHERE e.fk_app = analytics_internal.fn_require_app(p_app)
      -- user_key = ANY(keys), written so that each half can use its partial index.
      AND (e.user_id = ANY (analytics_internal.fn_user_keys(p_user_id, p_anonymous_ids))
           OR (e.user_id IS NULL
               AND e.anonymous_id = ANY (analytics_internal.fn_user_keys(p_user_id, p_anonymous_ids))))
    ORDER BY e."timestamp", e.id
$$;

COMMENT ON FUNCTION analytics.fn_export_user(text, text, text[]) IS
    'Every stored event of one person (user id and optional anonymous ids) as JSON objects, oldest first; streams when called in the select list.';
