#!/usr/bin/env bash
# bench.sh — `make bench`: how fast lienthong is, against the limit of this machine
# (raw COPY) and against the peer a DBA would pick (logical replication), all in
# one throwaway PostgreSQL cluster with fsync on. Prints a table and writes the same
# figures as JSON (build/bench.json). Every figure is the median of BENCH_RUNS runs
# (3); every ratio is computed inside one run, then the median of the ratios is taken.
# tests/bench/README.md explains each figure and how it is measured.
#
#   BENCH_QUICK=1   small sizes and one run: a smoke test of the benchmark (~3 min)
#   BENCH_RUNS=N    runs per figure
#   BENCH_OUT=FILE  where the JSON goes
#   BENCH_ONLY="1 3"  only these figures (5 comes with 2 and 3)
#   BENCH_CURVE_ALL_RUNS=N  runs of the CURVE case with every commune (default 1: its
#                   handshake storm alone takes minutes on two cores)
#   LT_KEEP=1       keep the cluster directory (logs) afterwards
#
# Links are plaintext (security.mode = plaintext) for figures 1, 2 and 4: a benchmark
# on loopback, where the database is the cost. Figure 3, where the parent holds
# thousands of connections, is measured in plaintext and, when this build has it,
# with CURVE (a key pair per simulated commune). Not part of `make test`.
set -uo pipefail
LT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$LT_ROOT/tests/lib/net.sh"
# The cluster runs as its own system user, so a crash test elsewhere on the machine
# (pg_kill kills every server process of the test user) cannot take it down.
PG_OSUSER=${BENCH_PG_OSUSER:-ltbench}
BENCH=$LT_ROOT/tests/bench
SIM=$LT_BIN/tests/ltsim

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    RUNS=${BENCH_RUNS:-1}
    F1_ROWS=20000  F2_DISTRICTS=2 F2_COMMUNES=2 F2_RATE=2 F2_SECONDS=8
    F2N_MIDS=4     F2N_COMMUNES=200 F2N_SECONDS=8
    F3_SECONDS=5   F3_DRAIN=15    F3_BACKLOG=100
    F4_ROWS=50000
else
    RUNS=${BENCH_RUNS:-3}
    F1_ROWS=200000 F2_DISTRICTS=4 F2_COMMUNES=6 F2_RATE=2 F2_SECONDS=30
    F2N_MIDS=34    F2N_COMMUNES=3321 F2N_SECONDS=30
    F3_SECONDS=10  F3_DRAIN=20    F3_BACKLOG=1000
    F4_ROWS=1000000
fi
OUT=${BENCH_OUT:-$LT_ROOT/build/bench.json}
ONLY=" ${BENCH_ONLY:-1 2 3 4} "
fig() { [[ $ONLY == *" $1 "* ]]; }
CURVE_ALL_RUNS=${BENCH_CURVE_ALL_RUNS:-1}
[ "$QUICK" = 1 ] && CURVE_ALL_RUNS=0

