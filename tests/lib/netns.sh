# netns.sh — a multi-host lienthong network for fault-injection tests. Every daemon
# runs in its own network namespace, joined to the others by a veth link into one
# bridge, and talks over a real address (10.77.D.N); PostgreSQL stays on the host and
# is reached over its unix socket (namespaces share the filesystem). Links can be cut,
# made lossy, rate-limited and delayed; daemons and a district's own PostgreSQL can be
# killed and restarted. Builds on net.sh (source this instead of it) and needs root.
#
#   netns_usable                   0 when namespaces can be made here; else NETNS_WHY says why
#   netns_setup DIR                net_setup DIR, a bridge, and cleanup of all of it on exit
#   netns_node UNIT PARENT [--relay] [--own-pg] [conf-line ...]
#                                  a namespace for UNIT, then net_node; --relay puts an
#                                  ltdelay relay on its uplink (delay 0 until netns_delay),
#                                  --own-pg gives the node a PostgreSQL cluster of its own
#   netns_cut UNIT / netns_uncut UNIT        the uplink's cable out / back in
#   netns_loss UNIT PCT            drop PCT % of packets both ways (nftables numgen); 0 clears
#   netns_slow UNIT RATE|off       tc tbf rate limit on the uplink (e.g. 512kbit)
#   netns_delay UNIT MS            one-way delay of the relay (both directions)
#   netns_heal UNIT                every fault of UNIT's link cleared
#   netns_pg_stop UNIT [fast|immediate] / netns_pg_kill UNIT / netns_pg_start UNIT
#                                  the own cluster of UNIT (see --own-pg)
#   netns_load_start UNIT... / netns_load_stop
#                                  writers at those communes (lienthong generate, looping)
#   netns_issued                   the sum of the communes' issued sequences (deltas written)
#   netns_rss UNIT                 the daemon's VmRSS in kB
#   netns_sampler_start / netns_sampler_stop / netns_peak_since MARK
#                                  VmRSS of every daemon twice a second into $NET_DIR/rss.log
#   netns_lost_dup TOP             "LOST EXTRA": leaf rows of TOP's communes missing or stale
#                                  at TOP, and rows at TOP the communes do not have
#                                  (NETNS_ONLY="UNIT ...": only those communes)
#   netns_table SCENARIO ...       the "# table:" line of a scenario
#
# The hooks into net.sh are its seams, never its text: LT_BIN points at a directory
# whose lienthongd enters the node's namespace before it runs the real one;
# net_endpoint answers with the namespace address; for a node with a cluster of its
# own, net_node, net_psql, net_start and net_hup run with NET_DIR at a shadow
# directory whose pg/ is that cluster and whose nodes/ and topology are the real ones.
# Security is net.sh's (CURVE keys, or NET_SECURITY=plaintext); the relays pass bytes.
#
# Invariant: everything made here (namespaces, bridge, relays, writers, samplers, extra
# clusters) is removed on exit, also after a failure or an interrupt; what a run
# killed outright left behind is removed by the next run (names carry the owner's pid).

