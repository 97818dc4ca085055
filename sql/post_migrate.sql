-- Run after every migrate, once functions and rollups are in place. Idempotent.

-- Routines run with their owner's rights where they say SECURITY DEFINER: nobody may call
-- them unless a DBA grants it (GRANT EXECUTE ... TO your_api_role; see docs/install.md).
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA analytics, analytics_internal FROM PUBLIC;
-- Except the aggregate that the rollup view analytics.ca_app_session_daily calls: a view's
-- reader needs EXECUTE on the functions it calls (its support functions run with the
-- aggregate owner's rights). It computes from its arguments only and reads no table.
GRANT EXECUTE ON FUNCTION analytics_internal.agg_session_seconds(text, timestamptz, timestamptz) TO PUBLIC;

-- PostgreSQL engine: partitions around today exist before the first event arrives.
SELECT analytics.fn_create_partitions();
