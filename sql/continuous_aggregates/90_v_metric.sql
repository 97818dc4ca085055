-- analytics.v_metric: the seed's metric rows as JSON documents, over analytics.ca_event_daily.
CREATE OR REPLACE VIEW analytics.v_metric AS
SELECT k.id,
       jsonb_build_object(
           'id', k.id::text,
           'metric_type', k.metric_type,
           'value', k.value,
           'dimension', k.dimension,
           'date', k.date) AS data,
       k.fk_app
FROM (SELECT md5(concat_ws('|', m.fk_app, m.date, m.metric_type, m.dimension))::uuid AS id,
             m.*
      FROM (SELECT d.fk_app,
                   (d.bucket AT TIME ZONE 'UTC')::date AS date,
                   c.metric_type,
                   d.os AS dimension,
                   sum(c.value) AS value
            FROM analytics.ca_event_daily d
            -- as analytics.fn_metrics: <event_type>_count, and crash_count for crash + app_crash
            CROSS JOIN LATERAL (SELECT d.event_type || '_count', d.event_count WHERE d.event_type <> 'crash'
                                UNION ALL
                                SELECT 'crash_count', d.crash_count WHERE d.crash_count > 0) AS c(metric_type, value)
            GROUP BY d.fk_app, d.bucket, c.metric_type, d.os) m) k;

COMMENT ON VIEW analytics.v_metric IS
    'Seed-compatible metrics: one row per app, UTC day, metric and os, as {id, metric_type, value, dimension (the os), '
    'date}; metrics are <event_type>_count and crash_count (crash + app_crash) as in fn_metrics; id is stable for '
    'that key. Real time, from analytics.ca_event_daily.';
