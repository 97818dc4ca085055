-- 0009 local-day summary: the daily metrics of apps outside UTC, by local date.
--
-- The rollups bucket by UTC hour and day. For an app in another time zone, fn_metrics
-- re-buckets hourly rollups into local days, and counts the unique users of a local day
-- DISTINCT over two UTC days of per-user rows: at 10M events, 30 local days of every metric
-- took 430 ms instead of 26 ms for a UTC app. These tables hold the finished local days of
-- such apps, one row per local day (and per event type, os and app_version for event counts),
-- so that a month of daily metrics reads about 30 rows per metric. A continuous aggregate
-- cannot bucket each app by its own zone, so the same plain tables serve both engines;
-- analytics.fn_refresh_local_days (called by maintenance) keeps them current, and fn_metrics
-- reads the days after their watermark live from the rollups.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.

CREATE TABLE analytics_internal.tb_local_day_state (
    fk_app        integer PRIMARY KEY REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    timezone      text NOT NULL,
    watermark     timestamptz NOT NULL,
    refreshed_at  timestamptz NOT NULL DEFAULT now(),
    rebuilt_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE analytics_internal.tb_local_day_state IS
    'Per app outside UTC: how far its local-day summary (tb_local_day_event, tb_local_day_activity) reaches. '
    'A summary built in another zone than the app''s is ignored until the next refresh rebuilds it.';
COMMENT ON COLUMN analytics_internal.tb_local_day_state.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_local_day_state.timezone IS 'The app''s time zone when the summary was built.';
COMMENT ON COLUMN analytics_internal.tb_local_day_state.watermark IS
    'A local midnight: the summary holds the local days before it (as of refreshed_at); later ones are read live.';
COMMENT ON COLUMN analytics_internal.tb_local_day_state.refreshed_at IS 'Last refresh.';
COMMENT ON COLUMN analytics_internal.tb_local_day_state.rebuilt_at IS 'Last rebuild from scratch (first refresh, time zone change).';

CREATE TABLE analytics_internal.tb_local_day_source (
    fk_app           integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    bucket           timestamptz NOT NULL,
    event_count      bigint NOT NULL,
    users            bigint NOT NULL,
    sessions         bigint NOT NULL,
    session_seconds  numeric NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_local_day_source IS
    'Per app outside UTC and UTC day before the local-day watermark: the day''s totals in the UTC rollups '
    '(ca_event_daily, ca_app_daily, ca_app_session_daily) when the local days it touches were summarized. '
    'A refresh re-summarizes the local days of UTC days whose totals changed since (late or deleted events).';
COMMENT ON COLUMN analytics_internal.tb_local_day_source.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_local_day_source.bucket IS 'Start of the UTC day.';
COMMENT ON COLUMN analytics_internal.tb_local_day_source.event_count IS 'sum(event_count) of ca_event_daily.';
COMMENT ON COLUMN analytics_internal.tb_local_day_source.users IS 'users of ca_app_daily (0 when it has no row).';
COMMENT ON COLUMN analytics_internal.tb_local_day_source.sessions IS 'sessions of ca_app_session_daily (0 when it has no row).';
COMMENT ON COLUMN analytics_internal.tb_local_day_source.session_seconds IS 'session_seconds of ca_app_session_daily (0 when it has no row).';

CREATE TABLE analytics_internal.tb_local_day_event (
    fk_app       integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    bucket       timestamptz NOT NULL,
    event_type   text NOT NULL,
    os           text NOT NULL,
    app_version  text NOT NULL,
    event_count  bigint NOT NULL,
    crash_count  bigint NOT NULL,
    PRIMARY KEY (fk_app, bucket, event_type, os, app_version)
);
COMMENT ON TABLE analytics_internal.tb_local_day_event IS
    'Per app outside UTC, local day, event type, os and app_version: the events of analytics.ca_event_hourly in '
    'the hours that start on that local date. Local days before the watermark of tb_local_day_state.';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.bucket IS 'Local midnight of the day, in the zone of tb_local_day_state.';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.event_type IS 'As in ca_event_hourly.';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.os IS 'As in ca_event_hourly (''unknown'' when not sent).';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.app_version IS 'As in ca_event_hourly (''unknown'' when not sent).';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.event_count IS 'Events.';
COMMENT ON COLUMN analytics_internal.tb_local_day_event.crash_count IS 'Events of type crash or app_crash.';

CREATE TABLE analytics_internal.tb_local_day_activity (
    fk_app           integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    bucket           timestamptz NOT NULL,
    users            bigint NOT NULL,
    sessions         bigint NOT NULL,
    session_seconds  numeric NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_local_day_activity IS
    'Per app outside UTC and local day with events: unique users and sessions as fn_metrics defines them at day '
    'granularity. Local days before the watermark of tb_local_day_state.';
COMMENT ON COLUMN analytics_internal.tb_local_day_activity.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_local_day_activity.bucket IS 'Local midnight of the day, in the zone of tb_local_day_state.';
COMMENT ON COLUMN analytics_internal.tb_local_day_activity.users IS
    'Distinct coalesce(user_id, anonymous_id) with events that local day (0: only events without one).';
COMMENT ON COLUMN analytics_internal.tb_local_day_activity.sessions IS 'Distinct session ids with events that local day.';
COMMENT ON COLUMN analytics_internal.tb_local_day_activity.session_seconds IS
    'Sum over those sessions of the seconds between their first and last event that local day.';
