-- 0013_tree_statistics.sql — fresh planner statistics after the unit tree is rebuilt.
--
-- `lienthong init` loads some 13,000 units and rebuilds the closure and the roll-up
-- paths in one go. Until autovacuum gets round to the new rows (on a busy server,
-- minutes later), the planner sees tables it believes empty, and the apply's cached
-- plans join the paths of thousands of communes as if there were none: a parent
-- under the whole country applied a tenth of its usual rate until then. The rebuild
-- (0002's, kept under the name lt.rebuild_unit_paths) now ends by analysing the
-- three tables it filled.

ALTER FUNCTION lt.rebuild_unit_tree() RENAME TO rebuild_unit_paths;

CREATE FUNCTION lt.rebuild_unit_tree() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lt.rebuild_unit_paths();
    ANALYZE lt.unit, lt.unit_ancestor, lt.rollup_path;
END $$;

DO $$
BEGIN
    IF to_regprocedure('lt.apply_privileges()') IS NOT NULL THEN
        PERFORM lt.apply_privileges();
    END IF;
END $$;
