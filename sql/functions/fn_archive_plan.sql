-- analytics.fn_archive_plan(p_range_start, p_app, p_day)
--     -> setof (fk_app, app_id, day, range_start, range_end, from_time, to_time, row_count,
--               id_checksum, state, archived_rows, archived_checksum, object_key, target, matched)
--
-- What archiving the raw-event chunk that starts at p_range_start involves: one row per app and
-- UTC day with events in the chunk (row_count events, id_checksum = sum of
-- hashtextextended(id::text, 0)), joined with that app-day's row of the archive ledger
-- (analytics_internal.tb_archive_object), plus ledger rows whose app-day has no events any more
-- (row_count 0: their objects are stale and are deleted by the archive). matched: the ledger
-- row is verified and its row count and checksum are the chunk's now. from_time and to_time
-- bound the app-day's events within the chunk (pass them to fn_archive_rows).
--
-- `mobile-analytics archive` reads it in the same REPEATABLE READ transaction as the rows it
-- exports, so that the counts it records are those of the rows in the object.
--
--   p_range_start  start of a chunk (analytics.fn_retention_status lists them)
--   p_app          only this app (identifier or uuid; NULL: all)
--   p_day          only this UTC day (NULL: all)
--
-- Errors: P0002 no chunk starts at p_range_start, or unknown app.
--
-- SECURITY DEFINER: the archive role needs no grant on the ledger (the events themselves it
-- reads with its own rights, through fn_archive_rows).
CREATE OR REPLACE FUNCTION analytics.fn_archive_plan(
    p_range_start  timestamptz,
    p_app          text DEFAULT NULL,
    p_day          date DEFAULT NULL)
RETURNS TABLE (
    fk_app             integer,
    app_id             uuid,
    day                date,
    range_start        timestamptz,
    range_end          timestamptz,
    from_time          timestamptz,
    to_time            timestamptz,
    row_count          bigint,
    id_checksum        numeric,
    state              text,
    archived_rows      bigint,
    archived_checksum  numeric,
    object_key         text,
    target             text,
    matched            boolean)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_end     timestamptz;
    v_pk_app  integer;
    v_from    timestamptz;
    v_to      timestamptz;
BEGIN
    SELECT c.range_end INTO v_end FROM analytics_internal.fn_event_chunks() c WHERE c.range_start = p_range_start;
    IF v_end IS NULL THEN
        RAISE EXCEPTION 'no raw-event chunk starts at %', coalesce(p_range_start::text, 'NULL')
            USING ERRCODE = 'P0002',
                  HINT = 'List the chunks with SELECT * FROM analytics.fn_retention_status().';
    END IF;
    IF p_app IS NOT NULL THEN
        v_pk_app := analytics_internal.fn_require_app(p_app);
    END IF;
    -- greatest/least skip NULLs: without p_day, the whole chunk.
    v_from := greatest(p_range_start, p_day::timestamp AT TIME ZONE 'UTC');
    v_to := least(v_end, (p_day + 1)::timestamp AT TIME ZONE 'UTC');

    RETURN QUERY
        WITH cur AS (
            SELECT e.fk_app, (e."timestamp" AT TIME ZONE 'UTC')::date AS day,
                   count(*) AS row_count, sum(hashtextextended(e.id::text, 0)) AS id_checksum
            FROM analytics.tb_event e
            WHERE e."timestamp" >= v_from AND e."timestamp" < v_to
              AND (v_pk_app IS NULL OR e.fk_app = v_pk_app)
            GROUP BY 1, 2
        ), led AS (
            SELECT o.*
            FROM analytics_internal.tb_archive_object o
            WHERE o.range_start = p_range_start
              AND (v_pk_app IS NULL OR o.fk_app = v_pk_app)
              AND (p_day IS NULL OR o.day = p_day)
        )
        SELECT coalesce(c.fk_app, l.fk_app),
               coalesce(a.id, l.app_id),
               coalesce(c.day, l.day),
               p_range_start,
               v_end,
               greatest(p_range_start, coalesce(c.day, l.day)::timestamp AT TIME ZONE 'UTC'),
               least(v_end, (coalesce(c.day, l.day) + 1)::timestamp AT TIME ZONE 'UTC'),
               coalesce(c.row_count, 0),
               coalesce(c.id_checksum, 0),
               l.state,
               l.row_count,
               l.id_checksum,
               l.object_key,
               l.target,
               coalesce(l.state = 'verified' AND c.row_count = l.row_count AND c.id_checksum = l.id_checksum, false)
        FROM cur c
        FULL JOIN led l ON l.fk_app = c.fk_app AND l.day = c.day
        LEFT JOIN analytics.tb_app a ON a.pk_app = c.fk_app
        ORDER BY 3, 1;
END
$$;

COMMENT ON FUNCTION analytics.fn_archive_plan(timestamptz, text, date) IS
    'Per app and UTC day of a raw-event chunk: event count and id checksum now, and the archive ledger''s row for it.';