say() { echo "bench: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

make -s -C "$LT_ROOT" build/tests/ltsim >/dev/null || die "cannot build $SIM"
ulimit -n 20000 2>/dev/null || true

export PG_FSYNC=on
NET_STATS_MS=10000
net_setup "$(mktemp -d /tmp/lt-bench.XXXXXX)" || die "cluster"
M=$NET_DIR/m # one file per metric, one value per run
mkdir -p "$M"
SIM_PIDS=()
trap 'for p in "${SIM_PIDS[@]}"; do kill "$p" 2>/dev/null; done; net_cleanup' EXIT

bpsql() {
    local db=$1
    shift
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt PGOPTIONS="-c client_min_messages=warning" \
        "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"
}
conn() { pg_conninfo "$NET_DIR/pg" "$1"; }
node_conn() { conn "$(net_db "$1")"; }
rec() { echo "$2" >>"$M/$1"; } # rec METRIC VALUE
med() {                        # med METRIC: median of the runs, or null
    [ -s "$M/$1" ] || { echo null; return; }
    sort -g "$M/$1" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; } # kb PID VmRSS
calc() { awk "BEGIN {printf \"%.${2:-3}f\", $1}"; }
checkpoint() { bpsql postgres -c CHECKPOINT; }
wait_streaming() { # every given node's upstream is streaming
    local u
    for u in "$@"; do
        "$SIM" wait "$(node_conn "$u")" "SELECT (state = 'streaming')::int FROM lt.upstream" 1 60 >/dev/null \
            || die "$u never connected to its parent"
    done
}
commit_ts() { bpsql "$1" -c "SELECT extract(epoch FROM pg_xact_commit_timestamp('$2'::text::xid))"; }
reset_parent() {
    net_psql "$1" "TRUNCATE lt.data_value, lt.rollup_value_below, lt.outbox, lt.child_link, lt.rejected_delta RESTART IDENTITY"
}
reset_child() {
    net_psql "$1" "TRUNCATE lt.outbox RESTART IDENTITY; UPDATE lt.upstream SET acked_seq = 0, state = 'idle', last_error = NULL"
}

# The cluster: fsync on (PG_FSYNC above), logical decoding for the peer, commit
# timestamps for per-row freshness.
bpsql postgres -c "ALTER SYSTEM SET wal_level = logical" -c "ALTER SYSTEM SET track_commit_timestamp = on" \
    -c "ALTER SYSTEM SET max_wal_senders = 10" -c "ALTER SYSTEM SET max_replication_slots = 10" || die "settings"
pg_stop "$NET_DIR/pg"
pg_restart "$NET_DIR/pg" || die "restart"
say "cluster in $NET_DIR: fsync=$(bpsql postgres -c 'SHOW fsync'), wal_level=$(bpsql postgres -c 'SHOW wal_level'), $RUNS run(s) per figure"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
[ "${LOAD_BEFORE%.*}" -ge 2 ] && say "WARNING: load average $LOAD_BEFORE before the benchmark: other work shares the two cores, figures will be low"
T_START=$SECONDS

# ---------------------------------------------------------------- nodes
CURVE=0
"$LT_BIN/lienthong" keygen "$NET_DIR/probe.keys" >/dev/null 2>&1 && CURVE=1
SECURITIES=plaintext
[ $CURVE = 1 ] && SECURITIES="plaintext curve"
# Figures 1 and 4: province 24 (no daemon: the district's own outbox just grows, as
# it would with a slow link), district 223, one of its communes.
NET_SECURITY=plaintext
NET_UNITS=vn2024
net_node 24 "" && net_node 223 24 || die "nodes"
C1=$(net_units_of 3 223 | head -1)
net_node "$C1" 223 || die "node $C1"
# Figure 2: province 27 (2024 geography), F2_DISTRICTS districts, F2_COMMUNES communes each.
P2=27
F2_DIST=$(awk -F, -v p=$P2 'NR > 1 && $1 == p {print $4}' "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv" |
    sort -u | head -"$F2_DISTRICTS")
F2_COMM=()
F2N_MID=()
net_node $P2 "" || die "node $P2"
for d in $F2_DIST; do
    net_node "$d" $P2 || die "node $d"
    for c in $(net_units_of 3 "$d" | head -"$F2_COMMUNES"); do
        net_node "$c" "$d" || die "node $c"
        F2_COMM+=("$c")
    done
done
# Figure 3: province 79 (2025 geography, the largest: 168 communes) and one parent for
# the whole country: node 01 with every 2025 commune re-parented under it in its own
# unit table (a bench-only tree: no province has 3,321 communes, a national node would).
NET_UNITS=vn2025
[ $CURVE = 1 ] && NET_SECURITY=curve
net_node 79 "" && net_node 01 "" || die "2025 nodes"
net_psql 01 "UPDATE lt.unit SET parent_code = '01' WHERE level = 'commune'; SELECT lt.rebuild_unit_tree()" >/dev/null
net_units_of 2 79 >"$NET_DIR/units_79"
awk -F, 'NR > 1 {print $1}' "$LT_ROOT/schemas/units/vn_2025_communes.csv" >"$NET_DIR/units_01"
for u in 79 01; do
    # both configurations of the parent: as written (curve when available), and plaintext
    cp "$(net_conf $u)" "$NET_DIR/$u.conf.curve"
    awk '/^\[/ {sec = $0} sec == "[security]" && !/^\[/ {next} {print} $0 == "[security]" {print "mode = plaintext"}' \
        "$NET_DIR/$u.conf.curve" >"$NET_DIR/$u.conf.plaintext"
    if [ $CURVE = 1 ]; then # a key pair per simulated commune, in the parent's allow-list
        "$SIM" keys "$NET_DIR/units_$u" >"$NET_DIR/keys_$u" || die "ltsim keys"
        awk '{print $1, $2}' "$NET_DIR/keys_$u" >>"$(net_allowlist $u)"
    fi
done
N79=$(wc -l <"$NET_DIR/units_79")
NALL=$(wc -l <"$NET_DIR/units_01")
say "nodes ready ($((SECONDS - T_START)) s)"

# ---------------------------------------------------------------- figure 1: apply
fig 1 && {
say "figure 1: apply throughput, $F1_ROWS rows, commune $C1 -> district 223"
bpsql "$(net_db "$C1")" -v unit="$C1" -v n="$F1_ROWS" -v year=2024 -f "$BENCH/fill.sql" || die "fill"
bpsql "$(net_db "$C1")" -c "COPY (SELECT unit_code, element, period, disagg, value, version, changed_at
                                   FROM lt.data_value ORDER BY id) TO STDOUT" >"$NET_DIR/rows.tsv"
LAST_KEY=$(tail -1 "$NET_DIR/rows.tsv" | awk -F'\t' '{printf "(%s, %s, %s, %s) = (\x27%s\x27, \x27%s\x27, \x27%s\x27, \x27%s\x27)", "unit_code", "element", "period", "disagg", $1, $2, $3, $4}')
TABLE_DDL="(unit_code text, element text, period text, disagg text, value numeric, version bigint,
            changed_at timestamptz, PRIMARY KEY (unit_code, element, period, disagg))"
