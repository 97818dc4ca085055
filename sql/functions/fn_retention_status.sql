-- analytics.fn_retention_status(p_details)
--     -> setof (range_start, range_end, relation, apps, retention_days, expires_at, expired,
--               unarchived_app_days, action)
--
-- One row per raw-event chunk (partition), oldest first: which apps have events in it
-- (identifiers), the retention that applies (analytics_internal.fn_chunk_retention), when it
-- expires, and what retention will do with it under the current retention_mode:
--   retain   not expired yet
--   keep     expired, but retention_mode is keep
--   archive  expired; unarchived_app_days app-days are not archived (or changed since): the
--            next `mobile-analytics archive` exports them, then drops the chunk
--   drop     expired, and archived (mode archive) or mode drop: the next
--            analytics.fn_apply_retention() drops it (if its rollups are settled)
-- unarchived_app_days is computed for expired chunks in mode archive only, and only with
-- p_details (it counts the chunk's events by app and day); NULL otherwise, and action is then
-- 'drop' for every expired chunk that mode archive or drop would drop once archived.
--
--   p_details  count unarchived app-days (default true; the archive itself passes false)
--
-- Errors: none.
--
-- SECURITY DEFINER: a monitoring role may read it without being granted the events.
CREATE OR REPLACE FUNCTION analytics.fn_retention_status(p_details boolean DEFAULT true)
RETURNS TABLE (
    range_start          timestamptz,
    range_end            timestamptz,
    relation             text,
    apps                 text[],
    retention_days       integer,
    expires_at           timestamptz,
    expired              boolean,
    unarchived_app_days  bigint,
    action               text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_mode   text := analytics_internal.fn_setting('retention_mode');
    v_chunk  record;
    v_ret    record;
BEGIN
    FOR v_chunk IN SELECT c.* FROM analytics_internal.fn_event_chunks() c ORDER BY c.range_start LOOP
        v_ret := analytics_internal.fn_chunk_retention(v_chunk.range_start, v_chunk.range_end);
        range_start := v_chunk.range_start;
        range_end := v_chunk.range_end;
        relation := v_chunk.relation::text;
        apps := ARRAY(SELECT a.identifier FROM analytics.tb_app a WHERE a.pk_app = ANY (v_ret.apps) ORDER BY a.pk_app);
        retention_days := v_ret.retention_days;
        expires_at := v_ret.expires_at;
        expired := v_ret.expires_at <= now();
        unarchived_app_days := NULL;
        IF expired AND v_mode = 'archive' AND p_details THEN
            SELECT count(*) INTO unarchived_app_days
            FROM analytics.fn_archive_plan(v_chunk.range_start) p
            WHERE NOT p.matched;
        END IF;
        action := CASE WHEN NOT expired THEN 'retain'
                       WHEN v_mode = 'keep' THEN 'keep'
                       WHEN v_mode = 'archive' AND unarchived_app_days > 0 THEN 'archive'
                       ELSE 'drop' END;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION analytics.fn_retention_status(boolean) IS
    'Raw-event chunks with their apps, retention, expiry and what retention will do with each.';
