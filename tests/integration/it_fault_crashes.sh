#!/usr/bin/env bash
# it_fault_crashes.sh — machines and databases failing, on a multi-host bed in network
# namespaces (tests/lib/netns.sh: province 24, districts 223 and 216, ten communes):
#   1. kill -9 of daemons at random moments under load, and deliberately in the middle
#      of a batch apply at a district and at the province; SIGTERM in the middle of one;
#   2. the PostgreSQL of district 223 (a cluster of its own) crashed (kill -9) and later
#      stopped, under load, then restarted;
#   3. communes restored from an old backup (pg_dump, more writes, drop, restore): the
#      commune's sequence goes backwards; it must be detected, reported, and resolved
#      without loss or double counting — once when the restored commune reconnects
#      before writing, once when it writes past the parent's position first.
# Each scenario ends with every node verifying, the roll-ups equal to the ground truth
# from the commune databases, and a "# table:" line (see netns_scenario_end).
set -uo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/check.sh"

scenarios=("kill -9" "district database down" "restored from backup")
if ! netns_usable; then
    for s in "${scenarios[@]}"; do ok "$s # SKIP $NETNS_WHY"; done
    exit 0
fi

NET_ACK_TIMEOUT_MS=5000
netns_bed "$(mktemp -d /tmp/lt-faultcrash.XXXXXX)" || { not_ok "the namespace bed starts and converges"; exit 1; }
ok "a bed of $(wc -l <"$NET_DIR/topology") nodes, each daemon in its own network namespace, converges"
read -ra c223 <<<"$NETNS_C223"
read -ra c216 <<<"$NETNS_C216"

