#!/usr/bin/env bash
# bench/pg-setup.sh - a private PostgreSQL with the TechEmpower database, for
# bench/run.sh (and by hand).
#
#   bench/pg-setup.sh start DIR [PORT]   initdb in DIR (if new), start the
#                                        server on 127.0.0.1:PORT (default: a
#                                        free port), create the TFB database;
#                                        prints the DATABASE_URL on stdout
#   bench/pg-setup.sh stop DIR           stop the server of DIR
#   bench/pg-setup.sh psql DIR [ARGS]    psql as superuser on hello_world
#   bench/pg-setup.sh run                start in a temp dir, print the URL,
#                                        wait for Ctrl-C, stop, remove the dir
#
# The database follows /work/shared/specs/tfb.md section 2: database
# hello_world, user benchmarkdbuser / benchmarkdbpass (password auth over
# TCP), table world (10,000 rows, randomnumber uniform in 1..10000) and table
# fortune (the 12 standard rows), created idempotently; the server runs with
# TFB's settings: synchronous_commit off, shared_buffers 256MB,
# max_connections 2000, pg_stat_statements loaded (run.sh counts queries with
# it, as the TFB verifier does).  It listens on 127.0.0.1 only; its Unix
# socket is in DIR.  As root, the server runs as the postgres user (initdb
# refuses root) and DIR is handed to that user.
set -euo pipefail

log() { printf 'pg-setup: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n $PGBIN && -x $PGBIN/initdb ]] ||
    PGBIN=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
[[ -x $PGBIN/initdb && -x $PGBIN/pg_ctl ]] ||
    die "PostgreSQL server binaries not found (apt-get install postgresql)"

# as_pg CMD...: runs CMD as the server's owner (postgres when we are root).
if ((EUID == 0)); then
    id postgres >/dev/null 2>&1 || die "no postgres user (apt-get install postgresql)"
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        [[ -z $(ss -Htln "sport = :$p") ]] && { echo "$p"; return; }
    done
}

# psql_su DIR ARGS...: psql as the superuser over DIR's socket.
psql_su() {
    local dir=$1
    shift
    as_pg env PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$(cat "$dir/port")" \
        -U postgres "$@"
}

schema_sql() {
    cat <<'SQL'
CREATE TABLE IF NOT EXISTS world (
    id integer NOT NULL,
    randomnumber integer NOT NULL DEFAULT 0,
    PRIMARY KEY (id)
);
INSERT INTO world (id, randomnumber)
    SELECT i, 1 + floor(random() * 10000)::integer FROM generate_series(1, 10000) AS i
    ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS fortune (
    id integer NOT NULL,
    message varchar(2048) NOT NULL,
    PRIMARY KEY (id)
);
INSERT INTO fortune (id, message) VALUES
    (1, 'fortune: No such file or directory'),
    (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
    (3, 'After enough decimal places, nobody gives a damn.'),
    (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
    (5, 'A computer program does what you tell it to do, not what you want it to do.'),
    (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
    (7, 'Any program that runs right is obsolete.'),
    (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
    (9, 'Feature: A bug with seniority.'),
    (10, 'Computers make very fast, very accurate mistakes.'),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, 'フレームワークのベンチマーク')
    ON CONFLICT (id) DO NOTHING;
ANALYZE world;
ANALYZE fortune;
SQL
}

start() {
    local dir=$1 port=${2:-}
    [[ -n $dir ]] || die "usage: $0 start DIR [PORT]"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    ((EUID != 0)) || chown postgres: "$dir"
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        log "initdb in $dir/data"
        as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        as_pg mkdir -p "$dir/run"
        # TCP: password (scram) for everyone; the socket (in DIR): trust.
        as_pg tee "$dir/data/pg_hba.conf" >/dev/null <<'EOF'
local all all                trust
host  all all 127.0.0.1/32   scram-sha-256
EOF
    fi
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        [[ -z $port || $port == "$(cat "$dir/port")" ]] ||
            die "already running in $dir on port $(cat "$dir/port"), not $port"
        port=$(cat "$dir/port")
        log "PostgreSQL already running in $dir on 127.0.0.1:$port"
    else
        [[ -n $port ]] || port=$(free_port)
        echo "$port" | as_pg tee "$dir/port" >/dev/null
        log "starting PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }') on 127.0.0.1:$port"
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o "\
            -c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/run \
            -c synchronous_commit=off -c shared_buffers=256MB -c max_connections=2000 \
            -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all \
            -c logging_collector=off -c log_min_messages=warning" >/dev/null ||
            { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    fi

    psql_su "$dir" -d postgres <<'SQL'
SELECT 'CREATE ROLE benchmarkdbuser LOGIN PASSWORD ''benchmarkdbpass'''
    WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'benchmarkdbuser') \gexec
SELECT 'CREATE DATABASE hello_world OWNER benchmarkdbuser ENCODING ''UTF8'' TEMPLATE template0'
    WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'hello_world') \gexec
SQL
    psql_su "$dir" -d hello_world -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'
    schema_sql | psql_su "$dir" -d hello_world -c 'SET ROLE benchmarkdbuser' -f -
    local rows
    rows=$(psql_su "$dir" -d hello_world -Atc \
        "SELECT (SELECT count(*) FROM world WHERE randomnumber BETWEEN 1 AND 10000) || ' ' ||
                (SELECT count(*) FROM fortune)")
    [[ $rows == "10000 12" ]] || die "unexpected table contents: world/fortune rows $rows"
    echo "postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:$port/hello_world"
}

stop() {
    local dir=$1
    [[ -n $dir && -f $dir/data/postmaster.pid ]] || return 0
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        log "pg_ctl stop failed for $dir"
}

case ${1:-} in
start) start "${2:-}" "${3:-}" ;;
stop) stop "${2:?usage: $0 stop DIR}" ;;
psql)
    dir=${2:?usage: $0 psql DIR [ARGS]}
    shift 2
    psql_su "$dir" -d hello_world "$@"
    ;;
run)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/tern-pg.XXXXXX")
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    url=$(start "$dir")
    echo "DATABASE_URL=$url"
    log "running; Ctrl-C stops it and removes $dir"
    while sleep 3600; do :; done
    ;;
*)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
