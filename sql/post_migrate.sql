-- Run after every migrate, once functions and rollups are in place. Idempotent.

-- Routines run with their owner's rights where they say SECURITY DEFINER: nobody may call
-- them unless a DBA grants it (GRANT EXECUTE ... TO your_api_role; see docs/install.md).
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA analytics, analytics_internal FROM PUBLIC;

-- PostgreSQL engine: partitions around today exist before the first event arrives.
SELECT analytics.fn_create_partitions();
