-- analytics_internal.fn_user_keys(p_user_id, p_anonymous_ids) -> text[]
--
-- The user keys that name one person for fn_delete_user and fn_export_user: p_user_id
-- followed by the distinct p_anonymous_ids that differ from it. An event belongs to the person
-- when its user key, coalesce(user_id, anonymous_id) as in the rollups, is one of them: its
-- user_id is one of them, or it has no user_id and its anonymous_id is one of them. An event
-- with another user's user_id is never theirs, even from the same device (anonymous_id).
--
--   p_user_id        the user id (or, for a user who never signed in, the anonymous id)
--   p_anonymous_ids  more anonymous (device) ids of the same person, e.g. from before they
--                    signed in; NULL or empty: none
--
-- Errors: 22023 p_user_id NULL, empty or longer than 256 characters; an anonymous id NULL,
-- empty or longer than 256 characters; more than 100 anonymous ids.
CREATE OR REPLACE FUNCTION analytics_internal.fn_user_keys(p_user_id text, p_anonymous_ids text[] DEFAULT NULL)
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal
AS $$
DECLARE
    v_extra text[] := coalesce(p_anonymous_ids, '{}');
BEGIN
    IF p_user_id IS NULL OR p_user_id = '' OR char_length(p_user_id) > 256 THEN
        RAISE EXCEPTION 'user id must be 1 to 256 characters'
            USING ERRCODE = '22023',
                  HINT = 'Pass the user_id (or, for a user who never signed in, the anonymous_id) the events carry.';
    END IF;
    IF cardinality(v_extra) > 100 THEN
        RAISE EXCEPTION '% anonymous ids given; at most 100 are allowed', cardinality(v_extra)
            USING ERRCODE = '22023', HINT = 'Split the request.';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(v_extra) a WHERE a IS NULL OR a = '' OR char_length(a) > 256) THEN
        RAISE EXCEPTION 'anonymous ids must be 1 to 256 characters'
            USING ERRCODE = '22023', HINT = 'Leave out empty or null anonymous ids.';
    END IF;
    RETURN ARRAY[p_user_id] || ARRAY(SELECT DISTINCT a FROM unnest(v_extra) a WHERE a <> p_user_id ORDER BY a);
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_user_keys(text, text[]) IS
    'Checked user keys (user id, then anonymous ids) naming one person for per-user deletion and export.';
