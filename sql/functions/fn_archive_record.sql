-- analytics.fn_archive_record(p_range_start, p_app, p_day, p_state, p_target, p_object_key,
--                             p_row_count, p_id_checksum, p_byte_size, p_sha256) -> void
--
-- Writes the archive ledger's row for one app-day of a raw-event chunk
-- (analytics_internal.tb_archive_object), as `mobile-analytics archive` goes:
--   'pending'   before an upload starts (the counts and checksums are cleared): from here until
--               'verified' the chunk cannot be dropped, whatever an earlier export recorded;
--   'verified'  once the object has been read back and matches, with its row count, id
--               checksum (as fn_archive_plan gave them), size and SHA-256.
-- Committed row by row, so that a crash leaves a truthful ledger: a rerun redoes pending rows
-- and skips verified ones that still match.
--
--   p_range_start  start of the chunk;  p_app  identifier or uuid;  p_day  UTC day
--   p_state        'pending' or 'verified'
--   p_target       s3://bucket or file:///directory
--   p_object_key   key (path) of the object
--   p_row_count, p_id_checksum, p_byte_size, p_sha256   required for 'verified' (sha256: 64 hex)
--
-- Errors: 22023 bad state, missing or malformed values, or 'verified' with no pending row for
-- the same object; P0002 unknown app or no chunk starts at p_range_start.
CREATE OR REPLACE FUNCTION analytics.fn_archive_record(
    p_range_start  timestamptz,
    p_app          text,
    p_day          date,
    p_state        text,
    p_target       text,
    p_object_key   text,
    p_row_count    bigint DEFAULT NULL,
    p_id_checksum  numeric DEFAULT NULL,
    p_byte_size    bigint DEFAULT NULL,
    p_sha256       text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app  integer := analytics_internal.fn_require_app(p_app);
    v_app_id  uuid;
    v_end     timestamptz;
BEGIN
    SELECT a.id INTO v_app_id FROM analytics.tb_app a WHERE a.pk_app = v_pk_app;
    IF p_state IS NULL OR p_state NOT IN ('pending', 'verified') THEN
        RAISE EXCEPTION 'archive state must be pending or verified, not %', coalesce(quote_literal(p_state), 'NULL')
            USING ERRCODE = '22023', HINT = 'Record pending before the upload and verified after checking it.';
    END IF;
    IF p_day IS NULL OR coalesce(p_target, '') = '' OR coalesce(p_object_key, '') = '' THEN
        RAISE EXCEPTION 'day, target and object key are required'
            USING ERRCODE = '22023', HINT = 'Pass the UTC day, e.g. s3://bucket, and the object''s key.';
    END IF;

    IF p_state = 'pending' THEN
        SELECT c.range_end INTO v_end FROM analytics_internal.fn_event_chunks() c WHERE c.range_start = p_range_start;
        IF v_end IS NULL THEN
            RAISE EXCEPTION 'no raw-event chunk starts at %', coalesce(p_range_start::text, 'NULL')
                USING ERRCODE = 'P0002',
                      HINT = 'It may have been dropped meanwhile; list chunks with analytics.fn_retention_status().';
        END IF;
        INSERT INTO analytics_internal.tb_archive_object AS o
            (fk_app, app_id, day, range_start, range_end, state, target, object_key)
        VALUES (v_pk_app, v_app_id, p_day, p_range_start, v_end, 'pending', p_target, p_object_key)
        ON CONFLICT (range_start, fk_app, day) DO UPDATE
           SET state = 'pending', target = excluded.target, object_key = excluded.object_key,
               row_count = NULL, id_checksum = NULL, byte_size = NULL, sha256 = NULL,
               started_at = now(), verified_at = NULL;
        RETURN;
    END IF;

    IF p_row_count IS NULL OR p_row_count < 0 OR p_id_checksum IS NULL OR p_byte_size IS NULL OR p_byte_size < 0
       OR p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'a verified archive needs its row count, id checksum, size and SHA-256 (64 hex digits)'
            USING ERRCODE = '22023', HINT = 'Pass the values checked on the uploaded object.';
    END IF;
    UPDATE analytics_internal.tb_archive_object o
       SET state = 'verified', row_count = p_row_count, id_checksum = p_id_checksum,
           byte_size = p_byte_size, sha256 = p_sha256, verified_at = now()
     WHERE o.range_start = p_range_start AND o.fk_app = v_pk_app AND o.day = p_day
       AND o.target = p_target AND o.object_key = p_object_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no pending archive of % for % in the chunk starting %', p_object_key, p_day, p_range_start
            USING ERRCODE = '22023',
                  HINT = 'Record the object as pending (same target and key) before uploading it.';
    END IF;
END
$$;

COMMENT ON FUNCTION analytics.fn_archive_record(timestamptz, text, date, text, text, text, bigint, numeric, bigint, text) IS
    'Record an app-day of a raw-event chunk in the archive ledger: pending before its upload, verified after the check.';
