#!/usr/bin/env bash
# it_security.sh — the security guarantees (ARCHITECTURE §4.4, §4.5; issue 4), on the
# 2024 geography: province 24 ← district 223 ← communes over CURVE (the default), and a
# separate district 216 ← commune over PLAINTEXT, where the link's bytes can be read.
#
#  - keys: `lienthong keygen` writes the secret 0600 and never overwrites; a daemon
#    refuses a secret readable by others and a parent refuses to start without its
#    allow-list;
#  - authentication: an unknown key, a plaintext client and a key removed from the
#    allow-list (SIGHUP) get nothing, with a ZAP log line and a counter;
#  - authorisation from the key: a HELLO naming another unit is refused (code 7);
#    records for another commune are rejected (code 7) while the key's own land;
#  - personal data: absent from every byte the commune daemon sends (strace of its
#    syscalls: the link's bytes in plaintext, with a positive control that must be in
#    them) and from every upstream database (pg_dump); lt.case_personal cannot be
#    written at a district or province, nor by the daemon's role anywhere;
#  - least privilege: the daemons log in as non-superuser roles; the daemon's role
#    cannot read personal data or write leaf tables; the reader writes nothing;
#  - audit: a row changed at a commune has audit rows at commune, district and
#    province, with origin, version and link.
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=vn2024
WORK=$(mktemp -d /tmp/lt-security.XXXXXX)
net_setup "$WORK/net" || { not_ok "throwaway PostgreSQL starts"; check_done; }
PEER=${LT_PEER:-$LT_BIN/tests/ltpeer}
[ -x "$PEER" ] || { not_ok "ltpeer is built ($PEER)"; check_done; }

c1=07816 c2=07822 c3=07825 c4=07306 # communes of 223 (c3 is played by ltpeer) and of 216

