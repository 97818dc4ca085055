-- Bootstrap of the migration ledger. Run before every migrate; idempotent.

-- jsonb and the text checks of ingestion assume Unicode: in another encoding an escape such as
-- \u00e9 could fail a whole batch instead of one event. Checked before anything is installed.
DO $utf8$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'database encoding is %, not UTF8', current_setting('server_encoding')
            USING ERRCODE = '22023',
                  HINT = 'Create the database with ENCODING ''UTF8'' (e.g. createdb -E UTF8 -T template0 NAME).';
    END IF;
END
$utf8$;
CREATE SCHEMA IF NOT EXISTS analytics_internal;
CREATE TABLE IF NOT EXISTS analytics_internal.tb_migration (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE analytics_internal.tb_migration IS
    'Ledger of applied sql/migrations files: one row each, written in the migration''s own transaction.';
COMMENT ON COLUMN analytics_internal.tb_migration.version IS 'The file''s four-digit number.';
COMMENT ON COLUMN analytics_internal.tb_migration.name IS 'The file name after the number.';
COMMENT ON COLUMN analytics_internal.tb_migration.checksum IS 'SHA-256 of the file as applied; an edited file is refused.';
COMMENT ON COLUMN analytics_internal.tb_migration.applied_at IS 'When it was applied.';
