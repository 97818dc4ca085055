-- 0012 event-key purge index: the exactly-once keys of one app by time, so that maintenance
-- purges expired keys without reading the whole ledger.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
--
-- analytics_internal.tb_event_key holds one row per stored event id for as long as raw events
-- are retained: as many rows as the retained events that carry an id. prc_run_maintenance
-- (every 5 minutes from the server's scheduler) deletes the keys older than each app's retention;
-- its only index was (fk_app, event_key), so every run read the whole table to find the few
-- minutes of keys that had just expired (bench/ledger_purge.py measures both).
--
-- Building the index blocks inserts into tb_event_key, so ingestion waits, while it builds
-- (docs/install.md, "Upgrading"). On a large ledger a DBA can build it beforehand without
-- blocking, outside a transaction:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS tb_event_key_app_time_idx
--       ON analytics_internal.tb_event_key (fk_app, "timestamp");
-- and this migration then keeps it. An index of that name left invalid by a failed concurrent
-- build is dropped and built again here.
DO $invalid$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_index i
               WHERE i.indexrelid = to_regclass('analytics_internal.tb_event_key_app_time_idx')
                 AND NOT i.indisvalid) THEN
        DROP INDEX analytics_internal.tb_event_key_app_time_idx;
    END IF;
END
$invalid$;

CREATE INDEX IF NOT EXISTS tb_event_key_app_time_idx
    ON analytics_internal.tb_event_key (fk_app, "timestamp");
COMMENT ON INDEX analytics_internal.tb_event_key_app_time_idx IS
    'Exactly-once keys of one app by event time: the purge of expired keys (analytics.prc_run_maintenance).';
