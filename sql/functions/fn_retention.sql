-- analytics.fn_retention(p_app, p_from, p_to, p_interval, p_periods, p_mode)
--     -> setof (cohort_start, cohort_size, period, users, rate)
--
-- A retention matrix in the app's time zone (analytics.tb_app.timezone). Periods are local
-- calendar days, weeks (from Monday) or months. The cohorts are the periods from the one holding
-- p_from to the one holding p_to; for cohort C, period k is the k-th period after C (0 = C):
--   p_mode 'first_time'  cohort C = the users whose first event (in the retained data) falls
--                        in C: new users (Amplitude's "new users", PostHog's "first time")
--   p_mode 'recurring'   cohort C = the users with an event in C, whether new or not
--                        (PostHog's "recurring", Amplitude's "any event" start)
--   cohort_size          users in cohort C
--   users                of them, those with an event in period C + k (k = 0: all of them)
--   rate                 users / cohort_size, 0 to 1, 4 decimals; NULL when the cohort is empty
-- One row per cohort and period 0 .. p_periods - 1 whose period has started by today (local):
-- the most recent cells are periods still in progress. Cohorts with no users have rows with
-- cohort_size 0. Ordered by cohort_start, period.
--
-- Data: a user's activity is read from the per-user activity summary
-- (analytics_internal.tb_user_activity, kept by analytics.fn_refresh_user_activity, which
-- maintenance calls) for the UTC days before its watermark (normally today's start), merged per
-- user with the raw events after it. So new events count at once; events that arrive late for
-- a day before the watermark count after the next refresh. Without a summary in the app's
-- current time zone (or with one older than 62 days) everything is read from
-- analytics.ca_user_daily (exact, but slower): a UTC user-day counts on the local dates of its
-- first and last event (it overlaps at most two), so this is exact in every time zone. Users
-- with the same window of activity are counted together before the matrix is built.
--
--   p_app       app identifier or uuid
--   p_from      a local date in the first cohort's period
--   p_to        a local date in the last cohort's period, >= p_from; at most 400 cohorts
--   p_interval  'day', 'week' (default) or 'month'
--   p_periods   periods per cohort, period 0 included: 1 to 400 (default 8)
--   p_mode      'first_time' (default) or 'recurring'
--
-- Errors: P0002 unknown app; 22023 unknown interval or mode, a missing or infinite date,
-- p_from after p_to, more than 400 cohorts, p_periods out of range.
CREATE OR REPLACE FUNCTION analytics.fn_retention(
    p_app       text,
    p_from      date,
    p_to        date,
    p_interval  text DEFAULT 'week',
    p_periods   integer DEFAULT 8,
    p_mode      text DEFAULT 'first_time')
RETURNS TABLE (cohort_start date, cohort_size bigint, period integer, users bigint, rate numeric)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- A matrix reads one summary row per user in milliseconds; JIT compilation would take longer.
SET jit = off
-- Row estimates through the window expressions are poor; with them the planner sorted every
-- summarized user by key for a merge join, several times slower than hashing.
SET enable_mergejoin = off
SET work_mem = '64MB'
AS $$
#variable_conflict use_column
DECLARE
    v_pk_app    integer := fn_require_app(p_app);  -- P0002 when unknown
    v_timezone  text;
    v_today     date;
    v_first     date;     -- first day of the first cohort
    v_cohorts   integer;
    v_width     integer;  -- periods from the first cohort to the last cohort's last period
    v_first_no  integer;  -- number of the first cohort's week or month (as in tb_user_activity)
    v_end       timestamptz;
    v_mark      timestamptz;  -- the summary holds the UTC days before it (-infinity: no summary)
    v_live_from timestamptz;
    v_from_day  date;         -- without a summary: local date of the watermark
    v_span      integer;      -- local dates from v_from_day to tomorrow
    v_bounds    timestamptz[];  -- local midnights starting v_from_day + 1 .. v_from_day + v_span
    v_slot_pos  integer[];    -- window position of local date v_from_day + i (at i + 1), -1 outside
BEGIN
    IF p_interval IS NULL OR p_interval NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'unknown interval %', coalesce(quote_literal(left(p_interval, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use day, week or month.';
    END IF;
    IF p_mode IS NULL OR p_mode NOT IN ('first_time', 'recurring') THEN
        RAISE EXCEPTION 'unknown retention mode %', coalesce(quote_literal(left(p_mode, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use first_time (cohorts of new users) or recurring (cohorts of active users).';
    END IF;
    PERFORM analytics_internal.fn_require_date_range(p_from, p_to, 'Swap the dates: from is in the first cohort''s period, to in the last one''s.');
    IF p_periods IS NULL OR p_periods NOT BETWEEN 1 AND 400 THEN
        RAISE EXCEPTION '% periods is out of range', coalesce(p_periods::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use 1 to 400 periods (period 0 included).';
    END IF;
    v_first := date_trunc(p_interval, p_from)::date;
    v_cohorts := fn_period_index(v_first, p_to, p_interval) + 1;
    IF v_cohorts > 400 THEN
        RAISE EXCEPTION 'the range holds % cohorts, more than 400', v_cohorts
            USING ERRCODE = '22023', HINT = 'Use a shorter range or a coarser interval.';
    END IF;

    SELECT a.timezone INTO v_timezone FROM analytics.tb_app a WHERE a.pk_app = v_pk_app;
    v_today := (now() AT TIME ZONE v_timezone)::date;
    v_width := v_cohorts + p_periods - 1;
    v_first_no := CASE p_interval
                      WHEN 'week' THEN (v_first - date '2000-01-03') / 7
                      WHEN 'month' THEN ((date_part('year', v_first) - 2000) * 12 + date_part('month', v_first) - 1)::integer
                  END;
    v_end := fn_period_start(v_first, v_width, p_interval)::timestamp AT TIME ZONE v_timezone;
    -- the summary counts only when built in the app's current zone
    v_mark := coalesce((SELECT s.watermark FROM analytics_internal.tb_user_activity_state s
                        WHERE s.fk_app = v_pk_app AND s.timezone = v_timezone), '-infinity');
    IF v_mark > '-infinity' THEN
        -- events after the watermark are read raw: each event's local date is found among the
        -- few local midnights since the watermark (through tomorrow: events may be up to 23 h ahead)
        v_from_day := (v_mark AT TIME ZONE v_timezone)::date;
        v_span := ((now() + interval '1 day') AT TIME ZONE v_timezone)::date - v_from_day;
        IF v_span > 62 THEN
            v_mark := '-infinity';  -- a summary that old is not worth merging: read everything live
        ELSE
            v_bounds := ARRAY(SELECT (v_from_day + i)::timestamp AT TIME ZONE v_timezone FROM generate_series(1, v_span) AS i);
            v_slot_pos := ARRAY(SELECT CASE WHEN fn_period_index(v_first, v_from_day + i, p_interval) BETWEEN 0 AND v_width - 1
                                            THEN fn_period_index(v_first, v_from_day + i, p_interval) ELSE -1 END
                                FROM generate_series(0, v_span) AS i ORDER BY i);
        END IF;
    END IF;
    -- without a summary, first_time needs every earlier day too, to tell new users from returning ones
    v_live_from := CASE WHEN p_mode = 'recurring'
                        THEN fn_time_bucket(interval '1 day', v_first::timestamp AT TIME ZONE v_timezone)
                        ELSE '-infinity' END;

    RETURN QUERY
    WITH summary AS (
        -- every summarized user (also those active only outside the window: they tell whether
        -- a live user is new); bits NULL when no activity falls in the window
        SELECT a.user_key, a.first_day < v_first AS before,
               fn_activity_window(CASE p_interval WHEN 'day' THEN a.days WHEN 'week' THEN a.weeks ELSE a.months END,
                                  -- the window position of the user's bit 0 (the first cohort is 0)
                                  CASE p_interval WHEN 'day' THEN a.first_day - v_first
                                                  WHEN 'week' THEN a.first_week - v_first_no
                                                  ELSE a.first_month - v_first_no END,
                                  v_width) AS bits
        FROM analytics_internal.tb_user_activity a
        WHERE a.fk_app = v_pk_app AND v_mark > '-infinity'
    ), recent AS (
        -- with a summary: the raw events after its watermark, per user and local date (slot i
        -- = local date v_from_day + i)
        SELECT coalesce(e.user_id, e.anonymous_id) AS user_key,
               bit_or(1::bigint << width_bucket(e."timestamp", v_bounds)) AS slots
        FROM analytics.tb_event e
        WHERE v_mark > '-infinity' AND e.fk_app = v_pk_app AND e."timestamp" >= v_mark AND e."timestamp" < v_end
          AND coalesce(e.user_id, e.anonymous_id) IS NOT NULL
        GROUP BY 1
    ), live AS (
        SELECT r.user_key, v_from_day + x.first_slot < v_first AS before, coalesce(x.bits, repeat('0', v_width)::varbit) AS bits
        FROM recent r
        CROSS JOIN LATERAL (
            SELECT min(i.i) AS first_slot,
                   bit_or(set_bit(repeat('0', v_width)::varbit, v_slot_pos[i.i + 1], 1)) FILTER (WHERE v_slot_pos[i.i + 1] >= 0) AS bits
            FROM generate_series(0, v_span) AS i(i)
            WHERE r.slots & (1::bigint << i.i) <> 0) AS x
        UNION ALL
        -- without a summary: every user-day of the rollup, placed by the local dates of its first
        -- and last event
        SELECT u.user_key, bool_or(x.d1 < v_first),
               bit_or(CASE WHEN x.j1 BETWEEN 0 AND v_width - 1 THEN set_bit(x.zero, x.j1, 1) ELSE x.zero END
                      | CASE WHEN x.j2 BETWEEN 0 AND v_width - 1 THEN set_bit(x.zero, x.j2, 1) ELSE x.zero END)
        FROM analytics.ca_user_daily u
        CROSS JOIN LATERAL (
            SELECT d.d1, fn_period_index(v_first, d.d1, p_interval) AS j1, fn_period_index(v_first, d.d2, p_interval) AS j2,
                   repeat('0', v_width)::varbit AS zero
            FROM (SELECT (u.first_event_at AT TIME ZONE v_timezone)::date AS d1,
                         (u.last_event_at AT TIME ZONE v_timezone)::date AS d2) d) x
        WHERE v_mark = '-infinity' AND u.fk_app = v_pk_app AND u.bucket >= v_live_from AND u.bucket < v_end
        GROUP BY u.user_key
    ), merged AS (
        SELECT coalesce(s.before, false) OR coalesce(l.before, false) AS before,
               CASE WHEN l.user_key IS NULL THEN s.bits
                    WHEN s.bits IS NULL THEN l.bits::text
                    ELSE (s.bits::varbit | l.bits)::text END AS bits
        FROM summary s FULL JOIN live l ON l.user_key = s.user_key
    ), pattern AS (
        -- users with the same window of activity count alike
        SELECT row_number() OVER () AS pid, p.before, p.bits, p.n
        FROM (SELECT m.before, m.bits, count(*) AS n FROM merged m WHERE strpos(m.bits, '1') > 0 GROUP BY 1, 2) p
    ), active AS (
        SELECT p.pid, t.i::integer - 1 AS j
        FROM pattern p CROSS JOIN LATERAL unnest(string_to_array(p.bits, NULL)) WITH ORDINALITY AS t(bit, i)
        WHERE t.bit = '1'
    ), member AS (
        -- (pattern, cohort): new users in the period of their first event, or active users in
        -- each period with an event
        SELECT p.pid, p.n, strpos(p.bits, '1') - 1 AS c
        FROM pattern p
        WHERE p_mode = 'first_time' AND NOT p.before AND strpos(p.bits, '1') <= v_cohorts
        UNION ALL
        SELECT p.pid, p.n, x.j
        FROM pattern p JOIN active x ON x.pid = p.pid
        WHERE p_mode = 'recurring' AND x.j < v_cohorts
    ), size AS (
        SELECT m.c, sum(m.n)::bigint AS n FROM member m GROUP BY m.c
    ), cell AS (
        SELECT m.c, x.j - m.c AS k, sum(m.n)::bigint AS n
        FROM member m JOIN active x ON x.pid = m.pid AND x.j >= m.c AND x.j < m.c + p_periods
        GROUP BY 1, 2
    )
    SELECT fn_period_start(v_first, g.c, p_interval), coalesce(s.n, 0), k.k, coalesce(cl.n, 0),
           round(coalesce(cl.n, 0)::numeric / nullif(s.n, 0), 4)
    FROM generate_series(0, v_cohorts - 1) AS g(c)
    CROSS JOIN generate_series(0, p_periods - 1) AS k(k)
    LEFT JOIN size s ON s.c = g.c
    LEFT JOIN cell cl ON cl.c = g.c AND cl.k = k.k
    WHERE fn_period_start(v_first, g.c + k.k, p_interval) <= v_today
    ORDER BY 1, 3;
END
$$;

COMMENT ON FUNCTION analytics.fn_retention(text, date, date, text, integer, text) IS
    'Retention matrix per local day/week/month cohort: first_time (new users) or recurring (active users); users active k periods later.';
