-- analytics_internal.fn_local_days_refresh(p_pk_app, p_until) -> (days, rebuilt, watermark)
--
-- Brings one app's local-day summary (analytics_internal.tb_local_day_event and
-- tb_local_day_activity, read by analytics.fn_metrics) up to the local midnight that starts the
-- app's day holding p_until (the new watermark), from the rollups:
--   * UTC apps have no summary (fn_metrics reads the UTC daily rollups): any is removed;
--   * rebuild from scratch when there is none yet or the app's time zone changed;
--   * otherwise summarize the local days that are new since the last refresh, and re-summarize
--     those that touch a UTC day whose totals in the daily rollups (events, users, sessions,
--     session seconds) changed since they were summarized: late events, deleted events or users.
-- Each UTC day's totals are kept in analytics_internal.tb_local_day_source to notice changes.
-- A local day is computed as fn_metrics computes it live: event counts from ca_event_hourly's
-- hours that start on that local date, users and sessions with the same functions
-- (analytics_internal.fn_period_users, fn_period_sessions); so the summary changes where
-- fn_metrics reads, not what it answers. Refreshes of one app run one at a time (the state row is locked). Totals are read a
-- moment before the days are re-summarized: a change committed in between is summarized again
-- by the next refresh.
--
--   p_pk_app  the app
--   p_until   the new watermark is the local midnight before it (default now())
--
-- Returns the local days (re)summarized, whether it rebuilt, and the new watermark (NULL for a
-- UTC app).
--
-- Errors: none of its own.
CREATE OR REPLACE FUNCTION analytics_internal.fn_local_days_refresh(p_pk_app integer, p_until timestamptz DEFAULT now())
RETURNS TABLE (days bigint, rebuilt boolean, watermark timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- a handful of one-off aggregations per run: compiling them would cost more than running them
SET jit = off
-- The rollup readers span every raw-event partition: planned once per session (maintenance
-- refreshes app after app), not once per app.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    v_timezone  text;
    v_state     record;
    v_old_mark  timestamptz;
    v_mark      timestamptz;
    v_rebuild   boolean;
    v_buckets   timestamptz[];
    v_events    bigint[];
    v_users     bigint[];
    v_sessions  bigint[];
    v_seconds   numeric[];
    v_dirty     timestamptz[];
    v_range     record;
    v_days      bigint := 0;
BEGIN
    SELECT a.timezone INTO v_timezone FROM analytics.tb_app a WHERE a.pk_app = p_pk_app;
    IF v_timezone IS NULL OR v_timezone IN ('UTC', 'Etc/UTC') THEN
        DELETE FROM analytics_internal.tb_local_day_event e WHERE e.fk_app = p_pk_app;
        DELETE FROM analytics_internal.tb_local_day_activity a WHERE a.fk_app = p_pk_app;
        DELETE FROM analytics_internal.tb_local_day_source s WHERE s.fk_app = p_pk_app;
        DELETE FROM analytics_internal.tb_local_day_state s WHERE s.fk_app = p_pk_app;
        RETURN QUERY SELECT 0::bigint, false, NULL::timestamptz;
        RETURN;
    END IF;

    INSERT INTO analytics_internal.tb_local_day_state AS s (fk_app, timezone, watermark)
    VALUES (p_pk_app, v_timezone, '-infinity')
    ON CONFLICT (fk_app) DO NOTHING;
    SELECT s.timezone, s.watermark INTO v_state
    FROM analytics_internal.tb_local_day_state s WHERE s.fk_app = p_pk_app
    FOR UPDATE;
    v_rebuild := v_state.watermark = '-infinity' OR v_state.timezone IS DISTINCT FROM v_timezone;
    v_old_mark := CASE WHEN v_rebuild THEN '-infinity' ELSE v_state.watermark END;
    -- never move back: the summary already covers the days before the old watermark
    v_mark := greatest(date_trunc('day', p_until, v_timezone), v_old_mark);
    IF v_rebuild THEN
        DELETE FROM analytics_internal.tb_local_day_event e WHERE e.fk_app = p_pk_app;
        DELETE FROM analytics_internal.tb_local_day_activity a WHERE a.fk_app = p_pk_app;
        DELETE FROM analytics_internal.tb_local_day_source s WHERE s.fk_app = p_pk_app;
    END IF;

    -- Totals of every UTC day that touches a summarized local day, as of now. Days before the
    -- per-day rollups existed (app_daily_rollups_from) have no users or sessions there: 0.
    SELECT coalesce(array_agg(t.bucket ORDER BY t.bucket), '{}'),
           coalesce(array_agg(t.event_count ORDER BY t.bucket), '{}'),
           coalesce(array_agg(t.users ORDER BY t.bucket), '{}'),
           coalesce(array_agg(t.sessions ORDER BY t.bucket), '{}'),
           coalesce(array_agg(t.session_seconds ORDER BY t.bucket), '{}')
    INTO v_buckets, v_events, v_users, v_sessions, v_seconds
    FROM (SELECT coalesce(e.bucket, u.bucket, s.bucket) AS bucket,
                 coalesce(e.event_count, 0) AS event_count, coalesce(u.users, 0) AS users,
                 coalesce(s.sessions, 0) AS sessions, coalesce(s.session_seconds, 0) AS session_seconds
          FROM (SELECT d.bucket, sum(d.event_count)::bigint AS event_count
                FROM fn_ca_event_daily_between(p_pk_app, '-infinity', v_mark) d
                GROUP BY d.bucket) e
          FULL JOIN (SELECT d.bucket, d.users FROM fn_ca_app_daily_between(p_pk_app, '-infinity', v_mark) d) u
                 ON u.bucket = e.bucket
          FULL JOIN (SELECT d.bucket, d.sessions, d.session_seconds
                     FROM fn_ca_app_session_daily_between(p_pk_app, '-infinity', v_mark) d) s
                 ON s.bucket = coalesce(e.bucket, u.bucket)) t;

    -- UTC days that are new, changed or gone since the last refresh, as the local days they touch
    -- (an hour belongs to the local date it starts on; a user's first or last event to its own)
    SELECT coalesce(array_agg(DISTINCT l.day), '{}')
    INTO v_dirty
    FROM (SELECT coalesce(c.bucket, o.bucket) AS bucket
          FROM unnest(v_buckets, v_events, v_users, v_sessions, v_seconds)
                   AS c(bucket, event_count, users, sessions, session_seconds)
          FULL JOIN (SELECT o.* FROM analytics_internal.tb_local_day_source o WHERE o.fk_app = p_pk_app) o
                 ON o.bucket = c.bucket
          WHERE o.bucket IS NULL OR c.bucket IS NULL
             OR (o.event_count, o.users, o.sessions, o.session_seconds)
                IS DISTINCT FROM (c.event_count, c.users, c.sessions, c.session_seconds)) d
    CROSS JOIN LATERAL (VALUES (date_trunc('day', d.bucket, v_timezone)),
                               (date_trunc('day', d.bucket + interval '23 hours', v_timezone)),
                               (date_trunc('day', d.bucket + interval '1 day' - interval '1 microsecond', v_timezone))) AS l(day)
    WHERE l.day < v_old_mark;

    -- Re-summarize: the changed local days before the old watermark and every day from it to the
    -- new one, merged into runs of adjacent days (one pass over the rollups per run).
    FOR v_range IN
        WITH day_range AS (
            -- (to the next local date's midnight: a day is not always 24 hours long)
            SELECT x.day AS range_from, ((x.day AT TIME ZONE v_timezone)::date + 1)::timestamp AT TIME ZONE v_timezone AS range_to
            FROM unnest(v_dirty) AS x(day)
            UNION ALL
            -- a rebuild starts at the local day of the first UTC day with events
            SELECT CASE WHEN isfinite(v_old_mark) THEN v_old_mark ELSE date_trunc('day', v_buckets[1], v_timezone) END, v_mark
            WHERE v_old_mark < v_mark AND cardinality(v_buckets) > 0
        ), numbered AS (
            SELECT r.range_from, r.range_to,
                   max(r.range_to) OVER (ORDER BY r.range_from ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_to
            FROM day_range r
        )
        SELECT min(n.range_from) AS range_from, max(n.range_to) AS range_to
        FROM (SELECT n.*, count(*) FILTER (WHERE n.previous_to IS NULL OR n.range_from > n.previous_to)
                              OVER (ORDER BY n.range_from) AS run
              FROM numbered n) n
        GROUP BY n.run
    LOOP
        DELETE FROM analytics_internal.tb_local_day_event e
        WHERE e.fk_app = p_pk_app AND e.bucket >= v_range.range_from AND e.bucket < v_range.range_to;
        DELETE FROM analytics_internal.tb_local_day_activity a
        WHERE a.fk_app = p_pk_app AND a.bucket >= v_range.range_from AND a.bucket < v_range.range_to;

        INSERT INTO analytics_internal.tb_local_day_event
            (fk_app, bucket, event_type, os, app_version, event_count, crash_count)
        SELECT p_pk_app, fn_metric_period(h.bucket, 'day', v_timezone), h.event_type, h.os, h.app_version,
               sum(h.event_count), sum(h.crash_count)
        FROM fn_ca_event_hourly_between(p_pk_app, v_range.range_from, v_range.range_to) h
        GROUP BY 2, 3, 4, 5;

        INSERT INTO analytics_internal.tb_local_day_activity (fk_app, bucket, users, sessions, session_seconds)
        SELECT p_pk_app, coalesce(u.period, s.period), coalesce(u.users, 0), coalesce(s.sessions, 0),
               coalesce(s.session_seconds, 0)
        FROM fn_period_users(p_pk_app, 'day', v_timezone, v_range.range_from, v_range.range_to) u
        FULL JOIN fn_period_sessions(p_pk_app, 'day', v_timezone, v_range.range_from, v_range.range_to) s
               ON s.period = u.period;

        v_days := v_days + ((v_range.range_to AT TIME ZONE v_timezone)::date - (v_range.range_from AT TIME ZONE v_timezone)::date);
    END LOOP;

    -- remember the totals the summary now reflects
    DELETE FROM analytics_internal.tb_local_day_source o
    WHERE o.fk_app = p_pk_app AND o.bucket <> ALL (v_buckets);
    INSERT INTO analytics_internal.tb_local_day_source AS o (fk_app, bucket, event_count, users, sessions, session_seconds)
    SELECT p_pk_app, c.bucket, c.event_count, c.users, c.sessions, c.session_seconds
    FROM unnest(v_buckets, v_events, v_users, v_sessions, v_seconds) AS c(bucket, event_count, users, sessions, session_seconds)
    ON CONFLICT (fk_app, bucket) DO UPDATE
    SET event_count = excluded.event_count, users = excluded.users, sessions = excluded.sessions,
        session_seconds = excluded.session_seconds
    WHERE (o.event_count, o.users, o.sessions, o.session_seconds)
          IS DISTINCT FROM (excluded.event_count, excluded.users, excluded.sessions, excluded.session_seconds);

    RETURN QUERY
    UPDATE analytics_internal.tb_local_day_state s
    SET (timezone, watermark, refreshed_at) = (v_timezone, v_mark, now()),
        rebuilt_at = coalesce(CASE WHEN v_rebuild THEN now() END, s.rebuilt_at)
    WHERE s.fk_app = p_pk_app
    RETURNING v_days, v_rebuild, s.watermark;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_local_days_refresh(integer, timestamptz) IS
    'Bring one app''s local-day summary (read by fn_metrics for apps outside UTC) up to its current local day.';
