#!/usr/bin/env bash
# it_fault_links.sh — faults of the network itself, on a multi-host bed in network
# namespaces (tests/lib/netns.sh: province 24, districts 223 and 216, ten communes):
#   1. a commune's link cut for 40 s (and a district's for 20 s) while communes write;
#   2. 20 % packet loss both ways and 300 ms of added round-trip time on several links,
#      one link rate-limited, under load; the network must drain through the faults;
#   3. the province down for 60 s: districts and communes keep accepting writes, the
#      outboxes grow on disk, daemon memory stays flat, everything drains after; on
#      the way, SIGTERM, SIGHUP reload and the reconnect back-off are observed.
# Each scenario ends with every node verifying, the roll-ups equal to the ground truth
# from the commune databases, and a "# table:" line (see netns_scenario_end).
set -uo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/check.sh"

scenarios=("link cut" "loss and latency" "province down")
if ! netns_usable; then
    for s in "${scenarios[@]}"; do ok "$s # SKIP $NETNS_WHY"; done
    exit 0
fi

NET_ACK_TIMEOUT_MS=5000
netns_bed "$(mktemp -d /tmp/lt-faultnet.XXXXXX)" || { not_ok "the namespace bed starts and converges"; exit 1; }
ok "a bed of $(wc -l <"$NET_DIR/topology") nodes, each daemon in its own network namespace, converges"
read -ra c223 <<<"$NETNS_C223"
read -ra c216 <<<"$NETNS_C216"