# the peer: one publication, one subscription, between two databases of the cluster
for db in lr_pub lr_sub; do
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/createdb" $db || die "createdb $db"
    bpsql $db -c "CREATE TABLE t $TABLE_DDL" || die "table"
done
bpsql lr_pub -c "CREATE PUBLICATION bench_pub FOR TABLE t" \
    -c "SELECT pg_create_logical_replication_slot('bench_sub', 'pgoutput')" >/dev/null || die "publication"
bpsql lr_sub -c "CREATE SUBSCRIPTION bench_sub CONNECTION '$(conn lr_pub)' PUBLICATION bench_pub
                 WITH (create_slot = false, slot_name = 'bench_sub', copy_data = false, synchronous_commit = 'on')" \
    || die "subscription"

for r in $(seq 1 "$RUNS"); do
    # lienthong: the rows are committed at the commune (its outbox, one transaction)
    # while both daemons run; the clock stops at the district's last apply commit.
    net_kill 223
    net_kill "$C1"
    reset_parent 223
    reset_child "$C1"
    checkpoint
    net_start 223
    net_start "$C1"
    wait_streaming "$C1"
    xid=$(bpsql "$(net_db "$C1")" -c BEGIN -c "SELECT lt.requeue_all()" -c "SELECT txid_current()" -c COMMIT | tail -1)
    t0=$(commit_ts "$(net_db "$C1")" "$xid")
    "$SIM" wait "$(node_conn 223)" "SELECT coalesce(max(last_applied_seq), 0) FROM lt.child_link" "$F1_ROWS" 900 >/dev/null \
        || die "district 223 did not apply $F1_ROWS rows"
    t1=$(net_psql 223 "SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM lt.data_value")
    lt_rate=$(calc "$F1_ROWS / ($t1 - $t0)" 0)
    net_kill 223
    net_kill "$C1"

    # raw COPY of the same rows into a table with the same primary key
    checkpoint
    bpsql "$(net_db 223)" -c "DROP TABLE IF EXISTS bench_copy" -c "CREATE TABLE bench_copy $TABLE_DDL"
    ms=$(bpsql "$(net_db 223)" -c '\timing on' -c "\\copy bench_copy FROM '$NET_DIR/rows.tsv'" | awk '/^Time:/ {print $2}')
    copy_rate=$(calc "$F1_ROWS / ($ms / 1000)" 0)
    net_psql 223 "DROP TABLE bench_copy"

    # logical replication: the same rows committed at the publisher in one transaction;
    # the clock stops when the subscriber shows the last row (commit timestamps at a
    # subscriber are the origin's, so it is polled, every 20 ms)
    bpsql lr_pub -c "TRUNCATE t"
    "$SIM" wait "$(conn lr_sub)" "SELECT (count(*) = 0)::int FROM t" 1 120 >/dev/null || die "subscriber truncate"
    checkpoint
    xid=$(bpsql lr_pub -c BEGIN -c "\\copy t FROM '$NET_DIR/rows.tsv'" -c "SELECT txid_current()" -c COMMIT | tail -1)
    t0=$(commit_ts lr_pub "$xid")
    t1=$("$SIM" wait "$(conn lr_sub)" "SELECT count(*) FROM t WHERE $LAST_KEY" 1 900 | awk '{print $2}') \
        || die "subscriber never got the rows"
    lr_rate=$(calc "$F1_ROWS / ($t1 - $t0)" 0)

    rec f1_lt "$lt_rate"
    rec f1_copy "$copy_rate"
    rec f1_lr "$lr_rate"
    rec f1_ratio_copy "$(calc "$lt_rate / $copy_rate")"
    rec f1_ratio_lr "$(calc "$lt_rate / $lr_rate")"
    say "  run $r: lienthong $lt_rate rows/s, COPY $copy_rate rows/s, logical replication $lr_rate rows/s"
