-- 0011 app-hour session rollup: the storage of analytics.ca_app_session_hourly (sessions per app
-- and UTC hour and the seconds they lasted in it), which lets fn_metrics answer hourly sessions
-- and average session duration from one row per hour instead of one row per session and hour
-- (7 days of a 10M-event app: 130 ms).
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The rollup itself is defined in sql/continuous_aggregates/75_ca_app_session_hourly.sql.

-- Materialized rollup (PostgreSQL engine; empty on TimescaleDB, as in 0002) ------------------------
CREATE TABLE analytics_internal.tb_ca_app_session_hourly (
    bucket           timestamptz NOT NULL,
    fk_app           integer NOT NULL,
    sessions         bigint NOT NULL,
    session_seconds  numeric NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_ca_app_session_hourly IS
    'PostgreSQL engine: materialized buckets of analytics.ca_app_session_hourly.';

-- Coverage ---------------------------------------------------------------------------------------
-- Like ca_app_hourly (0010), the rollup is computed from the raw events, so it cannot cover hours
-- whose raw events are already dropped. fn_metrics reads both per-hour rollups from the setting
-- app_hourly_rollups_from on: move it to where this one starts, when that is later (raw events
-- dropped since 0010 ran). A new install keeps -infinity.
WITH covered AS (
    SELECT greatest((SELECT max(d.range_end) FROM analytics_internal.tb_event_drop d),
                    (SELECT date_trunc('hour', min(o.oldest), 'UTC') + interval '1 hour'
                     FROM analytics.tb_app a
                     CROSS JOIN LATERAL (SELECT e."timestamp" AS oldest FROM analytics.tb_event e
                                         WHERE e.fk_app = a.pk_app ORDER BY e."timestamp" LIMIT 1) o)) AS hour
)
UPDATE analytics_internal.tb_setting s
SET value = to_char(c.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM covered c
WHERE s.name = 'app_hourly_rollups_from' AND c.hour > s.value::timestamptz;
