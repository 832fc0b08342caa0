# net.sh — a local lienthong network for tests and the demo: one throwaway
# PostgreSQL cluster, one database and one lienthongd per node, on loopback.
# Source it (after setting LT_ROOT to the repository root, or from inside it):
#
#   net_setup DIR                 start the cluster in DIR; cleanup on EXIT
#   net_node UNIT [PARENT] [conf-line ...]
#                                 create the node's database, key pair and config, run
#                                 `lienthong init`, add the node's key to its parent's allow-list
#   net_start UNIT / net_kill UNIT [SIGNAL] / net_stop_all / net_alive UNIT
#   net_hup UNIT                  rewrite UNIT's daemon config and send SIGHUP (reload)
#   net_lt UNIT ARGS...           run the CLI against UNIT's node
#   net_psql UNIT SQL             psql -At on UNIT's database (as the cluster's superuser)
#   net_endpoint UNIT             the endpoint UNIT binds for its children
#   net_wait_converged SECONDS    until every outbox is empty (leaves first); 1 on timeout
#   net_ground_truth TOP          compare TOP's roll-ups with sums computed from the communes
#   net_verify_all                `lienthong verify` at every node
#   net_digests_match TOP         every commune's leaf rows equal TOP's copy of them
#
# Units are real codes; a node's level follows its code (5 digits commune, 3 district,
# 2 province). Nodes with children bind 127.0.0.1 ports from NET_PORT_BASE.
#
# Security as in production, unless NET_SECURITY=plaintext: links are CURVE, each node
# has a key pair from `lienthong keygen` (nodes/UNIT.keys/), and a parent's allow-list
# (nodes/UNIT.children) holds its children's public keys. No superuser at run time: the
# CLI (init, migrate, officers' commands) connects as the schema owner lt_owner (not a
# superuser), each daemon as its own login role ltd_UNIT, a member of lienthong_daemon
# (schemas/migrations/0005_security.sql), from nodes/UNIT.daemon.conf, which net_start
# writes from nodes/UNIT.conf with only node.database changed: edit nodes/UNIT.conf.

