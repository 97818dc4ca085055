-- Bootstrap of the migration ledger. Run before every migrate; idempotent.
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
