-- analytics_internal.fn_is_valid_device(p_device, p_fields) -> boolean
--
-- A device context (per event, or in the request context): a JSON object with only the
-- documented fields, each absent, null or valid:
--   os, os_version, model, manufacturer, app_version, app_build, locale, timezone, carrier,
--   network, sdk_name, sdk_version   non-empty strings (or numbers) of at most 128 clean chars
--   screen_width, screen_height      whole numbers from 0 to 100000
-- A fixed set, so that rollups can group by any field and SDK typos are caught, not stored.
-- p_fields is jsonb_populate_record(NULL::tp_device_fields, p_device), computed once by the
-- caller. No SET search_path and no sub-selects, so that it inlines (see fn_is_clean_text).
CREATE OR REPLACE FUNCTION analytics_internal.fn_is_valid_device(
    p_device jsonb,
    p_fields analytics_internal.tp_device_fields)
RETURNS boolean
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT jsonb_typeof(p_device) = 'object'
       AND (p_device - ARRAY['os', 'os_version', 'model', 'manufacturer', 'app_version', 'app_build', 'locale',
                             'timezone', 'carrier', 'network', 'sdk_name', 'sdk_version',
                             'screen_width', 'screen_height']) = '{}'::jsonb
       AND analytics_internal.fn_is_valid_text_field((p_fields).os, jsonb_typeof(p_device -> 'os'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).os_version, jsonb_typeof(p_device -> 'os_version'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).model, jsonb_typeof(p_device -> 'model'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).manufacturer, jsonb_typeof(p_device -> 'manufacturer'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).app_version, jsonb_typeof(p_device -> 'app_version'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).app_build, jsonb_typeof(p_device -> 'app_build'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).locale, jsonb_typeof(p_device -> 'locale'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).timezone, jsonb_typeof(p_device -> 'timezone'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).carrier, jsonb_typeof(p_device -> 'carrier'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).network, jsonb_typeof(p_device -> 'network'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).sdk_name, jsonb_typeof(p_device -> 'sdk_name'), 128)
       AND analytics_internal.fn_is_valid_text_field((p_fields).sdk_version, jsonb_typeof(p_device -> 'sdk_version'), 128)
       AND ((p_fields).screen_width IS NULL
            OR (jsonb_typeof(p_device -> 'screen_width') = 'number'
                AND (p_fields).screen_width ~ '^\d{1,6}(\.0*)?$'
                AND (p_fields).screen_width::numeric <= 100000))
       AND ((p_fields).screen_height IS NULL
            OR (jsonb_typeof(p_device -> 'screen_height') = 'number'
                AND (p_fields).screen_height ~ '^\d{1,6}(\.0*)?$'
                AND (p_fields).screen_height::numeric <= 100000))
$$;

COMMENT ON FUNCTION analytics_internal.fn_is_valid_device(jsonb, analytics_internal.tp_device_fields) IS
    'True for a device object holding only documented fields with valid values.';
