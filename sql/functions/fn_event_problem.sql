-- analytics_internal.fn_event_problem(p_event, p_event_time, p_type, p_event_id, p_timestamp,
--     p_user_id, p_anonymous_id, p_session_id, p_path, p_label, p_duration, p_device, p_metadata)
--     -> jsonb or NULL
--
-- Why one event of a batch cannot be stored, as {"code": ..., "message": ...}; NULL when it
-- is valid. The caller reads each top-level field once (p_event ->> 'type' into p_type, ...,
-- p_event -> 'device' into p_device) and parses the time once (p_event_time =
-- fn_parse_event_time(p_timestamp, ...)); passing them as plain values, not a row, keeps the
-- per-event cost low. Codes:
--   not_an_object      the event is not a JSON object
--   unknown_field      a top-level field outside the documented set
--   missing_field      "type" is absent or null
--   invalid_field      a field has the wrong JSON type, length or characters
--   invalid_timestamp  "timestamp" is neither ISO 8601 nor epoch milliseconds
-- (fn_track_events adds event_too_large, unstorable_text and too_old.)
-- Control characters are looked for once in all text fields joined; only a failing event
-- pays for finding which field it was.
-- No SET search_path and no sub-selects, so that it inlines (see fn_is_clean_text).
CREATE OR REPLACE FUNCTION analytics_internal.fn_event_problem(
    p_event         jsonb,
    p_event_time    timestamptz,
    p_type          text,
    p_event_id      text,
    p_timestamp     text,
    p_user_id       text,
    p_anonymous_id  text,
    p_session_id    text,
    p_path          text,
    p_label         text,
    p_duration      text,
    p_device        jsonb,
    p_metadata      jsonb)
RETURNS jsonb
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_event) <> 'object' THEN
            jsonb_build_object('code', 'not_an_object',
                               'message', 'each event must be a JSON object')
        WHEN (p_event - ARRAY['type', 'event_id', 'timestamp', 'user_id', 'anonymous_id', 'session_id',
                              'path', 'label', 'duration', 'device', 'metadata']) <> '{}'::jsonb THEN
            jsonb_build_object('code', 'unknown_field',
                               'message', format('unknown field %s; allowed: type, event_id, timestamp, user_id, '
                                                 'anonymous_id, session_id, path, label, duration, device, metadata',
                                                 left(to_json(analytics_internal.fn_first_unknown_field(p_event,
                                                     ARRAY['type', 'event_id', 'timestamp', 'user_id',
                                                           'anonymous_id', 'session_id', 'path', 'label',
                                                           'duration', 'device', 'metadata']))::text, 66)))
        WHEN p_type IS NULL THEN
            jsonb_build_object('code', 'missing_field', 'message', 'field "type" is required')
        WHEN jsonb_typeof(p_event -> 'type') <> 'string'
          OR char_length(p_type) NOT BETWEEN 1 AND 128
          -- Unicode White_Space at either end (btrim: cheaper than a regex anchored at the end)
          OR btrim(p_type, E' \t\n\u000b\f\r\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005'
                           '\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000') <> p_type THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "type" must be a string of 1 to 128 printable characters '
                                          'with no leading or trailing space')
        WHEN NOT analytics_internal.fn_is_valid_text_field(p_event_id, jsonb_typeof(p_event -> 'event_id'), 128) THEN
            analytics_internal.fn_invalid_text_field('event_id', 128)
        WHEN NOT analytics_internal.fn_is_valid_text_field(p_user_id, jsonb_typeof(p_event -> 'user_id'), 256) THEN
            analytics_internal.fn_invalid_text_field('user_id', 256)
        WHEN NOT analytics_internal.fn_is_valid_text_field(p_anonymous_id, jsonb_typeof(p_event -> 'anonymous_id'), 256) THEN
            analytics_internal.fn_invalid_text_field('anonymous_id', 256)
        WHEN NOT analytics_internal.fn_is_valid_text_field(p_session_id, jsonb_typeof(p_event -> 'session_id'), 256) THEN
            analytics_internal.fn_invalid_text_field('session_id', 256)
        WHEN NOT analytics_internal.fn_is_valid_text_field(p_path, jsonb_typeof(p_event -> 'path'), 2048) THEN
            analytics_internal.fn_invalid_text_field('path', 2048)
        WHEN NOT analytics_internal.fn_is_valid_text_field(p_label, jsonb_typeof(p_event -> 'label'), 1024) THEN
            analytics_internal.fn_invalid_text_field('label', 1024)
        WHEN NOT analytics_internal.fn_is_clean_text(concat(p_type, p_event_id, p_user_id, p_anonymous_id, p_session_id,
                                                            p_path, p_label)) THEN
            CASE WHEN NOT analytics_internal.fn_is_clean_text(p_type) THEN
                     jsonb_build_object('code', 'invalid_field',
                                        'message', 'field "type" must be a string of 1 to 128 printable characters '
                                                   'with no leading or trailing space')
                 WHEN NOT analytics_internal.fn_is_clean_text(p_event_id) THEN
                     analytics_internal.fn_invalid_text_field('event_id', 128)
                 WHEN NOT analytics_internal.fn_is_clean_text(p_user_id) THEN
                     analytics_internal.fn_invalid_text_field('user_id', 256)
                 WHEN NOT analytics_internal.fn_is_clean_text(p_anonymous_id) THEN
                     analytics_internal.fn_invalid_text_field('anonymous_id', 256)
                 WHEN NOT analytics_internal.fn_is_clean_text(p_session_id) THEN
                     analytics_internal.fn_invalid_text_field('session_id', 256)
                 WHEN NOT analytics_internal.fn_is_clean_text(p_path) THEN
                     analytics_internal.fn_invalid_text_field('path', 2048)
                 ELSE analytics_internal.fn_invalid_text_field('label', 1024) END
        WHEN p_duration IS NOT NULL
         AND (jsonb_typeof(p_event -> 'duration') <> 'number'
              OR NOT CASE WHEN jsonb_typeof(p_event -> 'duration') = 'number'
                          THEN (p_event -> 'duration')::numeric BETWEEN 0 AND 9007199254740991
                               AND (p_event -> 'duration')::numeric = trunc((p_event -> 'duration')::numeric) END) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "duration" must be a whole number of milliseconds between 0 and 2^53-1')
        WHEN p_timestamp IS NOT NULL AND p_event_time IS NULL THEN
            jsonb_build_object('code', 'invalid_timestamp',
                               'message', 'field "timestamp" must be an ISO 8601 date-time such as '
                                          '2026-01-31T12:00:00Z, or milliseconds since 1970-01-01 UTC')
        WHEN p_device IS NOT NULL AND jsonb_typeof(p_device) <> 'null'
         AND NOT analytics_internal.fn_is_valid_device(p_device) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "device" must be an object with only os, os_version, model, '
                                          'manufacturer, app_version, app_build, locale, timezone, carrier, '
                                          'network, sdk_name, sdk_version (strings of at most 128 printable '
                                          'characters) and screen_width, screen_height (0 to 100000)')
        WHEN p_metadata IS NOT NULL AND jsonb_typeof(p_metadata) NOT IN ('null', 'object') THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "metadata" must be a JSON object')
    END
$$;

COMMENT ON FUNCTION analytics_internal.fn_event_problem(jsonb, timestamptz, text, text, text, text, text, text,
                                                         text, text, text, jsonb, jsonb) IS
    'Why an event cannot be stored ({code, message}), or NULL when it is valid.';
