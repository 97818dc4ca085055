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
-- Exactly-once: (app, event id) is claimed in analytics_internal.tb_event_key before the event
-- row is written, in key order so that overlapping concurrent batches cannot deadlock. A retry,
-- with any sentAt and at any time while the raw event is retained, finds its key taken and is
-- counted as a duplicate.
--
-- Two paths, one result. The fast path takes a batch whose events are all valid and new: cheap
-- sufficient checks, plain INSERTs. Any other batch (a rejected event, a key already taken, the
-- same id twice, unstorable text) leaves no trace of it and goes through the general path:
-- per-event problems, in-batch de-duplication, ON CONFLICT DO NOTHING.
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
    v_all_valid       boolean;
    v_oldest          timestamptz;
    v_latest          timestamptz := v_now + v_max_skew;
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
    -- One parse of the whole batch into jsonb, which every path below reads. jsonb cannot hold
    -- U+0000 or an unpaired surrogate, which the json type lets through: such a batch takes the
    -- general path, which looks at the events one by one (v_events stays NULL here).
    BEGIN
        v_events := p_events::jsonb;
    EXCEPTION WHEN untranslatable_character OR invalid_text_representation THEN
        v_events := NULL;
    END;
    v_count := CASE WHEN v_events IS NOT NULL THEN jsonb_array_length(v_events)
                    ELSE json_array_length(p_events) END;
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
    v_oldest := v_now - make_interval(days => v_retention_days);

    -- Fast path, for a batch whose events are all storable and valid (the usual case): each
    -- event passes cheap tests that imply fn_event_problem() IS NULL (fn_event_problem() itself
    -- decides for an event that fails them), and is stored without the in-batch de-duplication
    -- and the ON CONFLICT of the general path. Nothing is written unless every event is valid.
    -- A key already taken (a retry, or the same id twice in the batch: unique_violation) or a
    -- value of a canonical layout that does not cast (a timestamp that is no date, an
    -- 8-4-4-4-12 id that is no uuid: data_exception) undoes the block; the general path below
    -- then handles the whole batch. A batch whose first event's key is already taken is most
    -- likely an SDK's retry of a stored batch: one index probe sends it to the general path
    -- at once instead of after the fast path's whole work (a hint only: a miss costs nothing
    -- and the general path is right for any batch).
    IF v_events IS NOT NULL
       AND NOT EXISTS (
           SELECT 1 FROM analytics_internal.tb_event_key ek
           WHERE ek.fk_app = v_pk_app
             AND ek.event_key = (SELECT analytics_internal.fn_event_key(
                                            f.id, f.id LIKE '________-____-____-____-____________')
                                 FROM (SELECT v_events -> 0 ->> 'event_id' AS id) f)) THEN
        BEGIN
            WITH src AS MATERIALIZED (
                -- only what the inserts use: a materialized CTE keeps every column it is given
                SELECT k.type, k.event_id, k.user_id, k.anonymous_id, k.session_id, k.path, k.label, k.duration,
                       k.device, k.metadata, k.event_time, k.cheap_ok,
                       coalesce(k.size_ok
                       AND (k.cheap_ok
                            OR analytics_internal.fn_event_problem(
                                   p_event => k.e, p_event_time => k.client_time, p_type => k.type,
                                   p_event_id => k.event_id, p_timestamp => k.ts, p_user_id => k.user_id,
                                   p_anonymous_id => k.anonymous_id, p_session_id => k.session_id,
                                   p_path => k.path, p_label => k.label, p_duration => k.duration,
                                   p_device => k.device, p_metadata => k.metadata) IS NULL)
                       AND (k.event_time < v_oldest) IS NOT TRUE
                       AND (k.event_time < v_dropped_before) IS NOT TRUE, false) AS ok,
                       k.event_time > v_latest AS is_clamped,
                       analytics_internal.fn_event_key(k.event_id, k.id_is_uuid) AS event_key,
                       CASE WHEN k.id_is_uuid THEN k.event_id::uuid END AS client_uuid
                FROM (SELECT t.*,
                             CASE WHEN t.client_time IS NULL THEN v_now
                                  WHEN p_sent_at IS NULL THEN t.client_time
                                  WHEN p_sent_at - t.client_time > v_now - '1970-01-01 00:00:00+00'
                                      THEN '1970-01-01 00:00:00+00'::timestamptz
                                  ELSE v_now - (p_sent_at - t.client_time) END AS event_time,
                             -- Sufficient for fn_event_problem() IS NULL, each test cheaper than its own:
                             coalesce(jsonb_typeof(t.e) = 'object'
                             AND (t.e - ARRAY['type', 'event_id', 'timestamp', 'user_id', 'anonymous_id', 'session_id',
                                              'path', 'label', 'duration', 'device', 'metadata']) = '{}'::jsonb
                             -- type: a string whose first and last characters are printable ASCII, not blank
                             AND jsonb_typeof(t.e -> 'type') = 'string'
                             AND octet_length(t.type) <= 128
                             AND ascii(t.type) BETWEEN 33 AND 126 AND ascii(right(t.type, 1)) BETWEEN 33 AND 126
                             -- identifiers: a text that is no object, array or boolean comes from a string or
                             -- a number; at most N bytes is at most N characters
                             AND (t.event_id IS NULL OR (octet_length(t.event_id) BETWEEN 1 AND 128
                                  AND ascii(t.event_id) NOT IN (91, 123) AND t.event_id NOT IN ('true', 'false')))
                             AND (t.user_id IS NULL OR (octet_length(t.user_id) BETWEEN 1 AND 256
                                  AND ascii(t.user_id) NOT IN (91, 123) AND t.user_id NOT IN ('true', 'false')))
                             AND (t.anonymous_id IS NULL OR (octet_length(t.anonymous_id) BETWEEN 1 AND 256
                                  AND ascii(t.anonymous_id) NOT IN (91, 123) AND t.anonymous_id NOT IN ('true', 'false')))
                             AND (t.session_id IS NULL OR (octet_length(t.session_id) BETWEEN 1 AND 256
                                  AND ascii(t.session_id) NOT IN (91, 123) AND t.session_id NOT IN ('true', 'false')))
                             AND (t.path IS NULL OR (octet_length(t.path) BETWEEN 1 AND 2048
                                  AND ascii(t.path) NOT IN (91, 123) AND t.path NOT IN ('true', 'false')))
                             AND (t.label IS NULL OR (octet_length(t.label) BETWEEN 1 AND 1024
                                  AND ascii(t.label) NOT IN (91, 123) AND t.label NOT IN ('true', 'false')))
                             -- duration: a JSON number written with digits only, below 10^15 < 2^53
                             AND (t.duration IS NULL OR (jsonb_typeof(t.e -> 'duration') = 'number'
                                  AND octet_length(t.duration) <= 15 AND ascii(t.duration) <> 45
                                  AND strpos(t.duration, '.') = 0))
                             AND (t.ts IS NULL OR t.client_time IS NOT NULL)
                             AND (t.metadata IS NULL OR jsonb_typeof(t.metadata) IN ('null', 'object'))
                             -- device: absent or null, or an object of documented fields whose values are all
                             -- non-empty strings or non-negative numbers (see the text test below) and whose
                             -- screen sizes are valid; otherwise the full check
                             AND (t.device IS NULL OR jsonb_typeof(t.device) = 'null' OR t.device_plain
                                  OR analytics_internal.fn_is_valid_device(t.device))
                             -- One regular expression over the identifiers and the device's JSON text: no
                             -- control or other refused character, and in the device text no backslash (so
                             -- no escaped character, quote or control inside a value), no value that is not
                             -- a string or a number (": " followed by neither a quote nor a digit: no null,
                             -- boolean, object, array or negative number) and no empty string.
                             AND concat(t.type, t.event_id, t.user_id, t.anonymous_id, t.session_id, t.path, t.label,
                                        t.device_text)
                                 !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff\\]|": [^"0-9]|""',
                             false) AS cheap_ok
                      FROM (SELECT f.*,
                                   pg_column_size(f.e) <= v_max_event_bytes AS size_ok,
                                   -- the usual layout, 2026-01-31T12:00:00.000Z: canonical when it prints back
                                   -- the same; fn_parse_event_time() for any other
                                   CASE WHEN f.ts COLLATE "C" >= '1970'
                                             AND to_char(f.ts_cast AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') = f.ts
                                        THEN f.ts_cast
                                        ELSE analytics_internal.fn_parse_event_time(f.ts, f.ts_type) END AS client_time,
                                   -- 8-4-4-4-12: with hex digits in the gaps (and only then) the uuid cast
                                   -- below succeeds; a non-hex id of that layout ends the fast path
                                   coalesce(f.event_id LIKE '________-____-____-____-____________', false) AS id_is_uuid,
                                   -- documented device fields only, valid screen sizes, no value longer than 128
                                   -- (a device text of at most 138 bytes holds none); the values' types and
                                   -- characters are left to the regular expression above
                                   f.device_text IS NOT NULL
                                   AND (f.device - ARRAY['os', 'os_version', 'model', 'manufacturer', 'app_version',
                                                     'app_build', 'locale', 'timezone', 'carrier', 'network',
                                                     'sdk_name', 'sdk_version', 'screen_width', 'screen_height'])
                                       = '{}'::jsonb
                                   AND analytics_internal.fn_is_screen_size(f.device -> 'screen_width')
                                   AND analytics_internal.fn_is_screen_size(f.device -> 'screen_height')
                                   AND (octet_length(f.device_text) <= 138
                                        OR greatest(octet_length(f.device ->> 'os'), octet_length(f.device ->> 'os_version'),
                                                    octet_length(f.device ->> 'model'), octet_length(f.device ->> 'manufacturer'),
                                                    octet_length(f.device ->> 'app_version'), octet_length(f.device ->> 'app_build'),
                                                    octet_length(f.device ->> 'locale'), octet_length(f.device ->> 'timezone'),
                                                    octet_length(f.device ->> 'carrier'), octet_length(f.device ->> 'network'),
                                                    octet_length(f.device ->> 'sdk_name'), octet_length(f.device ->> 'sdk_version'))
                                           <= 128) AS device_plain
                            FROM (SELECT r.*,
                                         -- a canonical-looking timestamp that is no date fails this cast,
                                         -- which ends the fast path (data_exception)
                                         CASE WHEN r.ts LIKE '____-__-__T__:__:__.___Z' AND r.ts_type = 'string'
                                              THEN r.ts::timestamptz END AS ts_cast,
                                         CASE WHEN jsonb_typeof(r.device) = 'object' THEN r.device::text END AS device_text
                                  FROM (SELECT a.e,
                                               a.e ->> 'type' AS type,
                                               a.e ->> 'event_id' AS event_id,
                                               a.e ->> 'timestamp' AS ts,
                                               jsonb_typeof(a.e -> 'timestamp') AS ts_type,
                                               a.e ->> 'user_id' AS user_id,
                                               a.e ->> 'anonymous_id' AS anonymous_id,
                                               a.e ->> 'session_id' AS session_id,
                                               a.e ->> 'path' AS path,
                                               a.e ->> 'label' AS label,
                                               a.e ->> 'duration' AS duration,
                                               a.e -> 'device' AS device,
                                               a.e -> 'metadata' AS metadata
                                        FROM jsonb_array_elements(v_events) AS a(e)
                                        OFFSET 0) r
                                  OFFSET 0) f
                            OFFSET 0) t
                      OFFSET 0) k
            ), verdict AS (
                SELECT coalesce(bool_and(s.ok), true) AS all_valid,
                       count(*) FILTER (WHERE s.is_clamped)::integer AS clamped
                FROM src s
            ), claimed AS (
                INSERT INTO analytics_internal.tb_event_key (fk_app, event_key, "timestamp")
                SELECT v_pk_app, s.event_key, CASE WHEN s.is_clamped THEN v_now ELSE s.event_time END
                FROM src s
                WHERE s.event_key IS NOT NULL AND (SELECT v.all_valid FROM verdict v)
                ORDER BY s.event_key
                RETURNING 1
            ), stored AS (
                INSERT INTO analytics.tb_event (id, client_event_id, fk_app, event_type, "timestamp", received_at,
                                                timestamp_clamped, user_id, anonymous_id, session_id, path, label,
                                                duration_ms, device, metadata)
                SELECT coalesce(s.client_uuid, s.event_key, gen_random_uuid()),
                       s.event_id,
                       v_pk_app,
                       s.type,
                       CASE WHEN s.is_clamped THEN v_now ELSE s.event_time END,
                       v_now,
                       s.is_clamped,
                       coalesce(s.user_id, v_ctx ->> 'user_id'),
                       coalesce(s.anonymous_id, v_ctx ->> 'anonymous_id'),
                       coalesce(s.session_id, v_ctx ->> 'session_id'),
                       s.path,
                       s.label,
                       s.duration::numeric::bigint,
                       -- cheap_ok: the device's values are all strings or numbers, no null to strip
                       CASE WHEN jsonb_typeof(s.device) IS DISTINCT FROM 'object' THEN v_ctx_device
                            WHEN v_ctx_device = '{}'::jsonb THEN
                                 CASE WHEN s.cheap_ok THEN s.device ELSE jsonb_strip_nulls(s.device) END
                            ELSE v_ctx_device || jsonb_strip_nulls(s.device) END,
                       CASE WHEN jsonb_typeof(s.metadata) = 'object' THEN s.metadata ELSE '{}'::jsonb END
                FROM src s
                WHERE (SELECT v.all_valid FROM verdict v) AND (SELECT count(*) FROM claimed) >= 0
            )
            SELECT v.all_valid, v.clamped INTO v_all_valid, clamped FROM verdict v;
            IF v_all_valid THEN
                accepted := v_count;
                duplicates := 0;
                rejected := '[]'::jsonb;
                RETURN;
            END IF;
        EXCEPTION WHEN unique_violation OR data_exception THEN
            NULL;
        END;
    END IF;

    -- General path. Events holding U+0000 or an unpaired surrogate are replaced by null and
    -- reported as unstorable_text; the others are cast one by one.
    IF v_events IS NULL THEN
        SELECT jsonb_agg(CASE WHEN u.bad THEN 'null'::jsonb ELSE u.j::jsonb END ORDER BY u.ord),
               coalesce(array_agg((u.ord - 1)::integer) FILTER (WHERE u.bad), '{}')
          INTO v_events, v_unstorable
        FROM (SELECT a.j, a.ord, analytics_internal.fn_json_has_unstorable_text(a.j::text) AS bad
              FROM json_array_elements(p_events) WITH ORDINALITY AS a(j, ord)) u;
    END IF;

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
        -- event_key: see fn_event_key (two different ids never share a key); the stored event
        -- id is the client's own uuid when it sent one. Valid rows are those with no problem.
        SELECT k.*,
               analytics_internal.fn_event_key(k.client_event_id, k.id_is_uuid) AS event_key,
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