done

}

# ---------------------------------------------------------------- figure 2: freshness
fig 2 && {
say "figure 2: freshness through three tiers, ${#F2_COMM[@]} communes x $F2_RATE writes/s for $F2_SECONDS s"
for u in $P2 $F2_DIST "${F2_COMM[@]}"; do net_start "$u"; done
# shellcheck disable=SC2086
wait_streaming $F2_DIST "${F2_COMM[@]}"
for c in "${F2_COMM[@]}"; do echo "$c $(node_conn "$c")"; done >"$NET_DIR/f2_conns"
for r in $(seq 1 "$RUNS"); do
    checkpoint
    "$SIM" write "$NET_DIR/f2_conns" --rate "$F2_RATE" --seconds "$F2_SECONDS" --period 202406 --tag "f$r" \
        >"$NET_DIR/f2_write_$r.json" || die "writes at the communes failed"
    writes=$(jq .writes "$NET_DIR/f2_write_$r.json")
    "$SIM" wait "$(node_conn $P2)" "SELECT count(*) FROM lt.data_value WHERE disagg LIKE 'f$r=%'" "$writes" 300 >/dev/null \
        || say "  not every write reached the province"
    q="COPY (SELECT unit_code, disagg, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM lt.data_value
             WHERE disagg LIKE 'f$r=%') TO STDOUT"
    for c in "${F2_COMM[@]}"; do net_psql "$c" "$q"; done >"$NET_DIR/f2_written.tsv"
    net_psql $P2 "$q" >"$NET_DIR/f2_seen.tsv"
    IFS='|' read -r n missing p50 p99 mx < <(bpsql postgres -v written="$NET_DIR/f2_written.tsv" \
        -v seen="$NET_DIR/f2_seen.tsv" -f "$BENCH/freshness.sql")
    rec f2_rate "$(jq .writes_per_s "$NET_DIR/f2_write_$r.json")"
    rec f2_p50 "$p50"
    rec f2_p99 "$p99"
    rec f2_max "$mx"
    rec f2_missing "$missing"
    say "  run $r: $n rows, p50 $p50 ms, p99 $p99 ms, max $mx ms, $missing missing"
done
sleep 2
# figure 5, first half: commune daemons connected and idle
for c in "${F2_COMM[@]}"; do kb "$(net_pid "$c")" VmRSS; done >"$M/f5_commune_rss_all"
sort -g "$M/f5_commune_rss_all" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}' >"$M/f5_commune_rss"
sort -g "$M/f5_commune_rss_all" | tail -1 >"$M/f5_commune_rss_max"
for c in "${F2_COMM[@]}"; do kb "$(net_pid "$c")" VmHWM; done | sort -g | tail -1 >"$M/f5_commune_hwm_max"
for u in $P2 $F2_DIST "${F2_COMM[@]}"; do net_kill "$u"; done
}

