-- analytics_internal.fn_invalid_text_field(p_field, p_max_chars) -> jsonb
-- The rejection of an identifier-like event field, naming the field and its limit.
CREATE OR REPLACE FUNCTION analytics_internal.fn_invalid_text_field(p_field text, p_max_chars integer)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
SET search_path = pg_catalog
AS $$
    SELECT jsonb_build_object(
        'code', 'invalid_field',
        'message', format('field "%s" must be a non-empty string of at most %s printable characters',
                          p_field, p_max_chars))
$$;

COMMENT ON FUNCTION analytics_internal.fn_invalid_text_field(text, integer) IS
    'Rejection {code: invalid_field, message} for an identifier-like event field.';
