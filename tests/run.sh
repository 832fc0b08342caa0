#!/usr/bin/env bash
# run.sh — every test lienthong has, in one command (`make test`):
#   1. build with warnings as errors; unit tests;
#   2. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. a bounded fuzzing run of the wire decoder;
#   4. integration tests: real PostgreSQL clusters, real daemons, real ZeroMQ.
# Each test prints "ok ..." or "FAIL/not ok ..."; the last line is the summary
# "N passed, N failed". Exit status 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export LT_ROOT=$PWD

passed=0
failed=0
failures=()
log_dir=${LT_TEST_LOGS:-/tmp/lienthong-test-logs}
rm -rf "$log_dir"
mkdir -p "$log_dir"

count() { # count the ok/fail lines of a file; remember the failing ones
    local f=$1 p q
    p=$(grep -cE '^ok ' "$f")
    q=$(grep -cE '^(FAIL|not ok) ' "$f")
    passed=$((passed + p))
    failed=$((failed + q))
    while IFS= read -r line; do failures+=("$line"); done < <(grep -E '^(FAIL|not ok) ' "$f")
}

step() { echo "== $*"; }

step "build (warnings are errors)"
if ! make -s all unit tools >"$log_dir/build.log" 2>&1; then
    cat "$log_dir/build.log"
    echo "not ok - build" ; echo "0 passed, 1 failed"; exit 1
fi

step "unit tests"
for t in build/tests/test_*; do
    "$t" >"$log_dir/$(basename "$t").log" 2>&1
    grep -E '^(ok|FAIL) ' "$log_dir/$(basename "$t").log"
    count "$log_dir/$(basename "$t").log"
done

step "unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
if make -s SANITIZER=address,undefined unit >"$log_dir/build-san.log" 2>&1; then
    for t in build-san/tests/test_*; do
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            "$t" >"$log_dir/san-$(basename "$t").log" 2>&1
        sed -e 's/^ok   /ok   san:/' -e 's/^FAIL /FAIL san:/' "$log_dir/san-$(basename "$t").log" \
            | grep -E '^(ok|FAIL) ' | tee "$log_dir/san-$(basename "$t").counted"
        count "$log_dir/san-$(basename "$t").counted"
    done
else
    cat "$log_dir/build-san.log"
    echo "FAIL sanitizer build" | tee "$log_dir/san-build.counted"
    count "$log_dir/san-build.counted"
fi

if [ -x tests/fuzz/run.sh ]; then
    step "fuzzing the wire decoder (bounded)"
    if tests/fuzz/run.sh "${LT_FUZZ_SECONDS:-30}" >"$log_dir/fuzz.log" 2>&1; then
        echo "ok   fuzz: $(grep -iE 'executions|execs' "$log_dir/fuzz.log" | tail -1)" | tee "$log_dir/fuzz.counted"
    else
        tail -30 "$log_dir/fuzz.log"
        echo "FAIL fuzz: crash or build failure (see $log_dir/fuzz.log)" | tee "$log_dir/fuzz.counted"
    fi
    count "$log_dir/fuzz.counted"
fi

step "integration tests (PostgreSQL, daemons, ZeroMQ)"
for t in tests/integration/it_*.sh; do
    [ -n "${LT_ONLY:-}" ] && [[ "$t" != *"$LT_ONLY"* ]] && continue
    name=$(basename "$t" .sh)
    start=$SECONDS
    timeout -k 10 "${LT_IT_TIMEOUT:-600}" bash "$t" >"$log_dir/$name.log" 2>&1
    rc=$?
    grep -E '^(ok|not ok) ' "$log_dir/$name.log" | sed -E "s/^(ok|not ok) /\1 [$name] /"
    grep -E '^(ok|not ok) ' "$log_dir/$name.log" >"$log_dir/$name.counted"
    if [ $rc -ne 0 ] && ! grep -qE '^not ok ' "$log_dir/$name.log"; then
        echo "not ok - $name exited with status $rc (see $log_dir/$name.log)" | tee -a "$log_dir/$name.counted"
        tail -20 "$log_dir/$name.log"
    fi
    count "$log_dir/$name.counted"
    echo "   ($name: $((SECONDS - start)) s)"
done

if [ ${#failures[@]} -gt 0 ]; then
    echo
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
    # what each failing integration test said right after its failure (a CI log is
    # often read from its end)
    for f in "$log_dir"/it_*.log; do
        grep -qE '^not ok ' "$f" 2>/dev/null || continue
        echo
        echo "details from $(basename "$f" .log):"
        awk '/^not ok / {n = 60; print; next} /^ok / {n = 0} n > 0 && /^#/ {print; n--}' "$f"
    done
    echo "logs: $log_dir"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