# ---------------------------------------------------------------- figure 2, nationwide
# Three tiers at the country's scale: F2N_COMMUNES simulated communes (ltsim, the real
# protocol, 1 delta/s each) under F2N_MIDS real middle daemons under one real top
# daemon, every node with its own database, all on this machine. No real geography
# has that shape, so the tree is the benchmark's own, written into every node's unit
# table: top 92, middle nodes with 2024 district codes (made valid from 2025), and the
# 2025 communes dealt round-robin among them. Freshness is from a record's making at
# the simulated commune (which has no database) to its commit at the top (commit
# timestamps; ltsim --dump gives the making times). Plaintext links.
fig 2 && [ "${BENCH_NATION:-1}" = 1 ] && {
F2N_TOP=92
mapfile -t F2N_MID < <(awk -F, 'NR > 1 && ($1 == "01" || $1 == "02") {print $4}' \
    "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv" | sort -u | head -"$F2N_MIDS")
say "figure 2 (nationwide): $F2N_COMMUNES simulated communes under ${#F2N_MID[@]} middle daemons under top $F2N_TOP, 1 delta/s each for $F2N_SECONDS s"
NET_SECURITY=plaintext NET_UNITS=all
net_node $F2N_TOP "" || die "node $F2N_TOP"
for m in "${F2N_MID[@]}"; do net_node "$m" $F2N_TOP || die "node $m"; done
awk -F, 'NR > 1 {print $1}' "$LT_ROOT/schemas/units/vn_2025_communes.csv" | head -"$F2N_COMMUNES" |
    awk -v mids="${F2N_MID[*]}" 'BEGIN {n = split(mids, m, " ")} {print $1 "\t" m[(NR - 1) % n + 1]}' >"$NET_DIR/f2n_tree.tsv"
for m in "${F2N_MID[@]}"; do awk -v m="$m" '$2 == m {print $1}' "$NET_DIR/f2n_tree.tsv" >"$NET_DIR/f2n_units_$m"; done
for u in $F2N_TOP "${F2N_MID[@]}"; do
    bpsql "$(net_db "$u")" -c "CREATE TEMP TABLE bt (code text, parent text)" \
        -c "\\copy bt FROM '$NET_DIR/f2n_tree.tsv'" \
        -c "UPDATE lt.unit SET parent_code = '$F2N_TOP', valid_to = 'infinity'
             WHERE level = 'district' AND code IN (SELECT DISTINCT parent FROM bt)" \
        -c "UPDATE lt.unit u SET parent_code = bt.parent FROM bt
             WHERE u.code = bt.code AND u.level = 'commune' AND u.valid_from >= '2025-07-01'" \
        -c "SELECT lt.rebuild_unit_tree()" >/dev/null || die "bench tree at $u"
done
for u in $F2N_TOP "${F2N_MID[@]}"; do net_start "$u"; done
wait_streaming "${F2N_MID[@]}"
for r in $(seq 1 "$RUNS"); do
    if [ "$r" -gt 1 ]; then # the simulated communes start again at seq 1: their links are forgotten
        for m in "${F2N_MID[@]}"; do net_kill "$m"; net_psql "$m" "DELETE FROM lt.child_link" >/dev/null; done
        for m in "${F2N_MID[@]}"; do net_start "$m"; done
        wait_streaming "${F2N_MID[@]}"
    fi
    checkpoint
    pids=()
    for m in "${F2N_MID[@]}"; do
        "$SIM" run "$(net_endpoint "$m")" "$NET_DIR/f2n_units_$m" --rate 1 --seconds "$F2N_SECONDS" --drain 60 \
            --period 202508 --tag "n$r" --dump "$NET_DIR/f2n_made_$m.$r" >"$NET_DIR/f2n_$m.$r.json" 2>>"$NET_DIR/ltsim.log" &
        pids+=($!)
    done
    SIM_PIDS=("${pids[@]}")
    for p in "${pids[@]}"; do wait "$p"; done
    SIM_PIDS=()
    made=$(cat "$NET_DIR"/f2n_*."$r".json | jq -s 'map(.made) | add')
    [ "$made" -gt 0 ] 2>/dev/null || { say "  run $r: ltsim made nothing (see $NET_DIR/ltsim.log)"; continue; }
    hop1_p99=$(cat "$NET_DIR"/f2n_*."$r".json | jq -s 'map(.lat_p99_ms) | max')
    "$SIM" wait "$(node_conn $F2N_TOP)" "SELECT count(*) FROM lt.data_value WHERE disagg LIKE 'n$r=%'" "$made" 120 >/dev/null \
        || say "  not every record reached the top"
    cat "$NET_DIR"/f2n_made_*."$r" >"$NET_DIR/f2n_written.tsv"
    net_psql $F2N_TOP "COPY (SELECT unit_code, disagg, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM lt.data_value
                            WHERE disagg LIKE 'n$r=%') TO STDOUT" >"$NET_DIR/f2n_seen.tsv"
    IFS='|' read -r n missing p50 p99 mx < <(bpsql postgres -v written="$NET_DIR/f2n_written.tsv" \
        -v seen="$NET_DIR/f2n_seen.tsv" -f "$BENCH/freshness.sql")
    rss_mid=$(for m in "${F2N_MID[@]}"; do kb "$(net_pid "$m")" VmHWM; done | sort -g | tail -1)
    rec f2n_rate "$(calc "$made / $F2N_SECONDS" 1)"
    rec f2n_p50 "$p50"
    rec f2n_p99 "$p99"
    rec f2n_max "$mx"
    rec f2n_missing "$missing"
    rec f2n_hop1_p99 "$hop1_p99"
    rec f2n_top_hwm "$(kb "$(net_pid $F2N_TOP)" VmHWM)"
    rec f2n_mid_hwm "$rss_mid"
    say "  run $r: $n records at the top of $made made, p50 $p50 ms, p99 $p99 ms, max $mx ms, $missing missing; first hop p99 (worst middle node) $hop1_p99 ms; peak RSS top $(kb "$(net_pid $F2N_TOP)" VmHWM) kB, middle $rss_mid kB"
