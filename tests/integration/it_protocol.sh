#!/usr/bin/env bash
# it_protocol.sh — the parent side of protocol v1 (schemas/protocol.md), driven
# byte by byte: a real district node (223, Huyện Hiệp Hòa, 2024 three-tier
# geography) runs lienthongd on its own PostgreSQL, and tests/tools/ltpeer plays
# its commune 07840 (Thị trấn Thắng) over CURVE with a key pair in 223's allow-list
# (over plaintext ZeroMQ when NET_SECURITY=plaintext).
#
# What it holds the parent to: HELLO is answered from the database; batches are
# applied once (versions win, duplicates and older versions change nothing,
# roll-ups follow exactly); a gap gets RESUME and applies nothing; a record for a
# unit outside the child's subtree is refused alone (code 7) and the link keeps
# going; a record the database refuses is isolated and quarantined (code 8);
# hostile frames each get the right ERROR, a log line and a counter, and never
# hurt the daemon or the other children.
#
# Output: one `ok - ...` / `not ok - ...` line per check; exit 0 when all pass.
set -uo pipefail
export LT_ROOT=${LT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
# shellcheck source=tests/lib/net.sh
. "$LT_ROOT/tests/lib/net.sh"

WORK=$(mktemp -d /tmp/lt-it-protocol.XXXXXX)
net_setup "$WORK" || { echo "not ok - throwaway PostgreSQL starts"; exit 1; }

# The peer: the Makefile's build/tests/ltpeer, else compiled here.
PEER=${LT_PEER:-$LT_BIN/tests/ltpeer}
if [ ! -x "$PEER" ]; then
    PEER=$WORK/ltpeer
    # shellcheck disable=SC2046
    cc -std=c11 -D_GNU_SOURCE -O2 -I"$LT_ROOT/common" $(pkg-config --cflags libpq libzmq msgpack libuv inih) \
        -o "$PEER" "$LT_ROOT/tests/tools/ltpeer.c" "$LT_ROOT"/common/wire_*.c "$LT_ROOT/common/log.c" \
        "$LT_ROOT/common/keys.c" \
        $(pkg-config --libs libzmq msgpack) -lm \
        || { echo "not ok - ltpeer builds"; exit 1; }
fi

. "$LT_ROOT/tests/lib/check.sh"
# nth N: line N of the last peer run's output (comments and blank lines of the
# commands print nothing, so N counts commands)
nth() { sed -n "${1}p" <<<"$OUT"; }
PEER_CURVE=()
peer() { # peer < commands: run one ltpeer session against 223; output in OUT
    OUT=$("$PEER" "${PEER_CURVE[@]}" "$EP" 2>>"$WORK/ltpeer.err")
    printf '%s\n' "$OUT" | sed 's/^/#   peer: /' >&2
}
sql() { net_psql 223 "$1"; }
rollup() { sql "SELECT coalesce(sum(total), 0) FROM lt.rollup_value WHERE unit_code = '223' AND element = 'PARENTS_INF'"; }
value_of() { sql "SELECT coalesce(value::text, 'nil') FROM lt.data_value WHERE unit_code = '$1' AND element = '$2' AND period = '$3'"; }
link() { sql "SELECT $1 FROM lt.child_link WHERE child_unit = '07840'"; }
# shellcheck disable=SC2016 # the inner script expands its own $1
metric() { # metric NAME: its value on 223's /metrics (plain HTTP/1.0 over bash's /dev/tcp)
    timeout 3 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1#*:}" && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$METRICS" \
        | tr -d '\r' | awk -v m="lienthong_$1" 'index($0, m "{") == 1 { print $2 }'
}
log_has() { grep -c -- "$1" "$NET_DIR/nodes/223.log"; }

# ---------------------------------------------------------------- the network
METRICS=127.0.0.1:$((NET_PORT_BASE + 99))
NET_UNITS=vn2024 net_node 223 "" "metrics_listen = $METRICS" \
    || { echo "not ok - district node 223 initialises"; exit 1; }
if [ "${NET_SECURITY:-curve}" != plaintext ]; then
    # the peer's own key pair, in 223's allow-list as 07840
    pub=$("$LT_BIN/lienthong" keygen "$WORK/peer07840" 2>/dev/null) || { echo "not ok - keygen for the peer"; exit 1; }
    echo "07840 $pub" >>"$(net_allowlist 223)"
    PEER_CURVE=(--curve "$(net_keys 223)/public.key" "$WORK/peer07840/public.key" "$WORK/peer07840/secret.key")
fi
net_start 223
EP=$(net_endpoint 223)
for _ in $(seq 1 100); do
    grep -q "pgconn: connected" "$NET_DIR/nodes/223.log" 2>/dev/null && break
    sleep 0.1
done
check "lienthongd 223 starts and reaches its database" grep -q "pgconn: connected" "$NET_DIR/nodes/223.log"

# ---------------------------------------------------------------- 1-5: one session as 07840
peer <<'EOF'
hello 07840 0
# 2. three values
value 1 07840 PARENTS_INF 202401 - 10 10
value 2 07840 PARENTS_INF 202402 - 20 10
value 3 07840 PARENTS_INF 202403 - 30 10
send 0 3
EOF
check "1. HELLO as 07840 is welcomed by 223 from seq 0" eq welcome "$(nth 1)" "welcome 223 0"
check "2. a batch of 3 values is acked with 3 applied" eq ack "$(nth 5)" "ack 3 3 0"
check "2. the 3 rows are in 223's lt.data_value, marked as received from 07840" \
    eq rows "$(sql "SELECT string_agg(period || '=' || value || '@' || version || '/' || via, ' ' ORDER BY period)
                    FROM lt.data_value WHERE unit_code = '07840' AND element = 'PARENTS_INF'")" \
    "202401=10@10/07840 202402=20@10/07840 202403=30@10/07840"
check "2. 223's roll-up equals the sum (10+20+30), period by period" \
    eq rollup "$(rollup) $(sql "SELECT string_agg(period || '=' || total, ' ' ORDER BY period) FROM lt.rollup_value
                               WHERE unit_code = '223' AND element = 'PARENTS_INF'")" \
    "60 202401=10 202402=20 202403=30"
check "2. the link's position is 3" eq last_applied_seq "$(link last_applied_seq)" 3

batches_before=$(link batches)
peer <<'EOF'
hello 07840 3
value 1 07840 PARENTS_INF 202401 - 10 10
value 2 07840 PARENTS_INF 202402 - 20 10
value 3 07840 PARENTS_INF 202403 - 30 10
send 0 3
resend
# 3. an older version (5) of 202401 under new seqs: acked, changes nothing
value 4 07840 PARENTS_INF 202401 - 999 5
send 3 4
# 3. a newer version (20): changes the value, the roll-up moves by +5
value 5 07840 PARENTS_INF 202401 - 15 20
send 4 5
EOF
check "3. a session resumes after the last applied seq (welcome 223 3)" eq welcome "$(nth 1)" "welcome 223 3"
check "3. the same batch again is acked as a duplicate, nothing applied" eq ack "$(nth 5)" "ack 3 0 0"
check "3. the same frame resent byte for byte is acked the same way" eq ack "$(nth 6)" "ack 3 0 0"
check "3. duplicates left lt.child_link.batches unchanged" \
    eq batches "$(( $(link batches) - 2 ))" "$batches_before"
check "3. a batch with an older version (5) is acked, nothing refused" grep -Eq "^ack 4 [0-9]+ 0$" <<<"$(nth 8)"
check "3. a newer version (20) is acked" eq ack "$(nth 10)" "ack 5 1 0"
check "3. the older version did not win, the newer one did: 202401 = 15 at version 20" \
    eq row "$(sql "SELECT value || '@' || version FROM lt.data_value
                    WHERE unit_code = '07840' AND element = 'PARENTS_INF' AND period = '202401'")" "15@20"
check "3. the roll-up moved by exactly the difference (60 -> 65; 202401: 15)" \
    eq rollup "$(rollup) $(sql "SELECT total FROM lt.rollup_value
                               WHERE unit_code = '223' AND element = 'PARENTS_INF' AND period = '202401'")" "65 15"
check "3. lt.verify() finds the maintained roll-ups equal to a recomputation" eq verify "$(sql "SELECT count(*) FROM lt.verify()")" 0

peer <<'EOF'
hello 07840 5
# 4. a gap: prev 50 is far above the applied position 5
value 100 07840 PARENTS_INF 202404 - 7 10
send 50 100
# 5. records for another commune of 223 and for a Hà Nội ward, between two good ones
value 6 07840 PARENTS_INF 202404 - 4 10
value 7 07843 PARENTS_INF 202401 - 100 10
value 8 00001 PARENTS_INF 202401 - 100 10
value 9 07840 CHILDREN_INF 202401 - 3 10
send 5 9
# 5. the link keeps working
value 10 07840 CHILDREN_INF 202402 - 2 10
send 9 10
EOF
check "4. a gap is answered RESUME with the applied position (5)" eq resume "$(nth 3)" "resume 5"
check "4. nothing of the gapped batch was applied" \
    eq gap "$(sql "SELECT count(*) FROM lt.data_value WHERE period = '202404' AND value = 7")" 0
check "5. records for 07843 and 00001 are refused with code 7, the other two applied" \
    eq ack "$(nth 8)" "ack 9 2 2 7:7 8:7"
check "5. the refused records are in lt.rejected_delta with code 7" \
    eq rejected "$(sql "SELECT string_agg(seq || ':' || code || ':' || (record->>'unit_code'), ' ' ORDER BY seq)
                        FROM lt.rejected_delta WHERE child_unit = '07840' AND seq IN (7, 8)")" \
    "7:7:07843 8:7:00001"
check "5. nothing was written for 07843 or 00001" \
    eq foreign "$(sql "SELECT count(*) FROM lt.data_value WHERE unit_code IN ('07843', '00001')")" 0
check "5. the good records of the same batch were applied" \
    eq applied "$(value_of 07840 PARENTS_INF 202404) $(value_of 07840 CHILDREN_INF 202401)" "4 3"
check "5. the link keeps working: the next batch is acked" eq ack "$(nth 10)" "ack 10 1 0"

# ---------------------------------------------------------------- 6: sessions
ns_before=$(log_has "outside a session")
peer <<'EOF'
hello 00001 0
value 11 07840 CHILDREN_INF 202403 - 1 10
send 10 11
reconnect
value 11 07840 CHILDREN_INF 202403 - 1 10
send 10 11
EOF
check "6. HELLO as 00001 (not a child of 223) is refused with ERROR 7" grep -q '^error 7 ' <<<"$(nth 1)"
check "6. a batch after a refused HELLO gets ERROR 9 (no session)" grep -q '^error 9 ' <<<"$(nth 3)"
check "6. a batch on a fresh connection without HELLO gets ERROR 9" grep -q '^error 9 ' <<<"$(nth 6)"
check "6. both batches outside a session are logged ($(($(log_has "outside a session") - ns_before)) lines)" \
    test $(($(log_has "outside a session") - ns_before)) -eq 2
check "6. neither batch was applied (position still 10, no 202403 row)" \
    eq state "$(link last_applied_seq) $(value_of 07840 CHILDREN_INF 202403)" "10 "
check "6. the refused HELLO created no link for 00001" \
    eq link "$(sql "SELECT count(*) FROM lt.child_link WHERE child_unit = '00001'")" 0

# ---------------------------------------------------------------- 7: hostile frames
bad_before=$(metric down_bad_messages_total)
log_before=$(log_has "bad message (")
pid=$(net_pid 223)
# a valid 58-byte batch (protocol.md §8), cut after 40 bytes
truncated="95 01 03 28 29 91 99 29 01 a5 30 30 30 30 31 aa 43 4c 5f 41 54 5f 52 49 53 4b a6 32 30 32 35 51 34 a5 73 65 78 3d 46 cb"
deep=$(printf '91%.0s' $(seq 1 50))01
peer <<EOF
hello 07840 10
raw dd ff ff ff ff
raw 96 01 01 db ff ff ff ff
raw $truncated
raw $deep
raw 93 02 07 00
raw 93 01 63 00
raw 93 01 07 a1 78
raw 96 01 01 01 ae 6c 69 65 6e 74 68 6f 6e 67 64 2f 30 2e 31 2a 00
raw 94 01 02 a3 30 30 31 28
ping
rawfill 4194305 00
reconnect
hello 07840 10
ping
EOF
check "7. an array32 claiming 4 G elements gets ERROR 1" grep -q '^error 1 ' <<<"$(nth 2)"
check "7. a str32 claiming 4 GB gets ERROR 1" grep -q '^error 1 ' <<<"$(nth 3)"
check "7. a truncated valid batch gets ERROR 1" grep -q '^error 1 ' <<<"$(nth 4)"
check "7. arrays nested 50 deep get ERROR 3" grep -q '^error 3 ' <<<"$(nth 5)"
check "7. protocol version 2 gets ERROR 4 naming the version" \
    grep -q '^error 4 unsupported protocol version 2; this node speaks 1$' <<<"$(nth 6)"
check "7. unknown message type 99 gets ERROR 5" grep -q '^error 5 ' <<<"$(nth 7)"
check "7. a PING whose time is a string gets ERROR 6" grep -q '^error 6 ' <<<"$(nth 8)"
check "7. a HELLO whose unit is an integer gets ERROR 6" grep -q '^error 6 ' <<<"$(nth 9)"
check "7. a WELCOME sent to the parent (wrong direction) gets ERROR 5" grep -q '^error 5 ' <<<"$(nth 10)"
check "7. after 9 bad frames the session still answers PING" eq ping "$(nth 11)" "pong"
check "7. a frame of 4 MiB + 1 gets no answer (ZMQ_MAXMSGSIZE drops the connection)" eq oversize "$(nth 12)" "timeout"
check "7. a new connection after the oversized frame is welcomed and answers PING" \
    eq reconnect "$(nth 14) $(nth 15)" "welcome 223 10 pong"
check "7. the daemon is alive (same pid) after every hostile frame" kill -0 "$pid"
peer <<'EOF'
hello 07840 10
value 11 07840 CHILDREN_INF 202403 - 1 10
send 10 11
EOF
check "7. a valid batch from a second ltpeer is acked" eq ack "$(nth 3)" "ack 11 1 0"
for name in malformed too_deep bad_version bad_type bad_field; do
    n=$(grep -c -- "bad message ($name," "$NET_DIR/nodes/223.log")
    want=1
    case $name in malformed) want=3 ;; bad_field) want=2 ;; esac
    check "7. the daemon logged each $name frame ($want)" eq "log $name" "$n" "$want"
