-- analytics_internal.fn_new_api_key(p_kind) -> text
-- A fresh key: 'maw_' (write) or 'mar_' (read) and 64 hex digits from two random uuids
-- (244 random bits; gen_random_uuid() uses the server's strong random source).
CREATE OR REPLACE FUNCTION analytics_internal.fn_new_api_key(p_kind text)
RETURNS text
LANGUAGE sql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog
AS $$
    SELECT CASE p_kind WHEN 'write' THEN 'maw_' ELSE 'mar_' END
           || replace(gen_random_uuid()::text, '-', '')
           || replace(gen_random_uuid()::text, '-', '')
$$;

COMMENT ON FUNCTION analytics_internal.fn_new_api_key(text) IS
    'A new random API key of the given kind (plaintext; store only its hash).';
