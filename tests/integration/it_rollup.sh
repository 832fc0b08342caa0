#!/usr/bin/env bash
# it_rollup.sh — the roll-up arithmetic of the schema, one node database, no daemons:
# inserts, corrections, tombstones, versions applied out of order at a parent, the
# unit tree chosen by the period's end date (07840 rolls up through district 223 in
# 2024 and straight to province 24 in 2026), case counts by category and status, and
# `verify` catching a roll-up that was tampered with.
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

net_setup "$(mktemp -d /tmp/lt-rollup.XXXXXX)"
net_node 07840 "" # a commune, alone: its own roll-ups
net_node 24 ""    # a province, fed by hand through lt.apply_batch
q() { net_psql "$1" "$2"; }
eq() { # eq "what" actual expected
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (got '$2', expected '$3')"; fi
}

# --- at the commune: local writes
q 07840 "SELECT lt.put_value('07840', 'PARENTS_INF', '2024Q1', '', 10)" >/dev/null
q 07840 "SELECT lt.put_value('07840', 'PARENTS_INF', '2024Q2', '', 5)" >/dev/null
eq "two values: roll-up for the commune per period" \
    "$(q 07840 "SELECT string_agg(period || '=' || total, ',' ORDER BY period) FROM lt.rollup_value WHERE element = 'PARENTS_INF'")" \
    "2024Q1=10,2024Q2=5"
q 07840 "SELECT lt.put_value('07840', 'PARENTS_INF', '2024Q1', '', 12.50)" >/dev/null
eq "a correction replaces, not adds (10 -> 12.5)" \
    "$(q 07840 "SELECT total || '/' || n_rows FROM lt.rollup_value WHERE element = 'PARENTS_INF' AND period = '2024Q1'")" "12.5/1"
q 07840 "SELECT lt.delete_value('07840', 'PARENTS_INF', '2024Q1', '')" >/dev/null
eq "a tombstone leaves the roll-up" \
    "$(q 07840 "SELECT coalesce(sum(total), 0) || '/' || coalesce(sum(n_rows), 0) FROM lt.rollup_value WHERE element = 'PARENTS_INF' AND period = '2024Q1'")" "0/0"
q 07840 "SELECT lt.put_value('07840', 'PARENTS_INF', '2024Q1', '', 3)" >/dev/null
eq "a value written after its tombstone counts again" \
    "$(q 07840 "SELECT total || '/' || n_rows FROM lt.rollup_value WHERE element = 'PARENTS_INF' AND period = '2024Q1'")" "3/1"
v1=$(q 07840 "SELECT version FROM lt.data_value WHERE period = '2024Q1'")
q 07840 "SELECT lt.put_value('07840', 'PARENTS_INF', '2024Q1', '', 4)" >/dev/null
v2=$(q 07840 "SELECT version FROM lt.data_value WHERE period = '2024Q1'")
check "versions grow with every write ($v1 < $v2)" test "$v2" -gt "$v1"
outbox=$(q 07840 "SELECT count(*) FROM lt.outbox")
eq "no parent configured: nothing queued for upstream" "$outbox" 0
err=$(q 07840 "SELECT lt.put_value('07840', 'NO_SUCH', '2024', '', 1)" 2>&1)
check "an unknown element is refused" grep -q 'unknown data element "NO_SUCH"' <<<"$err"
err=$(q 07840 "SELECT lt.put_value('07843', 'PARENTS_INF', '2024', '', 1)" 2>&1)
check "a node refuses to write another unit's row" grep -q "not this node's unit" <<<"$err"
err=$(q 07840 "SELECT lt.put_value('07840', 'PARENTS_INF', '2024-13', '', 1)" 2>&1)
check "a malformed period is refused" grep -q "is not a period" <<<"$err"

# cases: categories and status
cid=$(q 07840 "SELECT lt.put_case('{\"sex\":\"F\",\"categories\":[\"child_labour\",\"h_dropout_work\"],\"status\":\"assessed\",\"notified_at\":\"2024-03-05T10:00:00+07\",\"full_name\":\"Nguyễn Thị A\"}')")
eq "a case counts under 'any' and each of its categories" \
    "$(q 07840 "SELECT string_agg(category || ':' || status || '=' || n, ',' ORDER BY category) FROM lt.rollup_case WHERE n > 0")" \
    "0:assessed=1,2:assessed=1,11:assessed=1"
q 07840 "SELECT lt.put_case('{\"case_id\":\"$cid\",\"sex\":\"F\",\"categories\":[\"child_labour\"],\"status\":\"planning\",\"notified_at\":\"2024-03-05T10:00:00+07\"}')" >/dev/null
eq "a status change moves the count; a dropped category leaves" \
    "$(q 07840 "SELECT string_agg(category || ':' || status || '=' || n, ',' ORDER BY category) FROM lt.rollup_case WHERE n > 0")" \
    "0:planning=1,2:planning=1"