done
for u in $F2N_TOP "${F2N_MID[@]}"; do net_kill "$u"; done
}

# ---------------------------------------------------------------- figure 3: one parent, many communes
f3_case() { # f3_case NODE LABEL SECURITY MODE: one run of ltsim against a fresh parent daemon
    local node=$1 label=$2 sec=$3 mode=$4 pid j units=$NET_DIR/units_$1 args=()
    net_kill "$node"
    reset_parent "$node"
    cp "$NET_DIR/$node.conf.$sec" "$(net_conf "$node")"
    checkpoint
    net_start "$node"
    pid=$(net_pid "$node")
    sleep 0.5
    if [ "$sec" = curve ]; then
        units=$NET_DIR/keys_$node
        args=(--curve "$(net_keys "$node")/public.key")
    fi
    if [ "$mode" = steady ]; then
        args+=(--rate 1 --seconds "$F3_SECONDS" --drain "$F3_DRAIN" --tag s)
    else
        args+=(--backlog "$F3_BACKLOG" --batch 500 --drain 120 --tag x)
    fi
    j=$NET_DIR/f3_${label}_${sec}_$mode.$r.json
    "$SIM" run "$(net_endpoint "$node")" "$units" --period 202508 "${args[@]}" >"$j" 2>>"$NET_DIR/ltsim.log"
    [ -s "$j" ] || die "ltsim produced nothing (see $NET_DIR/ltsim.log)"
    local k=f3_${label}_${sec}_$mode
    rec "${k}_rss" "$(kb "$pid" VmRSS)"
    rec "${k}_hwm" "$(kb "$pid" VmHWM)"
    for f in acked_per_s lat_p50_ms lat_p99_ms lat_max_ms unacked welcome_s; do rec "${k}_$f" "$(jq ".$f" "$j")"; done
    say "  run $r, $label communes, $sec, $mode: $(jq -c '{welcome_s, acked_per_s, lat_p50_ms, lat_p99_ms, lat_max_ms, unacked}' "$j"), parent RSS $(kb "$pid" VmRSS) kB, peak $(kb "$pid" VmHWM) kB"
    net_kill "$node"
}
fig 3 && {
say "figure 3: one parent, $N79 and $NALL simulated communes, 1 delta/s each for $F3_SECONDS s ($SECURITIES); a backlog of $F3_BACKLOG from each of $N79"
for r in $(seq 1 "$RUNS"); do
    for sec in $SECURITIES; do
        f3_case 79 $N79 "$sec" steady
        [ "$sec" = plaintext ] || [ "$r" -le "$CURVE_ALL_RUNS" ] && f3_case 01 $NALL "$sec" steady
    done
    f3_case 79 $N79 plaintext flood
done
}

# ---------------------------------------------------------------- figure 4: catch-up
fig 4 && {
say "figure 4: catch-up of $F4_ROWS queued deltas, commune $C1 -> district 223"
net_psql "$C1" "TRUNCATE lt.data_value, lt.rollup_value_below, lt.outbox RESTART IDENTITY"
bpsql "$(net_db "$C1")" -v unit="$C1" -v n="$F4_ROWS" -v year=2024 -f "$BENCH/fill.sql" || die "fill"
for r in $(seq 1 "$RUNS"); do
    net_kill 223
    net_kill "$C1"
    reset_parent 223
    reset_child "$C1"
    net_psql "$C1" "SELECT lt.requeue_all()" >/dev/null # queued while the commune was offline
    checkpoint
    net_start 223
    sleep 0.5
    t0=$(date +%s.%N)
    net_start "$C1"
    "$SIM" wait "$(node_conn 223)" "SELECT coalesce(max(last_applied_seq), 0) FROM lt.child_link" "$F4_ROWS" 1800 >/dev/null \
        || die "catch-up did not finish"
    t1=$(net_psql 223 "SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM lt.data_value")
    rec f4_seconds "$(calc "$t1 - $t0" 1)"
    rec f4_parent_hwm "$(kb "$(net_pid 223)" VmHWM)"
    rec f4_child_hwm "$(kb "$(net_pid "$C1")" VmHWM)"
    say "  run $r: drained in $(calc "$t1 - $t0" 1) s, district VmHWM $(kb "$(net_pid 223)" VmHWM) kB, commune VmHWM $(kb "$(net_pid "$C1")" VmHWM) kB"
done
net_kill 223
net_kill "$C1"
}

