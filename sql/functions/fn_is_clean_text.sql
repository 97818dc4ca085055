-- analytics_internal.fn_is_clean_text(p_text) -> boolean
--
-- True when p_text holds no character that would corrupt a log line, a CSV export or a
-- dashboard label: C0/C1 controls, DEL, line/paragraph separators, bidirectional overrides
-- and isolates, byte-order marks and non-characters. NULL for NULL. Lengths are the caller's
-- business: p_text is used exactly once, so that even an expression (a concat of all an
-- event's fields) is inlined rather than called per row.
--
-- No SET search_path on purpose: a SET clause stops the planner from inlining this per-event
-- check into fn_track_events. The body uses only pg_catalog, which is always searched first.
CREATE OR REPLACE FUNCTION analytics_internal.fn_is_clean_text(p_text text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT p_text !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]'
$$;

COMMENT ON FUNCTION analytics_internal.fn_is_clean_text(text) IS
    'True when the text holds no control, separator, bidi-override, BOM or non-character.';