LT_ROOT=${LT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$LT_ROOT/tests/lib/net.sh"

NETNS_TAG=ltf$$
# The clusters run as their own system user: pg_kill (pg.sh) kills every server
# process of its user, and another test run on the same machine must not take these
# clusters down with its own.
PG_OSUSER=ltpgfault
NETNS_REAL_BIN=$LT_BIN
NETNS_WHY=
NETNS_DROPPED=0 # packets the loss rules dropped, counted when a rule is removed
declare -gA NETNS_ADDR NETNS_IF NETNS_RELAY_PID NETNS_OWN_PG NETNS_KIDS
declare -ga NETNS_BG_PIDS
NETNS_NDIST=0
NETNS_NIF=0
NETNS_SAMPLER=
NETNS_LOAD_PIDS=

netns_usable() {
    if [ "$(id -u)" -ne 0 ]; then NETNS_WHY="not root"; return 1; fi
    local t
    for t in ip nft tc; do
        command -v "$t" >/dev/null || { NETNS_WHY="no $t command"; return 1; }
    done
    ip netns add "${NETNS_TAG}-probe" 2>/dev/null || { NETNS_WHY="cannot create network namespaces"; return 1; }
    ip netns del "${NETNS_TAG}-probe"
    [ -x "$NETNS_REAL_BIN/tests/ltdelay" ] || { NETNS_WHY="build/tests/ltdelay missing (make tools)"; return 1; }
}

# namespaces and bridges of runs whose process is gone (killed before their trap ran)
netns__reap_stale() {
    local ns pid p br
    for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E '^ltf[0-9]+-'); do
        pid=${ns#ltf}
        pid=${pid%%-*}
        kill -0 "$pid" 2>/dev/null && continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{ print $2 }' | grep -E '^ltf[0-9]+br$'); do
        pid=${br#ltf}
        pid=${pid%br}
        kill -0 "$pid" 2>/dev/null || ip link del "$br" 2>/dev/null
    done
    # clusters (and directories) of runs that left a netns.owner naming a dead process
    local data top tops=
    for p in $(pgrep -u "$PG_OSUSER" -f 'bin/postgres -D' 2>/dev/null); do
        data=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n '/^-D$/{n;p;}')
        top=${data%/pg/data}
        top=${top%/own-*}
        pid=$(cat "$top/netns.owner" 2>/dev/null) || continue
        kill -0 "$pid" 2>/dev/null && continue
        pg__as "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1
        tops="$tops $top"
    done
    for top in $tops; do rm -rf "$top"; done
}

# Fast on purpose (a test runner's timeout may follow its TERM with a KILL): daemons,
# relays and writers get SIGKILL, namespaces go, then the clusters stop.
netns_cleanup() {
    local rc=$? u p
    trap - EXIT
    touch "$NET_DIR/load.stop" 2>/dev/null
    for p in $NETNS_LOAD_PIDS $NETNS_SAMPLER "${NETNS_BG_PIDS[@]}" "${NETNS_RELAY_PID[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    for u in "${NET_NODES[@]}"; do
        for p in $(net_pid "$u") $(ip netns pids "$NETNS_TAG-$u" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    for u in "${NET_NODES[@]}"; do ip netns del "$NETNS_TAG-$u" 2>/dev/null; done
    ip link del "${NETNS_TAG}br" 2>/dev/null
    for u in "${!NETNS_OWN_PG[@]}"; do pg_stop "${NETNS_OWN_PG[$u]}/pg"; done
    net_cleanup
    return $rc
}

netns_setup() {
    netns__reap_stale
    net_setup "$1" || return 1
    trap netns_cleanup EXIT
    echo $$ >"$NET_DIR/netns.owner"
    ip link add "${NETNS_TAG}br" type bridge || return 1
    ip link set "${NETNS_TAG}br" up
    # lienthongd enters its node's namespace (the config file is NODES/UNIT.conf);
    # every other program is the real one
    mkdir -p "$NET_DIR/bin"
    local f
    for f in "$NETNS_REAL_BIN"/*; do
        [ -f "$f" ] && [ "$(basename "$f")" != lienthongd ] && ln -sf "$f" "$NET_DIR/bin/"
    done
    cat >"$NET_DIR/bin/lienthongd" <<EOF
#!/bin/sh
# lienthongd inside the network namespace of the node whose configuration it is given
conf= prev=
for a in "\$@"; do
    case \$prev in -c|--config) conf=\$a ;; esac
    prev=\$a
done
unit=\$(basename "\$conf" .conf)
exec ip netns exec "$NETNS_TAG-\${unit%.daemon}" "$NETNS_REAL_BIN/lienthongd" "\$@"
EOF
    chmod +x "$NET_DIR/bin/lienthongd"
    LT_BIN=$NET_DIR/bin
    : >"$NET_DIR/rss.log"
}

# net.sh seams: the endpoint is the namespace address; a node with a cluster of its
# own is reached by running net.sh's function with NET_DIR at its shadow directory
net_endpoint() { echo "tcp://${NETNS_ADDR[$1]}:${NET_PORT[$1]}"; }
netns__wrap() { # netns__wrap FUNCTION: FUNCTION UNIT ... runs at UNIT's cluster
    eval "netns__orig_$1() $(declare -f "$1" | tail -n +2)"
    eval "$1() { if [ -n \"\${NETNS_OWN_PG[\$1]:-}\" ]; then NET_DIR=\${NETNS_OWN_PG[\$1]} netns__orig_$1 \"\$@\"; else netns__orig_$1 \"\$@\"; fi; }"
}
for f in net_psql net_start net_hup; do declare -F "$f" >/dev/null && netns__wrap "$f"; done

netns_ns() { echo "$NETNS_TAG-$1"; }

netns_node() {
    local unit=$1 parent=${2:-} relay= own= ns addr i host
    shift 2 2>/dev/null || shift $#
    while [ $# -gt 0 ]; do
        case $1 in
        --relay) relay=1; shift ;;
        --own-pg) own=1; shift ;;
        *) break ;;
        esac
    done
    ns=$(netns_ns "$unit")
    # addresses: province 10.77.0.1, district k 10.77.k.1, their communes 10.77.k.11...
    if [ -z "$parent" ]; then
        addr=10.77.0.1
    elif [ ${#unit} -lt 5 ]; then
        NETNS_NDIST=$((NETNS_NDIST + 1))
        addr=10.77.$NETNS_NDIST.1
    else
        NETNS_KIDS[$parent]=$((${NETNS_KIDS[$parent]:-0} + 1))
        host=${NETNS_ADDR[$parent]%.*}
        addr=$host.$((10 + ${NETNS_KIDS[$parent]}))
    fi
    NETNS_NIF=$((NETNS_NIF + 1))
    i=$NETNS_NIF
    NETNS_ADDR[$unit]=$addr
    NETNS_IF[$unit]=${NETNS_TAG}v$i
    ip netns add "$ns" || return 1
    ip link add "${NETNS_TAG}v$i" type veth peer name "${NETNS_TAG}p$i" || return 1
    ip link set "${NETNS_TAG}p$i" netns "$ns"
    ip -n "$ns" link set "${NETNS_TAG}p$i" name lt0
    ip -n "$ns" addr add "$addr/16" dev lt0
    ip -n "$ns" link set lt0 up
    ip -n "$ns" link set lo up
    ip link set "${NETNS_TAG}v$i" master "${NETNS_TAG}br"
    ip link set "${NETNS_TAG}v$i" up

    if [ -n "$own" ]; then
        # a cluster of its own: net.sh runs with NET_DIR at a shadow directory whose pg
        # is that cluster and whose nodes and topology are the real ones
        local shadow=$NET_DIR/own-$unit
        mkdir -p "$shadow"
        ln -sfn "$NET_DIR/nodes" "$shadow/nodes"
        ln -sfn "$NET_DIR/topology" "$shadow/topology"
        pg_start "$shadow/pg" || return 1
        NETNS_OWN_PG[$unit]=$shadow
        NET_DIR=$shadow net__sql postgres "CREATE ROLE lt_owner LOGIN CREATEROLE" >/dev/null || return 1
        NET_DIR=$shadow net_node "$unit" "$parent" "$@" || return 1
    else
        net_node "$unit" "$parent" "$@" || return 1
    fi
    if [ -n "$relay" ]; then
        local port=31000 conf
        conf=$(net_conf "$unit")
        echo 0 >"$NET_DIR/nodes/$unit.delay"
        ip netns exec "$ns" "$NETNS_REAL_BIN/tests/ltdelay" -f "$NET_DIR/nodes/$unit.delay" \
            "127.0.0.1:$port" "${NETNS_ADDR[$parent]}:${NET_PORT[$parent]}" >>"$NET_DIR/nodes/$unit.relay.log" 2>&1 &
        NETNS_RELAY_PID[$unit]=$!
        disown $! # killed at cleanup without a job notice
        sed -i "/^\[parent\]/,/^\[/ s|^endpoint = .*|endpoint = tcp://127.0.0.1:$port|" "$conf"
    fi
}

# ---------------------------------------------------------------- faults
netns_cut() { ip link set "${NETNS_IF[$1]}" down; }
netns_uncut() { ip link set "${NETNS_IF[$1]}" up; }

netns_loss() {
    local ns pct=$2 n
    ns=$(netns_ns "$1")
    n=$(ip netns exec "$ns" nft list table inet ltfault 2>/dev/null | awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }')
    NETNS_DROPPED=$((NETNS_DROPPED + n))
    ip netns exec "$ns" nft delete table inet ltfault 2>/dev/null
    [ "$pct" -gt 0 ] || return 0
    ip netns exec "$ns" nft -f - <<EOF
table inet ltfault {
    chain in { type filter hook input priority 0; iifname "lt0" numgen random mod 100 < $pct counter drop; }
    chain out { type filter hook output priority 0; oifname "lt0" numgen random mod 100 < $pct counter drop; }
}
EOF
}

netns_slow() {
    local ns
    ns=$(netns_ns "$1")
    if [ "$2" = off ]; then
        tc -n "$ns" qdisc del dev lt0 root 2>/dev/null
        return 0
    fi
    tc -n "$ns" qdisc replace dev lt0 root tbf rate "$2" burst 32kbit latency 2s
}

netns_delay() {
    [ -n "${NETNS_RELAY_PID[$1]:-}" ] || { echo "netns: $1 has no relay" >&2; return 1; }
    echo "$2" >"$NET_DIR/nodes/$1.delay"
    kill -HUP "${NETNS_RELAY_PID[$1]}"
}

netns_heal() {
    netns_uncut "$1"
    netns_loss "$1" 0
    netns_slow "$1" off
    [ -z "${NETNS_RELAY_PID[$1]:-}" ] || netns_delay "$1" 0
}

# ---------------------------------------------------------------- a district's own PostgreSQL
netns_pg_stop() {
    local dir=${NETNS_OWN_PG[$1]}/pg
    pg__as "$PG_BIN/pg_ctl" -D "$dir/data" -m "${2:-fast}" -w -t 60 stop >/dev/null
}

# kill -9 of the postmaster and of its own children only (pg_kill would take every
# cluster of the test user down)
netns_pg_kill() {
    local dir=${NETNS_OWN_PG[$1]}/pg pid
    pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null) || return 0
    local kids
    kids=$(pgrep -P "$pid")
    kill -9 "$pid" $kids 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
}

netns_pg_start() { pg_restart "${NETNS_OWN_PG[$1]}/pg"; }

# ---------------------------------------------------------------- load
# Each writer loops `lienthong generate` with a new seed (a batch of values rewritten
# at new versions plus new cases, in one transaction, like an officer's import) and a
# single `lienthong set`, until netns_load_stop.
netns_load_start() {
    local u
    rm -f "$NET_DIR/load.stop"
    for u in "$@"; do
        (
            k=0
            while [ ! -f "$NET_DIR/load.stop" ]; do
                k=$((k + 1))
                net_lt "$u" generate --seed "$((RANDOM * 1000 + k))" --year 2024 --months 3 --cases 2 >/dev/null 2>&1
                net_lt "$u" set PARENTS_INF 2024Q4 "$k" >/dev/null 2>&1
                sleep "${NETNS_LOAD_PAUSE:-0.3}"
            done
        ) &
        NETNS_LOAD_PIDS="$NETNS_LOAD_PIDS $!"
    done
}

netns_load_stop() {
    [ -n "$NETNS_LOAD_PIDS" ] || return 0
    touch "$NET_DIR/load.stop"
    local p
    for p in $NETNS_LOAD_PIDS; do wait "$p" 2>/dev/null; done
    NETNS_LOAD_PIDS=
}

netns_issued() {
    local u n=0 h
    for u in $(net_communes); do
        h=$(net_psql "$u" "SELECT lt.outbox_high()") || return 1
        n=$((n + h))
    done
    echo "$n"
}

# ---------------------------------------------------------------- memory
netns_rss() {
    local pid
    pid=$(net_pid "$1") || return 1
    awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null
}

netns_sampler_start() {
    (
        while :; do
            t=$(date +%s.%N)
            for f in "$NET_DIR"/nodes/*.pid; do
                [ -f "$f" ] || continue
                u=$(basename "$f" .pid)
                r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$f" 2>/dev/null)/status" 2>/dev/null)
                [ -n "$r" ] && echo "$t $u $r"
            done >>"$NET_DIR/rss.log"
            sleep 0.5
        done
    ) &
    NETNS_SAMPLER=$!
    disown $!
}

netns_sampler_stop() {
    [ -n "$NETNS_SAMPLER" ] || return 0
    kill "$NETNS_SAMPLER" 2>/dev/null
    NETNS_SAMPLER=
}

netns_mark() { wc -l <"$NET_DIR/rss.log"; }

# the largest VmRSS since MARK (a line count of rss.log): "12.3 MB (unit)"
netns_peak_since() {
    tail -n +"$(($1 + 1))" "$NET_DIR/rss.log" |
        awk '$3 > m { m = $3; u = $2 } END { if (m) printf "%.1f MB (%s)", m / 1024, u; else print "-" }'
}

# ---------------------------------------------------------------- loss and double counting
# Leaf rows compared key by key with their versions: LOST are rows of TOP's communes
# that TOP lacks or holds at an older version, EXTRA are rows TOP holds for those
# communes that the commune lacks or holds at an older version.
netns__leaf_sql() {
    echo "COPY (SELECT 'v|' || unit_code || '|' || element || '|' || period || '|' || disagg, version
                  FROM lt.data_value WHERE unit_code IN ($1)
                UNION ALL SELECT 'c|' || case_id, version FROM lt.case_record WHERE unit_code IN ($1)) TO STDOUT"
}

netns_lost_dup() {
    local top=$1 u a f="$NET_DIR/leaf.c" g="$NET_DIR/leaf.t"
    : >"$f"
    : >"$g"
    local units=
    for u in ${NETNS_ONLY:-$(net_communes)}; do
        a=$u
        while [ -n "$a" ] && [ "$a" != "$top" ]; do a=${NET_PARENT[$a]}; done
        [ "$a" = "$top" ] || continue
        units="$units${units:+,}'$u'"
        net_psql "$u" "$(netns__leaf_sql "'$u'")" >>"$f"
    done
    [ -z "$units" ] || net_psql "$top" "$(netns__leaf_sql "$units")" >>"$g"
    awk -F'\t' 'FNR == NR { c[$1] = $2; next }
                { t[$1] = $2 }
                END {
                    for (k in c) if (!(k in t) || t[k] + 0 < c[k] + 0) lost++
                    for (k in t) if (!(k in c) || t[k] + 0 > c[k] + 0) extra++
                    printf "%d %d\n", lost, extra
                }' "$f" "$g"
}

# "# table: scenario | deltas written | faults | lost | duplicated | converge | peak RSS"
netns_table() {
    echo "# table: $1 | $2 | $3 | $4 | $5 | $6 | $7"
}

# ---------------------------------------------------------------- the standard bed and scenarios
# Tỉnh Bắc Giang (24) on the 2024 geography: Huyện Hiệp Hòa (223) with a PostgreSQL
# of its own, Huyện Tân Yên (216) behind a relay, five communes each, the first two
# of 216 behind relays too. Returns once every commune's first value is at the province.
NETNS_C223=
NETNS_C216=
netns_bed() {
    local c i=0 t0=$SECONDS t1
    NET_UNITS=vn2024
    netns_setup "$1" || return 1
    netns_node 24 "" || return 1
    netns_node 223 24 --own-pg || return 1
    netns_node 216 24 --relay || return 1
    NETNS_C223=$(net_units_of 3 223 | head -5 | tr '\n' ' ')
    NETNS_C216=$(net_units_of 3 216 | head -5 | tr '\n' ' ')
    for c in $NETNS_C223; do netns_node "$c" 223 || return 1; done
    for c in $NETNS_C216; do
        i=$((i + 1))
        if [ $i -le 2 ]; then netns_node "$c" 216 --relay || return 1; else netns_node "$c" 216 || return 1; fi
    done
    t1=$SECONDS
    net_start_all
    netns_sampler_start
    # every commune says HELLO and streams: one value each, through to the province
    for c in $(net_communes); do net_lt "$c" set PARENTS_INF 2024Q1 1 >/dev/null || return 1; done
    net_wait_converged 120 || return 1
    echo "# bed: $((t1 - t0)) s to make ${#NET_NODES[@]} nodes, $((SECONDS - t1)) s to start them and converge"
}

netns_now() { date +%s.%N; }
netns__quiet() { "$@" >/dev/null; }

# The upstream half of `lienthong status --json` at UNIT, one line
netns_upstream_status() { net_lt "$1" status --json | tr -d '\n' | sed 's/.*"upstream":\[\({[^}]*}\)\].*/\1/'; }

# TCP segments retransmitted inside UNIT's namespace so far
netns_retrans() {
    ip netns exec "$(netns_ns "$1")" awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1 } else print $c }' /proc/net/snmp
}
netns_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

netns_scenario_begin() {
    echo "# ---- scenario: $1"
    NETNS_MARK=$(netns_mark)
    NETNS_ISSUED0=$(netns_issued)
}

# Why a network has not converged: outboxes, and the status of every node with a backlog.
# netns_explain_logs N: the last N log lines of every node still holding rows and of
# its parent (what a stuck link said about itself, from both ends)
netns_explain_logs() {
    local u p n shown=" "
    for u in "${NET_NODES[@]}"; do
        n=$(net_psql "$u" "SELECT count(*) FROM lt.outbox" 2>/dev/null)
        [ "${n:-0}" = 0 ] && continue
        for p in "$u" "${NET_PARENT[$u]:-}"; do
            [ -n "$p" ] && [[ "$shown" != *" $p "* ]] || continue
            shown="$shown$p "
            echo "# last lines of $p's log:"
            tail -"$1" "$NET_DIR/nodes/$p.log" | sed 's/^/#   /'
        done
    done
}

netns_explain() {
    local u n
    for u in "${NET_NODES[@]}"; do
        n=$(net_psql "$u" "SELECT count(*) FROM lt.outbox" 2>&1)
        echo "# $u: outbox $n, daemon $(net_alive "$u" && echo up || echo down)"
        [ "$n" = 0 ] || net_lt "$u" status 2>&1 | sed 's/^/#   /'
    done
}

# Every scenario ends here: all daemons up, the network converged (timed from HEALED,
# when the last fault was removed), the province's roll-ups equal to the ground truth,
# every node verified, leaf rows identical key by key with their versions; then the
# table line. NETNS_GT_ALSO="UNIT ..." checks those districts' roll-ups against the
# ground truth too, NETNS_DIGESTS=1 compares `lienthong digest` as well (each costs a
# few dozen client runs). The "duplicated" column counts leaf rows the province holds
# beyond the communes' plus roll-up cells counting more than the truth.
netns_scenario_end() {
    local name=$1 what=$2 healed=$3 u conv gt_out over=0 lost extra written
    for u in "${NET_NODES[@]}"; do net_alive "$u" || net_start "$u"; done
    if net_wait_converged "${NETNS_CONVERGE_S:-150}"; then
        conv="$(netns_since "$healed") s"
        ok "$name: the network converges ($conv after the last fault)"
    else
        conv="not in ${NETNS_CONVERGE_S:-150} s"
        not_ok "$name: the network converges"
        netns_explain
        netns_explain_logs 25
    fi
    local t_checks=$SECONDS
    written=${NETNS_WRITTEN:-$(($(netns_issued) - NETNS_ISSUED0))}
    gt_out=$(net_ground_truth 24)
    if [ $? -eq 0 ]; then
        ok "$name: province roll-ups equal the ground truth from the commune databases"
    else
        not_ok "$name: province roll-ups equal the ground truth from the commune databases"
        echo "$gt_out" | sed 's/^/#   /'
        over=$(echo "$gt_out" | awk -F'|' '$1 == "value" && ($8 + 0 > $7 + 0) { n++ }
                                           $1 == "case" && ($6 + 0 > $5 + 0) { n++ } END { print n + 0 }')
    fi
    for u in ${NETNS_GT_ALSO:-}; do
        check "$name: district $u roll-ups equal the ground truth of its communes" netns__quiet net_ground_truth "$u"
    done
    check "$name: verify passes at every node" net_verify_all
    [ -z "${NETNS_DIGESTS:-}" ] ||
        check "$name: every commune's leaf rows are at the province, identical (digest)" net_digests_match 24
    read -r lost extra < <(netns_lost_dup 24)
    if [ "$lost" = 0 ] && [ "$extra" = 0 ]; then
        ok "$name: key by key, no leaf row lost or stale at the province, none extra"
    else
        not_ok "$name: key by key, $lost leaf rows lost or stale at the province, $extra extra"
    fi
    echo "# $name: checks took $((SECONDS - t_checks)) s"
    netns_table "$name" "$written" "$what" "$lost" "$((extra + over))" "$conv" "$(netns_peak_since "$NETNS_MARK")"
}

# SIGTERM, and how long the daemon takes to exit (ms; 0 if it was not running).
# After 20 s it is killed and the answer is "stuck".
netns_term() {
    local pid t0
    pid=$(net_pid "$1") || { echo 0; return; }
    t0=$(date +%s%N)
    kill -TERM "$pid" 2>/dev/null || { echo 0; return; }
    for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
        echo stuck
    else
        echo $((($(date +%s%N) - t0) / 1000000))
    fi
    net_kill "$1" KILL
}

# Outgoing connection attempts (TCP SYN) of UNIT towards PORT, one timestamp a line in
# FILE, for observing reconnect back-off. Needs python3 (AF_PACKET); returns 1 without.
netns_syn_watch_start() {
    command -v python3 >/dev/null || return 1
    ip netns exec "$(netns_ns "$1")" python3 -c '
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL sees outgoing
s.bind(("lt0", 0))
port, out = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
while True:
    pkt, addr = s.recvfrom(65535)
    ip = pkt[14:]
    if addr[2] != socket.PACKET_OUTGOING or pkt[12:14] != b"\x08\x00" or len(ip) < 40 or ip[9] != 6:
        continue
    tcp = ip[(ip[0] & 15) * 4:]
    if struct.unpack("!H", tcp[2:4])[0] == port and tcp[13] & 0x12 == 0x02:
        out.write("%.3f\n" % time.time())
' "$2" "$3" &
    NETNS_BG_PIDS+=($!)
    disown $!
}

# "N attempts; first intervals ...; later: mean M s, min m, max x" from a watch file
netns_syn_summary() {
    awk 'NR > 1 { d[++n] = $1 - p } { p = $1 }
         END {
             printf "%d attempts; first intervals", n + 1
             for (i = 1; i <= n && i <= 6; i++) printf " %.2f", d[i]
             lo = 1e9; hi = 0; s = 0; k = 0
             for (i = 7; i <= n; i++) { s += d[i]; k++; if (d[i] < lo) lo = d[i]; if (d[i] > hi) hi = d[i] }
             if (k) printf "; later %d: mean %.2f s, min %.2f, max %.2f", k, s / k, lo, hi
             printf "\n"
         }' "$1"
}
