-- analytics_internal.fn_is_valid_text_field(p_text, p_json_type, p_max_chars) -> boolean
--
-- The shape of an optional identifier-like field (user_id, session_id, event_id, path, a device
-- field, ...): absent or null (p_text NULL), or a non-empty JSON string, or a number (SDKs send
-- numeric ids), of at most p_max_chars characters. p_text is the field as text (->>), and
-- p_json_type its jsonb_typeof(), evaluated only when p_text is set. Control characters are
-- checked by the caller with fn_is_clean_text, once for all fields joined.
-- No SET search_path: see fn_is_clean_text (inlined per event).
CREATE OR REPLACE FUNCTION analytics_internal.fn_is_valid_text_field(p_text text, p_json_type text, p_max_chars integer)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT p_text IS NULL
        OR (p_json_type IN ('string', 'number')
            AND p_text <> ''
            AND char_length(p_text) <= p_max_chars)
$$;

COMMENT ON FUNCTION analytics_internal.fn_is_valid_text_field(text, text, integer) IS
    'True for an absent/null field or a non-empty string or number of at most p_max_chars characters.';
