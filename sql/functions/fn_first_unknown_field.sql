-- analytics_internal.fn_first_unknown_field(p_event, p_allowed) -> text
-- The alphabetically first top-level field of p_event not in p_allowed, for error messages.
-- Kept out of fn_event_problem because a sub-select there would stop it being inlined.
CREATE OR REPLACE FUNCTION analytics_internal.fn_first_unknown_field(p_event jsonb, p_allowed text[])
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
SET search_path = pg_catalog
AS $$
    SELECT min(k) FROM jsonb_object_keys(p_event - p_allowed) AS k
$$;

COMMENT ON FUNCTION analytics_internal.fn_first_unknown_field(jsonb, text[]) IS
    'First top-level key of an event outside the allowed list (for error messages).';
