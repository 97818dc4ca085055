-- analytics.fn_rotate_api_key(p_app, p_kind, p_grace_seconds)
--     -> (key_id, kind, api_key, previous_keys_expire_at)
--
-- Issues a new key of kind p_kind for an app and retires the app's other live keys of that
-- kind after p_grace_seconds, so that SDKs in the field keep sending while the new key
-- ships. The retired keys' revoked_at is set to now() + grace (fn_authenticate treats a key
-- as live until its revoked_at has passed); a key already due to expire sooner keeps its
-- earlier time. The plaintext api_key is returned once and never stored.
--
--   p_app            app identifier or uuid
--   p_kind           'write' or 'read'
--   p_grace_seconds  0 (retire at once) to 2592000 (30 days); default 0
--
-- previous_keys_expire_at is NULL when there was no other live key of that kind.
-- Errors: 22023 unknown kind or grace out of range; P0002 no such app.
CREATE OR REPLACE FUNCTION analytics.fn_rotate_api_key(
    p_app            text,
    p_kind           text,
    p_grace_seconds  integer DEFAULT 0,
    OUT key_id                   uuid,
    OUT kind                     text,
    OUT api_key                  text,
    OUT previous_keys_expire_at  timestamptz)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app   integer;
    v_expires  timestamptz;
BEGIN
    IF p_grace_seconds IS NULL OR p_grace_seconds NOT BETWEEN 0 AND 2592000 THEN
        RAISE EXCEPTION 'grace period of % seconds is out of range', coalesce(p_grace_seconds::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use 0 (retire the old keys at once) to 2592000 seconds (30 days).';
    END IF;
    -- The kind is checked by fn_create_api_key below (the whole call rolls back then).
    v_pk_app := analytics_internal.fn_require_app(p_app);

    v_expires := now() + make_interval(secs => p_grace_seconds);
    UPDATE analytics.tb_api_key k
       SET revoked_at = v_expires
     WHERE k.fk_app = v_pk_app
       AND k.kind = p_kind
       AND (k.revoked_at IS NULL OR k.revoked_at > v_expires);
    IF FOUND THEN
        previous_keys_expire_at := v_expires;
    END IF;

    SELECT c.key_id, c.kind, c.api_key INTO key_id, kind, api_key
    FROM analytics.fn_create_api_key(p_app, p_kind, format('rotated %s', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))) c;
END
$$;

COMMENT ON FUNCTION analytics.fn_rotate_api_key(text, text, integer) IS
    'Issue a new write or read key and retire the app''s other keys of that kind after a grace period; the key is returned once.';
