-- analytics.fn_metrics(p_app, p_from, p_to, p_granularity, p_dimension, p_metric_types)
--     -> setof (metric_type, value, dimension, date)
--
-- Dashboard metrics of one app over the local dates p_from..p_to (both included, in the app's
-- time zone, analytics.tb_app.timezone), per period, read only from the rollups:
--   <event_type>_count    events of that type (from ca_event_hourly), except for the type
--                         "crash", whose name would clash with crash_count (below)
--   crash_count           events of type "crash" or "app_crash" (as in fn_live_metrics), for
--                         every period and dimension value that has events (0 when none crashed)
--   unique_users          distinct coalesce(user_id, anonymous_id) with events in the period
--                         (exact, from ca_user_daily; UTC days of UTC apps: ca_app_daily; hours:
--                         ca_app_hourly; weeks and months: the per-user activity summary, see below)
--   sessions              distinct session ids with events in the period (ca_session_hourly;
--                         UTC days of UTC apps: ca_app_session_daily; hours: ca_app_session_hourly)
--   avg_session_duration  mean, over those sessions, of the seconds between their first and
--                         last event inside the period (3 decimals)
-- `date` is the start of the period as timestamptz: the UTC hour for 'hour'; local midnight of
-- the day, of the ISO week's Monday or of the month's first day otherwise. The first and last
-- week or month are cut to the range. Periods without events have no rows.
--
-- Time zones: hourly rollups are re-bucketed into the app's local days, weeks and months. That
-- is exact in zones at whole-hour offsets from UTC, daylight saving included. In zones at
-- 30- or 45-minute offsets (Asia/Kolkata, Australia/Adelaide, Asia/Kathmandu, ...) the event
-- counts, crash_count and sessions cut periods at the start of the UTC hour that holds local
-- midnight (23:30 in Asia/Kolkata), and 'hour' means UTC hours; unique_users is exact there too.
-- UTC apps read the daily rollups at day, week and month granularity (the same answers).
-- Apps in other zones read their local days before the watermark of their local-day summary
-- (analytics_internal.tb_local_day_event and tb_local_day_activity, kept by
-- analytics.fn_refresh_local_days) from it: event counts and crash_count at day, week and month
-- granularity, unique_users and sessions at day granularity; the same answers, computed the
-- same way from the rollups, except that events arriving late for (or deleted from) a
-- summarized day count from the next refresh on.
-- Weekly and monthly unique users, when the app has a per-user activity summary in its zone
-- (analytics_internal.tb_user_activity, kept by analytics.fn_refresh_user_activity): its users
-- with a local date of the period among their active days, plus the users of ca_user_daily's
-- user-days after its watermark who are not among them; the same answer as from ca_user_daily,
-- except that events late for (or deleted from) a summarized day count from its next refresh on.
--
--   p_app           app identifier or uuid
--   p_from, p_to    first and last local date, p_from <= p_to
--   p_granularity   'hour' (ranges up to 92 days), 'day', 'week' or 'month' (up to 3660 days)
--   p_dimension     'none', 'os', 'app_version' or 'event_type': breaks the event counts and
--                   crash_count down by it; unique_users, sessions and avg_session_duration are
--                   never broken down. Rows that are not broken down have dimension 'all'.
--   p_metric_types  only these metric types (NULL: all)
--
-- Errors: P0002 unknown app; 22023 unknown granularity or dimension, a missing or infinite
-- date, p_from after p_to, or a range too long for the granularity.
--
-- The rollups are read through their readers, analytics_internal.fn_<rollup>_between
-- (fn_rollup_reader_create): the same rows as the views, with the raw events of their real-time
-- part bounded by the range too, so that a range in the past reads only materialized rows.
--
-- SECURITY DEFINER, like the other client-facing functions: a dashboard role is granted EXECUTE
-- on it, not the rollups, tb_app and the internal helpers it reads.
CREATE OR REPLACE FUNCTION analytics.fn_metrics(
    p_app           text,
    p_from          date,
    p_to            date,
    p_granularity   text DEFAULT 'day',
    p_dimension     text DEFAULT 'none',
    p_metric_types  text[] DEFAULT NULL)
