#!/usr/bin/env bash
# it_officer.sh — what officers review: the metadata catalogue and its down-flow,
# indicator roll-ups against independent sums, case-management timeliness in working
# days, reporting completeness, and approval locks.
#
# Three tiers on the 2024 geography (province 24; districts 223 and 216; real communes),
# with the 2025 unit list loaded too (NET_UNITS=all) so that units that did not exist in
# a period can be checked. Data travels up through the real daemons. The down-flow of
# metadata and the transport of submissions are simulated hop by hop in SQL with the
# functions the daemon calls (lt.meta_changes_since + lt.meta_apply, lt.submission_apply).
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=all
net_setup "$(mktemp -d /tmp/lt-officer.XXXXXX)"
C1=07816 C2=07822 CNEW=07825 C3=07306 C4=07309
net_node 24 ""
net_node 223 24
net_node 216 24
net_node $C1 223
net_node $C2 223
net_node $C3 216
net_node $C4 216

psql_in() { # psql_in UNIT < script: a script on UNIT's database, as the cluster's superuser
    PGHOST="$NET_DIR/pg/sock" PGUSER=lt "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$(net_db "$1")"
}

# What the daemon of CHILD will do on its link to PARENT: ask for the changes after its
# position, apply them in one transaction. Prints the position reached.
meta_hop() {
    local parent=$1 child=$2 after
    after=$(net_psql "$child" "SELECT lt.meta_version()") || return 1
    net_psql "$parent" "COPY (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.version), '[]')
                              FROM lt.meta_changes_since($after, '$child', 100000) c) TO STDOUT" \
        >"$NET_DIR/hop.json" || return 1
    { echo "CREATE TEMP TABLE j (doc jsonb); COPY j FROM STDIN;"; cat "$NET_DIR/hop.json"; echo '\.'
      echo "SELECT lt.meta_apply(doc) FROM j;"; } | psql_in "$child"
}

# The up-flow of submissions from CHILD to PARENT (kind 3 of the outbox), by hand.
sub_hop() {
    local child=$1 parent=$2
    net_psql "$child" "COPY (SELECT coalesce(jsonb_agg(to_jsonb(s) - 'id' - 'received_at' - 'via'), '[]')
                             FROM lt.submission s) TO STDOUT" >"$NET_DIR/sub.json" || return 1
    { echo "CREATE TEMP TABLE j (doc jsonb); COPY j FROM STDIN;"; cat "$NET_DIR/sub.json"; echo '\.'
      echo "SELECT n FROM j, lt.submission_apply('$child', j.doc) WHERE kind = 'summary';"; } | psql_in "$parent"
}

# A digest of a node's catalogue as its log describes it, limited (at the top) to what
# a node is entitled to: changes for everyone and those scoped inside its subtree.
log_digest() { # log_digest NODE [FOR_UNIT]
    local scope="true"
    [ -n "${2:-}" ] && scope="(m.scope_unit IS NULL OR EXISTS (SELECT 1 FROM lt.unit_ancestor a
                                 WHERE a.descendant = m.scope_unit AND a.ancestor = '$2'))"
    net_psql "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(kind || '/' || key || '=' || coalesce(doc::text, '-'),
                   E'\n' ORDER BY kind, key), '')) FROM lt.meta_change m WHERE kind <> 'approval' AND $scope"
}
table_digest() { # the catalogue tables themselves
    net_psql "$1" "SELECT md5(concat(
        (SELECT string_agg(to_jsonb(t)::text, '' ORDER BY code) FROM lt.indicator t),
        (SELECT string_agg(to_jsonb(t)::text, '' ORDER BY code) FROM lt.data_element t),
        (SELECT string_agg(to_jsonb(t)::text, '' ORDER BY day) FROM lt.holiday t),
        (SELECT string_agg(to_jsonb(t)::text, '' ORDER BY data_set, period_type) FROM lt.deadline t),
        (SELECT string_agg(to_jsonb(t)::text, '' ORDER BY plan, indicator, scope, period) FROM lt.target t
          WHERE scope !~ '^[0-9]+\$')))"
}

