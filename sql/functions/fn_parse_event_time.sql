-- analytics_internal.fn_parse_event_time(p_text, p_json_type) -> timestamptz or NULL
--
-- An event's "timestamp" field, given as text with its jsonb_typeof(): an ISO 8601 date-time
-- string (offset optional, UTC when absent, at most ±14:59; 'T' or a space between date and time; up to 9
-- fractional digits, rounded to microseconds; at most 40 characters) or a JSON number of milliseconds since the Unix
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
            CASE WHEN p_text ~ '^[0-9]+(\.[0-9]+)?$' AND char_length(p_text) <= 40
                  AND p_text::numeric < 253402300800000
                 THEN to_timestamp((p_text::numeric / 1000)::float8) END
        WHEN 'string' THEN
            -- Counted repetitions ({4}) make PostgreSQL's regex engine slow: spelled out instead.
            CASE WHEN p_text ~ '^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][Tt ][0-9][0-9]:[0-9][0-9](:[0-9][0-9](\.[0-9]+)?)?([Zz]|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$'
                  AND char_length(p_text) <= 40
                 THEN CASE WHEN substr(p_text, 1, 4)::int >= 1970
                            AND substr(p_text, 6, 2)::int BETWEEN 1 AND 12
                            AND substr(p_text, 9, 2)::int BETWEEN 1 AND
                                CASE substr(p_text, 6, 2)::int
                                    WHEN 2 THEN CASE WHEN substr(p_text, 1, 4)::int % 4 = 0
                                                      AND (substr(p_text, 1, 4)::int % 100 <> 0
                                                           OR substr(p_text, 1, 4)::int % 400 = 0)
                                                     THEN 29 ELSE 28 END
                                    WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30
                                    ELSE 31 END
                            AND substr(p_text, 12, 2)::int <= 23
                            AND substr(p_text, 15, 2)::int <= 59
                            AND coalesce(nullif(substr(p_text, 18, 2), '')::int, 0) <= 59
                           THEN (CASE WHEN upper(right(p_text, 1)) = 'Z'
                                        OR strpos(substr(p_text, 17), '+') > 0
                                        OR strpos(substr(p_text, 17), '-') > 0
                                      THEN upper(p_text)
                                      ELSE upper(p_text) || 'Z' END)::timestamptz
                      END
            END
    END
$$;

COMMENT ON FUNCTION analytics_internal.fn_parse_event_time(text, text) IS
    'Event time from an ISO 8601 string or epoch milliseconds (text plus its JSON type); NULL when invalid.';