done
check "7. the daemon logged the wrong-direction WELCOME" grep -q "unexpected message type 2 from a child" "$NET_DIR/nodes/223.log"
check "7. 8 'bad message' log lines were added in all" eq log "$(( $(log_has "bad message (") - log_before ))" 8
bad_after=$(metric down_bad_messages_total)
check "7. /metrics down_bad_messages_total rose by at least 9 ($bad_before -> $bad_after)" \
    test -n "$bad_before" -a -n "$bad_after" -a "${bad_after:-0}" -ge $(( ${bad_before:-0} + 9 ))

# ---------------------------------------------------------------- 8: poison records
# seq 13: version 2^63 passes the wire (uint64) but not PostgreSQL's bigint.
# seq 15: a case with no category passes the wire (a bitmask) but not
#         lt.case_record's CHECK (categories > 0).
# seq 18: an unknown data element: an ordinary reject (code 6), no split.
peer <<'EOF'
hello 07840 11
value 12 07840 PARENTS_INF 202405 - 5 10
value 13 07840 PARENTS_INF 202406 - 6 9223372036854775808
value 14 07840 PARENTS_INF 202407 - 7 10
case 15 0b0c4a3e-5d2f-4b7a-9c1e-2f3a4b5c6d7e 07840 1 notified 0 1709251200000
case 16 1b0c4a3e-5d2f-4b7a-9c1e-2f3a4b5c6d7e 07840 1 notified 9 1709251200000
send 11 16
value 17 07840 PARENTS_INF 202408 - 8 10
value 18 07840 NO_SUCH_ELEMENT 202408 - 1 10
send 16 18
EOF
check "8. a batch with two poison records: every other record applied, both quarantined with code 8" \
    eq ack "$(nth 7)" "ack 16 3 2 13:8 15:8"
check "8. the quarantined records are in lt.rejected_delta with code 8" \
    eq rejected "$(sql "SELECT string_agg(seq || ':' || code, ' ' ORDER BY seq) FROM lt.rejected_delta
                        WHERE child_unit = '07840' AND seq BETWEEN 12 AND 16")" "13:8 15:8"
check "8. the rest of the batch is applied (values 5 and 7, case 1b0c...)" \
    eq applied "$(value_of 07840 PARENTS_INF 202405) $(value_of 07840 PARENTS_INF 202406) $(value_of 07840 PARENTS_INF 202407) $(sql "SELECT string_agg(left(case_id::text, 4), ' ') FROM lt.case_record")" \
    "5  7 1b0c"
check "8. an unknown data element is an ordinary reject (code 6), the other record applied" \
    eq ack "$(nth 10)" "ack 18 1 1 18:6"
check "8. the position moved past every refused record (18), the reject of 18 recorded with code 6" \
    eq link "$(link last_applied_seq) $(sql "SELECT code FROM lt.rejected_delta WHERE child_unit = '07840' AND seq = 18")" "18 6"
check "8. the daemon logged the split and the quarantine" \
    test "$(log_has "splitting")" -ge 1 -a "$(log_has "quarantined")" -eq 2
check "8. lt.verify() is still clean" eq verify "$(sql "SELECT count(*) FROM lt.verify()")" 0

# 9. tokens and resync markers (protocol.md §5.6): the parent returns the token of the
# batch that brought it to its position; a marker for a unit outside the child's
# subtree is refused (7) and changes nothing, one for the child itself sets aside its rows
held_before=$(sql "SELECT count(*) + CASE WHEN bool_or(period = '202408' AND element = 'PARENTS_INF') THEN 0 ELSE 1 END
                     FROM lt.data_value WHERE unit_code = '07840'") # with seq 19's row
peer <<'EOF'
hello 07840 18
value 19 07840 PARENTS_INF 202408 - 8 10
send 18 19 1234567
reconnect
hello 07840 19
resync 20 07816 1
send 19 20
resync 21 07840 1
send 20 21 99
reconnect
hello 07840 21
EOF
check "9. WELCOME carries the token of the last applied batch" eq welcome "$(nth 5)" "welcome 223 19 token 1234567"
check "9. a resync marker for another commune is refused with code 7" eq ack "$(nth 7)" "ack 20 0 1 20:7"
check "9. a resync marker for the child itself sets aside every row it had here" \
    eq held "$(sql "SELECT count(*) FROM lt.data_value WHERE unit_code = '07840'") $(sql "SELECT count(*) FROM lt.resync_held
        WHERE resync_unit = '07840' AND outcome IS NULL AND kind = 'value'")" "0 $held_before"
check "9. ... keeps the roll-ups equal to a recomputation, and the link says a resync is under way" \
    eq resync "$(sql "SELECT count(*) FROM lt.verify()") $(link resync_unit)" "0 07840"
check "9. the token of the marker's batch is the next WELCOME's" eq welcome "$(nth 11)" "welcome 223 21 token 99"
check "the daemon is alive at the end" kill -0 "$pid"

check_done
