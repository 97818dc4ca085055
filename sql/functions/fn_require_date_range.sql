-- analytics_internal.fn_require_date_range(p_from, p_to, p_swap_hint) -> void
--
-- Checks a range of dates given to an analytics function (both included): SQLSTATE 22023 with a
-- HINT when a date is missing or infinite, or when p_from is after p_to. The caller checks the
-- length, whose limit depends on its granularity.
--
--   p_from, p_to  the range
--   p_swap_hint   the HINT for p_from after p_to: what from and to mean to the caller
--
-- Errors: 22023 as above.
CREATE OR REPLACE FUNCTION analytics_internal.fn_require_date_range(p_from date, p_to date, p_swap_hint text)
RETURNS void
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog
AS $$
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR NOT isfinite(p_from) OR NOT isfinite(p_to) THEN
        RAISE EXCEPTION 'the date range needs a finite from and to date'
            USING ERRCODE = '22023', HINT = 'Pass both dates, e.g. 2024-01-01 and 2024-01-31.';
    END IF;
    IF p_from > p_to THEN
        RAISE EXCEPTION 'the date range starts (%) after it ends (%)', p_from, p_to
            USING ERRCODE = '22023', HINT = p_swap_hint;
    END IF;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_require_date_range(date, date, text) IS
    'SQLSTATE 22023 with a HINT when a date range has a missing or infinite date or starts after it ends.';
