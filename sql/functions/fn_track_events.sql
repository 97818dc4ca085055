-- analytics.fn_track_events(p_app, p_api_key, p_events, p_sent_at, p_context)
--     -> (accepted, duplicates, clamped, rejected)
--
-- Ingests one batch of events in one round trip, exactly once per client event id.
--
--   p_app      app identifier or uuid
--   p_api_key  a write key of that app (verified here, not by the caller)
--   p_events   JSON array of event objects (see docs/sql-api.md for the fields)
--   p_sent_at  when the device sent the batch, by the device's clock; enables skew correction
--   p_context  request context {user_id, anonymous_id, session_id, device} filling gaps in events
--
-- Whole-batch errors (nothing is stored):
--   28000 / 42501  key not valid for the app / not a write key
--   54000          more than max_batch_events events or max_batch_bytes bytes
--   22023          p_events is not an array, or p_context is malformed
-- Per-event problems never fail the batch: the event is listed in `rejected` as
-- {index (0-based), code, message} and the others are stored.
--
-- Exactly-once: (app, event id) is claimed in analytics_internal.tb_event_key with
-- ON CONFLICT DO NOTHING before the event row is written, in key order so that overlapping
-- concurrent batches cannot deadlock. A retry, with any sentAt and at any time while the raw
-- event is retained, finds its key taken and is counted as a duplicate.
CREATE OR REPLACE FUNCTION analytics.fn_track_events(
    p_app        text,
    p_api_key    text,
    p_events     json,
    p_sent_at    timestamptz DEFAULT NULL,
    p_context    jsonb DEFAULT NULL,
    OUT accepted    integer,
    OUT duplicates  integer,
    OUT clamped     integer,
    OUT rejected    jsonb)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
-- The inlined per-event checks look costly to the planner, and JIT-compiling them would take
-- longer than validating a whole batch.
SET jit = off
AS $$
DECLARE
    v_pk_app          integer;
    v_retention_days  integer;
    v_now             timestamptz := now();
    v_count           integer;
    v_bytes           bigint;
    v_max_events      integer := analytics_internal.fn_setting('max_batch_events')::integer;
    v_max_bytes       bigint := analytics_internal.fn_setting('max_batch_bytes')::bigint;
    v_max_event_bytes integer := analytics_internal.fn_setting('max_event_bytes')::integer;
    v_max_skew        interval := analytics_internal.fn_setting('max_future_skew')::interval;
    v_ctx             jsonb := coalesce(p_context, '{}'::jsonb);
    v_ctx_device      jsonb;
