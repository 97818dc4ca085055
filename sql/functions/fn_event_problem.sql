-- analytics_internal.fn_event_problem(p_event, p_fields, p_device, p_event_time) -> jsonb or NULL
--
-- Why one event of a batch cannot be stored, as {"code": ..., "message": ...}; NULL when it
-- is valid. The caller computes once per event, and passes in:
--   p_fields      jsonb_populate_record(NULL::tp_event_fields, p_event)   (NULL if not an object)
--   p_device      jsonb_populate_record(NULL::tp_device_fields, device)    (NULL if not an object)
--   p_event_time  fn_parse_event_time(p_event -> 'timestamp')
-- Codes:
--   not_an_object      the event is not a JSON object
--   unknown_field      a top-level field outside the documented set
--   missing_field      "type" is absent or null
--   invalid_field      a field has the wrong JSON type, length or characters
--   invalid_timestamp  "timestamp" is neither ISO 8601 nor epoch milliseconds
-- (fn_track_events adds event_too_large, unstorable_text and too_old.)
-- No SET search_path and no sub-selects, so that it inlines (see fn_is_clean_text).
CREATE OR REPLACE FUNCTION analytics_internal.fn_event_problem(
    p_event       jsonb,
    p_fields      analytics_internal.tp_event_fields,
    p_device      analytics_internal.tp_device_fields,
    p_event_time  timestamptz)
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
        WHEN (p_fields).type IS NULL THEN
            jsonb_build_object('code', 'missing_field', 'message', 'field "type" is required')
        WHEN jsonb_typeof(p_event -> 'type') <> 'string'
          OR (p_fields).type !~ '^\S(.*\S)?$'
          OR NOT analytics_internal.fn_is_clean_text((p_fields).type, 128) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "type" must be a string of 1 to 128 printable characters '
                                          'with no leading or trailing space')
        WHEN NOT analytics_internal.fn_is_valid_text_field((p_fields).event_id, jsonb_typeof(p_event -> 'event_id'), 128) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "event_id" must be a non-empty string of at most 128 printable characters')
        WHEN NOT analytics_internal.fn_is_valid_text_field((p_fields).user_id, jsonb_typeof(p_event -> 'user_id'), 256) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "user_id" must be a non-empty string of at most 256 printable characters')
        WHEN NOT analytics_internal.fn_is_valid_text_field((p_fields).anonymous_id, jsonb_typeof(p_event -> 'anonymous_id'), 256) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "anonymous_id" must be a non-empty string of at most 256 printable characters')
        WHEN NOT analytics_internal.fn_is_valid_text_field((p_fields).session_id, jsonb_typeof(p_event -> 'session_id'), 256) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "session_id" must be a non-empty string of at most 256 printable characters')
        WHEN NOT analytics_internal.fn_is_valid_text_field((p_fields).path, jsonb_typeof(p_event -> 'path'), 2048) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "path" must be a non-empty string of at most 2048 printable characters')
        WHEN NOT analytics_internal.fn_is_valid_text_field((p_fields).label, jsonb_typeof(p_event -> 'label'), 1024) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "label" must be a non-empty string of at most 1024 printable characters')
        WHEN (p_fields).duration IS NOT NULL
         AND (jsonb_typeof(p_event -> 'duration') <> 'number'
              OR (p_fields).duration !~ '^\d{1,16}(\.0*)?$'
              OR (p_fields).duration::numeric > 9007199254740991) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "duration" must be a whole number of milliseconds between 0 and 2^53-1')
        WHEN (p_fields)."timestamp" IS NOT NULL AND p_event_time IS NULL THEN
            jsonb_build_object('code', 'invalid_timestamp',
                               'message', 'field "timestamp" must be an ISO 8601 date-time such as '
                                          '2026-01-31T12:00:00Z, or milliseconds since 1970-01-01 UTC')
        WHEN (p_fields).device IS NOT NULL AND jsonb_typeof((p_fields).device) <> 'null'
         AND NOT analytics_internal.fn_is_valid_device((p_fields).device, p_device) THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "device" must be an object with only os, os_version, model, '
                                          'manufacturer, app_version, app_build, locale, timezone, carrier, '
                                          'network, sdk_name, sdk_version (strings of at most 128 printable '
                                          'characters) and screen_width, screen_height (0 to 100000)')
        WHEN (p_fields).metadata IS NOT NULL AND jsonb_typeof((p_fields).metadata) NOT IN ('null', 'object') THEN
            jsonb_build_object('code', 'invalid_field',
                               'message', 'field "metadata" must be a JSON object')
    END
$$;

COMMENT ON FUNCTION analytics_internal.fn_event_problem(jsonb, analytics_internal.tp_event_fields,
                                                         analytics_internal.tp_device_fields, timestamptz) IS
    'Why an event cannot be stored ({code, message}), or NULL when it is valid.';
