-- 0001 foundation: schemas, settings, engine choice, apps, API keys, events, dedup keys, cohorts.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- Functions are NOT defined here: they live in sql/functions/ and are re-applied on every migrate.
--
-- Install-time knobs (session settings read once, then recorded in analytics_internal.tb_setting):
--   mobile_analytics.engine          'auto' (default) | 'postgresql' | 'timescaledb'
--   mobile_analytics.chunk_interval  interval of one chunk/partition, default '1 day'

CREATE SCHEMA IF NOT EXISTS analytics;
CREATE SCHEMA IF NOT EXISTS analytics_internal;

COMMENT ON SCHEMA analytics IS
    'Mobile analytics public API: tables, views, rollups and the fn_* functions that clients call.';
COMMENT ON SCHEMA analytics_internal IS
    'Mobile analytics internals: helpers, ledgers and settings. Not a stable interface.';

CREATE TABLE analytics_internal.tb_setting (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE analytics_internal.tb_setting IS
    'Install-wide settings decided at install time (engine, chunk interval) or tuned by a DBA.';

-- Engine choice. TimescaleDB is used only when the Timescale License build is loaded:
-- the Apache-only build has no continuous aggregates or policies, so it counts as plain PostgreSQL.
DO $engine$
DECLARE
    v_requested text := coalesce(nullif(current_setting('mobile_analytics.engine', true), ''), 'auto');
    v_interval  text := coalesce(nullif(current_setting('mobile_analytics.chunk_interval', true), ''), '1 day');
    v_license   text;
    v_engine    text := 'postgresql';
BEGIN
    IF v_requested NOT IN ('auto', 'postgresql', 'timescaledb') THEN
        RAISE EXCEPTION 'unknown engine "%"', v_requested
            USING ERRCODE = '22023',
                  HINT = 'Set mobile_analytics.engine to auto, postgresql or timescaledb.';
    END IF;
    IF v_interval::interval < interval '1 hour' OR v_interval::interval > interval '31 days' THEN
        RAISE EXCEPTION 'chunk interval % is out of range', v_interval
            USING ERRCODE = '22023',
                  HINT = 'Use an interval between 1 hour and 31 days, e.g. ''1 day''.';
    END IF;

    IF v_requested <> 'postgresql'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            v_license := current_setting('timescaledb.license', true);
        EXCEPTION WHEN OTHERS THEN
            -- e.g. available but not in shared_preload_libraries: plain PostgreSQL it is.
            RAISE NOTICE 'timescaledb is available but could not be loaded (%): using plain PostgreSQL', SQLERRM;
        END;
        IF v_license = 'timescale' THEN
            v_engine := 'timescaledb';
        END IF;
    END IF;

    IF v_requested = 'timescaledb' AND v_engine <> 'timescaledb' THEN
        RAISE EXCEPTION 'TimescaleDB with the Timescale License is not available on this server'
            USING ERRCODE = '0A000',
                  DETAIL = format('timescaledb.license is %L.', coalesce(v_license, 'unset')),
                  HINT = 'Install the timescale/timescaledb image or set mobile_analytics.engine to auto.';
    END IF;

    INSERT INTO analytics_internal.tb_setting (name, value) VALUES
        ('engine', v_engine),
        ('chunk_interval', v_interval::interval::text),
        ('partitions_ahead', '7'),
        ('max_batch_events', '2000'),
        ('max_batch_bytes', '10485760'),
        ('max_event_bytes', '32768'),
        ('max_future_skew', '23 hours');
END
$engine$;

-- Apps -----------------------------------------------------------------------------------------

CREATE TABLE analytics.tb_app (
    pk_app          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    identifier      text NOT NULL UNIQUE
                    CONSTRAINT tb_app_identifier_format CHECK (identifier ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name            text NOT NULL
                    CONSTRAINT tb_app_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    owner_id        uuid NOT NULL,
    timezone        text NOT NULL DEFAULT 'UTC',
    retention_days  integer NOT NULL DEFAULT 90
                    CONSTRAINT tb_app_retention_days_range CHECK (retention_days BETWEEN 1 AND 3650),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE analytics.tb_app IS 'One row per mobile app that sends events.';
COMMENT ON COLUMN analytics.tb_app.identifier IS 'Human-readable app id used by SDKs and GraphQL (e.g. "app123").';
COMMENT ON COLUMN analytics.tb_app.timezone IS 'IANA zone the app reports in (daily and coarser buckets).';
COMMENT ON COLUMN analytics.tb_app.retention_days IS 'Raw events older than this are rejected at ingestion and dropped by retention.';

CREATE TABLE analytics.tb_api_key (
    pk_api_key    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    fk_app        integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    kind          text NOT NULL CONSTRAINT tb_api_key_kind CHECK (kind IN ('write', 'read')),
    key_hash      bytea NOT NULL UNIQUE,
    key_prefix    text NOT NULL,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX tb_api_key_fk_app_idx ON analytics.tb_api_key (fk_app);
COMMENT ON TABLE analytics.tb_api_key IS
    'API keys, stored only as SHA-256 hashes. write keys ingest; read keys query one app.';
COMMENT ON COLUMN analytics.tb_api_key.key_prefix IS 'First characters of the key, to recognise it in listings.';
COMMENT ON COLUMN analytics.tb_api_key.last_used_at IS 'Updated at most once a minute per key.';

-- Events ---------------------------------------------------------------------------------------

CREATE TABLE analytics.tb_event (
    pk_event           bigint GENERATED ALWAYS AS IDENTITY,
    id                 uuid NOT NULL,
    client_event_id    text,
    fk_app             integer NOT NULL,
    event_type         text NOT NULL,
    "timestamp"        timestamptz NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now(),
    timestamp_clamped  boolean NOT NULL DEFAULT false,
    user_id            text,
    anonymous_id       text,
    session_id         text,
    path               text,
    label              text,
    duration_ms        bigint,
    device             jsonb NOT NULL DEFAULT '{}',
    metadata           jsonb NOT NULL DEFAULT '{}'
) PARTITION BY RANGE ("timestamp");
-- Declared partitioned here; on TimescaleDB it is rebuilt as a hypertable just below.

COMMENT ON COLUMN analytics.tb_event.id IS
    'Event uuid: the client''s event id when it is a uuid, a uuid derived from it otherwise, a server uuid when none was sent.';
COMMENT ON COLUMN analytics.tb_event.client_event_id IS 'The event id exactly as the client sent it (NULL when none).';
COMMENT ON COLUMN analytics.tb_event."timestamp" IS 'Event time, corrected for device clock skew when the batch carried sentAt.';
COMMENT ON COLUMN analytics.tb_event.received_at IS 'When the server received the batch.';
COMMENT ON COLUMN analytics.tb_event.timestamp_clamped IS 'True when the event claimed a time more than 23 h in the future and was set to received_at.';
COMMENT ON COLUMN analytics.tb_event.duration_ms IS 'Duration reported with the event (e.g. screen_time), in milliseconds.';
COMMENT ON COLUMN analytics.tb_event.device IS 'Device context: os, os_version, model, manufacturer, app_version, app_build, locale, ...';
COMMENT ON COLUMN analytics.tb_event.metadata IS 'Free-form event properties sent by the client.';

DO $hypertable$
DECLARE
    v_engine   text := (SELECT value FROM analytics_internal.tb_setting WHERE name = 'engine');
    v_interval interval := (SELECT value::interval FROM analytics_internal.tb_setting WHERE name = 'chunk_interval');
BEGIN
    IF v_engine = 'timescaledb' THEN
        -- A hypertable cannot be made from a partitioned table: recreate it as a plain table first.
        CREATE TABLE analytics.tb_event_plain (LIKE analytics.tb_event INCLUDING ALL);
        DROP TABLE analytics.tb_event;
        ALTER TABLE analytics.tb_event_plain RENAME TO tb_event;
        PERFORM create_hypertable('analytics.tb_event', by_range('timestamp', v_interval),
                                  create_default_indexes => false);
    ELSE
        CREATE TABLE analytics.tb_event_default PARTITION OF analytics.tb_event DEFAULT;
        COMMENT ON TABLE analytics.tb_event_default IS
            'Catch-all partition: events whose day has no partition yet land here; maintenance moves them out.';
    END IF;
END
$hypertable$;

COMMENT ON TABLE analytics.tb_event IS
    'Raw events. TimescaleDB: hypertable on "timestamp". PostgreSQL: range-partitioned by "timestamp" with a default partition.';

CREATE INDEX tb_event_app_time_idx ON analytics.tb_event (fk_app, "timestamp" DESC);
CREATE INDEX tb_event_app_user_time_idx ON analytics.tb_event (fk_app, user_id, "timestamp")
    WHERE user_id IS NOT NULL;

-- Row types that the ingestion path fills from each event's JSON in one pass
-- (jsonb_populate_record), instead of looking every field up again for every check.
CREATE TYPE analytics_internal.tp_event_fields AS (
    type          text,
    event_id      text,
    "timestamp"   text,
    user_id       text,
    anonymous_id  text,
    session_id    text,
    path          text,
    label         text,
    duration      text,
    device        jsonb,
    metadata      jsonb
);
COMMENT ON TYPE analytics_internal.tp_event_fields IS
    'The documented top-level fields of an event, as text (device and metadata as jsonb).';

CREATE TYPE analytics_internal.tp_device_fields AS (
    os             text,
    os_version     text,
    model          text,
    manufacturer   text,
    app_version    text,
    app_build      text,
    locale         text,
    timezone       text,
    carrier        text,
    network        text,
    sdk_name       text,
    sdk_version    text,
    screen_width   text,
    screen_height  text
);
COMMENT ON TYPE analytics_internal.tp_device_fields IS
    'The documented fields of a device context, as text.';

-- Exactly-once ledger: one row per (app, event id) for as long as the raw event is retained.
-- A hypertable's unique index must contain the time column, and a retry's corrected time may
-- differ from the original's, so the key lives in its own table with no time in it.
CREATE TABLE analytics_internal.tb_event_key (
    fk_app       integer NOT NULL,
    event_key    uuid NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    PRIMARY KEY (fk_app, event_key)
);
COMMENT ON TABLE analytics_internal.tb_event_key IS
    'Event ids already stored per app (exactly-once ingestion). Purged together with the raw events.';

-- Cohorts --------------------------------------------------------------------------------------

CREATE TABLE analytics.tb_cohort (
    pk_cohort     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    identifier    text NOT NULL,
    fk_app        integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    name          text NOT NULL CONSTRAINT tb_cohort_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    filter        jsonb NOT NULL DEFAULT '{}',
    user_count    integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    refreshed_at  timestamptz,
    UNIQUE (fk_app, identifier)
);
COMMENT ON TABLE analytics.tb_cohort IS 'Saved user cohorts: a JSON filter and its last computed size.';

-- Seed-compatible JSON view --------------------------------------------------------------------

CREATE VIEW analytics.v_app AS
SELECT a.id,
       a.identifier,
       jsonb_build_object(
           'id', a.id::text,
           'identifier', a.identifier,
           'name', a.name,
           'owner_id', a.owner_id::text,
           'timezone', a.timezone,
           'retention_days', a.retention_days,
           'created_at', a.created_at) AS data
FROM analytics.tb_app a;
COMMENT ON VIEW analytics.v_app IS 'Apps as one JSONB document each (the seed''s data-view shape).';
