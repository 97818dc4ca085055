-- Run at the end of the transaction that re-applies sql/functions. CREATE OR REPLACE writes a
-- new pg_proc row for every routine it touches, so a routine in the package's schemas whose
-- row this transaction did not write is declared by no file any more (renamed, or an old
-- signature) and is dropped. Without CASCADE: if something still depends on it, the migration
-- stops and says what.
DO $stale$
DECLARE
    v_routine record;
BEGIN
    FOR v_routine IN
        SELECT p.oid::regprocedure AS signature,
               CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace IN ('analytics'::regnamespace, 'analytics_internal'::regnamespace)
          AND p.prokind IN ('f', 'p')
          AND p.xmin::text::bigint <> txid_current() % 4294967296
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        RAISE NOTICE 'dropping % %, which no file in sql/functions declares any more', v_routine.kind, v_routine.signature;
        EXECUTE format('DROP %s %s', v_routine.kind, v_routine.signature);
    END LOOP;
END
$stale$;
