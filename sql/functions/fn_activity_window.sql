-- analytics_internal.fn_activity_window(p_bits, p_offset, p_width) -> text
--
-- A user's activity bits (days, weeks or months of analytics_internal.tb_user_activity) as a
-- window of p_width characters '0'/'1': character j + 1 is bit j - p_offset, or '0' where the
-- user has no bit (before their first period, after their last). p_offset is the window
-- position of the user's bit 0 (negative when the user started before the window). NULL when
-- no bit falls in the window. analytics.fn_retention groups users by these windows.
--
--   p_bits    the bit string
--   p_offset  window position of bit 0
--   p_width   window length, 1 or more
--
-- Errors: none.
--
-- No SET search_path on purpose: it is evaluated per user in fn_retention, and a SET clause
-- would stop the planner from inlining it. The body uses only pg_catalog.
CREATE OR REPLACE FUNCTION analytics_internal.fn_activity_window(p_bits bit varying, p_offset integer, p_width integer)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE WHEN p_offset < p_width AND p_offset + pg_catalog.length(p_bits) > 0 THEN
               pg_catalog.rpad(CASE WHEN p_offset >= 0 THEN pg_catalog.repeat('0', p_offset) || p_bits::text
                                    ELSE pg_catalog.substr(p_bits::text, 1 - p_offset) END,
                               p_width, '0')
           END
$$;

COMMENT ON FUNCTION analytics_internal.fn_activity_window(bit varying, integer, integer) IS
    'A user''s activity bits shifted into a retention window, as text of 0/1 characters.';