RETURNS TABLE (metric_type text, value numeric, dimension text, date timestamptz)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- Rollup queries take milliseconds; compiling them with JIT would take longer, and starting
-- parallel workers for the (mostly empty) real-time branches of the rollup views costs more
-- than the whole query (bench/queries: 74 -> 29 ms for 30 days of event counts at 10M events).
SET jit = off
SET max_parallel_workers_per_gather = 0
-- Planning the query takes longer than running it (its rollup readers span every partition of
-- the raw events); a generic plan is made once per session and prunes partitions when it starts.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_pk_app    integer := analytics_internal.fn_require_app(p_app);  -- P0002 when unknown
    v_timezone  text;
    v_from      timestamptz;
    v_to        timestamptz;
    v_max_days  integer := CASE p_granularity WHEN 'hour' THEN 92 ELSE 3660 END;
    v_daily     boolean;
    -- Apps outside UTC: local days before this local midnight are read from the local-day
    -- summary (event counts at day, week and month granularity; users and sessions at day),
    -- later ones live from the rollups. -infinity: no summary is read.
    v_local     timestamptz := '-infinity';
    v_local_day timestamptz;
    -- Weekly and monthly unique users: the per-user activity summary (tb_user_activity, kept by
    -- analytics.fn_refresh_user_activity) holds the user-days before this UTC midnight, later
    -- ones are read live. NULL: no summary in the app's zone, or not needed.
    v_activity  timestamptz;
    v_step      interval := CASE p_granularity WHEN 'month' THEN interval '1 month' ELSE interval '1 week' END;
    -- Days from here on are in the one-row-per-day rollups (ca_app_daily, ca_app_session_daily);
    -- earlier ones only on installs that dropped raw events before those rollups existed.
    v_app_days  timestamptz := coalesce(analytics_internal.fn_setting('app_daily_rollups_from')::timestamptz,
                                        '-infinity');
    -- Hours from here on are in the one-row-per-hour rollups ca_app_hourly and
    -- ca_app_session_hourly; earlier ones only on installs that dropped raw events before they
    -- existed (migrations 0010, 0011).
    v_app_hours timestamptz := coalesce(analytics_internal.fn_setting('app_hourly_rollups_from')::timestamptz,
                                        '-infinity');
    v_rows_to   timestamptz;
    -- Which rollups the asked-for metric types need: the others are not read at all.
    v_events    boolean := p_metric_types IS NULL
                           OR EXISTS (SELECT 1 FROM unnest(p_metric_types) AS t(name) WHERE t.name LIKE '%\_count');
    v_users     boolean := p_metric_types IS NULL OR 'unique_users' = ANY (p_metric_types);
    v_sessions  boolean := p_metric_types IS NULL OR p_metric_types && ARRAY['sessions', 'avg_session_duration'];
