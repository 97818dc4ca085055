-- 0003 cohorts and retention: cohort members, the cohorts' stored week-1 retention, identifier
-- format; the per-user activity summary that makes retention matrices fast; and an index for
-- per-user lookups in the PostgreSQL engine's materialized user-day rollup.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The filter language and the functions that fill these tables are in sql/functions/
-- (fn_create_cohort, fn_refresh_cohort, analytics_internal.fn_cohort_filter_sql, ...).

ALTER TABLE analytics.tb_cohort
    ADD COLUMN retention_rate numeric,
    ADD CONSTRAINT tb_cohort_identifier_format CHECK (identifier ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    ADD CONSTRAINT tb_cohort_retention_rate_range CHECK (retention_rate BETWEEN 0 AND 1),
    ADD CONSTRAINT tb_cohort_user_count_range CHECK (user_count >= 0);
COMMENT ON COLUMN analytics.tb_cohort.retention_rate IS
    'Week-1 retention of the members at the last refresh: of the members first seen at least 14 local days '
    'earlier, the share active on a local day 7 to 13 after their first day (NULL when none is that old).';

-- Listing an app's cohorts newest first (fn_list_cohorts) and finding stale ones (fn_refresh_cohorts).
CREATE INDEX tb_cohort_app_created_idx ON analytics.tb_cohort (fk_app, created_at DESC);
CREATE INDEX tb_cohort_refreshed_idx ON analytics.tb_cohort (refreshed_at NULLS FIRST);

CREATE TABLE analytics_internal.tb_cohort_member (
    fk_cohort  integer NOT NULL REFERENCES analytics.tb_cohort (pk_cohort) ON DELETE CASCADE,
    user_key   text NOT NULL,
    PRIMARY KEY (fk_cohort, user_key)
);
COMMENT ON TABLE analytics_internal.tb_cohort_member IS
    'Members of each cohort at its last refresh: one row per cohort and user_key (coalesce(user_id, anonymous_id)). '
    'Replaced as a whole by every refresh; deleted with the cohort.';
COMMENT ON COLUMN analytics_internal.tb_cohort_member.fk_cohort IS 'The cohort (analytics.tb_cohort.pk_cohort).';
COMMENT ON COLUMN analytics_internal.tb_cohort_member.user_key IS 'The member: coalesce(user_id, anonymous_id) of their events.';

-- PostgreSQL engine: the user-day rows of given users (a user's deletion, a DBA's look at one
-- user) without reading every user-day of the app. Empty, and unused, on TimescaleDB.
CREATE INDEX tb_ca_user_daily_app_user_idx ON analytics_internal.tb_ca_user_daily (fk_app, user_key, bucket);

-- Per-user activity summary ----------------------------------------------------------------------
-- A retention matrix needs, per user, the first seen day and the set of active days, weeks or
-- months. Computed from analytics.ca_user_daily at query time, that is a group-by over every
-- user-day of the app (1.3 million rows for 10 million events, seconds); stored here, it is one
-- row per user. analytics.fn_refresh_user_activity (called by maintenance) keeps it up to date;
-- analytics.fn_retention reads it for the days before its watermark and ca_user_daily live after
-- it. Same tables and rules on both engines.

CREATE TABLE analytics_internal.tb_user_activity_state (
    fk_app        integer PRIMARY KEY REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    timezone      text NOT NULL,
    watermark     timestamptz NOT NULL,
    refreshed_at  timestamptz NOT NULL DEFAULT now(),
    rebuilt_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE analytics_internal.tb_user_activity_state IS
    'Per app: how far the per-user activity summary (tb_user_activity) reaches. It covers the UTC days of '
    'analytics.ca_user_daily before watermark, in local dates of timezone; a summary in another zone than '
    'the app''s is ignored until rebuilt.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_state.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_state.timezone IS 'The app''s time zone when the summary was built.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_state.watermark IS
    'Start of a UTC day: the summary holds the user-days before it (as of refreshed_at); later ones are read live.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_state.refreshed_at IS 'Last refresh.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_state.rebuilt_at IS 'Last rebuild from scratch (first refresh, time zone change, deleted events).';

CREATE TABLE analytics_internal.tb_user_activity_bucket (
    fk_app       integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    bucket       timestamptz NOT NULL,
    user_days    bigint NOT NULL,
    event_count  bigint NOT NULL,
    PRIMARY KEY (fk_app, bucket)
);
COMMENT ON TABLE analytics_internal.tb_user_activity_bucket IS
    'Per app and UTC day before the summary''s watermark: the rows and events of analytics.ca_user_daily the '
    'summary was built from. A refresh re-summarizes the users of days whose counts changed (late events), and '
    'rebuilds the app''s summary when a day''s event count shrank or the day vanished (deleted events).';
COMMENT ON COLUMN analytics_internal.tb_user_activity_bucket.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_bucket.bucket IS 'Start of the UTC day.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_bucket.user_days IS 'Rows (users) of ca_user_daily for that app and day when summarized.';
COMMENT ON COLUMN analytics_internal.tb_user_activity_bucket.event_count IS 'sum(event_count) of ca_user_daily for that app and day when summarized.';

CREATE TABLE analytics_internal.tb_user_activity (
    fk_app         integer NOT NULL REFERENCES analytics.tb_app (pk_app) ON DELETE CASCADE,
    user_key       text NOT NULL,
    first_seen_at  timestamptz NOT NULL,
    first_day      date NOT NULL,
    first_week     integer NOT NULL,
    first_month    integer NOT NULL,
    days           bit varying NOT NULL,
    weeks          bit varying NOT NULL,
    months         bit varying NOT NULL,
    PRIMARY KEY (fk_app, user_key)
);
COMMENT ON TABLE analytics_internal.tb_user_activity IS
    'Per-user activity summary: one row per app and user_key with events before the watermark of '
    'tb_user_activity_state, in local dates of its time zone. Bit strings, leftmost bit 0.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.fk_app IS 'The app.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.user_key IS 'coalesce(user_id, anonymous_id).';
COMMENT ON COLUMN analytics_internal.tb_user_activity.first_seen_at IS 'The user''s first event (retained, summarized).';
COMMENT ON COLUMN analytics_internal.tb_user_activity.first_day IS 'Local date of first_seen_at.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.first_week IS
    'The week (from Monday) of first_day, numbered from the week of 2000-01-03 (0): bit 0 of weeks.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.first_month IS
    'The month of first_day, numbered from January 2000 (0): bit 0 of months.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.days IS 'Bit i: events on local date first_day + i.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.weeks IS 'Bit i: events in week first_week + i.';
COMMENT ON COLUMN analytics_internal.tb_user_activity.months IS 'Bit i: events in month first_month + i.';
