-- analytics_internal.fn_retention_grace() -> interval
--
-- The setting retention_grace (default 4 days), never less than 3 days: a chunk is dropped
-- this long after the end of the last UTC day it touches has passed its apps' retention. On
-- TimescaleDB the refresh policies reach one day less far back, and need the rest to
-- materialize the last late events even when a run is a day late (see docs/lifecycle.md).
--
-- Errors: 22007 when the setting is not an interval.
CREATE OR REPLACE FUNCTION analytics_internal.fn_retention_grace()
RETURNS interval
LANGUAGE sql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
    SELECT greatest(coalesce(analytics_internal.fn_setting('retention_grace'), '4 days')::interval,
                    interval '3 days')
$$;

COMMENT ON FUNCTION analytics_internal.fn_retention_grace() IS
    'How long past retention a raw-event chunk is kept (setting retention_grace, at least 3 days).';
