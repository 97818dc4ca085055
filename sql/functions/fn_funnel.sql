-- analytics.fn_funnel(p_app, p_steps, p_from, p_to, p_conversion_window, p_breakdown)
--     -> setof (breakdown, step, event_type, users, conversion_percent, dropoff_percent,
--               median_seconds_from_previous)
--
-- An ordered conversion funnel over the raw events of one app: how many users did
-- p_steps[1], then p_steps[2], ... in that order, each user counted once.
--
--   p_app                app identifier or uuid
--   p_steps              1 to 10 event types, in funnel order; a type may repeat (['view', 'view']
--                        needs two distinct view events, the second strictly later)
--   p_from, p_to         first and last local date (the app's time zone, analytics.tb_app.timezone),
--                        both included, at most 366 days. NULL p_to: today (local); NULL p_from:
--                        29 days before p_to, so two NULLs are the 30 local days ending today.
--                        Step 1 must happen in this range; later steps may happen after p_to,
--                        within the conversion window.
--   p_conversion_window  how long after a user's step-1 event every later step must have
--                        happened (inclusive), more than 0 and at most 90 days; counted in fixed
--                        seconds (a day is 24 hours, a month 30 days), whatever the time zone
--   p_breakdown          'none' (one row set, breakdown 'all'), 'os' or 'app_version': users are
--                        split by that field of the device of the step-1 event they are counted
--                        with ('unknown' when the event has none)
--
-- Counting rule. A user is coalesce(user_id, anonymous_id); events with neither are ignored.
-- Every step-1 event of a user inside the range starts an attempt. Within an attempt, step k
-- (k >= 2) is the user's first event of type p_steps[k] strictly later than the event taken for
-- step k-1, and it counts only if it is at most p_conversion_window after the attempt's step-1
-- event; the attempt reaches the last step that counts. Events of other types may happen in
-- between (loose order). Each user is counted once, with the attempt that reaches the furthest
-- step; among attempts that reach equally far, the earliest one (then the smallest breakdown
-- value in byte order, for step-1 events at the same instant). This is PostHog's rule for ordered funnels;
-- Mixpanel's default instead counts only the user's first step-1 event in the range (see
-- docs/analytics.md#funnels).
--
-- Returns, per breakdown value (in byte order: COLLATE "C") and step 1..n:
--   users                         users whose counted attempt reached the step
--   conversion_percent            100 * users / users at step 1, 2 decimals (0 when step 1 has none)
--   dropoff_percent               100 * (users at step k-1 - users) / users at step k-1, 2 decimals
--                                 (0 for step 1, and when step k-1 has no users)
--   median_seconds_from_previous  median (percentile_cont 0.5) of the seconds from step k-1 to step
--                                 k over those users; NULL for step 1 and when no user reached it
-- With 'none' all n rows are returned even when nobody entered; with 'os' or 'app_version' only
-- breakdown values with users at step 1 have rows.
--
-- Cost: reads only the events of the step types between p_from and p_to + the window, through
-- tb_event_app_type_time_idx (an index-only scan unless a breakdown needs the device), then one
-- sort and n-1 window passes over them.
--
-- Errors: P0002 unknown app; 22023 no steps, more than 10, a NULL or empty step, a
-- multi-dimensional array, a date before 1970 or after 9999 (or infinite), p_from after p_to, a
-- range over 366 days, a window that is NULL, not positive or over 90 days, an unknown breakdown.
CREATE OR REPLACE FUNCTION analytics.fn_funnel(
    p_app                text,
    p_steps              text[],
    p_from               date DEFAULT NULL,
    p_to                 date DEFAULT NULL,
    p_conversion_window  interval DEFAULT '14 days',
    p_breakdown          text DEFAULT 'none')
RETURNS TABLE (breakdown text, step integer, event_type text, users bigint,
               conversion_percent numeric, dropoff_percent numeric,
               median_seconds_from_previous double precision)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- One query over up to a few hundred thousand rows: JIT compilation would cost more than it saves.
SET jit = off
AS $$
DECLARE
    v_pk_app     integer := analytics_internal.fn_require_app(p_app);  -- P0002 when unknown
    v_max_steps  constant integer := 10;
    v_max_days   constant integer := 366;
    v_max_window constant interval := interval '90 days';
    v_steps      text[];
    v_n          integer;
    v_timezone   text;
    v_from       date;
    v_to         date;
    v_window     interval;
    v_dim        text;
    v_sql        text;
    v_cols       text;
    v_k          integer;
    v_j          integer;
    v_times      text;
    v_reached    text;
BEGIN
    IF p_steps IS NULL OR cardinality(p_steps) = 0 THEN
        RAISE EXCEPTION 'a funnel needs at least one step'
            USING ERRCODE = '22023',
                  HINT = 'Pass the event types in funnel order, e.g. ARRAY[''app_open'', ''add_to_cart'', ''purchase''].';
    END IF;
    IF array_ndims(p_steps) > 1 THEN
        RAISE EXCEPTION 'the funnel steps must be a one-dimensional array'
            USING ERRCODE = '22023',
                  DETAIL = format('Got an array of %s dimensions.', array_ndims(p_steps)),
                  HINT = 'Pass the event types as a flat list, e.g. ARRAY[''app_open'', ''purchase''].';
    END IF;
    IF cardinality(p_steps) > v_max_steps THEN
        RAISE EXCEPTION 'a funnel of % steps is too long', cardinality(p_steps)
            USING ERRCODE = '22023',
                  DETAIL = format('A funnel has at most %s steps.', v_max_steps),
                  HINT = 'Split it into shorter funnels.';
    END IF;
    v_steps := ARRAY(SELECT s FROM unnest(p_steps) AS s);  -- subscripts from 1, whatever was passed
    v_n := cardinality(v_steps);
    FOR v_k IN 1 .. v_n LOOP
        IF v_steps[v_k] IS NULL OR v_steps[v_k] = '' THEN
            RAISE EXCEPTION 'funnel step % is %', v_k, CASE WHEN v_steps[v_k] IS NULL THEN 'NULL' ELSE 'empty' END
                USING ERRCODE = '22023',
                      DETAIL = 'Every step names the event type (the event''s "type") that it counts.',
                      HINT = 'Remove the step or name its event type.';
        END IF;
    END LOOP;

    IF NOT coalesce(p_from, '1970-01-01') BETWEEN '1970-01-01' AND '9999-12-30'
       OR NOT coalesce(p_to, '1970-01-01') BETWEEN '1970-01-01' AND '9999-12-30' THEN
        RAISE EXCEPTION 'the funnel''s dates must lie between 1970-01-01 and 9999-12-30'
            USING ERRCODE = '22023',
                  DETAIL = format('Got %s to %s.', coalesce(p_from::text, 'NULL'), coalesce(p_to::text, 'NULL')),
                  HINT = 'Pass dates such as 2024-01-01 and 2024-01-31, or NULL for the 30 days ending today.';
    END IF;
    SELECT a.timezone INTO v_timezone FROM analytics.tb_app a WHERE a.pk_app = v_pk_app;
    v_to := coalesce(p_to, (now() AT TIME ZONE v_timezone)::date);
    v_from := coalesce(p_from, v_to - 29);
    -- (both dates are known and finite by now: this catches from after to)
    PERFORM analytics_internal.fn_require_date_range(v_from, v_to, 'Swap the dates: from is the first day, to the last (both included).');
    IF v_to - v_from + 1 > v_max_days THEN
        RAISE EXCEPTION 'a funnel over % days is too long', v_to - v_from + 1
            USING ERRCODE = '22023',
                  DETAIL = format('Step 1 may be looked for over at most %s days.', v_max_days),
                  HINT = 'Use a shorter date range.';
    END IF;

    -- Compared and then used in fixed seconds (interval comparison counts a day as 24 hours and
    -- a month as 30 days; added to a time, '1 day' would be 23 or 25 hours across a DST change in
    -- the session's time zone).
    IF p_conversion_window IS NULL OR p_conversion_window <= interval '0' OR p_conversion_window > v_max_window THEN
        RAISE EXCEPTION 'conversion window % is out of range', coalesce(p_conversion_window::text, 'NULL')
            USING ERRCODE = '22023',
                  DETAIL = format('The window must be more than 0 and at most %s.', v_max_window),
                  HINT = 'Use e.g. ''1 hour'', ''1 day'' or ''14 days''.';
    END IF;
    v_window := make_interval(secs => extract(epoch FROM p_conversion_window));

    v_dim := CASE p_breakdown WHEN 'none' THEN 'all' WHEN 'os' THEN 'os' WHEN 'app_version' THEN 'app_version' END;
    IF v_dim IS NULL THEN
        RAISE EXCEPTION 'unknown funnel breakdown %', coalesce(quote_literal(left(p_breakdown, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use none, os or app_version.';
    END IF;

    -- The query is generated for the number of steps and the breakdown only; every value is a
    -- parameter: $1 app, $2 steps, $3 start of the range, $4 its end, $5 window, $6 the types of
    -- steps 2..n.
    --
    -- Rows are (u user, ts time, t type, d breakdown value): the events of the step types from
    -- the start of the range to its end plus the window (step-1 events only up to the end,
    -- unless their type is also a later step's). Without a breakdown this is an index-only scan
    -- of tb_event_app_type_time_idx; with one, only the step-1 events read the table (device).
    v_sql := $q$SELECT coalesce(e.user_id, e.anonymous_id) COLLATE "C" AS u, e."timestamp" AS ts, e.event_type AS t, %s AS d
           FROM analytics.tb_event e
           WHERE e.fk_app = $1 AND %s
             AND e."timestamp" >= $3 AND e."timestamp" < $4 + $5
             AND (e."timestamp" < $4 OR e.event_type = ANY ($6))
             AND (e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL)$q$;
    IF p_breakdown = 'none' THEN
        v_sql := format(v_sql, '''all''::text', 'e.event_type = ANY ($2)');
    ELSE
        v_sql := format(v_sql, format('coalesce(e.device ->> %L, ''unknown'')', v_dim), 'e.event_type = $2[1]')
                 || E'\n           UNION ALL\n           '
                 || format(v_sql, 'NULL::text', 'e.event_type = ANY ($6) AND e.event_type <> $2[1]');
    END IF;

    -- Going back in time through each user's events (ORDER BY ts DESC), the frame "GROUPS
    -- BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING" holds exactly the user's events strictly later
    -- than the current one, so min(ts) FILTER (WHERE t = type) over it is the first event of that
    -- type after the current one. Level k (from n-1 down to 1) gives every row the times
    -- c{k+1}..c{n} of the steps that follow if that row is step k: c{k+1} is the next event of
    -- type p_steps[k+1], and each later c{j} is the c{j} that level k+1 gave that event. That
    -- first event has the smallest c{j} of all the later ones (a later start never finds an
    -- earlier step), which is why min() picks it. Rows of types that no lower level needs are
    -- dropped on the way. One sort: every level keeps the order of the first.
    FOR v_k IN REVERSE v_n - 1 .. 1 LOOP
        v_cols := format('min(x.ts) FILTER (WHERE x.t = $2[%1$s]) OVER w AS c%1$s', v_k + 1);
        FOR v_j IN v_k + 2 .. v_n LOOP
            v_cols := v_cols || format(', min(x.c%1$s) FILTER (WHERE x.t = $2[%2$s]) OVER w AS c%1$s', v_j, v_k + 1);
        END LOOP;
        v_sql := format(
            $q$SELECT x.u, x.ts, x.t, x.d, %s
               FROM (%s) x
               %s
               WINDOW w AS (PARTITION BY x.u ORDER BY x.ts DESC GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)$q$,
            v_cols, v_sql,
            CASE WHEN v_k < v_n - 1 THEN format('WHERE x.t = ANY ($2[1:%s])', v_k + 1) ELSE '' END);
    END LOOP;

    -- The attempts (step-1 events in the range): how far each reaches (c{j} counts when it is
    -- within the window of the attempt's start, and those that count are a prefix of c2..cn)
    -- and the seconds from each step to the next (seconds[1]: step 1 to step 2, ...).
    v_reached := '1';
    v_times := '';
    FOR v_j IN 2 .. v_n LOOP
        v_reached := v_reached || format(' + ((c%s <= ts + $5) IS TRUE)::integer', v_j);
        v_times := v_times || format(', date_part(''epoch'', c%s - %s)', v_j, CASE WHEN v_j = 2 THEN 'ts' ELSE format('c%s', v_j - 1) END);
    END LOOP;
    -- One attempt per user: the furthest, then the earliest (then the smallest breakdown value,
    -- for step-1 events at the same instant). Without a breakdown, in one pass over the rows,
    -- which arrive grouped by user: for each reach r, the earliest start and step times of the
    -- attempts that reach exactly r (min(): see above), and then those of the best r. With a
    -- breakdown, DISTINCT ON sorts them.
    IF p_breakdown = 'none' THEN
        v_cols := 'max(reached) AS best';
        v_times := 'CASE best WHEN 1 THEN ''{}''::double precision[]';
        FOR v_k IN 2 .. v_n LOOP
            v_cols := v_cols || format(', min(ts) FILTER (WHERE reached = %1$s) AS r%1$s_1', v_k);
            FOR v_j IN 2 .. v_k LOOP
                v_cols := v_cols || format(', min(c%2$s) FILTER (WHERE reached = %1$s) AS r%1$s_%2$s', v_k, v_j);
            END LOOP;
            v_times := v_times || format(' WHEN %s THEN ARRAY[%s]', v_k,
                (SELECT string_agg(format('date_part(''epoch'', r%1$s_%2$s - r%1$s_%3$s)', v_k, j, j - 1), ', ' ORDER BY j)
                 FROM generate_series(2, v_k) AS j));
        END LOOP;
        v_times := v_times || ' END';
        v_sql := format(
            $q$SELECT 'all'::text AS d, best AS reached, %s AS seconds
               FROM (SELECT %s
                     FROM (SELECT *, %s AS reached
                           FROM (%s) a
                           WHERE t = $2[1] AND ts >= $3 AND ts < $4
                           OFFSET 0) a
                     GROUP BY u) g$q$,
            v_times, v_cols, v_reached, v_sql);
    ELSE
        v_sql := format(
            $q$SELECT DISTINCT ON (u) d, %s AS reached, (ARRAY[NULL::double precision%s])[2:] AS seconds
               FROM (%s) a
               WHERE t = $2[1] AND ts >= $3 AND ts < $4
               ORDER BY u, reached DESC, ts, d COLLATE "C"$q$,
            v_reached, v_times, v_sql);
    END IF;

    -- Per breakdown value: users and median seconds per step, as arrays indexed by step.
    v_cols := 'ARRAY[count(*)';
    FOR v_j IN 2 .. v_n LOOP
        v_cols := v_cols || format(', count(*) FILTER (WHERE reached >= %s)', v_j);
    END LOOP;
    v_cols := v_cols || '] AS users, ARRAY[NULL::double precision';
    FOR v_j IN 2 .. v_n LOOP
        v_cols := v_cols || format(
            ', percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds[%s]) FILTER (WHERE reached >= %s)', v_j - 1, v_j);
    END LOOP;
    v_cols := v_cols || '] AS medians';
    v_sql := format(
        $q$WITH per_dim AS (
               SELECT %s AS d, %s
               FROM (%s) c
               %s
           )
           SELECT p.d, s.k, $2[s.k], p.users[s.k],
                  CASE WHEN p.users[1] = 0 THEN 0
                       ELSE round(100.0 * p.users[s.k] / p.users[1], 2) END,
                  CASE WHEN s.k = 1 OR p.users[s.k - 1] = 0 THEN 0
                       ELSE round(100.0 * (p.users[s.k - 1] - p.users[s.k]) / p.users[s.k - 1], 2) END,
                  p.medians[s.k]
           FROM per_dim p
           CROSS JOIN generate_series(1, cardinality($2)) AS s(k)
           ORDER BY p.d COLLATE "C", s.k$q$,
        CASE WHEN p_breakdown = 'none' THEN '''all''::text' ELSE 'c.d' END,
        v_cols, v_sql,
        -- Without a breakdown, one row even when nobody entered the funnel.
        CASE WHEN p_breakdown = 'none' THEN '' ELSE 'GROUP BY c.d' END);

    RETURN QUERY EXECUTE v_sql
        USING v_pk_app,
              v_steps,
              v_from::timestamp AT TIME ZONE v_timezone,
              (v_to + 1)::timestamp AT TIME ZONE v_timezone,
              v_window,
              v_steps[2:];
END
$$;

COMMENT ON FUNCTION analytics.fn_funnel(text, text[], date, date, interval, text) IS
    'Ordered conversion funnel of 1 to 10 event types over local dates, each user counted once with their furthest attempt: '
    'users, conversion % from step 1, drop-off % from the previous step and median seconds from it, per step, optionally by os or app_version.';
