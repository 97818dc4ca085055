-- analytics_internal.fn_is_clean_text(p_text, p_max_chars) -> boolean
--
-- True when p_text has at most p_max_chars characters and none that would corrupt a log line,
-- a CSV export or a dashboard label: C0/C1 controls, DEL, line/paragraph separators,
-- bidirectional overrides and isolates, byte-order marks and non-characters.
--
-- No SET search_path on purpose: a SET clause stops the planner from inlining this per-event
-- check into fn_track_events. The body uses only pg_catalog, which is always searched first.
CREATE OR REPLACE FUNCTION analytics_internal.fn_is_clean_text(p_text text, p_max_chars integer)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT char_length(p_text) <= p_max_chars
       AND p_text !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]'
$$;

COMMENT ON FUNCTION analytics_internal.fn_is_clean_text(text, integer) IS
    'True when the text fits p_max_chars and holds no control, separator, bidi-override or BOM character.';
