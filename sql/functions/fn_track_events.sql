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
-- Planning the batch statement costs milliseconds; its plan does not depend on the values,
-- so plan it once per session instead of once per batch.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_pk_app          integer;
    v_retention_days  integer;
    v_dropped_before  timestamptz;
    v_now             timestamptz := now();
    v_count           integer;
    v_bytes           bigint;
    v_max_events      integer := analytics_internal.fn_setting('max_batch_events')::integer;
    v_max_bytes       bigint := analytics_internal.fn_setting('max_batch_bytes')::bigint;
    v_max_event_bytes integer := analytics_internal.fn_setting('max_event_bytes')::integer;
    v_max_skew        interval := analytics_internal.fn_setting('max_future_skew')::interval;
    v_ctx             jsonb := coalesce(p_context, '{}'::jsonb);
    v_ctx_device      jsonb;
    v_events          jsonb;
    v_unstorable      integer[] := '{}';
BEGIN
    v_pk_app := analytics_internal.fn_authenticate(p_app, p_api_key, 'write');

    IF p_events IS NULL OR json_typeof(p_events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array'
            USING ERRCODE = '22023',
                  HINT = 'Send the batch as [{"type": "app_open"}, ...].';
    END IF;
    v_bytes := octet_length(p_events::text);
    IF v_bytes > v_max_bytes THEN
        RAISE EXCEPTION 'batch is % bytes; the limit is % bytes per batch', v_bytes, v_max_bytes
            USING ERRCODE = '54000',
                  HINT = 'Split the events into smaller batches.';
    END IF;
    v_count := json_array_length(p_events);
    IF v_count > v_max_events THEN
        RAISE EXCEPTION 'batch has % events; the limit is % events per batch', v_count, v_max_events
            USING ERRCODE = '54000',
                  HINT = format('Split the events into batches of at most %s.', v_max_events);
    END IF;

    IF jsonb_typeof(v_ctx) <> 'object'
       OR (v_ctx - ARRAY['user_id', 'anonymous_id', 'session_id', 'device']) <> '{}'::jsonb
       OR NOT analytics_internal.fn_is_valid_text_field(v_ctx ->> 'user_id', jsonb_typeof(v_ctx -> 'user_id'), 256)
       OR NOT analytics_internal.fn_is_valid_text_field(v_ctx ->> 'anonymous_id', jsonb_typeof(v_ctx -> 'anonymous_id'), 256)
       OR NOT analytics_internal.fn_is_valid_text_field(v_ctx ->> 'session_id', jsonb_typeof(v_ctx -> 'session_id'), 256)
       OR NOT analytics_internal.fn_is_clean_text(concat(v_ctx ->> 'user_id', v_ctx ->> 'anonymous_id',
                                                           v_ctx ->> 'session_id'))
       OR (jsonb_typeof(v_ctx -> 'device') <> 'null'
           AND NOT analytics_internal.fn_is_valid_device(v_ctx -> 'device')) THEN
        RAISE EXCEPTION 'request context is malformed'
            USING ERRCODE = '22023',
                  DETAIL = 'The context is an object with optional user_id, anonymous_id and session_id '
                           '(non-empty strings of at most 256 printable characters) and device (an object '
                           'with the documented device fields).',
                  HINT = 'Fix the context or the X-User-Id / X-Session-Id / X-Device-* headers.';
    END IF;
    v_ctx_device := CASE WHEN jsonb_typeof(v_ctx -> 'device') = 'object'
                         THEN jsonb_strip_nulls(v_ctx -> 'device') ELSE '{}'::jsonb END;

    SELECT a.retention_days INTO v_retention_days FROM analytics.tb_app a WHERE a.pk_app = v_pk_app;
    -- Raw events before a range that retention dropped are refused too: the rollups hold the
    -- dropped events' history there, which one late event would replace (docs/lifecycle.md).
    v_dropped_before := analytics_internal.fn_event_horizon(v_pk_app);

    -- Fast path: the whole batch becomes jsonb in one parse. jsonb cannot hold U+0000 or an
    -- unpaired surrogate, which the json type lets through; only then are the events looked
    -- at one by one, and the offending ones replaced by null and reported as unstorable_text.
    BEGIN
        v_events := p_events::jsonb;
    EXCEPTION WHEN untranslatable_character OR invalid_text_representation THEN
        SELECT jsonb_agg(CASE WHEN u.bad THEN 'null'::jsonb ELSE u.j::jsonb END ORDER BY u.ord),
               coalesce(array_agg((u.ord - 1)::integer) FILTER (WHERE u.bad), '{}')
          INTO v_events, v_unstorable
        FROM (SELECT a.j, a.ord, analytics_internal.fn_json_has_unstorable_text(a.j::text) AS bad
              FROM json_array_elements(p_events) WITH ORDINALITY AS a(j, ord)) u;
    END;

    WITH src AS (
        SELECT (a.ord - 1)::integer AS idx,
               pg_column_size(a.e) > v_max_event_bytes AS too_large,
               (a.ord - 1)::integer = ANY (v_unstorable) AS unstorable,
               a.e
        FROM jsonb_array_elements(v_events) WITH ORDINALITY AS a(e, ord)
    ), parsed AS MATERIALIZED (
        -- Every documented field read once, as a plain column, and the time parsed once (from
        -- a lateral OFFSET 0 subquery, which the planner does not flatten). Materialized:
        -- otherwise the planner would repeat the look-ups wherever the inlined checks use them.
        SELECT s.idx, s.too_large, s.unstorable, s.e,
               s.e ->> 'type' AS type,
               s.e ->> 'event_id' AS event_id,
               t.ts AS "timestamp",
               analytics_internal.fn_parse_event_time(t.ts, t.ts_type) AS client_time,
               s.e ->> 'user_id' AS user_id,
               s.e ->> 'anonymous_id' AS anonymous_id,
               s.e ->> 'session_id' AS session_id,
               s.e ->> 'path' AS path,
               s.e ->> 'label' AS label,
               s.e ->> 'duration' AS duration,
               s.e -> 'device' AS device,
               s.e -> 'metadata' AS metadata
        FROM src s
        CROSS JOIN LATERAL (SELECT s.e ->> 'timestamp' AS ts, jsonb_typeof(s.e -> 'timestamp') AS ts_type
                            OFFSET 0) t
    ), checked AS (
        -- event_key: md5 of the id in canonical form (a uuid-shaped id in lower case), so that
        -- two different ids never share a key; the stored event id is the client's own uuid
        -- when it sent one. Valid rows are those with no problem.
        SELECT k.*,
               CASE WHEN k.client_event_id IS NULL THEN NULL
                    ELSE md5(CASE WHEN k.id_is_uuid THEN lower(k.client_event_id)
                                  ELSE k.client_event_id END)::uuid END AS event_key,
               CASE WHEN k.id_is_uuid THEN k.client_event_id::uuid END AS client_uuid
        FROM (SELECT c2.*,
                     -- 8-4-4-4-12 hex digits, tested without a counted regex (slow in PostgreSQL)
                     coalesce(char_length(c2.client_event_id) = 36
                              AND substr(c2.client_event_id, 9, 1) = '-' AND substr(c2.client_event_id, 14, 1) = '-'
                              AND substr(c2.client_event_id, 19, 1) = '-' AND substr(c2.client_event_id, 24, 1) = '-'
                              AND char_length(replace(c2.client_event_id, '-', '')) = 32
                              AND c2.client_event_id ~ '^[-0-9a-fA-F]*$', false) AS id_is_uuid
              FROM (
                        SELECT c.idx, c.type, c.user_id, c.anonymous_id, c.session_id, c.path, c.label, c.duration,
                               c.device, c.metadata,
                               c.event_id AS client_event_id,
                               c.event_time > v_now + v_max_skew AS is_clamped,
                               CASE WHEN c.event_time > v_now + v_max_skew THEN v_now ELSE c.event_time END AS event_time,
                               CASE
                                   WHEN c.too_large THEN jsonb_build_object(
                                        'code', 'event_too_large',
                                        'message', format('event is larger than %s bytes (stored as jsonb)', v_max_event_bytes))
                                   WHEN c.unstorable THEN jsonb_build_object(
                                        'code', 'unstorable_text',
                                        'message', 'event contains a NUL character (\u0000) or an unpaired UTF-16 surrogate')
                                   ELSE coalesce(
                                        analytics_internal.fn_event_problem(
                                            p_event => c.e, p_event_time => c.client_time, p_type => c.type,
                                            p_event_id => c.event_id, p_timestamp => c."timestamp", p_user_id => c.user_id,
                                            p_anonymous_id => c.anonymous_id, p_session_id => c.session_id, p_path => c.path,
                                            p_label => c.label, p_duration => c.duration, p_device => c.device,
                                            p_metadata => c.metadata),
                                        CASE WHEN c.event_time < v_now - make_interval(days => v_retention_days)
                                             THEN jsonb_build_object(
                                                  'code', 'too_old',
                                                  'message', format('event time %s is older than this app''s retention of %s days',
                                                                    to_char(c.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                                                    v_retention_days))
                                             WHEN c.event_time < v_dropped_before
                                             THEN jsonb_build_object(
                                                  'code', 'too_old',
                                                  'message', format('event time %s is before %s: older raw events were removed by retention',
                                                                    to_char(c.event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                                                    to_char(v_dropped_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) END)
                               END AS problem
                        FROM (SELECT t.*,
                                     CASE WHEN t.client_time IS NULL THEN v_now
                                          WHEN p_sent_at IS NULL THEN t.client_time
                                          -- a skew reaching back before 1970 would overflow: too old anyway
                                          WHEN p_sent_at - t.client_time > v_now - '1970-01-01 00:00:00+00'
                                              THEN '1970-01-01 00:00:00+00'::timestamptz
                                          ELSE v_now - (p_sent_at - t.client_time) END AS event_time
                              FROM parsed t) c
              ) c2) k
    ), firsts AS MATERIALIZED (
        -- only the first valid copy of an id within this batch competes for the key
        SELECT DISTINCT ON (v.event_key) v.idx, v.event_key, v.event_time
        FROM checked v
        WHERE v.problem IS NULL AND v.event_key IS NOT NULL
        ORDER BY v.event_key, v.idx
    ), claimed AS (
        INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, "timestamp")
        SELECT v_pk_app, f.event_key, f.event_time
        FROM firsts f
        ORDER BY f.event_key
        ON CONFLICT (fk_app, event_key) DO NOTHING
        RETURNING event_key
    ), stored AS (
        INSERT INTO analytics.tb_event (id, client_event_id, fk_app, event_type, "timestamp", received_at,
                                        timestamp_clamped, user_id, anonymous_id, session_id, path, label,
                                        duration_ms, device, metadata)
        SELECT coalesce(v.client_uuid, v.event_key, gen_random_uuid()),
               v.client_event_id,
               v_pk_app,
               v.type,
               v.event_time,
               v_now,
               v.is_clamped,
               coalesce(v.user_id, v_ctx ->> 'user_id'),
               coalesce(v.anonymous_id, v_ctx ->> 'anonymous_id'),
               coalesce(v.session_id, v_ctx ->> 'session_id'),
               v.path,
               v.label,
               v.duration::numeric::bigint,
               CASE WHEN jsonb_typeof(v.device) IS DISTINCT FROM 'object' THEN v_ctx_device
                    WHEN v_ctx_device = '{}'::jsonb THEN jsonb_strip_nulls(v.device)
                    ELSE v_ctx_device || jsonb_strip_nulls(v.device) END,
               CASE WHEN jsonb_typeof(v.metadata) = 'object' THEN v.metadata ELSE '{}'::jsonb END
        FROM checked v
        WHERE v.problem IS NULL
          AND (v.event_key IS NULL
               OR (v.idx IN (SELECT f.idx FROM firsts f) AND v.event_key IN (SELECT c.event_key FROM claimed c)))
        RETURNING timestamp_clamped
    )
    SELECT (SELECT count(*) FROM stored),
           (SELECT count(*) FROM checked k WHERE k.problem IS NULL) - (SELECT count(*) FROM stored),
           (SELECT count(*) FROM stored s WHERE s.timestamp_clamped),
           coalesce((SELECT jsonb_agg(jsonb_build_object('index', k.idx) || k.problem ORDER BY k.idx)
                     FROM checked k WHERE k.problem IS NOT NULL), '[]'::jsonb)
      INTO accepted, duplicates, clamped, rejected;
END
$$;

COMMENT ON FUNCTION analytics.fn_track_events(text, text, json, timestamptz, jsonb) IS
    'Ingest a batch of events exactly once per event id; returns accepted, duplicates, clamped and rejected[{index, code, message}].';
