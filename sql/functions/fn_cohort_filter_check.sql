-- analytics_internal.fn_cohort_filter_check(p_node, p_path, p_depth) -> integer
--
-- Checks one condition of a cohort filter and, recursively, the conditions inside it; returns
-- how many leaf conditions (event, property, first_seen) it holds. The language is described
-- in docs/analytics.md ("Cohort filters"):
--   {"and": [c, ...]}  {"or": [c, ...]}     1 to 50 conditions
--   {"not": c}
--   {"event": "purchase", "min_count": 2, "within_days": 30 | "from": "YYYY-MM-DD", "to": ...}
--   {"property": "device.os" | "app_version" | "metadata.<key>", "op": "eq", "value": "iOS",
--    optional window as for event}
--   {"first_seen": {"from": ..., "to": ...} | {"within_days": 7}}
-- A condition is an object with exactly one of the keys and, or, not, event, property,
-- first_seen, and only the keys its kind allows.
--
--   p_node   the condition
--   p_path   its JSON path ($ for the whole filter), for errors
--   p_depth  1 for the whole filter; deeper than 6 is refused
--
-- Errors: 22023 (analytics_internal.fn_cohort_filter_raise) with the path of the first bad part.
CREATE OR REPLACE FUNCTION analytics_internal.fn_cohort_filter_check(p_node jsonb, p_path text, p_depth integer)
RETURNS integer
LANGUAGE plpgsql
IMMUTABLE
SECURITY INVOKER
SET search_path = pg_catalog, analytics_internal, pg_temp
AS $$
DECLARE
    c_kinds     constant text[] := ARRAY['and', 'or', 'not', 'event', 'property', 'first_seen'];
    c_devices   constant text[] := ARRAY['os', 'os_version', 'model', 'manufacturer', 'app_version', 'app_build',
                                         'locale', 'timezone', 'carrier', 'network', 'sdk_name', 'sdk_version',
                                         'screen_width', 'screen_height'];
    c_ops       constant text[] := ARRAY['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in'];
    v_keys      text[];
    v_kinds     text[];
    v_kind      text;
    v_allowed   text[];
    v_key       text;
    v_value     jsonb;
    v_property  text;
    v_op        text;
    v_version   boolean;
    v_items     jsonb;
    v_path      text;
    v_count     integer := 0;
