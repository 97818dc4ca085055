-- analytics.fn_create_app(p_identifier, p_name, p_owner_id, p_timezone, p_retention_days)
--     -> (app_id, identifier, write_key, read_key)
-- Creates an app with one write key and one read key (plaintext returned once).
-- Errors: 23505 identifier taken; 22023 bad identifier, name, timezone or retention.
CREATE OR REPLACE FUNCTION analytics.fn_create_app(
    p_identifier      text,
    p_name            text,
    p_owner_id        uuid DEFAULT NULL,
    p_timezone        text DEFAULT 'UTC',
    p_retention_days  integer DEFAULT 90,
    OUT app_id      uuid,
    OUT identifier  text,
    OUT write_key   text,
    OUT read_key    text)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
BEGIN
    IF p_identifier IS NULL OR p_identifier !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' THEN
        RAISE EXCEPTION 'invalid app identifier %', coalesce(quote_literal(left(p_identifier, 80)), 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit.';
    END IF;
    IF p_name IS NULL OR char_length(p_name) > 200 OR NOT analytics_internal.fn_is_clean_text(p_name) OR btrim(p_name) = '' THEN
        RAISE EXCEPTION 'invalid app name'
            USING ERRCODE = '22023', HINT = 'Use 1 to 200 printable characters.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = p_timezone) THEN
        RAISE EXCEPTION 'unknown time zone %', coalesce(quote_literal(left(p_timezone, 80)), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use an IANA zone name such as UTC or Europe/Berlin.';
    END IF;
    IF p_retention_days IS NULL OR p_retention_days NOT BETWEEN 1 AND 3650 THEN
        RAISE EXCEPTION 'retention of % days is out of range', coalesce(p_retention_days::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use 1 to 3650 days.';
    END IF;
    IF EXISTS (SELECT 1 FROM analytics.tb_app a WHERE a.identifier = p_identifier) THEN
        RAISE EXCEPTION 'app % already exists', quote_literal(p_identifier)
            USING ERRCODE = '23505', HINT = 'Choose another identifier.';
    END IF;

    BEGIN
        INSERT INTO analytics.tb_app (identifier, name, owner_id, timezone, retention_days)
        VALUES (p_identifier, p_name, coalesce(p_owner_id, gen_random_uuid()), p_timezone, p_retention_days)
        RETURNING tb_app.id, tb_app.identifier INTO app_id, identifier;
    EXCEPTION WHEN unique_violation THEN
        -- lost a race with a concurrent create of the same identifier
        RAISE EXCEPTION 'app % already exists', quote_literal(p_identifier)
            USING ERRCODE = '23505', HINT = 'Choose another identifier.';
    END;

    write_key := (analytics.fn_create_api_key(p_identifier, 'write', 'default write key')).api_key;
    read_key := (analytics.fn_create_api_key(p_identifier, 'read', 'default read key')).api_key;
END
$$;

COMMENT ON FUNCTION analytics.fn_create_app(text, text, uuid, text, integer) IS
    'Create an app with a write key and a read key; the keys are returned once.';
