-- analytics_internal.fn_time_bucket(p_width, p_time) -> timestamptz
--
-- Start of the p_width-wide bucket that holds p_time, aligned like TimescaleDB's
-- time_bucket(p_width, p_time): on 2000-01-03 00:00 UTC, so hours and days are UTC hours and
-- UTC days on both engines. The PostgreSQL engine's rollups, invalidation log and fn_metrics
-- bucket with it.
--
--   p_width  bucket width without months (e.g. '1 hour', '1 day')
--   p_time   the time to bucket
--
-- Errors: those of date_bin (22023 for a width with months or of zero length).
--
-- No SET search_path on purpose: it is inlined into rollup views and per-row expressions, and
-- a SET clause would stop that. The body uses only pg_catalog, which is always searched first.
CREATE OR REPLACE FUNCTION analytics_internal.fn_time_bucket(p_width interval, p_time timestamptz)
RETURNS timestamptz
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT pg_catalog.date_bin(p_width, p_time, timestamptz '2000-01-03 00:00:00+00')
$$;

COMMENT ON FUNCTION analytics_internal.fn_time_bucket(interval, timestamptz) IS
    'Start of the bucket of a given width holding a time, aligned like TimescaleDB''s time_bucket (UTC hours and days).';
