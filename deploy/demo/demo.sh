#!/usr/bin/env bash
# demo.sh — `make demo`: a real slice of a real province as a local lienthong network.
#
#   three tiers (default): Tỉnh Bắc Giang (24) on the 2024 geography, with Huyện Hiệp Hòa
#     (223) and Huyện Tân Yên (216) and every commune of both (plan 004's places);
#   two tiers (--tiers 2): Tỉnh Bắc Ninh (24) on the 2025 geography with all its communes
#     (plan 003's place).
#
# One throwaway PostgreSQL cluster holds one database per node; one lienthongd per node
# talks ZeroMQ on 127.0.0.1. Synthetic data is written at every commune; the demo waits
# until the province has caught up, prints the province's roll-ups and the links'
# status, and keeps the network running until Ctrl-C, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LT_ROOT=$PWD

tiers=3
while [ $# -gt 0 ]; do
    case $1 in
    --tiers) tiers=$2; shift 2 ;;
    --exit) LT_DEMO_EXIT=1; shift ;;
    *) echo "usage: demo.sh [--tiers 2|3] [--exit]" >&2; exit 2 ;;
    esac
done
[ "$tiers" = 2 ] || [ "$tiers" = 3 ] || { echo "demo: --tiers is 2 or 3" >&2; exit 2; }

. tests/lib/net.sh
dir=${LT_DEMO_DIR:-/tmp/lienthong-demo}
rm -rf "$dir"
net_setup "$dir"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

if [ "$tiers" = 3 ]; then
    NET_UNITS=vn2024
    year=2024
    say "Three tiers, 2024 geography: Tỉnh Bắc Giang (24) → Huyện Hiệp Hòa (223), Huyện Tân Yên (216) → their communes"
    net_node 24 ""
    for d in 223 216; do
        net_node "$d" 24
        for c in $(net_units_of 3 "$d"); do net_node "$c" "$d"; done
    done
else
    NET_UNITS=vn2025
    year=2026
    say "Two tiers, 2025 geography: Tỉnh Bắc Ninh (24) → its communes"
    net_node 24 ""
    for c in $(net_units_of 2 24); do net_node "$c" 24; done