# ---------------------------------------------------------------- the catalogue at the top
net_lt 24 meta load "$LT_ROOT/schemas/catalog" >/dev/null 2>&1
n=$(net_psql 24 "SELECT count(*) FROM lt.indicator")
check "the catalogue loads at the top from schemas/catalog ($n indicators)" test "$n" -ge 40
n=$(net_psql 24 "SELECT count(*) FROM lt.indicator i WHERE EXISTS (SELECT 1 FROM lt.target t WHERE t.indicator = i.code)")
check "every plan indicator of DOMAIN.md has a target in the shipped catalogue ($n indicators with targets)" test "$n" -ge 20
high=$(net_psql 24 "SELECT lt.meta_high()")
net_lt 24 meta load "$LT_ROOT/schemas/catalog" >/dev/null 2>&1
high2=$(net_psql 24 "SELECT lt.meta_high()")
check "loading the same catalogue again logs nothing (log at $high, then $high2)" test "$high" = "$high2"
err=$(net_lt 223 meta set-target KH004_2024 INJURY_RATE '*' 2024 '<' 1 2>&1)
check "a node with a parent refuses to edit metadata ($err)" grep -q "edited at the top node only" <<<"$err"
err=$(net_lt 24 meta set-target NOPLAN INJURY_RATE '*' 2024 '<' 1 2>&1)
check "the top refuses a target of an unknown plan ($err)" grep -q 'unknown plan' <<<"$err"

# ---------------------------------------------------------------- down-flow: everyone
ok_hops=1
for d in 223 216; do meta_hop 24 "$d" >/dev/null || ok_hops=0; done
for c in $C1 $C2; do meta_hop 223 "$c" >/dev/null || ok_hops=0; done
for c in $C3 $C4; do meta_hop 216 "$c" >/dev/null || ok_hops=0; done
check "metadata hops 24 -> districts -> communes apply" test $ok_hops = 1
bad=0
for u in 223 216 $C1 $C2 $C3 $C4; do
    [ "$(log_digest 24 "$u")" = "$(log_digest "$u")" ] || { bad=1; echo "# log of $u differs" >&2; }
    [ "$(table_digest 24)" = "$(table_digest "$u")" ] || { bad=1; echo "# catalogue of $u differs" >&2; }
done
check "every node holds the top's catalogue, limited to what is scoped to its subtree" test $bad = 0
n=$(net_psql $C1 "SELECT count(*) FROM lt.target WHERE scope IN ('01', '62', '34')")
check "targets scoped to other provinces (Hà Nội, Kon Tum, Thái Bình) do not reach a commune of 24 ($n)" test "$n" = 0
n=$(net_psql $C1 "SELECT changes_applied FROM lt.meta_state")
resent=$(net_psql 223 "SELECT count(*) FROM lt.meta_changes_since(0, '$C1', 100000)")
net_psql 223 "COPY (SELECT jsonb_agg(to_jsonb(c) ORDER BY c.version) FROM lt.meta_changes_since(0, '$C1', 100000) c) TO STDOUT" >"$NET_DIR/all.json"
{ echo "CREATE TEMP TABLE j (doc jsonb); COPY j FROM STDIN;"; cat "$NET_DIR/all.json"; echo '\.'
  echo "SELECT lt.meta_apply(doc) FROM j;"; } | psql_in $C1 >/dev/null
n2=$(net_psql $C1 "SELECT changes_applied FROM lt.meta_state")
check "re-sending all $resent changes to $C1 applies none twice ($n -> $n2 changes applied)" test "$n" = "$n2"

# ---------------------------------------------------------------- a change while $C2 is offline
net_lt 24 meta set-target KH004_2024 INJURY_RATE '*' 2024 '<' 2.5 "đổi mục tiêu" >/dev/null
net_lt 24 meta delete-target KH004_2024 CHILDREN_CONSULTED '*' 2024 >/dev/null
net_lt 24 meta set-target KH004_2024 ECD_REACH $C3 2024 '>=' 90 "mục tiêu riêng của xã" >/dev/null
net_lt 24 meta put holiday '{"day": "2025-11-24", "kind": "holiday", "name_vi": "Ngày thử", "name_en": "Test day"}' >/dev/null
for d in 223 216; do meta_hop 24 "$d" >/dev/null; done
meta_hop 223 $C1 >/dev/null                  # $C2 is offline: it gets nothing now
for c in $C3 $C4; do meta_hop 216 "$c" >/dev/null; done
q="SELECT coalesce((SELECT value::text FROM lt.target WHERE plan = 'KH004_2024' AND indicator = 'INJURY_RATE' AND scope = '*'), 'none')
       || ' ' || coalesce((SELECT value::text FROM lt.target WHERE plan = 'KH004_2024' AND indicator = 'CHILDREN_CONSULTED'), 'none')"
