-- 0012_rollup_below.sql — value roll-ups store only what comes from below.
--
-- The value roll-up of a unit U is the sum, per (element, period, disaggregation), of
-- the leaf rows of every unit of U's subtree, U's own rows included. U's own part is a
-- single leaf row (the leaf table has the same key), so storing it again as a roll-up
-- row wrote a second row and index entry for every leaf row, at every level, for
-- nothing: at a parent applying a child's batch it was a fifth of the work.
--
-- Now lt.rollup_value_below keeps the sums over the units strictly below U, maintained
-- by the same statement triggers, and lt.rollup_value is a view adding U's own row.
-- Readers see the same relation as before (same columns, same meaning); verify still
-- recomputes everything from the leaf rows and compares it with the view. The case
-- roll-ups are unchanged: a unit's own cases are counted, not copied.

ALTER TABLE lt.rollup_value RENAME TO rollup_value_below;
ALTER INDEX lt.rollup_value_pkey RENAME TO rollup_value_below_pkey;
COMMENT ON TABLE lt.rollup_value_below IS
    'Value roll-ups over the units strictly below each unit; lt.rollup_value adds the unit''s own row';

-- what was stored for each unit's own rows goes; what came from below stays
WITH own AS (
    SELECT d.unit_code, d.element, d.period, d.disagg, sum(d.value) AS total, count(*) AS n
      FROM lt.data_value d
      JOIN lt.rollup_path p ON p.descendant = d.unit_code AND p.ancestor = d.unit_code
                           AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
     WHERE d.value IS NOT NULL
     GROUP BY 1, 2, 3, 4)
UPDATE lt.rollup_value_below r
   SET total = trim_scale(r.total - own.total), n_rows = r.n_rows - own.n
  FROM own
 WHERE (r.unit_code, r.element, r.period, r.disagg) = (own.unit_code, own.element, own.period, own.disagg);
DELETE FROM lt.rollup_value_below WHERE n_rows = 0 AND total = 0;

CREATE VIEW lt.rollup_value AS
SELECT x.unit_code, x.element, x.period, x.disagg, trim_scale(sum(x.total)) AS total,
       sum(x.n_rows)::bigint AS n_rows, max(x.updated_at) AS updated_at
  FROM (SELECT b.unit_code, b.element, b.period, b.disagg, b.total, b.n_rows, b.updated_at
          FROM lt.rollup_value_below b
        UNION ALL
        SELECT d.unit_code, d.element, d.period, d.disagg, d.value, 1, d.received_at
          FROM lt.data_value d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code AND p.ancestor = d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
         WHERE d.value IS NOT NULL) x
 GROUP BY x.unit_code, x.element, x.period, x.disagg;
COMMENT ON VIEW lt.rollup_value IS
    'Value roll-ups: per unit of this node''s subtree, the sum of its own leaf row and of everything below it';

-- the officers' view was bound to the table: bind it to the view (same text as 0007)
CREATE OR REPLACE VIEW lt_report.element_value AS
SELECT v.unit_code, p.code AS period, p.period_type, v.element, v.disagg, e.aggregation,
       CASE e.aggregation
           WHEN 'sum' THEN sum(v.total)
           WHEN 'max' THEN max(v.total)
           WHEN 'min' THEN min(v.total)
           ELSE (array_agg(v.total ORDER BY v.sp_end DESC, v.sp_start DESC))[1]
       END AS value,
       count(*) AS periods_used,
       max(v.updated_at) AS freshness
  FROM (SELECT r.unit_code, r.element, r.period, ''::text AS disagg, sum(r.total) AS total,
               max(r.updated_at) AS updated_at, lt.period_start(r.period) AS sp_start, lt.period_end(r.period) AS sp_end
          FROM lt.rollup_value r
          JOIN lt.data_element e ON e.code = r.element
         WHERE r.n_rows > 0
           AND (r.disagg = '' OR split_part(r.disagg, '=', 1) = e.disaggregation)
           AND (e.period_type IS NULL OR lt.period_type(r.period) = e.period_type)
         GROUP BY r.unit_code, r.element, r.period
        UNION ALL
        SELECT r.unit_code, r.element, r.period, r.disagg, r.total, r.updated_at,
               lt.period_start(r.period), lt.period_end(r.period)
          FROM lt.rollup_value r
          JOIN lt.data_element e ON e.code = r.element
         WHERE r.n_rows > 0
           AND split_part(r.disagg, '=', 1) = e.disaggregation
           AND (e.period_type IS NULL OR lt.period_type(r.period) = e.period_type)) v
  JOIN lt.data_element e ON e.code = v.element
  JOIN lt.period p ON CASE WHEN e.aggregation = 'last'
                           THEN v.sp_start <= p.end_date AND v.sp_end >= p.start_date
                           ELSE v.sp_start >= p.start_date AND v.sp_end <= p.end_date END
 GROUP BY v.unit_code, p.code, p.period_type, v.element, v.disagg, e.aggregation;

