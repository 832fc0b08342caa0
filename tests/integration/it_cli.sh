#!/usr/bin/env bash
# it_cli.sh — the officer's and operator's command against a real node database:
# init is idempotent and refuses to relabel a node; CSV import is all-or-nothing and
# names the bad line; cases with personal data; status as JSON; show-config.
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=vn2025
net_setup "$(mktemp -d /tmp/lt-cli.XXXXXX)"
net_node 07621 "" # Xã Vân Sơn (plan 003), a standalone commune
conf=$(net_conf 07621)
lt() { "$LT_BIN/lienthong" "$@"; }

out=$(lt init -c "$conf" --units vn2025 2>&1)
check "init twice is harmless ($out)" grep -q "node 07621" <<<"$out"
# the planner knows the tree init just built (0013): analysed by the rebuild itself
analysed=$(net_psql 07621 "SELECT count(*) FROM pg_stat_user_tables
                            WHERE relid IN ('lt.unit'::regclass, 'lt.unit_ancestor'::regclass, 'lt.rollup_path'::regclass)
                              AND last_analyze IS NOT NULL")
check "init leaves the unit tree's tables analysed ($analysed of 3)" test "$analysed" = 3
out=$(lt migrate -c "$conf" 2>&1)
check "migrate on an up-to-date schema applies nothing" grep -q "0 migrations applied" <<<"$out"
sed 's/^unit = 07621/unit = 07624/' "$conf" >"$NET_DIR/other.conf"
out=$(lt init -c "$NET_DIR/other.conf" 2>&1)
check "init refuses to relabel a node's database as another unit" grep -q "refusing to relabel" <<<"$out"

cat >"$NET_DIR/good.csv" <<CSV
element,period,disagg,value
PARENTS_INF,2026Q1,,120
PARENTS_INF,2026Q2,,80.5
CHILDREN_INF,2026Q1,sex=F,33
CHILDREN_INF,2026Q1,sex=M,31
CSV
out=$(lt import -c "$conf" "$NET_DIR/good.csv" 2>&1)
check "a good CSV imports every row ($out)" grep -q "imported 4 values" <<<"$out"
n=$(net_psql 07621 "SELECT total FROM lt.rollup_value WHERE element = 'CHILDREN_INF' AND period = '2026Q1' AND disagg = 'sex=F'")
check "imported values are rolled up (sex=F: $n)" test "$n" = 33

cat >"$NET_DIR/bad.csv" <<CSV
element,period,disagg,value
PARENTS_INF,2026Q3,,10
PARENTS_INF,2026Q13,,10
CSV
out=$(lt import -c "$conf" "$NET_DIR/bad.csv" 2>&1)
rc=$?
check "a CSV with a bad period fails with the line number (line 3: $out)" bash -c "[ $rc -ne 0 ] && grep -q 'line 3' <<<'$out'"
n=$(net_psql 07621 "SELECT count(*) FROM lt.data_value WHERE period = '2026Q3'")
check "... and imports nothing, not even the good line before it" test "$n" = 0
printf 'element,period,disagg,value\nNO_SUCH,2026Q1,,1\n' >"$NET_DIR/bad2.csv"
out=$(lt import -c "$conf" "$NET_DIR/bad2.csv" 2>&1)
check "an unknown element is named" grep -q 'unknown data element "NO_SUCH"' <<<"$out"

out=$(lt case -c "$conf" sex=F birth_ym=2013-04 categories=child_labour,h_dropout_work status=assessed \
    notified_at=2026-03-02T09:00:00+07 full_name='Lò Thị "Mai"' phone=0912345678 notes='tab	and newline' 2>&1)
cid=$(sed -n 's/^case //p' <<<"$out")
check "a case is written and gets a pseudonymous id ($cid)" test ${#cid} -eq 36
check "its personal data is stored at the commune, quotes intact" \
    test "$(net_psql 07621 "SELECT full_name FROM lt.case_personal WHERE case_id = '$cid'")" = 'Lò Thị "Mai"'
out=$(lt case -c "$conf" sex=X categories=at_risk 2>&1)
check "a bad case field is refused with the server's reason" grep -qi "check" <<<"$out"
out=$(lt case -c "$conf" categories=no_such_group 2>&1)
check "an unknown category is refused" grep -q "unknown case category" <<<"$out"

json=$(lt status -c "$conf" --json)
check "status --json is valid JSON" python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert 'upstream' in d and 'children' in d" "$json"
check "show-config prints the unit" bash -c "'$LT_BIN/lienthong' show-config -c '$conf' | grep -q 'node.unit = 07621'"
check "verify: consistent" lt verify -c "$conf"
out=$(lt nonsense 2>&1)
check "an unknown command gets usage and exit 2" bash -c "'$LT_BIN/lienthong' nonsense >/dev/null 2>&1; [ \$? -eq 2 ]"
check_done
