-- analytics_internal.fn_user_activity_refresh(p_pk_app, p_until) -> (users, rebuilt, watermark)
--
-- Brings one app's per-user activity summary (analytics_internal.tb_user_activity) up to the
-- start of the UTC day holding p_until (the new watermark), from analytics.ca_user_daily:
--   * rebuild from scratch when there is no summary yet or the app's time zone changed;
--   * otherwise re-summarize only the users of the days that are new since the last refresh
--     or whose row or event count changed (late or deleted events, a deleted user): those with
--     a row of such a day in ca_user_daily, and for a day that lost rows or events also those
--     the summary has as active on its local dates. Each is recomputed from all their user-days
--     before the watermark, and removed when they have none left.
-- Each day's counts are kept in analytics_internal.tb_user_activity_bucket to notice changes.
-- A row holds the user's first event and bit strings of their active local dates, weeks (from
-- Monday; numbered from the week of 2000-01-03) and months (numbered from January 2000),
-- relative to their first ones; a UTC user-day counts on the local dates of
-- its first and last event (it overlaps at most two). Refreshes of one app run one at a time
-- (the state row is locked). Counts read a moment before the users are re-summarized: a change
-- committed in between is summarized again by the next refresh.
--
--   p_pk_app  the app
--   p_until   the new watermark is the UTC day holding it (default now())
--
-- Returns the users re-summarized, whether it rebuilt, and the new watermark.
--
-- Errors: none of its own.
CREATE OR REPLACE FUNCTION analytics_internal.fn_user_activity_refresh(p_pk_app integer, p_until timestamptz DEFAULT now())
RETURNS TABLE (users bigint, rebuilt boolean, watermark timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
SET jit = off
-- a rebuild hashes every user of the app; spilling to disk would double its time
SET work_mem = '128MB'
AS $$
#variable_conflict use_column
DECLARE
    v_timezone  text;
    v_state     record;
    v_mark      timestamptz;
    v_buckets   timestamptz[];
    v_days      bigint[];
    v_events    bigint[];
    v_dirty     timestamptz[];
    v_shrunk    timestamptz[];
    v_rebuild   boolean;
    v_users     bigint;
BEGIN
    SELECT a.timezone INTO v_timezone FROM analytics.tb_app a WHERE a.pk_app = p_pk_app;
    INSERT INTO analytics_internal.tb_user_activity_state AS s (fk_app, timezone, watermark)
    VALUES (p_pk_app, v_timezone, '-infinity')
    ON CONFLICT (fk_app) DO NOTHING;
    SELECT s.timezone, s.watermark INTO v_state
    FROM analytics_internal.tb_user_activity_state s WHERE s.fk_app = p_pk_app
    FOR UPDATE;
    -- never move back: the summary already covers the days before the old watermark
    v_mark := greatest(fn_time_bucket(interval '1 day', p_until), v_state.watermark);

    -- rows and events of every summarizable day, as of now
    SELECT coalesce(array_agg(c.bucket ORDER BY c.bucket), '{}'), coalesce(array_agg(c.user_days ORDER BY c.bucket), '{}'),
           coalesce(array_agg(c.events ORDER BY c.bucket), '{}')
    INTO v_buckets, v_days, v_events
    FROM (SELECT u.bucket, count(*) AS user_days, sum(u.event_count)::bigint AS events
          FROM analytics.ca_user_daily u
          WHERE u.fk_app = p_pk_app AND u.bucket < v_mark
          GROUP BY u.bucket) c;

    v_rebuild := v_state.watermark = '-infinity' OR v_state.timezone IS DISTINCT FROM v_timezone;
    IF v_rebuild THEN
        DELETE FROM analytics_internal.tb_user_activity a WHERE a.fk_app = p_pk_app;
        DELETE FROM analytics_internal.tb_user_activity_bucket b WHERE b.fk_app = p_pk_app;
    END IF;

    -- days that are new or changed, and among them those that lost rows or events, or vanished
    SELECT coalesce(array_agg(coalesce(c.bucket, b.bucket)), '{}'),
           coalesce(array_agg(b.bucket) FILTER (WHERE c.bucket IS NULL OR c.user_days < b.user_days
                                                      OR c.events < b.event_count), '{}')
    INTO v_dirty, v_shrunk
    FROM unnest(v_buckets, v_days, v_events) AS c(bucket, user_days, events)
    FULL JOIN (SELECT b.* FROM analytics_internal.tb_user_activity_bucket b WHERE b.fk_app = p_pk_app) b
           ON b.bucket = c.bucket
    WHERE b.bucket IS NULL OR c.bucket IS NULL OR b.user_days <> c.user_days OR b.event_count <> c.events;

    IF cardinality(v_dirty) = 0 THEN
        UPDATE analytics_internal.tb_user_activity_state s
        SET watermark = v_mark, refreshed_at = now() WHERE s.fk_app = p_pk_app;
        RETURN QUERY SELECT 0::bigint, false, v_mark;
        RETURN;
    END IF;

    WITH candidate AS (
        SELECT u.user_key
        FROM analytics.ca_user_daily u
        WHERE u.fk_app = p_pk_app AND u.bucket = ANY (v_dirty) AND NOT v_rebuild
        UNION
        -- users the summary has as active on a local date of a day that lost rows or events
        SELECT a.user_key
        FROM analytics_internal.tb_user_activity a
        CROSS JOIN LATERAL (SELECT DISTINCT (t AT TIME ZONE v_timezone)::date AS day
                            FROM unnest(v_shrunk) AS b(bucket),
                                 LATERAL (VALUES (b.bucket), (b.bucket + interval '1 day' - interval '1 microsecond')) AS x(t)) AS l
        WHERE a.fk_app = p_pk_app AND cardinality(v_shrunk) > 0
          AND l.day >= a.first_day AND l.day - a.first_day < length(a.days)
          AND get_bit(a.days, l.day - a.first_day) = 1
    ), active AS (
        -- per candidate: first event, and the local dates of the first and last event of each
        -- of their user-days before the watermark
        SELECT u.user_key, min(u.first_event_at) AS first_seen_at,
               array_agg((u.first_event_at AT TIME ZONE v_timezone)::date)
                   || array_agg((u.last_event_at AT TIME ZONE v_timezone)::date) AS days,
               max((u.last_event_at AT TIME ZONE v_timezone)::date) AS last_day
        FROM analytics.ca_user_daily u
        WHERE u.fk_app = p_pk_app AND u.bucket < v_mark
          AND (v_rebuild OR u.user_key IN (SELECT c.user_key FROM candidate c))
        GROUP BY u.user_key
    ), span AS (
        SELECT ac.user_key, ac.first_seen_at, ac.days, ac.last_day, f.first_day,
               (date_trunc('week', f.first_day)::date - date '2000-01-03') / 7 AS first_week,
               ((date_part('year', f.first_day) - 2000) * 12 + date_part('month', f.first_day) - 1)::integer AS first_month
        FROM active ac
        CROSS JOIN LATERAL (SELECT (ac.first_seen_at AT TIME ZONE v_timezone)::date AS first_day) AS f
    ), summarized AS (
        -- bit i of each string: active on the i-th day, week or month from the first one
        INSERT INTO analytics_internal.tb_user_activity AS a
            (fk_app, user_key, first_seen_at, first_day, first_week, first_month, days, weeks, months)
        SELECT p_pk_app, x.user_key, x.first_seen_at, x.first_day, x.first_week, x.first_month,
               (SELECT bit_or(set_bit(repeat('0', x.last_day - x.first_day + 1)::varbit, d - x.first_day, 1))
                FROM unnest(x.days) AS d),
               (SELECT bit_or(set_bit(repeat('0', w.last - x.first_week + 1)::varbit, w.n - x.first_week, 1))
                FROM unnest(x.days) AS d,
                     LATERAL (SELECT (date_trunc('week', d)::date - date '2000-01-03') / 7 AS n,
                                     (date_trunc('week', x.last_day)::date - date '2000-01-03') / 7 AS last) AS w),
               (SELECT bit_or(set_bit(repeat('0', m.last - x.first_month + 1)::varbit, m.n - x.first_month, 1))
                FROM unnest(x.days) AS d,
                     LATERAL (SELECT ((date_part('year', d) - 2000) * 12 + date_part('month', d) - 1)::integer AS n,
                                     ((date_part('year', x.last_day) - 2000) * 12 + date_part('month', x.last_day) - 1)::integer AS last) AS m)
        FROM span x
        ON CONFLICT (fk_app, user_key) DO UPDATE
        SET first_seen_at = excluded.first_seen_at, first_day = excluded.first_day, first_week = excluded.first_week,
            first_month = excluded.first_month, days = excluded.days, weeks = excluded.weeks, months = excluded.months
        RETURNING 1
    ), gone AS (
        -- candidates without any user-day left (their events were deleted)
        DELETE FROM analytics_internal.tb_user_activity a
        WHERE a.fk_app = p_pk_app
          AND NOT v_rebuild AND EXISTS (SELECT 1 FROM candidate c WHERE c.user_key = a.user_key)
          AND NOT EXISTS (SELECT 1 FROM active ac WHERE ac.user_key = a.user_key)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM summarized) + (SELECT count(*) FROM gone) INTO v_users;

    DELETE FROM analytics_internal.tb_user_activity_bucket b
    WHERE b.fk_app = p_pk_app AND b.bucket = ANY (v_dirty) AND b.bucket <> ALL (v_buckets);
    INSERT INTO analytics_internal.tb_user_activity_bucket AS b (fk_app, bucket, user_days, event_count)
    SELECT p_pk_app, c.bucket, c.user_days, c.events
    FROM unnest(v_buckets, v_days, v_events) AS c(bucket, user_days, events)
    WHERE c.bucket = ANY (v_dirty)
    ON CONFLICT (fk_app, bucket) DO UPDATE SET user_days = excluded.user_days, event_count = excluded.event_count;

    UPDATE analytics_internal.tb_user_activity_state s
    SET timezone = v_timezone, watermark = v_mark, refreshed_at = now(),
        rebuilt_at = CASE WHEN v_rebuild THEN now() ELSE s.rebuilt_at END
    WHERE s.fk_app = p_pk_app;

    RETURN QUERY SELECT v_users, v_rebuild, v_mark;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_user_activity_refresh(integer, timestamptz) IS
    'Bring one app''s per-user activity summary up to the UTC day holding p_until: re-summarize users of new or changed days, rebuild when days lost events or the time zone changed.';
