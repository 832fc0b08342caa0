#!/usr/bin/env bash
# it_metadata.sh — what flows DOWN the tree and what officers' decisions do, end to end
# over real daemons: the catalogue loaded at the province reaches every commune; a
# target changed at the province reaches a commune that was offline when it was made,
# and a brand-new commune starting from nothing; a commune's report submission reaches
# its district and the province; the district's approval flows down to the commune and
# locks the period there; reopening unlocks it.
set -uo pipefail
. "$(dirname "$0")/../lib/net.sh"
. "$(dirname "$0")/../lib/check.sh"

NET_UNITS=vn2024
net_setup "$(mktemp -d /tmp/lt-meta.XXXXXX)"
net_node 24 ""
net_node 223 24
communes=($(net_units_of 3 223 | head -3))
for c in "${communes[@]:0:2}"; do net_node "$c" 223; done
net_start_all
c1=${communes[0]}
c2=${communes[1]}
late=${communes[2]}

wait_for() { # wait_for SECONDS command...: poll until the command succeeds
    local end=$((SECONDS + $1))
    shift
    until "$@" 2>/dev/null; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.3
    done
}
# the rows every node must hold (targets scoped to another province's units stay away)
META_Q="SELECT (SELECT count(*) FROM lt.indicator) || '/' || (SELECT count(*) FROM lt.data_element) || '/'
        || (SELECT count(*) FROM lt.holiday) || '/' || (SELECT count(*) FROM lt.target WHERE scope = '*')
        || '/' || (SELECT count(*) FROM lt.deadline)"
same_meta() { # same_meta UNIT: UNIT's catalogue matches the province's
    local want have
    want=$(net_psql 24 "$META_Q")
    have=$(net_psql "$1" "$META_Q")
    [ "$want" = "$have" ] && [ "${want%%/*}" -gt 0 ]
}
target_is() { [ "$(target "$1")" = "$2" ]; }
status_is() { # status_is NODE VALUE: the submission of c1 as NODE sees it
    [ "$(net_psql "$1" "SELECT status FROM lt.submission WHERE unit_code = '$c1'")" = "$2" ]
}

out=$(net_lt 24 meta load "$LT_ROOT/schemas/catalog" 2>&1)
check "the catalogue loads at the top node ($(echo "$out" | tail -1))" test $? -eq 0
err=$(net_lt 223 meta load "$LT_ROOT/schemas/catalog" 2>&1)
check "a node with a parent refuses to edit metadata" grep -qi "top node\|parent" <<<"$err"
check "the catalogue reaches district 223" wait_for 30 same_meta 223
check "the catalogue reaches commune $c1" wait_for 30 same_meta "$c1"
check "the catalogue reaches commune $c2" wait_for 30 same_meta "$c2"

# a target change while a commune is offline
net_kill "$c2" KILL
target() { net_psql "$1" "SELECT value FROM lt.target WHERE plan = 'QD782_2021_2025' AND indicator = 'CL_RATE' AND scope = '*' AND period = '2021-2025'"; }
net_lt 24 meta set-target QD782_2021_2025 CL_RATE '*' 2021-2025 '<=' 3.5 "revised" >/dev/null
check "the revised target reaches commune $c1 (online)" wait_for 30 target_is $c1 3.5
check "commune $c2 (offline) still has the old target" test "$(target "$c2")" = 4.9
net_start "$c2"
check "the revised target reaches commune $c2 after it reconnects" wait_for 30 target_is $c2 3.5

# a brand-new node starts from nothing
net_node "$late" 223
net_start "$late"
check "a new commune $late receives the whole catalogue from version 0" wait_for 30 same_meta "$late"
check "... with the revised target" test "$(target "$late")" = 3.5

# a submission travels up; a decision travels down and locks the period
net_lt "$c1" set PARENTS_INF 2024 120 >/dev/null
net_psql "$c1" "SELECT lt.submit('CL_ANNUAL', '2024')" >/dev/null
check "the submission reaches the district" wait_for 30 status_is 223 submitted
check "the submission reaches the province" wait_for 30 status_is 24 submitted
net_psql 223 "SELECT lt.decide('$c1', 'CL_ANNUAL', '2024', 'approved', 'đủ số liệu')" >/dev/null
check "the district's approval reaches the commune" wait_for 30 status_is $c1 approved
check "the approval reaches the province" wait_for 30 status_is 24 approved
err=$(net_lt "$c1" set PARENTS_INF 2024 999 2>&1)
check "an edit of the approved period is refused with a clear error ($err)" grep -qi "approved\|locked" <<<"$err"
check "... and nothing changed" test "$(net_psql "$c1" "SELECT value FROM lt.data_value WHERE element = 'PARENTS_INF' AND period = '2024'")" = 120
net_psql 223 "SELECT lt.decide('$c1', 'CL_ANNUAL', '2024', 'reopened', 'sửa số liệu')" >/dev/null
check "reopening reaches the commune" wait_for 30 status_is $c1 reopened
check "after reopening the edit is accepted" net_lt "$c1" set PARENTS_INF 2024 121
check "network converges" net_wait_converged 60
check "verify passes at every node" net_verify_all
check "province roll-ups equal the ground truth" net_ground_truth 24
check_done
