#!/usr/bin/env bash
# Install, on Debian 12, whatever the build, the tests and the demo need and is missing.
# Idempotent and quiet when everything is there. Needs root only when it installs.
set -euo pipefail

need=()
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
command -v cc >/dev/null          || need+=(build-essential)
command -v pkg-config >/dev/null  || need+=(pkg-config)
have_pc libpq    || need+=(libpq-dev)
have_pc libzmq   || need+=(libzmq3-dev)
have_pc msgpack  || need+=(libmsgpack-dev)
have_pc libuv    || need+=(libuv1-dev)
have_pc inih     || need+=(libinih-dev)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null        || need+=(postgresql-client)
command -v ip >/dev/null          || need+=(iproute2)
command -v nft >/dev/null         || need+=(nftables)
command -v tc >/dev/null          || need+=(iproute2)
command -v ps >/dev/null          || need+=(procps)
command -v runuser >/dev/null     || need+=(util-linux)
command -v python3 >/dev/null     || need+=(python3-minimal)
command -v strace >/dev/null      || need+=(strace)
command -v clang >/dev/null       || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)

if [ ${#need[@]} -eq 0 ]; then exit 0; fi
# de-duplicate
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${need[*]} (run 'make deps' as root to install them)" >&2
    exit 1
fi
echo "deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The postgresql package starts a system cluster; lienthong never uses it.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    pg_lsclusters -h | awk '{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done
fi
