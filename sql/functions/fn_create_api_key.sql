-- analytics.fn_create_api_key(p_app, p_kind, p_label) -> (key_id, kind, api_key)
-- Issues a new key for an app. The plaintext api_key is returned once and never stored.
-- Errors: 22023 unknown kind; P0002 no such app.
CREATE OR REPLACE FUNCTION analytics.fn_create_api_key(
    p_app    text,
    p_kind   text,
    p_label  text DEFAULT NULL,
    OUT key_id   uuid,
    OUT kind     text,
    OUT api_key  text)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app integer := analytics_internal.fn_resolve_app(p_app);
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('write', 'read') THEN
        RAISE EXCEPTION 'unknown API key kind %', coalesce(quote_literal(p_kind), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use ''write'' (ingest) or ''read'' (query).';
    END IF;
    IF v_pk_app IS NULL THEN
        RAISE EXCEPTION 'app % does not exist', quote_literal(p_app)
            USING ERRCODE = 'P0002', HINT = 'Pass the app''s identifier or uuid.';
    END IF;
    IF p_label IS NOT NULL AND NOT analytics_internal.fn_is_clean_text(p_label, 200) THEN
        RAISE EXCEPTION 'API key label is too long or holds control characters'
            USING ERRCODE = '22023', HINT = 'Use at most 200 printable characters.';
    END IF;

    api_key := analytics_internal.fn_new_api_key(p_kind);
    kind := p_kind;
    INSERT INTO analytics.tb_api_key (fk_app, kind, key_hash, key_prefix, label)
    VALUES (v_pk_app, p_kind, analytics_internal.fn_hash_api_key(api_key), left(api_key, 12), p_label)
    RETURNING id INTO key_id;
END
$$;

COMMENT ON FUNCTION analytics.fn_create_api_key(text, text, text) IS
    'Issue a write or read key for an app; the plaintext key is returned once.';
