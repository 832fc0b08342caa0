# check.sh — the ok/not ok lines every integration test prints (TAP-like), which
# tests/run.sh counts.
CHECK_FAILED=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; CHECK_FAILED=1; }
# check "description" command args...: ok when the command succeeds
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
# ok_if "description" STATUS: ok when STATUS (a command's $?) is 0
ok_if() { if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi; }
# eq WHAT GOT WANT: equality, saying what differed (for check)
eq() {
    [ "$2" = "$3" ] && return 0
    echo "#   $1: got [$2], want [$3]" >&2
    return 1
}
check_done() { exit $CHECK_FAILED; }
