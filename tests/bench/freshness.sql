-- freshness.sql — per-row freshness from commit timestamps (track_commit_timestamp is on
-- in the benchmark's cluster, and every database is on the same machine, so one clock).
-- bench.sh passes two files (server-side COPY: the cluster's user can read them) and runs this:
--   written: (unit, disagg, t) — commit time of each row at the commune that wrote it
--   seen:    (unit, disagg, t) — commit time of the same row at the top node
-- Result: rows matched, rows written but not seen, and p50/p99/max of (seen - written) in ms.
\set ON_ERROR_STOP 1
CREATE TEMP TABLE written (unit text, disagg text, t double precision);
CREATE TEMP TABLE seen (unit text, disagg text, t double precision);
COPY written FROM :'written';
COPY seen FROM :'seen';
SELECT count(s.t) AS n,
       count(*) - count(s.t) AS missing,
       round((percentile_cont(0.50) WITHIN GROUP (ORDER BY (s.t - w.t)) * 1000)::numeric, 1) AS p50_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY (s.t - w.t)) * 1000)::numeric, 1) AS p99_ms,
       round((max(s.t - w.t) * 1000)::numeric, 1) AS max_ms
  FROM written w LEFT JOIN seen s USING (unit, disagg);
