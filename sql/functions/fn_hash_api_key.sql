-- analytics_internal.fn_hash_api_key(p_api_key) -> bytea
-- Keys are random 256-bit strings, so one SHA-256 is enough (no salt or stretching needed);
-- the built-in sha256() keeps us independent of pgcrypto, which not every host offers.
CREATE OR REPLACE FUNCTION analytics_internal.fn_hash_api_key(p_api_key text)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
STRICT
PARALLEL SAFE
SECURITY INVOKER
SET search_path = pg_catalog
AS $$
    SELECT sha256(convert_to(p_api_key, 'UTF8'))
$$;

COMMENT ON FUNCTION analytics_internal.fn_hash_api_key(text) IS
    'SHA-256 of an API key: the only form in which keys are stored.';
