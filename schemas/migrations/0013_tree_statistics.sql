-- 0013_tree_statistics.sql — fresh planner statistics after the unit tree is rebuilt.
--
-- `lienthong init` loads some 13,000 units and rebuilds the closure and the roll-up
-- paths in one go. Until autovacuum gets round to the new rows (on a busy server,
-- minutes later), the planner sees tables it believes empty, and the apply's cached
-- plans join the paths of thousands of communes as if there were none: a parent
-- under the whole country applied a tenth of its usual rate until then. The rebuild
-- now ends by analysing the three tables it filled.

CREATE OR REPLACE FUNCTION lt.rebuild_unit_tree() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    me text := (SELECT unit_code FROM lt.node);
BEGIN
    TRUNCATE lt.unit_ancestor, lt.rollup_path;
    INSERT INTO lt.unit_ancestor (descendant, ancestor, depth, valid_from, valid_to)
    WITH RECURSIVE up AS (
        SELECT u.code AS descendant, u.code AS ancestor, 0 AS depth,
               u.valid_from, u.valid_to, u.parent_code
          FROM lt.unit u
        UNION ALL
        SELECT up.descendant, p.code, up.depth + 1,
               greatest(up.valid_from, p.valid_from), least(up.valid_to, p.valid_to), p.parent_code
          FROM up
          JOIN lt.unit p ON p.code = up.parent_code
                        AND p.valid_from < up.valid_to AND up.valid_from < p.valid_to
         WHERE up.depth < 6
    )
    SELECT descendant, ancestor, depth, valid_from, valid_to FROM up
    ON CONFLICT DO NOTHING;

    -- ancestors of d at depth <= the depth of this node above d, in the common window
    INSERT INTO lt.rollup_path (descendant, ancestor, valid_from, valid_to)
    SELECT a.descendant, a.ancestor,
           greatest(a.valid_from, m.valid_from), least(a.valid_to, m.valid_to)
      FROM lt.unit_ancestor m
      JOIN lt.unit_ancestor a ON a.descendant = m.descendant AND a.depth <= m.depth
                             AND a.valid_from < m.valid_to AND m.valid_from < a.valid_to
     WHERE m.ancestor = me
    ON CONFLICT DO NOTHING;

    ANALYZE lt.unit, lt.unit_ancestor, lt.rollup_path;
END $$;