eq "personal data stays in its own table" "$(q 07840 "SELECT full_name FROM lt.case_personal")" "Nguyễn Thị A"
check "verify: consistent" net_lt 07840 verify
# a unit's own row is its roll-up's own part: not stored twice (0012), so a stored
# copy of it is an error verify must see
eq "the commune's roll-up of its own rows is not stored a second time" \
    "$(q 07840 "SELECT count(*) FROM lt.rollup_value_below")" 0
q 07840 "INSERT INTO lt.rollup_value_below VALUES ('07840', 'PARENTS_INF', '2024Q2', '', 5, 1, now())"
if net_lt 07840 verify >/dev/null; then not_ok "verify detects a roll-up row counting the commune's own row twice"; else ok "verify detects a roll-up row counting the commune's own row twice (exit 1)"; fi
q 07840 "TRUNCATE lt.rollup_value_below"

# --- at the province: batches staged and applied by hand, as the daemon does
apply_rows() { # apply_rows CHILD PREV LAST "VALUES (...), (...)"
    net_psql 24 "SELECT lt.create_staging();
        INSERT INTO pg_temp.stage_value (seq, unit_code, element, period, disagg, value, version, changed_at) $4;
        SELECT string_agg(kind || ':' || seq || ':' || n || ':' || code, ' ') FROM lt.apply_batch('$1', $2, $3)" | tail -1
}
r=$(apply_rows 223 0 2 "VALUES (1, '07840', 'PARENTS_INF', '2024Q1', '', 10, 100, now()), (2, '07843', 'PARENTS_INF', '2024Q1', '', 7, 100, now())")
eq "a batch from district 223 is applied" "$r" "summary:2:2:0"
eq "2024: 07840 counts under district 223 and province 24" \
    "$(q 24 "SELECT string_agg(unit_code || '=' || total, ',' ORDER BY unit_code) FROM lt.rollup_value WHERE period = '2024Q1'")" \
    "07840=10,07843=7,223=17,24=17"
r=$(apply_rows 223 2 4 "VALUES (3, '07840', 'PARENTS_INF', '2024Q1', '', 9, 99, now()), (4, '07840', 'PARENTS_INF', '2024Q1', '', 11, 101, now())")
eq "an older version after a newer one, in the same batch: the newest wins" \
    "$(q 24 "SELECT total FROM lt.rollup_value WHERE unit_code = '24' AND period = '2024Q1'")" "18"
r=$(apply_rows 223 4 5 "VALUES (5, '07840', 'PARENTS_INF', '2024Q1', '', 1, 50, now())")
eq "an older version in a later batch changes nothing" \
    "$(q 24 "SELECT total FROM lt.rollup_value WHERE unit_code = '24' AND period = '2024Q1'")" "18"
r=$(apply_rows 223 0 2 "VALUES (1, '07840', 'PARENTS_INF', '2024Q1', '', 10, 100, now())")
eq "a batch at or below last_applied_seq is re-acked, not re-applied" "$r" "summary:5:0:0"
r=$(apply_rows 223 9 10 "VALUES (10, '07840', 'PARENTS_INF', '2024Q2', '', 1, 1, now())")
eq "a batch after a gap is refused ('gap', resume after 5)" "$r" "summary:5:0:0"
eq "... and nothing of it was applied" "$(q 24 "SELECT count(*) FROM lt.data_value WHERE period = '2024Q2'")" "0"
r=$(apply_rows 07840 0 1 "VALUES (1, '07840', 'PARENTS_INF', '2026Q1', '', 4, 1, now())")
eq "2026: 07840 reports straight to province 24 (two tiers)" \
    "$(q 24 "SELECT string_agg(unit_code || '=' || total, ',' ORDER BY unit_code) FROM lt.rollup_value WHERE period = '2026Q1'")" \
    "07840=4,24=4"
r=$(apply_rows 223 5 6 "VALUES (6, '07840', 'PARENTS_INF', '2026Q2', '', 4, 1, now())")
eq "district 223 may not send 2026 data (it no longer exists): refused, code 7" "$r" "summary:6:0:0 reject:6:0:7"

