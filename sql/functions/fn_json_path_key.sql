-- analytics_internal.fn_json_path_key(p_path, p_key) -> text
--
-- The JSON path of member p_key of the object at p_path, for error messages: $.and[0].event,
-- or $.and[0]["odd key"] when the key is not a plain name (quoted as a JSON string, cut to 40
-- characters so that a hostile key cannot flood the message).
--
--   p_path  path of the object ($ for the whole filter)
--   p_key   the member's key
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_json_path_key(p_path text, p_key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_key ~ '^[A-Za-z_][A-Za-z0-9_]{0,39}$' THEN p_path || '.' || p_key
                ELSE p_path || '[' || to_json(left(p_key, 40))::text || ']' END
$$;

COMMENT ON FUNCTION analytics_internal.fn_json_path_key(text, text) IS
    'JSON path of an object member for error messages: $.a.b, or $.a["odd key"] (key cut to 40 characters).';
