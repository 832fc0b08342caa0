# pg.sh — throwaway PostgreSQL clusters for tests, the demo and benchmarks.
# Source it, then:
#   pg_start DIR [extra postgres -c options...]   initdb + start, socket in DIR/sock
#   pg_stop DIR                                    fast shutdown (no-op when not running)
#   pg_kill DIR                                    kill -9 the postmaster (crash test)
#   pg_restart DIR
#   pg_conninfo DIR DBNAME                         the libpq conninfo of a database there
# PostgreSQL refuses to run as root: as root, the cluster belongs to the system user
# "ltpg" (created when missing) and every server command runs as that user. Clients
# connect over the unix socket as the bootstrap role "lt" with trust authentication,
# which is acceptable only because the socket directory is private to the test.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PG_OSUSER=ltpg

pg__as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PG_OSUSER" -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    local dir=$1; shift
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
        id "$PG_OSUSER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OSUSER"
        # every directory above must be traversable by the cluster's user
        local d=$dir
        while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
        chown "$PG_OSUSER" "$dir"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        pg__as mkdir -p "$dir/data" "$dir/sock"
        pg__as "$PG_BIN/initdb" -D "$dir/data" -U lt -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; return 1; }
        {
            echo "listen_addresses = ''"
            echo "unix_socket_directories = '$dir/sock'"
            echo "max_connections = 400"
            echo "shared_buffers = 128MB"
            echo "fsync = ${PG_FSYNC:-off}"
            echo "full_page_writes = ${PG_FSYNC:-off}"
            echo "synchronous_commit = on"
            echo "timezone = 'UTC'"
            echo "log_min_messages = warning"
            echo "log_min_error_statement = panic"
        } | pg__as tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    local opts=()
    for o in "$@"; do opts+=("-c" "$o"); done
    pg__as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        ${opts:+-o "${opts[*]}"} start >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
}

pg_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    pg__as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

pg_kill() {
    local dir=$1 pid kids
    pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null) || return 0
    # this cluster's processes only: other clusters of the same user keep running
    kids=$(pgrep -P "$pid" 2>/dev/null)
    kill -9 "$pid" $kids 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    sleep 0.2
}

pg_restart() {
    local dir=$1
    pg__as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; return 1; }
}

pg_conninfo() {
    echo "host=$(cd "$1" && pwd)/sock user=lt dbname=$2"
}