# --- many batches in one set-based apply (what the daemon does with its queue):
# positions advance batch by batch per child, each batch answered on its own
apply_group() { # apply_group "CHILDREN" "PREVS" "LASTS" "VALUES (seq, unit, element, period, disagg, value, version, ord), ..."
    net_psql 24 "SELECT lt.create_staging();
        INSERT INTO pg_temp.stage_value (seq, unit_code, element, period, disagg, value, version, ord, changed_at)
        SELECT *, now() FROM ($4) v;
        SELECT string_agg(kind || ':' || ord || ':' || seq || ':' || n || ':' || code, ' ' ORDER BY kind DESC, ord, seq)
          FROM lt.apply_group('{$1}', '{$2}', '{$3}')" | tail -1
}
r=$(apply_group "223,07840,223,223,223" "6,1,8,7,12" "8,3,9,8,13" "VALUES
    (7, '07840', 'PARENTS_INF', '2024S1', '', 2, 10, 0), (8, '07840', 'PARENTS_INF', '2024S1', '', 3, 11, 0),
    (2, '07840', 'PARENTS_INF', '2026S1', '', 5, 10, 1), (3, '07840', 'NO_SUCH', '2026S1', '', 5, 10, 1),
    (9, '07843', 'PARENTS_INF', '2024S1', '', 4, 10, 2),
    (8, '07840', 'PARENTS_INF', '2024S1', '', 99, 99, 3),
    (13, '07843', 'PARENTS_INF', '2024S2', '', 1, 1, 4)")
eq "a group: applied, applied with a refusal, chained, duplicate, gap" "$r" \
    "summary:0:8:2:0 summary:1:3:1:0 summary:2:9:1:0 summary:3:9:0:0 summary:4:9:0:0 reject:1:3:0:6"
eq "... the newest version of the group, the chained batch, nothing of the duplicate or the gap" \
    "$(q 24 "SELECT string_agg(unit_code || '/' || period || '=' || total, ',' ORDER BY unit_code, period) FROM lt.rollup_value WHERE period IN ('2024S1', '2024S2', '2026S1') AND unit_code IN ('07840', '07843')")" \
    "07840/2024S1=3,07840/2026S1=5,07843/2024S1=4"
eq "... each child's position is that of its last applied batch" \
    "$(q 24 "SELECT string_agg(child_unit || '=' || last_applied_seq, ',' ORDER BY child_unit) FROM lt.child_link")" "07840=3,223=9"
eq "... the refused record is kept, for its child" \
    "$(q 24 "SELECT child_unit || ':' || seq || ':' || code FROM lt.rejected_delta WHERE record ->> 'element' = 'NO_SUCH'")" "07840:3:6"
check "verify at the province: consistent" net_lt 24 verify
q 24 "UPDATE lt.rollup_value_below SET total = total + 1 WHERE unit_code = '24' AND period = '2024Q1'"
if net_lt 24 verify >/dev/null; then not_ok "verify detects a tampered roll-up"; else ok "verify detects a tampered roll-up (exit 1)"; fi
q 24 "UPDATE lt.rollup_value_below SET total = total - 1 WHERE unit_code = '24' AND period = '2024Q1'"

# --- upgrade: a database made before 0012 stored each unit's own rows in its roll-up
# too; the migration keeps what came from below and the roll-ups read the same
old_schema=$NET_DIR/schema-0011
cp -r "$LT_ROOT/schemas" "$old_schema"
find "$old_schema/migrations" -name '*.sql' | awk -F/ '$NF >= "0012"' | xargs rm -f
LT_SCHEMA_DIR=$old_schema net_node 223 ""
q 223 "SELECT lt.put_value('223', 'PARENTS_INF', '2024Q1', '', 7); SELECT lt.put_value('223', 'PARENTS_INF', '2024Q2', '', 2.50)" >/dev/null
net_psql 223 "SELECT lt.create_staging();
    INSERT INTO pg_temp.stage_value (seq, unit_code, element, period, disagg, value, version, changed_at) VALUES
        (1, '07840', 'PARENTS_INF', '2024Q1', '', 10, 1, now()), (2, '07840', 'PARENTS_INF', '2024Q2', '', 1, 1, now());
    SELECT count(*) FROM lt.apply_batch('07840', 0, 2)" >/dev/null
rv="SELECT string_agg(unit_code || '/' || period || '=' || total || '/' || n_rows, ',' ORDER BY unit_code, period) FROM lt.rollup_value WHERE n_rows > 0"
before=$(q 223 "$rv")
eq "before 0012: the stored roll-ups count each unit's own row as well" \
    "$(q 223 "SELECT count(*) FROM lt.rollup_value WHERE unit_code = '07840'")" 2
out=$(net_lt 223 migrate 2>&1)
check "migrate applies 0012_rollup_below ($(grep -c "applied migration" <<<"$out") applied)" grep -q "0012_rollup_below" <<<"$out"
eq "after 0012 the roll-ups read the same ($before)" "$(q 223 "$rv")" "$before"
eq "after 0012 only what comes from below is stored (07840's rows in 223's sums)" \
    "$(q 223 "SELECT string_agg(unit_code || '/' || period || '=' || total, ',' ORDER BY unit_code, period) FROM lt.rollup_value_below")" \
    "223/2024Q1=10,223/2024Q2=1"
check "verify after the upgrade: consistent" net_lt 223 verify
check_done