# ------------------------------------------------------------------ 1. link cut
netns_scenario_begin "link cut"
victim=${c223[0]}
netns_load_start "$victim" "${c223[1]}" "${c216[2]}" "${c216[3]}"
sleep 3
quiet=${c223[4]} # cut too, without writers: what its daemon does to its database meanwhile
netns_cut "$victim"
netns_cut "$quiet"
t_cut=$(netns_now)
sleep 5
x0=$(net_psql "$quiet" "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
sleep 5
x1=$(net_psql "$quiet" "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
tps=$(((x1 - x0) / 5))
# no HELLO (and no database read for one) without a connection to say it over: what
# remains is the periodic link-state write
check "link cut: $quiet, cut off and idle, leaves its database alone ($tps transactions/s: link state only)" \
    test "$tps" -le 2
netns_cut 216
sleep 10
# the operator's view: which link is stuck, and why
st_child=$(net_lt "$victim" status --json)
st_parent=$(net_lt 223 status --json)
echo "# status at $victim during the cut: $st_child"
echo "# status at 223 during the cut: $st_parent"
state=$(echo "$st_child" | grep -o '"state" *: *"[^"]*"' | head -1)
err=$(echo "$st_child" | grep -o '"last_error" *: *"[^"]*"' | head -1)
rows=$(net_psql "$victim" "SELECT count(*) FROM lt.outbox")
if [[ "$state" != *streaming* ]] && [[ "$err" =~ :\ *\"[^\"]+\" ]] && [ "$rows" -gt 0 ]; then
    ok "link cut: the commune's status names its stuck link ($state, $err, $rows rows waiting)"
else
    not_ok "link cut: the commune's status names its stuck link (got $state, $err, $rows rows waiting)"
fi
age=$(net_psql 223 "SELECT round(extract(epoch FROM now() - last_contact)) FROM lt.child_link WHERE child_unit = '$victim'")
others=$(net_psql 223 "SELECT max(round(extract(epoch FROM now() - last_contact))) FROM lt.child_link WHERE child_unit NOT IN ('$victim', '$quiet')")
check "link cut: the district sees which child went silent ($victim: ${age} s, others at most ${others} s)" \
    test "${age:-0}" -ge 12 -a "${others:-99}" -le 6
lstate=$(net_psql 223 "SELECT state FROM lt.child_link WHERE child_unit = '$victim'")
nsilent=$(net_psql 223 "SELECT count(*) FROM lt.child_link WHERE state = 'silent' AND child_unit NOT IN ('$victim', '$quiet')")
check "link cut: the district marks the cut child's link silent ($victim: $lstate; $nsilent others silent)" \
    test "$lstate" = silent -a "$nsilent" = 0
netns_uncut 216
sleep 15
netns_uncut "$victim"
netns_uncut "$quiet"
t_heal=$(netns_now)
cut_s=$(netns_since "$t_cut")
netns_load_stop
netns_scenario_end "link cut" "communes $victim and $quiet cut ${cut_s%.*} s, district 216 cut 20 s" "$t_heal"

# ------------------------------------------------------------------ 2. loss and latency
# 20 % loss both ways on two communes of 216, on 216's own uplink and on a commune of
# 223; 150 ms each way (300 ms round trip) added by the relays on 216's links; one
# commune of 223 held to 64 kbit/s (a rural 2G link). Communes write for about 40 s; a
# lossy commune and the slow one are first cut for about 20 s (the slow one imports
# cases meanwhile), so that their backlogs must drain through the bad links.
netns_scenario_begin "loss and latency"
lossy=("${c216[0]}" "${c216[1]}" 216 "${c223[2]}")
slow=${c223[3]}
declare -A rt0
for u in "${lossy[@]}"; do rt0[$u]=$(netns_retrans "$u"); netns_loss "$u" 20; done
for u in "${c216[0]}" "${c216[1]}" 216; do netns_delay "$u" 150; done
netns_slow "$slow" 64kbit
netns_cut "${c216[0]}"
netns_cut "$slow"
NETNS_LOAD_PAUSE=0.5 netns_load_start "${c216[0]}" "${c216[1]}" "${c216[4]}" "${c223[2]}" "$slow"
for k in 1 2 3; do # the slow commune also imports a month of cases while cut off
    net_lt "$slow" generate --seed "$((700 + k))" --year 2023 --cases 30 >/dev/null
done
sleep 15
backlog=$(net_psql "${c216[0]}" "SELECT count(*) FROM lt.outbox")
backlog_slow=$(net_psql "$slow" "SELECT count(*) FROM lt.outbox")
netns_uncut "${c216[0]}"
netns_uncut "$slow"
sleep 15
netns_load_stop
t_load=$(netns_now)
silent0=$(grep -c "parent silent" "$NET_DIR/nodes/$slow.log")
# Draining through 20 % loss both ways is TCP's retransmission back-off more than ours:
# 3.3-11.8 s in eight runs here, longer now and then. The bound only separates "drains"
# from "stuck"; the time is reported, not asserted (make bench measures speed).
t_from=$t_load drained="drained under the faults"
if net_wait_converged 90; then
    ok "loss and latency: the backlogs (${backlog} rows at ${c216[0]}, ${backlog_slow} at $slow after their cuts) drain through the faulty links ($(netns_since "$t_load") s)"
else
    not_ok "loss and latency: the backlogs (${backlog} rows at ${c216[0]}, ${backlog_slow} at $slow after their cuts) drain through the faulty links in 90 s"
    netns_explain
    netns_explain_logs 25
    t_from= drained="NOT drained in 90 s under the faults; timed from healing"
fi
echo "# $slow at 64 kbit/s: $(($(grep -c "parent silent" "$NET_DIR/nodes/$slow.log") - silent0)) times 'parent silent' while draining;" \
    "$(grep -h "stats: up" "$NET_DIR/nodes/$slow.log" | tail -1 | cut -c 26-)"
grep -h "batches now at most" "$NET_DIR/nodes/$slow.log" | tail -1 | sed "s/^/# $slow: /"
rt=
for u in "${lossy[@]}"; do rt="$rt $u:$(($(netns_retrans "$u") - ${rt0[$u]}))"; done
for u in "${lossy[@]}" "$slow"; do netns_heal "$u"; done
t_from=${t_from:-$(netns_now)}
echo "# TCP retransmissions on the lossy links:$rt; packets dropped by the loss rules: $NETNS_DROPPED"
netns_scenario_end "loss and latency" \
    "20% loss on 4 links ($NETNS_DROPPED packets dropped), +300 ms RTT on 3, 64 kbit/s on 1, 2 cuts of 20 s, 35 s of writes; $drained" "$t_from"

# ------------------------------------------------------------------ 3. province down
netns_scenario_begin "province down"
port=${NET_PORT[24]}
watched=
for d in 223 216; do netns_syn_watch_start "$d" "$port" "$NET_DIR/syn.$d" && watched="$watched $d"; done
term_ms=$(netns_term 24)
logged=no
grep -q "got SIGTERM, stopping" "$NET_DIR/nodes/24.log" && tail -3 "$NET_DIR/nodes/24.log" | grep -q "stopped" && logged=yes
check "province down: SIGTERM stops the province cleanly (exited in $term_ms ms, logged: $logged)" \
    test "$term_ms" != stuck -a "$logged" = yes
t_down=$(netns_now)
NETNS_LOAD_PAUSE=0.5 netns_load_start "${c223[@]:0:3}" "${c216[@]:0:3}"
sleep 8
declare -A rss0 out0
for u in 223 216 "${c223[0]}" "${c216[0]}"; do rss0[$u]=$(netns_rss "$u"); done
for d in 223 216; do out0[$d]=$(net_psql "$d" "SELECT count(*) FROM lt.outbox"); done
# SIGHUP at district 216: smaller batches take effect, a restart-only change is named
conf216=$(net_conf 216)
printf '[sync]\nbatch_rows = 200\n[net]\nhwm = 500\n' >>"$conf216"
net_hup 216
# and one commune's batches capped by bytes
printf '[sync]\nbatch_bytes = 4096\n' >>"$(net_conf "${c223[0]}")"
net_hup "${c223[0]}"
sleep 2
bb0=$(net_psql 223 "SELECT batches || ' ' || applied_rows FROM lt.child_link WHERE child_unit = '${c223[0]}'")
grep -h "reloaded" "$NET_DIR/nodes/216.log" | tail -1 | sed 's/^/# /'
check "province down: SIGHUP reloads 216's configuration and names what needs a restart" \
    grep -qE "reloaded: changed \[.*sync.batch_rows.*need a restart.*net.hwm" "$NET_DIR/nodes/216.log"
sleep 40
netns_load_stop
bb1=$(net_psql 223 "SELECT batches || ' ' || applied_rows FROM lt.child_link WHERE child_unit = '${c223[0]}'")
declare -A rss1 out1
for u in 223 216 "${c223[0]}" "${c216[0]}"; do rss1[$u]=$(netns_rss "$u"); done
for d in 223 216; do out1[$d]=$(net_psql "$d" "SELECT count(*) FROM lt.outbox"); done
down_s=$(netns_since "$t_down")
for d in 223 216; do
    check "province down: district $d keeps accepting its communes' writes; its outbox grows on disk (${out0[$d]} -> ${out1[$d]} rows)" \
        test "${out1[$d]}" -gt "${out0[$d]}"
done
flat=1
growth=
for u in "${!rss0[@]}"; do
    g=$((${rss1[$u]:-0} - ${rss0[$u]:-0}))
    growth="$growth $u:${rss0[$u]}->${rss1[$u]}kB"
    [ "$g" -lt 2048 ] || flat=0
done
check "province down: daemon memory stays flat while the backlog grows ($growth)" test $flat = 1
st=$(netns_upstream_status 216)
echo "# upstream status at 216 with the province down: $st"
check "province down: 216's status says its parent link is not streaming, and why" \
    bash -c '[[ "$1" != *\"state\":\"streaming\"* ]] && [[ "$1" =~ \"last_error\":\"[^\"]+\" ]]' _ "$st"
# its relay accepts and then drops each connection: a network fault, not a key problem
check "province down: 216's status does not blame the keys for a dropped connection" \
    bash -c '[[ "$1" != *key* ]]' _ "$st"
b0=$(net_psql 24 "SELECT batches || ' ' || applied_rows FROM lt.child_link WHERE child_unit = '216'")
net_start 24
t_up=$(netns_now)
for p in "${NETNS_BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
NETNS_BG_PIDS=()
net_wait_converged 150 >/dev/null
b1=$(net_psql 24 "SELECT batches || ' ' || applied_rows FROM lt.child_link WHERE child_unit = '216'")
read -r nb0 nr0 <<<"$b0"
read -r nb1 nr1 <<<"$b1"
db=$((nb1 - nb0)) dr=$((nr1 - nr0))
check "province down: after the reload 216 drains in batches of at most 200 rows ($dr rows in $db batches)" \
    test "$db" -gt 0 -a "$dr" -le $((db * 200))
# batch_bytes = 4096 at the commune: a record is 100-300 bytes encoded
read -r nb0 nr0 <<<"$bb0"
read -r nb1 nr1 <<<"$bb1"
db=$((nb1 - nb0)) dr=$((nr1 - nr0))
check "province down: after the reload ${c223[0]} sends batches of at most 4096 bytes ($dr rows in $db batches)" \
    test "$db" -gt 0 -a "$dr" -le $((db * 40))
for d in $watched; do echo "# reconnect attempts of $d while the province was down: $(netns_syn_summary "$NET_DIR/syn.$d")"; done
# 216's relay accepts each connection and drops it in the handshake, which libzmq
# would retry at its minimum delay: the daemon backs off itself (to reconnect_max_ms, 2 s)
if [[ " $watched " == *" 216 "* ]]; then
    att=$(wc -l <"$NET_DIR/syn.216")
    check "province down: 216's reconnects through its relay back off ($att attempts in ${down_s%.*} s)" \
        test "$att" -le "${down_s%.*}"
fi
NETNS_GT_ALSO="223 216" NETNS_DIGESTS=1 netns_scenario_end "province down" "province stopped ${down_s%.*} s (SIGTERM), SIGHUP at 216 and ${c223[0]}" "$t_up"

check_done