LT_ROOT=${LT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$LT_ROOT/tests/lib/pg.sh"

LT_BIN=${LT_BIN:-$LT_ROOT/build}
NET_DIR=
NET_PORT_BASE=${NET_PORT_BASE:-$((20000 + (RANDOM % 400) * 100))}
declare -gA NET_PORT NET_PARENT
declare -ga NET_NODES

net_cleanup() {
    local rc=$?
    [ -n "$NET_DIR" ] || return $rc
    net_stop_all >/dev/null 2>&1
    pg_stop "$NET_DIR/pg"
    if [ -z "${LT_KEEP:-}" ]; then rm -rf "$NET_DIR"; fi
    return $rc
}

net_setup() {
    NET_DIR=$(mkdir -p "$1" && cd "$1" && pwd)
    mkdir -p "$NET_DIR/nodes"
    trap net_cleanup EXIT
    trap 'exit 130' INT TERM
    pg_start "$NET_DIR/pg" || return 1
    net__sql postgres "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lt_owner') THEN
            CREATE ROLE lt_owner LOGIN CREATEROLE;
        END IF; END \$\$" || return 1
    : >"$NET_DIR/topology"
    NET_NODES=()
}

net_conf() { echo "$NET_DIR/nodes/$1.conf"; }
net_daemon_conf() { echo "$NET_DIR/nodes/$1.daemon.conf"; }
net_keys() { echo "$NET_DIR/nodes/$1.keys"; }
net_allowlist() { echo "$NET_DIR/nodes/$1.children"; }
net_db() { echo "n$1"; }
net_daemon_role() { echo "ltd_$1"; }
net__conninfo() { echo "host=$NET_DIR/pg/sock user=$2 dbname=$(net_db "$1")"; }
net__sql() { # net__sql DB SQL: as the cluster's superuser
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}
net_endpoint() { echo "tcp://127.0.0.1:${NET_PORT[$1]}"; }

net_node() {
    local unit=$1 parent=${2:-}
    shift 2 2>/dev/null || shift $#
    local conf
    conf=$(net_conf "$unit")
    NET_PARENT[$unit]=$parent
    NET_NODES+=("$unit")
    echo "$unit ${parent:--}" >>"$NET_DIR/topology"
    if [ ${#unit} -lt 5 ]; then
        NET_PORT[$unit]=$((NET_PORT_BASE + ${#NET_NODES[@]}))
    fi
    local pub=
    if [ "${NET_SECURITY:-curve}" != plaintext ]; then
        pub=$("$LT_BIN/lienthong" keygen "$(net_keys "$unit")" 2>/dev/null) \
            || { echo "net: keygen for $unit failed" >&2; return 1; }
    fi
    {
        echo "[node]"
        echo "unit = $unit"
        echo "database = $(net__conninfo "$unit" lt_owner)"
        if [ -n "$parent" ]; then
            echo "[parent]"
            echo "endpoint = $(net_endpoint "$parent")"
        fi
        if [ -n "${NET_PORT[$unit]:-}" ]; then
            echo "[children]"
            echo "bind = $(net_endpoint "$unit")"
        fi
        echo "[security]"
        if [ -n "$pub" ]; then
            echo "mode = curve"
            echo "secret_key_file = $(net_keys "$unit")/secret.key"
            echo "public_key_file = $(net_keys "$unit")/public.key"
            [ -n "$parent" ] && echo "parent_public_key_file = $(net_keys "$parent")/public.key"
            [ -n "${NET_PORT[$unit]:-}" ] && echo "children_keys_file = $(net_allowlist "$unit")"
        else
            echo "mode = plaintext"
        fi
        echo "[sync]"
        echo "ack_timeout_ms = ${NET_ACK_TIMEOUT_MS:-5000}"
        echo "[net]"
        echo "heartbeat_ivl_ms = 1000"
        echo "heartbeat_timeout_ms = 4000"
        echo "reconnect_min_ms = 100"
        echo "reconnect_max_ms = 2000"
        echo "[status]"
        echo "stats_interval_ms = ${NET_STATS_MS:-2000}"
        for line in "$@"; do echo "$line"; done
    } >"$conf"
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/createdb" -O lt_owner "$(net_db "$unit")" || return 1
    "$LT_BIN/lienthong" init -c "$conf" --units "${NET_UNITS:-all}" >"$NET_DIR/nodes/$unit.init.log" 2>&1 \
        || { cat "$NET_DIR/nodes/$unit.init.log" >&2; return 1; }
    # the daemon's own login role, allowed into this node's database only
    local role db
    role=$(net_daemon_role "$unit")
    db=$(net_db "$unit")
    net__sql postgres "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN
            CREATE ROLE $role LOGIN NOSUPERUSER IN ROLE lienthong_daemon;
        END IF; END \$\$;
        REVOKE CONNECT ON DATABASE $db FROM PUBLIC;
        GRANT CONNECT ON DATABASE $db TO $role, lienthong_reader, lienthong_officer" || return 1
    if [ -n "${NET_PORT[$unit]:-}" ] && [ -n "$pub" ]; then
        touch "$(net_allowlist "$unit")"
    fi
    if [ -n "$parent" ] && [ -n "$pub" ]; then
        echo "$unit $pub" >>"$(net_allowlist "$parent")"
        net_alive "$parent" && kill -HUP "$(net_pid "$parent")"
    fi
    return 0
}

net_lt() {
    local unit=$1
    shift
    "$LT_BIN/lienthong" "$@" -c "$(net_conf "$unit")"
}

net_psql() {
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$(net_db "$1")" -c "$2"
}

# The daemon's configuration: the node's, connecting as the daemon's role.
net__daemon_conf() {
    local unit=$1
    sed "s|^database = .*|database = $(net__conninfo "$unit" "$(net_daemon_role "$unit")")|" \
        "$(net_conf "$unit")" >"$(net_daemon_conf "$unit")"
}

net_start() {
    local unit=$1
    net__daemon_conf "$unit"
    "$LT_BIN/lienthongd" -c "$(net_daemon_conf "$unit")" >>"$NET_DIR/nodes/$unit.log" 2>&1 &
    echo $! >"$NET_DIR/nodes/$unit.pid"
    disown $! 2>/dev/null || true
}

net_pid() { cat "$NET_DIR/nodes/$1.pid" 2>/dev/null; }

net_hup() {
    net__daemon_conf "$1"
    kill -HUP "$(net_pid "$1")"
}

net_alive() {
    local pid
    pid=$(net_pid "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

net_kill() {
    local unit=$1 sig=${2:-TERM} pid
    pid=$(net_pid "$unit") || return 0
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; sleep 0.1; fi
    rm -f "$NET_DIR/nodes/$unit.pid"
}

net_start_all() { for u in "${NET_NODES[@]}"; do net_start "$u"; done; }

net_stop_all() {
    local u
    for u in "${NET_NODES[@]}"; do
        [ -f "$NET_DIR/nodes/$u.pid" ] && kill -TERM "$(net_pid "$u")" 2>/dev/null
    done
    for u in "${NET_NODES[@]}"; do net_kill "$u"; done
}

net_children() { awk -v p="$1" '$2 == p { print $1 }' "$NET_DIR/topology"; }
net_communes() { awk 'length($1) == 5 { print $1 }' "$NET_DIR/topology"; }

# Every node with a parent has an empty outbox; leaves first, so that once they are
# empty (and nothing writes any more) the tiers above only drain.
net_wait_converged() {
    local deadline=$((SECONDS + ${1:-60})) u n
    for len in 5 3; do
        for u in "${NET_NODES[@]}"; do
            [ ${#u} -eq $len ] && [ -n "${NET_PARENT[$u]}" ] || continue
            while :; do
                n=$(net_psql "$u" "SELECT count(*) FROM lt.outbox" 2>/dev/null || echo x)
                [ "$n" = 0 ] && break
                [ $SECONDS -ge $deadline ] && { echo "net: $u still has outbox '$n'" >&2; return 1; }
                sleep 0.2
            done
        done
    done
}

# Ground truth, computed independently of the roll-up machinery: each commune's own
# leaf rows summed with a plain GROUP BY, attributed to the commune's ancestors by the
# test topology (not the unit tables), all loaded into a scratch database and compared
# with TOP's maintained roll-ups. Prints differences; returns 1 if any.
net_ground_truth() {
    local top=$1 gt=gt_$$ u a f="$NET_DIR/gt.tsv" c="$NET_DIR/gtc.tsv"
    : >"$f"
    : >"$c"
    for u in $(net_communes); do
        # only communes inside TOP's subtree count
        a=$u
        while [ -n "$a" ] && [ "$a" != "$top" ]; do a=${NET_PARENT[$a]}; done
        [ "$a" = "$top" ] || continue
        a=$u
        while [ -n "$a" ]; do
            net_psql "$u" "COPY (SELECT '$a', element, period, disagg, sum(value), count(*) FROM lt.data_value
                           WHERE value IS NOT NULL AND unit_code = '$u' GROUP BY 2, 3, 4) TO STDOUT" >>"$f"
            net_psql "$u" "COPY (SELECT '$a', lt.month_of(notified_at), b.cat, status, count(*) FROM lt.case_record,
                           LATERAL (SELECT 0 AS cat UNION ALL SELECT g + 1 FROM generate_series(0, 16) g
                                    WHERE categories & (1 << g) <> 0) b
                           WHERE NOT deleted AND unit_code = '$u' GROUP BY 1, 2, 3, 4) TO STDOUT" >>"$c"
            [ "$a" = "$top" ] && break
            a=${NET_PARENT[$a]}
        done
    done
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/createdb" "$gt"
    local q="PGHOST=$NET_DIR/pg/sock"
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$gt" <<SQL
CREATE TABLE truth (unit text, element text, period text, disagg text, total numeric, n bigint);
CREATE TABLE truthc (unit text, period text, category int, status text, n bigint);
CREATE TABLE kept (unit text, element text, period text, disagg text, total numeric, n bigint);
CREATE TABLE keptc (unit text, period text, category int, status text, n bigint);
\copy truth FROM '$f'
\copy truthc FROM '$c'
SQL
    net_psql "$top" "COPY (SELECT unit_code, element, period, disagg, total, n_rows FROM lt.rollup_value WHERE n_rows <> 0) TO STDOUT" >"$NET_DIR/kept.tsv"
    net_psql "$top" "COPY (SELECT unit_code, period, category, status, n FROM lt.rollup_case WHERE n <> 0) TO STDOUT" >"$NET_DIR/keptc.tsv"
    local diff
    diff=$(PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$gt" <<SQL
\copy kept FROM '$NET_DIR/kept.tsv'
\copy keptc FROM '$NET_DIR/keptc.tsv'
WITH t AS (SELECT unit, element, period, disagg, sum(total) AS total, sum(n) AS n FROM truth GROUP BY 1, 2, 3, 4),
     tc AS (SELECT unit, period, category, status, sum(n) AS n FROM truthc GROUP BY 1, 2, 3, 4)
SELECT 'value', coalesce(t.unit, k.unit), coalesce(t.element, k.element), coalesce(t.period, k.period),
       t.total, k.total, t.n, k.n
  FROM t FULL JOIN kept k USING (unit, element, period, disagg)
 WHERE t.total IS DISTINCT FROM k.total OR t.n IS DISTINCT FROM k.n
UNION ALL
SELECT 'case', coalesce(t.unit, k.unit), coalesce(t.period, k.period), coalesce(t.category, k.category)::text,
       t.n, k.n, NULL, NULL
  FROM tc t FULL JOIN keptc k USING (unit, period, category, status)
 WHERE t.n IS DISTINCT FROM k.n
LIMIT 20;
SELECT 'checked: ' || (SELECT count(*) FROM kept) || ' value and ' || (SELECT count(*) FROM keptc) || ' case roll-ups at $top equal the truth';
SQL
)
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/dropdb" "$gt"
    echo "$diff" | grep -v '^checked' | grep . && return 1
    NET_GT_SUMMARY=$(echo "$diff" | grep '^checked')
    echo "# $NET_GT_SUMMARY"
    return 0
}

net_verify_all() {
    local u bad=0
    for u in "${NET_NODES[@]}"; do
        net_lt "$u" verify >"$NET_DIR/verify.$u.out" 2>&1 || { bad=1; cat "$NET_DIR/verify.$u.out" >&2; }
    done
    return $bad
}

net_digests_match() {
    local top=$1 u mine theirs bad=0
    for u in $(net_communes); do
        mine=$(net_lt "$u" digest "$u")
        theirs=$(net_lt "$top" digest "$u")
        if [ "$mine" != "$theirs" ]; then
            echo "digest differs for $u: commune [$mine] $top [$theirs]" >&2
            bad=1
        fi
    done
    return $bad
}

# The communes of a district (three-tier list) or of a province (two-tier list), from
# the shipped unit lists.
net_units_of() {
    local tiers=$1 parent=$2
    if [ "$tiers" = 3 ]; then
        awk -F, -v d="$parent" 'NR > 1 && $4 == d { print $7 }' "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv"
    else
        awk -F, -v p="$parent" 'NR > 1 && $2 == p { print $1 }' "$LT_ROOT/schemas/units/vn_2025_communes.csv"
    fi
}
