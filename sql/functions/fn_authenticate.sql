-- analytics_internal.fn_authenticate(p_app, p_api_key, p_kind) -> integer (pk_app)
--
-- Checks that p_api_key is a live key of kind p_kind ('write' or 'read') for the app named by
-- p_app (identifier or uuid). Every failure reads the same to the caller, so that a probe
-- cannot learn whether the app exists or the key was revoked:
--   28000  missing, unknown, revoked or other-app key
--   42501  a valid key of the other kind for this app (a read key used to ingest, ...)
-- A key is live until its revoked_at has passed: NULL for a key in use, a future time for a
-- key that fn_rotate_api_key retires after a grace period.
-- last_used_at is refreshed at most once a minute, and never waits for a row lock: concurrent
-- batches of the same key must not queue behind each other.
CREATE OR REPLACE FUNCTION analytics_internal.fn_authenticate(p_app text, p_api_key text, p_kind text)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, analytics, analytics_internal
AS $$
DECLARE
    v_pk_app      integer;
    v_pk_api_key  integer;
    v_kind        text;
    v_used        timestamptz;
BEGIN
    IF p_api_key IS NOT NULL AND p_app IS NOT NULL THEN
        SELECT k.fk_app, k.pk_api_key, k.kind, k.last_used_at
          INTO v_pk_app, v_pk_api_key, v_kind, v_used
        FROM analytics.tb_api_key k
        WHERE k.key_hash = analytics_internal.fn_hash_api_key(p_api_key)
          AND (k.revoked_at IS NULL OR k.revoked_at > now());
    END IF;

    IF v_pk_app IS NULL OR v_pk_app IS DISTINCT FROM analytics_internal.fn_resolve_app(p_app) THEN
        RAISE EXCEPTION 'API key is not valid for this app'
            USING ERRCODE = '28000',
                  HINT = 'Send a live API key of this app in the X-API-Key header.';
    END IF;
    IF v_kind <> p_kind THEN
        RAISE EXCEPTION 'this API key may not perform this operation'
            USING ERRCODE = '42501',
                  DETAIL = format('The operation needs a %s key.', p_kind),
                  HINT = 'Write keys only send events; read keys only query and subscribe.';
    END IF;

    IF v_used IS NULL OR v_used < now() - interval '1 minute' THEN
        UPDATE analytics.tb_api_key k
           SET last_used_at = now()
         WHERE k.pk_api_key = (SELECT k2.pk_api_key FROM analytics.tb_api_key k2
                               WHERE k2.pk_api_key = v_pk_api_key
                               FOR UPDATE SKIP LOCKED);
    END IF;
    RETURN v_pk_app;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_authenticate(text, text, text) IS
    'pk_app for a live key of the given kind for the app, else SQLSTATE 28000 (or 42501 for the wrong kind).';
