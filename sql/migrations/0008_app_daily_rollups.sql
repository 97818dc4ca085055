-- 0008 app-day rollups: the storage and support type of analytics.ca_app_daily (unique users
-- per app and UTC day) and analytics.ca_app_session_daily (sessions and their seconds per app
-- and UTC day), which let fn_metrics answer DAU and daily sessions from one row per day instead
-- of one row per user-day or session-day (30 days of a 10M-event app: 680k session rows).
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The rollups themselves are defined in sql/continuous_aggregates/ (60_, 70_), the aggregate
-- analytics_internal.agg_session_seconds in sql/continuous_aggregates/05_.

-- State of analytics_internal.agg_session_seconds: the session being read (its rows arrive
-- ordered by session id), its first and last event so far, and the seconds of the sessions
-- already closed.
CREATE TYPE analytics_internal.session_span_state AS (
    session_id      text,
    started_at      timestamptz,
    ended_at        timestamptz,
    closed_seconds  numeric
);
COMMENT ON TYPE analytics_internal.session_span_state IS
    'Running state of analytics_internal.agg_session_seconds.';

-- Materialized rollups (PostgreSQL engine; empty on TimescaleDB, as in 0002) -----------------------
CREATE TABLE analytics_internal.tb_ca_app_daily (
    bucket  timestamptz NOT NULL,
    fk_app  integer NOT NULL,
    users   bigint NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_ca_app_daily IS
    'PostgreSQL engine: materialized buckets of analytics.ca_app_daily.';

CREATE TABLE analytics_internal.tb_ca_app_session_daily (
    bucket           timestamptz NOT NULL,
    fk_app           integer NOT NULL,
    sessions         bigint NOT NULL,
    session_seconds  numeric NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_ca_app_session_daily IS
    'PostgreSQL engine: materialized buckets of analytics.ca_app_session_daily.';

-- Coverage ---------------------------------------------------------------------------------------
-- The new rollups are computed from the raw events (ca_app_daily) or from ca_session_hourly
-- (ca_app_session_daily). On an install that already dropped raw events, days before the oldest
-- whole retained day cannot be computed from raw events any more: fn_metrics keeps reading
-- ca_user_daily and ca_session_daily for them. A new install covers every day.
INSERT INTO analytics_internal.tb_setting (name, value)
SELECT 'app_daily_rollups_from',
       CASE WHEN NOT EXISTS (SELECT 1 FROM analytics.tb_app) THEN '-infinity'
            ELSE to_char(greatest(
                     (SELECT max(d.range_end) FROM analytics_internal.tb_event_drop d),
                     -- the day after the oldest retained event: its own day may be partly dropped
                     (SELECT date_trunc('day', min(o."timestamp"), 'UTC') + interval '1 day'
                      FROM analytics.tb_app a
                      CROSS JOIN LATERAL (SELECT e."timestamp" FROM analytics.tb_event e
                                          WHERE e.fk_app = a.pk_app
                                          ORDER BY e."timestamp" LIMIT 1) o),
                     -- an app with rollup history and no raw events left
                     CASE WHEN NOT EXISTS (SELECT 1 FROM analytics.tb_event) THEN now() END)
                     AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END;