v1=$(net_psql $C1 "$q"); v4=$(net_psql $C4 "$q"); voff=$(net_psql $C2 "$q")
check "a target change and a deletion at the top reach the online communes ($C1: $v1, $C4: $v4)" \
    test "$v1" = "2.5 none" -a "$v4" = "2.5 none"
check "the offline commune still has the old targets ($voff)" test "$voff" = "3 20"
s216=$(net_psql 216 "SELECT count(*) FROM lt.target WHERE scope = '$C3'")
s3=$(net_psql $C3 "SELECT count(*) FROM lt.target WHERE scope = '$C3'")
s4=$(net_psql $C4 "SELECT count(*) FROM lt.target WHERE scope = '$C3'")
s223=$(net_psql 223 "SELECT count(*) FROM lt.target WHERE scope = '$C3'")
check "a target for one commune reaches that commune and its district only (216 $s216, $C3 $s3, $C4 $s4, 223 $s223)" \
    test "$s216$s3$s4$s223" = 1100
meta_hop 223 $C2 >/dev/null                  # back online
voff=$(net_psql $C2 "$q")
check "the commune that was offline catches up when it asks again ($voff)" test "$voff" = "2.5 none"
check "after catching up, $C2's catalogue equals the top's" test "$(table_digest 24)" = "$(table_digest $C2)"

# a brand-new node: from version 0, everything exactly once
net_node $CNEW 223
sent=$(net_psql 223 "SELECT count(*) || ' ' || count(DISTINCT (kind, key)) FROM lt.meta_changes_since(0, '$CNEW', 100000)")
meta_hop 223 $CNEW >/dev/null
got=$(net_psql $CNEW "SELECT changes_applied || ' ' || (SELECT count(*) FROM lt.meta_change) FROM lt.meta_state")
check "a brand-new node receives each (kind, key) exactly once (sent: rows, keys = $sent; applied, logged = $got)" \
    test "${sent% *}" = "${sent#* }" -a "${got% *}" = "${sent% *}" -a "${got#* }" = "${sent% *}"
check "the brand-new node's catalogue equals the top's" test "$(table_digest 24)" = "$(table_digest $CNEW)"
check "the brand-new node's log equals the top's, in scope" test "$(log_digest 24 $CNEW)" = "$(log_digest $CNEW)"
high223=$(net_psql 223 "SELECT lt.meta_high()")
pos=$(net_psql $CNEW "SELECT lt.meta_version()")
check "a node's position counts in its parent's log ($pos of 223's $high223)" test "$pos" = "$high223"

# ---------------------------------------------------------------- indicators roll up correctly
net_start_all
i=0
for c in $C1 $C2 $C3 $C4; do
    i=$((i + 1))
    net_lt "$c" generate --seed "$i" --year 2024 --cases 30 >/dev/null || not_ok "generate at $c"
done
check "data written at 4 communes reaches the province" net_wait_converged 90

