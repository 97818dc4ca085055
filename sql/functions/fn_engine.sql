-- analytics.fn_engine() -> text
-- Which storage engine this install uses: 'timescaledb' (hypertable, continuous aggregates,
-- policies) or 'postgresql' (declarative partitions, rollups refreshed by maintenance).
CREATE OR REPLACE FUNCTION analytics.fn_engine()
RETURNS text
LANGUAGE sql
STABLE
SECURITY DEFINER  -- readable by roles that may not see analytics_internal
SET search_path = pg_catalog, analytics_internal, pg_temp
AS $$
    SELECT analytics_internal.fn_setting('engine')
$$;

COMMENT ON FUNCTION analytics.fn_engine() IS
    'The storage engine chosen at install time: timescaledb or postgresql.';
