-- 0004 lifecycle: raw-event retention settings, the archive ledger and the ledger of dropped
-- chunks.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The functions that use these (analytics.fn_retention_status, fn_apply_retention,
-- fn_set_retention_mode, fn_archive_plan, fn_archive_record, ...) are in sql/functions/;
-- docs/lifecycle.md explains the design.

INSERT INTO analytics_internal.tb_setting (name, value) VALUES
    -- archive: an expired chunk is dropped only once every app-day in it is archived and verified
    --          (mobile-analytics archive); nothing is lost if the archive never runs.
    -- drop:    expired chunks are dropped without an archive (TimescaleDB: a retention policy).
    -- keep:    nothing is dropped.
    -- Change it with analytics.fn_set_retention_mode, which also adjusts TimescaleDB's policies.
    ('retention_mode', 'archive'),
    -- How long past its retention a chunk is kept: whole UTC days, the time the refresh policies
    -- need to materialize the last late events, and a margin (at least 3 days is enforced).
    ('retention_grace', '4 days');

-- Archive ledger ---------------------------------------------------------------------------------

CREATE TABLE analytics_internal.tb_archive_object (
    pk_archive_object  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key: the record of an archive outlives whatever happens to the app.
    fk_app             integer NOT NULL,
    app_id             uuid NOT NULL,
    day                date NOT NULL,
    range_start        timestamptz NOT NULL,
    range_end          timestamptz NOT NULL,
    state              text NOT NULL
                       CONSTRAINT tb_archive_object_state CHECK (state IN ('pending', 'verified')),
    target             text NOT NULL
                       CONSTRAINT tb_archive_object_target_length CHECK (char_length(target) BETWEEN 1 AND 2000),
    object_key         text NOT NULL
                       CONSTRAINT tb_archive_object_key_length CHECK (char_length(object_key) BETWEEN 1 AND 1024),
    row_count          bigint
                       CONSTRAINT tb_archive_object_row_count_range CHECK (row_count >= 0),
    id_checksum        numeric,
    byte_size          bigint
                       CONSTRAINT tb_archive_object_byte_size_range CHECK (byte_size >= 0),
    sha256             text
                       CONSTRAINT tb_archive_object_sha256_format CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    started_at         timestamptz NOT NULL DEFAULT now(),
    verified_at        timestamptz,
    CONSTRAINT tb_archive_object_range CHECK (range_end > range_start),
    CONSTRAINT tb_archive_object_verified CHECK (
        state <> 'verified'
        OR (row_count IS NOT NULL AND id_checksum IS NOT NULL AND byte_size IS NOT NULL
            AND sha256 IS NOT NULL AND verified_at IS NOT NULL)),
    UNIQUE (range_start, fk_app, day)
);
COMMENT ON TABLE analytics_internal.tb_archive_object IS
    'Archive ledger: one row per app, UTC day and raw-event chunk exported as a Parquet object by '
    '`mobile-analytics archive`. pending: an upload was started; verified: the object was read back '
    '(size, sha256, row count) and holds exactly the rows counted. In retention_mode archive a chunk is '
    'dropped only when every app-day in it has a verified row whose row_count and id_checksum still match.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.pk_archive_object IS 'Internal key.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.fk_app IS 'The app (analytics.tb_app.pk_app).';
COMMENT ON COLUMN analytics_internal.tb_archive_object.app_id IS 'The app''s public uuid, as in the object key.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.day IS 'UTC day of the events in the object.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.range_start IS 'Start of the raw-event chunk (partition) the events came from.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.range_end IS 'End (exclusive) of that chunk.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.state IS 'pending (upload started, not verified) or verified.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.target IS 'Where the object went: s3://bucket or file:///directory.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.object_key IS
    'Object key (or path below the directory): <prefix>/app=<app uuid>/date=<YYYY-MM-DD>/part-<chunk start>.parquet.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.row_count IS 'Events in the object.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.id_checksum IS
    'Sum of hashtextextended(id::text, 0) over the events: compared with the chunk before it is dropped, '
    'so that rows added or deleted after the export keep the chunk until it is archived again.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.byte_size IS 'Size of the object in bytes.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.sha256 IS 'SHA-256 of the object''s bytes, hex.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.started_at IS 'When the current upload began.';
COMMENT ON COLUMN analytics_internal.tb_archive_object.verified_at IS 'When the object was verified.';

-- Dropped chunks ---------------------------------------------------------------------------------

CREATE TABLE analytics_internal.tb_event_drop (
    pk_event_drop  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    range_start    timestamptz NOT NULL,
    range_end      timestamptz NOT NULL,
    mode           text NOT NULL
                   CONSTRAINT tb_event_drop_mode CHECK (mode IN ('archive', 'drop', 'policy')),
    apps           integer[],
    row_count      bigint,
    dropped_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tb_event_drop_range CHECK (range_end > range_start)
);
CREATE INDEX tb_event_drop_range_end_idx ON analytics_internal.tb_event_drop (range_end);
COMMENT ON TABLE analytics_internal.tb_event_drop IS
    'Raw-event chunks (partitions) dropped by retention. The newest range_end is the horizon before which '
    'ingestion refuses events (they would land where the rollups hold history that no raw event backs any '
    'more) and, on TimescaleDB, before which no continuous aggregate is refreshed. mode policy: a horizon '
    'recorded when the TimescaleDB retention policy changed (the policy drops chunks without telling).';
COMMENT ON COLUMN analytics_internal.tb_event_drop.pk_event_drop IS 'Internal key.';
COMMENT ON COLUMN analytics_internal.tb_event_drop.range_start IS 'Start of the dropped range (-infinity for a policy horizon).';
COMMENT ON COLUMN analytics_internal.tb_event_drop.range_end IS 'End (exclusive) of the dropped range.';
COMMENT ON COLUMN analytics_internal.tb_event_drop.mode IS 'archive (archived, then dropped), drop (dropped unarchived) or policy.';
COMMENT ON COLUMN analytics_internal.tb_event_drop.apps IS 'Apps (pk_app) that had events in the range; NULL for a policy horizon.';
COMMENT ON COLUMN analytics_internal.tb_event_drop.row_count IS 'Events dropped; NULL for a policy horizon.';
COMMENT ON COLUMN analytics_internal.tb_event_drop.dropped_at IS 'When the drop committed (transaction start).';