fi
ncommunes=$(net_communes | wc -l)
echo "nodes: $(wc -l <"$NET_DIR/topology") ($ncommunes communes), one PostgreSQL database and one lienthongd each"
# the province and districts first; the communes write while their daemons are down,
# so the catch-up below is measured on a full backlog
for u in "${NET_NODES[@]}"; do [ ${#u} -lt 5 ] && net_start "$u"; done

say "Loading the metadata catalogue at the province (indicators, targets, deadlines, holidays); it flows down"
net_lt 24 meta load schemas/catalog | tail -1

say "Writing synthetic data at every commune (a year of indicators and cases, with personal data that stays local)"
i=0
for c in $(net_communes); do
    i=$((i + 1))
    echo "$c $i"
done | xargs -P 4 -n 2 sh -c 'LT_ROOT='"$LT_ROOT"' "'"$LT_BIN"'/lienthong" generate -c "'"$NET_DIR"'/nodes/$0.conf" --seed "$1" --year '"$year"' --cases 12 >/dev/null'
rows=0
for c in $(net_communes); do rows=$((rows + $(net_psql "$c" "SELECT count(*) FROM lt.outbox"))); done
echo "$rows deltas queued in the communes' outboxes"

say "Starting the $ncommunes commune daemons; waiting for the province to catch up"
t0=$(date +%s.%N)
for c in $(net_communes); do net_start "$c"; done
net_wait_converged 300
t1=$(date +%s.%N)
printf 'province caught up %.1f s after the communes came online (%d deltas through %d tiers)\n' \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$rows" "$tiers"

say "Communes submit their annual reports (most of them; completeness below)"
# the catalogue (data sets, deadlines) reached the communes while they caught up
for c in $(net_communes); do
    for _ in $(seq 1 100); do
        [ "$(net_psql "$c" "SELECT count(*) FROM lt.data_set")" -gt 0 ] && break
        sleep 0.3
    done
done
i=0
submitted=0
for c in $(net_communes); do
    i=$((i + 1))
    [ $((i % 7)) -eq 3 ] && continue
    net_psql "$c" "SELECT lt.submit('CL_ANNUAL', '$year')" >/dev/null && submitted=$((submitted + 1))
done
echo "$submitted of $ncommunes communes submitted CL_ANNUAL for $year"
net_wait_converged 120

say "Roll-ups at the province (computed in its own database), $year"
net_psql 24 "
WITH u AS (
    SELECT DISTINCT ON (a.descendant) a.descendant AS code, a.depth, n.name,
           (SELECT p.ancestor FROM lt.unit_ancestor p WHERE p.descendant = a.descendant AND p.depth = 1
             AND p.valid_from <= make_date($year, 12, 31) AND p.valid_to > make_date($year, 12, 31) LIMIT 1) AS parent
      FROM lt.unit_ancestor a JOIN lt.unit n ON n.code = a.descendant
       AND n.valid_from <= make_date($year, 12, 31) AND n.valid_to > make_date($year, 12, 31)
     WHERE a.ancestor = '24' AND a.valid_from <= make_date($year, 12, 31) AND a.valid_to > make_date($year, 12, 31)
     ORDER BY a.descendant, a.depth),
v AS (SELECT unit_code, element, sum(total) AS t FROM lt.rollup_value
       WHERE period = '$year' OR period LIKE '${year}Q%' OR period LIKE '${year}__' GROUP BY 1, 2),
c AS (SELECT unit_code, category, sum(n) AS n FROM lt.rollup_case WHERE period LIKE '$year%' GROUP BY 1, 2)
SELECT rpad(repeat('  ', u.depth) || u.code || ' ' || u.name, 40) AS \"unit\",
       lpad(coalesce((SELECT t FROM v WHERE v.unit_code = u.code AND element = 'POP_CHILD_U16'), 0)::text, 7) AS \"children\",
       lpad(coalesce((SELECT n FROM c WHERE c.unit_code = u.code AND category = 0), 0)::text, 6) AS \"cases\",
       lpad(coalesce((SELECT n FROM c WHERE c.unit_code = u.code AND category = 1), 0)::text, 7) AS \"at risk\",
       lpad(coalesce((SELECT n FROM c WHERE c.unit_code = u.code AND category = 2), 0)::text, 7) AS \"labour\",
       lpad(coalesce((SELECT n FROM c WHERE c.unit_code = u.code AND category = 3), 0)::text, 10) AS \"trafficked\",
       lpad(coalesce(round(100.0 * (SELECT t FROM v WHERE v.unit_code = u.code AND element = 'PARENTS_INF')
                    / nullif((SELECT t FROM v WHERE v.unit_code = u.code AND element = 'PARENTS'), 0), 1)::text, '-'), 8)
         AS \"parents informed %\",
       lpad(coalesce(round(1000.0 * (SELECT t FROM v WHERE v.unit_code = u.code AND element = 'CHILD_INJURIES')
                    / nullif((SELECT t FROM v WHERE v.unit_code = u.code AND element = 'POP_CHILD_U16'), 0), 1)::text, '-'), 8)
         AS \"injuries /1000\"
  FROM u
 WHERE EXISTS (SELECT 1 FROM lt.rollup_value r WHERE r.unit_code = u.code)
    OR EXISTS (SELECT 1 FROM lt.rollup_case r WHERE r.unit_code = u.code)
 ORDER BY coalesce(CASE WHEN u.depth = 2 THEN u.parent END, u.code), u.depth, u.code" \
    | sed 's/|/ │ /g' | awk 'NR == 1 { print "unit                                     │ children │ cases  │ at risk │ labour  │ trafficked │ parents informed % │ injuries /1000" } { print }'
echo "(ratios are sum(numerator) / sum(denominator) over each unit's subtree, never averages)"

say "Indicators against targets at the province (lienthong report; --depth 1 adds every district)"
net_lt 24 report --period "$year" --no-children >"$NET_DIR/report.txt" 2>&1 || true
head -60 "$NET_DIR/report.txt"
say "Reporting completeness at the province (lienthong completeness)"
net_lt 24 completeness --period "$year" --data-set CL_ANNUAL >"$NET_DIR/completeness.txt" 2>&1 || true
head -30 "$NET_DIR/completeness.txt"

say "Sync status at the province"
net_lt 24 status >"$NET_DIR/status.txt" 2>&1 || true
sed -n '/child links/,/refused/p' "$NET_DIR/status.txt"
say "verify at the province"
net_lt 24 verify
if [ "$tiers" = 3 ]; then
    say "verify at district 223"
    net_lt 223 verify
fi

if [ -n "${LT_DEMO_EXIT:-}" ]; then exit 0; fi
say "The network is running. Try:"
echo "  build/lienthong set -c $NET_DIR/nodes/$(net_communes | head -1).conf PARENTS_INF ${year}Q4 99"
echo "  build/lienthong status -c $NET_DIR/nodes/24.conf"
echo "  build/lienthong rollup -c $NET_DIR/nodes/24.conf --element PARENTS_INF --depth 1"
echo "  psql 'host=$NET_DIR/pg/sock user=lt dbname=n24' -c 'SELECT * FROM lt.rollup_case LIMIT 5'"
echo "Ctrl-C stops every daemon and the PostgreSQL cluster."
while :; do sleep 3600; done