# Hold the writer lock of UNIT's database for SECONDS (hold_start), so that the next
# batch apply there stops inside its transaction, after BEGIN and the COPY, waiting in
# lt.apply_group (or lt.apply_link_batch); hold_wait waits until one does and prints the applied position of
# UNIT's children at that moment, or returns 1 if no apply came within 5 s.
hold_start() {
    net_psql "$1" "BEGIN; SELECT lt.writer_lock(); SELECT pg_sleep($2); COMMIT" >/dev/null 2>&1 &
    HOLDER=$!
}
hold_wait() {
    for _ in $(seq 1 100); do
        n=$(net_psql "$1" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                             AND wait_event_type = 'Lock'
                             AND (query LIKE '%apply_group%' OR query LIKE '%apply_link_batch%')")
        if [ "${n:-0}" -gt 0 ]; then
            net_psql "$1" "SELECT sum(last_applied_seq) FROM lt.child_link"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# ------------------------------------------------------------------ 1. kill -9
netns_scenario_begin "kill -9"
NETNS_LOAD_PAUSE=0.3 netns_load_start "${c223[@]:0:3}" "${c216[@]:0:3}"
victims=("${NET_NODES[@]}")
kills=0
end=$((SECONDS + 30))
mid=0
while [ $SECONDS -lt $end ]; do
    sleep "$((RANDOM % 3 + 1)).$((RANDOM % 10))"
    if [ $mid -lt 2 ] && [ $SECONDS -ge $((end - 22 + mid * 11)) ]; then
        # kill -9 in the middle of a batch apply: at district 223, then at the province
        v=$([ $mid = 0 ] && echo 223 || echo 24)
        mid=$((mid + 1))
        hold_start "$v" 2
        if before=$(hold_wait "$v"); then
            net_kill "$v" KILL
            kills=$((kills + 1))
            wait "$HOLDER"
            sleep 0.5
            after=$(net_psql "$v" "SELECT sum(last_applied_seq) FROM lt.child_link")
            echo "# kill -9 of $v inside a batch apply; its transaction $([ "$after" != "$before" ] && echo "committed after the daemon died (no ACK went out: the child's resend is answered as a duplicate)" || echo "rolled back")"
            ok "kill -9: $v killed inside a batch apply"
            net_start "$v"
        else
            wait "$HOLDER"
            not_ok "kill -9: caught no batch apply at $v in 5 s"
        fi
        continue
    fi
    v=${victims[$((RANDOM % ${#victims[@]}))]}
    net_kill "$v" KILL
    kills=$((kills + 1))
    sleep "0.$((RANDOM % 10))"
    net_start "$v"
done
# SIGTERM in the middle of a batch apply at 216: it stops at once, the batch is not acked
hold_start 216 3
if hold_wait 216 >/dev/null; then
    ms=$(netns_term 216)
    wait "$HOLDER"
    logged=no
    tail -3 "$NET_DIR/nodes/216.log" | grep -q "stopped" && logged=yes
    check "kill -9: SIGTERM in the middle of a batch apply stops 216 cleanly (in $ms ms, logged: $logged)" \
        test "$ms" != stuck -a "$logged" = yes
    # and says what it did: the apply abandoned on purpose, not a database failure
    stop_log=$(tac "$NET_DIR/nodes/216.log" | sed '/got SIGTERM/q' | tac)
    grep "abandoned" <<<"$stop_log" | head -1 | cut -c 26- | sed 's/^/# /'
    check "kill -9: 216's log says the apply was abandoned by the stop, not that its database was lost" \
        bash -c 'grep -q "abandoned" <<<"$1" && ! grep -q "database connection lost" <<<"$1"' _ "$stop_log"
    net_start 216
else
    wait "$HOLDER"
    not_ok "kill -9: caught no batch apply at 216 for the SIGTERM"
fi
netns_load_stop
t_heal=$(netns_now)
netns_scenario_end "kill -9" "$kills kill -9 (2 inside a batch apply) + 1 SIGTERM inside one, 30 s of writes" "$t_heal"

# ------------------------------------------------------------------ 2. district database down
netns_scenario_begin "district database down"
NETNS_LOAD_PAUSE=0.3 netns_load_start "${c223[@]}" "${c216[@]:0:2}"
sleep 4
caught=no
hold_start 223 2
hold_wait 223 >/dev/null && caught=yes
netns_pg_kill 223 # crash, in the middle of the held apply when caught
wait "$HOLDER" 2>/dev/null
t_crash=$(netns_now)
sleep 5
st=$(netns_upstream_status "${c223[0]}")
echo "# upstream status at ${c223[0]} with its district's database down: $st"
check "district database down: 223's daemon stays up without its database" net_alive 223
check "district database down: the communes of 223 keep accepting writes (outbox of ${c223[0]}: $(net_psql "${c223[0]}" "SELECT count(*) FROM lt.outbox") rows)" \
    test "$(net_psql "${c223[0]}" "SELECT count(*) FROM lt.outbox")" -gt 0
# the reason is the district's: it answers HELLO with UNAVAILABLE while its database is down
check "district database down: a commune's status shows its link to 223 stuck, and why ($(echo "$st" | grep -o '"last_error":"[^"]*"'))" \
    bash -c '[[ "$1" != *\"state\":\"streaming\"* ]] && [[ "$1" =~ \"last_error\":\"[^\"]*database\ unavailable ]]' _ "$st"
sleep 10
netns_pg_start 223 || not_ok "district database down: 223's PostgreSQL restarts after the crash"
sleep 8
netns_pg_stop 223 fast
sleep 12
netns_pg_start 223 || not_ok "district database down: 223's PostgreSQL restarts after the stop"
t_heal=$(netns_now)
sleep 3
netns_load_stop
grep -hE "database connection lost|cannot connect" "$NET_DIR/nodes/223.log" | head -2 | sed 's/^/# 223: /'
NETNS_GT_ALSO=223 netns_scenario_end "district database down" \
    "223's PostgreSQL kill -9 (inside an apply: $caught) down 15 s, then stopped 12 s, under writes" "$t_heal"

# ------------------------------------------------------------------ 3. restored from backup
# ra reconnects right after its restore, rb writes first (past the parent's position).
netns_scenario_begin "restored from backup"
ra=${c216[3]} rb=${c216[4]}
written=0
gen() { # gen UNIT ARGS: lienthong generate, counting what it wrote
    local out
    out=$(net_lt "$@") || return 1
    written=$((written + $(echo "$out" | awk '{ print $4 + $6 }')))
}
for u in "$ra" "$rb"; do
    gen "$u" generate --seed 900 --year 2024 --cases 10 # what the backup will hold
done
net_wait_converged 60 >/dev/null
for u in "$ra" "$rb"; do
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/pg_dump" -Fc --create -f "$NET_DIR/$u.dump" "n$u" \
        || not_ok "restored from backup: pg_dump of $u"
    gen "$u" generate --seed 901 --year 2024 --cases 2 # written after the backup, acked, then lost
done
net_wait_converged 60 >/dev/null
for u in "$ra" "$rb"; do
    net_kill "$u" TERM
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/dropdb" --force "n$u"
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/pg_restore" --create -d postgres "$NET_DIR/$u.dump" \
        || not_ok "restored from backup: pg_restore of $u"
done
gen "$rb" generate --seed 902 --year 2023 --months 12 --cases 3 # new keys, past the parent's position
net_start "$ra"
net_start "$rb"
sleep 5
gen "$ra" generate --seed 903 --year 2024 --cases 2 # the officer re-enters the year
t_heal=$(netns_now)
net_wait_converged 60 >/dev/null
for u in "$ra" "$rb"; do
    line=$(grep -h "restored from an older backup.*full resync" "$NET_DIR/nodes/$u.log" | tail -1)
    st=$(netns_upstream_status "$u")
    pl=$(net_psql 216 "SELECT resyncs || ' resync(s), ' || held_rows || ' rows set aside; ' || coalesce(last_error, '')
                         FROM lt.child_link WHERE child_unit = '$u'")
    echo "# $u: log: ${line:-(nothing)}"
    echo "# $u: status: $st"
    echo "# 216 about $u: ${pl:-(nothing)}"
    # reported: the commune counts a resync, the parent counts it and what it set aside on the child's link
    if [ -n "$line" ] && [[ "$st" =~ \"resyncs\":[1-9] ]] && [[ "$pl" =~ ^[1-9][0-9]*\ resync ]] \
        && [[ "$pl" == *"full resync of $u ended"* ]]; then
        ok "restored from backup: $u's backwards sequence is detected (log) and reported (status at $u and 216)"
    else
        not_ok "restored from backup: $u's backwards sequence is detected (log) and reported (status at $u and 216)"
    fi
done
for u in "$ra" "$rb"; do
    read -r l e < <(NETNS_ONLY=$u netns_lost_dup 24)
    echo "# $u after the restore: $l rows lost or stale at the province, $e rows at the province it does not have"
done
NETNS_WRITTEN=$written NETNS_GT_ALSO="223 216" NETNS_DIGESTS=1 netns_scenario_end "restored from backup" \
    "2 communes restored from a pg_dump taken 1 generate earlier; one writes before reconnecting" "$t_heal"

check_done
