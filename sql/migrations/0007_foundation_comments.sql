-- 0007 foundation follow-up: what was first written into 0001 after 0001 had been released.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration. Every statement
-- is idempotent, so a database whose 0001 already held these changes (installed from the edited
-- 0001, whose checksum pywrap.sqlfiles.SUPERSEDED_CHECKSUMS still accepts) ends up the same.
-- The UTF8 requirement is checked before every migrate, in sql/ledger.sql.

-- TimescaleDB Apache-only build: 0001 created the extension to read its license, and an
-- Apache-only build (no continuous aggregates, no policies) left it installed while the package
-- chose plain PostgreSQL. Drop it when nothing uses it; keep it (with a warning) otherwise.
DO $apache_only$
BEGIN
    -- (the setting, not analytics.fn_engine(): functions are applied after the migrations)
    IF (SELECT value FROM analytics_internal.tb_setting WHERE name = 'engine') = 'postgresql'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timescaledb')
       AND current_setting('timescaledb.license', true) IS DISTINCT FROM 'timescale' THEN
        BEGIN
            DROP EXTENSION timescaledb;
            RAISE WARNING 'dropped the unused TimescaleDB Apache-only extension: this database uses plain PostgreSQL';
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE WARNING 'the TimescaleDB Apache-only extension is in use by other objects; left in place';
        END;
    END IF;
END
$apache_only$;

-- Column comments for psql's \d+ (and corrections of three table/column comments).
COMMENT ON COLUMN analytics_internal.tb_setting.name IS 'Setting name, e.g. engine, chunk_interval, max_batch_events.';
COMMENT ON COLUMN analytics_internal.tb_setting.value IS 'Setting value as text (cast by its reader).';
COMMENT ON COLUMN analytics_internal.tb_setting.updated_at IS 'When the row was written (set it when you UPDATE a value).';
COMMENT ON COLUMN analytics.tb_app.pk_app IS 'Internal key, referenced as fk_app.';
COMMENT ON COLUMN analytics.tb_app.id IS 'Public app uuid (accepted wherever an app is named).';
COMMENT ON COLUMN analytics.tb_app.name IS 'Display name.';
COMMENT ON COLUMN analytics.tb_app.owner_id IS 'Owner (user or team) uuid, as in the seed.';
COMMENT ON COLUMN analytics.tb_app.created_at IS 'When the app was created.';
COMMENT ON COLUMN analytics.tb_app.retention_days IS 'Raw events older than this are rejected at ingestion; their exactly-once keys are purged by maintenance.';
COMMENT ON COLUMN analytics.tb_api_key.pk_api_key IS 'Internal key.';
COMMENT ON COLUMN analytics.tb_api_key.id IS 'Public key id (for revocation); not the secret.';
COMMENT ON COLUMN analytics.tb_api_key.fk_app IS 'The app the key belongs to.';
COMMENT ON COLUMN analytics.tb_api_key.kind IS 'write (ingest only) or read (query and subscribe only).';
COMMENT ON COLUMN analytics.tb_api_key.key_hash IS 'SHA-256 of the key; the key itself is never stored.';
COMMENT ON COLUMN analytics.tb_api_key.label IS 'Free text to tell keys apart.';
COMMENT ON COLUMN analytics.tb_api_key.created_at IS 'When the key was issued.';
COMMENT ON COLUMN analytics.tb_api_key.revoked_at IS 'From this time on the key is refused (NULL: live).';
COMMENT ON COLUMN analytics.tb_event.client_event_id IS 'The event id as the client sent it, as text (NULL when none).';
COMMENT ON COLUMN analytics.tb_event.pk_event IS 'Server sequence number (bigint identity; not unique across a chunk rebuild).';
COMMENT ON COLUMN analytics.tb_event.fk_app IS 'The app (analytics.tb_app.pk_app).';
COMMENT ON COLUMN analytics.tb_event.event_type IS 'The event''s "type", e.g. page_view, screen_view, purchase, crash.';
COMMENT ON COLUMN analytics.tb_event.user_id IS 'Known user id (from the event or the request context).';
COMMENT ON COLUMN analytics.tb_event.anonymous_id IS 'Anonymous/device id for users not signed in.';
COMMENT ON COLUMN analytics.tb_event.session_id IS 'Session the event belongs to.';
COMMENT ON COLUMN analytics.tb_event.path IS 'Screen or page path (e.g. /home).';
COMMENT ON COLUMN analytics.tb_event.label IS 'UI label (e.g. a button''s text).';
COMMENT ON COLUMN analytics.tb_event.timestamp_clamped IS 'True when the event claimed a time further in the future than the max_future_skew setting (23 h) and was set to received_at.';
COMMENT ON COLUMN analytics_internal.tb_event_key.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_event_key.event_key IS 'md5 of the event id in canonical form, as a uuid.';
COMMENT ON COLUMN analytics_internal.tb_event_key."timestamp" IS 'Event time of the stored copy: the key lives as long as the event.';
COMMENT ON COLUMN analytics.tb_cohort.pk_cohort IS 'Internal key.';
COMMENT ON COLUMN analytics.tb_cohort.id IS 'Public cohort uuid.';
COMMENT ON COLUMN analytics.tb_cohort.identifier IS 'Cohort identifier, unique within its app.';
COMMENT ON COLUMN analytics.tb_cohort.fk_app IS 'The app.';
COMMENT ON COLUMN analytics.tb_cohort.name IS 'Display name.';
COMMENT ON COLUMN analytics.tb_cohort.filter IS 'The cohort''s JSON filter (see docs/analytics.md).';
COMMENT ON COLUMN analytics.tb_cohort.user_count IS 'Members at the last refresh.';
COMMENT ON COLUMN analytics.tb_cohort.created_at IS 'When the cohort was created.';
COMMENT ON COLUMN analytics.tb_cohort.refreshed_at IS 'When members and user_count were last computed.';
COMMENT ON TABLE analytics_internal.tb_event_key IS
    'Event ids already stored per app (exactly-once ingestion); maintenance purges keys past the app''s retention.';