# ---------------------------------------------------------------- report
mb() { [ "$1" = null ] && echo null || calc "$1 / 1024" 1; }
f3_json() { # f3_json LABEL SEC MODE
    local k=f3_$1_$2_$3
    [ -s "$M/${k}_acked_per_s" ] || { echo null; return; }
    echo "{\"acked_per_s\": $(med "${k}_acked_per_s"), \"p50_ms\": $(med "${k}_lat_p50_ms"),
           \"p99_ms\": $(med "${k}_lat_p99_ms"), \"max_ms\": $(med "${k}_lat_max_ms"),
           \"unacked\": $(med "${k}_unacked"), \"welcome_s\": $(med "${k}_welcome_s"),
           \"parent_rss_mb\": $(mb "$(med "${k}_rss")"), \"parent_peak_mb\": $(mb "$(med "${k}_hwm")")}"
}
F3_JSON="{"
for l in $N79 $NALL; do
    F3_JSON+="\"$l\": {"
    for sec in $SECURITIES; do F3_JSON+="\"$sec\": {\"steady_1_per_s\": $(f3_json "$l" "$sec" steady)}, "; done
    F3_JSON+="\"plaintext_backlog\": $(f3_json "$l" plaintext flood)}, "
done
F3_JSON+="\"target_p99_ms\": 500, \"target_parent_mb\": 256}"
F5_PROVINCE=$(med "f3_${NALL}_plaintext_steady_hwm")
jq -n \
    --argjson runs "$RUNS" --argjson quick "$QUICK" --argjson seconds "$((SECONDS - T_START))" \
    --arg securities "$SECURITIES" \
    --argjson f1_rows "$F1_ROWS" --argjson f1_lt "$(med f1_lt)" --argjson f1_copy "$(med f1_copy)" \
    --argjson f1_lr "$(med f1_lr)" --argjson f1_rc "$(med f1_ratio_copy)" --argjson f1_rl "$(med f1_ratio_lr)" \
    --argjson f2_communes "${#F2_COMM[@]}" --argjson f2_rate "$(med f2_rate)" \
    --argjson f2_p50 "$(med f2_p50)" --argjson f2_p99 "$(med f2_p99)" --argjson f2_max "$(med f2_max)" \
    --argjson f2_missing "$(med f2_missing)" \
    --argjson f2n_communes "${F2N_COMMUNES:-0}" --argjson f2n_mids "${#F2N_MID[@]}" --argjson f2n_rate "$(med f2n_rate)" \
    --argjson f2n_p50 "$(med f2n_p50)" --argjson f2n_p99 "$(med f2n_p99)" --argjson f2n_max "$(med f2n_max)" \
    --argjson f2n_missing "$(med f2n_missing)" --argjson f2n_hop1 "$(med f2n_hop1_p99)" \
    --argjson f2n_top "$(mb "$(med f2n_top_hwm)")" --argjson f2n_mid "$(mb "$(med f2n_mid_hwm)")" \
    --argjson f3 "$F3_JSON" \
    --argjson f4_rows "$F4_ROWS" --argjson f4_s "$(med f4_seconds)" \
    --argjson f4_phwm "$(mb "$(med f4_parent_hwm)")" --argjson f4_chwm "$(mb "$(med f4_child_hwm)")" \
    --argjson f5_c "$(mb "$(med f5_commune_rss)")" --argjson f5_cmax "$(mb "$(med f5_commune_rss_max)")" \
    --argjson f5_p "$(mb "$F5_PROVINCE")" \
    --argjson load_before "$LOAD_BEFORE" --argjson load_after "$(cut -d' ' -f1 /proc/loadavg)" \
    '{runs: $runs, quick: ($quick == 1), seconds: $seconds, fsync: true,
      load_average_before: $load_before, load_average_after: $load_after,
      security: {apply_freshness_catch_up: "plaintext", one_parent: ($securities | split(" "))},
      apply: {rows: $f1_rows, lienthong_rows_per_s: $f1_lt, copy_rows_per_s: $f1_copy,
              logical_replication_rows_per_s: $f1_lr, ratio_to_copy: $f1_rc, ratio_to_logical_replication: $f1_rl,
              target_ratio_to_copy: 0.33, target_ratio_to_logical_replication: 1.5},
      freshness_three_tiers: {communes: $f2_communes, writes_per_s: $f2_rate, p50_ms: $f2_p50, p99_ms: $f2_p99,
              max_ms: $f2_max, missing: $f2_missing},
      freshness_three_tiers_nationwide: {communes: $f2n_communes, middle_nodes: $f2n_mids, records_per_s: $f2n_rate,
              p50_ms: $f2n_p50, p99_ms: $f2n_p99, max_ms: $f2n_max, missing: $f2n_missing,
              first_hop_p99_ms: $f2n_hop1, top_peak_mb: $f2n_top, middle_peak_mb: $f2n_mid, target_p99_ms: 500},
      one_parent: $f3,
      catch_up: {rows: $f4_rows, seconds: $f4_s, parent_peak_mb: $f4_phwm, commune_peak_mb: $f4_chwm, target_seconds: 60},
      daemon_cost: {idle_commune_rss_mb: $f5_c, idle_commune_rss_max_mb: $f5_cmax,
                    busy_province_peak_mb: $f5_p, target_commune_mb: 16, target_province_mb: 256}}' >"$OUT" \
    || die "JSON"

