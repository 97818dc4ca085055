-- analytics.fn_archive_rows(p_app, p_from, p_to) -> setof (the archive's Parquet columns)
--
-- The raw events of app p_app (pk_app, as fn_archive_plan returns it) with p_from <=
-- "timestamp" < p_to, in time order, shaped like the archive's Parquet schema (docs/lifecycle.md):
-- uuids, device and metadata as text, times as timestamptz.
--
-- No SET search_path on purpose, and plain SQL: a SET clause (or plpgsql, or SECURITY DEFINER)
-- would keep the planner from inlining it, and then PostgreSQL would collect every row before
-- returning the first. Inlined, a cursor over it streams an app-day of any size. Every name is
-- schema-qualified; the caller needs SELECT on analytics.tb_event and analytics.tb_app.
--
-- Errors: none.
CREATE OR REPLACE FUNCTION analytics.fn_archive_rows(p_app integer, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (
    event_id           text,
    client_event_id    text,
    app_id             text,
    event_type         text,
    "timestamp"        timestamptz,
    received_at        timestamptz,
    timestamp_clamped  boolean,
    user_id            text,
    anonymous_id       text,
    session_id         text,
    path               text,
    label              text,
    duration_ms        bigint,
    device             text,
    metadata           text,
    sequence           bigint)
LANGUAGE sql
STABLE
SECURITY INVOKER
AS $$
    SELECT e.id::text, e.client_event_id, a.id::text, e.event_type, e."timestamp", e.received_at,
           e.timestamp_clamped, e.user_id, e.anonymous_id, e.session_id, e.path, e.label, e.duration_ms,
           e.device::text, e.metadata::text, e.pk_event
    FROM analytics.tb_event e
    LEFT JOIN analytics.tb_app a ON a.pk_app = e.fk_app
    WHERE e.fk_app = p_app AND e."timestamp" >= p_from AND e."timestamp" < p_to
    ORDER BY e."timestamp", e.pk_event
$$;

COMMENT ON FUNCTION analytics.fn_archive_rows(integer, timestamptz, timestamptz) IS
    'Raw events of one app in a time range, in time order, as the archive''s Parquet columns (streams through a cursor).';
