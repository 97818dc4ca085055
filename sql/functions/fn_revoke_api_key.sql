-- analytics.fn_revoke_api_key(p_key_id) -> timestamptz (when it was revoked)
-- Revokes a key at once; revoking twice keeps the first time. A key that a rotation retires
-- later (revoked_at in the future) is revoked now. Errors: P0002 no such key.
CREATE OR REPLACE FUNCTION analytics.fn_revoke_api_key(p_key_id uuid)
RETURNS timestamptz
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, pg_temp
AS $$
DECLARE
    v_revoked_at timestamptz;
BEGIN
    UPDATE analytics.tb_api_key k
       SET revoked_at = CASE WHEN k.revoked_at <= now() THEN k.revoked_at ELSE now() END
     WHERE k.id = p_key_id
    RETURNING k.revoked_at INTO v_revoked_at;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'API key % does not exist', coalesce(p_key_id::text, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'List keys with SELECT id, kind, key_prefix FROM analytics.tb_api_key.';
    END IF;
    RETURN v_revoked_at;
END
$$;

COMMENT ON FUNCTION analytics.fn_revoke_api_key(uuid) IS 'Revoke an API key by its id; returns the revocation time.';