# Independent figures per commune, from its own leaf rows (not the roll-ups, not the
# views): "unit indicator numerator denominator".
IND_SQL="
WITH v AS (SELECT element, period, value FROM lt.data_value WHERE value IS NOT NULL),
     c AS (SELECT categories FROM lt.case_record
            WHERE NOT deleted AND (notified_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date <= date '2024-12-31'
              AND (closed_at IS NULL OR (closed_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date >= date '2024-01-01')),
     pop AS (SELECT (SELECT value FROM v WHERE element = 'POP_CHILD_U16' AND period = '2024') AS u16,
                    (SELECT value FROM v WHERE element = 'POP_CHILD_5_17' AND period = '2024') AS c517,
                    (SELECT value FROM v WHERE element = 'PARENTS' AND period = '2024') AS parents)
SELECT x.ind, x.num, x.den FROM pop, LATERAL (VALUES
    ('CL_RATE', (SELECT count(*) FROM c WHERE categories & 2 <> 0)::numeric, pop.c517),
    ('CSC_RATE', (SELECT count(*) FROM c WHERE categories & 131064 <> 0)::numeric, pop.u16),
    ('CHILDREN_INFORMED', (SELECT sum(value) FROM v WHERE element = 'CHILDREN_INF' AND period ~ '^2024Q'), pop.u16),
    ('PARENTS_INFORMED', (SELECT sum(value) FROM v WHERE element = 'PARENTS_INF' AND period ~ '^2024Q'), pop.parents),
    ('INJURY_RATE', (SELECT sum(value) FROM v WHERE element = 'CHILD_INJURIES' AND period ~ '^2024[01][0-9]\$'), pop.u16)
) x(ind, num, den) WHERE pop.u16 IS NOT NULL"
: >"$NET_DIR/ind.truth"
for c in $C1 $C2 $C3 $C4; do
    net_psql "$c" "COPY ($IND_SQL) TO STDOUT" | while IFS=$'\t' read -r ind num den; do
        a=$c
        while [ -n "$a" ]; do echo "$a $ind $num $den"; a=${NET_PARENT[$a]}; done
    done >>"$NET_DIR/ind.truth"
done
awk '{ n[$1" "$2] += $3; d[$1" "$2] += $4 }
     END { for (k in n) printf "%s %d %d\n", k, n[k], d[k] }' "$NET_DIR/ind.truth" | sort >"$NET_DIR/ind.expected"
net_psql 24 "COPY (SELECT unit_code, indicator, numerator, denominator, value FROM lt_report.indicator_value
              WHERE period = '2024' AND indicator IN ('CL_RATE', 'CSC_RATE', 'CHILDREN_INFORMED', 'PARENTS_INFORMED', 'INJURY_RATE')
                AND unit_code IN ('24', '223', '216', '$C1', '$C2', '$C3', '$C4')) TO STDOUT" \
    | sort >"$NET_DIR/ind.actual"
cmp_out=$(awk 'NR == FNR { num[$1" "$2] = $3; den[$1" "$2] = $4; next }
               { k = $1" "$2; seen[k] = 1
                 if (!(k in num)) { print "unexpected " $0; next }
                 f = ($2 == "INJURY_RATE") ? 1000 : 100
                 want = f * num[k] / den[k]; diff = want - $5; if (diff < 0) diff = -diff
                 if ($3 != num[k] || $4 != den[k] || diff > 0.0001)
                     print k ": view " $3 "/" $4 " = " $5 ", independent " num[k] "/" den[k] " = " want }
               END { for (k in num) if (!(k in seen)) print "missing " k }' "$NET_DIR/ind.expected" "$NET_DIR/ind.actual")
rows=$(wc -l <"$NET_DIR/ind.actual")
check "ratio roll-ups at the province for 3 tiers equal sum(num)/sum(den) computed from the commune databases ($rows rows)" \
    test -z "$cmp_out" -a "$rows" = 35
[ -n "$cmp_out" ] && echo "$cmp_out" | head -10 | sed 's/^/# /'
avg=$(net_psql 24 "SELECT round(avg(value), 4) = max(value) FILTER (WHERE unit_code = '24') FROM lt_report.indicator_value
                   WHERE period = '2024' AND indicator = 'PARENTS_INFORMED' AND unit_code IN ('24', '223', '216')")
fresh=$(net_psql 24 "SELECT count(*) FROM lt_report.indicator_value WHERE period = '2024' AND unit_code = '24'
                     AND numerator IS NOT NULL AND (freshness IS NULL OR freshness > now())")
check "the province's rate is not the average of its districts' rates, and every figure has a freshness time" \
    test "$avg" = f -a "$fresh" = 0
yr=$(net_psql 24 "SELECT (SELECT value FROM lt_report.element_value WHERE unit_code = '24' AND period = '2024'
                          AND element = 'POP_CHILD_U16' AND disagg = '')
                     = (SELECT value FROM lt_report.element_value WHERE unit_code = '24' AND period = '2024Q3'
                          AND element = 'POP_CHILD_U16' AND disagg = ''),
                         (SELECT value FROM lt_report.element_value WHERE unit_code = '24' AND period = '2024'
                          AND element = 'PARENTS_INF' AND disagg = '')
                     = (SELECT sum(value) FROM lt_report.element_value WHERE unit_code = '24'
                          AND period IN ('2024Q1', '2024Q2', '2024Q3', '2024Q4') AND element = 'PARENTS_INF' AND disagg = '')")
check "a population ('last') is the same in a quarter as in its year; a sum element's year is the sum of its quarters ($yr)" \
    test "$yr" = "t|t"
t=$(net_psql 24 "SELECT target || ' ' || coalesce(plan, '') FROM lt_report.indicator_value
                 WHERE period = '2024' AND unit_code = '$C3' AND indicator = 'ECD_REACH'")
t4=$(net_psql 24 "SELECT target FROM lt_report.indicator_value WHERE period = '2024' AND unit_code = '$C4' AND indicator = 'ECD_REACH'")
check "a unit's own target wins over its level's ($C3: $t; $C4: $t4)" test "$t" = "90 KH004_2024" -a "$t4" = 80

out=$(net_lt 24 report --period 2024 2>&1)
check "lienthong report prints the province and both districts in Vietnamese" \
    bash -c 'grep -q "Chỉ tiêu" <<<"$1" && grep -q "^24 " <<<"$1" && grep -q "^223 " <<<"$1" && grep -q "^216 " <<<"$1" && grep -q "Đạt" <<<"$1"' _ "$out"
out=$(net_lt 223 report --period 2024 --en 2>&1)
check "lienthong report --en at a district lists its communes in English" \
    bash -c 'grep -q "Indicator" <<<"$1" && grep -q "^'$C1' " <<<"$1" && grep -q "^'$C2' " <<<"$1"' _ "$out"
net_lt 24 report --period 2024 --format json >"$NET_DIR/report.json" 2>&1
check "lienthong report --format json is valid JSON" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d) > 100" "$NET_DIR/report.json"
n=$(net_lt 24 report --period 2024 --format csv --no-children 2>/dev/null | python3 -c "import csv,sys; print(len(list(csv.DictReader(sys.stdin))))")
check "lienthong report --format csv has one row per indicator ($n)" test "$n" = "$(net_psql 24 "SELECT count(*) FROM lt.indicator")"

# ---------------------------------------------------------------- case timeliness in working days
wd=$(net_psql $C1 "SELECT lt.working_days_between('2025-04-03', '2025-04-11') || ' ' ||
                          lt.working_days_between('2025-04-25', '2025-04-29') || ' ' ||
                          lt.working_days_between('2025-04-29', '2025-05-05') || ' ' ||
                          lt.working_days_between('2024-02-02', '2024-02-15') || ' ' ||
                          lt.working_days_between('2024-08-30', '2024-09-06') || ' ' ||
                          lt.working_days_between('2024-09-06', '2024-08-30')")
check "working days skip weekends, Giỗ Tổ, Tết and 2/9, count a worked Saturday ($wd)" test "$wd" = "5 3 1 4 3 -3"
put() { net_lt $C1 case "case_id=$1" categories=child_labour sex=F birth_ym=2012-05 "notified_at=$2" \
            ${3:+"emergency_at=$3"} "plan_drafted_at=$4" "plan_approved_at=$5" status=implementing >/dev/null; }
#     case                                   notified (VN time)          emergency                   drafted                     approved
put 00000000-0000-4000-8000-00000000000a "2025-04-03T09:00:00+07:00" "" "2025-04-11T09:00:00+07:00" "2025-04-14T09:00:00+07:00"
put 00000000-0000-4000-8000-00000000000b "2025-04-03T09:00:00+07:00" "" "2025-04-14T09:00:00+07:00" "2025-04-15T09:00:00+07:00"
put 00000000-0000-4000-8000-00000000000c "2025-04-28T09:00:00+07:00" "" "2025-04-29T09:00:00+07:00" "2025-05-05T09:00:00+07:00"
put 00000000-0000-4000-8000-00000000000d "2025-04-24T09:00:00+07:00" "" "2025-04-25T09:00:00+07:00" "2025-04-29T09:00:00+07:00"
put 00000000-0000-4000-8000-00000000000e "2025-03-10T08:00:00+07:00" "2025-03-10T20:30:00+07:00" "2025-03-11T09:00:00+07:00" "2025-03-12T09:00:00+07:00"
put 00000000-0000-4000-8000-00000000000f "2025-03-10T08:00:00+07:00" "2025-03-10T19:00:00+07:00" "2025-03-11T09:00:00+07:00" "2025-03-12T09:00:00+07:00"
tl=$(net_psql $C1 "SELECT string_agg(right(case_id::text, 1) || '=' || timeliness, ' ' ORDER BY case_id)
                   FROM lt_report.case_timeliness WHERE case_id::text LIKE '00000000-0000-4000-8000-00000000000%'")
check "timeliness: on time across a weekend and Giỗ Tổ (a), late at 6 working days (b), on time across 30/4-2/5 (c),
late across a worked Saturday (d), emergency after 12.5 h late (e), after 11 h on time (f): $tl" \
    test "$tl" = "a=on_time b=late c=on_time d=late e=late f=on_time"
pend=$(net_psql $C1 "SELECT lt.case_timeliness(jsonb_populate_record(NULL::lt.case_record,
                       '{\"notified_at\": \"2025-04-03T09:00:00+07:00\", \"closed_at\": null}'), '2025-04-10T12:00:00+07:00') || ' ' ||
                     lt.case_timeliness(jsonb_populate_record(NULL::lt.case_record,
                       '{\"notified_at\": \"2025-04-03T09:00:00+07:00\"}'), '2025-04-11T12:00:00+07:00') || ' ' ||
                     lt.case_timeliness(jsonb_populate_record(NULL::lt.case_record,
                       '{\"notified_at\": \"2025-04-03T09:00:00+07:00\"}'), '2025-04-14T12:00:00+07:00')")
check "a plan not yet drafted is pending through the 5th working day and late after ($pend)" test "$pend" = "pending pending late"
net_wait_converged 60 >/dev/null
q2="SELECT string_agg(period || ':' || numerator || '/' || denominator, ' ' ORDER BY period) FROM lt_report.indicator_value
    WHERE unit_code = '$C1' AND indicator = 'CL_SUPPORTED_TIMELY' AND period IN ('2025Q1', '2025Q2')"
here=$(net_psql $C1 "$q2"); there=$(net_psql 24 "$q2")
check "'supported in time' counts on-time cases over settled ones, the same at the commune and the province ($here | $there)" \
    test "$here" = "2025Q1:1/2 2025Q2:2/4" -a "$there" = "$here"

# ---------------------------------------------------------------- completeness and locks
net_stop_all     # submissions travel by hand below (the daemon's kind-3 transport is not part of this test)
net_lt $C1 submit CL_ANNUAL 2024 >/dev/null            # now: long after 20/11/2024
sub_hop $C1 223 >/dev/null
# $C2 submitted on 15/11/2024 (on time): the row as it would have travelled then
net_psql 223 "SELECT * FROM lt.submission_apply('$C2', jsonb_build_array(jsonb_build_object(
    'unit_code', '$C2', 'data_set', 'CL_ANNUAL', 'period', '2024', 'submitted_at', '2024-11-15T10:00:00+07:00',
    'first_submitted_at', '2024-11-15T10:00:00+07:00', 'version', 1731639600000000, 'status', 'submitted')))" >/dev/null
rej=$(net_psql 223 "SELECT reason FROM lt.submission_apply('$C2', jsonb_build_array(jsonb_build_object(
    'unit_code', '$C1', 'data_set', 'CL_ANNUAL', 'period', '2024', 'submitted_at', '2024-11-15T10:00:00+07:00',
    'first_submitted_at', '2024-11-15T10:00:00+07:00', 'version', 9, 'status', 'submitted'))) WHERE kind = 'reject'")