-- ---------------------------------------------------------------- triggers
-- As in 0002 and 0009, over the paths to strict ancestors only (depth 0 is the row itself).
CREATE OR REPLACE FUNCTION lt.data_value_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lt.writer_lock();
    IF TG_OP = 'INSERT' THEN
        INSERT INTO lt.rollup_value_below AS r (unit_code, element, period, disagg, total, n_rows, updated_at)
        SELECT p.ancestor, d.element, d.period, d.disagg, sum(d.value), count(*), now()
          FROM new_rows d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code AND p.ancestor <> d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
         WHERE d.value IS NOT NULL
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
           SET total = trim_scale(r.total + EXCLUDED.total),
               n_rows = r.n_rows + EXCLUDED.n_rows,
               updated_at = EXCLUDED.updated_at;
    ELSE
        INSERT INTO lt.rollup_value_below AS r (unit_code, element, period, disagg, total, n_rows, updated_at)
        SELECT p.ancestor, d.element, d.period, d.disagg, sum(d.dv), sum(d.dn), now()
          FROM (SELECT unit_code, element, period, disagg, ref_date, value AS dv, 1 AS dn
                  FROM new_rows WHERE value IS NOT NULL
                UNION ALL
                SELECT unit_code, element, period, disagg, ref_date, -value, -1
                  FROM old_rows WHERE value IS NOT NULL) d
          JOIN lt.rollup_path p ON p.descendant = d.unit_code AND p.ancestor <> d.unit_code
                               AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
         GROUP BY 1, 2, 3, 4
         ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
           SET total = trim_scale(r.total + EXCLUDED.total),
               n_rows = r.n_rows + EXCLUDED.n_rows,
               updated_at = EXCLUDED.updated_at;
    END IF;

    IF (SELECT has_parent FROM lt.node) THEN
        INSERT INTO lt.outbox (kind, row_id) SELECT 1, id FROM new_rows ORDER BY id;
        PERFORM pg_notify('lt_outbox', '');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION lt.data_value_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lt.rollup_value_below AS r (unit_code, element, period, disagg, total, n_rows, updated_at)
    SELECT p.ancestor, d.element, d.period, d.disagg, -sum(d.value), -count(*), now()
      FROM old_rows d
      JOIN lt.rollup_path p ON p.descendant = d.unit_code AND p.ancestor <> d.unit_code
                           AND d.ref_date >= p.valid_from AND d.ref_date < p.valid_to
     WHERE d.value IS NOT NULL
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    ON CONFLICT (unit_code, element, period, disagg) DO UPDATE
       SET total = trim_scale(r.total + EXCLUDED.total),
           n_rows = r.n_rows + EXCLUDED.n_rows,
           updated_at = EXCLUDED.updated_at;
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF to_regprocedure('lt.apply_privileges()') IS NOT NULL THEN
        PERFORM lt.apply_privileges();
    END IF;
END $$;
