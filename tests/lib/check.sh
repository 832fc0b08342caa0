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
check_done() { exit $CHECK_FAILED; }
