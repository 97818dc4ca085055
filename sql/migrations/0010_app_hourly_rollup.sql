-- 0010 app-hour rollup: the storage of analytics.ca_app_hourly (unique users per app and UTC
-- hour), which lets fn_metrics answer hourly unique users from one row per hour instead of
-- expanding every user-day of the range into its active hours (the last two days of a 10M-event
-- app: 26k user-days, 90 ms).
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The rollup itself is defined in sql/continuous_aggregates/65_ca_app_hourly.sql.

-- Materialized rollup (PostgreSQL engine; empty on TimescaleDB, as in 0002) ------------------------
CREATE TABLE analytics_internal.tb_ca_app_hourly (
    bucket  timestamptz NOT NULL,
    fk_app  integer NOT NULL,
    users   bigint NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_ca_app_hourly IS
    'PostgreSQL engine: materialized buckets of analytics.ca_app_hourly.';

-- Coverage ---------------------------------------------------------------------------------------
-- The rollup is computed from the raw events. Hours whose raw events retention already dropped
-- cannot be computed any more: fn_metrics keeps reading ca_user_daily's active hours before
-- app_hourly_rollups_from: the first whole hour after the newest dropped range and after the
-- oldest retained event (whose hour may be partly dropped), now when apps have rollup history
-- but no raw events left, -infinity on a new install.
INSERT INTO analytics_internal.tb_setting (name, value)
SELECT 'app_hourly_rollups_from',
       coalesce(to_char(greatest(c.dropped_until, c.oldest_hour + interval '1 hour', c.emptied_at) AT TIME ZONE 'UTC',
                        'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                '-infinity')
FROM (SELECT (SELECT max(d.range_end) FROM analytics_internal.tb_event_drop d) AS dropped_until,
             (SELECT date_trunc('hour', min(o.oldest), 'UTC')
              FROM analytics.tb_app a
              CROSS JOIN LATERAL (SELECT e."timestamp" AS oldest FROM analytics.tb_event e
                                  WHERE e.fk_app = a.pk_app ORDER BY e."timestamp" LIMIT 1) o) AS oldest_hour,
             CASE WHEN EXISTS (SELECT 1 FROM analytics.tb_app) AND NOT EXISTS (SELECT 1 FROM analytics.tb_event)
                  THEN now() END AS emptied_at) c;
