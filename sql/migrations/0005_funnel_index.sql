-- 0005 funnel index: the events of a few types of one app in a time range, without reading
-- the table.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
--
-- analytics.fn_funnel reads only the events of its step types between the start of its date
-- range and the end plus the conversion window. tb_event_app_time_idx (fk_app, "timestamp")
-- would make it read every event of the app in that range, all types, from the table: measured
-- at 0.8-1.0 s for 30 days of a 6M-event app before any funnel logic. With the type before the
-- time and the user columns included, it is an index-only scan of just those events (0.1 s for
-- 370k step events). The cost is a third index written by every insert (see docs/analytics.md,
-- "Funnels", for the ingestion figures).
--
-- CREATE INDEX (not CONCURRENTLY, which neither a partitioned table nor a migration's
-- transaction allows) blocks inserts into analytics.tb_event while it builds: about a minute
-- per 10M events on a 2-core machine.
CREATE INDEX tb_event_app_type_time_idx ON analytics.tb_event (fk_app, event_type, "timestamp")
    INCLUDE (user_id, anonymous_id);
COMMENT ON INDEX analytics.tb_event_app_type_time_idx IS
    'Events of one app by type and time, with the user columns for index-only reads (analytics.fn_funnel).';
