-- analytics.fn_delete_user(p_app, p_user_id, p_anonymous_ids, p_requested_by)
--     -> (deletion_id, deleted_events, deleted_user_days, deleted_cohort_memberships, oldest_event_at)
--
-- Erases one person from an app, in one transaction (the right to erasure): their raw events,
-- their rows in the per-user rollups and summaries, their cohort memberships; then records the deletion in
-- analytics_internal.tb_user_deletion (who asked, when, how many rows: no identifier of the
-- person). The person is named by user keys (analytics_internal.fn_user_keys): an event is
-- theirs when coalesce(user_id, anonymous_id), the rollups' user_key, is p_user_id or one of
-- p_anonymous_ids. Events of another signed-in user on the same device are kept.
--
-- Aggregates:
--   * raw events: DELETE on analytics.tb_event (on TimescaleDB also in compressed chunks,
--     which decompresses the app's segments there; the compression policy recompresses them);
--   * rollups over retained events: the DELETE invalidates the hours it touched (PostgreSQL: the
--     statement triggers, after which the views aggregate those hours live, so every rollup is
--     right at once; TimescaleDB: the continuous aggregates' own log, applied by the next refresh:
--     the refresh policies, or analytics.prc_delete_user, which refreshes at once);
--   * per-user rows, on both engines and at once: the person's rows of ca_user_daily and of the
--     session rollups (whose user_key is theirs) are deleted from the materialized tables,
--     including days whose raw events retention has already dropped and that no refresh could
--     recompute. Unique-user counts of every day drop accordingly: the per-day rollups
--     ca_app_daily and ca_app_session_daily and the per-hour ca_app_hourly and
--     ca_app_session_hourly, which hold no user key, are lowered by the person's materialized
--     user-days (and their active hours), session-days and session-hours;
--   * anonymous counts of days past retention (ca_event_hourly / ca_event_daily: events per
--     type, os and app version, with no user in them) cannot be recomputed and keep counting the
--     person's old events;
--   * cohorts: their memberships are removed and each cohort's user_count lowered; a cohort's
--     retention_rate is corrected by its next refresh;
--   * the per-user activity summary behind fn_retention (analytics_internal.tb_user_activity):
--     their row is deleted; the summary's next refresh re-summarizes the days they touched.
-- The exactly-once keys of the deleted events (analytics_internal.tb_event_key, a hash of the
-- event id and its time) are kept: an SDK retrying an old batch must not bring the events back.
-- Events the app sends after the deletion are stored as usual.
--
--   p_app            app identifier or uuid
--   p_user_id        the user id (for a user who never signed in: the anonymous id)
--   p_anonymous_ids  more anonymous (device) ids of the same person, e.g. from before they
--                    signed in (at most 100); NULL: none
--   p_requested_by   who asked, for the audit log (at most 200 characters), e.g. a ticket id
--
-- Returns deletion_id (the audit row's id), deleted_events, deleted_user_days (rows of
-- analytics.ca_user_daily the person had), deleted_cohort_memberships and oldest_event_at (time
-- of the oldest deleted event, NULL when none: on TimescaleDB the rollups from that day on are
-- refreshed by prc_delete_user). A second call finds nothing and returns zeros (and is logged).
--
-- Errors: P0002 no such app; 22023 bad user id, anonymous ids or p_requested_by (nothing is
-- deleted).
--
-- SECURITY DEFINER: the API's role erases without being granted the tables.
CREATE OR REPLACE FUNCTION analytics.fn_delete_user(
    p_app            text,
    p_user_id        text,
    p_anonymous_ids  text[] DEFAULT NULL,
    p_requested_by   text DEFAULT NULL,
    OUT deletion_id                 uuid,
    OUT deleted_events              bigint,
    OUT deleted_user_days           bigint,
    OUT deleted_cohort_memberships  bigint,
    OUT oldest_event_at             timestamptz)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app  integer := analytics_internal.fn_require_app(p_app);
    v_keys    text[] := analytics_internal.fn_user_keys(p_user_id, p_anonymous_ids);
    v_rollup  text;
    v_source  text;
BEGIN
    IF char_length(p_requested_by) > 200 THEN
        RAISE EXCEPTION 'requested_by must be at most 200 characters'
            USING ERRCODE = '22023', HINT = 'Pass a short reference, e.g. a ticket id.';
    END IF;

    -- PostgreSQL engine: wait for a rollup refresh in flight (and hold off the next), so that
    -- none writes materialized rows of this person from a snapshot taken before the DELETE.
    IF analytics.fn_engine() = 'postgresql' THEN
        PERFORM pg_advisory_xact_lock(7346221902);
    END IF;
    -- Likewise a cohort refresh or a refresh of the per-user activity summary, which would
    -- re-add the person from an older snapshot (both lock these rows first).
    PERFORM 1 FROM analytics.tb_cohort c WHERE c.fk_app = v_pk_app ORDER BY c.pk_cohort FOR UPDATE;
    PERFORM 1 FROM analytics_internal.tb_user_activity_state s WHERE s.fk_app = v_pk_app FOR UPDATE;

    SELECT count(*) INTO deleted_user_days
    FROM analytics.ca_user_daily u
    WHERE u.fk_app = v_pk_app AND u.user_key = ANY (v_keys);

    -- user_key = ANY(keys), in two statements, one per partial index: with the OR in one
    -- statement, TimescaleDB 2.23 failed on compressed chunks ("attempted to delete invisible
    -- tuple", SQLSTATE 55000) when the condition came from variables.
    WITH deleted AS (
        DELETE FROM analytics.tb_event e
        WHERE e.fk_app = v_pk_app AND e.user_id = ANY (v_keys)
        RETURNING e."timestamp")
    SELECT count(*), min(d."timestamp") INTO deleted_events, oldest_event_at FROM deleted d;
    WITH deleted AS (
        DELETE FROM analytics.tb_event e
        WHERE e.fk_app = v_pk_app AND e.user_id IS NULL AND e.anonymous_id = ANY (v_keys)
        RETURNING e."timestamp")
    SELECT deleted_events + count(*), least(oldest_event_at, min(d."timestamp"))
      INTO deleted_events, oldest_event_at
    FROM deleted d;

    -- The one-row-per-day rollups hold no user key: take the person's materialized user-days
    -- and session-days (read before they go, below) off their days' counts. Days past retention
    -- can be corrected only this way; the others are also recomputed without the person by the
    -- next refresh, to the same numbers. A day left with no user or no session goes, as a
    -- recomputation would drop it.
    EXECUTE format('UPDATE %s a SET users = a.users - p.users'
                   ' FROM (SELECT u.bucket, count(*) AS users FROM %s u'
                   '       WHERE u.fk_app = $1 AND u.user_key = ANY ($2) GROUP BY u.bucket) p'
                   ' WHERE a.fk_app = $1 AND a.bucket = p.bucket',
                   analytics_internal.fn_rollup_storage('ca_app_daily'),
                   analytics_internal.fn_rollup_storage('ca_user_daily'))
        USING v_pk_app, v_keys;
    EXECUTE format('DELETE FROM %s a WHERE a.fk_app = $1 AND a.users <= 0',
                   analytics_internal.fn_rollup_storage('ca_app_daily'))
        USING v_pk_app;
    -- ca_app_hourly likewise, by the hours of those user-days (their active_hours bits)
    EXECUTE format('UPDATE %s a SET users = a.users - p.users'
                   ' FROM (SELECT u.bucket + make_interval(hours => h.h) AS bucket, count(*) AS users'
                   '       FROM %s u CROSS JOIN generate_series(0, 23) AS h(h)'
                   '       WHERE u.fk_app = $1 AND u.user_key = ANY ($2) AND u.active_hours & (1 << h.h) <> 0'
                   '       GROUP BY 1) p'
                   ' WHERE a.fk_app = $1 AND a.bucket = p.bucket',
                   analytics_internal.fn_rollup_storage('ca_app_hourly'),
                   analytics_internal.fn_rollup_storage('ca_user_daily'))
        USING v_pk_app, v_keys;
    EXECUTE format('DELETE FROM %s a WHERE a.fk_app = $1 AND a.users <= 0',
                   analytics_internal.fn_rollup_storage('ca_app_hourly'))
        USING v_pk_app;
    -- per day and per hour: the person's session-days and session-hours
    FOR v_rollup, v_source IN
        SELECT * FROM (VALUES ('ca_app_session_daily', 'ca_session_daily'),
                              ('ca_app_session_hourly', 'ca_session_hourly')) AS r(rollup, source)
    LOOP
        EXECUTE format('UPDATE %s a SET sessions = a.sessions - p.sessions, session_seconds = a.session_seconds - p.seconds'
                       ' FROM (SELECT s.bucket, count(*) AS sessions, sum(extract(epoch FROM s.ended_at - s.started_at)) AS seconds'
                       '       FROM %s s WHERE s.fk_app = $1 AND s.user_key = ANY ($2) GROUP BY s.bucket) p'
                       ' WHERE a.fk_app = $1 AND a.bucket = p.bucket',
                       analytics_internal.fn_rollup_storage(v_rollup), analytics_internal.fn_rollup_storage(v_source))
            USING v_pk_app, v_keys;
        EXECUTE format('DELETE FROM %s a WHERE a.fk_app = $1 AND a.sessions <= 0', analytics_internal.fn_rollup_storage(v_rollup))
            USING v_pk_app;
    END LOOP;

    -- Materialized rows that carry the person's user key, whatever their day: those still backed
    -- by raw events would be recomputed without them anyway; the older ones can only go this way.
    FOR v_rollup IN
        SELECT r.rollup FROM analytics_internal.tb_rollup r
        WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = analytics_internal.fn_rollup_storage(r.rollup)
                        AND a.attname = 'user_key' AND NOT a.attisdropped)
        ORDER BY r.refresh_order
    LOOP
        EXECUTE format('DELETE FROM %s m WHERE m.fk_app = $1 AND m.user_key = ANY ($2)',
                       analytics_internal.fn_rollup_storage(v_rollup))
            USING v_pk_app, v_keys;
    END LOOP;

    WITH removed AS (
        DELETE FROM analytics_internal.tb_cohort_member m
        USING analytics.tb_cohort c
        WHERE c.pk_cohort = m.fk_cohort AND c.fk_app = v_pk_app AND m.user_key = ANY (v_keys)
        RETURNING m.fk_cohort),
    per_cohort AS (
        SELECT r.fk_cohort, count(*) AS members FROM removed r GROUP BY r.fk_cohort),
    lowered AS (
        UPDATE analytics.tb_cohort c
           SET user_count = greatest(c.user_count - p.members, 0)
          FROM per_cohort p
         WHERE c.pk_cohort = p.fk_cohort)
    SELECT coalesce(sum(p.members), 0) INTO deleted_cohort_memberships FROM per_cohort p;

    -- The per-user activity summary behind fn_retention: the person's row goes now; the day
    -- counts it keeps (tb_user_activity_bucket) no longer match ca_user_daily, so its next
    -- refresh re-summarizes those days without them.
    DELETE FROM analytics_internal.tb_user_activity a WHERE a.fk_app = v_pk_app AND a.user_key = ANY (v_keys);

    INSERT INTO analytics_internal.tb_user_deletion
        (fk_app, requested_by, user_key_count, deleted_events, deleted_user_days, deleted_cohort_memberships)
    VALUES (v_pk_app, p_requested_by, cardinality(v_keys), deleted_events, deleted_user_days,
            deleted_cohort_memberships)
    RETURNING id INTO deletion_id;
END
$$;

COMMENT ON FUNCTION analytics.fn_delete_user(text, text, text[], text) IS
    'Erase one person (user id and optional anonymous ids) from an app: raw events, per-user rollup rows, cohort memberships; audited in analytics_internal.tb_user_deletion.';
