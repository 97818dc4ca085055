-- analytics.fn_authenticate_key(p_app, p_api_key, p_kind) -> (app_id, identifier)
--
-- Verifies that p_api_key is a live key of kind p_kind ('write' or 'read') for the app named
-- by p_app (identifier or uuid), and names the app. The public face of
-- analytics_internal.fn_authenticate, for callers that authorize an operation before calling
-- another function (the GraphQL layer's queries and subscriptions). fn_track_events checks
-- its key itself and needs no call to this.
--
--   p_app      app identifier ("app123") or uuid
--   p_api_key  the key as presented by the client
--   p_kind     'write' or 'read'
--
-- Errors (worded alike whatever was wrong, so that probing learns nothing):
--   28000  missing, unknown, revoked or other-app key
--   42501  a live key of this app, of the other kind
CREATE OR REPLACE FUNCTION analytics.fn_authenticate_key(
    p_app      text,
    p_api_key  text,
    p_kind     text,
    OUT app_id      uuid,
    OUT identifier  text)
RETURNS record
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, analytics, analytics_internal, pg_temp
AS $$
DECLARE
    v_pk_app integer := analytics_internal.fn_authenticate(p_app, p_api_key, p_kind);
BEGIN
    SELECT a.id, a.identifier INTO app_id, identifier
    FROM analytics.tb_app a
    WHERE a.pk_app = v_pk_app;
END
$$;

COMMENT ON FUNCTION analytics.fn_authenticate_key(text, text, text) IS
    'The app (uuid, identifier) that a live key of the given kind belongs to, else SQLSTATE 28000 (42501 for the wrong kind).';
