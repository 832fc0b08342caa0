#!/usr/bin/env bash
# it_crash.sh — kill -9 of commune, district and province daemons, and of PostgreSQL
# itself, while communes keep writing; everything restarted. Afterwards nothing is
# lost and nothing counted twice: the province's roll-ups equal the ground truth from
# the commune databases, every node verifies, and every commune's leaf rows are at the
# province unchanged (ARCHITECTURE §4, guarantees 1-3).
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=vn2024
NET_ACK_TIMEOUT_MS=3000
net_setup "$(mktemp -d /tmp/lt-crash.XXXXXX)"
net_node 24 ""
for d in 223 216; do
    net_node "$d" 24
    for c in $(net_units_of 3 "$d" | head -3); do net_node "$c" "$d"; done
done
net_start_all
communes=($(net_communes))
victims=(24 223 216 "${communes[@]}")

# writers: each commune rewrites its year (new versions of the same rows) and adds cases
writer() {
    local c=$1 end=$((SECONDS + ${CRASH_SECONDS:-25})) i=0
    while [ $SECONDS -lt $end ]; do
        i=$((i + 1))
        net_lt "$c" generate --seed "$((i * 31 + ${#c}))" --year 2024 --cases 2 >/dev/null 2>&1 || true
        net_lt "$c" set PARENTS_INF 2024Q4 "$i" >/dev/null 2>&1 || true
    done
}
for c in "${communes[@]}"; do writer "$c" & done

kills=0
pg_kills=0
end=$((SECONDS + ${CRASH_SECONDS:-25}))
while [ $SECONDS -lt $end ]; do
    sleep "0.$((RANDOM % 9 + 1))"
    v=${victims[$((RANDOM % ${#victims[@]}))]}
    net_kill "$v" KILL
    kills=$((kills + 1))
    sleep "0.$((RANDOM % 5))"
    net_start "$v"
    if [ $pg_kills -eq 0 ] && [ $SECONDS -ge $((end - ${CRASH_SECONDS:-25} / 2)) ]; then
        # PostgreSQL itself, under everyone
        pg_kill "$NET_DIR/pg"
        sleep 0.5
        pg_restart "$NET_DIR/pg"
        pg_kills=1
    fi
done
wait
echo "# killed daemons $kills times (kill -9) and PostgreSQL $pg_kills time(s) during $((${CRASH_SECONDS:-25})) s of writes"
for u in "${NET_NODES[@]}"; do net_alive "$u" || net_start "$u"; done

check "network converges after $kills daemon kills and $pg_kills PostgreSQL kill" net_wait_converged 120
check "no loss, no double counting: province roll-ups equal the ground truth" net_ground_truth 24
check "district 216 roll-ups equal the ground truth of its communes" net_ground_truth 216
check "verify passes at every node" net_verify_all
check "every commune's leaf rows are at the province, identical" net_digests_match 24
for c in "${communes[@]}"; do
    mine=$(net_psql "$c" "SELECT value FROM lt.data_value WHERE element = 'PARENTS_INF' AND period = '2024Q4'")
    theirs=$(net_psql 24 "SELECT value FROM lt.data_value WHERE unit_code = '$c' AND element = 'PARENTS_INF' AND period = '2024Q4'")
    [ "$mine" = "$theirs" ] || not_ok "latest write of $c reached the province ($mine vs $theirs)"
done
ok "the latest write of every commune is the province's value"
dups=$(grep -h "stats: down" "$NET_DIR"/nodes/24.log | tail -1)
echo "# province: $dups"
check_done
