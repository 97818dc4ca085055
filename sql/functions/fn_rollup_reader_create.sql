-- analytics_internal.fn_rollup_reader_create(p_rollup) -> void
--
-- Creates (or replaces) analytics_internal.fn_<rollup>_between(p_app, p_from, p_to): the rows
-- of one app's buckets that start in [p_from, p_to), exactly as the rollup view shows them; on
-- PostgreSQL also analytics_internal.fn_<rollup>_recent(p_app, p_from, p_to), the part of them
-- computed from raw events, which the reader reads (on TimescaleDB it exists too, returning no
-- rows, so that both engines have the same functions).
-- fn_rollup_ddl's last statement calls it, once the view exists (its columns are the reader's).
--
-- Why, on PostgreSQL: the view's live branches aggregate raw events from the watermark on, and
-- a condition on the view's `bucket` cannot bound the raw events' time (a bucket is computed
-- from it), so every read of a daily view aggregates the whole current day's raw events, even
-- for a range that ended last week: at the end of a day of a 10M-event app, about 100 ms per
-- view. The reader bounds the raw events by p_from and p_to as well as by the watermark, so a
-- range in the past reads only materialized rows. A hierarchical rollup's reader aggregates
-- its source's reader rather than the raw events, so that the current day of a daily rollup is
-- read from the hourly rollup's materialized hours (and the current hour's raw events). It is
-- a plain SQL function (no SET clause,
-- hence no SET search_path: every name in it is schema-qualified), which the planner inlines
-- into the caller's query with the caller's values.
-- On TimescaleDB the reader selects from the continuous aggregate, which bounds its real-time
-- part itself.
--
--   p_rollup  a rollup registered in analytics_internal.tb_rollup whose view exists
--
-- Errors: P0002 unknown rollup (from fn_rollup_query, or no view of that name yet).
CREATE OR REPLACE FUNCTION analytics_internal.fn_rollup_reader_create(p_rollup text)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_width      interval := (SELECT r.bucket_width FROM analytics_internal.tb_rollup r WHERE r.rollup = p_rollup);
    -- a call, not a subquery: see fn_rollup_watermark
    v_watermark  text := format('analytics_internal.fn_rollup_watermark(%L)', p_rollup);
    v_inner      text;
    v_columns    text;
    v_stale      text;
    v_end        text;
    v_live       text;  -- buckets from the watermark on
    v_restale    text;  -- buckets before it whose raw events changed since the last refresh
    v_body       text;
    -- On TimescaleDB the continuous aggregate computes its buckets not yet materialized itself
    -- (real-time aggregation) and the reader reads only the view: the raw part returns no rows.
    v_recent     text := E'BEGIN\n    RETURN;\nEND';
