-- analytics_internal.fn_parse_event_time(p_text, p_json_type) -> timestamptz or NULL
--
-- An event's "timestamp" field, given as text with its jsonb_typeof(): an ISO 8601 date-time
-- string (offset optional, UTC when absent; 'T' or a space between date and time; up to 9
-- fractional digits, rounded to microseconds) or a JSON number of milliseconds since the Unix
-- epoch. Anything else, and any date before 1970 or after 9999, gives NULL instead of an
-- error, so one bad event cannot fail its batch. Dates are checked field by field before the
-- cast, because PostgreSQL 15 has no pg_input_is_valid() and an exception handler per event
-- would cost a subtransaction.
-- No SET search_path: see fn_is_clean_text (inlined per event).
CREATE OR REPLACE FUNCTION analytics_internal.fn_parse_event_time(p_text text, p_json_type text)
RETURNS timestamptz
LANGUAGE sql
STABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT CASE p_json_type
        WHEN 'number' THEN
            CASE WHEN p_text ~ '^\d{1,15}(\.\d+)?$' AND p_text::numeric < 253402300800000
                 THEN to_timestamp((p_text::numeric / 1000)::float8) END
        WHEN 'string' THEN
            CASE WHEN p_text ~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$'
                 THEN CASE WHEN substr(p_text, 1, 4)::int >= 1970
                            AND substr(p_text, 6, 2)::int BETWEEN 1 AND 12
                            AND substr(p_text, 12, 2)::int <= 23
                            AND substr(p_text, 15, 2)::int <= 59
                            AND coalesce(nullif(substr(p_text, 18, 2), '')::int, 0) <= 59
                           THEN CASE WHEN substr(p_text, 9, 2)::int BETWEEN 1 AND
                                          extract(day FROM make_date(substr(p_text, 1, 4)::int,
                                                                     substr(p_text, 6, 2)::int, 1)
                                                           + interval '1 month - 1 day')::int
                                     THEN (CASE WHEN p_text ~ '([Zz]|[+-]\d{2}(:?\d{2})?)$'
                                                THEN upper(p_text)
                                                ELSE upper(p_text) || 'Z' END)::timestamptz
                                END
                      END
            END
    END
$$;

COMMENT ON FUNCTION analytics_internal.fn_parse_event_time(text, text) IS
    'Event time from an ISO 8601 string or epoch milliseconds (text plus its JSON type); NULL when invalid.';