# as_role ROLE UNIT SQL: psql as a login role on UNIT's database; prints rows, or the
# error (and fails)
as_role() { PGHOST="$NET_DIR/pg/sock" PGUSER=$1 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$(net_db "$2")" -c "$3" 2>&1; }
denied() { # denied ROLE UNIT SQL: the statement fails with "permission denied"
    local out
    out=$(as_role "$@") && { echo "#   allowed: $3 -> $out" >&2; return 1; }
    grep -q "permission denied" <<<"$out" || { echo "#   failed otherwise: $out" >&2; return 1; }
}
allowed() { # allowed ROLE UNIT SQL
    local out
    out=$(as_role "$@") || { echo "#   refused: $3 -> $out" >&2; return 1; }
}
stat_of() { # stat_of UNIT NAME: NAME=value of UNIT's last stats line (0 before any)
    local v
    v=$(grep -o " $2=[0-9]*" "$NET_DIR/nodes/$1.log" 2>/dev/null | tail -1 | cut -d= -f2)
    echo "${v:-0}"
}
wait_stat_above() { # wait_stat_above UNIT NAME VALUE: until the stats line shows more
    local end=$((SECONDS + 10))
    while [ "$(stat_of "$1" "$2")" -le "$3" ]; do
        [ $SECONDS -ge $end ] && { echo "#   $1 $2 stayed at $(stat_of "$1" "$2")" >&2; return 1; }
        sleep 0.3
    done
}
peer() { # peer KEYDIR|- < commands: ltpeer against 223 with that key pair (- plaintext); output in OUT
    local keys=$1
    if [ "$keys" = - ]; then
        OUT=$("$PEER" "$(net_endpoint 223)" 2>>"$WORK/ltpeer.err")
    else
        OUT=$("$PEER" --curve "$(net_keys 223)/public.key" "$keys/public.key" "$keys/secret.key" \
            "$(net_endpoint 223)" 2>>"$WORK/ltpeer.err")
    fi
    printf '%s\n' "$OUT" | sed 's/^/#   peer: /' >&2
}
nth() { sed -n "${1}p" <<<"$OUT"; }
wait_log() { # wait_log UNIT PATTERN: until UNIT's log has it (10 s)
    for _ in $(seq 1 100); do grep -q -- "$2" "$NET_DIR/nodes/$1.log" 2>/dev/null && return 0; sleep 0.1; done
    echo "#   $1's log never said: $2" >&2
    return 1
}

# ---------------------------------------------------------------- keys
k=$WORK/k
pub=$("$LT_BIN/lienthong" keygen "$k" 2>/dev/null)
check "keygen prints a z85 public key (40 characters)" test ${#pub} -eq 40
check "keygen writes the secret key with mode 0600 and the public key 0644" \
    eq modes "$(stat -c %a "$k/secret.key") $(stat -c %a "$k/public.key")" "600 644"
check "the printed key is the public key file's" eq pub "$(cat "$k/public.key")" "$pub"
before=$(md5sum <"$k/secret.key")
"$LT_BIN/lienthong" keygen "$k" >/dev/null 2>"$WORK/keygen2.err"
rc=$?
check "keygen refuses to overwrite an existing key pair (exit $rc), the secret unchanged" \
    test $rc -ne 0 -a "$(md5sum <"$k/secret.key")" = "$before"
check "keygen says why" grep -q "never overwritten" "$WORK/keygen2.err"

# ---------------------------------------------------------------- the network
net_node 24 ""
net_node 223 24
net_node "$c1" 223
net_node "$c2" 223
NET_SECURITY=plaintext net_node 216 ""
NET_SECURITY=plaintext net_node "$c4" 216
# ltpeer plays c3 with its own key pair in 223's allow-list
"$LT_BIN/lienthong" keygen "$WORK/c3" >/dev/null 2>&1
echo "$c3 $(cat "$WORK/c3/public.key")" >>"$(net_allowlist 223)"
net_start_all
check "223 binds its ZAP handler before its socket, with 3 keys in its allow-list" \
    wait_log 223 "ZAP: authentication handler bound; 3 child keys allowed"
check "commune $c1 says its links are CURVE" wait_log "$c1" "security: links are CURVE"
check "a plaintext node says so loudly ($c4)" wait_log "$c4" "SECURITY: links are PLAINTEXT"
check "the plaintext parent 216 says its children are unauthenticated" wait_log 216 "PLAINTEXT, unauthenticated"
check "commune $c1 streams to 223 over CURVE" wait_log "$c1" "upstream: .* -> streaming"

# the daemons' own roles, none a superuser
roles=$(net_psql 24 "SELECT string_agg(DISTINCT a.usename || ':' || r.rolsuper, ' ') FROM pg_stat_activity a
                     JOIN pg_roles r ON r.rolname = a.usename WHERE a.application_name LIKE 'lienthongd%'")
check "the daemons connect as their own non-superuser roles (got: $roles)" \
    bash -c "grep -q 'ltd_24:false' <<<'$roles' && grep -q 'ltd_223:false' <<<'$roles' && ! grep -q ':true' <<<'$roles'"

# ---------------------------------------------------------------- authentication
refused_before=$(stat_of 223 auth_refused)
"$LT_BIN/lienthong" keygen "$WORK/stranger" >/dev/null 2>&1
peer "$WORK/stranger" <<EOF
hello $c3 0
EOF
check "a client with an unknown key gets no WELCOME" eq stranger "$(nth 1)" timeout
check "223's ZAP handler logs the unknown key" \
    grep -qF "ZAP: refused a child connection from 127.0.0.1, CURVE key $(cat "$WORK/stranger/public.key"): key not in the allow-list" \
    "$NET_DIR/nodes/223.log"
check "223's auth_refused counter rises (was $refused_before)" wait_stat_above 223 auth_refused "$refused_before"
peer - <<EOF
hello $c3 0
EOF
check "a plaintext client gets nothing from a CURVE parent" eq plaintext "$(nth 1)" timeout
# the right key pair, but the wrong idea of the parent's key
OUT=$("$PEER" --curve "$k/public.key" "$WORK/c3/public.key" "$WORK/c3/secret.key" "$(net_endpoint 223)" \
    2>>"$WORK/ltpeer.err" <<<"hello $c3 0")
check "a client holding another server key than the parent's gets nothing" eq wrongserver "$OUT" timeout

# ---------------------------------------------------------------- authorisation from the key
mismatch_before=$(stat_of 223 auth_mismatch)
peer "$WORK/c3" <<EOF
hello $c1 0
hello $c3 0
value 1 $c3 PARENTS_INF 202401 - 11 10
value 2 $c2 PARENTS_INF 202401 - 999 10
value 3 24 PARENTS_INF 202401 - 999 10
value 4 $c3 CHILDREN_INF 202401 - 12 10
send 0 4
EOF
check "a valid key for $c3 sending HELLO as $c1 is refused with code 7" grep -q "^error 7 HELLO names unit $c1, but this connection's key belongs to $c3" <<<"$(nth 1)"
check "223 logs the HELLO naming another unit" grep -q "child $c3: HELLO names unit $c1" "$NET_DIR/nodes/223.log"
check "223's auth_mismatch counter rises (was $mismatch_before)" wait_stat_above 223 auth_mismatch "$mismatch_before"
check "the same key saying HELLO as itself is welcomed" eq welcome "$(nth 2)" "welcome 223 0"
check "records for $c2 and 24 are rejected with code 7, $c3's own two land" eq ack "$(nth 7)" "ack 4 2 2 2:7 3:7"
check "the rejected records are in 223's lt.rejected_delta with code 7" \
    eq rejected "$(net_psql 223 "SELECT string_agg(seq || ':' || code, ' ' ORDER BY seq) FROM lt.rejected_delta WHERE child_unit = '$c3'")" "2:7 3:7"
check "nothing with value 999 was written at 223" \
    eq foreign "$(net_psql 223 "SELECT count(*) FROM lt.data_value WHERE value = 999")" 0
check "$c3's own records are at 223, via $c3" \
    eq own "$(net_psql 223 "SELECT string_agg(element || '=' || value || '/' || via, ' ' ORDER BY element) FROM lt.data_value WHERE unit_code = '$c3'")" \
    "CHILDREN_INF=12/$c3 PARENTS_INF=11/$c3"

# a key removed from the allow-list is refused on its next message, then at the handshake
(
    sleep 1.5
    grep -v "^$c3 " "$(net_allowlist 223)" >"$WORK/allow.new" && cat "$WORK/allow.new" >"$(net_allowlist 223)"
    net_hup 223
) &
peer "$WORK/c3" <<EOF
hello $c3 4
sleep 3000
ping
EOF
wait
revoked() { [ "$(nth 1)" = "welcome 223 4" ] && grep -q '^error 7 ' <<<"$(nth 3)"; }
check "a connected key removed from the allow-list (SIGHUP) is refused on its next message (code 7)" revoked
check "223 logged the reload of its allow-list" grep -q "ZAP: allow-list reloaded: 2 child keys allowed" "$NET_DIR/nodes/223.log"
peer "$WORK/c3" <<EOF
hello $c3 4
EOF
check "a new connection with the removed key gets nothing" eq removed "$(nth 1)" timeout

# ---------------------------------------------------------------- personal data on the wire
# strace every byte the commune daemons hand to the kernel (all threads), from before
# the data is written until it has reached the parent
capture() { # capture UNIT FILE: start strace on UNIT's daemon; its pid in STRACE_PIDS
    strace -f -yy -xx -s 100000 -e trace=sendto,sendmsg,write,writev -o "$2" -p "$(net_pid "$1")" \
        2>>"$WORK/strace.err" &
    STRACE_PIDS+=($!)
}
STRACE_PIDS=()
capture "$c4" "$WORK/plain.trace"
capture "$c1" "$WORK/curve.trace"
sleep 1.5
secret_name="Nguyễn Thị Bí Mật"
secret_phone="0987001122"
secret_note="LT-PRIVATE-NOTE-4711 hoàn cảnh gia đình riêng"
for c in "$c4" "$c1"; do
    net_lt "$c" case full_name="$secret_name" guardian_name="Trần Văn Giám Hộ" address="Số 7 ngõ Riêng Tư" \
        phone="$secret_phone" notes="$secret_note" categories=at_risk,child_labour sex=F birth_ym=2015-03 \
        notified_at=2024-06-15T09:00:00+07:00 \
        >"$WORK/case.$c" || not_ok "case with personal data written at $c"
    net_lt "$c" generate --seed 5 --year 2024 --cases 6 >/dev/null || not_ok "generate at $c"
done
case_id=$(awk '{ print $2 }' "$WORK/case.$c4")
check "the communes' writes reach 216 and 223" net_wait_converged 60
sleep 0.5
for p in "${STRACE_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
wait "${STRACE_PIDS[@]}" 2>/dev/null

# the bytes of the strings in strace lines matching FILTER, one string per line
bytes_of() { # bytes_of TRACE FILTER
    FILTER=$2 perl -ne 'BEGIN { binmode STDOUT } next unless /$ENV{FILTER}/;
        while (/"((?:\\x[0-9a-f]{2})*)"/g) { (my $h = $1) =~ s/\\x//g; print pack("H*", $h), "\n" }' "$1"
}
link=$(net_endpoint 216)
bytes_of "$WORK/plain.trace" "TCP:\\[[0-9.:]+->127\\.0\\.0\\.1:${link##*:}\\]" >"$WORK/plain.link"
bytes_of "$WORK/plain.trace" . >"$WORK/plain.all"
link=$(net_endpoint 223)
bytes_of "$WORK/curve.trace" "TCP:\\[[0-9.:]+->127\\.0\\.0\\.1:${link##*:}\\]" >"$WORK/curve.link"
bytes_of "$WORK/curve.trace" . >"$WORK/curve.all"
# every personal value written at the communes (the generator's too)
{
    for c in "$c4" "$c1"; do
        net_psql "$c" "SELECT v FROM lt.case_personal,
                       LATERAL unnest(ARRAY[full_name, guardian_name, address, phone, notes]) v
                       WHERE octet_length(v) >= 6"
    done
} | sort -u >"$WORK/personal.txt"
npersonal=$(wc -l <"$WORK/personal.txt")
check "the communes hold personal data to look for ($npersonal values, incl. the generator's)" test "$npersonal" -ge 20
check "control: the plaintext link's bytes were captured ($(wc -c <"$WORK/plain.link") bytes)" test -s "$WORK/plain.link"
check "control: the captured link bytes hold the case's pseudonymous id $case_id and element codes" \
    bash -c "grep -aqF '$case_id' '$WORK/plain.link' && grep -aqF 'POP_CHILD_U16' '$WORK/plain.link'"
leaks=$(grep -aoF -f "$WORK/personal.txt" "$WORK/plain.link" | sort -u | head -5 | tr '\n' ';')
check "no personal value in any byte of the plaintext link ($c4 -> 216)${leaks:+: $leaks}" test -z "$leaks"
leaks=$(grep -ahoF -f "$WORK/personal.txt" "$WORK/plain.all" "$WORK/curve.all" | sort -u | head -5 | tr '\n' ';')
check "no personal value in anything the commune daemons wrote (sockets, database, logs)${leaks:+: $leaks}" test -z "$leaks"
check "control: the CURVE link's bytes were captured ($(wc -c <"$WORK/curve.link") bytes)" test -s "$WORK/curve.link"
check "the CURVE link is encrypted: not even the element codes are readable in its bytes" \
    bash -c "! grep -aqF 'POP_CHILD_U16' '$WORK/curve.link'"

# ---------------------------------------------------------------- personal data upstream
net_wait_converged 60
# every table but the public unit list (it has a Xã Tam Thôn Hiệp)
dump() { PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/pg_dump" --data-only -T lt.unit "$(net_db "$1")"; }
check "control: the commune's dump holds its personal data" bash -c "$(declare -f dump net_db); NET_DIR=$NET_DIR PG_BIN=$PG_BIN; dump $c1 | grep -qF '$secret_note'"
for up in 216 223 24; do
    leaks=$(dump "$up" | grep -aoF -f "$WORK/personal.txt" | sort -u | head -5 | tr '\n' ';')
    check "no personal value in the $up database dump${leaks:+: $leaks}" test -z "$leaks"
    check "$up holds lt.case_personal empty" eq "$up personal" "$(net_psql "$up" "SELECT count(*) FROM lt.case_personal")" 0
done
check "control: the case's pseudonymous record reached 216" \
    eq case "$(net_psql 216 "SELECT count(*) FROM lt.case_record WHERE case_id = '$case_id'")" 1
out=$(net_psql 223 "INSERT INTO lt.case_personal (case_id, full_name) SELECT case_id, 'x' FROM lt.case_record LIMIT 1" 2>&1)
check "lt.case_personal cannot be written at a district, not even by a superuser" \
    grep -q "personal data stays at the commune: node 223 is not a commune" <<<"$out"
out=$(net_psql "$c1" "BEGIN; GRANT EXECUTE ON FUNCTION lt.put_case(jsonb) TO $(net_daemon_role "$c1");
    SET SESSION AUTHORIZATION $(net_daemon_role "$c1");
    SELECT lt.put_case('{\"categories\": 1, \"notified_at\": \"2024-05-01\", \"full_name\": \"x\"}'); ROLLBACK" 2>&1)
check "lt.case_personal cannot be written by the daemon's role even through a function" \
    grep -q "the daemon's role ($(net_daemon_role "$c1")) never writes personal data" <<<"$out"

# ---------------------------------------------------------------- least privilege
d1=$(net_daemon_role "$c1")
d223=$(net_daemon_role 223)
check "control: the daemon's role may call its link functions" allowed "$d1" "$c1" "SELECT lt.outbox_high()"
check "the daemon's role cannot read lt.case_personal at the commune" denied "$d1" "$c1" "SELECT count(*) FROM lt.case_personal"
check "the daemon's role cannot read leaf rows directly" denied "$d223" 223 "SELECT count(*) FROM lt.data_value"
check "the daemon's role cannot insert leaf rows directly" denied "$d223" 223 \
    "INSERT INTO lt.data_value (unit_code, element, period, value, version, changed_at) VALUES ('$c2', 'PARENTS_INF', '2024', 1, 1, now())"
check "the daemon's role cannot update roll-ups directly" denied "$d223" 223 "UPDATE lt.rollup_value_below SET total = 0"
check "the daemon's role cannot update cases directly" denied "$d223" 223 "UPDATE lt.case_record SET status = 'closed'"
check "the daemon's role cannot write local data (lt.put_value)" denied "$d1" "$c1" \
    "SELECT lt.put_value('$c1', 'PARENTS_INF', '2024', '', 1)"
check "the daemon's role cannot rebuild the unit tree" denied "$d223" 223 "SELECT lt.rebuild_unit_tree()"
check "the daemon's role cannot write the audit trail" denied "$d223" 223 "DELETE FROM lt.audit"
net__sql postgres "CREATE ROLE ltr LOGIN IN ROLE lienthong_reader; CREATE ROLE lto LOGIN IN ROLE lienthong_officer"
check "control: the reader may read roll-ups, link state and the audit" allowed ltr 223 \
    "SELECT count(*) FROM lt.rollup_value, (SELECT 1) x; SELECT count(*) FROM lt.child_link; SELECT count(*) FROM lt.audit"
check "control: the reader may run verify" allowed ltr 223 "SELECT count(*) FROM lt.verify()"
check "the reader cannot read lt.case_personal" denied ltr "$c1" "SELECT count(*) FROM lt.case_personal"
check "the reader cannot insert leaf rows" denied ltr 223 \
    "INSERT INTO lt.data_value (unit_code, element, period, value, version, changed_at) VALUES ('$c2', 'PARENTS_INF', '2024', 1, 1, now())"
check "the reader cannot update roll-ups" denied ltr 223 "UPDATE lt.rollup_value_below SET total = 0"
check "the reader cannot delete link state" denied ltr 223 "DELETE FROM lt.child_link"
check "the reader cannot write through lt.put_value" denied ltr "$c1" "SELECT lt.put_value('$c1', 'PARENTS_INF', '2024', '', 1)"
check "the reader cannot apply batches" denied ltr 223 "SELECT * FROM lt.apply_batch('$c2', 0, 1)"
check "the reader cannot forget outbox rows" denied ltr "$c1" "SELECT lt.upstream_acked(1000000, NULL)"
check "the reader cannot create objects in schema lt" denied ltr 223 "CREATE TABLE lt.x (a int)"
check "the commune officer may read personal data and write through lt.put_value" allowed lto "$c1" \
    "SELECT count(*) FROM lt.case_personal; SELECT lt.put_value('$c1', 'PARENTS_INF', '2023', '', 5)"
check "the officer cannot write leaf tables directly" denied lto "$c1" "UPDATE lt.data_value SET value = 0"
# a SECURITY DEFINER function that may write (VOLATILE) runs with the owner's rights
defs=$(net_psql 223 "SELECT string_agg(p.oid::regprocedure::text || '->' || r, ' ' ORDER BY 1)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
         unnest(ARRAY['public', 'lienthong_reader']) r
   WHERE n.nspname = 'lt' AND p.prosecdef AND p.provolatile = 'v' AND p.prorettype <> 'trigger'::regtype
     AND (CASE r WHEN 'public' THEN EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
                 ELSE has_function_privilege(r, p.oid, 'EXECUTE') END)")
check "no writing SECURITY DEFINER function of schema lt is executable by PUBLIC or the reader${defs:+: $defs}" test -z "$defs"
n=$(net_psql 223 "SELECT string_agg(p.proname, ' ' ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'lt' AND has_function_privilege('$d223', p.oid, 'EXECUTE')
                     AND p.proname IN ('apply_batch', 'apply_link_batch', 'child_hello', 'child_welcome', 'children_seen',
                                       'create_staging', 'outbox_high', 'outbox_read', 'quarantine', 'upstream_acked',
                                       'upstream_rewound', 'upstream_state', 'upstream_welcome')")
check "the daemon's role may execute its 10 link functions, not the ones they call" eq daemon "$n" \
    "apply_link_batch child_welcome children_seen create_staging outbox_high outbox_read quarantine upstream_acked upstream_state upstream_welcome"
# the functions that run as the owner and write, which the daemon may call, are exactly
# those registered for it; none of the officers'
n=$(net_psql 223 "SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY 1) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                   WHERE n.nspname = 'lt' AND p.prosecdef AND p.provolatile = 'v' AND has_function_privilege('$d223', p.oid, 'EXECUTE')
                     AND p.oid NOT IN (SELECT to_regprocedure(signature) FROM lt.function_grant WHERE role = 'lienthong_daemon')")
check "the daemon's role may call no other writing function running as the owner${n:+: $n}" test -z "$n"
check "the daemon's role cannot call officers' functions" \
    eq officer "$(net_psql 223 "SELECT count(*) FROM lt.function_grant g WHERE g.role = 'lienthong_officer'
                                  AND has_function_privilege('$d223', to_regprocedure(g.signature), 'EXECUTE')")" 0

# ---------------------------------------------------------------- audit
net_lt "$c1" set PARENTS_INF 2023Q4 41 >/dev/null
net_lt "$c1" set PARENTS_INF 2023Q4 42 >/dev/null
net_lt "$c1" delete PARENTS_INF 2023Q4 >/dev/null
check "the network converges after the audited changes" net_wait_converged 60
audit() { net_psql "$1" "SELECT string_agg(action || '@' || unit_code || '/' || via || '/v' || CASE WHEN prev_version IS NULL THEN 'new' ELSE 'prev' END,
                                          ' ' ORDER BY version)
                          FROM lt.audit WHERE kind = 'value' AND element = 'PARENTS_INF' AND period = '2023Q4'"; }
versions() { net_psql "$1" "SELECT string_agg(version::text, ' ' ORDER BY version) FROM lt.audit
                            WHERE kind = 'value' AND element = 'PARENTS_INF' AND period = '2023Q4'"; }
check "audit at the commune: insert, update, delete, written locally" \
    eq "$c1 audit" "$(audit "$c1")" "insert@$c1/local/vnew update@$c1/local/vprev delete@$c1/local/vprev"
# the parents may receive the first two versions in one batch (only the latest applies)
a223=$(audit 223)
check "audit at district 223: origin $c1, via $c1, ending with the tombstone ($a223)" \
    bash -c "[[ '$a223' == insert@$c1/$c1/vnew* && '$a223' == *delete@$c1/$c1/vprev ]]"
a24=$(audit 24)
check "audit at province 24: origin $c1, via 223, ending with the tombstone ($a24)" \
    bash -c "[[ '$a24' == insert@$c1/223/vnew* && '$a24' == *delete@$c1/223/vprev ]]"
check "the versions audited upstream are the commune's" \
    bash -c "[ '$(versions "$c1" | awk '{ print $NF }')' = '$(versions 24 | awk '{ print $NF }')' ]"
check "upstream audit rows name the daemon's login role as the writer" \
    eq writer "$(net_psql 24 "SELECT DISTINCT db_user FROM lt.audit WHERE unit_code = '$c1' AND element = 'PARENTS_INF' AND period = '2023Q4'")" ltd_24
check "audit rows for a case exist at the province, via 223" \
    eq case "$(net_psql 24 "SELECT count(*) > 0 FROM lt.audit WHERE kind = 'case' AND unit_code = '$c1' AND via = '223'")" t
out=$(net_psql 24 "UPDATE lt.audit SET via = 'x'" 2>&1)
check "audit rows are never updated, even by the owner" grep -q "audit rows are never changed" <<<"$out"

# ---------------------------------------------------------------- refusals at start
mkdir -p "$WORK/open"
cp "$(net_keys "$c2")/secret.key" "$(net_keys "$c2")/public.key" "$WORK/open/"
chmod 644 "$WORK/open/secret.key"
net_kill "$c2"
sed "s|^secret_key_file = .*|secret_key_file = $WORK/open/secret.key|" "$(net_daemon_conf "$c2")" >"$WORK/open.conf"
timeout 20 "$LT_BIN/lienthongd" -c "$WORK/open.conf" >"$WORK/open.log" 2>&1
rc=$?
check "a daemon refuses to start with a secret key readable by others (exit $rc)" \
    bash -c "[ $rc -eq 2 ] && grep -q 'may be read by others (mode 0644)' '$WORK/open.log'"
sed "s|^children_keys_file = .*|children_keys_file = $WORK/no-such-allow-list|" "$(net_daemon_conf 223)" >"$WORK/noallow.conf"
sed -i "s|^bind = .*|bind = tcp://127.0.0.1:$((NET_PORT_BASE + 98))|" "$WORK/noallow.conf"
sed -i '/^\[parent\]/,/^endpoint/d' "$WORK/noallow.conf"
timeout 20 "$LT_BIN/lienthongd" -c "$WORK/noallow.conf" >"$WORK/noallow.log" 2>&1
rc=$?
check "a parent refuses to start without its allow-list (exit $rc), its socket never opened" \
    bash -c "[ $rc -eq 2 ] && grep -q 'cannot open allow-list' '$WORK/noallow.log' && ! grep -q 'listening for children' '$WORK/noallow.log'"
# a commune whose key the parent no longer allows says so, in its log and its link status
grep -v "^$c2 " "$(net_allowlist 223)" >"$WORK/allow.new" && cat "$WORK/allow.new" >"$(net_allowlist 223)"
net_hup 223
net_start "$c2"
check "a commune whose key the parent refuses logs it" wait_log "$c2" "upstream: the parent refused this node's key (ZAP status 400)"
link_error() {
    for _ in $(seq 1 50); do
        net_psql "$c2" "SELECT last_error FROM lt.upstream" | grep -q "refused this node's key" && return 0
        sleep 0.2
    done
    return 1
}
check "... and its link status (lienthong status) shows it" link_error
check "every daemon of the network is still alive" bash -c "$(declare -f net_alive net_pid); NET_DIR=$NET_DIR; for u in 24 223 $c1 $c2 216 $c4; do net_alive \$u || exit 1; done"
check_done
