-- analytics_internal.fn_setting(p_name) -> text
-- Reads one install-wide setting (engine, chunk_interval, batch limits, ...).
CREATE OR REPLACE FUNCTION analytics_internal.fn_setting(p_name text)
RETURNS text
LANGUAGE sql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
    SELECT value FROM analytics_internal.tb_setting WHERE name = p_name
$$;

COMMENT ON FUNCTION analytics_internal.fn_setting(text) IS
    'Value of one install-wide setting from analytics_internal.tb_setting, NULL when unset.';