row() { printf '%-62s %22s %10s\n' "$@"; }
echo
echo "lienthong benchmark: median of $RUNS run(s), fsync on, $(nproc) cores, load average $LOAD_BEFORE before / $(cut -d' ' -f1 /proc/loadavg) after, $(date -u +%Y-%m-%d)"
row "figure" "measured" "target"
row "1. apply at a parent with roll-ups ($F1_ROWS rows), rows/s" "$(med f1_lt)" ""
row "   raw COPY of the same rows (primary key), rows/s" "$(med f1_copy)" ""
row "   logical replication of the same rows, rows/s" "$(med f1_lr)" ""
row "   lienthong / COPY" "$(med f1_ratio_copy)" ">= 0.33"
row "   lienthong / logical replication" "$(med f1_ratio_lr)" ">= 1.5"
row "2. freshness, 3 tiers, ${#F2_COMM[@]} communes x $F2_RATE writes/s: p50 ms" "$(med f2_p50)" ""
row "   p99 ms / max ms" "$(med f2_p99) / $(med f2_max)" "p99 < 500"
if [ -s "$M/f2n_p99" ]; then
    row "2. freshness, 3 tiers, $F2N_COMMUNES communes x 1 delta/s: p50 ms" "$(med f2n_p50)" ""
    row "   p99 ms / max ms (made at the commune -> top commit)" "$(med f2n_p99) / $(med f2n_max)" "p99 < 500"
    row "   records/s made / not at the top" "$(med f2n_rate) / $(med f2n_missing)" "$F2N_COMMUNES / 0"
    row "   first hop p99 ms (worst middle node)" "$(med f2n_hop1_p99)" ""
    row "   peak RSS MB: top / largest of ${#F2N_MID[@]} middle daemons" "$(mb "$(med f2n_top_hwm)") / $(mb "$(med f2n_mid_hwm)")" "< 256"
fi
for l in $N79 $NALL; do
    for sec in $SECURITIES; do
        k=f3_${l}_${sec}_steady
        [ -s "$M/${k}_acked_per_s" ] || continue
        n=$(wc -l <"$M/${k}_acked_per_s")
        row "3. one parent, $l communes x 1 delta/s, $sec ($n run(s)): acked/s" "$(med ${k}_acked_per_s)" "$l"
        row "   freshness p50 / p99 / max ms (one hop)" "$(med ${k}_lat_p50_ms) / $(med ${k}_lat_p99_ms) / $(med ${k}_lat_max_ms)" "p99 < 500"
        row "   unacknowledged at the end (percentiles then lower bounds)" "$(med ${k}_unacked)" "0"
        row "   all sessions welcomed after, s" "$(med ${k}_welcome_s)" ""
        row "   parent RSS / peak MB" "$(mb "$(med ${k}_rss)") / $(mb "$(med ${k}_hwm)")" "< 256"
    done
done
row "   $N79 communes with $F3_BACKLOG queued each: deltas/s" "$(med f3_${N79}_plaintext_flood_acked_per_s)" ""
row "4. catch-up of $F4_ROWS queued deltas, s" "$(med f4_seconds)" "< 60"
row "   parent peak MB / commune peak MB" "$(mb "$(med f4_parent_hwm)") / $(mb "$(med f4_child_hwm)")" ""
row "5. idle commune daemon RSS MB (median / max)" "$(mb "$(med f5_commune_rss)") / $(mb "$(med f5_commune_rss_max)")" "< 16"
row "   busy province daemon ($NALL communes) peak MB" "$(mb "$F5_PROVINCE")" "< 256"
echo "JSON: $OUT ($((SECONDS - T_START)) s)"
