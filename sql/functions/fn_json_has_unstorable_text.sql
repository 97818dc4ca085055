-- analytics_internal.fn_json_has_unstorable_text(p_json) -> boolean
--
-- The json type keeps escapes as written, but jsonb (and text) cannot hold U+0000 or an
-- unpaired UTF-16 surrogate: casting such an event to jsonb would abort the whole batch.
-- This finds those escapes first, so that only the one event is rejected: escaped backslashes
-- (\\) are dropped first, so that every backslash left starts an escape; then valid surrogate
-- pairs; whatever \u0000 or \uD800-\uDFFF escape remains cannot be stored.
-- No SET search_path: see fn_is_clean_text (inlined per event).
CREATE OR REPLACE FUNCTION analytics_internal.fn_json_has_unstorable_text(p_json text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT strpos(p_json, '\u') > 0
       AND regexp_replace(regexp_replace(p_json, '\\\\', '', 'g'),
                          '\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}', '', 'g')
           ~ '\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})'
$$;

COMMENT ON FUNCTION analytics_internal.fn_json_has_unstorable_text(text) IS
    'True when JSON text holds a \u0000 escape or an unpaired surrogate escape, which jsonb cannot store.';
