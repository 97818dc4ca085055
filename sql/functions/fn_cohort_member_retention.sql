-- analytics_internal.fn_cohort_member_retention(p_pk_cohort, p_interval, p_periods)
--     -> setof (period, period_start, cohort_size, returning_users, retention_rate)
--
-- Retention of a cohort's members (analytics_internal.tb_cohort_member, as of its last
-- refresh), each measured from their own first day, in the app's time zone:
--   d0         a member's first seen day: the local date of their first event (members without
--              any retained event are left out)
--   period k   local days [fn_period_start(d0, k), fn_period_start(d0, k + 1)): day k after d0,
--              days 7k..7k+6 for 'week', or months k for 'month' (rolling, not calendar periods)
--   cohort_size      members whose period k has ended before today's local date, so that
--                    every member counted had the whole period to come back
--   returning_users  of those, members with an event in their period k
--   retention_rate   returning_users / cohort_size, 4 decimals; NULL when cohort_size is 0
--   period_start     fn_period_start(earliest d0, k): the first date on which some member's
--                    period k begins (the date of period k itself when all members share d0)
-- One row per period 0 .. p_periods - 1; none when no member has events. Period 0 counts every
-- member whose first day is over (rate 1).
--
-- Data, as in analytics.fn_retention: the members' active local dates come from the per-user
-- activity summary (analytics_internal.tb_user_activity) for the UTC days before its watermark
-- and from the raw events after it; late events for earlier days count after the next
-- analytics.fn_refresh_user_activity. Without a summary in the app's zone, from
-- analytics.ca_user_daily (a UTC user-day counts on the local dates of its first and last event).
--
--   p_pk_cohort  the cohort (tb_cohort.pk_cohort)
--   p_interval   'day', 'week' or 'month' (checked by the callers)
--   p_periods    number of periods, 1 or more (checked by the callers)
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_member_retention(p_pk_cohort integer, p_interval text, p_periods integer)
RETURNS TABLE (period integer, period_start date, cohort_size bigint, returning_users bigint, retention_rate numeric)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
SET jit = off
-- Never loop over members into analytics.ca_user_daily: on PostgreSQL its live part would be
-- aggregated again from the raw events for every member. Hash joins read it once.
SET enable_nestloop = off
AS $$
DECLARE
    v_pk_app    integer;
    v_timezone  text;
    v_today     date;
    v_mark      timestamptz;
    v_from_day  date;
    v_span      integer;
    v_bounds    timestamptz[];
BEGIN
    SELECT c.fk_app, a.timezone INTO v_pk_app, v_timezone
    FROM analytics.tb_cohort c JOIN analytics.tb_app a ON a.pk_app = c.fk_app
    WHERE c.pk_cohort = p_pk_cohort;
    v_today := (now() AT TIME ZONE v_timezone)::date;
    v_mark := coalesce((SELECT s.watermark FROM analytics_internal.tb_user_activity_state s
                        WHERE s.fk_app = v_pk_app AND s.timezone = v_timezone), '-infinity');
    IF v_mark > '-infinity' THEN
        -- as in fn_retention: the local dates since the watermark, found by their midnights
        v_from_day := (v_mark AT TIME ZONE v_timezone)::date;
        v_span := ((now() + interval '1 day') AT TIME ZONE v_timezone)::date - v_from_day;
        IF v_span > 62 THEN
            v_mark := '-infinity';
        ELSE
            v_bounds := ARRAY(SELECT (v_from_day + i)::timestamp AT TIME ZONE v_timezone FROM generate_series(1, v_span) AS i);
        END IF;
    END IF;

    RETURN QUERY
    WITH member AS (
        SELECT m.user_key FROM analytics_internal.tb_cohort_member m WHERE m.fk_cohort = p_pk_cohort
    ), member_day AS (
        -- summarized days: bit i of days is local date first_day + i
        SELECT a.user_key, a.first_day + (t.i::integer - 1) AS day
        FROM member m
        JOIN analytics_internal.tb_user_activity a ON a.fk_app = v_pk_app AND a.user_key = m.user_key
        CROSS JOIN LATERAL unnest(string_to_array(a.days::text, NULL)) WITH ORDINALITY AS t(bit, i)
        WHERE v_mark > '-infinity' AND t.bit = '1'
        UNION
        -- days after the summary's watermark, from the raw events
        SELECT coalesce(e.user_id, e.anonymous_id), v_from_day + width_bucket(e."timestamp", v_bounds)
        FROM analytics.tb_event e
        WHERE v_mark > '-infinity' AND e.fk_app = v_pk_app AND e."timestamp" >= v_mark
          AND coalesce(e.user_id, e.anonymous_id) IN (SELECT m.user_key FROM member m)
        UNION
        -- no summary: the user-day rollup
        SELECT u.user_key, d.day
        FROM analytics.ca_user_daily u
        CROSS JOIN LATERAL (VALUES ((u.first_event_at AT TIME ZONE v_timezone)::date),
                                   ((u.last_event_at AT TIME ZONE v_timezone)::date)) AS d(day)
        WHERE v_mark = '-infinity' AND u.fk_app = v_pk_app AND u.user_key IN (SELECT m.user_key FROM member m)
    ), first_day AS (
        -- ended: how many of the member's periods ended before today
        SELECT md.user_key, min(md.day) AS d0, fn_period_index(min(md.day), v_today, p_interval) AS ended
        FROM member_day md
        GROUP BY md.user_key
    ), returned AS (
        SELECT x.k, count(DISTINCT x.user_key) AS users
        FROM (SELECT f.user_key, f.ended, fn_period_index(f.d0, md.day, p_interval) AS k
              FROM first_day f JOIN member_day md ON md.user_key = f.user_key) x
        WHERE x.k < least(x.ended, p_periods)
        GROUP BY x.k
    ), sized AS (
        -- members whose period k ended: those with ended > k
        SELECT g.k, count(f.user_key) FILTER (WHERE f.ended > g.k) AS members
        FROM generate_series(0, p_periods - 1) AS g(k) CROSS JOIN first_day f
        GROUP BY g.k
    )
    SELECT s.k, fn_period_start((SELECT min(f.d0) FROM first_day f), s.k, p_interval),
           s.members, coalesce(r.users, 0::bigint),
           round(coalesce(r.users, 0)::numeric / nullif(s.members, 0), 4)
    FROM sized s LEFT JOIN returned r ON r.k = s.k
    WHERE EXISTS (SELECT 1 FROM first_day)
    ORDER BY s.k;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_member_retention(integer, text, integer) IS
    'Retention of a cohort''s members per day/week/month after each member''s first seen day (app time zone), over ended periods only.';