BEGIN
    IF p_granularity IS NULL OR p_granularity NOT IN ('hour', 'day', 'week', 'month') THEN
        RAISE EXCEPTION 'unknown granularity %', coalesce(quote_literal(left(p_granularity, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use hour, day, week or month.';
    END IF;
    IF p_dimension IS NULL OR p_dimension NOT IN ('none', 'os', 'app_version', 'event_type') THEN
        RAISE EXCEPTION 'unknown dimension %', coalesce(quote_literal(left(p_dimension, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use none, os, app_version or event_type.';
    END IF;
    PERFORM analytics_internal.fn_require_date_range(p_from, p_to, 'Swap the dates: from is the first day, to the last (both included).');
    IF p_to - p_from + 1 > v_max_days THEN
        RAISE EXCEPTION 'a range of % days is too long at % granularity', p_to - p_from + 1, p_granularity
            USING ERRCODE = '22023',
                  DETAIL = format('At %s granularity a range may span at most %s days.', p_granularity, v_max_days),
                  HINT = 'Use a shorter range or a coarser granularity.';
    END IF;

    SELECT a.timezone INTO v_timezone FROM analytics.tb_app a WHERE a.pk_app = v_pk_app;
    v_from := p_from::timestamp AT TIME ZONE v_timezone;
    v_to := (p_to + 1)::timestamp AT TIME ZONE v_timezone;
    -- Local days of a UTC app are UTC days: the daily rollups give the same answer from 24 times
    -- fewer rows. (The unused branch of each UNION ALL below is skipped by a one-time filter.)
    v_daily := p_granularity <> 'hour' AND v_timezone IN ('UTC', 'Etc/UTC');
    IF NOT v_daily AND p_granularity <> 'hour' THEN
        -- a summary built in another zone (the app's changed since) is not read
        SELECT coalesce(max(s.watermark), '-infinity') INTO v_local
        FROM analytics_internal.tb_local_day_state s
        WHERE s.fk_app = v_pk_app AND s.timezone = v_timezone;
    END IF;
    v_local_day := CASE WHEN p_granularity = 'day' THEN v_local ELSE '-infinity' END;
    -- the end of the per-user and per-session rows read below: from there on the one-row-per-hour
    -- rollups hold the hours, and the one-row-per-day rollups the UTC days of UTC apps
    v_rows_to := CASE WHEN p_granularity = 'hour' THEN least(v_to, v_app_hours)
                      WHEN v_daily AND p_granularity = 'day' THEN least(v_to, v_app_days)
                      ELSE v_to END;
    IF v_users AND p_granularity IN ('week', 'month') THEN
        SELECT s.watermark INTO v_activity
        FROM analytics_internal.tb_user_activity_state s
        WHERE s.fk_app = v_pk_app AND s.timezone = v_timezone;
    END IF;

    RETURN QUERY
    WITH events AS (
        SELECT analytics_internal.fn_metric_period(e.bucket, p_granularity, v_timezone) AS period,
               CASE p_dimension WHEN 'os' THEN e.os
                                WHEN 'app_version' THEN e.app_version
                                WHEN 'event_type' THEN e.event_type
                                ELSE 'all' END AS dim,
               e.event_type,
               sum(e.event_count) AS events,
               sum(e.crash_count) AS crashes
        FROM (SELECT h.bucket, h.event_type, h.os, h.app_version, h.event_count, h.crash_count
              FROM analytics_internal.fn_ca_event_hourly_between(v_pk_app, greatest(v_from, v_local), v_to) h
              WHERE v_events AND NOT v_daily
              UNION ALL
              SELECT l.bucket, l.event_type, l.os, l.app_version, l.event_count, l.crash_count
              FROM analytics_internal.tb_local_day_event l
              WHERE v_events AND l.fk_app = v_pk_app AND l.bucket >= v_from AND l.bucket < least(v_to, v_local)
              UNION ALL
              SELECT d.bucket, d.event_type, d.os, d.app_version, d.event_count, d.crash_count
              FROM analytics_internal.fn_ca_event_daily_between(v_pk_app, v_from, v_to) d
              WHERE v_events AND v_daily) e
        GROUP BY 1, 2, 3
    ), sessions AS (
        -- From the session rows (per session and hour; per session and UTC day for UTC apps),
        -- where none of the one-row-per-period rollups or summaries below holds the period.
        SELECT p.period, p.sessions, p.session_seconds / p.sessions AS seconds
        FROM analytics_internal.fn_period_sessions(v_pk_app, p_granularity, v_timezone, greatest(v_from, v_local_day),
                                                   v_rows_to, v_daily) p
        WHERE v_sessions
        UNION ALL
        -- UTC days of a UTC app: ca_app_session_daily holds each day's sessions and their seconds
        -- (one row per day).
        SELECT a.bucket, a.sessions, a.session_seconds / a.sessions
        FROM analytics_internal.fn_ca_app_session_daily_between(v_pk_app, greatest(v_from, v_app_days), v_to) a
        WHERE v_sessions AND v_daily AND p_granularity = 'day'
        UNION ALL
        -- Hours: ca_app_session_hourly holds each UTC hour's sessions and their seconds.
        SELECT a.bucket, a.sessions, a.session_seconds / a.sessions
        FROM analytics_internal.fn_ca_app_session_hourly_between(v_pk_app, greatest(v_from, v_app_hours), v_to) a
        WHERE v_sessions AND p_granularity = 'hour'
        UNION ALL
        -- Local days of an app outside UTC before the local-day summary's watermark.
        SELECT l.bucket, l.sessions, l.session_seconds / l.sessions
        FROM analytics_internal.tb_local_day_activity l
        WHERE v_sessions AND l.fk_app = v_pk_app AND l.bucket >= v_from AND l.bucket < least(v_to, v_local_day)
          AND l.sessions > 0
    ), periods AS (
        -- the weeks or months of the range, as local dates cut to it, for the per-user summary
        SELECT g.start AT TIME ZONE v_timezone AS period,
               greatest(g.start::date, p_from) AS day_from,
               least((g.start + v_step)::date - 1, p_to) AS day_to
        FROM generate_series(date_trunc(p_granularity, p_from::timestamp), p_to::timestamp, v_step) AS g(start)
        WHERE v_activity IS NOT NULL
    ), users AS (
        -- UTC days of a UTC app: ca_app_daily holds each day's unique users (one row per day) ...
        SELECT a.bucket AS period, a.users
        FROM analytics_internal.fn_ca_app_daily_between(v_pk_app, greatest(v_from, v_app_days), v_to) a
        WHERE v_users AND v_daily AND p_granularity = 'day'
        UNION ALL
        -- ... and ca_user_daily one row per user and day, for days before it: counting rows is
        -- exact there too.
        SELECT u.bucket AS period, count(*) AS users
        FROM analytics_internal.fn_ca_user_daily_between(v_pk_app, v_from, least(v_to, v_app_days)) u
        WHERE v_users AND v_daily AND p_granularity = 'day'
        GROUP BY u.bucket
        UNION ALL
        -- Local days of an app outside UTC before the local-day summary's watermark ...
        SELECT l.bucket, l.users
        FROM analytics_internal.tb_local_day_activity l
        WHERE v_users AND l.fk_app = v_pk_app AND l.bucket >= v_from AND l.bucket < least(v_to, v_local_day)
          AND l.users > 0
        UNION ALL
        -- Hours: ca_app_hourly holds each UTC hour's unique users (one row per hour) ...
        SELECT a.bucket, a.users
        FROM analytics_internal.fn_ca_app_hourly_between(v_pk_app, greatest(v_from, v_app_hours), v_to) a
        WHERE v_users AND p_granularity = 'hour'
        UNION ALL
        -- ... otherwise (and for hours before it) from the user-days (fn_period_users).
        SELECT p.period, p.users
        FROM analytics_internal.fn_period_users(v_pk_app, p_granularity, v_timezone, greatest(v_from, v_local_day),
                                                v_rows_to) p
        WHERE v_users AND NOT (v_daily AND p_granularity = 'day') AND v_activity IS NULL
        UNION ALL
        -- Weeks and months, with a per-user summary in the app's zone: its users active on a
        -- local date of the period (fn_active_between), plus those of the user-days after its
        -- watermark who are not among them (a user-day counts on the local dates of its first and
        -- last event, as above).
        SELECT x.period, sum(x.users)::bigint
        FROM (SELECT p.period, count(*) AS users
              FROM periods p
              JOIN analytics_internal.tb_user_activity a
                ON a.fk_app = v_pk_app AND analytics_internal.fn_active_between(a.first_day, a.days, p.day_from, p.day_to)
              GROUP BY p.period
              UNION ALL
              SELECT l.period, count(DISTINCT l.user_key)
              FROM (SELECT p.period, p.day_from, p.day_to, u.user_key
                    FROM analytics_internal.fn_ca_user_daily_between(
                             v_pk_app, greatest(v_activity, analytics_internal.fn_time_bucket(interval '1 day', v_from)), v_to) u
                    CROSS JOIN LATERAL (VALUES (u.first_event_at), (u.last_event_at)) AS t(at)
                    JOIN periods p ON (t.at AT TIME ZONE v_timezone)::date BETWEEN p.day_from AND p.day_to
                    WHERE t.at >= v_from AND t.at < v_to) l
              WHERE NOT EXISTS (SELECT 1 FROM analytics_internal.tb_user_activity a
                                WHERE a.fk_app = v_pk_app AND a.user_key = l.user_key
                                  AND analytics_internal.fn_active_between(a.first_day, a.days, l.day_from, l.day_to))
              GROUP BY l.period) x
        GROUP BY x.period
    )
    SELECT m.metric_type, m.value, m.dimension, m.date
    FROM (SELECT ev.event_type || '_count' AS metric_type, ev.events AS value, ev.dim AS dimension, ev.period AS date
          FROM events ev
          WHERE ev.event_type <> 'crash'
          UNION ALL
          SELECT 'crash_count', sum(ev.crashes), ev.dim, ev.period
          FROM events ev
          GROUP BY ev.dim, ev.period
          UNION ALL
          SELECT 'unique_users', us.users, 'all', us.period
          FROM users us
          UNION ALL
          SELECT 'sessions', se.sessions, 'all', se.period
          FROM sessions se
          UNION ALL
          SELECT 'avg_session_duration', round(se.seconds, 3), 'all', se.period
          FROM sessions se) m
    WHERE p_metric_types IS NULL OR m.metric_type = ANY (p_metric_types)
    ORDER BY m.date, m.metric_type, m.dimension;
END
$$;

COMMENT ON FUNCTION analytics.fn_metrics(text, date, date, text, text, text[]) IS
    'Metrics of an app per hour, local day, week or month, optionally by os, app_version or event_type, from the rollups: '
    '<type>_count, crash_count, unique_users (exact), sessions, avg_session_duration (s).';