BEGIN
    SELECT i.rollup INTO v_inner
    FROM analytics_internal.tb_rollup r JOIN analytics_internal.tb_rollup i ON 'analytics.' || i.rollup = r.source
    WHERE r.rollup = p_rollup;
    SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
      INTO v_columns
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = to_regclass(format('analytics.%I', p_rollup)) AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_width IS NULL OR v_columns IS NULL THEN
        RAISE EXCEPTION 'rollup % is not registered or has no view', coalesce(quote_literal(p_rollup), 'NULL')
            USING ERRCODE = 'P0002',
                  HINT = 'Rollups are registered and created by the files in sql/continuous_aggregates/; run migrate.';
    END IF;

    IF analytics.fn_engine() = 'timescaledb' THEN
        v_body := format('SELECT v.* FROM analytics.%I v WHERE v.fk_app = p_app AND v.bucket >= p_from AND v.bucket < p_to',
                         p_rollup);
    ELSE
        -- The view's three branches (see fn_rollup_ddl), each also bounded by [p_from, p_to):
        -- a bucket in the range has all its raw events between p_from and the end of the last
        -- bucket that starts before p_to (p_to itself when it is a bucket boundary), and rows of
        -- buckets cut by those bounds are dropped by the outer condition.
        v_stale := analytics_internal.fn_rollup_stale_sql(v_width, v_watermark);
        v_end := format('%s + %L::interval',
                        analytics_internal.fn_rollup_bucket_sql(v_width, 'p_to - interval ''1 microsecond'''), v_width);
        -- A hierarchical rollup aggregates its source's rows read through the source's own
        -- reader (p_rows), so that its live part reads the source's materialized buckets
        -- (today's hours) rather than the raw events.
        v_live := analytics_internal.fn_rollup_query(p_rollup, 'postgresql',
            p_from => format('greatest(%s, p_from)', v_watermark), p_to => v_end,
            p_rows => CASE WHEN v_inner IS NOT NULL
                           THEN format('analytics_internal.%I(p_app, greatest(%s, p_from), %s) AS src',
                                       'fn_' || v_inner || '_between', v_watermark, v_end) END);
        v_restale := analytics_internal.fn_rollup_query(p_rollup, 'postgresql',
            p_buckets => format('(SELECT s.fk_app, s.bucket FROM %s s WHERE s.fk_app = p_app'
                                ' AND s.bucket >= p_from - %L::interval AND s.bucket < p_to)', v_stale, v_width),
            p_rows => CASE WHEN v_inner IS NOT NULL
                           THEN format('analytics_internal.%I(i.inv_app, i.inv_bucket, i.inv_bucket + %L::interval) AS src',
                                       'fn_' || v_inner || '_between', v_width) END);
        -- The branches that read raw events (or the source's reader) live in a function of their
        -- own, planned once per session: inlined, their references to every partition of
        -- tb_event were planned again in each caller's statement -- a generic plan spans them
        -- all -- and a caller such as fn_metrics, which reads several readers, took 300-600 ms
        -- to plan at 71 partitions, again after every ANALYZE of a partition by autovacuum.
        -- (#variable_conflict: the result columns are variables too, and the query means the
        -- tables' columns.)
        v_recent := format(E'#variable_conflict use_column\nBEGIN\n    RETURN QUERY %s UNION ALL %s;\nEND',
                           v_live, v_restale);
        v_body := format(
            'SELECT r.* FROM ('
            ' SELECT m.* FROM analytics_internal.%1$I m'
            ' WHERE m.fk_app = p_app AND m.bucket >= p_from AND m.bucket < p_to AND m.bucket < %2$s'
            ' AND NOT EXISTS (SELECT 1 FROM %3$s s WHERE s.fk_app = m.fk_app AND s.bucket = m.bucket)'
            ' UNION ALL SELECT x.* FROM analytics_internal.%4$I(p_app, p_from, p_to) x'
            ') r WHERE r.fk_app = p_app AND r.bucket >= p_from AND r.bucket < p_to',
            'tb_' || p_rollup, v_watermark, v_stale, 'fn_' || p_rollup || '_recent');
    END IF;

    EXECUTE format('CREATE OR REPLACE FUNCTION analytics_internal.%I(p_app integer, p_from timestamptz, p_to timestamptz)'
                   ' RETURNS TABLE (%s) LANGUAGE plpgsql STABLE SECURITY INVOKER'
                   ' SET search_path = pg_catalog, analytics, analytics_internal, pg_temp'
                   ' SET plan_cache_mode = force_generic_plan AS %L',
                   'fn_' || p_rollup || '_recent', v_columns, v_recent);
    EXECUTE format('COMMENT ON FUNCTION analytics_internal.%I(integer, timestamptz, timestamptz) IS %L',
                   'fn_' || p_rollup || '_recent',
                   format('PostgreSQL engine: rows of analytics.%s for one app computed from raw events (or from '
                          'its source''s reader), buckets from the watermark on and stale ones before it, for '
                          '[p_from, p_to); read by fn_%s_between. TimescaleDB: no rows (the continuous aggregate '
                          'computes them). Generated by fn_rollup_reader_create.', p_rollup, p_rollup));
    EXECUTE format('CREATE OR REPLACE FUNCTION analytics_internal.%I(p_app integer, p_from timestamptz, p_to timestamptz)'
                   ' RETURNS TABLE (%s) LANGUAGE sql STABLE SECURITY INVOKER AS %L',
                   'fn_' || p_rollup || '_between', v_columns, v_body);
    EXECUTE format('COMMENT ON FUNCTION analytics_internal.%I(integer, timestamptz, timestamptz) IS %L',
                   'fn_' || p_rollup || '_between',
                   format('Rows of analytics.%s for one app and the buckets starting in [p_from, p_to), as the view '
                          'shows them, reading raw events only in that range. Generated by fn_rollup_reader_create: '
                          'No SET search_path, so that it inlines.', p_rollup));
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_rollup_reader_create(text) IS
    'Create analytics_internal.fn_<rollup>_between(p_app, p_from, p_to), a rollup''s rows for one app and time range bounded on the raw events too, and fn_<rollup>_recent, their part computed from raw events.';
