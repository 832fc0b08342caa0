#!/usr/bin/env bash
# it_resync.sh — communes restored from an old backup (pg_dump, more writes that reach
# the province, drop, restore). Their sequence goes backwards, and it must be detected,
# reported and resolved without loss or double counting (schemas/protocol.md, "Full
# resync"):
#   ra reconnects before it writes: the parent's position is beyond anything ra issued;
#   rb writes first, past the parent's position: the positions look fine, and only the
#      token of the row at that position shows that rb is not the database that sent it.
# Resolved means: the province and the district count exactly what the communes hold
# now (ground truth, digests), every node verifies, and what the restores lost is set
# aside at every level above, counted in the links' status, and not counted.
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=vn2024
net_setup "$(mktemp -d /tmp/lt-resync.XXXXXX)"
net_node 24 ""
net_node 223 24
cs=($(net_units_of 3 223 | head -3))
for c in "${cs[@]}"; do net_node "$c" 223; done
net_start_all
ra=${cs[0]} rb=${cs[1]} rc=${cs[2]}

as_lt() { PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$@"; }
leaf_keys() { # leaf_keys NODE UNIT: "kind|key version" of UNIT's rows at NODE
    net_psql "$1" "SELECT 'v|' || element || '|' || period || '|' || disagg || ' ' || version
                     FROM lt.data_value WHERE unit_code = '$2'
                   UNION ALL SELECT 'c|' || case_id || ' ' || version FROM lt.case_record WHERE unit_code = '$2'" | sort
}

for u in "$ra" "$rb" "$rc"; do net_lt "$u" generate --seed 900 --year 2024 --cases 6 >/dev/null; done
check "the network converges before the backups" net_wait_converged 60
for u in "$ra" "$rb"; do
    as_lt "$PG_BIN/pg_dump" -Fc --create -f "$NET_DIR/$u.dump" "$(net_db "$u")" || not_ok "pg_dump of $u"
    # written after the backup: new versions of the same rows and new cases, acknowledged
    net_lt "$u" generate --seed 901 --year 2024 --cases 3 >/dev/null
    net_lt "$u" set PARENTS_INF 2024Q4 777 >/dev/null
done
check "the writes after the backups reach the province" net_wait_converged 60
for u in "$ra" "$rb"; do leaf_keys 24 "$u" >"$NET_DIR/$u.before"; done

for u in "$ra" "$rb"; do
    net_kill "$u" TERM
    as_lt "$PG_BIN/dropdb" --force "$(net_db "$u")"
    as_lt "$PG_BIN/pg_restore" --create -d postgres "$NET_DIR/$u.dump" || not_ok "pg_restore of $u"
done
# rb writes new keys before its daemon starts: its sequence passes the parent's position
for y in 2022 2023; do net_lt "$rb" generate --seed 902 --year $y --months 12 --cases 2 >/dev/null; done
net_start "$ra"
net_start "$rb"
net_lt "$rc" set PARENTS_INF 2024Q3 66 >/dev/null # a commune that was never restored writes meanwhile
check "the network converges after the restores" net_wait_converged 90
for u in "$ra" "$rb"; do leaf_keys "$u" "$u" >"$NET_DIR/$u.now"; done # what the resyncs sent
net_lt "$ra" set PARENTS_INF 2024Q3 55 >/dev/null # ra goes on with its work
check "the network converges after a write at a restored commune" net_wait_converged 30

# detected and reported, at the commune and on its parent's link
for u in "$ra" "$rb"; do
    line=$(grep -h "full resync" "$NET_DIR/nodes/$u.log" | tail -1)
    echo "# $u: ${line#*upstream: }"
    up=$(net_psql "$u" "SELECT resyncs || ' ' || coalesce(last_resync, '') FROM lt.upstream")
    link=$(net_psql 223 "SELECT resyncs || ' ' || held_rows || ' ' || coalesce(last_error, '') FROM lt.child_link
                          WHERE child_unit = '$u'")
    echo "# 223 about $u: $link"
    [[ "$up" =~ ^[1-9] ]] && [[ "$link" =~ ^[1-9]\ [1-9][0-9]*\ full\ resync\ of\ $u\ ended ]]
    ok_if "$u: the restore is detected (log, lt.upstream.last_resync) and reported on 223's link" $?
done
grep -q "restored from an older backup and has written since" "$NET_DIR/nodes/$rb.log"
ok_if "$rb, which wrote past the parent's position, is recognised by the token of the row at that seq" $?
grep -q "this database was restored from an older backup" "$NET_DIR/nodes/$ra.log"
ok_if "$ra, which did not write first, is recognised by the parent's position beyond its sequence" $?
rc_resyncs=$(net_psql "$rc" "SELECT resyncs FROM lt.upstream")
check "a commune that was not restored is not resynced (resyncs $rc_resyncs)" eq rc "$rc_resyncs" 0

# resolved: the levels above count what the communes hold now, nothing more or less
check "province roll-ups equal the ground truth of the communes" net_ground_truth 24
check "district 223 roll-ups equal the ground truth of its communes" net_ground_truth 223
check "every commune's leaf rows are at the province, identical (digest)" net_digests_match 24
check "verify passes at every node" net_verify_all
for u in "$ra" "$rb" "$rc"; do
    mine=$(net_psql "$u" "SELECT value FROM lt.data_value WHERE element = 'PARENTS_INF' AND period = '2024Q3'")
    theirs=$(net_psql 24 "SELECT value FROM lt.data_value WHERE unit_code = '$u' AND element = 'PARENTS_INF'
                           AND period = '2024Q3'")
    check "$u's write after the restore is the province's value ($mine)" eq "$u" "$theirs" "$mine"
done
n23=$(net_psql 24 "SELECT count(*) FROM lt.data_value WHERE unit_code = '$rb' AND period < '2024'")
mine23=$(net_psql "$rb" "SELECT count(*) FROM lt.data_value WHERE period < '2024'")
check "$rb's writes made before it reconnected all reached the province ($mine23 rows)" eq rb23 "$n23" "$mine23"

# not silent: what the restores lost is set aside at every level, row for row (and stays
# there when the commune later writes such a row again: the lost version is still lost)
for u in "$ra" "$rb"; do
    # rows the province had before that the commune no longer has at that version or newer
    lost=$(awk 'FNR == NR { v[$1] = $2; next } !($1 in v) || v[$1] + 0 < $2 + 0 { n++ } END { print n + 0 }' \
        "$NET_DIR/$u.now" "$NET_DIR/$u.before")
    for node in 223 24; do
        held=$(net_psql "$node" "SELECT count(*) FROM lt.resync_held WHERE resync_unit = '$u' AND outcome IS NOT NULL")
        check "$node set aside the $lost rows $u lost (got $held)" eq "held-$node-$u" "$held" "$lost"
    done
    [ "$lost" -gt 0 ] || not_ok "$u: the scenario lost nothing, so it proves nothing"
done
missing=$(net_psql 24 "SELECT count(*) FILTER (WHERE outcome = 'missing') || ' missing, ' ||
                              count(*) FILTER (WHERE outcome = 'older') || ' older' FROM lt.resync_held")
echo "# province: set aside $missing"
audit=$(net_psql 24 "SELECT count(*) FROM lt.audit WHERE action = 'set aside'")
[ "$audit" -gt 0 ]
ok_if "the province's audit trail records each row it set aside ($audit)" $?

# from "set aside" back to the commune: the district's operator lists the rows and
# exports ra's lost values as an import file; ra's officer re-enters them
listed=$(net_lt 223 held --unit "$ra" | grep -c " $ra ")
held=$(net_psql 223 "SELECT count(*) FROM lt.resync_held WHERE unit_code = '$ra' AND outcome IS NOT NULL")
check "lienthong held at 223 lists every row set aside for $ra ($listed of $held)" eq listed "$listed" "$held"
net_lt 223 held --unit "$ra" --csv >"$NET_DIR/$ra.held.csv"
n_csv=$(($(wc -l <"$NET_DIR/$ra.held.csv") - 1))
echo "# $ra's lost values as an import file: $n_csv rows; $(head -1 "$NET_DIR/$ra.held.csv")"
check "the export is an import file (header element,period,disagg,value)" \
    eq header "$(head -1 "$NET_DIR/$ra.held.csv")" "element,period,disagg,value"
check "the export holds the value written after the backup and lost by the restore (PARENTS_INF 2024Q4 777)" \
    grep -qx "PARENTS_INF,2024Q4,,777" "$NET_DIR/$ra.held.csv"
check "the export holds more than that one row ($n_csv rows)" test "$n_csv" -gt 1
check "$ra re-enters them with lienthong import" net_lt "$ra" import "$NET_DIR/$ra.held.csv"
check "the network converges after the re-entry" net_wait_converged 30
check "at the province, $ra's PARENTS_INF 2024Q4 is 777 again" \
    eq reentered "$(net_psql 24 "SELECT value FROM lt.data_value WHERE unit_code = '$ra' AND element = 'PARENTS_INF' AND period = '2024Q4' AND disagg = ''")" 777
check "nothing of $ra is left to re-enter (the export is only its header)" \
    eq left "$(net_lt 223 held --unit "$ra" --csv | wc -l)" 1
check "province roll-ups equal the ground truth after the re-entry" net_ground_truth 24
check "held --csv without --unit is refused (exit 2)" eq usage "$(net_lt 223 held --csv >/dev/null 2>&1; echo $?)" 2
check_done