BEGIN
    v_pk_app := analytics_internal.fn_authenticate(p_app, p_api_key, 'write');

    IF p_events IS NULL OR json_typeof(p_events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array'
            USING ERRCODE = '22023',
                  HINT = 'Send the batch as [{"type": "app_open"}, ...].';
    END IF;
    v_bytes := octet_length(p_events::text);
    IF v_bytes > v_max_bytes THEN
        RAISE EXCEPTION 'batch is % bytes; the limit is % bytes (10 MB) per batch', v_bytes, v_max_bytes
            USING ERRCODE = '54000',
                  HINT = 'Split the events into smaller batches.';
    END IF;
    v_count := json_array_length(p_events);
    IF v_count > v_max_events THEN
        RAISE EXCEPTION 'batch has % events; the limit is % events per batch', v_count, v_max_events
            USING ERRCODE = '54000',
                  HINT = 'Split the events into batches of at most 2000.';
    END IF;

    IF jsonb_typeof(v_ctx) <> 'object'
       OR (v_ctx - ARRAY['user_id', 'anonymous_id', 'session_id', 'device']) <> '{}'::jsonb
       OR NOT analytics_internal.fn_is_valid_text_field(v_ctx ->> 'user_id', jsonb_typeof(v_ctx -> 'user_id'), 256)
       OR NOT analytics_internal.fn_is_valid_text_field(v_ctx ->> 'anonymous_id', jsonb_typeof(v_ctx -> 'anonymous_id'), 256)
       OR NOT analytics_internal.fn_is_valid_text_field(v_ctx ->> 'session_id', jsonb_typeof(v_ctx -> 'session_id'), 256)
       OR (jsonb_typeof(v_ctx -> 'device') <> 'null'
           AND NOT analytics_internal.fn_is_valid_device(
                   v_ctx -> 'device',
                   CASE WHEN jsonb_typeof(v_ctx -> 'device') = 'object'
                        THEN jsonb_populate_record(NULL::analytics_internal.tp_device_fields, v_ctx -> 'device') END)) THEN
        RAISE EXCEPTION 'request context is malformed'
            USING ERRCODE = '22023',
                  DETAIL = 'The context is an object with optional user_id, anonymous_id and session_id '
                           '(non-empty strings of at most 256 printable characters) and device (a flat object).',
                  HINT = 'Fix the context or the X-User-Id / X-Session-Id / X-Device-* headers.';
    END IF;
    v_ctx_device := CASE WHEN jsonb_typeof(v_ctx -> 'device') = 'object'
                         THEN jsonb_strip_nulls(v_ctx -> 'device') ELSE '{}'::jsonb END;

    SELECT a.retention_days INTO v_retention_days FROM analytics.tb_app a WHERE a.pk_app = v_pk_app;

    WITH src AS MATERIALIZED (
        -- Each step that feeds inlined checks is materialized: otherwise the planner would
        -- substitute the expression (a JSON parse, a record fill) everywhere a column is used.
        SELECT t.idx, t.too_large, t.unstorable,
               CASE WHEN NOT (t.too_large OR t.unstorable) THEN t.j::jsonb END AS e
        FROM (SELECT (a.ord - 1)::integer AS idx,
                     a.j,
                     octet_length(a.j::text) > v_max_event_bytes AS too_large,
                     analytics_internal.fn_json_has_unstorable_text(a.j::text) AS unstorable
              FROM json_array_elements(p_events) WITH ORDINALITY AS a(j, ord)) t
    ), parsed AS MATERIALIZED (
        -- every documented field read into row types in one pass
        SELECT s.idx, s.too_large, s.unstorable, s.e,
               CASE WHEN jsonb_typeof(s.e) = 'object'
                    THEN jsonb_populate_record(NULL::analytics_internal.tp_event_fields, s.e) END AS f,
               CASE WHEN jsonb_typeof(s.e -> 'device') = 'object'
                    THEN jsonb_populate_record(NULL::analytics_internal.tp_device_fields, s.e -> 'device') END AS d
        FROM src s
    ), timed AS MATERIALIZED (
        SELECT p.*,
               analytics_internal.fn_parse_event_time((p.f)."timestamp", jsonb_typeof(p.e -> 'timestamp')) AS client_time
        FROM parsed p
    ), checked AS (
        SELECT c.idx, c.e, c.f,
               (c.f).event_id AS client_event_id,
               c.event_time > v_now + v_max_skew AS is_clamped,
               CASE WHEN c.event_time > v_now + v_max_skew THEN v_now ELSE c.event_time END AS event_time,
               CASE
                   WHEN c.too_large THEN jsonb_build_object(
                        'code', 'event_too_large',
                        'message', format('event exceeds %s bytes of JSON', v_max_event_bytes))
                   WHEN c.unstorable THEN jsonb_build_object(
                        'code', 'unstorable_text',
                        'message', 'event contains a NUL character (\u0000) or an unpaired UTF-16 surrogate')
                   ELSE coalesce(
                        analytics_internal.fn_event_problem(c.e, c.f, c.d, c.client_time),
                        CASE WHEN c.event_time < v_now - make_interval(days => v_retention_days)
                             THEN jsonb_build_object(
                                  'code', 'too_old',
                                  'message', format('event time %s is older than this app''s retention of %s days',
                                                    to_char(c.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                                    v_retention_days)) END)
               END AS problem
        FROM (SELECT t.*,
                     CASE WHEN t.client_time IS NULL THEN v_now
                          WHEN p_sent_at IS NOT NULL THEN v_now - (p_sent_at - t.client_time)
                          ELSE t.client_time END AS event_time
              FROM timed t) c
    ), valid AS (
        SELECT k.*,
               CASE WHEN k.client_event_id IS NULL THEN NULL
                    WHEN char_length(k.client_event_id) = 36
                     AND k.client_event_id ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                        THEN k.client_event_id::uuid
                    ELSE md5(k.client_event_id)::uuid END AS event_key
        FROM checked k
        WHERE k.problem IS NULL
    ), ranked AS MATERIALIZED (
        -- only the first copy of an id within this batch competes for the key
        SELECT v.*,
               v.event_key IS NOT NULL
               AND row_number() OVER (PARTITION BY v.event_key ORDER BY v.idx) = 1 AS is_first
        FROM valid v
    ), claimed AS (
        INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, "timestamp")
        SELECT v_pk_app, r.event_key, r.event_time
        FROM ranked r
        WHERE r.is_first
        ORDER BY r.event_key
        ON CONFLICT (fk_app, event_key) DO NOTHING
        RETURNING event_key
    ), stored AS (
        INSERT INTO analytics.tb_event (id, client_event_id, fk_app, event_type, "timestamp", received_at,
                                        timestamp_clamped, user_id, anonymous_id, session_id, path, label,
                                        duration_ms, device, metadata)
        SELECT coalesce(v.event_key, gen_random_uuid()),
               v.client_event_id,
               v_pk_app,
               (v.f).type,
               v.event_time,
               v_now,
               v.is_clamped,
               coalesce((v.f).user_id, v_ctx ->> 'user_id'),
               coalesce((v.f).anonymous_id, v_ctx ->> 'anonymous_id'),
               coalesce((v.f).session_id, v_ctx ->> 'session_id'),
               (v.f).path,
               (v.f).label,
               (v.f).duration::numeric::bigint,
               CASE WHEN (v.f).device IS NULL THEN v_ctx_device
                    ELSE v_ctx_device || jsonb_strip_nulls((v.f).device) END,
               coalesce((v.f).metadata, '{}'::jsonb)
        FROM ranked v
        WHERE v.event_key IS NULL
           OR (v.is_first AND v.event_key IN (SELECT c.event_key FROM claimed c))
        RETURNING timestamp_clamped
    )
    SELECT (SELECT count(*) FROM stored),
           (SELECT count(*) FROM ranked) - (SELECT count(*) FROM stored),
           (SELECT count(*) FROM stored s WHERE s.timestamp_clamped),
           coalesce((SELECT jsonb_agg(jsonb_build_object('index', k.idx) || k.problem ORDER BY k.idx)
                     FROM checked k WHERE k.problem IS NOT NULL), '[]'::jsonb)
      INTO accepted, duplicates, clamped, rejected;
END
$$;

COMMENT ON FUNCTION analytics.fn_track_events(text, text, json, timestamptz, jsonb) IS
    'Ingest a batch of events exactly once per event id; returns accepted, duplicates, clamped and rejected[{index, code, message}].';
