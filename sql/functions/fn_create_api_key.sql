-- analytics.fn_create_api_key(p_app, p_kind, p_label) -> (key_id, kind, api_key)
-- Issues a new key for an app. The plaintext api_key is returned once and never stored.
-- Errors: 22023 unknown kind, or a label over 200 characters or with control characters;
-- P0002 no such app.
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
    v_pk_app integer;
BEGIN
    IF p_kind IS NULL OR p_kind NOT IN ('write', 'read') THEN
        RAISE EXCEPTION 'unknown API key kind %', coalesce(quote_literal(p_kind), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use ''write'' (ingest) or ''read'' (query).';
    END IF;
    v_pk_app := analytics_internal.fn_require_app(p_app);
    IF p_label IS NOT NULL AND (char_length(p_label) > 200 OR NOT analytics_internal.fn_is_clean_text(p_label)) THEN
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
