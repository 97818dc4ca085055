-- analytics_internal.fn_chunk_retention(p_start, p_end) -> (apps, retention_days, expires_at)
--
-- When the raw-event chunk [p_start, p_end) expires:
--   expires_at = end of the last UTC day the chunk touches + retention_days + retention grace
-- where retention_days is
--   PostgreSQL:  the longest retention among the apps with events in the chunk (of all apps
--                when it is empty: an empty partition stays as long as any app may still send
--                events there, rather than be dropped and made again). Rollups are invalidated
--                per app, so an app with no events there that sends a late one after the drop
--                only recomputes its own buckets.
--   TimescaleDB: the longest retention of all apps. Continuous aggregates are invalidated by
--                time range for every app at once: a late event in a dropped range would
--                recompute, and empty, the buckets of the apps whose events were dropped; and
--                the refresh policies must reach back as far as any app may send events.
-- Whole UTC days: a daily rollup bucket is only ever recomputed from complete raw data, and by
-- then every app with events in that day refuses new ones there as too_old.
--
--   p_start, p_end  the chunk's range
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_chunk_retention(
    p_start timestamptz,
    p_end timestamptz,
    OUT apps integer[],
    OUT retention_days integer,
    OUT expires_at timestamptz)
RETURNS record
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
BEGIN
    apps := analytics_internal.fn_chunk_apps(p_start, p_end);
    IF analytics.fn_engine() = 'timescaledb' OR cardinality(apps) = 0 THEN
        SELECT max(a.retention_days) INTO retention_days FROM analytics.tb_app a;
    ELSE
        SELECT max(a.retention_days) INTO retention_days FROM analytics.tb_app a WHERE a.pk_app = ANY (apps);
    END IF;
    retention_days := coalesce(retention_days, 0);
    expires_at := analytics_internal.fn_time_bucket('1 day', p_end - interval '1 microsecond') + interval '1 day'
                  + make_interval(days => retention_days) + analytics_internal.fn_retention_grace();
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_chunk_retention(timestamptz, timestamptz) IS
    'Apps with events in a raw-event chunk, the retention that applies to it and when it expires.';
