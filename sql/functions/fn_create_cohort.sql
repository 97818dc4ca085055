-- analytics.fn_create_cohort(p_app, p_name, p_filter, p_identifier)
--     -> (id, identifier, name, filter, user_count, retention_rate, created_at, refreshed_at)
--
-- Saves a cohort and computes its members at once (analytics_internal.fn_cohort_compute):
-- the app's users matching p_filter, in the JSON filter language of docs/analytics.md
-- ("Cohort filters"). Returns the new cohort, as fn_list_cohorts shows it.
--
--   p_app         app identifier or uuid
--   p_name        display name, 1 to 200 printable characters
--   p_filter      the filter: {} for every user, or a condition (see fn_validate_cohort_filter)
--   p_identifier  unique within the app: 1 to 64 letters, digits, ".", "_" or "-", starting
--                 with a letter or digit. NULL: derived from the name ("Pro users (iOS)" ->
--                 "pro-users-ios"), with "-2", "-3", ... appended if that is taken.
--
-- Errors: P0002 unknown app; 22023 bad name, identifier or filter (the filter's HINT names the
-- JSON path of the bad part); 23505 p_identifier already names a cohort of the app.
CREATE OR REPLACE FUNCTION analytics.fn_create_cohort(
    p_app         text,
    p_name        text,
    p_filter      jsonb,
    p_identifier  text DEFAULT NULL)
RETURNS TABLE (id uuid, identifier text, name text, filter jsonb, user_count integer, retention_rate numeric,
               created_at timestamptz, refreshed_at timestamptz)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pk_app     integer := fn_require_app(p_app);  -- P0002 when unknown
    v_pk_cohort  integer;
    v_base       text;
    v_candidate  text;
BEGIN
    IF p_name IS NULL OR char_length(p_name) > 200 OR NOT fn_is_clean_text(p_name) OR btrim(p_name) = '' THEN
        RAISE EXCEPTION 'invalid cohort name'
            USING ERRCODE = '22023', HINT = 'Use 1 to 200 printable characters.';
    END IF;
    IF p_identifier IS NOT NULL AND p_identifier !~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' THEN
        RAISE EXCEPTION 'invalid cohort identifier %', quote_literal(left(p_identifier, 80))
            USING ERRCODE = '22023',
                  HINT = 'Use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit; or pass NULL to derive it from the name.';
    END IF;
    PERFORM fn_validate_cohort_filter(p_filter);

    IF p_identifier IS NOT NULL THEN
        BEGIN
            INSERT INTO analytics.tb_cohort AS c (identifier, fk_app, name, filter)
            VALUES (p_identifier, v_pk_app, p_name, p_filter)
            RETURNING c.pk_cohort INTO v_pk_cohort;
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'cohort % already exists in this app', quote_literal(p_identifier)
                USING ERRCODE = '23505',
                      HINT = 'Choose another identifier, or recompute the existing cohort with analytics.fn_refresh_cohort.';
        END;
    ELSE
        -- lower-case letters and digits of the name, other runs as "-"
        v_base := left(btrim(regexp_replace(lower(p_name), '[^a-z0-9]+', '-', 'g'), '-'), 56);
        IF v_base = '' THEN
            v_base := 'cohort';
        END IF;
        FOR i IN 1 .. 1000 LOOP
            v_candidate := v_base || CASE WHEN i > 1 THEN '-' || i ELSE '' END;
            CONTINUE WHEN EXISTS (SELECT 1 FROM analytics.tb_cohort c WHERE c.fk_app = v_pk_app AND c.identifier = v_candidate);
            BEGIN
                INSERT INTO analytics.tb_cohort AS c (identifier, fk_app, name, filter)
                VALUES (v_candidate, v_pk_app, p_name, p_filter)
                RETURNING c.pk_cohort INTO v_pk_cohort;
                EXIT;
            EXCEPTION WHEN unique_violation THEN
                -- taken by a concurrent create meanwhile: try the next suffix
            END;
        END LOOP;
        IF v_pk_cohort IS NULL THEN
            RAISE EXCEPTION 'no free identifier derived from the name %', quote_literal(left(p_name, 80))
                USING ERRCODE = '23505', HINT = 'Pass an identifier.';
        END IF;
    END IF;

    PERFORM fn_cohort_compute(v_pk_cohort);
    RETURN QUERY
    SELECT c.id, c.identifier, c.name, c.filter, c.user_count, c.retention_rate, c.created_at, c.refreshed_at
    FROM analytics.tb_cohort c
    WHERE c.pk_cohort = v_pk_cohort;
END
$$;

COMMENT ON FUNCTION analytics.fn_create_cohort(text, text, jsonb, text) IS
    'Save a cohort (JSON filter, see docs/analytics.md) and compute its members now; returns it.';
