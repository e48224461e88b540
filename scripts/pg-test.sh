#!/bin/sh
# pg-test.sh - a private, throw-away PostgreSQL server for the tests.
#
#   scripts/pg-test.sh start  [STATE]   initdb in a temp dir, start on a free
#                                       loopback port, print the URL
#   scripts/pg-test.sh stop   [STATE]   stop it (-m fast) and delete the dir
#   scripts/pg-test.sh pause  [STATE]   stop the server, keep its data
#   scripts/pg-test.sh resume [STATE]   start it again on the same port
#   scripts/pg-test.sh url    [STATE]   print the URL of the running server
#   scripts/pg-test.sh env    [STATE]   print `export` lines for the tests
#
# STATE is the file that remembers the instance (default build/pg-test.state,
# or $TERN_PG_STATE); give each instance its own.  The Debian package's own
# cluster service is not used.  initdb refuses to run as root, so as root the
# server runs as the `postgres` user (runuser); otherwise as the caller.
# `start` on a running instance just prints its URL.
set -eu

cmd=${1:-}
root=$(cd "$(dirname "$0")/.." && pwd)
state=${2:-${TERN_PG_STATE:-$root/build/pg-test.state}}

die() { echo "pg-test: $*" >&2; exit 1; }

find_bindir() { # pg_config's, else the newest Debian server
    for d in "$(pg_config --bindir 2>/dev/null || true)" \
        $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5nr); do
        if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# Runs a command as the server's owner.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c '"$0" "$@"' -- "$@"
        fi
    else
        "$@"
    fi
}

# 0 when nothing listens on 127.0.0.1:$1 (or on any address).
port_free() {
    hex=$(printf '%04X' "$1")
    ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" { print $2 }' |
        grep -qi ":$hex\$"
}

pick_port() {
    i=0
    while [ $i -lt 50 ]; do
        # 20000..59999 from /dev/urandom
        p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
        i=$((i + 1))
    done
    return 1
}

load() {
    [ -f "$state" ] || return 1
    # shellcheck disable=SC1090
    . "$state"
}

running() {
    load || return 1
    [ -d "$PG_DATA" ] || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/postgres"; }

server_start() { # port
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $1 -c unix_socket_directories=$PG_DIR" \
        start >/dev/null 2>&1
}

ready() { # wait until pg_isready says yes (at most 15 s)
    i=0
    while [ $i -lt 150 ]; do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

start() {
    if running; then
        ready || die "instance in $PG_DIR does not answer"
        url
        return 0
    fi
    [ -f "$state" ] && { load && rm -rf "${PG_DIR:?}"; rm -f "$state"; } || true

    PG_BIN=$(find_bindir) || die "no PostgreSQL server found (apt-get install postgresql)"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user"
        PG_DIR=$(mktemp -d /tmp/tern-pg.XXXXXX)   # /tmp: reachable by postgres
        chown postgres "$PG_DIR"
    else
        PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tern-pg.XXXXXX")
    fi
    PG_DATA=$PG_DIR/data
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C \
        --no-sync >"$PG_DIR/initdb.log" 2>&1; then
        cat "$PG_DIR/initdb.log" >&2
        rm -rf "$PG_DIR"
        die "initdb failed"
    fi
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# tern tests: speed over durability
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 16MB
log_min_messages = warning
log_min_error_statement = panic
EOF
    tries=0
    while :; do
        PG_PORT=$(pick_port) || die "no free port"
        if server_start "$PG_PORT"; then
            break
        fi
        tries=$((tries + 1))
        if [ $tries -ge 5 ]; then
            tail -n 20 "$PG_DIR/server.log" >&2 || true
            rm -rf "$PG_DIR"
            die "pg_ctl start failed"
        fi
    done
    mkdir -p "$(dirname "$state")"
    cat >"$state" <<EOF
PG_DIR='$PG_DIR'
PG_DATA='$PG_DATA'
PG_BIN='$PG_BIN'
PG_PORT=$PG_PORT
EOF
    ready || die "server on port $PG_PORT does not answer"
    url
}

stop() {
    load || return 0
    if [ -d "$PG_DATA" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "${PG_DIR:?}"
    rm -f "$state"
}

case "$cmd" in
start) start ;;
stop) stop ;;
pause)
    load || die "no instance ($state)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        die "pg_ctl stop failed"
    ;;
resume)
    load || die "no instance ($state)"
    if ! running; then
        server_start "$PG_PORT" || die "restart on port $PG_PORT failed"
    fi
    ready || die "server on port $PG_PORT does not answer"
    ;;
url)
    running || die "no running instance ($state)"
    url
    ;;
env)
    running || die "no running instance ($state)"
    echo "export TERN_TEST_PG_URL='$(url)'"
    echo "export TERN_TEST_PG_BIN='$PG_BIN'"
    echo "export TERN_TEST_PGDATA='$PG_DATA'"
    ;;
*)
    echo "usage: $0 start|stop|pause|resume|url|env [STATE]" >&2
    exit 2
    ;;
esac
