-- analytics_internal.fn_is_valid_device(p_device) -> boolean
--
-- A device context (per event, or in the request context): a JSON object with only the
-- documented fields, each absent, null or valid:
--   os, os_version, model, manufacturer, app_version, app_build, locale, timezone, carrier,
--   network, sdk_name, sdk_version   non-empty strings (or numbers) of at most 128 clean chars
--   screen_width, screen_height      whole numbers from 0 to 100000
-- A fixed set, so that rollups can group by any field and SDK typos are caught, not stored.
-- Control characters are looked for once, in all the text values joined, not field by field.
-- No SET search_path and no sub-selects, so that it inlines (see fn_is_clean_text).
CREATE OR REPLACE FUNCTION analytics_internal.fn_is_valid_device(p_device jsonb)
RETURNS boolean
LANGUAGE sql
STABLE  -- concat() is only stable; an IMMUTABLE label would stop the planner from inlining this
PARALLEL SAFE
SECURITY INVOKER
AS $$
    SELECT jsonb_typeof(p_device) = 'object'
       AND (p_device - ARRAY['os', 'os_version', 'model', 'manufacturer', 'app_version', 'app_build', 'locale',
                             'timezone', 'carrier', 'network', 'sdk_name', 'sdk_version',
                             'screen_width', 'screen_height']) = '{}'::jsonb
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'os', jsonb_typeof(p_device -> 'os'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'os_version', jsonb_typeof(p_device -> 'os_version'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'model', jsonb_typeof(p_device -> 'model'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'manufacturer', jsonb_typeof(p_device -> 'manufacturer'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'app_version', jsonb_typeof(p_device -> 'app_version'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'app_build', jsonb_typeof(p_device -> 'app_build'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'locale', jsonb_typeof(p_device -> 'locale'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'timezone', jsonb_typeof(p_device -> 'timezone'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'carrier', jsonb_typeof(p_device -> 'carrier'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'network', jsonb_typeof(p_device -> 'network'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'sdk_name', jsonb_typeof(p_device -> 'sdk_name'), 128)
       AND analytics_internal.fn_is_valid_text_field(p_device ->> 'sdk_version', jsonb_typeof(p_device -> 'sdk_version'), 128)
       AND analytics_internal.fn_is_clean_text(
               concat(p_device ->> 'os', p_device ->> 'os_version', p_device ->> 'model',
                      p_device ->> 'manufacturer', p_device ->> 'app_version', p_device ->> 'app_build',
                      p_device ->> 'locale', p_device ->> 'timezone', p_device ->> 'carrier',
                      p_device ->> 'network', p_device ->> 'sdk_name', p_device ->> 'sdk_version'))
       AND analytics_internal.fn_is_screen_size(p_device -> 'screen_width')
       AND analytics_internal.fn_is_screen_size(p_device -> 'screen_height')
$$;

COMMENT ON FUNCTION analytics_internal.fn_is_valid_device(jsonb) IS
    'True for a device object holding only documented fields with valid values.';
