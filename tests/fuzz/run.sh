#!/usr/bin/env bash
# run.sh SECONDS — fuzz the wire decoder (tests/fuzz/fuzz_wire.c) with libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer for SECONDS (default 60).
# Builds into build-fuzz/ at the repo root, runs on a fresh copy of
# tests/fuzz/corpus, prints the number of executions, and exits non-zero when
# the fuzzer found a crash, a leak or a failed round trip (the input that did
# it is left in build-fuzz/ as crash-*, leak-* or timeout-*).
set -euo pipefail

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 SECONDS" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=build-fuzz
mkdir -p "$out"

pkgs="libpq libzmq msgpack libuv inih"
pkg_cflags="$(pkg-config --cflags $pkgs 2>/dev/null || true) -I$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)"
pkg_libs="$(pkg-config --libs $pkgs 2>/dev/null || echo -lpq -lzmq -lmsgpackc -luv -linih) -lm"
warn="-Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes -Wshadow -Wmissing-prototypes
      -Wno-unused-parameter -Wvla -Wnull-dereference -Wno-unknown-warning-option"

# shellcheck disable=SC2086  # word splitting of the flag lists is intended
clang -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    $warn -Icommon $pkg_cflags \
    tests/fuzz/fuzz_wire.c common/wire_*.c common/log.c \
    -o "$out/fuzz_wire" $pkg_libs

rm -rf "$out/corpus"
cp -r tests/fuzz/corpus "$out/corpus"
rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*

rc=0
"$out/fuzz_wire" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" >"$out/fuzz.log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -n 1)
if [ "$rc" -ne 0 ]; then
    tail -n 40 "$out/fuzz.log" >&2
    echo "fuzz_wire: FAILED after ${execs:-?} executions (exit $rc); full log in $out/fuzz.log" >&2
    ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null >&2 || true
    exit 1
fi
echo "fuzz_wire: ${execs:-?} executions in ${secs} s, no crash (corpus now $(ls "$out/corpus" | wc -l) inputs)"
