-- 0002 rollups: the rollup registry, the PostgreSQL engine's materialized rollup tables and
-- invalidation log, and the rollup settings.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The rollups themselves (continuous aggregates on TimescaleDB, views on PostgreSQL) are defined
-- in sql/continuous_aggregates/ and re-applied idempotently on every migrate.
--
-- Every table here exists on both engines so that both install the same catalog; on TimescaleDB
-- the tb_ca_* tables and tb_rollup_invalidation stay empty (TimescaleDB keeps its own
-- materializations and invalidation log).

INSERT INTO analytics_internal.tb_setting (name, value) VALUES
    -- TimescaleDB: refreshes stop this far behind now(), so that events arriving up to this late
    -- still show at once through real-time aggregation (older late events show after a refresh).
    ('rollup_refresh_lag', '1 hour');

-- Registry ---------------------------------------------------------------------------------------

CREATE TABLE analytics_internal.tb_rollup (
    rollup         text PRIMARY KEY
                   CONSTRAINT tb_rollup_name_format CHECK (rollup ~ '^ca_[a-z0-9_]{1,50}$'),
    bucket_width   interval NOT NULL
                   CONSTRAINT tb_rollup_bucket_width_range CHECK (bucket_width IN (interval '1 hour', interval '1 day')),
    refresh_order  integer NOT NULL UNIQUE,
    source         text NOT NULL,
    time_column    text NOT NULL,
    dimensions     text[] NOT NULL,
    measures       text[] NOT NULL,
    source_filter  text,
    watermark      timestamptz NOT NULL DEFAULT '-infinity',
    refreshed_at   timestamptz
);
COMMENT ON TABLE analytics_internal.tb_rollup IS
    'One row per rollup (analytics.ca_*): its definition, written by sql/continuous_aggregates/, and on '
    'the PostgreSQL engine its watermark (buckets before it are materialized). Refreshed in refresh_order.';
COMMENT ON COLUMN analytics_internal.tb_rollup.source IS
    'Relation aggregated: analytics.tb_event, or a finer rollup for a hierarchical one.';
COMMENT ON COLUMN analytics_internal.tb_rollup.dimensions IS
    'Select-list items (after bucket) that are also grouped by, e.g. coalesce(device ->> ''os'', ''unknown'') AS os.';
COMMENT ON COLUMN analytics_internal.tb_rollup.measures IS
    'Aggregate select-list items, e.g. count(*) AS event_count.';
COMMENT ON COLUMN analytics_internal.tb_rollup.watermark IS
    'PostgreSQL engine: buckets before this time are read from the materialized table unless invalidated; '
    'later buckets are aggregated live. Unused on TimescaleDB.';

-- Invalidation log (PostgreSQL engine) -----------------------------------------------------------

CREATE TABLE analytics_internal.tb_rollup_invalidation (
    pk_rollup_invalidation  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fk_app                  integer NOT NULL,
    range_start             timestamptz NOT NULL,
    range_end               timestamptz NOT NULL,
    -- One whole UTC hour, the finest rollup grain: it then lies inside one bucket of every rollup.
    CONSTRAINT tb_rollup_invalidation_one_hour
        CHECK (range_end = range_start + interval '1 hour'
               AND date_bin('1 hour', range_start, timestamptz '2000-01-03 00:00:00+00') = range_start)
);
CREATE INDEX tb_rollup_invalidation_app_start_idx ON analytics_internal.tb_rollup_invalidation (fk_app, range_start);
COMMENT ON TABLE analytics_internal.tb_rollup_invalidation IS
    'PostgreSQL engine: UTC hours [range_start, range_end) of an app whose raw events changed since '
    'the last refresh. Written by statement triggers on analytics.tb_event, consumed by fn_refresh_rollups; '
    'rollup views aggregate these buckets live until then.';

-- Materialized rollups (PostgreSQL engine) -------------------------------------------------------
-- Column order is the rollup's: bucket, dimensions, measures.

CREATE TABLE analytics_internal.tb_ca_event_hourly (
    bucket             timestamptz NOT NULL,
    fk_app             integer NOT NULL,
    event_type         text NOT NULL,
    os                 text NOT NULL,
    app_version        text NOT NULL,
    event_count        bigint NOT NULL,
    duration_ms_sum    bigint NOT NULL,
    duration_ms_count  bigint NOT NULL,
    crash_count        bigint NOT NULL,
    PRIMARY KEY (fk_app, bucket, event_type, os, app_version)
);
CREATE INDEX tb_ca_event_hourly_bucket_idx ON analytics_internal.tb_ca_event_hourly USING brin (bucket);
COMMENT ON TABLE analytics_internal.tb_ca_event_hourly IS
    'PostgreSQL engine: materialized buckets of analytics.ca_event_hourly.';

CREATE TABLE analytics_internal.tb_ca_event_daily (LIKE analytics_internal.tb_ca_event_hourly INCLUDING ALL);
COMMENT ON TABLE analytics_internal.tb_ca_event_daily IS
    'PostgreSQL engine: materialized buckets of analytics.ca_event_daily.';

CREATE TABLE analytics_internal.tb_ca_user_daily (
    bucket          timestamptz NOT NULL,
    fk_app          integer NOT NULL,
    user_key        text NOT NULL,
    event_count     bigint NOT NULL,
    first_event_at  timestamptz NOT NULL,
    last_event_at   timestamptz NOT NULL,
    active_hours    integer NOT NULL,
    PRIMARY KEY (fk_app, bucket, user_key)
);
CREATE INDEX tb_ca_user_daily_bucket_idx ON analytics_internal.tb_ca_user_daily USING brin (bucket);
COMMENT ON TABLE analytics_internal.tb_ca_user_daily IS
    'PostgreSQL engine: materialized buckets of analytics.ca_user_daily.';

CREATE TABLE analytics_internal.tb_ca_session_hourly (
    bucket       timestamptz NOT NULL,
    fk_app       integer NOT NULL,
    session_id   text NOT NULL,
    user_key     text,
    event_count  bigint NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL,
    PRIMARY KEY (fk_app, bucket, session_id)
);
CREATE INDEX tb_ca_session_hourly_bucket_idx ON analytics_internal.tb_ca_session_hourly USING brin (bucket);
COMMENT ON TABLE analytics_internal.tb_ca_session_hourly IS
    'PostgreSQL engine: materialized buckets of analytics.ca_session_hourly.';

CREATE TABLE analytics_internal.tb_ca_session_daily (LIKE analytics_internal.tb_ca_session_hourly INCLUDING ALL);
COMMENT ON TABLE analytics_internal.tb_ca_session_daily IS
    'PostgreSQL engine: materialized buckets of analytics.ca_session_daily.';