check "a submission for a unit outside the sending child's subtree is refused ($rej)" grep -q "not inside the subtree" <<<"$rej"
ncomm=$(awk -F, 'NR > 1 && $4 == "223"' "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv" | wc -l)
c=$(net_psql 223 "SELECT expected || ' ' || submitted || ' ' || on_time || ' ' || late || ' ' || missing
                  FROM lt_report.completeness WHERE scope_unit = '223' AND data_set = 'CL_ANNUAL' AND period = '2024'")
check "completeness at the district: $ncomm communes expected, 2 submitted, 1 on time, 1 late, the rest missing ($c)" \
    test "$c" = "$ncomm 2 1 1 $((ncomm - 2))"
lst=$(net_psql 223 "SELECT string_agg(unit_code || ':' || state, ' ' ORDER BY unit_code) FROM lt_report.submission_status
                    WHERE scope_unit = '223' AND data_set = 'CL_ANNUAL' AND period = '2024' AND unit_code IN ('$C1', '$C2', '$CNEW')")
check "the late and missing units are listed ($lst)" test "$lst" = "$C1:late $C2:on_time $CNEW:missing"
out=$(net_lt 223 completeness --period 2024 --data-set CL_ANNUAL 2>&1)
check "lienthong completeness lists the late and the missing communes" \
    bash -c 'grep -q "'$C1'.*muộn" <<<"$1" && grep -q "'$CNEW'.*chưa nộp" <<<"$1"' _ "$out"
# units that did not exist: the 2025 communes of 24 are not expected for 2024, the 2024 ones not for 2025
n24=$(awk -F, 'NR > 1 && $1 == "24" { c++; d[$4] = 1 } END { print c + length(d) }' "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv")
n25=$(awk -F, 'NR > 1 && $2 == "24"' "$LT_ROOT/schemas/units/vn_2025_communes.csv" | wc -l)
new25=$(awk -F, 'NR == FNR && FNR > 1 { p[$7] = $1; next } FNR > 1 && $2 == "24" && p[$1] == "27" { print $1; exit }' \
    "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv" "$LT_ROOT/schemas/units/vn_2025_communes.csv")
gone=$(awk -F, 'NR == FNR && FNR > 1 { n[$1] = 1; next } FNR > 1 && $1 == "24" && !n[$7] { print $7; exit }' \
    "$LT_ROOT/schemas/units/vn_2025_communes.csv" "$LT_ROOT/schemas/units/vn_pre2025_3level_20250301.csv")
e=$(net_psql 24 "SELECT (SELECT expected FROM lt_report.completeness WHERE scope_unit = '24' AND data_set = 'CL_ANNUAL' AND period = '2024')
                 || ' ' || (SELECT expected FROM lt_report.completeness WHERE scope_unit = '24' AND data_set = 'CL_ANNUAL' AND period = '2025')
                 || ' ' || (SELECT count(*) FROM lt_report.submission_status WHERE scope_unit = '24' AND data_set = 'CL_ANNUAL'
                             AND ((period = '2024' AND unit_code = '$new25') OR (period = '2025' AND unit_code = '$gone')))
                 || ' ' || (SELECT count(*) FROM lt_report.submission_status WHERE scope_unit = '24' AND data_set = 'CL_ANNUAL'
                             AND ((period = '2025' AND unit_code = '$new25') OR (period = '2024' AND unit_code = '$gone')))")
check "a unit is expected only for periods it existed in: 2024 $n24 (communes + districts), 2025 $n25; $new25 (2025 only) and $gone (2024 only) ($e)" \
    test "$e" = "$n24 $n25 0 2"
sub=$(net_psql 24 "SELECT max(submitted_percent) <= 100 FROM lt_report.completeness")
check "no completeness rate above 100 %" test "$sub" = t

# approval at the district, down to the commune, and the lock
net_lt 223 decide $C2 CL_ANNUAL 2024 approved >/dev/null
up=$(net_psql 223 "SELECT count(*) FROM lt.outbox WHERE kind = 3")
check "a decision at the district is queued upwards in the same transaction ($up outbox rows of kind 3)" test "$up" -ge 1
sub_hop 223 24 >/dev/null
st=$(net_psql 24 "SELECT status || ' ' || decided_by FROM lt.submission WHERE unit_code = '$C2' AND data_set = 'CL_ANNUAL'")
check "the province sees the district's approval ($st)" test "$st" = "approved 223"
meta_hop 223 $C2 >/dev/null; meta_hop 223 $C1 >/dev/null
st=$(net_psql $C2 "SELECT status FROM lt.submission WHERE data_set = 'CL_ANNUAL' AND period = '2024'")
a1=$(net_psql $C1 "SELECT count(*) FROM lt.meta_change WHERE kind = 'approval'")
o2=$(net_psql $C2 "SELECT count(*) FROM lt.outbox WHERE kind = 3")
check "the approval reaches $C2 only ($C2: $st; approvals at $C1: $a1) and does not travel back up ($o2 queued)" \
    test "$st" = approved -a "$a1" = 0 -a "$o2" = 0
before=$(net_psql $C2 "SELECT value || ' ' || version FROM lt.data_value WHERE element = 'PARENTS_INF' AND period = '2024Q3' AND disagg = ''")
ob=$(net_psql $C2 "SELECT count(*) FROM lt.outbox")
err=$(net_lt $C2 set PARENTS_INF 2024Q3 999 2>&1)
after=$(net_psql $C2 "SELECT value || ' ' || version FROM lt.data_value WHERE element = 'PARENTS_INF' AND period = '2024Q3' AND disagg = ''")
oa=$(net_psql $C2 "SELECT count(*) FROM lt.outbox")
check "an edit to the approved period is refused with a clear error ($err)" \
    grep -q "PARENTS_INF 2024Q3 of unit $C2 is locked: CL_ANNUAL for 2024 was approved by 223" <<<"$err"
check "and nothing changed: the value, its version and the outbox ($before -> $after; outbox $ob -> $oa)" \
    test "$before" = "$after" -a "$ob" = "$oa"
cid=$(net_psql $C2 "SELECT case_id FROM lt.case_record WHERE closed_at IS NULL ORDER BY case_id LIMIT 1")
err=$(net_lt $C2 case "case_id=$cid" categories=at_risk,child_labour sex=M "notified_at=$(net_psql $C2 "SELECT notified_at FROM lt.case_record WHERE case_id = '$cid'")" 2>&1)
check "changing a case notified in the approved period is refused ($(echo "$err" | head -1 | cut -c1-120))" grep -q "must be reopened" <<<"$err"
err=$(net_lt $C2 submit CL_ANNUAL 2024 2>&1)
check "an approved report cannot be submitted again" grep -q "locked until it is reopened" <<<"$err"
check "other periods stay open" net_lt $C2 set PARENTS_INF 2025Q1 5
check "elements outside the approved data set stay open" net_lt $C2 set CHILD_INJURIES 202403 1
err=$(net_lt $C1 decide $C2 CL_ANNUAL 2024 reopened "thử" 2>&1)
check "a commune cannot decide on another commune's report" grep -q "only an ancestor decides" <<<"$err"
net_lt 223 decide $C2 CL_ANNUAL 2024 reopened "số liệu quý III cần sửa" >/dev/null
meta_hop 223 $C2 >/dev/null
check "once reopened, the edit is accepted" net_lt $C2 set PARENTS_INF 2024Q3 999
net_lt 223 decide $C1 CL_ANNUAL 2024 returned "thiếu số liệu quý IV" >/dev/null
c=$(net_psql 223 "SELECT submitted || ' ' || missing || ' ' || returned FROM lt_report.completeness
                  WHERE scope_unit = '223' AND data_set = 'CL_ANNUAL' AND period = '2024'")
check "a returned report counts as missing until it is submitted again ($c)" test "$c" = "1 $((ncomm - 1)) 1"

# the read-only role reads the views, never personal data
r=$( { echo "SET ROLE lienthong_reader;"; echo "SELECT count(*) > 0 FROM lt_report.indicator_value WHERE unit_code = '$C2' AND period = '2024';"; } | psql_in $C2 2>&1)
p=$( { echo "SET ROLE lienthong_reader;"; echo "SELECT count(*) FROM lt.case_personal;"; } | psql_in $C2 2>&1)
check "lienthong_reader reads lt_report ($r) but not personal data" \
    bash -c '[ "$1" = t ] && grep -q "permission denied" <<<"$2"' _ "$r" "$p"
check "verify passes at every node" net_verify_all
check_done
