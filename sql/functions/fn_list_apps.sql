-- analytics.fn_list_apps(p_app, p_limit, p_offset)
--     -> SETOF (app_id, identifier, name, owner_id, timezone, retention_days, created_at, api_keys)
--
-- Apps with their API keys' metadata (never the keys themselves: only hashes are stored),
-- ordered by creation. One row for p_app (identifier or uuid), none when it does not exist;
-- every app, a page at a time, when p_app is NULL.
--
--   p_app     identifier or uuid of one app, or NULL for all
--   p_limit   page size, 1 to 1000 (default 100)
--   p_offset  rows to skip, >= 0 (default 0)
--
-- api_keys is a JSON array, oldest first, of
--   {id, kind, key_prefix, label, created_at, last_used_at, revoked_at}
-- where revoked_at is the moment the key stops working: past for a revoked key, future for
-- a key that a rotation retires after its grace period, NULL for a live key.
--
-- Errors: 22023 p_limit or p_offset out of range.
CREATE OR REPLACE FUNCTION analytics.fn_list_apps(
    p_app     text DEFAULT NULL,
    p_limit   integer DEFAULT 100,
    p_offset  integer DEFAULT 0)
RETURNS TABLE (
    app_id          uuid,
    identifier      text,
    name            text,
    owner_id        uuid,
    timezone        text,
    retention_days  integer,
    created_at      timestamptz,
    api_keys        jsonb)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit % is out of range', coalesce(p_limit::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a limit from 1 to 1000.';
    END IF;
    IF p_offset IS NULL OR p_offset < 0 THEN
        RAISE EXCEPTION 'offset % is out of range', coalesce(p_offset::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use an offset of 0 or more.';
    END IF;

    RETURN QUERY
    SELECT a.id, a.identifier, a.name, a.owner_id, a.timezone, a.retention_days, a.created_at,
           coalesce((SELECT jsonb_agg(jsonb_build_object(
                                'id', k.id,
                                'kind', k.kind,
                                'key_prefix', k.key_prefix,
                                'label', k.label,
                                'created_at', k.created_at,
                                'last_used_at', k.last_used_at,
                                'revoked_at', k.revoked_at) ORDER BY k.pk_api_key)
                     FROM analytics.tb_api_key k
                     WHERE k.fk_app = a.pk_app), '[]'::jsonb)
    FROM analytics.tb_app a
    WHERE p_app IS NULL OR a.pk_app = analytics_internal.fn_resolve_app(p_app)
    ORDER BY a.pk_app
    LIMIT p_limit OFFSET p_offset;
END
$$;

COMMENT ON FUNCTION analytics.fn_list_apps(text, integer, integer) IS
    'Apps (one, or a page of all) with their API keys'' metadata; plaintext keys are never stored.';
