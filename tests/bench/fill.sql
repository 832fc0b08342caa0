-- fill.sql — :n leaf rows of commune :'unit' written in ONE statement, the way the
-- benchmark makes a large outbox quickly: the leaf table's statement trigger fills
-- the commune's roll-ups and its outbox exactly as for any other write. Keys are
-- distinct (element x period of :'year' x disagg "b=N"), so every row is a new leaf
-- row at the parent and two new roll-up rows per tier above (no collapsing).
--   psql -v unit=07816 -v n=200000 -v year=2024 -f fill.sql
INSERT INTO lt.data_value (unit_code, element, period, disagg, value, version, changed_at)
SELECT :'unit', e.code, p.period, 'b=' || g, g % 1000, 1, date_trunc('milliseconds', now())
  FROM lt.data_element e,
       (SELECT :'year' || x AS period
          FROM unnest(ARRAY['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12',
                            'Q1', 'Q2', 'Q3', 'Q4', 'S1', 'S2', '']) x) p,
       generate_series(1, ceil(:n / (19.0 * (SELECT count(*) FROM lt.data_element)))::int) g
 LIMIT :n;
