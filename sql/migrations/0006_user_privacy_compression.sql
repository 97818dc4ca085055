-- 0006 user privacy and compression: the audit log of per-user deletions, an index that finds
-- an anonymous user's events, and on TimescaleDB the compression of raw-event chunks.
--
-- Runs once, inside a transaction, recorded in analytics_internal.tb_migration.
-- The functions that use these (analytics.fn_delete_user, analytics.prc_delete_user,
-- analytics.fn_export_user) are in sql/functions/.

-- Audit log of deletions -----------------------------------------------------------------------
-- Who asked, when and how much went: never whose data it was (no user id, no digest of one), so
-- that the log itself holds no personal data. The deletion id is returned to the caller, who
-- may file it with the request that asked for the deletion.
CREATE TABLE analytics_internal.tb_user_deletion (
    pk_user_deletion            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                          uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    -- No foreign key: the record outlives the app.
    fk_app                      integer NOT NULL,
    deleted_at                  timestamptz NOT NULL DEFAULT now(),
    db_role                     text NOT NULL DEFAULT session_user,
    requested_by                text
                                CONSTRAINT tb_user_deletion_requested_by_length CHECK (char_length(requested_by) <= 200),
    user_key_count              integer NOT NULL CONSTRAINT tb_user_deletion_user_key_count_range CHECK (user_key_count >= 1),
    deleted_events              bigint NOT NULL,
    deleted_user_days           bigint NOT NULL,
    deleted_cohort_memberships  bigint NOT NULL
);
CREATE INDEX tb_user_deletion_app_time_idx ON analytics_internal.tb_user_deletion (fk_app, deleted_at);
COMMENT ON TABLE analytics_internal.tb_user_deletion IS
    'One row per per-user deletion (analytics.fn_delete_user): who asked, when, how many rows went. '
    'Holds no identifier of the deleted user.';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.pk_user_deletion IS 'Internal key.';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.id IS 'Deletion id, returned to the caller.';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.fk_app IS 'The app (analytics.tb_app.pk_app at the time).';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.deleted_at IS 'When the deletion committed (transaction start).';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.db_role IS 'Database role of the session that ran it.';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.requested_by IS
    'Who asked, as the caller describes it (e.g. "graphql admin, request <id>"); NULL when not given.';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.user_key_count IS 'How many user keys were deleted (the user id plus anonymous ids).';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.deleted_events IS 'Raw events deleted.';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.deleted_user_days IS 'Rows of analytics.ca_user_daily the user had (days counted as active).';
COMMENT ON COLUMN analytics_internal.tb_user_deletion.deleted_cohort_memberships IS 'Cohort memberships removed.';

-- Anonymous users' events ---------------------------------------------------------------------
-- A user is coalesce(user_id, anonymous_id); tb_event_app_user_time_idx finds the events with a
-- user id, this one those of a device that never signed in, so that deleting or exporting an
-- anonymous user does not read every event of the app.
CREATE INDEX tb_event_app_anonymous_time_idx ON analytics.tb_event (fk_app, anonymous_id, "timestamp")
    WHERE user_id IS NULL AND anonymous_id IS NOT NULL;

-- TimescaleDB: compression of raw events -------------------------------------------------------
-- Chunks whose events are all older than 7 days are compressed by a policy (a background job),
-- segmented by app (each app's rows of a chunk are compressed together, and a query for one app
-- decompresses only that app's segments) and ordered by time, newest first, as dashboards read.
-- Inserts (late events), updates and deletes keep working on compressed chunks. On PostgreSQL
-- there is nothing to do.
DO $compression$
BEGIN
    IF (SELECT value FROM analytics_internal.tb_setting WHERE name = 'engine') <> 'timescaledb' THEN
        RETURN;
    END IF;
    ALTER TABLE analytics.tb_event SET (
        timescaledb.compress,
        timescaledb.compress_segmentby = 'fk_app',
        timescaledb.compress_orderby = '"timestamp" DESC');
    PERFORM public.add_compression_policy('analytics.tb_event', compress_after => interval '7 days',
                                          if_not_exists => true);
END
$compression$;
