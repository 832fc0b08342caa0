#!/usr/bin/env bash
# it_flow.sh — three tiers on the 2024 geography (province 24, districts 223 and 216,
# three real communes each): data written at the communes reaches the province; the
# province's roll-ups equal a ground truth computed from the commune databases; every
# node verifies; leaf rows at the province equal the communes'; a commune that was
# offline while it kept writing catches up; deletions (tombstones) travel.
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=vn2024
net_setup "$(mktemp -d /tmp/lt-flow.XXXXXX)"
net_node 24 ""
for d in 223 216; do
    net_node "$d" 24
    for c in $(net_units_of 3 "$d" | head -3); do net_node "$c" "$d"; done
done
net_start_all
communes=$(net_communes)

i=0
for c in $communes; do
    i=$((i + 1))
    net_lt "$c" generate --seed "$i" --year 2024 --cases 10 >/dev/null || not_ok "generate at $c"
done
check "network of $(wc -l <"$NET_DIR/topology") nodes converges after writes at $(echo $communes | wc -w) communes" \
    net_wait_converged 60
check "province roll-ups equal the ground truth computed from the commune databases" net_ground_truth 24
check "district 223 roll-ups equal the ground truth of its communes" net_ground_truth 223
check "verify passes at every node" net_verify_all
check "every commune's leaf rows are at the province, identical (digest)" net_digests_match 24

# the unit tree decides where a value counts: the province sees each district
n=$(net_psql 24 "SELECT count(DISTINCT unit_code) FROM lt.rollup_value WHERE element = 'POP_CHILD_U16' AND period = '2024'")
check "province has POP_CHILD_U16 roll-ups for itself, 2 districts and 6 communes (got $n)" test "$n" = 9

# offline commune keeps writing, then catches up
off=$(echo $communes | cut -d' ' -f1)
net_kill "$off" KILL
net_lt "$off" generate --seed 77 --year 2024 --rounds 4 --cases 5 >/dev/null
net_lt "$off" set PARENTS_INF 2024Q4 4242 >/dev/null
backlog=$(net_psql "$off" "SELECT count(*) FROM lt.outbox")
check "offline commune $off queues its writes in its outbox ($backlog rows)" test "$backlog" -gt 100
net_start "$off"
check "offline commune catches up after reconnect" net_wait_converged 60
check "after catch-up: province roll-ups equal the ground truth" net_ground_truth 24
v=$(net_psql 24 "SELECT value FROM lt.data_value WHERE unit_code = '$off' AND element = 'PARENTS_INF' AND period = '2024Q4'")
check "the last value written offline is at the province (4242, got $v)" test "$v" = 4242

# a deletion travels as a tombstone and leaves the roll-ups
net_lt "$off" delete PARENTS_INF 2024Q4 >/dev/null
net_wait_converged 30
v=$(net_psql 24 "SELECT coalesce(value::text, 'deleted') FROM lt.data_value WHERE unit_code = '$off' AND element = 'PARENTS_INF' AND period = '2024Q4'")
check "a deleted value is a tombstone at the province (got $v)" test "$v" = deleted
check "after the deletion: province roll-ups equal the ground truth" net_ground_truth 24
check "verify passes at every node after catch-up and deletion" net_verify_all
check "digests still match" net_digests_match 24
# personal data: present at the commune (the control), absent from every upstream database
c1=$(echo $communes | cut -d' ' -f2)
# every table but the public unit list (which has a Xã Tam Thôn Hiệp)
dump() { PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/pg_dump" --data-only -T lt.unit "$(net_db "$1")"; }
phone=$(net_psql "$c1" "SELECT phone FROM lt.case_personal LIMIT 1")
name=$(net_psql "$c1" "SELECT full_name FROM lt.case_personal LIMIT 1")
check "control: the commune's dump holds its cases' personal data ($name, $phone)" bash -c "[ -n '$phone' ] && $(declare -f dump); NET_DIR=$NET_DIR PG_BIN=$PG_BIN; $(declare -f net_db); dump $c1 | grep -q 'Ghi chú riêng'"
for up in 223 216 24; do
    leaked=$(dump "$up" | grep -c -e "$phone" -e 'Ghi chú riêng' -e 'Thôn ' || true)
    check "no personal data (names, phones, addresses, notes) in the $up database (matches: $leaked)" test "$leaked" = 0
done
check_done