BEGIN
    IF p_depth > 6 THEN
        PERFORM fn_cohort_filter_raise(p_path, 'conditions are nested more than 6 levels deep',
            'flatten the filter: and/or take lists, so nested ands (or nested ors) can be merged.');
    END IF;
    IF jsonb_typeof(p_node) IS DISTINCT FROM 'object' THEN
        PERFORM fn_cohort_filter_raise(p_path,
            format('a condition must be a JSON object, not %s', coalesce(jsonb_typeof(p_node), 'NULL')),
            'write a condition such as {"event": "purchase"}.');
    END IF;
    SELECT array_agg(k ORDER BY k) INTO v_keys FROM jsonb_object_keys(p_node) AS k;
    IF v_keys IS NULL THEN
        PERFORM fn_cohort_filter_raise(p_path, 'empty condition',
            'write a condition such as {"event": "purchase"}, or remove it.');
    END IF;
    v_kinds := ARRAY(SELECT k FROM unnest(v_keys) AS k WHERE k = ANY (c_kinds) ORDER BY array_position(c_kinds, k));
    IF cardinality(v_kinds) = 0 THEN
        PERFORM fn_cohort_filter_raise(fn_json_path_key(p_path, v_keys[1]),
            format('unknown key %s', to_json(left(v_keys[1], 40))),
            'a condition is an object with one of the keys and, or, not, event, property, first_seen.');
    END IF;
    IF cardinality(v_kinds) > 1 THEN
        PERFORM fn_cohort_filter_raise(fn_json_path_key(p_path, v_kinds[2]),
            format('one condition cannot be both "%s" and "%s"', v_kinds[1], v_kinds[2]),
            format('put them in a list: {"and": [{"%s": ...}, {"%s": ...}]}.', v_kinds[1], v_kinds[2]));
    END IF;
    v_kind := v_kinds[1];
    v_allowed := CASE v_kind WHEN 'event' THEN ARRAY['event', 'min_count', 'within_days', 'from', 'to']
                             WHEN 'property' THEN ARRAY['property', 'op', 'value', 'within_days', 'from', 'to']
                             ELSE ARRAY[v_kind] END;
    SELECT k INTO v_key FROM unnest(v_keys) AS k WHERE k <> ALL (v_allowed) ORDER BY k LIMIT 1;
    IF v_key IS NOT NULL THEN
        PERFORM fn_cohort_filter_raise(fn_json_path_key(p_path, v_key),
            format('unknown key %s in %s "%s" condition', to_json(left(v_key, 40)),
                   CASE WHEN v_kind IN ('and', 'or', 'event') THEN 'an' ELSE 'a' END, v_kind),
            CASE WHEN cardinality(v_allowed) = 1
                 THEN format('a "%s" condition has no other key; combine conditions with and/or.', v_kind)
                 ELSE format('a "%s" condition takes only the keys %s.', v_kind, array_to_string(v_allowed, ', ')) END);
    END IF;
    v_path := p_path || '.' || v_kind;
    v_value := p_node -> v_kind;

    IF v_kind IN ('and', 'or') THEN
        IF jsonb_typeof(v_value) <> 'array' OR jsonb_array_length(v_value) NOT BETWEEN 1 AND 50 THEN
            PERFORM fn_cohort_filter_raise(v_path,
                format('"%s" must be a list of 1 to 50 conditions, not %s', v_kind,
                       CASE WHEN jsonb_typeof(v_value) = 'array'
                            THEN format('a list of %s', jsonb_array_length(v_value)) ELSE jsonb_typeof(v_value) END),
                format('write {"%s": [{"event": "a"}, {"event": "b"}]}.', v_kind));
        END IF;
        FOR i IN 0 .. jsonb_array_length(v_value) - 1 LOOP
            v_count := v_count + fn_cohort_filter_check(v_value -> i, format('%s[%s]', v_path, i), p_depth + 1);
        END LOOP;
        RETURN v_count;
    ELSIF v_kind = 'not' THEN
        RETURN fn_cohort_filter_check(v_value, v_path, p_depth + 1);
    END IF;

    IF v_kind = 'event' THEN
        IF jsonb_typeof(v_value) <> 'string' OR char_length(v_value #>> '{}') NOT BETWEEN 1 AND 128 THEN
            PERFORM fn_cohort_filter_raise(v_path,
                format('"event" must be an event type, a string of 1 to 128 characters, not %s', left(v_value::text, 40)),
                'name an event type, e.g. "purchase".');
        END IF;
        v_value := p_node -> 'min_count';
        -- CASE, not OR: SQL does not promise to test the type before the cast
        IF v_value IS NOT NULL AND NOT (CASE WHEN jsonb_typeof(v_value) = 'number'
                                             THEN v_value::numeric = trunc(v_value::numeric)
                                                  AND v_value::numeric BETWEEN 1 AND 1000000
                                             ELSE false END) THEN
            PERFORM fn_cohort_filter_raise(p_path || '.min_count',
                format('min_count must be a whole number from 1 to 1000000, not %s', left(v_value::text, 40)),
                'use a count such as 2 (at least 2 events); leave it out for 1.');
        END IF;
        PERFORM fn_cohort_filter_check_window(p_node, p_path);
        RETURN 1;
    END IF;

    IF v_kind = 'property' THEN
        v_property := v_value #>> '{}';
        IF jsonb_typeof(v_value) <> 'string'
           OR NOT (v_property = 'app_version'
                   OR (v_property LIKE 'device.%' AND substr(v_property, 8) = ANY (c_devices))
                   OR (v_property LIKE 'metadata.%' AND char_length(v_property) BETWEEN 10 AND 137)) THEN
            PERFORM fn_cohort_filter_raise(v_path,
                format('unknown property %s', left(v_value::text, 60)),
                format('use app_version, device.<field> (%s) or metadata.<key> (a key of 1 to 128 characters).',
                       array_to_string(c_devices, ', ')));
        END IF;
        v_version := v_property IN ('app_version', 'device.app_version');
        v_value := p_node -> 'op';
        v_op := v_value #>> '{}';
        IF v_value IS NULL OR jsonb_typeof(v_value) <> 'string' OR NOT v_op = ANY (c_ops) THEN
            PERFORM fn_cohort_filter_raise(p_path || '.op',
                CASE WHEN v_value IS NULL THEN 'the comparison "op" is missing'
                     ELSE format('unknown comparison %s', left(v_value::text, 40)) END,
                'use one of eq, ne, gt, gte, lt, lte, in.');
        END IF;
        v_value := p_node -> 'value';
        IF v_value IS NULL THEN
            PERFORM fn_cohort_filter_raise(p_path || '.value', 'the "value" to compare with is missing',
                'add "value", e.g. "iOS", 2 or true (a list for "in").');
        END IF;
        IF v_op = 'in' THEN
            IF jsonb_typeof(v_value) <> 'array' OR jsonb_array_length(v_value) NOT BETWEEN 1 AND 100 THEN
                PERFORM fn_cohort_filter_raise(p_path || '.value',
                    '"in" needs a list of 1 to 100 values',
                    'write e.g. "value": ["iOS", "Android"].');
            END IF;
            v_items := v_value;
        ELSE
            v_items := jsonb_build_array(v_value);
        END IF;
        FOR i IN 0 .. jsonb_array_length(v_items) - 1 LOOP
            v_value := v_items -> i;
            v_path := p_path || '.value' || CASE WHEN v_op = 'in' THEN format('[%s]', i) ELSE '' END;
            IF v_version THEN
                IF jsonb_typeof(v_value) <> 'string' OR (v_value #>> '{}') !~ '^[0-9]{1,9}(\.[0-9]{1,9}){0,9}$' THEN
                    PERFORM fn_cohort_filter_raise(v_path,
                        format('an app version must be a string of dotted numbers, not %s', left(v_value::text, 40)),
                        'write the version as a string, e.g. "1.10" or "2.0.3" (a JSON number would turn 1.10 into 1.1).');
                END IF;
            ELSIF jsonb_typeof(v_value) NOT IN ('string', 'number', 'boolean')
                  OR (jsonb_typeof(v_value) = 'string' AND char_length(v_value #>> '{}') > 1000) THEN
                PERFORM fn_cohort_filter_raise(v_path,
                    format('a value must be a string of at most 1000 characters, a number or a boolean, not %s',
                           CASE WHEN jsonb_typeof(v_value) = 'string' THEN 'a longer string' ELSE jsonb_typeof(v_value) END),
                    'write e.g. "iOS", 42 or true.');
            ELSIF jsonb_typeof(v_value) = 'boolean' AND v_op NOT IN ('eq', 'ne', 'in') THEN
                PERFORM fn_cohort_filter_raise(v_path,
                    format('true and false cannot be compared with %s', v_op),
                    'use eq, ne or in with a boolean value.');
            END IF;
        END LOOP;
        PERFORM fn_cohort_filter_check_window(p_node, p_path);
        RETURN 1;
    END IF;

    -- first_seen
    IF jsonb_typeof(v_value) <> 'object' OR v_value = '{}'::jsonb THEN
        PERFORM fn_cohort_filter_raise(v_path, 'first_seen must be an object with from/to or within_days',
            'write e.g. {"first_seen": {"from": "2026-01-01", "to": "2026-01-31"}} or {"first_seen": {"within_days": 7}}.');
    END IF;
    SELECT k INTO v_key FROM jsonb_object_keys(v_value) AS k WHERE k NOT IN ('from', 'to', 'within_days') ORDER BY k LIMIT 1;
    IF v_key IS NOT NULL THEN
        PERFORM fn_cohort_filter_raise(fn_json_path_key(v_path, v_key),
            format('unknown key %s in first_seen', to_json(left(v_key, 40))),
            'first_seen takes only from, to and within_days.');
    END IF;
    PERFORM fn_cohort_filter_check_window(v_value, v_path);
    RETURN 1;
END
$$;

COMMENT ON FUNCTION analytics_internal.fn_cohort_filter_check(jsonb, text, integer) IS
    'Check one cohort filter condition recursively (22023 with the JSON path of the bad part); returns its leaf conditions.';
