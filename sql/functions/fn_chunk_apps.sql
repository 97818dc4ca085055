-- analytics_internal.fn_chunk_apps(p_start, p_end) -> integer[]
--
-- The apps (pk_app, ascending) with at least one raw event in [p_start, p_end): one index probe
-- per app on (fk_app, "timestamp"), so it costs the same for a chunk of any size.
--
-- PL/pgSQL rather than SQL on purpose: its plans go through the plan cache, which forgets
-- them when a chunk is dropped; a SQL function called from fn_apply_retention's loop kept a
-- plan naming the chunk dropped one iteration earlier (seen on TimescaleDB).
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_chunk_apps(p_start timestamptz, p_end timestamptz)
RETURNS integer[]
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(a.pk_app ORDER BY a.pk_app), '{}')
            FROM analytics.tb_app a
            WHERE EXISTS (SELECT 1 FROM analytics.tb_event e
                          WHERE e.fk_app = a.pk_app AND e."timestamp" >= p_start AND e."timestamp" < p_end));
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_chunk_apps(timestamptz, timestamptz) IS
    'Apps (pk_app) with raw events in a time range.';
