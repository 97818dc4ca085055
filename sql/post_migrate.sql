-- Run after every migrate, once functions and rollups are in place. Idempotent.
-- PostgreSQL engine: partitions around today exist before the first event arrives.
SELECT analytics.fn_create_partitions();
